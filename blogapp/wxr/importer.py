"""Importing a WordPress export into the blog: posts, pages, terms, comments and linkbacks.

The file is read as a stream (``read.WxrReader``) and written in batches, each committed on its
own, so a big site costs the memory of one batch and a file cut off half way keeps every item
that was whole. Rows go in with bulk ``INSERT ... RETURNING`` statements, not one ORM object at a
time. What an import brought is remembered (``ImportedItem``): the same file again adds nothing,
and a longer one adds only what is new. Importing never sends a linkback: the links of imported
posts are recorded as already told, because the old site told them years ago.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from sqlalchemy import bindparam, func, insert, select, text, update

from .. import pagecache
from ..extensions import db
from ..legacy import legacy_key
from ..linkback.send import is_bare_home_page, outbound_links
from ..linkback.urls import source_key
from ..search import searchable_text
from ..models import (
    BodyFormat,
    Category,
    Comment,
    CommentKind,
    CommentStatus,
    ImportedItem,
    LegacyPath,
    OutboundLink,
    OutboundState,
    Page,
    PageStatus,
    Post,
    PostStatus,
    Tag,
    User,
    post_categories,
    post_tags,
    utcnow,
)
from ..text import html_to_text, render_post, safe_http_url, sanitize_comment_html, slugify
from . import wpcontent
from .read import Author, Channel, Item, ItemComment, Term, WxrError, WxrReader, scan_creators

# A batch ends after this many items or comments, whichever comes first: big enough that a
# statement carries many rows, small enough that a batch's memory stays small.
BATCH_ITEMS = 200
BATCH_COMMENTS = 5000
# The marker of a link recorded at import (``OutboundLink.sent_protocol``): never sent again.
IMPORTED = "imported"
# Our own export keeps what WXR has no field for in post and comment meta under these keys.
META_MARKDOWN = "_blogapp_markdown"
META_SEND_LINKBACKS = "_blogapp_send_linkbacks"
META_RESPONSE_TYPE = "_blogapp_response_type"
META_AUTHOR_PHOTO = "_blogapp_author_photo"
# Our export's HTML bodies are final: taken as they are (no paragraphs added, no shortcodes read).
META_HTML = "_blogapp_html"
# A comment's text as its author typed it (Markdown); comment_content holds what readers saw.
META_COMMENT_SOURCE = "_blogapp_content"
# WordPress keeps where a spammed or trashed comment was before (1 or 0) under this key.
META_TRASH_STATUS = "_wp_trash_meta_status"
# The Webmention plugins keep the linking page here (the comment's author URL is the author's site).
SOURCE_META_KEYS = ("webmention_source_url", "semantic_linkbacks_source", "_blogapp_source_url")

COMMENT_STATUS = {
    "1": CommentStatus.APPROVED, "approve": CommentStatus.APPROVED, "approved": CommentStatus.APPROVED,
    "0": CommentStatus.PENDING, "hold": CommentStatus.PENDING,
    "spam": CommentStatus.SPAM, "trash": CommentStatus.TRASH, "post-trashed": CommentStatus.TRASH,
}
# comment_type -> (kind, Webmention response type). The Webmention plugins store reactions as
# their own comment types.
COMMENT_KINDS: dict[str, tuple[CommentKind, str | None]] = {
    "": (CommentKind.COMMENT, None),
    "comment": (CommentKind.COMMENT, None),
    "pingback": (CommentKind.PINGBACK, None),
    "trackback": (CommentKind.TRACKBACK, None),
    "webmention": (CommentKind.WEBMENTION, None),
    "mention": (CommentKind.WEBMENTION, "mention"),
    "reply": (CommentKind.WEBMENTION, "reply"),
    "like": (CommentKind.WEBMENTION, "like"),
    "favorite": (CommentKind.WEBMENTION, "like"),
    "repost": (CommentKind.WEBMENTION, "repost"),
    "bookmark": (CommentKind.WEBMENTION, "bookmark"),
}
RESPONSE_TYPES = {"reply", "like", "repost", "bookmark", "mention"}
# WordPress statuses that readers saw (or will, when due); every other one (draft, pending, an
# editorial plugin's "pitch" or "in-progress") comes over as a draft, never published by mistake.
PUBLIC_STATUSES = {"publish", "future"}
PRIVATE_STATUSES = {"private"}
KNOWN_DRAFT_STATUSES = {"draft", "pending", "auto-draft"}


class ImportFailed(Exception):
    """The import stopped; ``message`` is one line for people, ``summary`` what was done before."""

    def __init__(self, message: str, summary: ImportSummary):
        super().__init__(message)
        self.message, self.summary = message, summary


@dataclass
class ImportSummary:
    posts: int = 0
    pages: int = 0
    comments: int = 0
    pingbacks: int = 0
    trackbacks: int = 0
    webmentions: int = 0
    already: Counter = field(default_factory=Counter)  # posts, pages, comments here before
    skipped: Counter = field(default_factory=Counter)  # why -> how many
    unknown_shortcodes: Counter = field(default_factory=Counter)
    unknown_statuses: Counter = field(default_factory=Counter)  # posts kept as drafts
    orphans: int = 0  # replies whose parent was not in the file, made top-level
    password_protected: int = 0  # imported as private: we have no per-post passwords
    dry_run: bool = False

    @property
    def added(self) -> int:
        return self.posts + self.pages + self.comments + self.pingbacks + self.trackbacks + self.webmentions

    def as_dict(self) -> dict:
        return {
            "posts": self.posts, "pages": self.pages, "comments": self.comments, "pingbacks": self.pingbacks,
            "trackbacks": self.trackbacks, "webmentions": self.webmentions,
            "skipped": sum(self.skipped.values()), "skipped_why": dict(self.skipped),
            "already_here": dict(self.already), "unknown_shortcodes": dict(self.unknown_shortcodes),
            "unknown_statuses_made_drafts": dict(self.unknown_statuses),
            "orphans_made_top_level": self.orphans, "password_protected_made_private": self.password_protected,
            "dry_run": self.dry_run,
        }

    def counts_line(self) -> str:
        """What was added, in words: "3 posts, 1 page, 10 comments" (kinds with none left out)."""
        parts = [(self.posts, "post"), (self.pages, "page"), (self.comments, "comment"),
                 (self.pingbacks, "pingback"), (self.trackbacks, "trackback"), (self.webmentions, "webmention")]
        return ", ".join(f"{count} {word}{'' if count == 1 else 's'}" for count, word in parts if count)

    def line(self) -> str:
        """One line for people: what was (or would be) added, what was skipped and why."""
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        verb = "Would import" if self.dry_run else "Imported"
        parts = [n(self.posts, "post"), n(self.pages, "page"), n(self.comments, "comment"),
                 n(self.pingbacks, "pingback"), n(self.trackbacks, "trackback")]
        if self.webmentions:
            parts.append(n(self.webmentions, "webmention"))
        text = f"{verb} {', '.join(parts)}"
        if not self.added and self.already:
            text = "Nothing new: everything in the file is here already"
        if self.already:
            text += " (already here: " + ", ".join(
                f"{WORDS[kind]}: {count}" for kind, count in sorted(self.already.items())) + ")"
        skipped = sum(self.skipped.values())
        text += f"; skipped {skipped}"
        if skipped:
            text += " (" + "; ".join(f"{reason}: {count}" for reason, count in self.skipped.most_common()) + ")"
        if self.unknown_statuses:
            text += "; kept as drafts, their WordPress status unknown here: " + ", ".join(
                f"{status!r}: {count}" for status, count in sorted(self.unknown_statuses.items()))
        if self.orphans:
            text += f"; {n(self.orphans, 'reply')} whose parent was missing made top-level"
        if self.password_protected:
            text += f"; {n(self.password_protected, 'password-protected post')} made private"
        if self.unknown_shortcodes:
            names = ", ".join(f"[{name}]" for name in sorted(self.unknown_shortcodes))
            text += f"; {n(sum(self.unknown_shortcodes.values()), 'unknown shortcode')} left as text ({names})"
        return text + "."


WORDS = {"post": "posts", "page": "pages", "comment": "comments and linkbacks"}


def site_key(channel: Channel) -> str:
    """The old site's identity for ``ImportedItem``: its address, without a trailing slash."""
    url = (channel.base_site_url or channel.base_blog_url or channel.link or "").strip()
    parts = urlsplit(url)
    if not parts.netloc:
        return url.rstrip("/") or "unknown"
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"[:500]


