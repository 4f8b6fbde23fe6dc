"""Which of our posts a linkback's target is: the URL map, then an imported post's old addresses.

The one place a URL of ours is matched against the Flask URL map for linkbacks, received
(``ping_target``) or sent to our own posts (``post_at``, ``is_post_page``).
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import load_only
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from .. import legacy
from ..extensions import db
from ..linkback.errors import TARGET_INVALID, TARGET_NOT_FOUND, LinkbackError
from ..linkback.receive import Target
from ..linkback.urls import SiteMatcher
from ..models import Post, load_site_settings, utcnow
from ..pagecache.scopes import EVERY_PAGE, post_scope
from ..pagecache.views import known_versions
from ..templating import permalink, site_request_context

POST_ENDPOINT = "blog.post"
# What a target's lookup reads of the post: whether it is out and open, and its permalink (not
# its body, which a pingback flood would otherwise read once per ping).
_DECIDES = load_only(Post.id, Post.slug, Post.status, Post.published_at, Post.created_at, Post.comments_open,
                     Post.pings_open)


def endpoint_at(url_map: Map, path: str) -> tuple[str | None, dict]:
    """The endpoint and arguments serving ``path`` to a GET; a path the map redirects (a missing
    trailing slash) is matched where it leads. ``(None, {})`` when nothing serves it."""
    adapter = url_map.bind("localhost")
    try:
        try:
            return adapter.match(path, method="GET")
        except RequestRedirect as redirect:
            return adapter.match(urlsplit(redirect.new_url).path, method="GET")
    except HTTPException:
        return None, {}


def is_post_page(url_map: Map, path: str | None) -> bool:
    """Whether one of our paths is a post's page (an archive, a feed or the admin are not)."""
    return path is not None and endpoint_at(url_map, path)[0] == POST_ENDPOINT


def post_at(app: Flask, site: SiteMatcher, url: str) -> Post:
    """The published post at ``url`` (in an app context). Raises ``LinkbackError`` 32 or 33, as a
    pingback to ``url`` would get."""
    return _find_post(app, site, url)[0]


def _find_post(app: Flask, site: SiteMatcher, url: str) -> tuple[Post, bool]:
    """``post_at``, and whether the post was found by its address today (not by an old one)."""
    path = site.local_path(url)
    if path is None:
        raise LinkbackError(TARGET_INVALID, "The target is not a page of this site.")
    endpoint, args = endpoint_at(app.url_map, path)
    post = db.session.scalar(select(Post).options(_DECIDES).where(Post.slug == args["slug"])) \
        if endpoint == POST_ENDPOINT else None
    by_address = post is not None
    if post is None:
        # An old address of an imported post (its WordPress permalink, ?p=ID, an old slug)
        # counts for the post, as it did on the old site.
        old = legacy.by_query(dict(parse_qsl(urlsplit(url).query))) if path == "/" else legacy.by_path(path)
        if isinstance(old, Post):
            post = old
        elif endpoint is None:
            raise LinkbackError(TARGET_NOT_FOUND, "There is no page at the target URL.")
        elif endpoint != POST_ENDPOINT:
            raise LinkbackError(TARGET_INVALID, "The target is not a post; only posts take linkbacks.")
        else:
            raise LinkbackError(TARGET_NOT_FOUND, "The target post does not exist.")
    if not post.is_published:
        raise LinkbackError(TARGET_INVALID, "The target post is not published.")
    return post, by_address


def ping_target(app: Flask, site: SiteMatcher, url: str) -> Target:
    """``post_at``, and the post must take linkbacks (in a site request context, for its permalink)."""
    return _open_target(app, site, url)[0]


def _open_target(app: Flask, site: SiteMatcher, url: str) -> tuple[Target, Post, bool]:
    post, by_address = _find_post(app, site, url)
    settings = load_site_settings(app.config)
    if not post.accepts_pings(settings["CLOSE_COMMENTS_AFTER_DAYS"]):
        raise LinkbackError(TARGET_INVALID, "Pingbacks and trackbacks are closed on this post.")
    return Target(post_id=post.id, url=permalink(post)), post, by_address


class _Known(NamedTuple):
    target: Target
    versions: tuple[int, ...]  # of the parts it was read from: the site, the post list, the post
    closes_at: datetime | None  # when the post stops taking pings by its age, with nothing written


class KnownTargets:
    """The ping targets of this process found lately, by URL, each kept while the parts of the
    site it was read from (the site's settings, the post list, the post) are unchanged and the
    post is not yet closed by its age: a crowd of pingbacks to one post looks it up once.

    Only what the URL map found is kept (an old address goes through the import's records,
    which no version follows), and never a refusal."""

    SIZE = 1024

    def __init__(self, app: Flask, site: SiteMatcher):
        self.app, self.site = app, site
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _parts(post_id: int) -> tuple[str, ...]:
        return (*EVERY_PAGE, post_scope(post_id))

    def resolve(self, url: str) -> Target:
        """``ping_target(url)``, from what this process knows if it still holds (in an app context)."""
        known = self._known.get(url)
        if known is not None:
            parts = self._parts(known.target.post_id)
            found = known_versions(self.app, parts)
            if (found is not None and tuple(found.of(part)[0] for part in parts) == known.versions
                    and (known.closes_at is None or utcnow() < known.closes_at)):
                return known.target
        # The counter first: a part moved past it, during the lookup or after, is a change the
        # lookup may or may not have seen, and then what it found is not kept.
        before = known_versions(self.app, EVERY_PAGE)
        with site_request_context(self.app):
            target, post, by_address = _open_target(self.app, self.site, url)
        closes_at = post.closes_at(load_site_settings(self.app.config)["CLOSE_COMMENTS_AFTER_DAYS"])
        parts = self._parts(target.post_id)
        after = known_versions(self.app, parts)
        if by_address and before is not None and after is not None:
            versions = tuple(after.of(part)[0] for part in parts)
            if max(versions) <= before.version:
                with self._lock:
                    if len(self._known) >= self.SIZE:
                        self._known.clear()  # a crowd of different URLs: start again rather than sort
                    self._known[url] = _Known(target, versions, closes_at)
        return target
