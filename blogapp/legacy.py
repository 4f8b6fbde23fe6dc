"""Old addresses of imported posts and pages: ``/?p=123``, ``/?page_id=7``, the old site's
permalinks and old slugs. Readers get a 301 to the address here; a linkback naming an old
address counts for the post it meant.
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from sqlalchemy import select

from .extensions import db
from .models import ImportedItem, LegacyPath, Page, Post
from .validation import BIGINT_MAX, MAX_ID, parse_id


def legacy_key(path: str) -> str:
    """How an old address is stored and looked up: decoded, no trailing slash (but "/")."""
    path = unquote(path or "/")
    return (path.rstrip("/") or "/")[:1000]


def _as_id(value: str | None) -> int | None:
    """An id as WordPress writes one in a link: ASCII digits (not "١", "１" or "0_1")."""
    return parse_id(value or "", maximum=BIGINT_MAX - 1)


def by_query(args: Mapping[str, str]) -> Post | Page | None:
    """WordPress's plain links, ``?p=ID`` and ``?page_id=ID``: the imported post or page that had that
    id (WordPress answers either for any of its posts and pages). A blog that imported nothing
    answers our own post ids, which our export names in its guids."""
    wanted = _as_id(args.get("p"))
    if wanted is None:
        wanted = _as_id(args.get("page_id"))
    if wanted is None:
        return None
    row = db.session.execute(
        select(ImportedItem.post_id, ImportedItem.page_id)
        .where(ImportedItem.kind.in_(("post", "page")), ImportedItem.source_id == wanted)
        .order_by(ImportedItem.id.desc()).limit(1)
    ).first()
    if row is not None:
        return db.session.get(Post, row.post_id) if row.post_id is not None else db.session.get(Page, row.page_id)
    imported_any = db.session.scalar(select(ImportedItem.id).where(ImportedItem.kind.in_(("post", "page"))).limit(1))
    if imported_any is None and "p" in args and wanted <= MAX_ID:
        # (Our ids fit an integer column: a bigger one is no post of ours, and PostgreSQL would not
        # even compare it with one: "integer out of range".)
        return db.session.get(Post, wanted)
    return None


def by_path(path: str) -> Post | Page | None:
    """The post or page that had this address on the old site (decoded path, slashes optional)."""
    row = db.session.execute(
        select(LegacyPath.post_id, LegacyPath.page_id).where(LegacyPath.path == legacy_key(path))
    ).first()
    if row is None:
        return None
    if row.post_id is not None:
        return db.session.get(Post, row.post_id)
    return db.session.get(Page, row.page_id) if row.page_id is not None else None


def new_address(found: Post | Page | None) -> str | None:
    """The path here of what an old address meant, if readers may see it."""
    from flask import url_for

    from .templating import post_path

    if isinstance(found, Post) and found.is_published:
        return post_path(found)
    if isinstance(found, Page) and found.is_published:
        return url_for("blog.page", slug=found.slug)
    return None
