"""Reading a fetched page: does it link to us, what is it called, what does it say around the link."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag
from bs4.dammit import EncodingDetector

from .errors import NO_LINK, LinkbackError

TITLE_LIMIT = 250
LINK_TEXT_LIMIT = 100
CONTEXT_CHARS = 100
ELLIPSIS = "[…]"
# The block around a link whose text makes the excerpt, as WordPress splits a page into paragraphs.
BLOCKS = ("p", "li", "dd", "dt", "td", "th", "blockquote", "pre", "figcaption", "caption",
          "h1", "h2", "h3", "h4", "h5", "h6", "article", "section", "main", "div", "body")
_INVISIBLE = (Comment, Doctype)
# Characters XML 1.0 cannot carry (a page can still hold "&#1;"): stored, they break the Atom feeds.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SKIP_PARENTS = {"script", "style", "template", "noscript", "head", "title"}


@dataclass
class PageReading:
    title: str
    excerpt: str
    link_text: str


def decode_html(body: bytes, http_charset: str | None) -> str:
    """The page as text: the HTTP charset, then a BOM, then ``<meta charset>``, then detection."""
    detector = EncodingDetector(body, known_definite_encodings=[http_charset] if http_charset else [], is_html=True)
    for encoding in detector.encodings:
        try:
            return body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("utf-8", errors="replace")


def squash(text: str) -> str:
    return " ".join(NOT_XML.sub("", text).split())


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def read_page(body: bytes, http_charset: str | None, final_url: str,
              links_to_target: Callable[[str], bool]) -> PageReading:
    """Find a link to the target and read the page's title and the excerpt around that link.

    ``links_to_target(url)`` says whether an absolute URL is the target. Raises
    ``LinkbackError(NO_LINK)`` when no ``<a href>`` or ``<area href>`` resolves to it.
    """
    text = decode_html(body, http_charset)
    soup = BeautifulSoup(text, "lxml")
    base_tag = soup.find("base", href=True)
    base = urljoin(final_url, base_tag["href"].strip()) if base_tag else final_url
    link = None
    for candidate in soup.find_all(("a", "area"), href=True):
        href = candidate["href"].strip()
        if not href or href.startswith("#"):
            continue
        try:
            absolute = urljoin(base, href)
        except ValueError:
            continue
        if links_to_target(absolute):
            link = candidate
            break
    if link is None:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    return PageReading(title=page_title(soup, final_url), excerpt=excerpt_around(link), link_text=_link_text(link))


def page_title(soup: BeautifulSoup, final_url: str) -> str:
    """``<title>``, else the h-entry's name, else the host."""
    if soup.title and squash(soup.title.get_text()):
        return cap(squash(soup.title.get_text()), TITLE_LIMIT)
    entry = soup.find(class_="h-entry")
    name = entry.find(class_="p-name") if entry else None
    if name and squash(name.get_text()):
        return cap(squash(name.get_text()), TITLE_LIMIT)
    return urlsplit(final_url).hostname or final_url


def _visible_strings(node: Tag):
    for string in node.descendants:
        if not isinstance(string, NavigableString) or isinstance(string, _INVISIBLE):
            continue
        if any(p.name in _SKIP_PARENTS for p in string.parents if isinstance(p, Tag)):
            continue
        yield string


def _link_text(link: Tag) -> str:
    text = squash(link.get_text()) or squash(link.get("title", "")) or squash(link.get("alt", "")) or link.get("href", "")
    return cap(text, LINK_TEXT_LIMIT)


def excerpt_around(link: Tag) -> str:
    """Up to about 100 characters each side of the link's text, from the block around it.

    Counted in characters, cut at word boundaries, marked ``[…]`` where text was left out.
    Other links nearby are just text here, so they cannot break it.
    """
    block = link.find_parent(BLOCKS) or link
    inside = set(id(s) for s in _visible_strings(link))
    before, after, seen_link = [], [], False
    for string in _visible_strings(block):
        if id(string) in inside:
            seen_link = True
            continue
        (after if seen_link else before).append(str(string))
    before_text, after_text = squash("".join(before)), squash("".join(after))
    head = before_text
    if len(head) > CONTEXT_CHARS:
        head = head[-CONTEXT_CHARS:]
        head = head.split(" ", 1)[1] if " " in head else head
    tail = after_text
    if len(tail) > CONTEXT_CHARS:
        tail = tail[:CONTEXT_CHARS]
        tail = tail.rsplit(" ", 1)[0] if " " in tail else tail
    middle = _link_text(link)
    if tail and tail[0] in ",.;:!?)»”’":
        middle, tail = middle + tail, ""  # punctuation stays attached to the link text
    return squash(" ".join(p for p in (ELLIPSIS, head, middle, tail, ELLIPSIS) if p))

