"""Thin Flask views over the linkback engine: XML-RPC pingbacks, trackbacks and Webmentions."""
from __future__ import annotations

from contextlib import nullcontext

from flask import Blueprint, Flask, current_app, has_request_context, request

from .. import jobs
from ..linkback.fetch import FetchPolicy, GuardedFetcher
from ..linkback.receive import Receiver
from ..linkback.urls import SiteMatcher

bp = Blueprint("linkback", __name__)


class BodyTooLarge(ValueError):
    """The request body is over LINKBACK_BODY_LIMIT: each view answers it in its own protocol."""

    def __init__(self, limit: int):
        super().__init__(f"The request is larger than {limit} bytes.")
        self.limit = limit


def read_capped_body() -> bytes:
    """The request body, refused (``BodyTooLarge``) when it says or turns out to be larger than
    LINKBACK_BODY_LIMIT; never read past the limit."""
    limit = int(current_app.config["LINKBACK_BODY_LIMIT"])
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(limit)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(limit)
    return data


def app_context_for(app: Flask):
    """An app context for the linkback store's lookups and writes: the caller's own, when it is a
    request of ``app`` (a view's checks and its claim then share one session and one connection),
    else a new one (verification threads, jobs)."""
    if has_request_context() and current_app._get_current_object() is app:
        return nullcontext()
    return app.app_context()


def site_matcher(config) -> SiteMatcher:
    return SiteMatcher([config["SITE_URL"], *config["SITE_ALIASES"]], www_equivalent=bool(config["SITE_WWW_EQUIVALENT"]))


def user_agent(config) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("blogapp")
    except PackageNotFoundError:
        release = "dev"
    return f"blogapp/{release} (+{config['SITE_URL']}/)"


def init_app(app: Flask) -> None:
    from .store import SqlLinkbackStore

    config = app.config
    agent, site = user_agent(config), site_matcher(config)
    policy = FetchPolicy.from_settings(
        allowlist=config["LINKBACK_FETCH_ALLOWLIST"],
        allowed_ports=config["LINKBACK_FETCH_PORTS"],
        connect_timeout=float(config["LINKBACK_CONNECT_TIMEOUT"]),
        read_timeout=float(config["LINKBACK_READ_TIMEOUT"]),
        deadline=float(config["LINKBACK_FETCH_TIMEOUT"]),
        max_bytes=int(config["LINKBACK_FETCH_MAX_BYTES"]),
        max_redirects=int(config["LINKBACK_FETCH_MAX_REDIRECTS"]),
        user_agent=agent,
    )
    receiver = Receiver(
        SqlLinkbackStore(app, site),
        GuardedFetcher(policy),
        site,
        budget=float(config["LINKBACK_VERIFY_BUDGET"]),
        max_in_flight=int(config["LINKBACK_MAX_IN_FLIGHT"]),
        cpu_share=float(config["LINKBACK_VERIFY_CPU"]),
        cpu_burst=float(config["LINKBACK_VERIFY_BURST"]),
        verify_trackbacks=bool(config["TRACKBACK_VERIFY"]),
        user_agent=agent,
    )
    app.extensions["linkback_receiver"] = receiver
    # Queued verifications (pingbacks, trackbacks, Webmentions) run at the budgeted rate.
    jobs.pace(app, jobs.LINKBACKS, lambda: receiver.cpu.seconds_until_room())

    # Views register on bp; verification defines the jobs linkback.verify and webmention.verify.
    from . import trackback, verification, webmention, xmlrpc  # noqa: F401

    app.register_blueprint(bp)
    app.wsgi_app = xmlrpc.EarlyRefusals(app, app.wsgi_app)
