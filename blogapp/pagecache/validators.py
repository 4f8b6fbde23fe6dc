"""ETag and Last-Modified of a cached page, and whether a conditional GET is answered 304."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from werkzeug.http import http_date, is_resource_modified


def make_etag(versions: tuple[tuple[str, int], ...], release: str) -> str:
    """The page's tag: the versions of the parts it shows, and the code's release."""
    return hashlib.sha1(repr(versions).encode()).hexdigest()[:16] + "-" + release


def validator_headers(etag: str, last_modified: datetime) -> list[tuple[str, str]]:
    """The headers of a cacheable page, for the fast path and the app alike."""
    # Shared caches may keep it, but must ask us each time (a comment can change it any minute).
    return [("ETag", f'W/"{etag}"'), ("Last-Modified", http_date(last_modified.replace(tzinfo=UTC))),
            ("Cache-Control", "public, no-cache"), ("Vary", "Cookie")]


def not_modified(environ, etag: str, last_modified: datetime) -> bool:
    """The reader has this page already: If-None-Match (weakly) matches, or else If-Modified-Since is not older."""
    return not is_resource_modified(environ, etag=etag, last_modified=last_modified)
