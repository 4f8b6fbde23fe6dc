"""What every template can use: site settings, permalinks, dates in the site's zone."""
from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, has_request_context, request, url_for

from .models import EDITABLE_SETTINGS, Post, load_site_settings
from .pagecache import SITE, fragment


def site_settings() -> dict:
    """The effective site settings, read once per request; in a request, kept until the site changes."""
    if "site_settings" not in g:
        g.site_settings = _kept_site_settings() if has_request_context() else load_site_settings(current_app.config)
    return g.site_settings


def _kept_site_settings() -> dict:
    config = current_app.config
    defaults = {key: config[key] for key in EDITABLE_SETTINGS}
    kept_defaults, values = fragment("site-settings", (SITE,), lambda: (defaults, load_site_settings(config)))
    # Kept with the config's defaults they were read over, which tests change at run time.
    return values if kept_defaults == defaults else load_site_settings(config)


def fixed_url(endpoint: str, *, external: bool = False, **values) -> str:
    """``url_for(endpoint, **values)`` (``external``: on ``SITE_URL``) for an address that every
    request of the app builds alike (its script root aside): built once. Only for a bounded set of
    addresses, such as the links every page has."""
    app = current_app._get_current_object()
    script_root = request.script_root if has_request_context() else None
    key = (endpoint, script_root, external and app.config["SITE_URL"], *values.items())
    urls = app.extensions.setdefault("fixed_urls", {})
    found = urls.get(key)
    if found is None:
        found = urls[key] = absolute_url(url_for(endpoint, **values)) if external else url_for(endpoint, **values)
    return found


def site_zone() -> ZoneInfo:
    return _zone(current_app.config["TIMEZONE"])


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # called twice per comment on a post page: looked up once


def local_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(site_zone())


def post_path(post: Post) -> str:
    """The post's permalink path, ``/YYYY/MM/DD/slug/`` by its publication date in the site's zone."""
    when = local_time(post.published_at or post.created_at)
    return url_for("blog.post", year=when.year, month=f"{when.month:02d}", day=f"{when.day:02d}", slug=post.slug)


def absolute_url(path: str) -> str:
    """``path`` (from ``url_for``, so it holds any script root) on the configured public origin.

    Built from ``SITE_URL`` rather than the request's Host header, which a client controls.
    """
    parts = urlsplit(current_app.config["SITE_URL"])
    return f"{parts.scheme}://{parts.netloc}{path}"


def site_request_context(app: Flask):
    """A request context at ``SITE_URL``, so ``url_for`` works in CLI commands and jobs."""
    return app.test_request_context("/", base_url=app.config["SITE_URL"] + "/")


def permalink(post: Post) -> str:
    return absolute_url(post_path(post))


ASSET_MAX_AGE = 365 * 24 * 3600  # a versioned asset never changes: browsers keep it a year


def init_app(app: Flask) -> None:
    fingerprints: dict[str, str] = {}

    @app.url_defaults
    def versioned_static(endpoint: str, values: dict) -> None:
        """``/static/style.css?v=<hash of its bytes>``: a new file is a new URL, so the old one can be kept forever."""
        if endpoint != "static" or "filename" not in values or "v" in values:
            return
        name = values["filename"]
        if name not in fingerprints:
            try:
                data = (Path(app.static_folder) / name).read_bytes()
            except OSError:
                return
            fingerprints[name] = hashlib.sha256(data).hexdigest()[:10]
        values["v"] = fingerprints[name]

    default_max_age = app.get_send_file_max_age

    def send_file_max_age(filename):
        return ASSET_MAX_AGE if request.args.get("v") else default_max_age(filename)

    app.get_send_file_max_age = send_file_max_age

    @app.context_processor
    def inject():
        return {"site": site_settings(), "post_path": post_path, "permalink": permalink, "absolute_url": absolute_url,
                "fixed_url": fixed_url}

    @app.template_global()
    def moderation_counts() -> dict[str, int]:
        """Comments per status, read once per request and only by a page that shows them (the
        admin's, and the toolbar on readers' pages, which only logged-in admins get: never cached)."""
        if "comment_counts" not in g:
            from .moderation import comment_counts as count

            g.comment_counts = count()
        return g.comment_counts

    @app.template_filter("localtime")
    def localtime_filter(value: datetime | None, fmt: str = "%B %-d, %Y") -> str:
        local = local_time(value)
        return local.strftime(fmt) if local else ""

    @app.template_filter("isotime")
    def isotime_filter(value: datetime | None) -> str:
        local = local_time(value)
        return local.isoformat(timespec="seconds") if local else ""
