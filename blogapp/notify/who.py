"""Who is told about a comment, and the jobs that tell them.

``comment_received(comment)`` (after the comment's commit: blog/routes.py, endpoints/store.py)
queues the admin's mail; ``reply_job_due(reply)`` says whether a reply just approved should be
mailed to its parent's author (called by events.py in the approving transaction).
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from .. import jobs
from ..extensions import db
from ..models import Comment, CommentKind, CommentStatus, JobRecord, JobStatus
from ..templating import site_settings

log = logging.getLogger(__name__)

ADMIN_TASK = "notify.admin"
REPLY_TASK = "notify.reply"
HELD, PUBLISHED = "held", "published"


def mail_on() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def admin_address(settings: dict) -> str:
    return (settings.get("NOTIFY_EMAIL") or "").strip()


def admin_event(comment: Comment, settings: dict) -> str | None:
    """HELD or PUBLISHED if the admin wants a mail about this new comment or linkback, else None.

    Never about the admin's own comment (written logged in, or from the notification address), nor spam.
    """
    address = admin_address(settings)
    if not address or comment.user_id is not None:
        return None
    if comment.kind == CommentKind.COMMENT and (comment.author_email or "").strip().casefold() == address.casefold():
        return None
    if comment.status == CommentStatus.PENDING and settings.get("NOTIFY_HELD"):
        return HELD
    if comment.status == CommentStatus.APPROVED and settings.get("NOTIFY_PUBLISHED"):
        return PUBLISHED
    return None


def comment_received(comment: Comment) -> None:
    """After a new comment or linkback is committed: queue the admin's mail, if there is one to send.

    Never fails its caller: a mail that cannot be queued is logged, and the comment stands.
    """
    try:
        if not mail_on():
            return
        event = admin_event(comment, site_settings())
        if event is not None:
            jobs.enqueue(ADMIN_TASK, comment.id, event, key=f"{ADMIN_TASK}:{comment.id}:{event}")
    except Exception:  # the comment is stored; the mail is the lesser loss
        db.session.rollback()
        log.exception("the notification of comment %s could not be queued", getattr(comment, "id", None))


def is_own_reply(reply: Comment, parent: Comment) -> bool:
    if reply.user_id is not None and reply.user_id == parent.user_id:
        return True
    mine = (parent.author_email or "").strip().casefold()
    return bool(mine) and (reply.author_email or "").strip().casefold() == mine


def wants_reply_mail(reply: Comment | None) -> bool:
    """Whether ``reply`` (approved) is to be mailed to its parent's author: they asked and have not
    unsubscribed, it is not their own, and both are shown."""
    if reply is None or reply.kind != CommentKind.COMMENT or reply.status != CommentStatus.APPROVED:
        return False
    parent = reply.parent
    return (parent is not None and parent.kind == CommentKind.COMMENT and parent.notify_replies
            and bool((parent.author_email or "").strip()) and parent.status == CommentStatus.APPROVED
            and not is_own_reply(reply, parent))


def reply_key(reply_id: int) -> str:
    return f"{REPLY_TASK}:{reply_id}"


def reply_job_due(reply: Comment) -> bool:
    """A reply mail is due: wanted, and none sent or waiting for this reply already (a reply
    unapproved and approved again is mailed once)."""
    if not wants_reply_mail(reply):
        return False
    return db.session.scalar(select(JobRecord.id).where(
        JobRecord.key == reply_key(reply.id), JobRecord.status != JobStatus.FAILED.value).limit(1)) is None
