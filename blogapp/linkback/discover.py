"""Finding where to send a linkback: a Webmention endpoint, else a pingback server, else a trackback URL.

``discover(fetcher, target_url)`` fetches the target once, with a GET through the guarded fetcher
(which follows redirects and reports the final URL), and reads the endpoints from that one response:

- **Webmention** (W3C Recommendation, §3.1.2): the first HTTP ``Link`` header value whose rel is
  ``webmention``, then, for an HTML page, the first ``<link>`` or ``<a>`` element in document order
  whose rel contains ``webmention`` and which has an ``href``. Relative endpoints are resolved
  against the target's final URL after redirects, as the spec says ("relative to the target URL");
  a ``<base>`` element is *not* used. The query string is kept; an empty ``href`` is the page itself.
- **Pingback** (Pingback 1.0 §2.3): the first ``X-Pingback`` header, else the first
  ``<link rel="pingback" href>``.
- **Trackback** (TrackBack 1.2 autodiscovery): the ``trackback:ping`` of an embedded
  ``<rdf:Description>`` (WordPress prints it inside an HTML comment) whose ``rdf:about`` or
  ``dc:identifier`` is the target URL, else the first ``<link rel="trackback" href>``.

Headers are read whatever the response's type, so an image or a PDF can still name a Webmention
endpoint in a ``Link`` header (or a pingback server in ``X-Pingback``); the HTML is only parsed
when the response is HTML or XHTML. Endpoints that do not resolve to an http(s) URL are skipped.
A target that cannot be fetched (an HTTP error, refused by the guard, a timeout...) has no
endpoint: ``discover`` logs why and returns None; it raises nothing for a bad target.

Plain Python, no Flask.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup

from .fetch import HTML_TYPES, FetchError, FetchResult, GuardedFetcher
from .verify import decode_html

log = logging.getLogger(__name__)

__all__ = ["Endpoint", "discover", "endpoint_of", "find_pingback", "find_trackback", "find_webmention", "parse_link_header"]

_HTML_SPACE = " \t\n\r\f"  # ASCII whitespace, stripped from an href as HTML does
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
_BARE_VALUE = re.compile(r"[^;,\s]*")
_RDF_START = re.compile(r"<rdf:RDF\b", re.IGNORECASE)
_RDF_END = "</rdf:rdf>"


@dataclass
class Endpoint:
    protocol: str  # "webmention" | "pingback" | "trackback"
    url: str  # absolute endpoint URL


def discover(fetcher: GuardedFetcher, target_url: str) -> Endpoint | None:
    """The best endpoint ``target_url`` offers: Webmention, else pingback, else trackback, else None.

    One GET of the target. A target that cannot be fetched yields None (logged at INFO).
    """
    try:
        page = fetcher.fetch(target_url, html_only=False)
    except FetchError as exc:
        log.info("no linkback endpoint for %s: %s", target_url, exc.message)
        return None
    return endpoint_of(page)


def endpoint_of(page: FetchResult) -> Endpoint | None:
    """The best endpoint a fetched target page offers: Webmention, else pingback, else trackback."""
    soup = _parse(page)  # once, for all three
    for protocol, finder in (("webmention", _find_webmention), ("pingback", _find_pingback),
                             ("trackback", _find_trackback)):
        url = finder(page, soup)
        if url:
            return Endpoint(protocol, url)
    log.debug("no linkback endpoint offered by %s", page.url)
    return None


# ------------------------------------------------------------------ the three finders


def find_webmention(page: FetchResult) -> str | None:
    """The Webmention endpoint a fetched page advertises (Link header first, then the HTML)."""
    return _find_webmention(page, _parse(page))


def find_pingback(page: FetchResult) -> str | None:
    """The pingback server a fetched page advertises (X-Pingback header first, then ``<link>``)."""
    return _find_pingback(page, _parse(page))


def find_trackback(page: FetchResult) -> str | None:
    """The trackback ping URL a fetched page advertises (RDF for this URL first, then ``<link>``)."""
    return _find_trackback(page, _parse(page))


def _find_webmention(page: FetchResult, soup: BeautifulSoup | None) -> str | None:
    for target, params in parse_link_header(page.headers.get("link", "")):
        if "webmention" in params.get("rel", "").lower().split():
            endpoint = _http_endpoint(page.url, target)
            if endpoint:
                return endpoint
    if soup is not None:
        for element in soup.find_all(("link", "a")):
            if _has_rel(element, "webmention") and element.has_attr("href"):
                endpoint = _http_endpoint(page.url, element["href"])
                if endpoint:
                    return endpoint
    return None


def _find_pingback(page: FetchResult, soup: BeautifulSoup | None) -> str | None:
    header = page.headers.get("x-pingback", "")
    # Repeated headers arrive joined by ", " (a space cannot be part of a URL): the first one wins.
    first = header.split(", ")[0].strip()
    if first:
        endpoint = _http_endpoint(page.url, first)
        if endpoint:
            return endpoint
    return _first_rel_link(page, soup, "pingback")


def _find_trackback(page: FetchResult, soup: BeautifulSoup | None) -> str | None:
    if soup is not None:
        wanted = {_comparable(url) for url in (page.url, *page.redirects)}
        for description in _rdf_descriptions(decode_html(page.body, page.charset)):
            about = {_comparable(description.get(name, "")) for name in ("rdf:about", "dc:identifier")}
            ping = description.get("trackback:ping", "")
            if about & wanted and ping.strip(_HTML_SPACE):
                endpoint = _http_endpoint(page.url, ping)
                if endpoint:
                    return endpoint
    return _first_rel_link(page, soup, "trackback")


# ------------------------------------------------------------------ HTTP Link headers


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """The links in a ``Link`` header value (RFC 8288): ``[(uri-reference, {param: value})]``.

    Parameter names are lower-cased and only a parameter's first occurrence counts; values may be
    quoted (with backslash escapes, commas and semicolons inside) or bare. Repeated ``Link``
    headers, joined with commas, read the same as one header with comma-separated values.
    """
    links: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start + 1)
        if end < 0:
            break
        target, i = value[start + 1:end].strip(), end + 1
        params: dict[str, str] = {}
        while True:
            i = _skip_space(value, i)
            if i >= n or value[i] != ";":
                break
            i = _skip_space(value, i + 1)
            match = _TOKEN.match(value, i)
            name, i = match.group(0).lower(), match.end()
            i = _skip_space(value, i)
            param = ""
            if i < n and value[i] == "=":
                i = _skip_space(value, i + 1)
                if i < n and value[i] == '"':
                    param, i = _quoted(value, i + 1)
                else:
                    match = _BARE_VALUE.match(value, i)
                    param, i = match.group(0), match.end()
            if name and name not in params:
                params[name] = param
        links.append((target, params))
        comma = value.find(",", i)
        if comma < 0:
            break
        i = comma + 1
    return links


def _skip_space(value: str, i: int) -> int:
    while i < len(value) and value[i] in " \t":
        i += 1
    return i


def _quoted(value: str, i: int) -> tuple[str, int]:
    """A quoted-string's content from just after its opening quote; and where it ends."""
    out = []
    while i < len(value) and value[i] != '"':
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out), i + 1


