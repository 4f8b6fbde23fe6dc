"""Receiving a linkback: cheap local checks, then one guarded fetch, then a verified record.

``Receiver.receive`` is the whole path of a pingback or trackback after the wire format is
parsed. The store (the database side, given by the web layer) answers the local questions,
records the outcome, and keeps the claim and the job that verifies it durable: what we answered
"yes" to is verified even if this process dies.

Now or later: while this process has CPU to spare (``cpu_share`` of one core, on average), a
free slot (``max_in_flight``) and the sender is within its rate limits, the source is verified
at once on a small bounded pool, and the sender waits up to ``budget`` seconds for the exact
answer (past that, it is told that verification continues, and the pool finishes). Otherwise
the linkback is accepted into the durable queue ("verification continues") and a job verifies
it later, at the budgeted rate. What a flood can leave waiting is bounded by the store's caps
on pending verifications (per source host, per client IP, in all): past one, fault 49 at once.

A Webmention takes the same local checks (``queue_webmention``) but is always verified later,
by its own job (``verify_webmention``): one comment per (post, source), which a new Webmention
updates, or removes when the source is gone or no longer links.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import urlsplit

from .errors import (
    ACCESS_DENIED,
    GENERIC,
    INVALID_PARAMS,
    SOURCE_NOT_FOUND,
    UPSTREAM_ERROR,
    LinkbackError,
    SourceGone,
    TryLater,
)
from .fetch import FetchError, FetchResult, GuardedFetcher
from .urls import SiteMatcher, TargetLinks, is_http_url, source_key, url_problem
from .verify import EXCERPT_LIMIT, NAME_LIMIT, SourceReading, cap, read_page, squash
from .webmention import ACCEPT, SOURCE_TYPES, read_source

log = logging.getLogger(__name__)


def _queue_full() -> LinkbackError:
    """What a linkback that could only be queued is told while a cap of the queue was found full a moment ago."""
    return LinkbackError(ACCESS_DENIED, "Too many linkbacks are waiting to be verified; try again later.")


@dataclass
class Mention:
    """What a sender told us. Trackbacks also carry their own title, excerpt and blog name."""

    protocol: str  # "pingback" | "trackback" | "webmention"
    source: str
    target: str
    client_ip: str
    user_agent: str = ""
    title: str = ""
    excerpt: str = ""
    blog_name: str = ""


@dataclass
class Target:
    post_id: int
    url: str  # the post's permalink


@dataclass
class Claim:
    """A row reserved for (post, source) while the source is being verified."""

    comment_id: int
    target: Target
    mention: Mention
    log_id: int | None = None
    job_id: int | None = None  # the durable job that verifies it

    def to_dict(self) -> dict:
        """What the verifying job is given (JSON), and ``from_dict`` reads back."""
        return {"comment_id": self.comment_id, "log_id": self.log_id, "target": asdict(self.target),
                "mention": asdict(self.mention)}

    @classmethod
    def from_dict(cls, data: dict, job_id: int | None = None) -> Claim:
        return cls(comment_id=int(data["comment_id"]), target=Target(**data["target"]),
                   mention=Mention(**data["mention"]), log_id=data.get("log_id"), job_id=job_id)


@dataclass
class Receipt:
    """What a pingback's or trackback's sender is told: registered, or verification continues."""

    verified: bool  # False: accepted, verification still running
    message: str
    status: str = ""  # the stored comment's status when verified


class LinkbackStore(Protocol):
    def recently_full(self, mention: Mention, source_host: str) -> bool: ...  # a cap was reached a moment ago
    def resolve_target(self, url: str) -> Target: ...  # raises LinkbackError 32 or 33
    # Raises LinkbackError 49 for a blocked domain; False past the sender's rate limits.
    def admit(self, mention: Mention, source_host: str) -> bool: ...
    def check_room(self, mention: Mention, source_host: str) -> None: ...  # raises 49 past the pending caps
    # Raises LinkbackError 48. ``later``: the claim's job is queued, else it is leased to this process.
    def claim(self, target: Target, mention: Mention, key: str, *, later: bool) -> Claim: ...
    def run_claimed(self, claim: Claim) -> str: ...  # runs the claim's job here: the status, or LinkbackError
    def complete(self, claim: Claim, reading: SourceReading) -> str: ...  # returns the status
    def release(self, claim: Claim, error: LinkbackError) -> None: ...
    # Webmentions: the log row (its status page, behind the returned token) and its job, in one commit.
    def queue_webmention(self, target: Target, mention: Mention) -> str: ...
    def webmention_waiting(self, log_id: int) -> Mention | None: ...  # None once it has its verdict
    # The comment for (post, source) inserted or updated; raises LinkbackError 48 for a pingback's.
    def record_webmention(self, log_id: int, target: Target, mention: Mention, reading: SourceReading) -> None: ...
    def refuse_webmention(self, log_id: int, error: LinkbackError, *, remove: bool) -> None: ...


@contextmanager
def _held(lock: threading.Lock):
    """A lock already acquired, released at the block's end."""
    try:
        yield
    finally:
        lock.release()


