"""Planning what to send when a post is saved or removed: one ``OutboundLink`` row per (post,
linked page), marked ``pending`` when the page must be told (in the caller's transaction)."""
from __future__ import annotations

import hashlib

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..linkback.send import is_bare_home_page, outbound_links
from ..models import OutboundLink, OutboundState, Post
from ..templating import permalink
from .self_ping import SELF, remove_self_ping

# Protocols whose success is never repeated; "imported": links of an imported post, told by the old site.
ONCE_IS_ENOUGH = ("pingback", "trackback", SELF, "imported")


def target_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


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
    site = current_app.extensions["linkback_receiver"].site
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
            remove_self_ping(row)
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
                remove_self_ping(row)
            db.session.delete(row)


def ask_again(row: OutboundLink) -> None:
    """The admin's "send again": whatever happened before, send now (pingbacks too)."""
    row.sent_protocol = None if row.sent_protocol in ("pingback", "trackback") else row.sent_protocol
    _ask(row, "Sending again, as asked.")
