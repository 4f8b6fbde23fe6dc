"""A link from one of our posts to another: the pingback recorded there directly, no HTTP."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select

from ..endpoints import targets
from ..extensions import db
from ..linkback.errors import LinkbackError
from ..linkback.send import FAILED, SENT, SKIPPED, SendResult
from ..linkback.urls import source_key
from ..linkback.verify import read_page
from ..models import Comment, CommentKind, CommentStatus, OutboundLink, Post, utcnow
from ..templating import post_path

SELF = "self"  # the protocol of a self-ping


def self_ping(row: OutboundLink, post: Post) -> SendResult:
    """Our post links to another of ours: record the pingback there directly, approved."""
    site = current_app.extensions["linkback_receiver"].site
    try:
        target = targets.ping_target(current_app, site, row.target_url)
    except LinkbackError as exc:
        if not targets.is_post_page(current_app.url_map, site.local_path(row.target_url)):
            return SendResult(SKIPPED, SELF, message="Not sent: the link is to a page of ours that is not a post "
                                                     "(only posts take pingbacks).")
        return SendResult(FAILED, SELF, code=exc.code, message=f"Fault {exc.code}: {exc.message}")
    wanted = site.local_path(row.target_url)
    # Our own page, rendered in-process (no HTTP), asked for on our own host as a reader would.
    page = current_app.test_client().get(post_path(post), headers={"Host": urlsplit(current_app.config["SITE_URL"]).netloc})
    try:
        reading = read_page(page.get_data(), "utf-8", row.source_url, lambda url: site.local_path(url) == wanted)
    except LinkbackError as exc:
        return SendResult(FAILED, SELF, code=exc.code, message=f"Fault {exc.code}: {exc.message}")
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
    return SendResult(SENT, SELF, endpoint=None, message=message)


def remove_self_ping(row: OutboundLink) -> None:
    """The link (or our post) is gone: so is the pingback it made on our other post."""
    site = current_app.extensions["linkback_receiver"].site
    if not site.is_ours(row.target_url):
        return
    try:
        post = targets.post_at(current_app, site, row.target_url)
    except LinkbackError:
        return
    db.session.execute(delete(Comment).where(
        Comment.post_id == post.id, Comment.source_key == source_key(row.source_url),
        Comment.kind == CommentKind.PINGBACK.value,
    ))