class BudgetSpent(Exception):
    """No room in the CPU budget for another verification now; ``seconds``: until there may be."""

    def __init__(self, seconds: float):
        super().__init__(f"the verification CPU budget is spent for {seconds:.1f} s")
        self.seconds = seconds


class CpuBudget:
    """At most ``share`` of one core, on average, spent on verifications in this process.

    Each verification's CPU time (its thread's, from the fetch to the record) is a debt that
    drains at ``share`` seconds per second; while it exceeds ``burst`` seconds, no verification
    starts. Verifications under way count at what recent ones cost (``estimate``), so a crowd
    arriving at once cannot all start before the first has paid: a flood's first second costs
    about ``burst``, not ``burst`` plus every slot's page. A share of 0 turns the budget off.
    """

    def __init__(self, share: float, burst: float = 0.15, clock=time.monotonic, estimate: float = 0.05):
        self.share, self.burst, self.clock = share, burst, clock
        self.estimate = estimate  # seconds a verification costs, a running average
        self.running = 0
        self._debt, self._at = 0.0, clock()
        self._lock = threading.Lock()

    def _drain(self) -> None:
        now = self.clock()
        self._debt = max(0.0, self._debt - (now - self._at) * self.share)
        self._at = now

    def _owed(self) -> float:
        self._drain()
        return self._debt + self.running * self.estimate

    def exhausted(self) -> bool:
        if self.share <= 0:
            return False
        with self._lock:
            return self._owed() > self.burst

    def seconds_until_room(self) -> float:
        """How long until ``exhausted()`` turns False, if nothing more is spent."""
        if self.share <= 0:
            return 0.0
        with self._lock:
            return max(0.0, (self._owed() - self.burst) / self.share)

    def begin(self) -> bool:
        """Start a verification if there is room (then ``end()`` must follow)."""
        with self._lock:
            if self.share > 0 and self._owed() > self.burst:
                return False
            self.running += 1
            return True

    def end(self, seconds: float) -> None:
        """A verification begun with ``begin()`` is over; it cost ``seconds`` of CPU."""
        with self._lock:
            self.running -= 1
            if self.share > 0:
                self._drain()
                self._debt += seconds
            self.estimate += (seconds - self.estimate) / 5

    @contextmanager
    def turn(self):
        """One verification within the budget, metered: raises ``BudgetSpent`` if there is no room."""
        if not self.begin():
            raise BudgetSpent(max(0.5, self.seconds_until_room()))
        started = time.thread_time()
        try:
            yield
        finally:
            self.end(time.thread_time() - started)

    def spend(self, seconds: float) -> None:
        """CPU spent on linkbacks outside a verification (the lookups and writes of a claim)."""
        if self.share <= 0:
            return
        with self._lock:
            self._drain()
            self._debt += seconds


