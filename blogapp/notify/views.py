"""The pages the mails link to: an admin's confirmation of Approve/Spam/Trash, and a commenter's unsubscribe.

A GET never changes anything (mail clients and scanners open links): each page shows what a
button would do, and the button POSTs. The admin's form carries the CSRF token; the unsubscribe
token is itself the proof (signed, per comment), so its POST needs no session, as RFC 8058's
one-click unsubscribe (``List-Unsubscribe=One-Click``) requires.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from ..admin.forms import ActionForm
from ..admin.routes import admin_forms
from ..extensions import csrf, db
from ..models import Comment
from ..moderation import ACTIONS, apply_action
from .compose import KIND_NAMES
from .tokens import BadToken, comment_of

bp = Blueprint("notify", __name__)
bp.context_processor(admin_forms)  # what the dashboard's frame needs, as on every admin page

MAIL_ACTIONS = ("approve", "spam", "trash")
DONE = {"approve": "approved", "spam": "marked as spam", "trash": "moved to the trash"}


@bp.route("/admin/notify/comments/<int:comment_id>/<action>", methods=["GET", "POST"])
@login_required
def confirm(comment_id: int, action: str):
    """GET: the comment and a button; POST (with the CSRF token): the moderation action, as the
    comment list's own button does it."""
    if action not in MAIL_ACTIONS:
        abort(404)
    comment = db.get_or_404(Comment, comment_id)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if apply_action(comment, action):
            db.session.commit()
            flash(f"The {KIND_NAMES.get(comment.kind, 'comment')} was {DONE[action]}.", "success")
        else:
            flash(f"Nothing to do: the comment is already {comment.status}.", "info")
        return redirect(url_for("admin.comments", status=comment.status))
    possible = comment.status in ACTIONS[action][0]
    return render_template("notify/confirm.html", comment=comment, action=action, form=form, possible=possible,
                           kind=KIND_NAMES.get(comment.kind, "comment"))


@bp.route("/notify/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """GET: what the button would do; POST (the button, or a mail client's one-click): done."""
    try:
        comment = db.session.get(Comment, comment_of(token))
    except BadToken as exc:
        return render_template("notify/unsubscribe.html", problem=str(exc)), 400
    if request.method == "POST" and comment is not None and comment.notify_replies:
        comment.notify_replies = False
        db.session.commit()
        return render_template("notify/unsubscribe.html", comment=comment, done=True)
    return render_template("notify/unsubscribe.html", comment=comment, done=request.method == "POST",
                           token=token)
