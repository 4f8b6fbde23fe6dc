"""The linkback engine's store, on our database: claims and records of received linkbacks.

Which post a target is (``targets``), who may send now (``admission``) and the log rows
(``linkback_log``) have their own modules; this one writes comments. A pingback's or
trackback's claim is written in one transaction with its log row and the durable job that
verifies it (``linkback.verify``); a Webmention's log row likewise with its job
(``webmention.verify``; both in ``verification.py``): once we answer, the verification
survives any crash.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from contextlib import contextmanager
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import jobs, notify
from ..extensions import db
from ..linkback.errors import ALREADY_REGISTERED, UPSTREAM_ERROR, LinkbackError
from ..linkback.receive import Claim, Mention, Target
from ..linkback.urls import SiteMatcher, source_key
from ..linkback.verify import NAME_LIMIT, SourceReading
from ..models import Comment, CommentKind, CommentStatus, JobRecord, LinkbackLog, utcnow
from ..moderation import Submission, apply_discussion_rules, linkback_status
from ..templating import site_request_context, site_settings
from . import app_context_for, linkback_log, targets
from .admission import Admission

log = logging.getLogger(__name__)
VERIFY_TASK = "linkback.verify"
WEBMENTION_TASK = "webmention.verify"
_INSERT_COMMENT = insert(Comment.__table__)  # built once; the values are bound per claim


@contextmanager
def _kept_after_commit(session):
    """The session's objects keep what they hold at commit instead of reading it back (a claim
    needs only its job's id and due time afterwards)."""
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = expire


