"""URL normalisation: one key per page for duplicates, and our own URLs recognised as senders write them."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from ..validation import contains_nul

_DEFAULT_PORTS = {"http": 80, "https": 443}
# The longest source or target URL we take (the LinkbackLog and Comment columns hold 2,000).
MAX_URL_LENGTH = 2000


def url_problem(url: str, name: str) -> str | None:
    """Why ``url`` (a linkback's source or target, called ``name``) cannot be taken, or None.

    The one check every linkback protocol makes before a URL reaches a lookup or a column. A NUL
    written "%00" counts too: our own URLs are looked up by their decoded path (``local_path``).
    """
    if contains_nul(url) or "%00" in url:
        return f"The {name} contains a NUL character (%00)."
    if len(url) > MAX_URL_LENGTH:
        return f"The {name} is longer than {MAX_URL_LENGTH:,} characters."
    return None


def is_http_url(value: str) -> bool:
    """An http(s) URL with a host, and a port that is a number from 0 to 65535 if it has one
    (``:99999`` or ``:abc`` is no address anything can be fetched from, or compared by)."""
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return parts.scheme.lower() in _DEFAULT_PORTS and bool(parts.hostname)


def _normal_path(path: str) -> str:
    # Decode then re-encode, so "%7E", "~" and "%7e" compare equal; keep "/" structure.
    path = quote(unquote(path), safe="/:@!$&'()*+,;=-._~")
    return path or "/"


def source_key(url: str) -> str:
    """The key under which a linking page is stored once per post.

    http and https, letter case of the host, a default port, a trailing slash and a
    fragment do not make another page; the query does.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) else f"{host}:{port}"
    path = _normal_path(parts.path)
    if len(path) > 1:
        path = path.rstrip("/")
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return urlunsplit(("", netloc, path, query, "")).lstrip("/")


class SiteMatcher:
    """Recognises URLs of this site and gives their local path.

    ``base_urls`` are the site's public URL and its aliases. http and https are always
    the same site; ``www.example.com`` and ``example.com`` only when ``www_equivalent``.
    """

    def __init__(self, base_urls: list[str], *, www_equivalent: bool = False):
        self.www_equivalent = www_equivalent
        self._bases: list[tuple[str, int | None, str]] = []
        for base in base_urls:
            parts = urlsplit(base)
            self._bases.append((self._host(parts.hostname or ""), self._port(parts), parts.path.rstrip("/")))

    def _host(self, host: str) -> str:
        host = host.lower().rstrip(".")
        if self.www_equivalent and host.startswith("www."):
            host = host[4:]
        return host

    @staticmethod
    def _port(parts) -> int | None:
        try:
            port = parts.port
        except ValueError:
            return -1
        return None if port in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) else port

    def local_path(self, url: str) -> str | None:
        """The decoded path of ``url`` below our base, or None if ``url`` is not ours.

        Query and fragment are ignored, as WordPress's ``url_to_postid`` does.
        """
        if not is_http_url(url):
            return None
        parts = urlsplit(url.strip())
        host, port = self._host(parts.hostname or ""), self._port(parts)
        path = unquote(parts.path) or "/"
        path = re.sub(r"/{2,}", "/", path)
        for base_host, base_port, prefix in self._bases:
            if host == base_host and port == base_port and (path == prefix or path.startswith(prefix + "/")):
                local = path[len(prefix):] or "/"
                return local if local.endswith("/") else local + "/"
        return None

    def is_ours(self, url: str) -> bool:
        return self.local_path(url) is not None


def plain_post_query(url: str) -> tuple[str, str] | None:
    """``("p", "123")`` for a WordPress plain post address ``/?p=123`` (or ``page_id``)."""
    for key, value in parse_qsl(urlsplit(url).query):
        value = value.strip()
        if key in ("p", "page_id") and value.isascii() and value.isdigit():
            return key, value.lstrip("0") or "0"
    return None


class TargetLinks:
    """Which links lead to a linkback's target: the post's permalink, or the address as sent (an
    old date that redirects, an imported post's old permalink), query and fragment aside.

    An imported post's old plain address (``/?p=123``) is the site's root plus its query: there only
    a link with that same id counts, not any link to the home page. ``hints`` are strings of which
    every such link holds one (the slug, or ``p=123``), for narrowing a page before reading it.
    """

    def __init__(self, site: SiteMatcher, permalink: str, as_sent: str):
        self.site = site
        sent_path = site.local_path(as_sent)
        self.paths = {site.local_path(permalink)} | ({sent_path} if sent_path != "/" else set())
        self.paths.discard(None)
        self.by_id = plain_post_query(as_sent) if sent_path == "/" else None
        self.hints = {path.rstrip("/").rsplit("/", 1)[-1] for path in self.paths}
        if self.by_id:
            self.hints.add(self.by_id[0] + "=")  # "p=", not "p=1": a link may write "p=0001"

    def __call__(self, url: str) -> bool:
        path = self.site.local_path(url)
        return path in self.paths or (self.by_id is not None and path == "/" and plain_post_query(url) == self.by_id)
