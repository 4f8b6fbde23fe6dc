"""The outermost WSGI layer: what every response carries, and which hosts were asked.

It wraps every layer that answers (the page cache's fast path, the XML-RPC early refusals, Flask),
so a response sent by any of them gets the same headers; only ProxyFix is outside it, so the host
it sees is the one the proxy forwarded.

- ``HSTS_SECONDS`` > 0 with an https ``SITE_URL``: ``Strict-Transport-Security`` on every response.
- A request for a host that is not ``SITE_URL``'s (nor an alias's) is logged once per host, with
  both names, and remembered for the dashboard: permalinks, feeds and linkback targets all come
  from ``SITE_URL``, so a site reached under another name is usually a ``SITE_URL`` to correct.
"""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

from flask import Flask

log = logging.getLogger(__name__)

# Hosts remembered per process: a scanner sending random Host headers must not grow memory.
MAX_HOSTS_REMEMBERED = 20
_DEFAULT_PORTS = (None, 80, 443)
# Load balancers' health probes (blogapp/health.py) ask the server's own address: not a sign of a
# wrong SITE_URL.
PROBES = frozenset({"/healthz", "/readyz"})
_PLAIN_HOST = re.compile(r"[A-Za-z0-9._-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")


def _host_key(host: str, www_equivalent: bool) -> tuple[str, int | None] | None:
    """(host name, port) as compared: lower case, no trailing dot, default ports (80 and 443 alike:
    behind a proxy that ends TLS the app sees http) as none; None for what names no host (a
    stranger's Host header goes to the log and the dashboard only if it is a plain name)."""
    if len(host) > 255 or not _PLAIN_HOST.fullmatch(host):
        return None
    try:
        parts = urlsplit("//" + host.strip())
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name:
        return None
    name = name.rstrip(".")
    if www_equivalent and name.startswith("www."):
        name = name[4:]
    return name, None if port in _DEFAULT_PORTS else port


class HostWatch:
    """Which hosts that are not ours this process was asked for, each logged once."""

    def __init__(self, site_url: str, aliases: list[str], www_equivalent: bool):
        self.site_host = urlsplit(site_url).netloc
        self.www_equivalent = www_equivalent
        self.ours = {_host_key(urlsplit(url).netloc, www_equivalent) for url in [site_url, *aliases]}
        self.known: set[str] = set()  # Host headers already judged ours (the common case: one lookup)
        self.foreign: dict[str, None] = {}  # in the order first seen
        self._lock = threading.Lock()

    def note(self, host: str) -> None:
        if host in self.known or host in self.foreign:
            return
        key = _host_key(host, self.www_equivalent)
        if key is None:
            return
        if key in self.ours:
            if len(self.known) < MAX_HOSTS_REMEMBERED:
                self.known.add(host)
            return
        with self._lock:
            if host in self.foreign or len(self.foreign) >= MAX_HOSTS_REMEMBERED:
                return
            self.foreign[host] = None
        log.warning("a request arrived for host %s, but SITE_URL's host is %s: links, feeds and linkback targets "
                    "name %s; correct SITE_URL or add the other name to SITE_ALIASES", host, self.site_host,
                    self.site_host)

    def foreign_hosts(self) -> list[str]:
        return list(self.foreign)


class SiteEdge:
    """WSGI middleware: notes the request's host, adds ``Strict-Transport-Security`` if configured."""

    def __init__(self, app: Flask, wsgi_app):
        config = app.config
        self.wsgi_app = wsgi_app
        self.hosts = HostWatch(config["SITE_URL"], config["SITE_ALIASES"], bool(config["SITE_WWW_EQUIVALENT"]))
        seconds = int(config["HSTS_SECONDS"])
        https = config["SITE_URL"].startswith("https://")
        self.hsts = ("Strict-Transport-Security", f"max-age={seconds}") if seconds > 0 and https else None

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") not in PROBES:
            self.hosts.note(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        if self.hsts is None:
            return self.wsgi_app(environ, start_response)
        hsts = self.hsts

        def start_with_hsts(status, headers, exc_info=None):
            # A new list: a layer below may hand us a list it keeps (a cached page's headers).
            return start_response(status, [*headers, hsts], exc_info)

        return self.wsgi_app(environ, start_with_hsts)


def install(app: Flask) -> None:
    """Wrap ``app.wsgi_app`` (call it after every other layer that answers, before ProxyFix)."""
    edge = SiteEdge(app, app.wsgi_app)
    app.extensions["site_edge"] = edge
    app.wsgi_app = edge


def foreign_hosts(app: Flask) -> list[str]:
    """The hosts not ours this process was asked for (at most MAX_HOSTS_REMEMBERED), first seen first."""
    edge = app.extensions.get("site_edge")
    return edge.hosts.foreign_hosts() if edge is not None else []
