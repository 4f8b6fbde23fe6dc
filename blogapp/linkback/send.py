"""Sending linkbacks: which pages a post links to, and telling one of them that it does.

``outbound_links(html, base)`` lists the http(s) pages a rendered post links to (``<a>`` and
``<area>``, fragments dropped, in document order, each once). ``Sender.send(note)`` discovers
the target's endpoint through the guarded fetcher (Webmention, else pingback, else trackback;
see ``discover``) and sends with that protocol:

- Webmention: a form POST of ``source`` and ``target``; any 2xx is success (201 and 202 say
  the receiver will verify later).
- Pingback: ``pingback.ping(source, target)`` through the standard ``xmlrpc.client``, whose
  transport here is the guarded fetcher and whose parser is defusedxml's. Fault 48 (already
  registered) counts as success, as WordPress counts it.
- Trackback: the TrackBack 1.2 form POST (title, url, excerpt, blog_name, UTF-8); the XML
  answer's ``<error>0</error>`` is success.

Every endpoint is a stranger's URL, so every request goes through the same guard as receiving
(no private addresses, pinned connections, deadline, size cap). Nothing here raises for a bad
target: the ``SendResult`` says what happened, and ``transient`` whether trying later may help.

Plain Python, no Flask.
"""
from __future__ import annotations

import logging
import xmlrpc.client
from dataclasses import dataclass
from urllib.parse import urldefrag, urlencode, urljoin, urlsplit
from xml.parsers.expat import ExpatError

import defusedxml.ElementTree
import lxml.html
from bs4 import BeautifulSoup
from lxml import etree
from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

from .discover import Endpoint, endpoint_of
from .errors import ALREADY_REGISTERED
from .fetch import FetchError, FetchResult, GuardedFetcher, transient_status
from .verify import cap, decode_html, squash

log = logging.getLogger(__name__)

__all__ = ["Announcement", "SendResult", "Sender", "is_bare_home_page", "outbound_links"]

PROTOCOLS = ("webmention", "pingback", "trackback")
SENT, FAILED, NO_ENDPOINT, SKIPPED = "sent", "failed", "no-endpoint", "skipped"
MESSAGE_LIMIT = 500