@dataclass
class _Pending:
    """An item read and waiting for its batch to be written."""

    item: Item
    author_id: int | None = None
    local_id: int | None = None  # our post or page, once known
    existed: bool = False


class WxrImporter:
    """``WxrImporter(default_author=user).run(open(path, "rb"))`` -> ImportSummary.

    Needs an app and a request context at ``SITE_URL`` (permalinks are built for the old
    addresses and for the links recorded as told). ``progress(bytes_read)`` is called after each
    batch. With ``dry_run`` each batch is written and rolled back: nothing is kept.
    """

    def __init__(self, *, default_author: User | None = None, dry_run: bool = False,
                 progress: Callable[[int], None] | None = None):
        self.default_author = default_author
        self.dry_run = dry_run
        self.progress = progress
        self.summary = ImportSummary(dry_run=dry_run)
        self.site = "unknown"
        self.users = {u.username.lower(): u.id for u in db.session.scalars(select(User))}
        self.author_by_login: dict[str, int | None] = {}
        self.author_by_wp_id: dict[int, int | None] = {}
        self.unknown_authors: dict[str, str] = {}  # login -> display name
        self.terms: dict[tuple[str, str], Term] = {}
        self.term_ids: dict[tuple[str, str], int] = {}
        self.terms_here: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        self.terms_written = False
        self.attachments: dict[int, wpcontent.Attachment] = {}
        self.galleries: list[tuple[str, int, Item]] = []  # ("post"|"page", local id, item): converted at the end
        self.batch: list[_Pending] = []
        self.batch_comments = 0
        self.rows_written = self.rows_at_analyze = 0
        # The file's ids (WordPress shares one sequence among posts, pages and attachments): an id
        # seen twice is a broken or hand-edited file, and the second item is skipped.
        self.ids_seen: set[int] = set()
        self.comment_ids_seen: set[int] = set()

    # ------------------------------------------------------------------ the run

    def run(self, stream: BinaryIO) -> ImportSummary:
        reader = WxrReader(stream)
        try:
            try:
                for record in reader:
                    if isinstance(record, Item):
                        self._take_item(record)
                        if len(self.batch) >= BATCH_ITEMS or self.batch_comments >= BATCH_COMMENTS:
                            self._write_batch()
                            self._report(reader)
                    elif isinstance(record, Author):
                        self._take_author(record)
                    elif isinstance(record, Term):
                        self.terms.setdefault((record.taxonomy, record.slug or slugify(record.name)), record)
                    elif isinstance(record, Channel):
                        self.site = site_key(record)
                        if not self.author_by_login:
                            self._scan_creators(stream)
                        self._check_authors()
            except WxrError as exc:
                # Whatever was read whole before the break is kept (written below), the rest can come
                # from the complete file: a second run adds only what is new.
                kept = self._write_whatever_was_whole()
                rest = ": import the complete file to add the rest" if self.summary.added else ""
                raise ImportFailed(f"{exc}{kept}{rest}", self.summary) from None
            self._write_batch()
            self._write_terms()
            self._convert_galleries()
            self._report(reader)
            if self.dry_run:
                db.session.rollback()
            else:
                db.session.commit()
        except ImportFailed:
            db.session.rollback()
            raise
        except BaseException:
            db.session.rollback()
            raise
        return self.summary

    def _write_whatever_was_whole(self) -> str:
        """Commit the items read whole so far; say what the import kept, for the error line."""
        if self.dry_run:
            db.session.rollback()
            return ""
        try:
            self._write_batch()
            db.session.commit()
        except ImportFailed:
            db.session.rollback()
            raise
        kept = self.summary.counts_line()
        return f"; kept what was read whole before it ({kept})" if kept else "; nothing was imported"

    def _report(self, reader: WxrReader) -> None:
        if self.progress is not None:
            self.progress(reader.bytes_read)

    # ------------------------------------------------------------------ authors

    def _take_author(self, author: Author) -> None:
        user_id = self.users.get(author.login.lower())
        if user_id is None and self.default_author is not None:
            user_id = self.default_author.id
        if user_id is None:
            self.unknown_authors[author.login] = author.display_name
        self.author_by_login[author.login.lower()] = user_id
        if author.id is not None:
            self.author_by_wp_id[author.id] = user_id

    def _scan_creators(self, stream: BinaryIO) -> None:
        """A file without an author list (WXR 1.0) names its authors only in its items: read them all
        first, when the file can be read twice, so that an unknown one stops the import before it writes."""
        try:
            if not stream.seekable():
                return
            here = stream.tell()
            stream.seek(0)
            creators = scan_creators(stream)
            stream.seek(here)
        except (OSError, ValueError):
            return
        for login in sorted(creators):
            self._take_author(Author(id=None, login=login))

    def _check_authors(self) -> None:
        """Every author the file names must be a user here, or ``--default-author`` says who."""
        if self.unknown_authors:
            names = ", ".join(sorted(self.unknown_authors))
            raise ImportFailed(
                f"the file's author{'s' if len(self.unknown_authors) > 1 else ''} {names} "
                f"{'are' if len(self.unknown_authors) > 1 else 'is'} not a user here: create "
                f"{'them' if len(self.unknown_authors) > 1 else 'it'} first (flask --app blogapp create-admin LOGIN) "
                "or give --default-author USER for posts by authors not found; nothing was imported",
                self.summary,
            )

    def _author_of(self, item: Item) -> int | None:
        login = item.creator.lower()
        if not login:
            return self.default_author.id if self.default_author else None
        if login in self.author_by_login:
            return self.author_by_login[login]
        user_id = self.users.get(login, self.default_author.id if self.default_author else None)
        if user_id is None:
            kept = self._write_whatever_was_whole()
            raise ImportFailed(
                f"the author {item.creator!r} of {item.post_type} {item.post_id} is not a user here: create it "
                f"(flask --app blogapp create-admin LOGIN) or give --default-author USER, then import again{kept}",
                self.summary,
            )
        self.author_by_login[login] = user_id
        return user_id

    # ------------------------------------------------------------------ items

    def _take_item(self, item: Item) -> None:
        if item.post_type == "attachment":
            self.attachments[item.post_id] = wpcontent.Attachment(
                id=item.post_id, url=item.attachment_url or item.guid, title=html_to_text(item.title),
                caption=html_to_text(item.excerpt), parent_id=item.parent or None)
            self._skip(item, "attachments, not downloaded: their URLs stay in the posts")
            return
        if item.post_type not in ("post", "page"):
            self._skip(item, f"{item.post_type} items")
            return
        if item.status == "trash":
            self._skip(item, f"{item.post_type}s in the trash")
            return
        if item.status == "inherit":  # revisions
            self._skip(item, "revisions")
            return
        if item.post_id <= 0:
            self._skip(item, f"{item.post_type}s without an id")
            return
        if item.post_id in self.ids_seen:
            self._skip(item, f"{item.post_type}s repeated in the file (an id seen before)")
            return
        self.ids_seen.add(item.post_id)
        fresh = []
        for comment in item.comments:
            if comment.id and comment.id in self.comment_ids_seen:
                self.summary.skipped["comments repeated in the file (an id seen before)"] += 1
                continue
            self.comment_ids_seen.add(comment.id)
            fresh.append(comment)
        item.comments = fresh
        self.batch.append(_Pending(item, author_id=self._author_of(item)))
        self.batch_comments += len(item.comments)

    def _skip(self, item: Item, why: str) -> None:
        self.summary.skipped[why] += 1
        if item.comments:
            self.summary.skipped[f"comments of skipped {item.post_type} items"] += len(item.comments)

    def _write_batch(self) -> None:
        if not self.batch:
            if not self.terms_written:
                self._write_terms()
            return
        self._write_terms()
        batch, self.batch, self.batch_comments = self.batch, [], 0
        posts = [p for p in batch if p.item.post_type == "post"]
        pages = [p for p in batch if p.item.post_type == "page"]
        self._find_existing(posts, "post")
        self._find_existing(pages, "page")
        self._insert_posts([p for p in posts if not p.existed])
        self._insert_pages([p for p in pages if not p.existed])
        for pending in pages:
            if pending.item.comments:
                self.summary.skipped["comments on pages (pages here take no comments)"] += len(pending.item.comments)
        self._insert_comments(posts)
        self._keep_statistics_fresh(len(batch) + sum(len(p.item.comments) for p in posts))
        pagecache.bump(db.session)
        if self.dry_run:
            # Each batch is written and rolled back: the counts are real, and the database is never
            # held for longer than a batch (on SQLite a long write would hold up every comment).
            # A thread's replies are in its post's item, so no later batch needs these rows.
            db.session.rollback()
            self.term_ids.clear()
            self.terms_here.clear()
            self.terms_written = False
        else:
            db.session.commit()

    def _keep_statistics_fresh(self, rows: int) -> None:
        """PostgreSQL plans by its statistics, which a bulk load outruns (autovacuum analyzes a table
        a minute later): a table it thinks empty gets sequential scans, each costing more as the table
        grows. Analyze the import's tables whenever they have doubled since the last time."""
        if self.dry_run or db.session.get_bind().dialect.name != "postgresql":
            return
        self.rows_written += rows
        if self.rows_written >= 2 * self.rows_at_analyze + 1000:
            for table in ("imported_item", "comment", "post", "legacy_path", "outbound_link"):
                db.session.execute(text(f"ANALYZE {table}"))
            self.rows_at_analyze = self.rows_written

    def _find_existing(self, batch: list[_Pending], kind: str) -> None:
        """Mark what an earlier import brought (by the old site's id), or what is here already
        under the same slug and date (our own export, imported back)."""
        if not batch:
            return
        known = dict(db.session.execute(
            select(ImportedItem.source_id, getattr(ImportedItem, f"{kind}_id")).where(
                ImportedItem.site == self.site, ImportedItem.kind == kind,
                ImportedItem.source_id.in_([p.item.post_id for p in batch]))
        ).all())
        model = Post if kind == "post" else Page
        slugs = {p.item.slug[:200] for p in batch if p.item.post_id not in known and p.item.slug}
        same_slug = {}
        for chunk in _chunks(sorted(slugs), 500):
            same_slug.update({row.slug: row for row in db.session.execute(
                select(model.id, model.slug, model.published_at).where(model.slug.in_(chunk)))})
        for pending in batch:
            local = known.get(pending.item.post_id)
            same = same_slug.get(pending.item.slug[:200]) if local is None else None
            # Our own export imported back: the same post is the one with its slug and date (a page:
            # its slug). Another site's post or page of the same slug is another one.
            if same is not None and (_same_second(same.published_at, self._published_at(pending.item))
                                     if kind == "post" else _ours(pending.item)):
                local = same.id
                self._remember(kind, pending.item.post_id, local)
            if local is not None:
                pending.local_id, pending.existed = local, True
                self.summary.already[f"{kind}"] += 1

    def _remember(self, kind: str, source_id: int, local_id: int) -> None:
        db.session.execute(insert(ImportedItem), [{
            "site": self.site, "kind": kind, "source_id": source_id, f"{kind}_id": local_id, "imported_at": utcnow()}])

    @staticmethod
    def _published_at(item: Item) -> datetime | None:
        if item.status not in PUBLIC_STATUSES | PRIVATE_STATUSES:
            return None
        return item.post_date_gmt or item.pub_date or item.post_date

    def _body(self, item: Item, kind: str) -> tuple[str, str, str]:
        """(body, body_format, body_html): our own export's Markdown if it kept it, else the
        WordPress HTML as WordPress would show it."""
        markdown = item.meta.get(META_MARKDOWN)
        if markdown:
            return markdown[0], BodyFormat.MARKDOWN.value, render_post(markdown[0], BodyFormat.MARKDOWN.value)
        if item.meta.get(META_HTML):
            return item.content, BodyFormat.HTML.value, render_post(item.content, BodyFormat.HTML.value)
        if "[gallery" in item.content:
            # Galleries name attachments that may come later in the file: converted at the end.
            self.galleries.append((kind, -1, item))
        converted = wpcontent.convert_post_content(item.content, self.attachments, item.post_id)
        self.summary.unknown_shortcodes.update(converted.unknown_shortcodes)
        return converted.html, BodyFormat.HTML.value, render_post(converted.html, BodyFormat.HTML.value)

    def _insert_posts(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        slugs = self._unique_slugs(batch, Post)
        rows = []
        for pending, slug in zip(batch, slugs):
            item = pending.item
            body, body_format, body_html = self._body(item, "post")
            published_at = self._published_at(item)
            created = item.post_date_gmt or item.pub_date or item.post_date or utcnow()
            if item.password:
                status = PostStatus.PRIVATE
                self.summary.password_protected += 1
            elif item.status in PRIVATE_STATUSES:
                status = PostStatus.PRIVATE
            elif item.status in PUBLIC_STATUSES and published_at is not None:
                status = PostStatus.PUBLISHED  # publish, and future (a future date is "scheduled" here)
            else:
                status = PostStatus.DRAFT
                if item.status not in KNOWN_DRAFT_STATUSES:
                    self.summary.unknown_statuses[item.status or "(none)"] += 1
            send = item.meta.get(META_SEND_LINKBACKS, ["1"])[0] != "0"
            rows.append({
                "title": _title(item), "slug": slug, "body": body,
                "body_format": body_format, "body_html": body_html, "status": status.value,
                "search_text": searchable_text(body_html),  # (COPY on PostgreSQL runs no Python default)
                "published_at": published_at if status != PostStatus.DRAFT else None,
                "created_at": created, "updated_at": item.modified_gmt or created,
                "comments_open": item.comment_status != "closed", "pings_open": item.ping_status != "closed",
                "send_linkbacks": send, "author_id": pending.author_id,
                "excerpt": html_as_text(item.excerpt) if _ours(item) else wpcontent.texturize_text(html_as_text(item.excerpt)),
            })
        ids = _insert(Post, rows, returning=True)
        for pending, post_id, row in zip(batch, ids, rows):
            pending.local_id = post_id
            self._fix_gallery_id("post", pending.item, post_id)
        self.summary.posts += len(ids)
        _insert(ImportedItem, [
            {"site": self.site, "kind": "post", "source_id": p.item.post_id, "post_id": p.local_id,
             "imported_at": utcnow()} for p in batch])
        self._link_terms(batch)
        self._legacy_paths(batch, rows, "post")
        self._record_links_as_told(batch, rows)

    def _insert_pages(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        from ..pages import unique_page_slug

        rows = []
        for pending in batch:
            item = pending.item
            body, body_format, body_html = self._body(item, "page")
            status = PageStatus.PUBLISHED if item.status == "publish" and not item.password else PageStatus.DRAFT
            if item.status not in PUBLIC_STATUSES | PRIVATE_STATUSES | KNOWN_DRAFT_STATUSES:
                self.summary.unknown_statuses[item.status or "(none)"] += 1
            created = item.post_date_gmt or item.pub_date or item.post_date or utcnow()
            slug = unique_page_slug(item.slug or html_to_text(item.title) or "page")
            row = {
                "title": _title(item), "slug": slug, "body": body,
                "body_format": body_format, "body_html": body_html, "status": status.value,
                "menu_order": item.menu_order, "published_at": self._published_at(item),
                "created_at": created, "updated_at": item.modified_gmt or created, "author_id": pending.author_id,
            }
            # One at a time: the next page's slug must see this one's.
            pending.local_id = db.session.execute(insert(Page).values(**row).returning(Page.id)).scalar_one()
            self._fix_gallery_id("page", item, pending.local_id)
            rows.append(row)
            if item.password:
                self.summary.password_protected += 1
        self.summary.pages += len(batch)
        _insert(ImportedItem, [
            {"site": self.site, "kind": "page", "source_id": p.item.post_id, "page_id": p.local_id,
             "imported_at": utcnow()} for p in batch])
        self._legacy_paths(batch, rows, "page")

    def _fix_gallery_id(self, kind: str, item: Item, local_id: int) -> None:
        for i, (k, _, it) in enumerate(self.galleries):
            if it is item:
                self.galleries[i] = (kind, local_id, item)

    def _unique_slugs(self, batch: list[_Pending], model) -> list[str]:
        wanted = [slugify(p.item.slug and unquote(p.item.slug) or html_to_text(p.item.title)) or "post" for p in batch]
        wanted = [w[:180] for w in wanted]
        taken = set(db.session.scalars(select(model.slug).where(model.slug.in_(set(wanted)))))
        out = []
        for slug in wanted:
            base, n = slug, 2
            while slug in taken:
                slug, n = f"{base}-{n}", n + 1
                if n > 3 and slug not in taken:
                    # Past the first tries, ask the database for this one alone.
                    if db.session.scalar(select(model.id).where(model.slug == slug)) is not None:
                        taken.add(slug)
            taken.add(slug)
            out.append(slug)
        return out

    # ------------------------------------------------------------------ terms

    def _write_terms(self) -> None:
        """Create the categories (with their parents) and tags the file declares, once."""
        if self.terms_written:
            return
        self.terms_written = True
        for taxonomy, model in (("category", Category), ("post_tag", Tag)):
            declared = [t for (tax, _), t in self.terms.items() if tax == taxonomy]
            for term in declared:
                self._term_id(taxonomy, term.slug, term.name)
            if model is Category:
                for term in declared:
                    parent = self.term_ids.get(("category", term.parent_slug)) if term.parent_slug else None
                    own = self.term_ids.get(("category", term.slug))
                    if parent and own and parent != own:
                        db.session.execute(update(Category).where(Category.id == own, Category.parent_id.is_(None))
                                           .values(parent_id=parent))

    def _term_id(self, taxonomy: str, slug: str, name: str) -> int:
        model = Category if taxonomy == "category" else Tag
        name = html_to_text(name)[:120] or slug or "term"
        slug = slugify(unquote(slug or "") or name, max_length=model.slug.type.length - 10) or "term"
        key = (taxonomy, slug)
        if key in self.term_ids:
            return self.term_ids[key]
        by_slug, by_name = self._terms_here(taxonomy, model)
        found = by_slug.get(slug) or by_name.get(name.lower())
        if found is None:
            found = db.session.execute(insert(model).values(name=name, slug=slug).returning(model.id)).scalar_one()
            by_slug[slug], by_name[name.lower()] = found, found
        self.term_ids[key] = found
        return found

    def _terms_here(self, taxonomy: str, model) -> tuple[dict[str, int], dict[str, int]]:
        """The blog's terms of one taxonomy by slug and by name (read once per batch: they are few)."""
        if taxonomy not in self.terms_here:
            rows = db.session.execute(select(model.id, model.slug, model.name)).all()
            self.terms_here[taxonomy] = ({r.slug: r.id for r in rows}, {r.name.lower(): r.id for r in rows})
        return self.terms_here[taxonomy]

    def _link_terms(self, batch: list[_Pending]) -> None:
        cats, tags = [], []
        for pending in batch:
            seen = set()
            for term in pending.item.terms:
                if term.domain == "category":
                    key, target = ("category", term.slug), cats
                elif term.domain == "post_tag":
                    key, target = ("post_tag", term.slug), tags
                else:
                    continue
                term_id = self._term_id(key[0], term.slug, term.name)
                if (key[0], term_id) not in seen:
                    seen.add((key[0], term_id))
                    column = "category_id" if key[0] == "category" else "tag_id"
                    target.append({"post_id": pending.local_id, column: term_id})
        if cats:
            _insert(post_categories, cats)
        if tags:
            _insert(post_tags, tags)

    # ------------------------------------------------------------------ old addresses

    def _legacy_paths(self, batch: list[_Pending], rows: list[dict], kind: str) -> None:
        """The old site's addresses of each item (its permalink there, the old slugs) -> 301 here."""
        from ..templating import post_path

        wanted: dict[str, int] = {}
        for pending, row in zip(batch, rows):
            item = pending.item
            if kind == "post":
                here = post_path(SimpleNamespace(slug=row["slug"], published_at=row["published_at"],
                                                 created_at=row["created_at"]))
            else:
                here = f"/{row['slug']}/"
            paths = []
            link = urlsplit(item.link)
            if link.path not in ("", "/"):
                paths.append(link.path)
            guid = urlsplit(item.guid)
            if guid.path not in ("", "/") and guid.netloc == link.netloc:
                paths.append(guid.path)
            slug = item.slug
            for old in item.meta.get("_wp_old_slug", []):
                old = old.strip()
                if not old or not slug:
                    continue
                if f"/{slug}" in link.path:
                    paths.append(link.path.replace(f"/{slug}", f"/{old}", 1))
                if kind == "post":
                    paths.append(post_path(SimpleNamespace(slug=old, published_at=row["published_at"],
                                                           created_at=row["created_at"])))
            for path in paths:
                key = legacy_key(path)
                if key != legacy_key(here) and key not in wanted:
                    wanted[key] = pending.local_id
        if not wanted:
            return
        taken = set(db.session.scalars(select(LegacyPath.path).where(LegacyPath.path.in_(list(wanted)))))
        new = [{"path": path, f"{kind}_id": local_id} for path, local_id in wanted.items() if path not in taken]
        if new:
            _insert(LegacyPath, new)

    # ------------------------------------------------------------------ links already told

    def _record_links_as_told(self, batch: list[_Pending], rows: list[dict]) -> None:
        """The links of imported public posts were pinged by the old site: record them as told, so
        that neither the import nor a later edit or ``send-pings`` sends them again."""
        from ..templating import absolute_url, post_path

        now = utcnow()
        out = []
        for pending, row in zip(batch, rows):
            if row["status"] != PostStatus.PUBLISHED.value:
                continue
            source = absolute_url(post_path(SimpleNamespace(slug=row["slug"], published_at=row["published_at"],
                                                            created_at=row["created_at"])))
            if pending.item.meta.get("_pingme"):
                message = ("Imported: the old site had not sent this post's linkbacks yet when it was exported; "
                           "not sent (\"Send again\" sends it).")
            else:
                message = "Linked before the import: the old site sent its linkbacks; not sent again."
            for url in outbound_links(row["body_html"], source):
                if is_bare_home_page(url):
                    continue
                from ..outbound import target_hash

                out.append({
                    "post_id": pending.local_id, "source_url": source, "target_url": url[:2000],
                    "target_hash": target_hash(url), "linked": True, "state": OutboundState.SENT.value,
                    "protocol": IMPORTED, "sent_protocol": IMPORTED, "code": None, "generation": 0, "attempts": 0,
                    "message": message,
                    "created_at": now, "succeeded_at": row["published_at"],
                })
        if out:
            _insert(OutboundLink, out)

    # ------------------------------------------------------------------ comments

    def _insert_comments(self, posts: list[_Pending]) -> None:
        work = [(p, c) for p in posts if p.local_id is not None for c in p.item.comments]
        if not work:
            return
        # What earlier runs brought, by the old site's comment id.
        # Only a post that was here before can hold comments an earlier run brought (an item is
        # written whole or not at all); a reply's parent is in its own item, unless that came earlier.
        in_file = {c.id for _, c in work}
        wp_ids = sorted({c.id for p, c in work if p.existed} | {c.parent for _, c in work if c.parent and c.parent not in in_file})
        known: dict[int, tuple[int, int]] = {}
        for chunk in _chunks(wp_ids, 900):
            for source_id, comment_id, post_id in db.session.execute(
                select(ImportedItem.source_id, ImportedItem.comment_id, Comment.post_id)
                .join(Comment, Comment.id == ImportedItem.comment_id)
                .where(ImportedItem.site == self.site, ImportedItem.kind == "comment", ImportedItem.source_id.in_(chunk))
            ):
                known[source_id] = (comment_id, post_id)
        # Linkbacks already on posts that were here before (a pingback that came in natively, say).
        existed_ids = [p.local_id for p in posts if p.existed]
        taken_sources: set[tuple[int, str]] = set()
        same_comment: set[tuple[int, str, str]] = set()
        if existed_ids:
            for post_id, key, author, created in db.session.execute(
                select(Comment.post_id, Comment.source_key, Comment.author_name, Comment.created_at)
                .where(Comment.post_id.in_(existed_ids))
            ):
                if key:
                    taken_sources.add((post_id, key))
                same_comment.add((post_id, author, _second(created)))

        rows, wp_of_row = [], []
        for pending, c in work:
            if c.id and c.id in known:
                self.summary.already["comment"] += 1
                continue
            kind_and_type = self._kind(c)
            if kind_and_type is None:
                self.summary.skipped[f"comments of type {c.type!r}"] += 1
                continue
            kind, response_type = kind_and_type
            row = self._comment_row(pending.local_id, c, kind, response_type)
            if pending.existed and (pending.local_id, row["author_name"], _second(row["created_at"])) in same_comment:
                self.summary.already["comment"] += 1
                continue
            if row["source_key"]:
                if (pending.local_id, row["source_key"]) in taken_sources:
                    if pending.existed:
                        self.summary.already["comment"] += 1
                    else:
                        self.summary.skipped["linkbacks from a source already recorded on the post"] += 1
                    continue
                taken_sources.add((pending.local_id, row["source_key"]))
            rows.append(row)
            wp_of_row.append(c)
        if not rows:
            return
        ids = []
        for chunk in _chunks(list(range(len(rows))), 2000):
            ids += _insert(Comment, [rows[i] for i in chunk], returning=True)
        new_by_wp: dict[int, tuple[int, int]] = {}
        for c, comment_id, row in zip(wp_of_row, ids, rows):
            if c.id:
                new_by_wp[c.id] = (comment_id, row["post_id"])
        # Threads keep their shape: each reply points at its parent, wherever it was imported from.
        parents = []
        for c, comment_id, row in zip(wp_of_row, ids, rows):
            if not c.parent:
                continue
            parent = new_by_wp.get(c.parent) or known.get(c.parent)
            if parent is None or parent[1] != row["post_id"]:
                self.summary.orphans += 1
                continue
            parents.append({"id": comment_id, "parent_id": parent[0]})
        _set_parents(parents)
        mapped = [{"site": self.site, "kind": "comment", "source_id": c.id, "comment_id": comment_id,
                   "imported_at": utcnow()} for c, comment_id in zip(wp_of_row, ids) if c.id]
        for chunk in _chunks(mapped, 5000):
            _insert(ImportedItem, chunk)
        for row in rows:
            kind = row["kind"]
            if kind == CommentKind.COMMENT:
                self.summary.comments += 1
            elif kind == CommentKind.PINGBACK:
                self.summary.pingbacks += 1
            elif kind == CommentKind.TRACKBACK:
                self.summary.trackbacks += 1
            else:
                self.summary.webmentions += 1

    @staticmethod
    def _kind(c: ItemComment) -> tuple[CommentKind, str | None] | None:
        found = COMMENT_KINDS.get(c.type.lower())
        if found is not None:
            kind, response_type = found
            if kind == CommentKind.WEBMENTION and response_type is None:
                meta_type = c.meta.get(META_RESPONSE_TYPE) or c.meta.get("semantic_linkbacks_type") or ""
                response_type = meta_type if meta_type in RESPONSE_TYPES else "mention"
            return kind, response_type
        return None

    def _comment_row(self, post_id: int, c: ItemComment, kind: CommentKind, response_type: str | None) -> dict:
        created = c.date_gmt or c.date or utcnow()
        status = COMMENT_STATUS.get(c.approved.lower(), CommentStatus.PENDING)
        previous = None
        if status in (CommentStatus.SPAM, CommentStatus.TRASH):
            before = c.meta.get(META_TRASH_STATUS)
            previous = {"1": CommentStatus.APPROVED.value, "0": CommentStatus.PENDING.value}.get(before or "")
        # Links are printed in pages (and the admin's lists): only http(s) ones come over, never a
        # "javascript:" a crafted file could hold.
        author_url = safe_http_url(c.author_url)
        source_url = None
        if kind != CommentKind.COMMENT:
            source_url = safe_http_url(next((c.meta[k] for k in SOURCE_META_KEYS if c.meta.get(k)), "")) or author_url or None
        content = c.content or ""
        if kind != CommentKind.COMMENT:
            # A linkback's excerpt is text here (WordPress keeps it as HTML, entities and all).
            content, html = html_as_text(content), ""
        elif META_COMMENT_SOURCE in c.meta:  # our own export: the typed text, and the HTML readers saw
            content, html = c.meta[META_COMMENT_SOURCE], sanitize_comment_html(content)
        else:
            # WordPress shows comment text with curly quotes and dashes, then paragraphs.
            html = sanitize_comment_html(wpcontent.autop(wpcontent.texturize(content)))
        return {
            "post_id": post_id, "parent_id": None, "kind": kind.value, "status": status.value,
            "previous_status": previous, "author_name": html_to_text(c.author)[:250],
            "author_email": c.author_email[:254], "author_url": author_url[:2000],
            "source_url": source_url[:2000] if source_url else None,
            "source_key": source_key(source_url)[:2000] if source_url else None,
            "content": content, "content_html": html, "created_at": created, "updated_at": created,
            "ip": c.author_ip[:64], "user_agent": c.agent[:255],
            "user_id": self.author_by_wp_id.get(c.user_id) if c.user_id else None,
            "response_type": response_type if kind == CommentKind.WEBMENTION else None,
            "author_photo": (safe_http_url(c.meta.get(META_AUTHOR_PHOTO) or c.meta.get("avatar") or "")[:2000] or None)
            if kind == CommentKind.WEBMENTION else None,
        }

    # ------------------------------------------------------------------ galleries

    def _convert_galleries(self) -> None:
        """Galleries name attachments anywhere in the file: now that all are known, convert again."""
        for kind, local_id, item in self.galleries:
            if local_id < 0:
                continue
            converted = wpcontent.convert_post_content(item.content, self.attachments, item.post_id)
            model = Post if kind == "post" else Page
            body_html = render_post(converted.html, BodyFormat.HTML.value)
            searched = {"search_text": searchable_text(body_html)} if model is Post else {}
            db.session.execute(update(model).where(model.id == local_id, model.body_format == BodyFormat.HTML.value)
                               .values(body=converted.html, body_html=body_html, **searched))
        self.galleries.clear()


def _ours(item: Item) -> bool:
    """An item of our own export: its text is ours already, not WordPress's to render."""
    return bool(item.meta.get(META_MARKDOWN) or item.meta.get(META_HTML))


def _title(item: Item) -> str:
    """The title as a reader saw it: WordPress shows titles with curly quotes and dashes."""
    title = html_to_text(item.title)
    if not _ours(item):
        title = wpcontent.texturize_text(title)
    return title[:300] or "(no title)"


def html_as_text(value: str) -> str:
    """WordPress's HTML of a linkback's or a post's excerpt as text: tags dropped, entities decoded,
    paragraphs kept."""
    return "\n\n".join(text for text in map(html_to_text, re.split(r"\n\s*\n", value or "")) if text)


def _insert(model, rows: list[dict], *, returning: bool = False) -> list[int]:
    """Many rows at once; with ``returning``, the new ids in the order of ``rows``.

    PostgreSQL: ``COPY`` (ids drawn from the table's sequence first), as a multi-row INSERT of
    thousands of parameters costs psycopg more to prepare than the database to run. SQLite: Core
    "insertmanyvalues" (not the ORM's bulk path, which splits rows by their None values and
    splices the results: quadratic).
    """
    if not rows:
        return []
    table = getattr(model, "__table__", model)
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return _copy_rows(connection, table, rows, returning)
    if not returning:
        connection.execute(insert(table), rows)
        return []
    return list(connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())


def _copy_rows(connection, table, rows: list[dict], returning: bool) -> list[int]:
    columns = list(rows[0])
    ids: list[int] = []
    if returning:
        ids = list(connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": len(rows)}).scalars())
        columns = ["id", *columns]
    names = ", ".join(f'"{name}"' for name in columns)
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            if returning:
                for new_id, row in zip(ids, rows):
                    copy.write_row((new_id, *row.values()))
            else:
                for row in rows:
                    copy.write_row(tuple(row.values()))
    return ids


def _set_parents(pairs: list[dict]) -> None:
    """``[{"id": reply, "parent_id": parent}, ...]`` in one statement per few thousand replies."""
    if not pairs:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("UPDATE comment SET parent_id = data.parent FROM unnest(CAST(:ids AS integer[]), "
                 "CAST(:parents AS integer[])) AS data(id, parent) WHERE comment.id = data.id"),
            {"ids": [p["id"] for p in pairs], "parents": [p["parent_id"] for p in pairs]})
        return
    for chunk in _chunks(pairs, 2000):
        connection.execute(update(Comment.__table__).where(Comment.__table__.c.id == bindparam("reply"))
                           .values(parent_id=bindparam("parent")),
                           [{"reply": p["id"], "parent": p["parent_id"]} for p in chunk])


def _second(when: datetime | None):
    return when.replace(microsecond=0) if when else None


def _same_second(a: datetime | None, b: datetime | None) -> bool:
    return _second(a) == _second(b)


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def summary_json(summary: ImportSummary) -> str:
    return json.dumps(summary.as_dict(), sort_keys=False)
