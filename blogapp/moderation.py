"""Moderation policy and the state changes an admin can make to a comment."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, or_, select

from .extensions import db
from .models import Comment, CommentKind, CommentStatus

MODERATION_MODES = {
    "hold-all": "Hold every new comment for moderation",
    "hold-new": "Hold comments from first-time commenters",
    "approve": "Publish comments at once",
}


def initial_status(mode: str, author_email: str, *, by_admin: bool = False) -> CommentStatus:
    """Status of a new visitor comment under the site's moderation ``mode``."""
    if by_admin or mode == "approve":
        return CommentStatus.APPROVED
    if mode == "hold-new" and author_email:
        known = db.session.scalar(
            select(func.count(Comment.id)).where(
                Comment.kind == CommentKind.COMMENT.value,
                Comment.status == CommentStatus.APPROVED.value,
                func.lower(Comment.author_email) == author_email.lower(),
            )
        )
        if known:
            return CommentStatus.APPROVED
    return CommentStatus.PENDING


def linkback_status(mode: str, source: str, *, ours: bool) -> CommentStatus:
    """Status of a newly verified linkback from ``source`` under ``LINKBACK_MODERATION`` ``mode``.

    hold-new-sources: a domain we already approved a linkback from, or our own site (``ours``), is trusted.
    """
    if mode == "approve" or (mode != "hold" and ours):
        return CommentStatus.APPROVED
    if mode == "hold":
        return CommentStatus.PENDING
    host = (urlsplit(source).hostname or "").lower()
    escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    known = db.session.scalar(
        select(Comment.id).where(
            Comment.kind != CommentKind.COMMENT.value,
            Comment.status == CommentStatus.APPROVED.value,
            or_(Comment.source_key.like(escaped + "/%", escape="\\"), Comment.source_key.like(escaped + ":%", escape="\\")),
        ).limit(1)
    )
    return CommentStatus.APPROVED if known else CommentStatus.PENDING


HIDDEN = (CommentStatus.SPAM, CommentStatus.TRASH)


def set_status(comment: Comment, status: str) -> None:
    """Give ``comment`` a new ``status``, remembering where it was before it went to spam or trash.

    Moving between spam and trash keeps that memory, so "restore" still puts it back where it was.
    """
    status = CommentStatus(status)
    if status in HIDDEN:
        if comment.status not in HIDDEN:
            comment.previous_status = comment.status
    else:
        comment.previous_status = None
    comment.status = status.value


# action -> (statuses it applies to, resulting status); "restore" is handled apart.
ACTIONS = {
    "approve": ({"pending", "spam", "trash"}, CommentStatus.APPROVED),
    "unapprove": ({"approved"}, CommentStatus.PENDING),
    "spam": ({"pending", "approved", "trash"}, CommentStatus.SPAM),
    "trash": ({"pending", "approved", "spam"}, CommentStatus.TRASH),
}


def apply_action(comment: Comment, action: str) -> bool:
    """Change ``comment`` by ``action``; return whether anything changed.

    ``delete`` removes the row; replies to it stay and move up to its parent.
    """
    if action == "delete":
        for reply in db.session.scalars(select(Comment).where(Comment.parent_id == comment.id)):
            reply.parent_id = comment.parent_id
        db.session.delete(comment)
        return True
    if action == "restore":
        if comment.status not in HIDDEN:
            return False
        comment.status = comment.previous_status or CommentStatus.PENDING.value
        if comment.status in HIDDEN:
            comment.status = CommentStatus.PENDING.value
        comment.previous_status = None
        return True
    if action not in ACTIONS:
        raise ValueError(f"unknown moderation action: {action}")
    allowed_from, to = ACTIONS[action]
    if comment.status not in allowed_from:
        return False
    set_status(comment, to)
    return True