def outbound_links(html: str, base_url: str) -> list[str]:
    """The absolute http(s) URLs that ``html`` links to, in document order, each once, no fragments."""
    try:
        root = lxml.html.fragment_fromstring(html or "", create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    seen: dict[str, str] = {}  # one spelling per page: "HTTP://X.example:80/a" is "http://x.example/a"
    for element in root.iter("a", "area"):
        href = (element.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        try:
            url = urldefrag(urljoin(base_url, href)).url
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            continue
        scheme = parts.scheme.lower()
        if scheme in ("http", "https") and parts.hostname:
            netloc = parts.hostname.lower() + (f":{port}" if port and port != {"http": 80, "https": 443}[scheme] else "")
            seen.setdefault(f"{scheme}://{netloc}{parts.path or '/'}?{parts.query}", url)
    return list(seen.values())


def is_bare_home_page(url: str) -> bool:
    """A link to a site's front page (no path, no query): WordPress does not ping those, nor do we."""
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


@dataclass
class Announcement:
    """What we tell a linked page: our page (``source``) links to it (``target``).

    The title, excerpt and blog name are only sent by trackback; the other two protocols make
    the receiver read them from our page.
    """

    source: str
    target: str
    title: str = ""
    excerpt: str = ""
    blog_name: str = ""


@dataclass
class SendResult:
    """What one attempt to tell a linked page came to (one ``LinkbackAttempt`` row)."""

    outcome: str  # sent | failed | no-endpoint | skipped, as LinkbackAttempt.outcome
    protocol: str | None = None
    endpoint: str | None = None
    code: int | None = None  # the HTTP status, or the pingback fault code
    message: str = ""
    transient: bool = False  # trying again later may work

    @property
    def ok(self) -> bool:
        return self.outcome == SENT


class Sender:
    def __init__(self, fetcher: GuardedFetcher):
        self.fetcher = fetcher

    def discover(self, target: str) -> Endpoint | None:
        """The target's best endpoint; raises ``FetchError`` when the target cannot be fetched."""
        return endpoint_of(self.fetcher.fetch(target, html_only=False))

    def send(self, note: Announcement, *, protocols: tuple[str, ...] = PROTOCOLS) -> SendResult:
        """Discover the target's endpoint and send with its protocol, if it is one of ``protocols``."""
        try:
            endpoint = self.discover(note.target)
        except FetchError as exc:
            return SendResult(FAILED, code=exc.status, message=_cap(f"The target could not be fetched: {exc.message}"),
                           transient=exc.transient)
        if endpoint is None:
            return SendResult(NO_ENDPOINT, message="The page offers no Webmention, pingback or trackback endpoint.")
        if endpoint.protocol not in protocols:
            return SendResult(SKIPPED, endpoint.protocol, endpoint.url,
                           message=f"The page takes {endpoint.protocol}s; only {' or '.join(protocols)} applies here.")
        send = {"webmention": self.webmention, "pingback": self.pingback, "trackback": self.trackback}[endpoint.protocol]
        return send(endpoint.url, note)

    # ------------------------------------------------------------ the three protocols

    def webmention(self, endpoint: str, note: Announcement) -> SendResult:
        body = urlencode({"source": note.source, "target": note.target}).encode("ascii")
        try:
            answer = self.fetcher.post(endpoint, body, content_type="application/x-www-form-urlencoded")
        except FetchError as exc:
            return SendResult(FAILED, "webmention", endpoint, exc.status, _cap(exc.message), exc.transient)
        if 200 <= answer.status < 300:
            message = f"Accepted (HTTP {answer.status})."
            if answer.headers.get("location"):
                message += f" Status: {urljoin(answer.url, answer.headers['location'])}"
            return SendResult(SENT, "webmention", endpoint, answer.status, _cap(message))
        return SendResult(FAILED, "webmention", endpoint, answer.status,
                       _cap(f"HTTP {answer.status}: {_answer_text(answer)}".rstrip(": ")),
                       transient=transient_status(answer.status))

    def pingback(self, endpoint: str, note: Announcement) -> SendResult:
        proxy = xmlrpc.client.ServerProxy(endpoint, transport=_GuardedTransport(self.fetcher, endpoint))
        try:
            answer = proxy.pingback.ping(note.source, note.target)
        except xmlrpc.client.Fault as fault:
            code = fault.faultCode if isinstance(fault.faultCode, int) else None
            text = squash(str(fault.faultString)) or "(no message)"
            if code == ALREADY_REGISTERED:
                return SendResult(SENT, "pingback", endpoint, code, _cap(f"Already registered: {text}"))
            return SendResult(FAILED, "pingback", endpoint, code, _cap(f"Fault {fault.faultCode}: {text}"))
        except xmlrpc.client.ProtocolError as exc:
            return SendResult(FAILED, "pingback", endpoint, exc.errcode, _cap(f"HTTP {exc.errcode}: {exc.errmsg}"),
                           transient=transient_status(exc.errcode))
        except FetchError as exc:
            return SendResult(FAILED, "pingback", endpoint, exc.status, _cap(exc.message), exc.transient)
        except (xmlrpc.client.ResponseError, ExpatError, DefusedXmlException, ValueError, TypeError) as exc:
            return SendResult(FAILED, "pingback", endpoint, None, _cap(f"The answer is not a valid XML-RPC response ({exc})."))
        if answer == ():  # <params/>: Pingback 1.0 says success returns a string
            return SendResult(FAILED, "pingback", endpoint, None, "The answer is not a valid XML-RPC response (no value).")
        return SendResult(SENT, "pingback", endpoint, None, _cap(squash(str(answer)) or "Registered."))

    def trackback(self, endpoint: str, note: Announcement) -> SendResult:
        body = urlencode({"title": note.title, "url": note.source, "excerpt": note.excerpt,
                          "blog_name": note.blog_name}).encode("ascii")
        try:
            answer = self.fetcher.post(endpoint, body, content_type="application/x-www-form-urlencoded; charset=utf-8",
                                       accept="application/xml, text/xml;q=0.9, */*;q=0.1")
        except FetchError as exc:
            return SendResult(FAILED, "trackback", endpoint, exc.status, _cap(exc.message), exc.transient)
        if answer.status != 200:
            return SendResult(FAILED, "trackback", endpoint, answer.status,
                           _cap(f"HTTP {answer.status}: {_answer_text(answer)}".rstrip(": ")),
                           transient=transient_status(answer.status))
        try:
            root = defusedxml.ElementTree.fromstring(answer.body.lstrip())
        except (defusedxml.ElementTree.ParseError, DefusedXmlException, ValueError):
            return SendResult(FAILED, "trackback", endpoint, 200, "The answer is not TrackBack XML.")
        error = (root.findtext("error") or "").strip()
        message = squash(root.findtext("message") or "")
        if error == "0":
            return SendResult(SENT, "trackback", endpoint, 200, _cap(message or "Trackback accepted."))
        return SendResult(FAILED, "trackback", endpoint, 200, _cap(f"Refused: {message or 'no reason given'}"))


class _GuardedTransport(xmlrpc.client.Transport):
    """``xmlrpc.client``'s transport, sending through the guarded fetcher and parsing defused."""

    def __init__(self, fetcher: GuardedFetcher, url: str):
        super().__init__()
        self.fetcher, self.url = fetcher, url

    def request(self, host, handler, request_body, verbose=False):
        answer = self.fetcher.post(self.url, request_body, content_type="text/xml", accept="text/xml, application/xml")
        if answer.status != 200:
            raise xmlrpc.client.ProtocolError(self.url, answer.status, _answer_text(answer) or "error", answer.headers)
        if answer.truncated:
            raise xmlrpc.client.ResponseError("the answer is larger than we read")
        unmarshaller = xmlrpc.client.Unmarshaller()
        parser = DefusedExpatParser(unmarshaller)
        try:
            # PHP sites often print whitespace before the XML declaration; WordPress's client trims it.
            parser.feed(answer.body.lstrip())
            parser.close()
            return unmarshaller.close()
        except xmlrpc.client.Fault:
            raise
        except Exception as exc:  # whatever a malformed answer makes the stdlib unmarshaller raise
            raise xmlrpc.client.ResponseError(f"{type(exc).__name__}: {exc}") from None


def _answer_text(answer: FetchResult) -> str:
    """A short, readable text of an error answer (HTML tags dropped)."""
    if not answer.body:
        return ""
    text = decode_html(answer.body[:20000], answer.charset)
    if "html" in answer.content_type:
        text = BeautifulSoup(text, "lxml").get_text(" ")
    return cap(squash(text), 300)


def _cap(text: str) -> str:
    return cap(text, MESSAGE_LIMIT)
