"""A reply approved, by whatever path (the comment form, the moderation list and its bulk actions,
the edit form, an admin's reply, the mail's confirmation page), mails its parent's author.

SQLAlchemy session events, in the approving transaction: after each flush, the replies that
became approved (new ones, or a status changed to approved) are noted; before the commit, the
job of each one due is written (``jobs.prepare``), so it is durable exactly when the approval is;
after the commit, it is handed to the job back end. A rollback forgets both.
"""
from __future__ import annotations

import logging
from itertools import chain

from flask import current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .. import jobs
from ..extensions import db
from ..models import Comment, CommentStatus
from .who import REPLY_TASK, reply_job_due, reply_key

log = logging.getLogger(__name__)

APPROVED_KEY = "notify.approved_replies"  # session.info: ids of replies approved in this transaction
JOBS_KEY = "notify.reply_jobs"  # session.info: job records to hand to the back end after the commit


def _mail_on() -> bool:
    return has_app_context() and bool(current_app.config.get("MAIL_SERVER"))


def _became_approved(session: Session, obj) -> bool:
    if not isinstance(obj, Comment) or obj.parent_id is None or obj.status != CommentStatus.APPROVED:
        return False
    if obj in session.new:
        return True
    history = inspect(obj).attrs.status.history
    return bool(history.added) and CommentStatus.APPROVED.value not in history.deleted


@event.listens_for(Session, "after_flush")
def _note_approved_replies(session, flush_context):
    if not _mail_on():
        return
    for obj in chain(session.new, session.dirty):
        if _became_approved(session, obj):
            session.info.setdefault(APPROVED_KEY, set()).add(obj.id)


@event.listens_for(Session, "before_commit")
def _prepare_reply_jobs(session):
    if session.in_nested_transaction() or not _mail_on():
        return
    session.flush()  # (the commit's own flush comes after this event: note its replies now)
    approved = session.info.pop(APPROVED_KEY, ())
    if session is not db.session():  # jobs.prepare writes in the app's session only
        return
    for reply_id in sorted(approved):
        try:
            if reply_job_due(session.get(Comment, reply_id)):
                # In a savepoint: another admin approving the same reply at the same moment may have
                # written its job already (the key is unique); then this approval stands, unmailed.
                with session.begin_nested():
                    record = jobs.prepare(REPLY_TASK, reply_id, key=reply_key(reply_id))
                session.info.setdefault(JOBS_KEY, []).append(record.id)
        except IntegrityError:
            log.info("the reply notification of comment %s is queued already", reply_id)
        except SQLAlchemyError:
            raise  # the transaction cannot go on; the caller's commit fails as it would have
        except Exception:
            log.exception("the reply notification of comment %s could not be queued", reply_id)


@event.listens_for(Session, "after_commit")
def _submit_reply_jobs(session):
    if session.in_nested_transaction():
        return
    for record_id in session.info.pop(JOBS_KEY, ()):
        try:
            jobs.backend().submit(record_id, attempt=1, lane=jobs.lane_of(REPLY_TASK))
        except Exception:  # committed and queued in the database: a later start or sweep takes it up
            log.exception("job %s (%s) could not be handed to the back end", record_id, REPLY_TASK)


@event.listens_for(Session, "after_rollback")
def _forget(session):
    if not session.in_nested_transaction():
        session.info.pop(APPROVED_KEY, None)
        session.info.pop(JOBS_KEY, None)
