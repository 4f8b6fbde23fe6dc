from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import abort, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from .. import outbound
from ..edge import foreign_hosts
from ..endpoints.admission import domain_and_parents
from ..extensions import db, limiter, login_manager
from ..models import (
    BlockedDomain,
    BodyFormat,
    OutboundLink,
    OutboundState,
    LinkbackLog,
    Comment,
    CommentKind,
    CommentStatus,
    Page,
    PageStatus,
    Post,
    PostStatus,
    User,
    load_site_settings,
    save_site_settings,
    utcnow,
)
from ..moderation import ACTIONS, apply_action, on_posts_not_trashed, set_status
from ..pages import PageError, remove_page, save_page
from ..posts import PostError, remove_post, restore_post, save_post, split_terms, trash_post
from ..templating import local_time, site_zone
from ..text import render_comment, render_post
from ..validation import parse_id
from . import bp
from .forms import ActionForm, BlockDomainForm, CommentEditForm, LoginForm, PageForm, PostForm, ReplyForm, SettingsForm

login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"

COMMENT_TABS = ["pending", "approved", "spam", "trash"]
ALL, ALL_STATUSES = "all", ["pending", "approved"]  # WordPress's "All" tab: neither spam nor trash
SEARCH_LIMIT = 200  # characters of a comment search
UNDO_LIMIT = 500  # comments one Undo puts back (a bulk action takes a page of them)
COMMENTS_PER_PAGE = 50
# Pages past this are empty anyway; the cap keeps LIMIT/OFFSET within what databases accept.
MAX_PAGE = 1_000_000


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except ValueError:
        return None


@bp.before_request
def require_login():
    if request.endpoint in ("admin.login", "static"):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


@bp.context_processor
def admin_forms():
    return {"action_form": ActionForm(), "take_undo": take_undo}


def take_undo() -> dict | None:
    """The comments just trashed or marked spam, for the Undo button beside the notice: shown once,
    by the page that shows the notices (admin/base.html)."""
    return session.pop("undo_comments", None)


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)


