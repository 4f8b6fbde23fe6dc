"""Reading a Webmention's source: does it link to the target, and what do we show for it.

One reader per page: ``verify.read_html`` (narrowed by the target's slug) finds the link, the
title and the excerpt around the link, as for a pingback; mf2py adds what only microformats
give (the h-entry's author h-card, its content, its kind of response) and runs only on a page
that has an h-entry. Each field falls back to the pingback's: no h-card name, the page's
``<title>``; no content, the excerpt.

Plain Python, no Flask.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import mf2py

from .errors import NO_LINK, LinkbackError, SourceGone
from .fetch import HTML_TYPES, FetchResult
from .urls import TargetLinks, is_http_url
from .verify import NAME_LIMIT, SourceReading, cap, decode_html, read_html, squash

log = logging.getLogger(__name__)

CONTENT_LIMIT = 1000
# Elements whose URL attribute counts as a link to the target (the W3C implementation report's cases).
LINKING = {"a": "href", "img": "src", "video": "src", "audio": "src", "source": "src"}
# mf2 property -> response type, in order of precedence.
RESPONSE_PROPERTIES = (("in-reply-to", "reply"), ("like-of", "like"), ("repost-of", "repost"),
                       ("bookmark-of", "bookmark"))
REACTIONS = ("like", "repost", "bookmark")  # shown compactly above the thread, not as comments
# What a source may be (Webmention §3.2.2): HTML is read; text and JSON only for the target URL.
SOURCE_TYPES = (*HTML_TYPES, "text/plain", "application/json")
ACCEPT = "text/html, application/xhtml+xml;q=0.9, application/json;q=0.5, text/plain;q=0.4"


def read_source(page: FetchResult, links: TargetLinks, target_urls: set[str]) -> SourceReading:
    """Verify a fetched source links to the target and read it.

    ``links`` says which URLs are the target; ``target_urls`` are the target as the sender wrote
    it and the post's permalink (what a text or JSON source must contain verbatim).
    Raises ``SourceGone`` when the page says it is gone or does not link to the target.
    """
    text = decode_html(page.body, page.charset)
    if page.content_type not in HTML_TYPES:
        # Webmention §3.2.2: a plain-text source must contain the target URL; a JSON one must
        # have it as a value. Such a source has no title or microformats: a plain mention.
        found = (any(t in text for t in target_urls) if page.content_type == "text/plain"
                 else _json_mentions(text, target_urls, links))
        if not found:
            raise SourceGone(NO_LINK, "The source does not mention the target URL.")
        return SourceReading(author_name=urlsplit(page.url).hostname or "", response_type="mention")
    try:
        plain = read_html(text, page.url, links, hints=links.hints, linking=LINKING, status_meta=True)
    except SourceGone:
        raise
    except LinkbackError as error:
        if error.code == NO_LINK:  # a page that stopped linking takes its mention away
            raise SourceGone(NO_LINK, error.message) from None
        raise
    reading = SourceReading(author_name=plain.title, content=plain.excerpt, response_type="mention")
    if "h-entry" in text:  # mf2py parses the whole page: only where microformats may answer
        _read_microformats(text, page.url, links, reading)
    return reading


def _read_microformats(text: str, url: str, is_target, reading: SourceReading) -> None:
    """Author (name, url, photo), content and response type from the h-entry that responds to
    the target, else the first; what it does not say keeps the plain reading's value."""
    try:
        parsed = mf2py.parse(doc=text, url=url)
    except Exception:  # a page mf2py cannot read is still a mention
        log.warning("mf2 parsing of %s failed", url, exc_info=True)
        return
    entries = list(_entries(parsed.get("items", [])))
    if not entries:
        return
    entry = next((e for e in entries for prop, _ in RESPONSE_PROPERTIES
                  if any(is_target(u) for u in _urls_of(e.get("properties", {}).get(prop)))), entries[0])
    props = entry.get("properties", {})
    for prop, kind in RESPONSE_PROPERTIES:
        if any(is_target(u) for u in _urls_of(props.get(prop))):
            reading.response_type = kind
            break
    name = author_url = photo = ""
    author = (props.get("author") or [None])[0]
    if isinstance(author, dict):
        aprops = author.get("properties", {})
        name = _first_str(aprops.get("name")) or (author.get("value") if isinstance(author.get("value"), str) else "")
        author_url, photo = _first_str(aprops.get("url")), _first_str(aprops.get("photo"))
    elif isinstance(author, str):
        if is_http_url(author):
            author_url = author
        else:
            name = author
    content = (props.get("content") or [None])[0]
    if isinstance(content, dict):
        body = content.get("value", "")
    elif isinstance(content, str):
        body = content
    else:
        body = _first_str(props.get("summary")) or _first_str(props.get("name"))
    reading.author_name = cap(squash(name), NAME_LIMIT) or reading.author_name
    reading.author_url = author_url if _usable_url(author_url) else ""
    reading.author_photo = photo if _usable_url(photo) else ""
    reading.content = cap(squash(body if isinstance(body, str) else ""), CONTENT_LIMIT) or reading.content


def _usable_url(url: str) -> bool:
    return is_http_url(url) and len(url) <= 2000


def _json_mentions(text: str, targets: set[str], is_target) -> bool:
    """Whether any string value in the JSON document is the target URL."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False
    stack, seen = [document], 0
    while stack and seen < 100_000:  # bounded: a 1 MB document cannot keep us long
        value = stack.pop()
        seen += 1
        if isinstance(value, str):
            if value in targets or (value.startswith(("http://", "https://")) and _is_target_url(value, is_target)):
                return True
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _is_target_url(value: str, is_target) -> bool:
    try:
        return is_target(value.strip())
    except ValueError:  # a URL urllib cannot split (a bad port, an odd IPv6 literal)
        return False


def _first_str(values) -> str:
    for value in values or []:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            return value["value"]
    return ""


def _urls_of(values) -> list[str]:
    urls = []
    for value in values or []:
        if isinstance(value, str):
            urls.append(value)
        elif isinstance(value, dict):
            urls.extend(v for v in value.get("properties", {}).get("url", []) if isinstance(v, str))
            if isinstance(value.get("value"), str):
                urls.append(value["value"])
    return urls


def _entries(items):
    for item in items:
        if "h-entry" in item.get("type", []):
            yield item
        yield from _entries(item.get("children", []))
