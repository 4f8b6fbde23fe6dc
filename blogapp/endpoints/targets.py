"""Which of our posts a linkback's target is: the URL map, then an imported post's old addresses.

The one place a URL of ours is matched against the Flask URL map for linkbacks, received
(``ping_target``) or sent to our own posts (``post_at``, ``is_post_page``).
"""
from __future__ import annotations

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
from ..models import Post, load_site_settings
from ..templating import permalink

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
    path = site.local_path(url)
    if path is None:
        raise LinkbackError(TARGET_INVALID, "The target is not a page of this site.")
    endpoint, args = endpoint_at(app.url_map, path)
    post = db.session.scalar(select(Post).options(_DECIDES).where(Post.slug == args["slug"])) \
        if endpoint == POST_ENDPOINT else None
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
    return post


def ping_target(app: Flask, site: SiteMatcher, url: str) -> Target:
    """``post_at``, and the post must take linkbacks (in a site request context, for its permalink)."""
    post = post_at(app, site, url)
    settings = load_site_settings(app.config)
    if not post.accepts_pings(settings["CLOSE_COMMENTS_AFTER_DAYS"]):
        raise LinkbackError(TARGET_INVALID, "Pingbacks and trackbacks are closed on this post.")
    return Target(post_id=post.id, url=permalink(post))
