"""A post's discussion as readers see it: the visible comments arranged into a tree."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import NamedTuple

from markupsafe import Markup, escape

from .models import Comment, CommentStatus


class ThreadComment(NamedTuple):
    """What the post page shows of a comment: its columns of the same names, read as plain values
    (a tuple's fields are read some ten times faster than an SQLAlchemy row's, and 200 comments
    read a dozen each)."""

    id: int
    parent_id: int | None
    kind: str
    status: str
    author_name: str
    author_url: str
    author_photo: str | None
    source_url: str | None
    content: str
    content_html: str
    created_at: datetime | None
    user_id: int | None
    response_type: str | None


@dataclass(slots=True)
class ThreadNode:
    comment: Comment | ThreadComment
    depth: int
    children: list[ThreadNode] = field(default_factory=list)


def count_label(count: int) -> str:
    """The thread heading, as WordPress words it."""
    if count == 0:
        return "No Comments"
    if count == 1:
        return "One Comment"
    return f"{count} Comments"


def build_thread(comments: list[Comment] | list[ThreadComment], max_depth: int) -> list[ThreadNode]:
    """Arrange ``comments`` (oldest first) into nested nodes.

    A reply whose parent is not visible is shown at the top level, so a moderated
    parent never hides an approved reply. Replies below ``max_depth`` are shown at
    that depth, in order, rather than indented further.
    """
    max_depth = max(1, int(max_depth))
    by_id = {c.id: c for c in comments}
    children: dict[int | None, list[Comment]] = {}
    for c in comments:
        parent = c.parent_id if c.parent_id in by_id and c.parent_id != c.id else None
        children.setdefault(parent, []).append(c)

    def attach(comment: Comment, depth: int, into: list[ThreadNode], seen: set[int]) -> None:
        if comment.id in seen:  # a loop in bad data must not recurse forever
            return
        seen.add(comment.id)
        node = ThreadNode(comment, depth)
        into.append(node)
        # At the depth limit, the replies become siblings of this node instead of children.
        target, child_depth = (node.children, depth + 1) if depth < max_depth else (into, depth)
        for child in children.get(comment.id, []):
            attach(child, child_depth, target, seen)

    roots: list[ThreadNode] = []
    seen: set[int] = set()
    for comment in children.get(None, []):
        attach(comment, 1, roots, seen)
    return roots


def public_count(comments: list[Comment]) -> int:
    return sum(1 for c in comments if c.status == CommentStatus.APPROVED)


# The thread's HTML, built here rather than in templates/blog/post.html: a Jinja loop over 200
# comments (some twenty escapes, two date filters and a dozen attribute lookups each) was most
# of the post page's time. Every value is escaped with markupsafe, as Jinja's autoescape would;
# only ``content_html`` (sanitised when saved) is printed as it is.
DAY_FORMAT = "%B %-d, %Y"  # the localtime filter's; a comment's date adds " at %H:%M"
# Threads kept built (thread_html), per process: some 170 KB each for 200 comments, and their rows.
THREADS_KEPT = 32


def render_thread(roots: list[ThreadNode], *, zone: tzinfo, post_url: str, post_link: str, comments_open: bool,
                  max_depth: int) -> Markup:
    """The ``<li>`` items of the comment list (``roots`` and their replies, nested), as one string.

    Byte for byte what the template's loop printed before (``tests/test_post_render.py`` keeps a
    copy of that loop to compare with).
    """
    out: list[str] = []
    append = out.append
    post_url_e = escape(post_url)
    post_link_e = escape(post_link)
    # Names, author URLs and days repeat down a thread: each is escaped (or formatted) once.
    escaped: dict[object, str] = {}
    days: dict[tuple[int, int, int], str] = {}

    def esc(value) -> str:
        try:
            return escaped[value]
        except KeyError:
            escaped[value] = result = str(escape(value))
            return result

    def day(local: datetime) -> str:
        key = (local.year, local.month, local.day)
        try:
            return days[key]
        except KeyError:
            days[key] = label = str(escape(local.strftime(DAY_FORMAT)))
            return label

    def emit(node: ThreadNode) -> None:
        c = node.comment
        cid = c.id  # an integer: nothing to escape
        created = c.created_at
        if created is not None:  # as the isotime and localtime filters show it
            local = created.replace(tzinfo=UTC).astimezone(zone)
            iso = local.isoformat(timespec="seconds")
            date = day(local)
            date_time = f"{date} at {local.hour:02d}:{local.minute:02d}"  # "%B %-d, %Y at %H:%M"
        else:
            iso = date = date_time = ""
        kind = c.kind
        if kind == "comment":
            name = esc(c.author_name)
            pending = c.status == "pending"
            append(f'<li id="comment-{cid}" class="comment depth-{node.depth} p-comment h-cite'
                   f'{" comment-pending" if pending else ""}{" by-admin" if c.user_id else ""}">\n'
                   '  <article class="comment-body">\n'
                   '    <footer class="comment-meta">\n'
                   '      <span class="comment-author p-author h-card">')
            if c.author_url:
                append(f'<a class="u-url p-name" href="{esc(c.author_url)}" rel="external nofollow ugc">{name}</a>')
            else:
                append(f'<span class="p-name">{name}</span>')
            append('</span>\n')
            if c.user_id:
                append('<span class="badge">Author</span>')
            append(f'      <a class="u-url comment-permalink" href="{post_link_e}#comment-{cid}"><time class="dt-published"'
                   f' datetime="{iso}">{date_time}</time></a>\n'
                   '    </footer>\n')
            if pending:
                append('<p class="comment-awaiting-moderation">Your comment is awaiting moderation.</p>')
            append(f'    <div class="comment-content e-content">{c.content_html}</div>\n')
            if comments_open and c.status == "approved" and node.depth < max_depth:
                append(f'    <p class="reply"><a class="comment-reply-link" href="{post_url_e}?replytocom={cid}#respond"'
                       f' data-reply-to="{cid}" data-author="{name}" aria-label="Reply to {name}">Reply</a></p>\n')
            append('  </article>\n')
        elif kind == "webmention":
            append(f'<li id="comment-{cid}" class="linkback webmention webmention-{esc(c.response_type or "mention")}'
                   f' depth-{node.depth} p-comment h-cite">\n'
                   '  <article class="comment-body">\n'
                   '    <footer class="comment-meta">\n'
                   '      <span class="comment-author p-author h-card">')
            if c.author_photo:
                append(f'<img class="u-photo avatar" src="{esc(c.author_photo)}" alt="" width="32" height="32"'
                       ' loading="lazy" referrerpolicy="no-referrer"> ')
            append(f'<a class="u-url p-name" href="{esc(c.author_url or c.source_url)}" rel="external nofollow ugc">'
                   f'{esc(c.author_name or c.source_url)}</a>\n'
                   '      </span>\n'
                   f'      <span class="webmention-label">{"replied" if c.response_type == "reply" else "mentioned this"}'
                   '</span>\n'
                   f'      <a class="u-url linkback-date" href="{esc(c.source_url)}" rel="external nofollow ugc">'
                   f'<time class="dt-published" datetime="{iso}">{date_time}</time></a>\n'
                   '    </footer>\n')
            if c.content:
                append(f'<div class="comment-content p-content">{escape(c.content)}</div>')
            append('  </article>\n')
        else:  # pingback, trackback
            link = esc(c.source_url or c.author_url)
            append(f'<li id="comment-{cid}" class="linkback {esc(kind)} depth-{node.depth} p-comment h-cite">\n'
                   '  <div class="comment-body">\n'
                   f'    <p class="linkback-line"><span class="linkback-label">{esc(str(kind).capitalize())}:</span>'
                   f' <span class="p-author h-card"><a href="{link}" class="u-url p-name" rel="external nofollow ugc">'
                   f'{esc(c.author_name or c.source_url)}</a></span>\n'
                   f'      <a class="u-url linkback-date" href="{link}" rel="external nofollow ugc"><time class="dt-published"'
                   f' datetime="{iso}">{date}</time></a></p>\n')
            if c.content:
                append(f'<p class="linkback-excerpt p-content">{escape(c.content)}</p>')
            append('  </div>\n')
        if node.children:
            append('  <ol class="children">')
            for child in node.children:
                emit(child)
            append('</ol>\n</li>\n')
        else:
            append('</li>\n')

    for node in roots:
        emit(node)
    return Markup("".join(out))


@functools.lru_cache(maxsize=THREADS_KEPT)
def thread_html(comments: tuple[ThreadComment, ...], max_depth: int, *, zone: tzinfo, post_url: str, post_link: str,
                comments_open: bool) -> Markup:
    """The thread of ``comments`` as render_thread prints it, kept for the next view of the same thread.

    The key is everything the HTML is made of: every shown column of every comment (an edit, a
    moderation, a new reply or a held comment shown to its author makes another key), the depth
    limit, the zone, the post's address and whether it takes replies; the code is the process's
    own. So a page whose whole-page cache entry went stale because something else on the site
    changed prints an unchanged thread without building it again (``tests/test_post_render.py``).
    """
    return render_thread(build_thread(list(comments), max_depth), zone=zone, post_url=post_url, post_link=post_link,
                         comments_open=comments_open, max_depth=max_depth)
