"""Who may send a linkback now: blocked domains, the senders' rates, the caps on what waits."""
from __future__ import annotations

import functools
import logging
import threading
import time

from flask import Flask
from limits import parse_many
from limits.storage import MemoryStorage
from sqlalchemy import bindparam, func, select

from ..extensions import db, limiter
from ..linkback.errors import ACCESS_DENIED, LinkbackError
from ..linkback.receive import Mention
from ..models import BlockedDomain, LinkbackLog
from ..outages import Outage
from . import app_context_for

log = logging.getLogger(__name__)

FULL_MEMO_SECONDS = 1.0  # a cap found full is believed full this long without asking the database

# Built once: a linkback's checks run per request, and a statement built anew each time costs
# more to build than to run (its parameters are bound per call).
_BLOCKED = select(BlockedDomain.domain).where(BlockedDomain.domain.in_(bindparam("domains", expanding=True))).limit(1)
_PENDING = LinkbackLog.outcome == "verifying"
_WAITING = select(func.count(), func.count().filter(LinkbackLog.source_host == bindparam("host")),
                  func.count().filter(LinkbackLog.client_ip == bindparam("ip"))).where(_PENDING)


def domain_and_parents(host: str) -> list[str]:
    """``a.b.example.com`` -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@functools.lru_cache(maxsize=16)
def _rate_limits(text: str) -> tuple:
    return tuple(parse_many(text))


class Admission:
    def __init__(self, app: Flask):
        self.app = app
        self._full: dict[tuple[str, str], float] = {}  # ("host"|"ip"|"all", value) -> when it was found full
        self._full_lock = threading.Lock()
        # Counted in Redis when it is set; while it is away, in this process (as Flask-Limiter's
        # own fallback does for the other limits), so linkbacks are still taken in.
        self._storage = Outage("the rate limits' storage", log)
        self._fallback = None

    def admit(self, mention: Mention, source_host: str) -> bool:
        """Refuse a blocked domain (49); say whether the sender is within its rate limits (else its
        linkback waits in the queue: the rates pace verification, they do not turn senders away)."""
        with app_context_for(self.app):
            blocked = db.session.scalar(_BLOCKED, {"domains": domain_and_parents(source_host)})
        if blocked:
            raise LinkbackError(ACCESS_DENIED, f"Linkbacks from {blocked} are not accepted here.")
        if not self.app.config.get("RATELIMIT_ENABLED", True):
            return True
        checks = [("LINKBACK_RATE_LIMIT", mention.client_ip), ("LINKBACK_SOURCE_RATE_LIMIT", source_host)]
        prefix = self.app.config.get("RATELIMIT_KEY_PREFIX", "")  # apps sharing a Redis keep their own counters
        with app_context_for(self.app):
            for setting, key in checks:
                for item in _rate_limits(self.app.config[setting]):
                    if not self._hit(item, prefix, "linkback", setting, key):
                        return False
        return True

    def _hit(self, item, *identifiers) -> bool:
        if self._storage.should_try():
            try:
                within = limiter.limiter.hit(item, *identifiers)
            except Exception as exc:  # the storage's own errors (Redis down, timed out)
                self._storage.down(exc, "linkback rates are counted in this process meanwhile")
            else:
                self._storage.up()
                return within
        if self._fallback is None:
            self._fallback = type(limiter.limiter)(MemoryStorage())  # the same strategy, in memory
        return self._fallback.hit(item, *identifiers)

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
        with app_context_for(self.app):
            total, of_host, of_ip = db.session.execute(_WAITING, {"host": source_host, "ip": mention.client_ip}).one()
        counts = {"host": of_host, "ip": of_ip, "all": total}
        for key, cap, message in self._caps(mention, source_host):
            if counts[key[0]] >= cap:
                with self._full_lock:
                    self._full[key] = time.monotonic()
                    if len(self._full) > 10_000:  # many hosts in a flood: forget the oldest half
                        for old in sorted(self._full, key=self._full.get)[:5_000]:
                            del self._full[old]
                raise LinkbackError(ACCESS_DENIED, message)
