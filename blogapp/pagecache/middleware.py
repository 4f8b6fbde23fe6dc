"""The fast path: a cached page asked for by a reader with no cookie of ours is sent from here,
before Flask: no request context, session, login or rate-limit machinery runs for it."""
from __future__ import annotations

import logging

from flask import Flask

from ..outages import database_unreachable
from .store import cache, page_key
from .validators import not_modified, validator_headers
from .views import REQUEST_VERSIONS, known_versions

log = logging.getLogger(__name__)


class CachedPages:
    """WSGI middleware. A hit costs one cache lookup and one query for the versions of the parts
    the page showed (none on PostgreSQL while the listener has them). Anything else (a miss, a
    cookie, a scheduled post come due) goes on to the app, where ``cached_page`` decides."""

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.next = app, wsgi_app
        self.cookies = (app.config["SESSION_COOKIE_NAME"] + "=", app.config.get("REMEMBER_COOKIE_NAME", "remember_token") + "=")
        self._backend = None

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if (method not in ("GET", "HEAD") or not self.app.config["PAGE_CACHE"] or "HTTP_AUTHORIZATION" in environ
                or any(name in environ.get("HTTP_COOKIE", "") for name in self.cookies)):
            return self.next(environ, start_response)
        try:
            if self._backend is None:
                with self.app.app_context():
                    self._backend = cache.cache
            entry = self._backend.get(page_key(self.app.extensions["page_release"], environ))
            if entry is None or entry.body is None:
                return self.next(environ, start_response)
            found = known_versions(self.app, entry.names)
            if found is None or found.due_now():
                return self.next(environ, start_response)  # the app makes the rows, or moves the post list
            environ[REQUEST_VERSIONS] = found  # the app, if it is asked after all, need not read them again
            if not entry.current(found):
                return self.next(environ, start_response)
        except Exception as exc:  # the cache or the database is unwell: the app answers, and says why
            if not database_unreachable(exc):  # (an outage is said once, by the app's 503)
                log.exception("cached page lookup failed")
            return self.next(environ, start_response)
        headers = [*entry.headers, *validator_headers(entry.etag, entry.last_modified), ("X-Cache", "hit")]
        if not_modified(environ, entry.etag, entry.last_modified):
            start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
            return []
        start_response(f"{entry.status} OK", [*headers, ("Content-Length", str(len(entry.body)))])
        return [] if method == "HEAD" else [entry.body]