# ------------------------------------------------------------------ HTML


def _parse(page: FetchResult) -> BeautifulSoup | None:
    """The page's HTML, parsed; None when the response is not HTML (only its headers count)."""
    if page.content_type not in HTML_TYPES or not page.body:
        return None
    return BeautifulSoup(decode_html(page.body, page.charset), "lxml")


def _has_rel(element, keyword: str) -> bool:
    rel = element.get("rel") or []
    tokens = rel.split() if isinstance(rel, str) else rel
    return keyword in (token.lower() for token in tokens)


def _first_rel_link(page: FetchResult, soup: BeautifulSoup | None, keyword: str) -> str | None:
    """The first ``<link rel=keyword href>``'s URL, resolved."""
    if soup is None:
        return None
    for element in soup.find_all("link", href=True):
        if _has_rel(element, keyword):
            endpoint = _http_endpoint(page.url, element["href"])
            if endpoint:
                return endpoint
    return None


def _rdf_descriptions(text: str) -> Iterator[dict[str, str]]:
    """The attributes of every ``<rdf:Description>`` in the page's embedded ``<rdf:RDF>`` blocks.

    The blocks are found in the raw text, so one inside an HTML comment (as WordPress and Movable
    Type print them) counts; escaped markup (``&lt;rdf:RDF``) does not. Names are matched by their
    conventional prefixes (rdf:, dc:, trackback:), as Movable Type's own discovery does.
    """
    pieces = _RDF_START.split(text)
    for piece in pieces[1:]:
        end = piece.lower().find(_RDF_END)
        if end < 0:
            continue
        block = BeautifulSoup("<rdf:RDF" + piece[:end] + "</rdf:RDF>", "html.parser")
        for description in block.find_all("rdf:description"):
            yield {name: value for name, value in description.attrs.items() if isinstance(value, str)}


# ------------------------------------------------------------------ URLs


def _http_endpoint(base: str, reference: str) -> str | None:
    """``reference`` made absolute against ``base``; None unless the result is an http(s) URL."""
    reference = reference.strip(_HTML_SPACE)
    try:
        url = urljoin(base, reference) if reference else urldefrag(base).url
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _comparable(url: str) -> str:
    """A URL as trackback discovery compares it: no fragment, case-blind scheme and host, no
    default port, and no trailing slash."""
    url = url.strip(_HTML_SPACE)
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}{path}" + (f"?{parts.query}" if parts.query else "")
