"""Receiving a linkback: cheap local checks, then one guarded fetch, then a verified record.

``Receiver.receive`` is the whole path of a pingback or trackback after the wire format is
parsed. The store (the database side, given by the web layer) answers the local questions
and records the outcome; the fetcher is the guarded one. Verification runs on a small
bounded pool: the caller waits up to ``budget`` seconds for the exact answer, and past
that the sender is told that verification continues, while the row claimed for this
source keeps duplicates out until it ends.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from .errors import ACCESS_DENIED, GENERIC, SOURCE_NOT_FOUND, UPSTREAM_ERROR, LinkbackError
from .fetch import FetchError, GuardedFetcher
from .urls import SiteMatcher, is_http_url, source_key
from .verify import cap, read_page, squash

log = logging.getLogger(__name__)


@dataclass
class Mention:
    """What a sender told us. Trackbacks also carry their own title, excerpt and blog name."""

    protocol: str  # "pingback" | "trackback"
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


@dataclass
class Outcome:
    verified: bool  # False: accepted, verification still running
    message: str
    status: str = ""  # the stored comment's status when verified


class LinkbackStore(Protocol):
    def resolve_target(self, url: str) -> Target: ...  # raises LinkbackError 32 or 33
    def admit(self, mention: Mention, source_host: str) -> None: ...  # raises LinkbackError 49
    def claim(self, target: Target, mention: Mention, key: str) -> Claim: ...  # raises LinkbackError 48
    def complete(self, claim: Claim, author_name: str, content: str) -> str: ...  # returns the status
    def release(self, claim: Claim, error: LinkbackError) -> None: ...


class Receiver:
    def __init__(self, store: LinkbackStore, fetcher: GuardedFetcher, site: SiteMatcher, *, budget: float = 2.0,
                 max_in_flight: int = 8, verify_trackbacks: bool = True, user_agent: str = "blogapp"):
        self.store = store
        self.fetcher = fetcher
        self.site = site
        self.budget = budget
        self.verify_trackbacks = verify_trackbacks
        self.user_agent = user_agent
        self._slots = threading.BoundedSemaphore(max_in_flight)
        # Reading a page is CPU work that holds the GIL: one at a time per process, so the threads
        # answering readers never wait behind several of them (fetches, which wait on the network,
        # still run side by side).
        self._reading = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="linkback-verify")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def receive(self, mention: Mention) -> Outcome:
        """Check, claim, verify, record. Raises ``LinkbackError`` with the pingback fault code."""
        if not is_http_url(mention.source):
            raise LinkbackError(SOURCE_NOT_FOUND, "The source URI is not an http or https URL.")
        # 1. A slot for the one outgoing fetch, first: past the cap we say no at once, before any
        # lookup or write, so a flood costs almost nothing and readers keep the CPU.
        if not self._slots.acquire(blocking=False):
            raise LinkbackError(ACCESS_DENIED, "Too many linkbacks are being verified right now; try again later.")
        try:
            # 2. Everything local and cheap, in an order that never fetches for a request that cannot succeed.
            target = self.store.resolve_target(mention.target)
            if source_key(mention.source) in (source_key(mention.target), source_key(target.url)):
                raise LinkbackError(GENERIC, "The source and the target are the same page.")
            self.store.admit(mention, (urlsplit(mention.source).hostname or "").lower())
            claim = self.store.claim(target, mention, source_key(mention.source))
        except BaseException:
            self._slots.release()
            raise
        try:
            future = self._pool.submit(self._verify_and_record, claim)
        except RuntimeError:  # the pool is shutting down
            self._slots.release()
            error = LinkbackError(UPSTREAM_ERROR, "The server is shutting down; try again later.")
            self.store.release(claim, error)
            raise error from None
        try:
            status = future.result(timeout=self.budget)
        except FutureTimeout:
            return Outcome(False, "received; verification continues")
        return Outcome(True, "registered", status)

    def _verify_and_record(self, claim: Claim) -> str:
        mention = claim.mention
        try:
            if mention.protocol == "trackback" and not self.verify_trackbacks:
                author, content = self._trackback_record(mention, page_title="")
            else:
                author, content = self._verify(claim)
            try:
                return self.store.complete(claim, author, content)
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
        finally:
            self._slots.release()

    def _verify(self, claim: Claim) -> tuple[str, str]:
        mention = claim.mention
        headers = {
            "User-Agent": f"{self.user_agent}; verifying {mention.protocol} from {mention.client_ip}",
            "X-Pingback-Forwarded-For": mention.client_ip,
        }
        try:
            page = self.fetcher.fetch(mention.source, headers=headers)
        except FetchError as exc:
            raise LinkbackError(SOURCE_NOT_FOUND, f"The source page could not be fetched: {exc.message}") from None
        # A link counts if it leads to the target's path on any of our addresses, query and fragment aside:
        # the path of the permalink, or of the target URI as pinged (an old date that redirects to the post).
        target_paths = {self.site.local_path(claim.target.url), self.site.local_path(mention.target)} - {None}
        # Every link to the post has its slug in it: the page is narrowed to such links first.
        slugs = {path.rstrip("/").rsplit("/", 1)[-1] for path in target_paths}
        with self._reading:
            reading = read_page(page.body, page.charset, page.url,
                                lambda url: self.site.local_path(url) in target_paths, hints=slugs)
        if mention.protocol == "trackback":
            return self._trackback_record(mention, page_title=reading.title)
        return reading.title, reading.excerpt

    @staticmethod
    def _trackback_record(mention: Mention, page_title: str) -> tuple[str, str]:
        title = cap(squash(mention.title), 250) or page_title
        excerpt = cap(squash(mention.excerpt), 252)
        author = cap(squash(mention.blog_name), 250) or title or mention.source
        content = "\n\n".join(part for part in (title, excerpt) if part)
        return author, content
