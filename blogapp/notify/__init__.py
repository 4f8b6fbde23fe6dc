"""Notifications by email, as a WordPress admin and commenter expect them.

- The admin (``NOTIFY_EMAIL``) is mailed each comment or linkback held for moderation (``NOTIFY_HELD``)
  and, if asked, each one published (``NOTIFY_PUBLISHED``), with links to Approve, Spam or Trash it
  (each opens a confirmation page: views.py). Hook: ``comment_received(comment)``, after its commit.
- A commenter who ticked "Notify me of replies" is mailed each reply to their comment once it is
  approved, whichever path approves it (events.py: the session's commit), with a one-click
  unsubscribe link (tokens.py, views.py).

Mail is sent by jobs (tasks.py) over SMTP (smtp.py), retried with backoff while the server is
away; nothing is queued unless ``MAIL_SERVER`` is set. who.py decides who is told, compose.py writes
the messages. The modules: tokens, who, compose, smtp, tasks, events, views.
"""
from __future__ import annotations

from flask import Flask

from . import events  # noqa: F401  (the session events that notice approved replies)
from .who import comment_received


def init_app(app: Flask) -> None:
    """Register the confirmation and unsubscribe pages (the tasks register themselves on import)."""
    from . import tasks  # noqa: F401
    from .views import bp

    app.register_blueprint(bp)


__all__ = ["comment_received", "init_app"]
