"""Where pages and fragments are kept: Flask-Caching (a per-process SimpleCache, or Redis when
``REDIS_URL`` is set), and what a kept page holds."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from flask import Flask
from flask_caching import Cache

from ..models import utcnow
from .versions import Versions

cache = Cache()

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


def init_cache(app: Flask) -> None:
    redis_url = app.config["REDIS_URL"]
    cache.init_app(app, config={
        "CACHE_TYPE": "RedisCache" if redis_url else "SimpleCache",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_DEFAULT_TIMEOUT": int(app.config["PAGE_CACHE_TIMEOUT"]),
        "CACHE_THRESHOLD": 2000,
        # Blogs sharing a Redis keep their own pages.
        "CACHE_KEY_PREFIX": "blogapp-page:" + hashlib.sha256(app.config["SITE_URL"].encode()).hexdigest()[:12] + ":",
    })


def page_key(release: str, environ) -> str:
    """The cache key of a page: the release, and the URL as requested."""
    return f"page:{release}:{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"[:500]


def fragment_key(release: str, name: str) -> str:
    return f"fragment:{release}:{name}"[:500]
