"""The data model: posts, their categories and tags, comments and linkbacks, users, site settings.

Times are stored as naive UTC (SQLite keeps no zone); ``blogapp.templating`` shows them
in the configured ``TIMEZONE``.
"""
from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from . import search
from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class CommentKind(enum.StrEnum):
    COMMENT = "comment"
    PINGBACK = "pingback"
    TRACKBACK = "trackback"
    WEBMENTION = "webmention"


class CommentStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SPAM = "spam"
    TRASH = "trash"
    # A linkback whose source is being fetched: it holds the (post, source) slot, shown to no one.
    VERIFYING = "verifying"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"


# A job in one of these states is not over: its key (if any) stays taken.
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    # Readable by logged-in admins only (WordPress's "private"); never listed, fed or pinged.
    PRIVATE = "private"


class BodyFormat(enum.StrEnum):
    """How a post's or page's ``body`` is written: our editor's Markdown, or HTML as imported."""

    MARKDOWN = "markdown"
    HTML = "html"


class PageStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


post_categories = Table(
    "post_categories",
    db.metadata,
    Column("post_id", ForeignKey("post.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("category.id", ondelete="CASCADE"), primary_key=True),
)

post_tags = Table(
    "post_tags",
    db.metadata,
    Column("post_id", ForeignKey("post.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def name(self) -> str:
        return self.display_name or self.username


class Category(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    # Categories nest, as in WordPress; tags do not.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id", ondelete="SET NULL"))

    parent: Mapped[Category | None] = relationship(remote_side=[id])


class Tag(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(140), unique=True)


class Post(db.Model):
    __table_args__ = (
        CheckConstraint(_in("status", PostStatus), name="status"),
        CheckConstraint(_in("body_format", BodyFormat), name="body_format"),
        # Listings filter by status and page newest first by (published_at, id): one index serves
        # the seek of a cursor page (blogapp.blog.listing) and its order, ties included.
        Index("ix_post_status_published_at_id", "status", "published_at", "id"),
        # Search (blogapp.search): PostgreSQL's tsvector under GIN; on SQLite the column stays empty
        # (an FTS5 table, made with the table, indexes title and search_text there).
        Index("ix_post_search_vector", "search_vector", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    body_format: Mapped[str] = mapped_column(String(16), default=BodyFormat.MARKDOWN.value,
                                             server_default=BodyFormat.MARKDOWN.value)
    body_html: Mapped[str] = mapped_column(Text, default="")
    # A hand-written summary (WordPress's excerpt), plain text; empty: listings and feeds cut the body.
    excerpt: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default=PostStatus.DRAFT.value)
    # For a published post, a time in the future means "scheduled".
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    # In the Trash since then (WordPress's Trash; blogapp.posts.trash_post): a draft no one lists.
    trashed_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    comments_open: Mapped[bool] = mapped_column(Boolean, default=True)
    pings_open: Mapped[bool] = mapped_column(Boolean, default=True)
    # Tell the pages this post links to (Webmention, pingback, trackback); off: send nothing.
    send_linkbacks: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # What search reads of the body: its text without markup (blogapp.search.searchable_text), kept
    # by the ORM on every save and, for a Core INSERT that leaves it out, by its default.
    search_text: Mapped[str] = mapped_column(Text, default=search.search_text_default, server_default="",
                                             deferred=True)
    # PostgreSQL: title (A) and search_text (B) as a tsvector, written by a trigger (blogapp.search).
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"), deferred=True)

    author: Mapped[User | None] = relationship()
    categories: Mapped[list[Category]] = relationship(
        secondary=post_categories, order_by=Category.name, backref="posts"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, order_by=Tag.name, backref="posts")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_published(self) -> bool:
        return (
            self.status == PostStatus.PUBLISHED
            and self.published_at is not None
            and self.published_at <= utcnow()
        )

    @property
    def is_scheduled(self) -> bool:
        return self.status == PostStatus.PUBLISHED and self.published_at is not None and self.published_at > utcnow()

    def closes_at(self, close_after_days: int) -> datetime | None:
        """When the site's auto-close age closes the post to comments and pings (None: never)."""
        if not close_after_days or self.published_at is None:
            return None
        return self.published_at + timedelta(days=int(close_after_days))

    def _within_age(self, close_after_days: int) -> bool:
        closes = self.closes_at(close_after_days)
        return closes is None or utcnow() < closes

    def accepts_comments(self, close_after_days: int = 0) -> bool:
        """Open to new comments: the post's switch, and the site's auto-close age."""
        return self.is_published and self.comments_open and self._within_age(close_after_days)

    def accepts_pings(self, close_after_days: int = 0) -> bool:
        """Open to linkbacks; the auto-close age closes pings too, as in WordPress."""
        return self.is_published and self.pings_open and self._within_age(close_after_days)

    @classmethod
    def visible(cls):
        """Condition selecting posts readers may see."""
        return (cls.status == PostStatus.PUBLISHED.value) & (cls.published_at <= utcnow())


search.attach_index_ddl(Post.__table__)
search.attach_model_hooks(Post)


class Comment(db.Model):
    __table_args__ = (
        CheckConstraint(_in("kind", CommentKind), name="kind"),
        CheckConstraint(_in("status", CommentStatus), name="status"),
        # One linkback per post and source, whatever the protocol (NULLs never collide).
        UniqueConstraint("post_id", "source_key", name="uq_comment_post_source"),
        Index("ix_comment_post_status_created", "post_id", "status", "created_at"),
        Index("ix_comment_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default=CommentKind.COMMENT.value)
    status: Mapped[str] = mapped_column(String(16), default=CommentStatus.PENDING.value)
    # Where spam or trash came from, so "restore" puts it back where it was.
    previous_status: Mapped[str | None] = mapped_column(String(16))
    author_name: Mapped[str] = mapped_column(String(250), default="")
    author_email: Mapped[str] = mapped_column(String(254), default="")
    author_url: Mapped[str] = mapped_column(String(2000), default="")
    # Linkbacks: the linking page, and its normalised form for duplicate detection.
    source_url: Mapped[str | None] = mapped_column(String(2000))
    source_key: Mapped[str | None] = mapped_column(String(2000))
    content: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    # Set when an admin wrote the comment from the dashboard.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # Webmentions: reply | like | repost | bookmark | mention, and the author's h-card photo.
    response_type: Mapped[str | None] = mapped_column(String(16))
    author_photo: Mapped[str | None] = mapped_column(String(2000))
    # The commenter asked to be mailed replies to this comment (blogapp/notify/); an unsubscribe link clears it.
    notify_replies: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    post: Mapped[Post] = relationship(back_populates="comments")
    parent: Mapped[Comment | None] = relationship(remote_side=[id])

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "author_name": self.author_name,
            "author_url": self.author_url,
            "source_url": self.source_url,
            "content": self.content,
            "parent_id": self.parent_id,
            "created_at": self.created_at.replace(tzinfo=UTC).isoformat(),
        }


class Page(db.Model):
    """A standalone page (About, Contact) at ``/<slug>/``, listed in the site's navigation.

    No date in its address, no comments, no linkbacks: what WordPress calls a page, kept simple.
    """

    __table_args__ = (
        CheckConstraint(_in("status", PageStatus), name="status"),
        CheckConstraint(_in("body_format", BodyFormat), name="body_format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    body_format: Mapped[str] = mapped_column(String(16), default=BodyFormat.MARKDOWN.value)
    body_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=PageStatus.PUBLISHED.value)
    # The navigation lists published pages by menu_order, then title (WordPress's order).
    menu_order: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    author: Mapped[User | None] = relationship()

    @property
    def is_published(self) -> bool:
        return self.status == PageStatus.PUBLISHED

    @classmethod
    def visible(cls):
        return cls.status == PageStatus.PUBLISHED.value


class ImportedItem(db.Model):
    """What an import brought in from another site: its id there, and ours here.

    An import run again finds what it already brought (and adds nothing); the old site's
    ``/?p=ID`` and ``/?page_id=ID`` addresses find the post or page they meant.
    ``site`` is the old site's address as its export names it (``wp:base_site_url``).
    """

    __table_args__ = (
        UniqueConstraint("site", "kind", "source_id", name="uq_imported_item_site_kind_source"),
        Index("ix_imported_item_kind_source", "kind", "source_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))  # post | page | comment
    source_id: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), index=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LegacyPath(db.Model):
    """An address a post or page had on the old site (its permalink there, an old slug): 301 here."""

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), unique=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)


class Tombstone(db.Model):
    """A post readers could once read that was deleted or unpublished: its address answers 410 Gone."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    removed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LinkbackLog(db.Model):
    """What became of each linkback we fetched a source for: the admin's view of verification."""

    __table_args__ = (
        Index("ix_linkback_log_created", "created_at"),
        # The caps on pending verifications count these (per source host, per client IP, in all).
        Index("ix_linkback_log_pending_host", "outcome", "source_host"),
        Index("ix_linkback_log_pending_ip", "outcome", "client_ip"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    protocol: Mapped[str] = mapped_column(String(16))
    source_url: Mapped[str] = mapped_column(String(2000))
    source_host: Mapped[str] = mapped_column(String(255), default="")
    target_url: Mapped[str] = mapped_column(String(2000))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="SET NULL"))
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="verifying")  # verifying | accepted | refused
    fault_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    # Webmentions: the unguessable token of the status page ``/webmention/<token>``.
    token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)

    post: Mapped[Post | None] = relationship()


class OutboundState(enum.StrEnum):
    PENDING = "pending"  # to be sent (or sent again) by a job
    SENT = "sent"
    FAILED = "failed"
    NO_ENDPOINT = "no-endpoint"  # the page takes no linkbacks
    SKIPPED = "skipped"  # not sent on purpose: a home page, self-pings off, a removed link...


class OutboundLink(db.Model):
    """A page one of our posts links to (or did), and where telling it stands.

    The row outlives its post (``post_id`` set NULL) until the Webmention that tells the
    target the post is gone has been sent.
    """

    __table_args__ = (
        CheckConstraint(_in("state", OutboundState), name="state"),
        UniqueConstraint("post_id", "target_hash", name="uq_outbound_link_post_target"),
        Index("ix_outbound_link_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="SET NULL"))
    source_url: Mapped[str] = mapped_column(String(2000))  # our permalink, as sent
    target_url: Mapped[str] = mapped_column(String(2000))
    target_hash: Mapped[str] = mapped_column(String(64))  # sha256 of target_url: a short unique key
    linked: Mapped[bool] = mapped_column(Boolean, default=True)  # the post's current text links here
    state: Mapped[str] = mapped_column(String(16), default=OutboundState.PENDING.value)
    # The last attempt: the protocol found ("self" for our own posts), its endpoint, the HTTP
    # status or fault code, and a message for people.
    protocol: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(2000))
    code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    # The protocol of the last success: pingbacks and trackbacks are not sent twice.
    sent_protocol: Mapped[str | None] = mapped_column(String(16))
    # Bumped whenever a send is asked for; a job sends one generation, so a later ask is not lost.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime)

    attempt_log: Mapped[list[LinkbackAttempt]] = relationship(
        back_populates="link", cascade="all, delete-orphan", passive_deletes=True,
        order_by="LinkbackAttempt.id.desc()",
    )


class LinkbackAttempt(db.Model):
    """One try at telling a linked page about our post."""

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("outbound_link.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    protocol: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(2000))
    outcome: Mapped[str] = mapped_column(String(16))  # sent | failed | no-endpoint | skipped
    code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")

    link: Mapped[OutboundLink] = relationship(back_populates="attempt_log")


class BlockedDomain(db.Model):
    """A source domain (and its subdomains) whose linkbacks are refused with fault 49."""

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


_ACTIVE_JOB = f"status IN ({', '.join(repr(s.value) for s in ACTIVE_JOB_STATUSES)})"


class JobRecord(db.Model):
    """One background job (``blogapp.jobs``) and what became of it, whatever the back end."""

    __table_args__ = (
        CheckConstraint(_in("status", JobStatus), name="status"),
        # At most one unfinished job per key, even when two processes enqueue it at once.
        Index(
            "ix_job_record_active_key",
            "key",
            unique=True,
            sqlite_where=text(_ACTIVE_JOB),
            postgresql_where=text(_ACTIVE_JOB),
        ),
        Index("ix_job_record_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    key: Mapped[str | None] = mapped_column(String(255), index=True)
    # JSON: {"args": [...], "kwargs": {...}}
    args: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # JSON of what the task returned.
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # When the job is due (queued) or its next attempt is (retrying); empty once it runs or ends.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # While running: the process that runs it (``lease_owner``, unique per attempt) renews the
    # lease; a lease left to expire means that process died, and the job is run again.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class ContentVersion(db.Model):
    """One row: the counter every change readers could see draws its version from, and when the
    last such change was (``blogapp.pagecache``). Its row lock orders concurrent writers."""

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CacheScope(db.Model):
    """A part of what readers see ("site", "posts", "post:12", "thread:12", "comments"), with the
    version of its last change: a cached page is current while every part it showed is unchanged
    (``blogapp.pagecache.scopes`` says which change touches which part)."""

    __tablename__ = "cache_scope"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)  # drawn from ContentVersion.version
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class SiteSetting(db.Model):
    """A site setting changed by an admin; unset keys fall back to the app config."""

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# Settings an admin may change at runtime, with the type each one is stored as.
EDITABLE_SETTINGS: dict[str, type] = {
    "SITE_TITLE": str,
    "SITE_DESCRIPTION": str,
    "COMMENT_MODERATION": str,
    "COMMENT_THREAD_DEPTH": int,
    "CLOSE_COMMENTS_AFTER_DAYS": int,
    "POSTS_PER_PAGE": int,
    "COMMENT_MAX_LINKS": int,
    "COMMENT_MODERATION_KEYS": list,
    "COMMENT_DISALLOWED_KEYS": list,
    "NOTIFY_EMAIL": str,  # "" or None: nobody
    "NOTIFY_HELD": bool,
    "NOTIFY_PUBLISHED": bool,
}


def load_site_settings(config) -> dict:
    """The effective editable settings: config defaults overlaid by what admins saved."""
    values = {key: config[key] for key in EDITABLE_SETTINGS}
    for row in db.session.execute(select(SiteSetting)).scalars():
        if row.key in EDITABLE_SETTINGS:
            values[row.key] = EDITABLE_SETTINGS[row.key](json.loads(row.value))
    return values


def save_site_settings(values: dict) -> None:
    for key, value in values.items():
        if key not in EDITABLE_SETTINGS:
            raise KeyError(key)
        row = db.session.get(SiteSetting, key) or SiteSetting(key=key)
        row.value = json.dumps(EDITABLE_SETTINGS[key](value))
        db.session.add(row)