def _selected_ids() -> list[int]:
    """The ``ids`` ticked in a list form; anything that is not a plausible id is ignored."""
    return [ident for ident in map(parse_id, request.form.getlist("ids")) if ident is not None]


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot bounce people elsewhere."""
    # Browsers read "\\" as "/" and drop tabs and newlines, so "/\\evil.example" would be "//evil.example".
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("admin.dashboard")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@functools.cache
def _unknown_user_hash() -> str:
    """A hash made the way account passwords are, of a password no one has."""
    return generate_password_hash(secrets.token_urlsafe(16))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.username == form.username.data.strip()))
        if user is None:
            # The same work as for a real account, so the answer's timing does not tell names apart.
            check_password_hash(_unknown_user_hash(), form.password.data)
        elif user.check_password(form.password.data):
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong username or password.")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form), 400 if form.errors else 200


@bp.errorhandler(429)
def login_rate_limited(error):
    if request.endpoint == "admin.login":
        form = LoginForm()
        # Not validated, so the field's errors are still an empty tuple: set them, don't append.
        form.password.errors = ["Too many attempts. Please wait a minute and try again."]
        return render_template("admin/login.html", form=form), 429
    return render_template("error.html", code=429, title="Too many requests", message="Please wait a moment."), 429


@bp.route("/logout", methods=["POST"])
def logout():
    if ActionForm().validate_on_submit():
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for("blog.index"))


@bp.route("/")
def dashboard():
    pending = db.session.scalars(
        on_posts_not_trashed(select(Comment))
        .where(Comment.status == CommentStatus.PENDING.value)
        .options(contains_eager(Comment.post))
        .order_by(Comment.created_at.desc())
        .limit(5)
    ).all()
    post_counts = dict(db.session.execute(select(Post.status, func.count(Post.id)).where(Post.trashed_at.is_(None))
                                          .group_by(Post.status)).all())
    recent = db.session.scalars(select(Post).order_by(Post.updated_at.desc()).limit(5)).all()
    return render_template("admin/dashboard.html", pending=pending, post_counts=post_counts, recent=recent,
                           foreign_hosts=foreign_hosts(current_app), site_host=urlsplit(current_app.config["SITE_URL"]).netloc)


# ---------------------------------------------------------------- posts

TRASH = "trash"  # the posts list's Trash tab (Post.trashed_at set)
POST_BULK_ACTIONS = {
    "open-comments": ("comments_open", True),
    "close-comments": ("comments_open", False),
    "open-pings": ("pings_open", True),
    "close-pings": ("pings_open", False),
}


@bp.route("/posts")
def posts():
    page = _page()
    status = request.args.get("status", "")
    stmt = select(Post).options(joinedload(Post.author)).order_by(
        Post.published_at.desc().nulls_first(), Post.id.desc()
    )
    if status == TRASH:
        stmt = stmt.where(Post.trashed_at.is_not(None))
    else:
        stmt = stmt.where(Post.trashed_at.is_(None))
        if status in (PostStatus.DRAFT, PostStatus.PUBLISHED, PostStatus.PRIVATE):
            stmt = stmt.where(Post.status == status)
    pagination = db.paginate(stmt, page=page, per_page=30, error_out=False)
    in_trash = db.session.scalar(select(func.count(Post.id)).where(Post.trashed_at.is_not(None)))
    ids = [p.id for p in pagination.items]
    counts = {}
    if ids:
        counts = {
            (pid, st): n
            for pid, st, n in db.session.execute(
                select(Comment.post_id, Comment.status, func.count(Comment.id))
                .where(Comment.post_id.in_(ids))
                .group_by(Comment.post_id, Comment.status)
            ).all()
        }
    return render_template("admin/posts.html", pagination=pagination, counts=counts, status=status, in_trash=in_trash)


@bp.route("/posts/bulk", methods=["POST"])
def posts_bulk():
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    action = request.form.get("action", "")
    ids = _selected_ids()
    if not ids:
        flash("Select at least one post.", "warning")
    elif action == "delete":
        found = db.session.scalars(select(Post).where(Post.id.in_(ids)).order_by(Post.id)).all()
        if request.form.get("confirmed") != "yes":  # "Delete permanently" asks first
            return render_template("admin/post_delete.html", posts=found, next=_back("admin.posts"))
        for post in found:
            remove_post(post)
        db.session.commit()
        outbound.dispatch()
        flash(f"{len(found)} post(s) deleted permanently.", "success")
    elif action in ("trash", "restore"):
        found = db.session.scalars(select(Post).where(Post.id.in_(ids))).all()
        for post in found:
            trash_post(post) if action == "trash" else restore_post(post)
        db.session.commit()
        outbound.dispatch()
        flash(f"{len(found)} post(s) moved to the Trash." if action == "trash"
              else f"{len(found)} post(s) restored as drafts.", "success")
    elif action in POST_BULK_ACTIONS:
        attr, value = POST_BULK_ACTIONS[action]
        found = db.session.scalars(select(Post).where(Post.id.in_(ids))).all()
        for post in found:
            setattr(post, attr, value)
        db.session.commit()
        flash(f"{len(found)} post(s) updated.", "success")
    else:
        flash("Choose a bulk action.", "warning")
    return redirect(_back("admin.posts"))


def _to_utc(value: datetime | None) -> datetime | None:
    """A naive datetime typed in the site's zone, as naive UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=site_zone()).astimezone(UTC).replace(tzinfo=None)


