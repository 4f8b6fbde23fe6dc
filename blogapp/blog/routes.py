from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from flask import abort, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user
from wtforms.validators import Optional
from markupsafe import Markup
from sqlalchemy import and_, extract, func, or_, select
from sqlalchemy.orm import joinedload, load_only, selectinload
from werkzeug.routing import BaseConverter

from .. import legacy, notify, search
from ..extensions import csrf, db, limiter
from ..linkback.webmention import REACTIONS as WEBMENTION_REACTIONS  # shown compactly, with their labels
from ..models import Category, Comment, CommentKind, CommentStatus, Page, Post, PostStatus, Tag, Tombstone, utcnow
from ..moderation import Submission, apply_discussion_rules, initial_status
from ..validation import parse_id
from ..pages import RESERVED_SLUGS
from ..pagecache import ANY_POST, POSTS, SITE, cached_page, depends_on, fragment, post_scope, thread_scope, turns_at
from ..templating import absolute_url, fixed_url, post_path, site_settings, site_zone
from ..text import excerpt, render_comment
from ..threads import ThreadComment, count_label, public_count, thread_html
from . import bp
from .forms import CommentForm, sent_from_this_site
from .listing import cursor_from, cursor_of, read_page

# What the thread shows of each comment (blogapp.threads.ThreadComment).
THREAD_COLUMNS = tuple(getattr(Comment, name) for name in ThreadComment._fields)

# How many of a visitor's own held comments the session remembers, to show them "awaiting moderation".
HELD_IN_SESSION = 20


def _listing():
    return (
        select(Post)
        .where(Post.visible())
        .options(joinedload(Post.author), selectinload(Post.categories), selectinload(Post.tags))
        .order_by(Post.published_at.desc(), Post.id.desc())
    )


def _render_list(stmt, page: int, *, heading: str | None, endpoint: str, **endpoint_args):
    if page < 1:  # /page/0/: there is no such page (and a negative OFFSET is an error on PostgreSQL)
        abort(404)
    per_page = int(site_settings()["POSTS_PER_PAGE"])
    # "Page N of M" needs the total; counting a big blog's posts on every view is what hurts, so
    # the count is kept per listing until the post list changes.
    listing = ":".join([endpoint, *(f"{k}={v}" for k, v in sorted(endpoint_args.items()))])
    total = fragment(
        "count:" + listing, (SITE, POSTS),
        lambda: db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())),
    )
    # The "Older posts" and "Newer posts" links carry a cursor, so that paging on costs the same at
    # any depth, and shows no post twice when one is published meanwhile (blogapp.blog.listing).
    shown = read_page(stmt, page, per_page, total, cursor_from(request.args))
    if page > 1 and not shown.items:
        abort(404)
    # Each post shown, and its comment count.
    depends_on(*(scope(p.id) for p in shown.items for scope in (post_scope, thread_scope)))

    def page_url(n: int, **cursor) -> str:
        return url_for(endpoint, page=n, **endpoint_args, **cursor) if n > 1 else url_for(endpoint, **endpoint_args)

    older_url = page_url(page + 1, after=cursor_of(shown.items[-1])) if shown.has_older and shown.items else None
    newer_url = None
    if shown.has_newer:
        newer_url = page_url(page - 1, before=cursor_of(shown.items[0])) if page > 2 else page_url(1)
    return render_template(
        "blog/list.html",
        posts=shown.items,
        pagination=shown,
        heading=heading,
        comment_counts=_comment_counts([p.id for p in shown.items]),
        older_url=older_url,
        newer_url=newer_url,
        # One address per page for search engines: /page/N/, without a cursor.
        canonical_url=absolute_url(page_url(page)),
    )


def _comment_counts(post_ids: list[int]) -> dict[int, int]:
    if not post_ids:
        return {}
    rows = db.session.execute(
        select(Comment.post_id, func.count(Comment.id))
        .where(Comment.post_id.in_(post_ids), Comment.status == CommentStatus.APPROVED.value)
        .group_by(Comment.post_id)
    )
    return dict(rows.all())


