"""Creating and changing posts, shared by the admin pages, the CLI and the demo seed."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from . import outbound
from .extensions import db
from .models import BodyFormat, Category, Post, PostStatus, Tag, Tombstone, utcnow
from .text import render_post, slugify


class PostError(ValueError):
    """A post could not be saved as asked; the message says why, for people."""


def unique_slug(wanted: str, post_id: int | None = None) -> str:
    base = slugify(wanted) or "post"
    slug, n = base, 2
    while True:
        other = db.session.scalar(select(Post.id).where(Post.slug == slug))
        if other is None or other == post_id:
            return slug
        slug, n = f"{base}-{n}", n + 1


def _get_or_create(model, name: str):
    name = " ".join(name.split())
    obj = db.session.scalar(select(model).where(model.name == name))
    if obj is None:
        # A slug can be longer than its name ("ﬁ" gives "fi"): cut it to the column, with room for "-N".
        slug = slugify(name, max_length=model.slug.type.length - 10) or "term"
        base, n = slug, 2
        while db.session.scalar(select(model.id).where(model.slug == slug)) is not None:
            slug, n = f"{base}-{n}", n + 1
        obj = model(name=name, slug=slug)
        db.session.add(obj)
        db.session.flush()
    return obj


def split_terms(value: str) -> list[str]:
    """Comma-separated names, trimmed, blanks and repeats dropped, order kept."""
    seen: dict[str, None] = {}
    for part in (value or "").split(","):
        name = " ".join(part.split())
        if name and name.lower() not in {s.lower() for s in seen}:
            seen[name] = None
    return list(seen)


def save_post(
    post: Post | None,
    *,
    title: str,
    body: str,
    slug: str = "",
    categories: list[str] = (),
    tags: list[str] = (),
    publish: bool = False,
    published_at: datetime | None = None,
    comments_open: bool = True,
    pings_open: bool = True,
    send_linkbacks: bool | None = None,
    author=None,
    body_format: str | None = None,
    private: bool = False,
    excerpt: str | None = None,
) -> Post:
    """Create (``post`` None) or update a post; the caller commits, then calls ``outbound.dispatch()``.

    Publishing without a date publishes now; a future date schedules it. A published
    post keeps its date (and so its permalink) unless a new date is given. The pages the
    post links to are planned for linkbacks (``blogapp.outbound``); ``send_linkbacks``
    None keeps the post's switch as it is. ``body_format`` None keeps the post's format
    (Markdown for a new post). ``private``: readable by admins only, never listed or pinged.
    ``excerpt`` None keeps the post's hand-written summary.
    """
    title = " ".join((title or "").split())
    if not title:
        raise PostError("A post needs a title.")
    if post is not None and post.trashed_at is not None:
        raise PostError("This post is in the Trash: restore it first.")
    was_public = post is not None and post.is_published
    before = (post.title, post.body, post.status) if post is not None else None
    # No autoflush: the half-built post must not be written while slugs and terms are looked up.
    with db.session.no_autoflush:
        if post is None:
            post = Post(author=author, created_at=utcnow())
            db.session.add(post)
        if slug or not post.slug:
            post.slug = unique_slug(slug or title, post.id)
        post.title = title
        if body_format is not None or post.body_format is None:
            post.body_format = body_format or BodyFormat.MARKDOWN.value
        post.body = body or ""
        if excerpt is not None:
            post.excerpt = excerpt.strip()
        post.body_html = render_post(post.body, post.body_format)
        post.categories = [_get_or_create(Category, n) for n in categories]
        post.tags = [_get_or_create(Tag, n) for n in tags]
        post.comments_open = comments_open
        post.pings_open = pings_open
        if send_linkbacks is not None:
            post.send_linkbacks = send_linkbacks
        if private:
            post.status = PostStatus.PRIVATE.value
            post.published_at = published_at or post.published_at or utcnow()
        elif publish:
            post.status = PostStatus.PUBLISHED.value
            post.published_at = published_at or post.published_at or utcnow()
        else:
            post.status = PostStatus.DRAFT.value
            post.published_at = published_at
    if was_public and not post.is_published:
        _bury(post)
    elif post.is_published:
        db.session.execute(delete(Tombstone).where(Tombstone.slug == post.slug))
    db.session.flush()
    changed = before is None or before != (post.title, post.body, post.status) or (post.is_published and not was_public)
    outbound.plan_after_save(post, was_public=was_public, changed=changed)
    db.session.flush()
    return post


def _bury(post: Post) -> None:
    """Remember that readers knew this address, so it answers 410 Gone rather than 404."""
    stone = db.session.scalar(select(Tombstone).where(Tombstone.slug == post.slug)) or Tombstone(slug=post.slug)
    stone.title, stone.removed_at = post.title, utcnow()
    db.session.add(stone)


def trash_post(post: Post) -> None:
    """WordPress's Trash: the post leaves readers, listings and feeds (a public one's address
    answers 410, as a deleted one's) and keeps its comments, to be restored (``restore_post``) or
    deleted for good (``remove_post``). It becomes a draft that keeps its date, so that restored
    and published again it is at its old address. The caller commits, then calls
    ``outbound.dispatch()`` (the pages it had told hear it is gone)."""
    if post.trashed_at is not None:
        return
    was_public = post.is_published
    post.status = PostStatus.DRAFT.value
    post.trashed_at = utcnow()
    if was_public:
        _bury(post)
    db.session.flush()
    outbound.plan_after_save(post, was_public=was_public, changed=False)


def restore_post(post: Post) -> None:
    """Out of the Trash, as a draft (as WordPress does since 5.6: a click republishes nothing)."""
    post.trashed_at = None


def empty_trash(days: int) -> int:
    """Delete for good the posts in the Trash for more than ``days`` days (0: none), as WordPress
    does; each in its own commit, so that one another process deleted at the same moment costs
    only itself. Returns how many this call deleted."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    deleted = 0
    for post_id in db.session.scalars(select(Post.id).where(Post.trashed_at < cutoff).order_by(Post.id)).all():
        post = db.session.get(Post, post_id)
        if post is None:
            continue
        try:
            remove_post(post)
            db.session.commit()
            deleted += 1
        except SQLAlchemyError:
            db.session.rollback()
    if deleted:
        outbound.dispatch()
    return deleted


def remove_post(post: Post) -> None:
    """Delete a post and its thread; a post readers could see leaves a tombstone. The caller commits."""
    outbound.plan_removal(post)
    if post.is_published:
        _bury(post)
    db.session.delete(post)
