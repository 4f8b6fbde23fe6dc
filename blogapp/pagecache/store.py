"""Where pages and fragments are kept: Flask-Caching (a per-process SimpleCache, or Redis when
``REDIS_URL`` is set), and what a kept page holds."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import NamedTuple

from flask import Flask
from flask_caching import Cache
from flask_caching.backends.rediscache import RedisCache

from ..models import utcnow
from ..outages import Outage
from .versions import Versions

log = logging.getLogger(__name__)
cache = Cache()
# A page is read from Redis on every reader's request: a Redis that does not answer at once is
# treated as gone rather than waited for.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}

# Headers of a cached page worth keeping; the rest is recomputed per request.
KEPT_HEADERS = ("Content-Type", "Link", "X-Pingback")


class PageEntry(NamedTuple):
    """A page as rendered, and the versions of the parts it showed then."""

    body: bytes | None  # None: only its validators are kept (PAGE_CACHE off)
    status: int
    headers: list[tuple[str, str]]
    versions: tuple[tuple[str, int], ...]  # (part, version), by name
    etag: str
    last_modified: datetime
    until: datetime | None = None  # what it shows changes by itself then (a post's comments close by age)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.versions)

    def current(self, found: Versions) -> bool:
        """No part the page showed has changed since (``found`` holds at least ``names``), nor has
        its ``until`` come."""
        return (all(found.of(name)[0] == version for name, version in self.versions)
                and (self.until is None or utcnow() < self.until))


class ForgivingRedisCache(RedisCache):
    """Flask-Caching's Redis back end, for which a Redis gone away is no cache at all: a read
    misses, a write is dropped, and one warning says so (not one per request). Redis is asked
    again every few seconds; the first answer ends the outage. Nothing kept there must be kept:
    a page missed is rendered again, and checked against the versions in the database anyway."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outage = Outage("the page cache's Redis", log)

    def _guarded(self, call, missed, *args, **kwargs):
        if not self.outage.should_try():
            return missed
        try:
            result = call(*args, **kwargs)
        except Exception as exc:  # redis-py's errors, socket errors, a server answering nonsense
            self.outage.down(exc, "pages are rendered without it")
            return missed
        self.outage.up()
        return result

    def get(self, key):
        return self._guarded(super().get, None, key)

    def get_many(self, *keys):
        return self._guarded(super().get_many, [None] * len(keys), *keys)

    def has(self, key):
        return self._guarded(super().has, False, key)

    def set(self, key, value, timeout=None):
        return self._guarded(super().set, False, key, value, timeout)

    def add(self, key, value, timeout=None):
        return self._guarded(super().add, False, key, value, timeout)

    def set_many(self, mapping, timeout=None):
        return self._guarded(super().set_many, [], mapping, timeout)

    def delete(self, key):
        return self._guarded(super().delete, False, key)

    def delete_many(self, *keys):
        return self._guarded(super().delete_many, [], *keys)

    def clear(self):
        return self._guarded(super().clear, False)


def init_cache(app: Flask) -> None:
    redis_url = app.config["REDIS_URL"]
    cache.init_app(app, config={
        "CACHE_TYPE": f"{__name__}.ForgivingRedisCache" if redis_url else "SimpleCache",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_OPTIONS": dict(REDIS_TIMEOUTS) if redis_url else {},
        "CACHE_DEFAULT_TIMEOUT": int(app.config["PAGE_CACHE_TIMEOUT"]),
        "CACHE_THRESHOLD": 2000,
        # Blogs sharing a Redis keep their own pages.
        "CACHE_KEY_PREFIX": "blogapp-page:" + hashlib.sha256(app.config["SITE_URL"].encode()).hexdigest()[:12] + ":",
    })


KEY_LIMIT = 500  # characters of a cache key


def _bounded(key: str) -> str:
    """``key``, or past ``KEY_LIMIT`` its start and a hash of the whole: two long URLs (a long
    search, say) never share an entry, as they did when keys were cut."""
    return key if len(key) <= KEY_LIMIT else f"{key[:KEY_LIMIT - 80]}#{hashlib.sha256(key.encode()).hexdigest()}"


def page_key(release: str, environ) -> str:
    """The cache key of a page: the release, and the URL as requested."""
    return _bounded(f"page:{release}:{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
                    f"?{environ.get('QUERY_STRING', '')}")


def fragment_key(release: str, name: str) -> str:
    return _bounded(f"fragment:{release}:{name}")