def _as_typed(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as the post form shows it: naive, in the site's zone, to the minute."""
    local = local_time(value)
    return local.replace(tzinfo=None, second=0, microsecond=0) if local else None


def _body_format(item: Post | Page | None) -> str:
    """How a post's or page's body is written: an imported one may be HTML; a new one is Markdown."""
    return item.body_format if item is not None and item.body_format else BodyFormat.MARKDOWN.value


def _label_body(form: PostForm | PageForm, body_format: str) -> None:
    if body_format == BodyFormat.HTML:
        form.body.label.text = "Body (HTML)"


def _post_form_response(form: PostForm, post: Post | None, status: int = 200):
    body_format = _body_format(post)
    _label_body(form, body_format)
    preview = render_post(form.body.data or "", body_format) if request.form.get("preview") else None
    links = _outbound_links(post) if post is not None and post.id is not None else []
    return render_template("admin/post_edit.html", form=form, post=post, preview=preview, links=links,
                           body_format=body_format), status


def _outbound_links(post: Post) -> list[OutboundLink]:
    return db.session.scalars(
        select(OutboundLink).where(OutboundLink.post_id == post.id)
        .options(selectinload(OutboundLink.attempt_log))
        .order_by(OutboundLink.linked.desc(), OutboundLink.id)
    ).all()


@bp.route("/posts/<int:post_id>/linkbacks")
def post_linkbacks(post_id: int):
    """The editor's "Linkbacks sent" part alone, for the page to refresh it while some are pending."""
    post = db.get_or_404(Post, post_id)
    response = make_response(render_template("admin/_linkbacks_sent.html", post=post, links=_outbound_links(post)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/posts/<int:post_id>/linkbacks/<int:link_id>/send", methods=["POST"])
@bp.route("/posts/<int:post_id>/linkbacks/send", methods=["POST"])
def send_linkbacks_again(post_id: int, link_id: int | None = None):
    """"Send again": one target, or every target the post links to now."""
    post = db.get_or_404(Post, post_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if not post.is_published or not post.send_linkbacks:
        flash("Only a published post with sending turned on sends linkbacks.", "warning")
        return redirect(url_for("admin.edit_post", post_id=post.id) + "#linkbacks")
    query = select(OutboundLink).where(OutboundLink.post_id == post.id)
    query = query.where(OutboundLink.id == link_id) if link_id is not None else query.where(
        OutboundLink.linked.is_(True), OutboundLink.state != OutboundState.SKIPPED.value)
    rows = db.session.scalars(query).all()
    if link_id is not None and not rows:
        abort(404)
    for row in rows:
        outbound.ask_again(row)
    db.session.commit()
    outbound.dispatch()
    flash(f"Sending again to {rows[0].target_url}." if link_id is not None else f"Sending again to {len(rows)} page(s).",
          "success")
    return redirect(url_for("admin.edit_post", post_id=post.id) + "#linkbacks")


@bp.route("/posts/new", methods=["GET", "POST"])
@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
def edit_post(post_id: int | None = None):
    post = db.get_or_404(Post, post_id) if post_id is not None else None  # /posts/0/edit is no post, not a new one
    if post is not None and post.trashed_at is not None:  # as WordPress: restore it to edit it
        flash(f"“{post.title}” is in the Trash. Restore it to edit it.", "warning")
        return redirect(url_for("admin.posts", status=TRASH))
    form = PostForm(obj=None)
    if request.method == "GET" and post is not None:
        form.title.data = post.title
        form.slug.data = post.slug
        form.body.data = post.body
        form.excerpt.data = post.excerpt
        form.categories.data = ", ".join(c.name for c in post.categories)
        form.tags.data = ", ".join(t.name for t in post.tags)
        form.status.data = post.status
        local = local_time(post.published_at)
        form.published_at.data = local.replace(tzinfo=None) if local else None
        form.comments_open.data = post.comments_open
        form.pings_open.data = post.pings_open
        form.send_linkbacks.data = post.send_linkbacks
    if request.method == "GET":
        return _post_form_response(form, post)
    if not form.validate_on_submit():
        return _post_form_response(form, post, 400)
    if request.form.get("preview"):
        return _post_form_response(form, post)
    was_published = post is not None and post.is_published
    published_at = _to_utc(form.published_at.data)
    if post is not None and post.published_at is not None and form.published_at.data == _as_typed(post.published_at):
        # The form shows minutes only: a date left as it was keeps its seconds, so the post keeps its place.
        published_at = post.published_at
    try:
        saved = save_post(
            post,
            title=form.title.data,
            body=form.body.data,
            excerpt=form.excerpt.data or "",
            slug=form.slug.data or "",
            categories=split_terms(form.categories.data),
            tags=split_terms(form.tags.data),
            publish=form.status.data == PostStatus.PUBLISHED,
            private=form.status.data == PostStatus.PRIVATE,
            published_at=published_at,
            comments_open=form.comments_open.data,
            pings_open=form.pings_open.data,
            send_linkbacks=form.send_linkbacks.data,
            author=current_user._get_current_object(),
            body_format=_body_format(post),
        )
        db.session.commit()
    except PostError as exc:
        db.session.rollback()
        form.title.errors.append(str(exc))
        return _post_form_response(form, post, 400)
    outbound.dispatch()
    if saved.is_scheduled:
        flash(f"Scheduled for {local_time(saved.published_at):%B %-d, %Y at %H:%M}.", "success")
    elif saved.is_published:
        flash("Post updated." if was_published else "Post published.", "success")  # WordPress's words
    elif saved.status == PostStatus.PRIVATE:
        flash("Private post saved: only logged-in admins can read it.", "success")
    else:
        flash("Draft saved.", "success")
    return redirect(url_for("admin.edit_post", post_id=saved.id))


def _one_post(post_id: int, act, message: str, to: str | None = None):
    """A post's button (with the CSRF token): ``act(post)``, committed, its linkbacks dispatched,
    ``message`` (with the title) said; back to the posts list, or ``to``."""
    post = db.get_or_404(Post, post_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    act(post)
    db.session.commit()
    outbound.dispatch()
    flash(message.format(title=post.title), "success")
    return redirect(to or url_for("admin.posts"))


@bp.route("/posts/<int:post_id>/trash", methods=["POST"])
def trash_one_post(post_id: int):
    return _one_post(post_id, trash_post, "“{title}” moved to the Trash.")


@bp.route("/posts/<int:post_id>/restore", methods=["POST"])
def restore_one_post(post_id: int):
    return _one_post(post_id, restore_post, "“{title}” restored from the Trash as a draft.",
                     url_for("admin.edit_post", post_id=post_id))


@bp.route("/posts/<int:post_id>/delete", methods=["GET", "POST"])
def delete_post(post_id: int):
    """Delete a post and its comments for good: a GET asks first (the form's POST does it)."""
    if request.method == "GET":
        return render_template("admin/post_delete.html", posts=[db.get_or_404(Post, post_id)],
                               next=url_for("admin.posts", status=TRASH))
    return _one_post(post_id, remove_post, "Deleted “{title}”.")


# ---------------------------------------------------------------- pages


@bp.route("/pages")
def pages():
    stmt = select(Page).order_by(Page.menu_order, func.lower(Page.title), Page.id)
    pagination = db.paginate(stmt, page=_page(), per_page=50, error_out=False)
    return render_template("admin/pages.html", pagination=pagination)


def _page_form_response(form: PageForm, page: Page | None, status: int = 200):
    body_format = _body_format(page)
    _label_body(form, body_format)
    preview = render_post(form.body.data or "", body_format) if request.form.get("preview") else None
    return render_template("admin/page_edit.html", form=form, page=page, preview=preview, body_format=body_format), status


@bp.route("/pages/new", methods=["GET", "POST"])
@bp.route("/pages/<int:page_id>/edit", methods=["GET", "POST"])
def edit_page(page_id: int | None = None):
    page = db.get_or_404(Page, page_id) if page_id is not None else None  # /pages/0/edit: likewise
    form = PageForm(obj=None)
    if request.method == "GET" and page is not None:
        form.title.data = page.title
        form.slug.data = page.slug
        form.body.data = page.body
        form.menu_order.data = page.menu_order
        form.status.data = page.status
    if request.method == "GET":
        return _page_form_response(form, page)
    if not form.validate_on_submit():
        return _page_form_response(form, page, 400)
    if request.form.get("preview"):
        return _page_form_response(form, page)
    try:
        saved = save_page(
            page,
            title=form.title.data,
            body=form.body.data,
            slug=form.slug.data or "",
            body_format=_body_format(page),
            publish=form.status.data == PageStatus.PUBLISHED,
            menu_order=form.menu_order.data or 0,
            author=current_user._get_current_object(),
        )
        db.session.commit()
    except PageError as exc:
        db.session.rollback()
        form.title.errors.append(str(exc))
        return _page_form_response(form, page, 400)
    flash("Page published." if saved.is_published else "Draft saved.", "success")
    return redirect(url_for("admin.edit_page", page_id=saved.id))


@bp.route("/pages/<int:page_id>/delete", methods=["POST"])
def delete_page(page_id: int):
    page = db.get_or_404(Page, page_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    remove_page(page)
    db.session.commit()
    flash(f"Deleted “{page.title}”.", "success")
    return redirect(url_for("admin.pages"))


# ---------------------------------------------------------------- comments


@bp.route("/comments")
def comments():
    status = request.args.get("status", "pending")
    if status not in (ALL, *COMMENT_TABS):
        status = "pending"
    kind = request.args.get("kind", "")
    search = " ".join((request.args.get("s") or "").replace("\x00", "").split())[:SEARCH_LIMIT]
    post = None
    if request.args.get("post"):
        post_id = parse_id(request.args["post"])
        post = db.session.get(Post, post_id) if post_id else None
    page = _page()
    stmt = (
        select(Comment)
        .options(contains_eager(Comment.post), joinedload(Comment.parent))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )
    # A trashed post's comments wait with it, unless that post is asked for.
    stmt = stmt.join(Comment.post) if post is not None else on_posts_not_trashed(stmt)
    # WordPress's "All": every comment but spam and trash.
    stmt = stmt.where(Comment.status.in_(ALL_STATUSES) if status == ALL else Comment.status == status)
    if kind == "linkbacks":
        stmt = stmt.where(Comment.kind != CommentKind.COMMENT.value)
    elif kind == "comments":
        stmt = stmt.where(Comment.kind == CommentKind.COMMENT.value)
    if post is not None:
        stmt = stmt.where(Comment.post_id == post.id)
    if search:
        stmt = stmt.where(or_(*(column.icontains(search, autoescape=True) for column in (
            Comment.author_name, Comment.author_email, Comment.author_url, Comment.ip, Comment.content,
            Comment.source_url))))
    pagination = db.paginate(stmt, page=page, per_page=COMMENTS_PER_PAGE, error_out=False)
    return render_template("admin/comments.html", pagination=pagination, status=status, kind=kind, search=search,
                           post=post)


@bp.route("/comments/undo", methods=["POST"])
def comments_undo():
    """Undo a trash or spam just done: each of those comments back where it was (if still there)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    ids = _selected_ids()
    hidden = [CommentStatus.SPAM.value, CommentStatus.TRASH.value]
    found = db.session.scalars(select(Comment).where(Comment.id.in_(ids), Comment.status.in_(hidden))).all() if ids else []
    restored = sum(apply_action(c, "restore") for c in found)
    db.session.commit()
    flash(_action_message("restore", restored), "success")
    return redirect(_back("admin.comments"))


def _offer_undo(action: str, ids: list[int]) -> None:
    """After a trash or spam, the next admin page offers to undo it (WordPress's "Undo")."""
    if action in ("trash", "spam") and ids:
        session["undo_comments"] = {"action": action, "ids": ids[:UNDO_LIMIT]}


def _back(default_endpoint: str) -> str:
    """Where a form came from (its ``next`` field), if that is a page of ours."""
    target = request.form.get("next")
    return target if target and _safe_next(target) == target else url_for(default_endpoint)


@bp.route("/comments/<int:comment_id>/<action>", methods=["POST"])
def comment_action(comment_id: int, action: str):
    comment = db.get_or_404(Comment, comment_id)
    if action not in {*ACTIONS, "restore", "delete"}:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if apply_action(comment, action):
        db.session.commit()
        flash(_action_message(action, 1), "success")
        _offer_undo(action, [comment.id])
    else:
        flash(f"Nothing to do: the comment is already {comment.status}.", "info")
    return redirect(_back("admin.comments"))


def _action_message(action: str, n: int) -> str:
    done = {"approve": "approved", "unapprove": "unapproved", "spam": "marked as spam", "trash": "moved to the trash",
            "restore": "restored", "delete": "deleted permanently"}[action]
    return f"{n} comment{'s' if n != 1 else ''} {done}."


@bp.route("/comments/bulk", methods=["POST"])
def comments_bulk():
    if not ActionForm().validate_on_submit():
        abort(400)
    action = request.form.get("action", "")
    ids = _selected_ids()
    if action not in {*ACTIONS, "restore", "delete"}:
        flash("Choose a bulk action.", "warning")
    elif not ids:
        flash("Select at least one comment.", "warning")
    else:
        changed = [c.id for c in db.session.scalars(select(Comment).where(Comment.id.in_(ids))).all()
                   if apply_action(c, action)]
        db.session.commit()
        flash(_action_message(action, len(changed)), "success")
        _offer_undo(action, changed)
    return redirect(_back("admin.comments"))


@bp.route("/comments/<int:comment_id>/edit", methods=["GET", "POST"])
def edit_comment(comment_id: int):
    comment = db.get_or_404(Comment, comment_id)
    form = CommentEditForm(obj=comment)
    if form.validate_on_submit():
        for name in ("author_name", "author_email", "author_url", "content"):
            getattr(form, name).populate_obj(comment, name)
        if form.status.data != comment.status:
            set_status(comment, form.status.data)  # so "restore" knows where spam and trash came from
        if comment.kind == CommentKind.COMMENT:
            comment.content_html = render_comment(comment.content)
        db.session.commit()
        flash("Comment updated.", "success")
        return redirect(url_for("admin.comments", status=comment.status))
    return render_template("admin/comment_edit.html", form=form, comment=comment), 400 if form.errors else 200


@bp.route("/comments/<int:comment_id>/reply", methods=["GET", "POST"])
def reply_comment(comment_id: int):
    parent = db.get_or_404(Comment, comment_id)
    form = ReplyForm()
    if form.validate_on_submit():
        # Replying approves what one replies to, as in WordPress: a reply to a hidden comment makes no sense.
        if parent.status == CommentStatus.PENDING:
            parent.status = CommentStatus.APPROVED.value
        user = current_user._get_current_object()
        reply = Comment(
            post_id=parent.post_id,
            parent_id=parent.id,
            kind=CommentKind.COMMENT.value,
            status=CommentStatus.APPROVED.value,
            author_name=user.name,
            author_url=current_app.config["SITE_URL"] + "/",
            content=form.content.data,
            content_html=render_comment(form.content.data),
            ip=request.remote_addr or "",
            user_agent=(request.user_agent.string or "")[:255],
            user_id=user.id,
            created_at=utcnow(),
        )
        db.session.add(reply)
        db.session.commit()
        flash("Reply published.", "success")
        return redirect(url_for("admin.comments", status="approved"))
    return render_template("admin/comment_reply.html", form=form, parent=parent), 400 if form.errors else 200


# ---------------------------------------------------------------- settings


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    current = load_site_settings(current_app.config)
    form = SettingsForm(data=current)
    if form.validate_on_submit():
        save_site_settings({name: getattr(form, name).data for name in current})
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("admin.settings"))
    return render_template("admin/settings.html", form=form), 400 if form.errors else 200


# ---------------------------------------------------------------- linkbacks

LINKBACK_OUTCOMES = ["refused", "accepted", "verifying"]


@bp.route("/linkbacks")
def linkbacks():
    """Every verification we ran for a pingback or trackback, newest first, and the blocked domains."""
    outcome = request.args.get("outcome", "")
    stmt = select(LinkbackLog).options(joinedload(LinkbackLog.post)).order_by(LinkbackLog.id.desc())
    if outcome in LINKBACK_OUTCOMES:
        stmt = stmt.where(LinkbackLog.outcome == outcome)
    pagination = db.paginate(stmt, page=_page(), per_page=50, error_out=False)
    blocked = db.session.scalars(select(BlockedDomain).order_by(BlockedDomain.domain)).all()
    names, own = {b.domain for b in blocked}, _own_domains()

    def blockable(host: str) -> bool:
        """A row's Block button: not for a host blocked already (it or a parent), nor for our own."""
        host = (host or "").lower()
        return bool(host) and host not in own and names.isdisjoint(domain_and_parents(host))

    return render_template("admin/linkbacks.html", pagination=pagination, outcome=outcome, blocked=blocked, blockable=blockable,
                           block_form=BlockDomainForm())


def _own_domains() -> dict[str, str]:
    """Each domain whose block would block one of our hosts (SITE_URL's, an alias's), to that host:
    a block takes the domain's subdomains too, so blocking "example.com" blocks "blog.example.com"."""
    config, own = current_app.config, {}
    for base in reversed([config["SITE_URL"], *config["SITE_ALIASES"]]):  # SITE_URL's named first
        host = (urlsplit(base).hostname or "").lower().rstrip(".")
        for name in ({host, host.removeprefix("www.")} if config["SITE_WWW_EQUIVALENT"] else {host}) - {""}:
            own.update(dict.fromkeys(domain_and_parents(name), host))
    return own


@bp.route("/linkbacks/block", methods=["POST"])
def block_domain():
    form = BlockDomainForm()
    if not form.validate_on_submit():
        for error in form.domain.errors:
            flash(error, "warning")
        if form.csrf_token.errors:
            abort(400)
        return redirect(_back("admin.linkbacks"))
    ours = _own_domains().get(form.domain.data)
    if ours is not None:
        flash(f"{form.domain.data} was not blocked: it is this site's own address ({ours}), and blocking it would "
              "refuse our own posts' pingbacks to each other.", "warning")
        return redirect(_back("admin.linkbacks"))
    if db.session.scalar(select(BlockedDomain).where(BlockedDomain.domain == form.domain.data)) is None:
        db.session.add(BlockedDomain(domain=form.domain.data))
        db.session.commit()
    flash(f"Linkbacks from {form.domain.data} and its subdomains are now refused.", "success")
    return redirect(_back("admin.linkbacks"))


@bp.route("/linkbacks/unblock/<int:blocked_id>", methods=["POST"])
def unblock_domain(blocked_id: int):
    blocked = db.get_or_404(BlockedDomain, blocked_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db.session.delete(blocked)
    db.session.commit()
    flash(f"{blocked.domain} is no longer blocked.", "success")
    return redirect(url_for("admin.linkbacks"))
