"""The jobs that send the mails: ``notify.admin`` and ``notify.reply``.

Each reads its comment when it runs (a comment removed meanwhile, or a commenter unsubscribed,
sends nothing), writes the message and hands it to the server; a server away or a 4xx reply
raises ``TransientJobError``, so the job is tried again with backoff (the back end logs each
failed attempt in one line) until ``JOBS_MAX_ATTEMPTS``.
"""
from __future__ import annotations

from flask import current_app

from .. import jobs
from ..extensions import db
from ..models import Comment, load_site_settings
from .compose import admin_message, reply_message
from .smtp import MailLater, MailRefused, deliver
from .who import ADMIN_TASK, REPLY_TASK, admin_address, mail_on, wants_reply_mail


def _send(msg) -> str:
    try:
        deliver(msg, current_app.config)
    except MailLater as exc:
        raise jobs.TransientJobError(str(exc)) from None
    except MailRefused as exc:
        raise jobs.JobFailed(str(exc)) from None
    return f"sent to {msg['To']}"


@jobs.task(ADMIN_TASK)
def mail_admin(comment_id: int, event: str) -> str:
    comment = db.session.get(Comment, comment_id)
    settings = load_site_settings(current_app.config)
    if comment is None or not mail_on() or not admin_address(settings):
        return "nothing to send: the comment is gone, or mail or the admin's address is off"
    return _send(admin_message(comment, event, settings, admin_address(settings)))


@jobs.task(REPLY_TASK)
def mail_reply(reply_id: int) -> str:
    reply = db.session.get(Comment, reply_id)
    if not mail_on() or not wants_reply_mail(reply):
        return "nothing to send: the reply or its parent changed, or its author unsubscribed"
    return _send(reply_message(reply, load_site_settings(current_app.config)))
