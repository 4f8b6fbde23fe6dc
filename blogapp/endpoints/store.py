"""The linkback engine's store, on our database: targets, limits, claims and records.

A claim is written in one transaction with its log row and the durable job that verifies it
(``linkback.verify``, in ``verification.py``): once we answer, the verification survives any crash.
"""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from limits import parse_many
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from .. import jobs, legacy
from ..extensions import db, limiter
from ..linkback.errors import (
    ACCESS_DENIED,
    ALREADY_REGISTERED,
    TARGET_INVALID,
    TARGET_NOT_FOUND,
    UPSTREAM_ERROR,
    LinkbackError,
)
from ..linkback.receive import Claim, Mention, Target
from ..linkback.urls import SiteMatcher
from ..models import (
    BlockedDomain,
    Comment,
    CommentKind,
    CommentStatus,
    JobRecord,
    LinkbackLog,
    Post,
    load_site_settings,
    utcnow,
)
from ..templating import permalink, site_request_context

log = logging.getLogger(__name__)
LOG_ROWS_KEPT = 5000
FULL_MEMO_SECONDS = 1.0  # a cap found full is believed full this long without asking the database
VERIFY_TASK = "linkback.verify"


def domain_and_parents(host: str) -> list[str]:
    """``a.b.example.com`` -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


class SqlLinkbackStore:
    def __init__(self, app: Flask, site: SiteMatcher):
        self.app = app
        self.site = site
        self._full: dict[tuple[str, str], float] = {}  # ("host"|"ip"|"all", value) -> when it was found full
        self._full_lock = threading.Lock()

    # ------------------------------------------------------------ local checks

    def resolve_target(self, url: str) -> Target:
        with self.app.app_context(), site_request_context(self.app):
            return self._resolve(url, for_pings=True)

    def resolve_post(self, url: str, *, for_pings: bool) -> Target | Post:
        """The post at ``url`` (in an app context): a ``Target`` if ``for_pings``, else the Post.

        Raises ``LinkbackError`` 32 or 33 as a pingback to ``url`` would get.
        """
        return self._resolve(url, for_pings=for_pings)

    def _resolve(self, url: str, *, for_pings: bool) -> Target | Post:
        path = self.site.local_path(url)
        if path is None:
            raise LinkbackError(TARGET_INVALID, "The target is not a page of this site.")
        adapter = self.app.url_map.bind("localhost")
        post = None
        try:
            try:
                endpoint, args = adapter.match(path, method="GET")
            except RequestRedirect as redirect:
                endpoint, args = adapter.match(urlsplit(redirect.new_url).path, method="GET")
        except HTTPException:
            endpoint, args = None, {}
        if endpoint == "blog.post":
            post = db.session.scalar(select(Post).where(Post.slug == args["slug"]))
        if post is None:
            # An old address of an imported post (its WordPress permalink, ?p=ID, an old slug)
            # counts for the post, as it did on the old site.
            old = legacy.by_query(dict(parse_qsl(urlsplit(url).query))) if path == "/" else legacy.by_path(path)
            if isinstance(old, Post):
                post = old
            elif endpoint is None:
                raise LinkbackError(TARGET_NOT_FOUND, "There is no page at the target URL.")
            elif endpoint != "blog.post":
                raise LinkbackError(TARGET_INVALID, "The target is not a post; only posts take linkbacks.")
            else:
                raise LinkbackError(TARGET_NOT_FOUND, "The target post does not exist.")
        if not post.is_published:
            raise LinkbackError(TARGET_INVALID, "The target post is not published.")
        if not for_pings:
            return post
        settings = load_site_settings(self.app.config)
        if not post.accepts_pings(settings["CLOSE_COMMENTS_AFTER_DAYS"]):
            raise LinkbackError(TARGET_INVALID, "Pingbacks and trackbacks are closed on this post.")
        return Target(post_id=post.id, url=permalink(post))

    def admit(self, mention: Mention, source_host: str) -> bool:
        """Refuse a blocked domain (49); say whether the sender is within its rate limits (else its
        linkback waits in the queue: the rates pace verification, they do not turn senders away)."""
        with self.app.app_context():
            blocked = db.session.scalar(
                select(BlockedDomain.domain).where(BlockedDomain.domain.in_(domain_and_parents(source_host))).limit(1)
            )
        if blocked:
            raise LinkbackError(ACCESS_DENIED, f"Linkbacks from {blocked} are not accepted here.")
        if not self.app.config.get("RATELIMIT_ENABLED", True):
            return True
        checks = [("LINKBACK_RATE_LIMIT", mention.client_ip), ("LINKBACK_SOURCE_RATE_LIMIT", source_host)]
        prefix = self.app.config.get("RATELIMIT_KEY_PREFIX", "")  # apps sharing a Redis keep their own counters
        with self.app.app_context():
            strategy = limiter.limiter
            for setting, key in checks:
                for item in parse_many(self.app.config[setting]):
                    if not strategy.hit(item, prefix, "linkback", setting, key):
                        return False
        return True

    # ------------------------------------------------------------ caps on what waits

    def _caps(self, mention: Mention, source_host: str) -> list[tuple[tuple[str, str], int, str]]:
        config = self.app.config
        return [
            (("host", source_host), int(config["LINKBACK_PENDING_PER_HOST"]),
             f"Too many linkbacks from {source_host} are waiting to be verified; try again later."),
            (("ip", mention.client_ip), int(config["LINKBACK_PENDING_PER_IP"]),
             "Too many linkbacks from your address are waiting to be verified; try again later."),
            (("all", ""), int(config["LINKBACK_PENDING_TOTAL"]),
             "Too many linkbacks are waiting to be verified; try again later."),
        ]

    def recently_full(self, mention: Mention, source_host: str) -> bool:
        """Whether a cap this linkback counts against was found full in the last moment (no query)."""
        now = time.monotonic()
        with self._full_lock:
            return any(now - self._full.get(key, -FULL_MEMO_SECONDS) < FULL_MEMO_SECONDS
                       for key, _, _ in self._caps(mention, source_host))

    def check_room(self, mention: Mention, source_host: str) -> None:
        """Fault 49 if the pending verifications of this source host, this client or all of them are
        at their cap: what a flood can leave waiting is bounded, whatever its rate."""
        with self.app.app_context():
            pending = LinkbackLog.outcome == "verifying"
            total, of_host, of_ip = db.session.execute(
                select(func.count(), func.count().filter(LinkbackLog.source_host == source_host),
                       func.count().filter(LinkbackLog.client_ip == mention.client_ip)).where(pending)
            ).one()
        counts = {"host": of_host, "ip": of_ip, "all": total}
        for key, cap, message in self._caps(mention, source_host):
            if counts[key[0]] >= cap:
                with self._full_lock:
                    self._full[key] = time.monotonic()
                    if len(self._full) > 10_000:  # many hosts in a flood: forget the oldest half
                        for old in sorted(self._full, key=self._full.get)[:5_000]:
                            del self._full[old]
                raise LinkbackError(ACCESS_DENIED, message)

    # ------------------------------------------------------------ claim and record

    def claim(self, target: Target, mention: Mention, key: str, *, later: bool) -> Claim:
        """Reserve (post, source) for this linkback, in one commit with its log row and its job.

        The job is queued (``later``) or made running under this process's lease, to be run here
        at once by ``run_claimed``; should this process die, its lease expires and the job runs
        again elsewhere.
        """
        with self.app.app_context():
            comment = Comment(
                post_id=target.post_id, kind=mention.protocol, status=CommentStatus.VERIFYING.value,
                source_url=mention.source, source_key=key, author_url=mention.source,
                author_name=urlsplit(mention.source).hostname or "", ip=mention.client_ip,
                user_agent=mention.user_agent[:255], created_at=utcnow(),
            )
            db.session.add(comment)
            try:
                db.session.flush()
            except IntegrityError:
                db.session.rollback()
                raise LinkbackError(
                    ALREADY_REGISTERED, "A linkback from this source to this post is already registered."
                ) from None
            except SQLAlchemyError:
                db.session.rollback()
                log.exception("claiming a linkback failed")
                raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be stored.") from None
            entry = LinkbackLog(protocol=mention.protocol, source_url=mention.source[:2000],
                                source_host=(urlsplit(mention.source).hostname or "").lower()[:255],
                                target_url=mention.target[:2000], post_id=target.post_id,
                                comment_id=comment.id, client_ip=mention.client_ip,
                                message="queued for verification" if later else "")
            db.session.add(entry)
            db.session.flush()
            claim = Claim(comment_id=comment.id, target=target, mention=mention, log_id=entry.id)
            record = jobs.prepare(VERIFY_TASK, claim.to_dict(), run_here=not later)
            try:
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                if record.lease_owner:
                    self.app.extensions["job_leases"].release(record.lease_owner)
                log.exception("claiming a linkback failed")
                raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be stored.") from None
            claim.job_id = record.id
            if later:
                jobs.submit(record)
            if entry.id % 100 == 0:  # finished rows only: a pending one is someone's answer to come
                db.session.execute(delete(LinkbackLog).where(LinkbackLog.id <= entry.id - LOG_ROWS_KEPT,
                                                             LinkbackLog.outcome != "verifying"))
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

    def complete(self, claim: Claim, author_name: str, content: str) -> str:
        with self.app.app_context():
            comment = db.session.get(Comment, claim.comment_id)
            if comment is None:
                raise LinkbackError(UPSTREAM_ERROR, "The linkback was removed while it was being verified.")
            comment.status = self._initial_status(claim.mention).value
            comment.author_name = author_name[:250]
            comment.content = content
            comment.created_at = utcnow()
            self._log(claim, "accepted", None, f"stored as {comment.status}")
            db.session.commit()
            return comment.status

    def release(self, claim: Claim, error: LinkbackError) -> None:
        log.info("linkback %s -> %s refused: %s (%s)", claim.mention.source, claim.mention.target, error.message, error.code)
        with self.app.app_context():
            try:
                db.session.execute(
                    delete(Comment).where(Comment.id == claim.comment_id, Comment.status == CommentStatus.VERIFYING.value),
                    execution_options={"unseen_by_readers": True},  # a claim no reader saw: pages stay cached
                )
                self._log(claim, "refused", error.code, error.message)
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                log.exception("releasing a linkback claim failed")

    def _log(self, claim: Claim, outcome: str, code: int | None, message: str) -> None:
        entry = db.session.get(LinkbackLog, claim.log_id) if claim.log_id else None
        if entry is not None:
            entry.outcome, entry.fault_code, entry.message, entry.finished_at = outcome, code, message, utcnow()

    def _initial_status(self, mention: Mention) -> CommentStatus:
        mode = self.app.config["LINKBACK_MODERATION"]
        if mode == "approve":
            return CommentStatus.APPROVED
        if mode == "hold":
            return CommentStatus.PENDING
        # hold-new-sources: a domain we already approved a linkback from, or our own site, is trusted.
        if self.site.is_ours(mention.source):
            return CommentStatus.APPROVED
        host = (urlsplit(mention.source).hostname or "").lower()
        escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        known = db.session.scalar(
            select(Comment.id).where(
                Comment.kind != CommentKind.COMMENT.value,
                Comment.status == CommentStatus.APPROVED.value,
                or_(Comment.source_key.like(escaped + "/%", escape="\\"), Comment.source_key.like(escaped + ":%", escape="\\")),
            ).limit(1)
        )
        return CommentStatus.APPROVED if known else CommentStatus.PENDING

    # ------------------------------------------------------------ reading

    def pingbacks_of(self, url: str) -> list[str]:
        """The sources of a post's approved pingbacks (for ``pingback.extensions.getPingbacks``)."""
        with self.app.app_context(), site_request_context(self.app):
            post = self._resolve(url, for_pings=False)
            return list(db.session.scalars(
                select(Comment.source_url).where(
                    Comment.post_id == post.id, Comment.kind == CommentKind.PINGBACK.value,
                    Comment.status == CommentStatus.APPROVED.value,
                ).order_by(Comment.created_at, Comment.id)
            ))