class Receiver:
    def __init__(self, store: LinkbackStore, fetcher: GuardedFetcher, site: SiteMatcher, *, budget: float = 2.0,
                 max_in_flight: int = 8, cpu_share: float = 0.05, cpu_burst: float = 0.15, verify_trackbacks: bool = True,
                 user_agent: str = "blogapp"):
        self.store = store
        self.fetcher = fetcher
        self.site = site
        self.budget = budget
        self.verify_trackbacks = verify_trackbacks
        self.user_agent = user_agent
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.cpu = CpuBudget(cpu_share, cpu_burst)
        # Reading a page is CPU work that holds the GIL: one at a time per process, so the threads
        # answering readers never wait behind several of them (fetches, which wait on the network,
        # still run side by side).
        self._reading = threading.Lock()
        self._admitting = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="linkback-verify")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def refused_at_once(self, mention: Mention) -> LinkbackError | None:
        """The refusal a linkback gets before any lookup, if it gets one: it could only wait (no
        CPU budget to verify it now) and a cap of the queue it would wait in was found full a
        moment ago. None: ``receive`` must look at it. Asked by a web view's front door too, so
        a flood's repeat senders are answered before the framework runs."""
        if not is_http_url(mention.source) or not self.cpu.exhausted():
            return None
        host = (urlsplit(mention.source).hostname or "").lower()
        return _queue_full() if self.store.recently_full(mention, host) else None

    def receive(self, mention: Mention) -> Receipt:
        """Check, claim, verify (now or later), record. Raises ``LinkbackError`` with the pingback fault code."""
        for url, name in ((mention.source, "source URI"), (mention.target, "target URI")):
            if problem := url_problem(url, name):
                raise LinkbackError(INVALID_PARAMS, problem)
        if not is_http_url(mention.source):
            raise LinkbackError(SOURCE_NOT_FOUND, "The source URI is not an http or https URL.")
        host = (urlsplit(mention.source).hostname or "").lower()
        # 1. Now or later? CPU to spare and a slot for the one outgoing fetch: now. Otherwise the
        # linkback can only be queued, and while a cap of the queue was found full a moment ago,
        # we say no at once, before any lookup or write: a flood costs almost nothing.
        now = self._begin_now()
        if not now and self.store.recently_full(mention, host):
            raise _queue_full()
        try:
            # 2. Everything local and cheap, in an order that never fetches for a request that cannot
            # succeed; one linkback at a time per process. A flood's requests arrive together: in
            # turn, once one finds a cap full, the others waiting are told so without a lookup (and
            # on SQLite, the writes take turns anyway).
            # A stalled database must not pile every request thread up here: past the sender's
            # wait, it is told to try later.
            if not self._admitting.acquire(timeout=self.budget):
                raise LinkbackError(ACCESS_DENIED, "Too busy to take the linkback now; try again later.")
            with _held(self._admitting):
                if not now and self.store.recently_full(mention, host):
                    raise _queue_full()
                started = time.thread_time()
                try:
                    target = self.store.resolve_target(mention.target)
                    if source_key(mention.source) in (source_key(mention.target), source_key(target.url)):
                        raise LinkbackError(GENERIC, "The source and the target are the same page.")
                    within_rate = self.store.admit(mention, host)
                    if now and not within_rate:  # past its rates, a sender's linkback waits in the queue
                        now = False
                        self._end_now(0.0)
                    if not now:
                        self.store.check_room(mention, host)
                    claim = self.store.claim(target, mention, source_key(mention.source), later=not now)
                finally:
                    self.cpu.spend(time.thread_time() - started)  # the lookups and the claim count too
        except BaseException:
            if now:
                self._end_now(0.0)
            raise
        if not now:
            return Receipt(False, "received; verification continues")
        try:
            future = self._pool.submit(self._run_now, claim)
        except RuntimeError:  # the pool is shutting down: verify in this thread instead
            return Receipt(True, "registered", self._run_now(claim))
        try:
            status = future.result(timeout=self.budget)
        except FutureTimeout:
            return Receipt(False, "received; verification continues")
        return Receipt(True, "registered", status)

    def _begin_now(self) -> bool:
        """A slot and room in the CPU budget for a verification now (else it can only wait)."""
        if not self.cpu.begin():
            return False
        if self._slots.acquire(blocking=False):
            return True
        self.cpu.end(0.0)
        return False

    def _end_now(self, seconds: float) -> None:
        self._slots.release()
        self.cpu.end(seconds)

    def _run_now(self, claim: Claim) -> str:
        started = time.thread_time()
        try:
            return self.store.run_claimed(claim)
        finally:
            self._end_now(time.thread_time() - started)

    def verify_claim(self, claim: Claim) -> str:
        """Fetch, read and record one claimed linkback (its job's work, now or later): the stored
        status, or ``LinkbackError`` once the claim is released. Its CPU is the caller's to meter
        (``cpu.turn()``; a verification begun by ``receive`` is metered there)."""
        mention = claim.mention
        try:
            if mention.protocol == "trackback" and not self.verify_trackbacks:
                reading = self._trackback_reading(mention, page_title="")
            else:
                reading = self._verify(claim)
            try:
                return self.store.complete(claim, reading)
            except LinkbackError:
                raise
            except Exception as exc:
                log.exception("storing linkback %s -> %s failed", mention.source, mention.target)
                raise LinkbackError(UPSTREAM_ERROR, "The linkback could not be stored.") from exc
        except LinkbackError as error:
            self.store.release(claim, error)
            raise
        except Exception as exc:  # a bug must not leave the claim behind
            log.exception("verifying linkback %s -> %s failed", mention.source, mention.target)
            error = LinkbackError(GENERIC, "The linkback could not be verified.")
            self.store.release(claim, error)
            raise error from exc

    def _fetch_source(self, mention: Mention, **kw) -> FetchResult:
        # Who is behind the request, for the site being fetched (as WordPress says it).
        headers = {"User-Agent": f"{self.user_agent}; verifying {mention.protocol} from {mention.client_ip}",
                   "X-Pingback-Forwarded-For": mention.client_ip, **kw.pop("headers", {})}
        return self.fetcher.fetch(mention.source, headers=headers, **kw)

    def _verify(self, claim: Claim) -> SourceReading:
        mention = claim.mention
        try:
            page = self._fetch_source(mention)
        except FetchError as exc:
            raise LinkbackError(SOURCE_NOT_FOUND, f"The source page could not be fetched: {exc.message}") from None
        # A link counts if it leads to the post, on any of our addresses (urls.TargetLinks).
        links_to_target = TargetLinks(self.site, claim.target.url, mention.target)
        with self._reading:
            reading = read_page(page.body, page.charset, page.url, links_to_target, hints=links_to_target.hints)
        if mention.protocol == "trackback":
            return self._trackback_reading(mention, page_title=reading.title)
        return SourceReading(author_name=reading.title, content=reading.excerpt)

    @staticmethod
    def _trackback_reading(mention: Mention, page_title: str) -> SourceReading:
        title = cap(squash(mention.title), NAME_LIMIT) or page_title
        excerpt = cap(squash(mention.excerpt), EXCERPT_LIMIT)
        author = cap(squash(mention.blog_name), NAME_LIMIT) or title or mention.source
        return SourceReading(author_name=author, content="\n\n".join(part for part in (title, excerpt) if part))

    # ------------------------------------------------------------ Webmention

    def queue_webmention(self, mention: Mention) -> str:
        """The local checks of a Webmention, then its log row and job (always verified later).

        Returns the status page's token. Raises ``LinkbackError``: ``ACCESS_DENIED`` for a blocked
        domain or a full cap on waiting verifications, ``UPSTREAM_ERROR`` when it cannot be
        stored, another code for a request that cannot succeed.
        """
        for url, name in ((mention.source, "source"), (mention.target, "target")):
            if problem := url_problem(url, name):
                raise LinkbackError(INVALID_PARAMS, problem)
        for url, name in ((mention.source, "source"), (mention.target, "target")):
            if not is_http_url(url):
                raise LinkbackError(INVALID_PARAMS, f"The {name} is not an http or https URL.")
        same = LinkbackError(GENERIC, "The source and the target are the same page.")
        if source_key(mention.source) == source_key(mention.target):
            raise same
        target = self.store.resolve_target(mention.target)
        if source_key(mention.source) == source_key(target.url):
            raise same
        host = (urlsplit(mention.source).hostname or "").lower()
        # Past the sender's rates a Webmention is still taken (its job is paced by the CPU budget);
        # only the caps on what waits turn it away.
        self.store.admit(mention, host)
        self.store.check_room(mention, host)
        return self.store.queue_webmention(target, mention)

    def verify_webmention(self, log_id: int, *, may_retry: bool) -> str:
        """Verify one queued Webmention and record the verdict: "verified", "refused", "error" (a
        bug of ours, logged) or "nothing to do" (it has its verdict). Raises ``TryLater`` when the
        source failed for a moment and ``may_retry``: the Webmention stays waiting. Its CPU is
        the caller's to meter (``cpu.turn()``)."""
        mention = self.store.webmention_waiting(log_id)
        if mention is None:
            return "nothing to do"
        try:
            target = self.store.resolve_target(mention.target)  # the post may have closed since
            reading = self._read_webmention_source(mention, target, may_retry=may_retry)
            self.store.record_webmention(log_id, target, mention, reading)
            return "verified"
        except TryLater:
            raise
        except LinkbackError as error:
            self.store.refuse_webmention(log_id, error, remove=isinstance(error, SourceGone))
            return "refused"
        except Exception:
            log.exception("verifying webmention %s failed", log_id)
            self.store.refuse_webmention(log_id, LinkbackError(
                GENERIC, "The Webmention could not be verified (an error on our side)."), remove=False)
            return "error"

    def _read_webmention_source(self, mention: Mention, target: Target, *, may_retry: bool) -> SourceReading:
        try:
            page = self._fetch_source(mention, headers={"Accept": ACCEPT}, types=SOURCE_TYPES)
        except FetchError as exc:
            if exc.status in (404, 410):
                raise SourceGone(SOURCE_NOT_FOUND, f"The source answered HTTP {exc.status}.") from None
            if exc.transient and may_retry:
                raise TryLater(exc.message, exc.status) from None
            raise LinkbackError(SOURCE_NOT_FOUND, f"The source page could not be fetched: {exc.message}") from None
        links = TargetLinks(self.site, target.url, mention.target)
        with self._reading:
            return read_source(page, links, {mention.target, target.url})
