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

``send_now(row)`` does one send synchronously (the CLI's ``send-pings``); the job calls it too.
"""
from __future__ import annotations

import hashlib
import logging

from bs4 import BeautifulSoup
from flask import current_app
from sqlalchemy import delete, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from . import jobs
from .extensions import db
from .linkback.errors import LinkbackError
from .linkback.send import FAILED, PROTOCOLS, SENT, SKIPPED, Announcement, Outcome, Sender, is_bare_home_page, outbound_links
from .linkback.urls import source_key
from .linkback.verify import BLOCKS, cap, read_page, squash
from .models import (
    Comment,
    CommentKind,
    CommentStatus,
    LinkbackAttempt,
    OutboundLink,
    OutboundState,
    Post,
    load_site_settings,
    utcnow,
)
from .templating import permalink, post_path

log = logging.getLogger(__name__)

TASK = "linkback.send"
SELF = "self"
TRACKBACK_EXCERPT = 252  # characters, as WordPress sends
# Protocols whose success is never repeated; "imported": links of an imported post, told by the old site.
ONCE_IS_ENOUGH = ("pingback", "trackback", SELF, "imported")


def target_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _receiver():
    return current_app.extensions["linkback_receiver"]


def _sending_on(post: Post) -> bool:
    return bool(current_app.config["SEND_LINKBACKS"]) and post.send_linkbacks


def _ask(row: OutboundLink, message: str = "") -> None:
    """Mark the row to be sent (again) by the next dispatch."""
    row.state = OutboundState.PENDING.value
    row.generation = (row.generation or 0) + 1
    row.message = message


def _settle(row: OutboundLink, state: OutboundState, message: str) -> None:
    row.state, row.message = state.value, message
    row.generation = (row.generation or 0) + 1  # a job already queued for the row has nothing left to do


# ---------------------------------------------------------------- planning (in the caller's transaction)


def plan_after_save(post: Post, *, was_public: bool, changed: bool, retry_failed: bool = True) -> None:
    """Bring the post's rows up to date after it was saved; the caller commits, then dispatches.

    ``changed``: the title or the text changed (or the post was just published).
    ``retry_failed``: targets that failed or offered no endpoint are tried again.
    """
    rows = {row.target_hash: row for row in db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == post.id))}
    live = post.status == "published"  # published now or scheduled
    if not live:
        if was_public and _sending_on(post):
            _announce_removal(rows.values(), "The post was unpublished")
        for row in rows.values():
            if row.state == OutboundState.PENDING and row.sent_protocol != "webmention":
                _settle(row, OutboundState.SKIPPED, "Not sent: the post is not published.")
        return
    if not _sending_on(post):
        for row in rows.values():
            if row.state == OutboundState.PENDING:
                _settle(row, OutboundState.SKIPPED, "Not sent: sending linkbacks is off for this post.")
        return
    source = permalink(post)
    site = _receiver().site
    self_pings = bool(current_app.config["SELF_PINGS"])
    current = outbound_links(post.body_html, source)
    seen: set[str] = set()
    for url in current:
        key = target_hash(url)
        seen.add(key)
        row = rows.get(key)
        is_new = row is None
        if is_new:
            row = OutboundLink(post_id=post.id, source_url=source, target_url=url, target_hash=key, linked=True,
                               state=OutboundState.PENDING.value, generation=0, attempts=0, message="")
            db.session.add(row)
        came_back = not row.linked
        row.linked, row.source_url = True, source
        if is_bare_home_page(url):
            if is_new or row.state == OutboundState.PENDING:
                _settle(row, OutboundState.SKIPPED, "Not sent: links to a site's home page are not pinged.")
            continue
        if site.is_ours(url):
            if site.local_path(url) == site.local_path(source):
                _settle(row, OutboundState.SKIPPED, "Not sent: the post links to itself.")
            elif not self_pings:
                _settle(row, OutboundState.SKIPPED, "Not sent: self-pings are turned off (SELF_PINGS).")
            elif is_new or came_back or changed or row.state != OutboundState.SENT:
                _ask(row)
            continue
        if is_new or came_back:
            _ask(row)
        elif row.state == OutboundState.SENT and row.sent_protocol in ONCE_IS_ENOUGH:
            continue  # a registered pingback or trackback stays registered
        elif changed or row.state == OutboundState.SKIPPED or (
                retry_failed and row.state in (OutboundState.FAILED, OutboundState.NO_ENDPOINT)):
            _ask(row)
    for key, row in rows.items():
        if key not in seen and row.linked:
            row.linked = False
            _announce_removal([row], "The link was removed")


def _announce_removal(rows, why: str) -> None:
    """The post no longer links to these pages (or is gone): tell the ones that heard by Webmention."""
    for row in rows:
        if row.sent_protocol == "webmention":
            _ask(row, f"{why}: the receiver is told again so it can remove the mention.")
        elif row.sent_protocol == SELF:
            _remove_self_ping(row)
            _settle(row, OutboundState.SKIPPED, f"{why}: the pingback on our own post was removed.")
            row.sent_protocol = None
        elif row.state == OutboundState.PENDING:
            _settle(row, OutboundState.SKIPPED, f"Not sent: {why[0].lower() + why[1:]} before it was sent.")


def plan_removal(post: Post) -> None:
    """The post is about to be deleted: keep only the rows whose receivers must hear it is gone."""
    rows = list(db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == post.id)))
    public = post.is_published
    for row in rows:
        if public and row.sent_protocol == "webmention" and _sending_on(post):
            _ask(row, "The post was deleted: the receiver is told so it can remove the mention.")
            row.linked = False
        else:
            if row.sent_protocol == SELF:
                _remove_self_ping(row)
            db.session.delete(row)


def ask_again(row: OutboundLink) -> None:
    """The admin's "send again": whatever happened before, send now (pingbacks too)."""
    row.sent_protocol = None if row.sent_protocol in ("pingback", "trackback") else row.sent_protocol
    _ask(row, "Sending again, as asked.")


# ---------------------------------------------------------------- queueing


def dispatch() -> int:
    """Queue a job for each pending row that has none; returns how many rows are pending.

    Safe to call any time, from any process: the job key is per row and generation.
    """
    db.session.commit()
    rows = db.session.execute(
        select(OutboundLink.id, OutboundLink.generation, Post.published_at)
        .outerjoin(Post, Post.id == OutboundLink.post_id)
        .where(OutboundLink.state == OutboundState.PENDING.value)
    ).all()
    now = utcnow()
    for row_id, generation, published_at in rows:
        delay = (published_at - now).total_seconds() if published_at and published_at > now else 0.0
        jobs.enqueue(TASK, row_id, generation, key=f"{TASK}:{row_id}:{generation}", delay=delay)
    return len(rows)


def _give_up(row_id: int, generation: int) -> None:
    """The process sending it died on the job's last attempt: the row ends failed, to be sent
    again from the editor, rather than pending for ever."""
    row = db.session.get(OutboundLink, row_id)
    if row is not None and row.generation == generation and row.state == OutboundState.PENDING:
        row.state = OutboundState.FAILED.value
        row.message = "Not sent: the process sending it stopped, on every attempt."
        if row.post_id is None:
            db.session.delete(row)


@jobs.task(TASK, on_give_up=_give_up)
def send_job(row_id: int, generation: int) -> str:
    row = db.session.get(OutboundLink, row_id)
    if row is None or row.generation != generation or row.state != OutboundState.PENDING:
        return "nothing to do: the row changed since this job was queued"
    attempt = jobs.current_attempt()
    outcome = send_now(row, final=attempt is None or attempt.last)
    if outcome is not None and outcome.transient and row.state == OutboundState.PENDING:
        raise jobs.TransientJobError(outcome.message, status=outcome.code if outcome.code and outcome.code >= 400 else None)
    return row.state if outcome is None else f"{outcome.outcome}: {outcome.message}"


# ---------------------------------------------------------------- sending one row


def send_now(row: OutboundLink, *, final: bool = True) -> Outcome | None:
    """Send one pending row now and record the attempt (committed). ``final``: a transient failure
    is the last word (no retry follows), so the row is marked failed rather than left pending.

    Returns None when there was nothing to send yet (a scheduled post).
    """
    post = db.session.get(Post, row.post_id) if row.post_id is not None else None
    if post is not None and post.is_scheduled:
        return None  # its job is due when the post goes live
    public = post is not None and post.is_published and row.linked
    if row.protocol == SELF or (public and _receiver().site.is_ours(row.target_url)):
        outcome = _self_ping(row, post) if public else Outcome(SKIPPED, SELF, message="Not sent: nothing to tell.")
    else:
        note = Announcement(source=row.source_url, target=row.target_url)
        if public and post.send_linkbacks:
            settings = load_site_settings(current_app.config)
            note.title = post.title
            note.excerpt = _excerpt(post.body_html)
            note.blog_name = settings["SITE_TITLE"]
            outcome = Sender(_receiver().fetcher).send(note)
        else:
            # The post or the link is gone: only a Webmention can tell the receiver to drop us.
            outcome = Sender(_receiver().fetcher).send(note, protocols=("webmention",))
    _record(row, outcome, final=final)
    if row.post_id is None and row.state != OutboundState.PENDING:
        db.session.delete(row)  # the deleted post's last word is said
    db.session.commit()
    return outcome


def _record(row: OutboundLink, outcome: Outcome, *, final: bool) -> None:
    now = utcnow()
    row.attempts = (row.attempts or 0) + 1
    row.last_attempt_at = now
    row.protocol, row.endpoint, row.code = outcome.protocol, outcome.endpoint, outcome.code
    db.session.add(LinkbackAttempt(link_id=row.id, at=now, protocol=outcome.protocol, endpoint=outcome.endpoint,
                                   outcome=outcome.outcome, code=outcome.code, message=outcome.message))
    if outcome.ok:
        row.state, row.message = OutboundState.SENT.value, outcome.message
        row.sent_protocol, row.succeeded_at = outcome.protocol, now
        if not row.linked:
            row.sent_protocol = None  # the receiver was told the link is gone: nothing more to say
    elif outcome.transient and not final:
        row.message = f"{outcome.message} (will be tried again)"
    else:
        row.state = {FAILED: OutboundState.FAILED, SKIPPED: OutboundState.SKIPPED}.get(
            outcome.outcome, OutboundState.NO_ENDPOINT).value
        row.message = outcome.message


def _excerpt(html: str) -> str:
    """The post's text for a trackback: inline markup joined as read, blocks apart."""
    soup = BeautifulSoup(html or "", "lxml")
    for block in soup.find_all((*BLOCKS, "br")):
        block.append(" ")
    return cap(squash(soup.get_text()), TRACKBACK_EXCERPT)


# ---------------------------------------------------------------- self-pings


def _self_ping(row: OutboundLink, post: Post) -> Outcome:
    """Our post links to another of ours: record the pingback there directly, approved."""
    store = _receiver().store
    site = _receiver().site
    try:
        target = store.resolve_post(row.target_url, for_pings=True)
    except LinkbackError as exc:
        if not _is_post_page(site.local_path(row.target_url)):
            return Outcome(SKIPPED, SELF, message="Not sent: the link is to a page of ours that is not a post "
                                                  "(only posts take pingbacks).")
        return Outcome(FAILED, SELF, code=exc.code, message=f"Fault {exc.code}: {exc.message}")
    wanted = site.local_path(row.target_url)
    page = current_app.test_client().get(post_path(post))  # our own page, rendered in-process: no HTTP
    try:
        reading = read_page(page.get_data(), "utf-8", row.source_url, lambda url: site.local_path(url) == wanted)
    except LinkbackError as exc:
        return Outcome(FAILED, SELF, code=exc.code, message=f"Fault {exc.code}: {exc.message}")
    key = source_key(row.source_url)
    comment = db.session.scalar(select(Comment).where(Comment.post_id == target.post_id, Comment.source_key == key))
    if comment is None:
        comment = Comment(post_id=target.post_id, kind=CommentKind.PINGBACK.value, source_key=key,
                          status=CommentStatus.APPROVED.value, created_at=utcnow(), ip="127.0.0.1",
                          user_agent="blogapp self-ping")
        db.session.add(comment)
        message = "Pingback recorded on our own post."
    else:
        message = "Pingback on our own post updated."
    comment.source_url = comment.author_url = row.source_url
    comment.author_name = reading.title
    comment.content = reading.excerpt
    return Outcome(SENT, SELF, endpoint=None, message=message)


def _is_post_page(path: str | None) -> bool:
    """Whether one of our paths is a post's page (an archive, a feed or the admin are not)."""
    if path is None:
        return False
    try:
        endpoint, _ = current_app.url_map.bind("localhost").match(path, method="GET")
    except RequestRedirect:
        return True  # an old date of a post's address
    except HTTPException:
        return False
    return endpoint == "blog.post"


def _remove_self_ping(row: OutboundLink) -> None:
    site = _receiver().site
    path = site.local_path(row.target_url)
    if path is None:
        return
    try:
        target = _receiver().store.resolve_post(row.target_url, for_pings=False)
    except LinkbackError:
        return
    db.session.execute(delete(Comment).where(
        Comment.post_id == target.id, Comment.source_key == source_key(row.source_url),
        Comment.kind == CommentKind.PINGBACK.value,
    ))


def pending_rows(post: Post | None = None) -> list[OutboundLink]:
    query = select(OutboundLink).where(OutboundLink.state == OutboundState.PENDING.value).order_by(OutboundLink.id)
    if post is not None:
        query = query.where(OutboundLink.post_id == post.id)
    return list(db.session.scalars(query))


__all__ = ["PROTOCOLS", "ask_again", "dispatch", "pending_rows", "plan_after_save", "plan_removal", "send_now"]