@bp.route("/")
@bp.route("/page/<int:page>/")
def index(page: int = 1):
    query = request.args.get("s", "")
    if query.strip():  # WordPress's search address: /?s=words (an empty or blank s: the home page)
        return _cached_search(query, page)  # (a NUL in it: 400 before, as in any address: errors.py)
    return _home(page)


@cached_page
def _home(page: int):
    if page == 1 and ("p" in request.args or "page_id" in request.args):
        # WordPress's plain links (an imported site's, or our export's guids): to the address here.
        target = legacy.new_address(legacy.by_query(request.args))
        if target is None:
            abort(404)
        return redirect(target, 301)
    return _render_list(_listing(), page, heading=None, endpoint="blog.index")


class SearchPage(NamedTuple):
    number: int
    pages: int


def _search(query: str, page: int):
    """Search results for ``query`` (``/?s=``, ``/page/N/?s=`` or WordPress's ``?s=&paged=N``), best first."""
    if page == 1 and "paged" in request.args:
        page = parse_id(request.args["paged"]) or 0
    if page < 1:
        abort(404)
    per_page = int(site_settings()["POSTS_PER_PAGE"])
    found = search.find(search.terms(query), offset=(page - 1) * per_page, limit=per_page, now=utcnow())
    pages = max(1, -(-found.total // per_page))
    if page > pages:
        abort(404)
    hits = {hit.post_id: hit for hit in found.hits}
    by_id = {post.id: post for post in db.session.scalars(
        select(Post).where(Post.id.in_(hits))
        .options(joinedload(Post.author), selectinload(Post.categories), selectinload(Post.tags)))}
    posts = [by_id[post_id] for post_id in hits if post_id in by_id]
    # Any post's text (any-post), the post list (posts, every page's), and each post's count.
    depends_on(ANY_POST, *(thread_scope(p.id) for p in posts))

    def page_url(n: int) -> str:
        return url_for("blog.index", page=n, s=query) if n > 1 else url_for("blog.index", s=query)

    return render_template(
        "blog/list.html",
        posts=posts,
        hits=hits,
        search_query=query,
        pagination=SearchPage(page, pages),
        heading=f"Search results for: {query}",
        comment_counts=_comment_counts([p.id for p in posts]),
        older_url=page_url(page + 1) if page < pages else None,
        newer_url=page_url(page - 1) if page > 1 else None,
        canonical_url=absolute_url(page_url(page)),
    )


_cached_search = cached_page(_search)


@bp.route("/category/<slug>/")
@bp.route("/category/<slug>/page/<int:page>/")
@cached_page
def category(slug: str, page: int = 1):
    cat = db.first_or_404(select(Category).where(Category.slug == slug))
    # A category's archive holds its subcategories' posts too, as in WordPress.
    stmt = _listing().where(Post.categories.any(Category.id.in_(_with_descendants(cat.id))))
    return _render_list(stmt, page, heading=f"Category: {cat.name}", endpoint="blog.category", slug=slug)


@bp.route("/tag/<slug>/")
@bp.route("/tag/<slug>/page/<int:page>/")
@cached_page
def tag(slug: str, page: int = 1):
    found = db.first_or_404(select(Tag).where(Tag.slug == slug))
    stmt = _listing().where(Post.tags.any(Tag.id == found.id))
    return _render_list(stmt, page, heading=f"Tag: {found.name}", endpoint="blog.tag", slug=slug)


def _with_descendants(category_id: int) -> list[int]:
    """The category and every category nested under it (categories are few: one query)."""
    children: dict[int | None, list[int]] = {}
    for cid, parent in db.session.execute(select(Category.id, Category.parent_id)):
        children.setdefault(parent, []).append(cid)
    found, todo = [], [category_id]
    while todo:
        cid = todo.pop()
        if cid not in found:
            found.append(cid)
            todo.extend(children.get(cid, []))
    return found


def _utc_bounds(year: int, month: int | None) -> tuple[datetime, datetime]:
    """The archive period in the site's zone, as naive UTC bounds [start, end)."""
    zone = site_zone()
    if month is None:
        start, end = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    else:
        start = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return (start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None))


@bp.route("/<int:year>/")
@bp.route("/<int:year>/page/<int:page>/")
@cached_page
def year_archive(year: int, page: int = 1):
    if not 1900 <= year <= 9998:
        abort(404)
    start, end = _utc_bounds(year, None)
    stmt = _listing().where(Post.published_at >= start, Post.published_at < end)
    return _render_list(stmt, page, heading=f"Archive: {year}", endpoint="blog.year_archive", year=year)


@bp.route("/<int:year>/<int(fixed_digits=2):month>/")
@bp.route("/<int:year>/<int(fixed_digits=2):month>/page/<int:page>/")
@cached_page
def month_archive(year: int, month: int, page: int = 1):
    if not (1900 <= year <= 9998 and 1 <= month <= 12):
        abort(404)
    start, end = _utc_bounds(year, month)
    stmt = _listing().where(Post.published_at >= start, Post.published_at < end)
    label = datetime(year, month, 1).strftime("%B %Y")
    return _render_list(
        stmt, page, heading=f"Archive: {label}", endpoint="blog.month_archive", year=year, month=month
    )


def load_post(slug: str) -> Post | None:
    """The post readers may see under ``slug``; drafts and scheduled posts only for admins."""
    # One query: a post has a handful of terms, so joining both collections costs less than two more selects.
    post = db.session.scalars(
        select(Post)
        .where(Post.slug == slug)
        .options(joinedload(Post.author), joinedload(Post.categories), joinedload(Post.tags))
    ).unique().first()
    if post is None or not (post.is_published or current_user.is_authenticated):
        return None
    return post


class PostShown(NamedTuple):
    """What a post page shows of its post, as plain values: kept between views (``shown_post``).

    Whether it is out, and open to comments, is asked of the clock on each view, as ``Post`` asks it."""

    id: int
    title: str
    status: str
    published_at: datetime | None
    created_at: datetime
    comments_open: bool
    pings_open: bool
    path: str  # its permalink's path
    link: str  # its permalink
    comment_url: str  # where its comment form posts
    description: str  # the body as plain text, cut as the page's description shows it
    entry_html: str  # its own markup: the article's start, title, byline, body and terms

    is_published = Post.is_published
    is_scheduled = Post.is_scheduled
    closes_at = Post.closes_at
    _within_age = Post._within_age
    accepts_comments = Post.accepts_comments


class _NoSuchPost(Exception):
    """Raised out of a fragment's computation, so that a miss is not kept (any address may be asked for)."""


def shown_post(slug: str) -> PostShown | None:
    """``load_post(slug)`` as the post page shows it, without a query while nothing it shows has changed."""
    try:
        # Which post has the slug changes with the post list (a slug, a status, a date: a listed
        # column), or with a statement over the post table (the site).
        post_id = fragment(f"post-id:{slug}", (SITE, POSTS), lambda: _read_post_id(slug))
        shown = shown_post_by_id(post_id)
    except _NoSuchPost:
        return None
    if not (shown.is_published or current_user.is_authenticated):
        return None
    return shown


def _read_post_id(slug: str) -> int:
    post_id = db.session.scalar(select(Post.id).where(Post.slug == slug))
    if post_id is None:
        raise _NoSuchPost(slug)
    return post_id


def shown_post_by_id(post_id: int) -> PostShown:
    """The post as its page shows it; raises ``_NoSuchPost`` if it is gone.

    Kept until the post changes (its body, switches, author, terms), the post list does (its
    terms may be changed by a statement over them alone) or the site does (its author's name,
    its terms' names); what else its markup is made of (the zone, the addresses) names it."""
    name = (f"post:{post_id}:{site_zone().key}:{request.script_root}:{current_app.config['SITE_URL']}")
    return fragment(name, (SITE, POSTS, post_scope(post_id)), lambda: _read_post_shown(post_id))


def _read_post_shown(post_id: int) -> PostShown:
    post = db.session.scalars(
        select(Post)
        .where(Post.id == post_id)
        .options(joinedload(Post.author), joinedload(Post.categories), joinedload(Post.tags))
    ).unique().first()
    if post is None:
        raise _NoSuchPost(post_id)
    path = post_path(post)
    # The meta description: the start of the text, list items and paragraphs kept apart (as the
    # OpenGraph one), cut between words.
    description = excerpt(post.body_html, 160)
    return PostShown(
        id=post.id, title=post.title, status=post.status, published_at=post.published_at,
        created_at=post.created_at, comments_open=post.comments_open, pings_open=post.pings_open,
        path=path, link=absolute_url(path), comment_url=url_for("blog.post_comment", post_id=post.id),
        description=description, entry_html=str(render_template("blog/_post_entry.html", post=post)),
    )


@bp.route("/<int:year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/")
@cached_page
def post(year: int, month: int, day: int, slug: str):
    found = shown_post(slug)
    if found is None:
        return _gone_or_404(slug)
    if request.script_root + request.path != found.path:  # (the path carries the script root, as url_for builds it)
        # Old or mistyped dates lead to the one stable address.
        return redirect(found.path, 301)
    depends_on(post_scope(found.id), thread_scope(found.id))
    reply_to = request.args.get("replytocom", type=int)
    if not reply_to:
        return render_post_page(found, None)  # a blank form: its fields are kept rendered
    form = CommentForm()
    form.parent_id.data = str(reply_to)
    return render_post_page(found, form)


def _gone_or_404(slug: str):
    """A post that was deleted or unpublished answers 410 Gone with a short tombstone page.

    A post made private is still there, for admins only: to anyone else it is not found, and
    its title is not shown.
    """
    stone = db.session.scalar(select(Tombstone).where(Tombstone.slug == slug))
    if stone is None:
        abort(404)
    if db.session.scalar(select(Post.id).where(Post.slug == slug, Post.status == PostStatus.PRIVATE.value)) is not None:
        abort(404)
    return render_template("blog/gone.html", stone=stone), 410


class PageSlugConverter(BaseConverter):
    """A page's slug in ``/<slug>/``: one path segment without dots, never a reserved word or a number.

    Routing alone tells ``/feed/``, ``/2026/`` or ``/page/2/`` from a page, whatever order the
    rules are tried in; ``/webmention`` asked with GET stays a 405 rather than a redirect to
    ``/webmention/``, and ``/robots.txt`` or ``/old-post.html`` a plain 404 (no redirect to an
    address with a slash added), so the 404 path sees the address as it was asked for.
    """

    # (Werkzeug matches the segment with the rule's trailing slash: the word ends at "/" or the end.)
    regex = r"(?!(?:[0-9]+|" + "|".join(sorted(map(re.escape, RESERVED_SLUGS))) + r")(?:/|\Z))[^/.]+"


# The converter must be known before the blueprint's rules are added to the app's URL map.
bp.record_once(lambda state: state.app.url_map.converters.setdefault("page_slug", PageSlugConverter))


def load_page(slug: str) -> Page | None:
    """The page readers may see under ``slug``; drafts only for admins."""
    found = db.session.scalar(select(Page).where(Page.slug == slug))
    if found is None or not (found.is_published or current_user.is_authenticated):
        return None
    return found


@bp.route("/<page_slug:slug>/")
@cached_page
def page(slug: str):
    found = load_page(slug)
    if found is None:
        abort(404)
    return render_template("blog/page.html", page=found, page_link=absolute_url(url_for("blog.page", slug=found.slug)))


class ThreadShown(NamedTuple):
    """What a post page shows of its thread: the comments' markup, the count, the reactions."""

    html: str
    count_label: str
    reactions: list[tuple[str, list[ThreadComment]]]


def _read_thread(post: PostShown, held: list[int], max_depth: int, **shown) -> tuple[ThreadShown, dict[int, ThreadComment]]:
    """The thread as the page shows it, and its comments by id (a reply's parent)."""
    visible = Comment.status == CommentStatus.APPROVED.value
    if held:
        visible = or_(visible, and_(Comment.id.in_(held), Comment.status == CommentStatus.PENDING.value))
    # Plain rows, not ORM objects: a page of 200 comments only reads them, and building 200
    # tracked instances was a third of its time.
    rows = db.session.execute(
        select(*THREAD_COLUMNS).where(Comment.post_id == post.id, visible).order_by(Comment.created_at, Comment.id)
    )
    # Webmention likes, reposts and bookmarks are shown as a compact row of faces, not as comments.
    reactions: dict[str, list[ThreadComment]] = {}
    comments = []
    for c in map(ThreadComment._make, rows):
        if c.kind == CommentKind.WEBMENTION and c.response_type in WEBMENTION_REACTIONS:
            reactions.setdefault(c.response_type, []).append(c)
        else:
            comments.append(c)
    # The comments' markup (blogapp.threads): built in Python, and kept while none of it changes.
    html = thread_html(tuple(comments), max_depth, **shown)
    return (ThreadShown(str(html), count_label(public_count(comments)),
                        [(kind, reactions[kind]) for kind in WEBMENTION_REACTIONS if kind in reactions]),
            {c.id: c for c in comments})


def render_post_page(post: PostShown, form: CommentForm | None, status: int = 200, form_error: str | None = None):
    """The post page; ``form`` None: a blank comment form (a reader's first look), whose fields are kept."""
    settings = site_settings()
    held = [int(i) for i in session.get("held_comments", [])]
    parent_id = parse_id(form.parent_id.data) if form is not None else None
    newer, older = _neighbours(post)
    post_url, post_link = post.path, post.link
    max_depth = int(settings["COMMENT_THREAD_DEPTH"])
    comments_open = post.accepts_comments(settings["CLOSE_COMMENTS_AFTER_DAYS"])
    if post.comments_open and (closes := post.closes_at(settings["CLOSE_COMMENTS_AFTER_DAYS"])) is not None:
        turns_at(closes)  # the form and the reply links go then, with nothing written
    zone = site_zone()
    shown = dict(zone=zone, post_url=post_url, post_link=post_link, comments_open=comments_open)
    if held or parent_id:  # someone's own view (their held comments), or a reply's form: read afresh
        thread, by_id = _read_thread(post, held, max_depth, **shown)
    else:
        # Everyone else's view of the thread is kept until the post or its thread changes (or the
        # site: settings, statements over many comments); what else it is made of (the depth
        # limit, whether it takes replies, the zone, the address) names it.
        name = f"thread:{post.id}:{max_depth}:{int(comments_open)}:{zone.key}:{post_link}"
        thread = fragment(name, (SITE, post_scope(post.id), thread_scope(post.id)),
                          lambda: _read_thread(post, held, max_depth, **shown)[0])
        by_id = {}
    reply_parent = by_id.get(parent_id) if parent_id else None
    if reply_parent is None and form is not None:
        form.parent_id.data = ""
    pingback_url = fixed_url("linkback.xmlrpc_endpoint", external=True)
    webmention_url = fixed_url("linkback.webmention_endpoint", external=True)
    html = render_template(
        "blog/post.html",
        post=post,
        post_url=post_url,
        post_link=post_link,
        entry_html=Markup(post.entry_html),
        pingback_url=pingback_url,
        webmention_url=webmention_url,
        thread_html=Markup(thread.html),
        count_label=thread.count_label,
        comments_open=comments_open,
        form_error=form_error,
        comment_fields=_comment_fields(form),
        reply_parent=reply_parent,
        newer=newer,
        older=older,
        reactions=thread.reactions,
    )
    response = make_response(html, status)
    if current_app.config["WEBMENTION_ENABLED"]:
        response.headers["Link"] = f'<{webmention_url}>; rel="webmention"'
    # Pingback 1.0 discovery: an absolute X-Pingback header (WordPress looks for it with HEAD first).
    response.headers["X-Pingback"] = pingback_url
    return response


class Neighbour(NamedTuple):
    """A post's previous or next post, as its link shows it."""

    title: str
    path: str


def _comment_fields(form: CommentForm | None) -> Markup:
    """The form's fields as HTML; blank (a reader's first look), the same every time: rendered once."""
    as_admin = current_user.is_authenticated  # the form knows them: no name, email or website asked
    blank = not as_admin and (form is None or (not form.errors and not any(field.data for field in form)))
    if blank and (kept := current_app.extensions.get("blank_comment_fields")) is not None:
        return kept
    if form is None:
        form = CommentForm(formdata=None)  # (blank whatever the request sent)
    html = Markup(render_template("blog/_comment_fields.html", form=form, as_admin=as_admin))
    if blank:
        current_app.extensions["blank_comment_fields"] = html
    return html


def _neighbours(post: PostShown) -> tuple[Neighbour | None, Neighbour | None]:
    """The next and the previous post: the same until the post list changes, so kept with it."""
    if not post.is_published:
        return None, None
    return fragment(f"neighbours:{post.id}", (POSTS,), lambda: _read_neighbours(post))


def _read_neighbours(post: PostShown) -> tuple[Neighbour | None, Neighbour | None]:
    # Only what the links show (a title and an address), not whole posts with their bodies.
    base = select(Post).options(load_only(Post.title, Post.slug, Post.published_at, Post.status)).where(
        Post.visible(), Post.id != post.id)
    newer = db.session.scalar(
        base.where(Post.published_at >= post.published_at).order_by(Post.published_at, Post.id).limit(1)
    )
    older = db.session.scalar(
        base.where(Post.published_at <= post.published_at)
        .where(Post.id != (newer.id if newer else -1))
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(1)
    )
    return tuple(Neighbour(found.title, post_path(found)) if found else None for found in (newer, older))


def _shown(post: Post) -> PostShown:
    """The post a comment was sent to, as its page shows it (the form is shown again on it)."""
    try:
        return shown_post_by_id(post.id)
    except _NoSuchPost:  # deleted since it was read
        abort(404)


def _comment_limit() -> str:
    return current_app.config["COMMENT_RATE_LIMIT"]


@bp.route("/posts/<int:post_id>/comments", methods=["POST"])
@csrf.exempt  # anonymous, on cacheable pages: honeypot and rate limit; an admin's comment: sent_from_this_site
@limiter.limit(_comment_limit, methods=["POST"])
def post_comment(post_id: int):
    """Take a visitor's comment. Errors re-show the post page with what was typed (each field cut to its limit).

    A logged-in admin's comment must come from our own pages (sent_from_this_site), else it is refused.
    """
    post = db.session.get(Post, post_id)
    if post is None or not post.is_published:
        abort(404)
    settings = site_settings()
    form = CommentForm()
    if not post.accepts_comments(settings["CLOSE_COMMENTS_AFTER_DAYS"]):
        return render_post_page(_shown(post), form, 403, form_error="Comments are closed on this post.")
    if form.homepage.data:
        # A bot filled the hidden field. Answer as if all went well; keep nothing.
        current_app.logger.info("honeypot comment dropped from %s", request.remote_addr)
        return redirect(post_path(post) + "#comments", 303)
    by_admin = current_user.is_authenticated
    if by_admin and not sent_from_this_site():
        # Another site's page, posting with an admin's cookie: never recorded in the admin's name.
        return render_post_page(_shown(post), form, 400, form_error="Your comment was not posted: the form was sent from another "
                                "site, or your session has expired. Your text is kept below; reload the page and send it again.")
    if by_admin:  # as WordPress's form for a logged-in user: their name and the site's address, no email
        form.author_name.data = current_user.name
        form.author_email.data = ""
        form.author_email.validators = [Optional()]
        form.author_url.data = current_app.config["SITE_URL"] + "/"
    if not form.validate():
        return render_post_page(_shown(post), form, 400, form_error="Your comment could not be posted. Please correct the fields marked below.")

    # The reply's parent, as the hidden field names it: anything but an id of ours (-1, 2**64, "abc")
    # is a comment that is not there, not a database error.
    wanted_parent = (form.parent_id.data or "").strip()
    parent_id = parse_id(wanted_parent) if wanted_parent else None
    parent = db.session.get(Comment, parent_id) if parent_id else None
    if wanted_parent and (parent is None or parent.post_id != post.id or parent.status != CommentStatus.APPROVED):
        form.parent_id.data = ""
        return render_post_page(_shown(post), form, 400, form_error="The comment you replied to is no longer available; your text is kept below.")

    author_name, author_email = form.author_name.data.strip(), form.author_email.data.strip()
    author_url, ip, user_agent = (form.author_url.data or "").strip(), request.remote_addr or "", (request.user_agent.string or "")[:255]
    status = initial_status(settings["COMMENT_MODERATION"], author_email, by_admin=by_admin)
    if not by_admin:  # as in WordPress, an admin's own comment is not checked
        status = apply_discussion_rules(status, settings, Submission(
            author=author_name, email=author_email, url=author_url, content=form.content.data, ip=ip, user_agent=user_agent))
    comment = Comment(
        post=post,
        parent=parent,
        kind=CommentKind.COMMENT.value,
        author_name=author_name,
        author_email=author_email,
        author_url=author_url,
        content=form.content.data,
        content_html=render_comment(form.content.data),
        status=status.value,
        ip=ip,
        user_agent=user_agent,
        user_id=current_user.id if by_admin else None,
        created_at=utcnow(),
    )
    comment.notify_replies = bool(form.notify_replies.data)  # "Notify me of replies"
    db.session.add(comment)
    db.session.commit()
    notify.comment_received(comment)  # the admin's mail, queued (replies: blogapp/notify/events.py)
    if comment.status == CommentStatus.PENDING:
        session["held_comments"] = ([*session.get("held_comments", []), comment.id])[-HELD_IN_SESSION:]
        flash("Thank you. Your comment is awaiting moderation.", "info")
    elif comment.status == CommentStatus.SPAM:  # told what a held one is told: a spammer learns nothing
        flash("Thank you. Your comment is awaiting moderation.", "info")
    return redirect(post_path(post) + f"#comment-{comment.id}", 303)


@bp.errorhandler(429)
def comment_rate_limited(error):
    """A visitor who comments too fast keeps their text and learns to wait."""
    if request.endpoint == "blog.post_comment":
        post = db.session.get(Post, request.view_args.get("post_id", 0))
        if post is not None and post.is_published:
            return render_post_page(
                _shown(post), CommentForm(), 429, form_error="You are commenting too quickly. Please wait a minute and send again."
            )
    return render_template("error.html", code=429, title="Too many requests", message="Please wait a moment and try again."), 429


@bp.app_context_processor
def sidebar():
    def sidebar_html() -> Markup:
        # The same for every page until the post list changes (its counts scan every post, which a
        # big blog must not do on each page view): kept rendered.
        return Markup(fragment("sidebar", (SITE, POSTS),
                               lambda: str(render_template("blog/_sidebar.html", side=_sidebar_data()))))

    return {"sidebar_html": sidebar_html}


@bp.app_context_processor
def navigation():
    def load_nav_pages():
        # Like the sidebar: the published pages, read once until the site changes (a page's change does).
        return fragment("nav-pages", (SITE,), _nav_pages_data)

    return {"load_nav_pages": load_nav_pages}


def _nav_pages_data() -> list[tuple[str, str]]:
    """(slug, title) of the published pages, by menu order, then title, as WordPress lists them."""
    rows = db.session.execute(
        select(Page.slug, Page.title).where(Page.visible()).order_by(Page.menu_order, func.lower(Page.title), Page.id)
    ).all()
    return [(slug, title) for slug, title in rows]


def _sidebar_data() -> dict:
    recent = db.session.scalars(
        select(Post).where(Post.visible()).order_by(Post.published_at.desc(), Post.id.desc()).limit(5)
    ).all()
    categories = db.session.execute(
        select(Category.slug, Category.name, func.count(Post.id))
        .join(Category.posts)
        .where(Post.visible())
        .group_by(Category.id, Category.slug, Category.name)
        .order_by(Category.name)
    ).all()
    year, month = extract("year", Post.published_at), extract("month", Post.published_at)
    months = db.session.execute(
        select(year, month, func.count(Post.id))
        .where(Post.visible())
        .group_by(year, month)
        .order_by(year.desc(), month.desc())
        .limit(24)
    ).all()
    return {
        "recent": [(post_path(p), p.title) for p in recent],
        "categories": [(slug, name, n) for slug, name, n in categories],
        "months": [(int(y), int(m), datetime(int(y), int(m), 1).strftime("%B %Y"), n) for y, m, n in months],
    }
