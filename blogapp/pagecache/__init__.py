"""Readers' pages, cached whole, kept while what they show is unchanged, and answered 304 when
the reader already has them.

What readers see is cut into parts (``scopes``: the site, the post list, each post, each post's
thread); a change bumps the parts it touches, in its own transaction (``tracking``, ``versions``).
A cached page remembers the versions of the parts it showed and is current while they hold, so
one new comment makes stale its post's page, its comment feed and the listings that count it,
and nothing else.

- ``views``: ``@cached_page`` for a view, ``depends_on()`` inside it, ``fragment()`` for shared
  pieces (the sidebar, counts);
- ``middleware``: the fast path for readers without cookies, before Flask;
- ``store``: where pages are kept (Flask-Caching: per process, or Redis), ``validators``: ETag,
  Last-Modified, 304 (Werkzeug's); ``release``: the code's release tag, in every key and ETag;
- ``listener``: on PostgreSQL each process keeps the versions in memory by LISTEN/NOTIFY.

Pages are kept for ``PAGE_CACHE_TIMEOUT`` seconds at most; ``PAGE_CACHE=false`` keeps only the
conditional GETs.
"""
from __future__ import annotations

from flask import Flask

from . import tracking  # noqa: F401  (its session events bump versions in every app)
from .listener import VersionListener
from .middleware import CachedPages
from .release import release_tag
from .scopes import ANY_POST, ANY_THREAD, POSTS, SITE, post_scope, thread_scope
from .store import cache, init_cache
from .versions import bump
from .views import cached_page, current_version, depends_on, fragment, turns_at

__all__ = ["ANY_POST", "ANY_THREAD", "POSTS", "SITE", "VersionListener", "bump", "cache", "cached_page", "current_version",
           "depends_on", "fragment", "init_app", "post_scope", "thread_scope", "turns_at"]


def init_app(app: Flask) -> None:
    init_cache(app)
    app.extensions["page_release"] = release_tag(app)
    app.wsgi_app = CachedPages(app, app.wsgi_app)
