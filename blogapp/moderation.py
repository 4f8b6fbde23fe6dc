"""Moderation policy and the state changes an admin can make to a comment."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select

from .extensions import db
from .models import Comment, CommentKind, CommentStatus, Post
from .text import html_to_text

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


# WordPress's link count (check_comment): every "//" that starts an address, with its "http(s):" and
# an "href=" before it counted once: a linked address shown as its own text counts twice, as there.
LINK = re.compile(r"(?:href[\t ]*=[\t ]*['\"]?)?(?:https?:)?//", re.IGNORECASE)


def count_links(text: str) -> int:
    return len(LINK.findall(text or ""))


@dataclass(frozen=True)
class Submission:
    """What the Discussion rules read of a new comment or linkback: WordPress's fields. For a
    linkback, the author is the source page's title, the URL its address, the content its excerpt,
    the IP and user agent those of the server that sent it."""

    author: str = ""
    email: str = ""
    url: str = ""
    content: str = ""
    ip: str = ""
    user_agent: str = ""

    def fields(self) -> tuple[str, ...]:
        return (self.author, self.email, self.url, self.content, self.ip, self.user_agent)


def matched_key(keys, fields) -> str | None:
    """The first of ``keys`` (words, names, addresses, IPs; blank ones skipped) found in any of
    ``fields``, ignoring case, as part of a word too ("press" matches "WordPress"), as WordPress does."""
    texts = [field.casefold() for field in fields if field]
    for key in keys or ():
        needle = str(key).strip().casefold()
        if needle and any(needle in text for text in texts):
            return str(key).strip()
    return None


def apply_discussion_rules(status: CommentStatus, settings: dict, submission: Submission) -> CommentStatus:
    """The Discussion settings' spam rules on a new comment or linkback that its moderation
    policy gave ``status`` (not for an admin's own, nor our own site's pings).

    A ``COMMENT_DISALLOWED_KEYS`` match (the content also read as text: tags out, entities decoded) sends it to spam;
    else a ``COMMENT_MODERATION_KEYS`` match, or ``COMMENT_MAX_LINKS`` links or more (0: no limit),
    holds one that would have been published.
    """
    fields = submission.fields()
    if matched_key(settings["COMMENT_DISALLOWED_KEYS"], (*fields, html_to_text(submission.content))):
        return CommentStatus.SPAM
    if status != CommentStatus.APPROVED:
        return status
    max_links = int(settings["COMMENT_MAX_LINKS"])
    if max_links and count_links(submission.content) >= max_links:
        return CommentStatus.PENDING
    if matched_key(settings["COMMENT_MODERATION_KEYS"], fields):
        return CommentStatus.PENDING
    return status


def on_posts_not_trashed(stmt):
    """``stmt`` (over comments) kept to those of posts not in the Trash: a trashed post's comments
    wait with it, out of the admin's lists and counts (WordPress's "post-trashed")."""
    return stmt.join(Comment.post).where(Post.trashed_at.is_(None))


def comment_counts() -> dict[str, int]:
    """Comments and linkbacks per status, and "all" (pending and approved, WordPress's All tab)."""
    counts = dict(db.session.execute(on_posts_not_trashed(
        select(Comment.status, func.count(Comment.id))).group_by(Comment.status)).all())
    found = {status.value: counts.get(status.value, 0) for status in
             (CommentStatus.PENDING, CommentStatus.APPROVED, CommentStatus.SPAM, CommentStatus.TRASH)}
    found["all"] = found["pending"] + found["approved"]
    return found


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
