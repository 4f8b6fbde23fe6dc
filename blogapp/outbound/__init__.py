"""Telling the pages our posts link to: what to send when a post changes, and the job that sends.

``posts.save_post`` and ``posts.remove_post`` call ``plan_after_save`` / ``plan_removal`` inside
the caller's transaction; they keep one ``OutboundLink`` row per (post, linked page) and mark
the rows that need a send ``pending``. After the commit, ``dispatch()`` queues one
``linkback.send`` job per pending row (due when a scheduled post goes live). The rules:

- Publishing sends to every page the post links to, except bare home pages (as WordPress).
- An update that changes the title or text sends Webmentions again to every page still linked,
  and to pages no longer linked (the receiver can then drop us: Webmention §3.1.4); pingbacks
  and trackbacks that succeeded are not sent again. Targets that failed are tried again.
- Unpublishing or deleting sends Webmentions again to what the post linked to: our page now
  answers 410 Gone, so receivers remove the mention (§3.1.5).
- A link to another of our posts is a self-ping: no HTTP; the linked post gets an approved
  pingback directly, titled and excerpted by the same rules as a remote one
  (``SELF_PINGS`` turns this off). Removing the link or the post removes that pingback.
- A post's "send linkbacks" switch off (or ``SEND_LINKBACKS`` off) sends nothing.

Modules: ``planning`` (the rows, in the caller's transaction), ``queue`` (dispatch, the job),
``sending`` (``send_now``: one row sent and recorded; the CLI's ``send-pings`` calls it too),
``self_ping`` (a link to one of our own posts).
"""
from __future__ import annotations

from ..linkback.send import PROTOCOLS, Sender
from .planning import ask_again, plan_after_save, plan_removal, target_hash
from .queue import TASK, dispatch, pending_rows
from .sending import send_now

__all__ = ["PROTOCOLS", "Sender", "TASK", "ask_again", "dispatch", "pending_rows", "plan_after_save", "plan_removal",
           "send_now", "target_hash"]
