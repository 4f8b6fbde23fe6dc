"""Pages of the readers' listings (the index, categories, tags, archives), newest first.

A listing is ordered by ``(published_at, id)``, newest first. A page asked for by its number
alone (``/page/N/``) is read with OFFSET, which walks and drops every post before it: fine for
the first pages and for the rare deep link. The "Older posts" and "Newer posts" links carry a
cursor instead, the place of the post at the edge of the page they leave (``?after=`` the last
one shown, ``?before=`` the first), and the page they lead to is read from there: a seek on the
index ``(status, published_at, id)``, then LIMIT. Page 5,000 of 100,000 posts costs what page 2 costs.

A page read from a cursor shows the posts just after (or before) it, even if posts were
published or removed since the link was rendered: a reader paging through sees no post twice
and, going older, skips none (the Newer link back to page 1 reads the newest posts, whatever
came out meanwhile). Its number, from the URL, is only what "Page N of M" and the next links say;
the same posts read by OFFSET may by then be on another page.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_

from ..extensions import db
from ..models import Post
from ..validation import MAX_ID

# 20261101T100000.123456Z-1234: published_at (naive UTC, microseconds only when there are
# some), then the post's id. ASCII digits only, and one spelling per place (see parse_cursor).
CURSOR = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})(?:\.([0-9]{6}))?Z-([1-9][0-9]{0,9})",
                    re.ASCII)


def cursor_of(post: Post) -> str:
    """The place of ``post`` in a listing, for a URL."""
    return cursor_at(post.published_at, post.id)


def cursor_at(when: datetime, post_id: int) -> str:
    """The cursor of the post published at ``when`` (naive UTC) with id ``post_id``."""
    text = f"{when.year:04d}{when.month:02d}{when.day:02d}T{when.hour:02d}{when.minute:02d}{when.second:02d}"
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return f"{text}Z-{post_id}"


def parse_cursor(text: str) -> tuple[datetime, int] | None:
    """The ``(published_at, id)`` a cursor from ``cursor_of`` names; None for anything else.

    Only the spelling ``cursor_of`` gives is taken (``.000000`` or a leading zero is refused), so
    one place has one URL, and one cached page.
    """
    match = CURSOR.fullmatch(text)
    if match is None:
        return None
    *parts, micro, post_id = match.groups()
    try:
        when = datetime(*(int(p) for p in parts), int(micro or 0))
    except ValueError:  # 20261301T..., 20260230T...
        return None
    if int(post_id) > MAX_ID or cursor_at(when, int(post_id)) != text:
        return None
    return when, int(post_id)


@dataclass
class ListingPage:
    """One page of a listing and what its navigation needs."""

    items: list[Post]
    number: int
    pages: int  # for "Page N of M"
    has_older: bool
    has_newer: bool


def cursor_from(args) -> tuple[str, tuple[datetime, int]] | None:
    """``("after" | "before", place)`` from a request's query arguments, or None.

    None, and so a page by OFFSET, for no cursor, a malformed one, both, or one given twice.
    """
    given = [(name, args.getlist(name)) for name in ("after", "before") if name in args]
    if len(given) != 1 or len(given[0][1]) != 1:
        return None
    name, (text,) = given[0]
    place = parse_cursor(text)
    return (name, place) if place else None


def _older_than(when: datetime, post_id: int):
    # "(published_at, id) < (when, post_id)". Written so: published_at <= when is a range on the
    # index both SQLite and PostgreSQL seek on, and the OR only drops the ties that are not older.
    return and_(Post.published_at <= when, or_(Post.published_at < when, Post.id < post_id))


def _newer_than(when: datetime, post_id: int):
    return and_(Post.published_at >= when, or_(Post.published_at > when, Post.id > post_id))


def read_page(stmt: Select, number: int, per_page: int, total: int, cursor=None) -> ListingPage:
    """Page ``number`` of the listing ``stmt`` (ordered newest first), of ``total`` posts.

    With ``cursor`` (from ``cursor_from``) and a number above 1, the posts after or before the
    cursor; else by OFFSET. Page 1 is always the newest posts.
    """
    pages = math.ceil(total / per_page) if total else 0
    if cursor is None or number == 1:
        items = list(db.session.scalars(stmt.limit(per_page).offset((number - 1) * per_page)))
        return ListingPage(items, number, pages, has_older=number < pages, has_newer=number > 1)
    direction, (when, post_id) = cursor
    # One row more than the page tells whether there are more posts that way.
    if direction == "after":
        rows = list(db.session.scalars(stmt.where(_older_than(when, post_id)).limit(per_page + 1)))
        items, has_older = rows[:per_page], len(rows) > per_page
        has_newer = True  # the post the cursor names (a made-up cursor's link may find none: 404)
    else:
        ascending = stmt.order_by(None).order_by(Post.published_at, Post.id)
        rows = list(db.session.scalars(ascending.where(_newer_than(when, post_id)).limit(per_page + 1)))
        items, has_newer = rows[:per_page][::-1], len(rows) > per_page
        has_older = True  # likewise
    # The count may be behind the reader's path (posts published or removed since): never "Page 5 of 4".
    return ListingPage(items, number, max(pages, number + has_older), has_older, has_newer)