class SqlLinkbackStore:
    def __init__(self, app: Flask, site: SiteMatcher):
        self.app = app
        self.site = site
        self.targets = targets.KnownTargets(app, site)
        self.admission = Admission(app)
        self.admit = self.admission.admit
        self.check_room = self.admission.check_room
        self.recently_full = self.admission.recently_full

    def resolve_target(self, url: str) -> Target:
        with app_context_for(self.app):
            return self.targets.resolve(url)

    def _status_for(self, mention: Mention, reading: SourceReading) -> str:
        """A new linkback's status: the linkback policy, then (but for our own site's pings) the
        Discussion settings' spam rules on what readers would see of it."""
        ours = self.site.is_ours(mention.source)
        status = linkback_status(self.app.config["LINKBACK_MODERATION"], mention.source, ours=ours)
        if not ours:
            status = apply_discussion_rules(status, site_settings(), Submission(
                author=reading.author_name, url=mention.source, content=reading.content, ip=mention.client_ip,
                user_agent=mention.user_agent))
        return status.value

    @staticmethod
    def _show(comment: Comment, reading: SourceReading, source: str) -> None:
        """What readers see of a verified linkback, whatever its protocol."""
        comment.author_name = reading.author_name[:NAME_LIMIT]
        comment.author_url = reading.author_url or source[:2000]
        comment.author_photo = reading.author_photo or None
        comment.content = reading.content
        if reading.response_type is not None:
            comment.response_type = reading.response_type

    # ------------------------------------------------------------ pingbacks and trackbacks

    def claim(self, target: Target, mention: Mention, key: str, *, later: bool) -> Claim:
        """Reserve (post, source) for this linkback, in one commit with its log row and its job.

        The job is queued (``later``) or made running under this process's lease, to be run here
        at once by ``run_claimed``; should this process die, its lease expires and the job runs
        again elsewhere.
        """
        # Plain INSERTs, not the ORM's unit of work: a flood's accepted pingbacks are written here,
        # in the request, and a claim no reader sees needs none of the page cache's bookkeeping.
        with app_context_for(self.app), _kept_after_commit(db.session()):
            try:
                comment_id = db.session.execute(_INSERT_COMMENT, dict(
                    post_id=target.post_id, kind=mention.protocol, status=CommentStatus.VERIFYING.value,
                    source_url=mention.source, source_key=key, author_url=mention.source,
                    author_name=urlsplit(mention.source).hostname or "", ip=mention.client_ip,
                    user_agent=mention.user_agent[:255], created_at=utcnow(),
                )).inserted_primary_key[0]
            except IntegrityError:
                db.session.rollback()
                raise LinkbackError(
                    ALREADY_REGISTERED, "A linkback from this source to this post is already registered."
                ) from None
            except SQLAlchemyError:
                db.session.rollback()
                log.exception("claiming a linkback failed")
                raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be stored.") from None
            log_id = linkback_log.insert_entry(mention, target.post_id, comment_id=comment_id,
                                               message="queued for verification" if later else "")
            claim = Claim(comment_id=comment_id, target=target, mention=mention, log_id=log_id)
            record = jobs.prepare(VERIFY_TASK, claim.to_dict(), run_here=not later)
            try:
                db.session.commit()  # (the job's record keeps its values: nothing to read back)
            except SQLAlchemyError:
                db.session.rollback()
                if record.lease_owner:
                    self.app.extensions["job_leases"].release(record.lease_owner)
                log.exception("claiming a linkback failed")
                raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be stored.") from None
            claim.job_id = record.id
            if later:
                jobs.submit(record)
            if linkback_log.trim(log_id):
                db.session.commit()
            return claim

    def run_claimed(self, claim: Claim) -> str:
        """Run the claim's job here and now (it is leased to this process): the stored status, or
        the ``LinkbackError`` the claim was released with."""
        with self.app.app_context(), site_request_context(self.app):
            record = db.session.get(JobRecord, claim.job_id)
            verdict = jobs.run_here(record) if record is not None else None
        if not isinstance(verdict, dict):
            raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be verified; try again later.")
        if "refused" in verdict:
            raise LinkbackError(int(verdict["refused"]), str(verdict.get("message", "")))
        return str(verdict.get("status", ""))

    def is_claimed(self, claim: Claim) -> bool:
        """Whether the claim still waits for its verdict (a job run again after a crash may find it given)."""
        with self.app.app_context():
            return db.session.scalar(select(Comment.id).where(
                Comment.id == claim.comment_id, Comment.status == CommentStatus.VERIFYING.value)) is not None

    def complete(self, claim: Claim, reading: SourceReading) -> str:
        with self.app.app_context():
            comment = db.session.get(Comment, claim.comment_id)
            if comment is None:
                raise LinkbackError(UPSTREAM_ERROR, "The linkback was removed while it was being verified.")
            comment.status = self._status_for(claim.mention, reading)
            self._show(comment, reading, claim.mention.source)
            comment.created_at = utcnow()
            self._finish_claim(claim, "accepted", None, f"stored as {comment.status}")
            db.session.commit()
            notify.comment_received(comment)  # the admin's mail, queued
            return comment.status

    def release(self, claim: Claim, error: LinkbackError) -> None:
        log.info("linkback %s -> %s refused: %s (%s)", claim.mention.source, claim.mention.target, error.message, error.code)
        with self.app.app_context():
            try:
                db.session.execute(
                    delete(Comment).where(Comment.id == claim.comment_id, Comment.status == CommentStatus.VERIFYING.value),
                    execution_options={"unseen_by_readers": True},  # a claim no reader saw: pages stay cached
                )
                self._finish_claim(claim, "refused", error.code, error.message)
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                log.exception("releasing a linkback claim failed")

    @staticmethod
    def _finish_claim(claim: Claim, outcome: str, code: int | None, message: str) -> None:
        entry = db.session.get(LinkbackLog, claim.log_id) if claim.log_id else None
        if entry is not None:
            linkback_log.finish(entry, outcome, message, code)

    # ------------------------------------------------------------ Webmentions

    def queue_webmention(self, target: Target, mention: Mention) -> str:
        """The log row (the status page, behind the returned token) and the job that verifies it,
        in one commit. One job per post and source at a time (its key); while one waits, this
        one's job comes after it, and finds its row either finished with the other's (nothing to
        do) or not (it verifies)."""
        token = secrets.token_urlsafe(24)
        key = "webmention:" + hashlib.sha256(f"{target.post_id} {source_key(mention.source)}".encode()).hexdigest()
        with self.app.app_context():
            for keyed in (jobs.active_with_key(key) is None, False):
                entry = linkback_log.new_entry(mention, target.post_id, token=token, outcome="verifying",
                                               message="queued")
                try:
                    db.session.flush()
                    record = jobs.prepare(WEBMENTION_TASK, entry.id, key=key if keyed else None)
                    db.session.commit()
                except IntegrityError:  # the same post and source, queued by another request just now
                    db.session.rollback()
                    continue
                except SQLAlchemyError:
                    db.session.rollback()
                    log.exception("recording a Webmention failed")
                    break
                jobs.submit(record)
                return token
        raise LinkbackError(UPSTREAM_ERROR, "The Webmention could not be stored; try again later.")

    def webmention_waiting(self, log_id: int) -> Mention | None:
        with self.app.app_context():
            entry = db.session.get(LinkbackLog, log_id)
            if entry is None or entry.outcome != "verifying":
                return None
            return Mention(protocol="webmention", source=entry.source_url, target=entry.target_url,
                           client_ip=entry.client_ip)

    def record_webmention(self, log_id: int, target: Target, mention: Mention, reading: SourceReading) -> None:
        """Store the verified Webmention: a new comment for (post, source), or an update of the one
        there; its log row (and any other waiting for them) says so, in the same commit."""
        key = source_key(mention.source)
        with self.app.app_context():
            comment = db.session.scalar(select(Comment).where(Comment.post_id == target.post_id,
                                                              Comment.source_key == key))
            if comment is None:
                comment = Comment(post_id=target.post_id, kind=CommentKind.WEBMENTION.value, source_key=key,
                                  status=self._status_for(mention, reading), ip=mention.client_ip, created_at=utcnow())
                db.session.add(comment)
                verb = "stored"
            elif comment.kind != CommentKind.WEBMENTION.value:
                raise LinkbackError(ALREADY_REGISTERED,
                                    "A pingback or trackback from this source to this post is already registered.")
            else:
                verb = "updated"
            comment.source_url = mention.source[:2000]
            self._show(comment, reading, mention.source)
            db.session.flush()
            linkback_log.finish_webmention(db.session.get(LinkbackLog, log_id), "accepted",
                                           f"Verified; {verb} as a {comment.response_type} ({comment.status}).",
                                           comment_id=comment.id)
            db.session.commit()
            if verb == "stored":
                notify.comment_received(comment)  # the admin's mail, queued

    def refuse_webmention(self, log_id: int, error: LinkbackError, *, remove: bool) -> None:
        """The Webmention is refused; with ``remove`` (the source is gone or no longer links), the
        Webmention stored from that source goes too, in the same commit."""
        with self.app.app_context():
            entry = db.session.get(LinkbackLog, log_id)
            if entry is None:
                return
            removed = False
            if remove and entry.post_id is not None:
                removed = bool(db.session.execute(delete(Comment).where(
                    Comment.post_id == entry.post_id, Comment.source_key == source_key(entry.source_url),
                    Comment.kind == CommentKind.WEBMENTION.value)).rowcount)
            message = error.message + (" The Webmention stored from this source was removed." if removed else "")
            linkback_log.finish_webmention(entry, "refused", message, error.code)
            db.session.commit()

    # ------------------------------------------------------------ reading

    def pingbacks_of(self, url: str) -> list[str]:
        """The sources of a post's approved pingbacks (for ``pingback.extensions.getPingbacks``)."""
        with self.app.app_context(), site_request_context(self.app):
            post = targets.post_at(self.app, self.site, url)
            return list(db.session.scalars(
                select(Comment.source_url).where(
                    Comment.post_id == post.id, Comment.kind == CommentKind.PINGBACK.value,
                    Comment.status == CommentStatus.APPROVED.value,
                ).order_by(Comment.created_at, Comment.id)
            ))
