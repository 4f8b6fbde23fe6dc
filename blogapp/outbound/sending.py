"""Sending one row now: to our own post directly, else through ``Sender``; the attempt recorded."""
from __future__ import annotations

from bs4 import BeautifulSoup
from flask import current_app

from ..extensions import db
from ..linkback.send import FAILED, SKIPPED, Announcement, Sender, SendResult
from ..linkback.verify import BLOCKS, EXCERPT_LIMIT, cap, squash
from ..models import LinkbackAttempt, OutboundLink, OutboundState, Post, load_site_settings, utcnow
from .self_ping import SELF, self_ping


def _receiver():
    return current_app.extensions["linkback_receiver"]


def send_now(row: OutboundLink, *, final: bool = True) -> SendResult | None:
    """Send one pending row now and record the attempt (committed). ``final``: a transient failure
    is the last word (no retry follows), so the row is marked failed rather than left pending.

    Returns None when there was nothing to send yet (a scheduled post).
    """
    post = db.session.get(Post, row.post_id) if row.post_id is not None else None
    if post is not None and post.is_scheduled:
        return None  # its job is due when the post goes live
    public = post is not None and post.is_published and row.linked
    if row.protocol == SELF or (public and _receiver().site.is_ours(row.target_url)):
        outcome = self_ping(row, post) if public else SendResult(SKIPPED, SELF, message="Not sent: nothing to tell.")
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


def _record(row: OutboundLink, outcome: SendResult, *, final: bool) -> None:
    now = utcnow()
    row.attempts = (row.attempts or 0) + 1
    row.last_attempt_at = now
    row.protocol, row.endpoint, row.code = outcome.protocol, outcome.endpoint, outcome.code
    db.session.add(LinkbackAttempt(link_id=row.id, at=now, protocol=outcome.protocol, endpoint=outcome.endpoint,
                                   outcome=outcome.outcome, code=outcome.code, message=outcome.message))
    state = state_after(outcome, final=final)
    row.state = state.value
    if state == OutboundState.SENT:
        row.message = outcome.message
        row.sent_protocol, row.succeeded_at = outcome.protocol, now
        if not row.linked:
            row.sent_protocol = None  # the receiver was told the link is gone: nothing more to say
    elif state == OutboundState.PENDING:
        row.message = f"{outcome.message} (will be tried again)"
    else:
        row.message = outcome.message


def state_after(outcome: SendResult, *, final: bool) -> OutboundState:
    """A row's state after an attempt with this outcome; ``final``: no retry follows a transient
    failure (pending: it is tried again)."""
    if outcome.ok:
        return OutboundState.SENT
    if outcome.transient and not final:
        return OutboundState.PENDING
    return {FAILED: OutboundState.FAILED, SKIPPED: OutboundState.SKIPPED}.get(outcome.outcome,
                                                                            OutboundState.NO_ENDPOINT)


def _excerpt(html: str) -> str:
    """The post's text for a trackback: inline markup joined as read, blocks apart."""
    soup = BeautifulSoup(html or "", "lxml")
    for block in soup.find_all((*BLOCKS, "br")):
        block.append(" ")
    return cap(squash(soup.get_text()), EXCERPT_LIMIT)
