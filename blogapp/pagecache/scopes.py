"""The parts of what readers see, and which change touches which part: declared here, once.

A cached page records the parts it showed (``blogapp.pagecache.views.depends_on``); a change
bumps the parts it touches (``blogapp.pagecache.tracking``). A page is current while none of its
parts has moved, so a comment on one post leaves every other post's page cached.

- ``site``: what every page shows: settings, pages (the menu), categories, tags, authors'
  names. A change here makes every page stale.
- ``posts``: which posts are out, in what order, under which terms, with which titles and
  addresses: the listings' membership, the sidebar, a post's neighbours.
- ``post:<id>``: one post's own content (its body, excerpt, switches, author...).
- ``thread:<id>``: one post's approved comments and linkbacks (its thread, its counts).
- ``any-post``: any post's own content; ``any-thread``: any post's thread. For the pages that
  show something of every post (the sitemap's dates, the site's comments feed), so that they
  depend on two parts, not on one per post.
"""
from __future__ import annotations

from itertools import chain

from sqlalchemy import inspect

from ..models import Category, Comment, CommentStatus, Page, Post, SiteSetting, Tag, User

SITE = "site"
POSTS = "posts"
ANY_POST = "any-post"
ANY_THREAD = "any-thread"
# Every cached page shows the site and the sidebar (the posts): it depends on both.
EVERY_PAGE = (SITE, POSTS)


def post_scope(post_id: int) -> str:
    return f"post:{post_id}"


def thread_scope(post_id: int) -> str:
    return f"thread:{post_id}"


# A post's columns that lists show (titles, addresses, order, terms): changing one moves ``posts``.
_LISTED = ("title", "slug", "status", "published_at", "categories", "tags")


def _changed(obj, names) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _post(post: Post, *, new: bool, deleted: bool) -> set[str]:
    touched = {post_scope(post.id), ANY_POST}
    if new or deleted or _changed(post, _LISTED):
        touched.add(POSTS)
    return touched


def _comment(comment: Comment, *, new: bool, deleted: bool) -> set[str]:
    """Only a comment readers could see, before or after the change (held, spam, claims: none)."""
    state = inspect(comment)
    status = state.attrs.status.history
    if CommentStatus.APPROVED not in chain(status.added, status.unchanged, status.deleted, [comment.status]):
        return set()
    moved = state.attrs.post_id.history
    post_ids = {pid for pid in chain(moved.added, moved.unchanged, moved.deleted, [comment.post_id]) if pid is not None}
    return {*map(thread_scope, post_ids), ANY_THREAD}


def _everything(obj, *, new: bool, deleted: bool) -> set[str]:
    return {SITE}


# What each model's change makes stale. A model not listed is never shown on a cached page
# (a Tombstone's 410 page, like every answer but a 200, is never cached).
BY_MODEL = {
    Post: _post,
    Comment: _comment,
    Page: _everything,
    Category: _everything,
    Tag: _everything,
    SiteSetting: _everything,
    User: _everything,
}

# ``update()``/``delete()`` statements say only their table: the coarse answer for each.
BY_TABLE = {
    "post": {SITE},
    "comment": {SITE},
    "post_categories": {POSTS},
    "post_tags": {POSTS},
    **{table: {SITE} for table in ("page", "category", "tag", "site_setting", "user")},
}


def touched_by(obj, *, new: bool = False, deleted: bool = False) -> set[str]:
    """The parts of what readers see that a change of ``obj`` (about to be flushed) touches."""
    rule = BY_MODEL.get(type(obj))
    return rule(obj, new=new, deleted=deleted) if rule else set()
