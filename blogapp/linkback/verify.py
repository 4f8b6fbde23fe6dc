"""Reading a fetched page: does it link to us, what is it called, what does it say around the link."""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

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
              links_to_target: Callable[[str], bool], *, hints: Iterable[str] = ()) -> PageReading:
    """Find a link to the target and read the page's title and the excerpt around that link.

    ``links_to_target(url)`` says whether an absolute URL is the target. Raises
    ``LinkbackError(NO_LINK)`` when no ``<a href>`` or ``<area href>`` resolves to it.

    ``hints``: strings of which any link to the target contains at least one (such as the
    post's slug), letter case, percent-escapes and character references aside. With them, a
    page is first scanned for the link tags that could be such a link, outside comments,
    scripts and styles; BeautifulSoup then reads only those tags, and the few kilobytes around
    the one that links, instead of building the whole page (a 1 MB page costs a few times a
    bare lxml parse, not thirty).
    """
    text = decode_html(body, http_charset)
    needles = tuple(h.lower() for h in hints if h)
    if needles:
        reading = _read_narrowed(text, final_url, links_to_target, needles)
        if reading is not None:
            return reading
    soup = BeautifulSoup(text, "lxml")
    link = _first_link(soup, _base_of(soup, final_url), links_to_target)
    if link is None:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    return PageReading(title=page_title(soup, final_url), excerpt=excerpt_around(link), link_text=_link_text(link))


def _base_of(soup: BeautifulSoup, final_url: str) -> str:
    base_tag = soup.find("base", href=True)
    try:
        return urljoin(final_url, base_tag["href"].strip()) if base_tag else final_url
    except ValueError:
        return final_url


def _first_link(soup: BeautifulSoup, base: str, links_to_target: Callable[[str], bool]) -> Tag | None:
    for candidate in soup.find_all(("a", "area"), href=True):
        href = candidate["href"].strip()
        if not href or href.startswith("#"):
            continue
        try:
            absolute = urljoin(base, href)
        except ValueError:
            continue
        if links_to_target(absolute):
            return candidate
    return None


# One pass over the page's text: comments and the raw-text elements are taken whole (nothing in
# them is a link; a <title>'s text is kept), and every <a>, <area> and <base> start tag is found.
_SCAN = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|textarea|title|xmp)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>(.*?)(?:</\1\s*>|\Z)"
    r"|<(a|area|base)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
    re.IGNORECASE | re.DOTALL,
)
WINDOW = 6000  # characters of the page read each side of the link, for its excerpt


def _mentions(tag: str, needles: tuple[str, ...]) -> bool:
    lowered = tag.lower()
    if "%" in lowered:
        lowered = unquote(lowered)
    if "&" in lowered:
        lowered = html.unescape(lowered)
    return any(needle in lowered for needle in needles)


def _read_narrowed(text: str, final_url: str, links_to_target, needles: tuple[str, ...]) -> PageReading | None:
    title_text, base_tag, candidates, skipped = None, None, [], []
    for match in _SCAN.finditer(text):
        raw_element, link_element = match.group(1), match.group(3)
        if link_element is None:
            skipped.append(match.span())
            if raw_element and raw_element.lower() == "title" and title_text is None:
                title_text = match.group(2)
        elif link_element.lower() == "base":
            base_tag = base_tag or match.group(0)
        elif _mentions(match.group(0), needles):
            candidates.append(match.span())
    if not candidates:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    # BeautifulSoup decides: on the candidate tags alone (each closed, so none nests in another).
    base = _base_of(BeautifulSoup(base_tag, "lxml"), final_url) if base_tag else final_url
    few = BeautifulSoup("".join(text[a:b] + "</a>" for a, b in candidates), "lxml")
    tags = few.find_all(("a", "area"))
    if len(tags) != len(candidates):
        return None  # markup too odd to map back: read the whole page
    link = _first_link(few, base, links_to_target)
    if link is None:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    start, end = candidates[next(i for i, tag in enumerate(tags) if tag is link)]
    # The excerpt: the page around the link, starting outside any comment or script.
    window_start = max(0, start - WINDOW)
    for a, b in skipped:
        if a < window_start < b:
            window_start = b
            break
    around = BeautifulSoup(text[window_start:end + WINDOW], "lxml")
    found = _first_link(around, base, links_to_target) or link
    if title_text is not None and squash(html.unescape(title_text)):
        title = cap(squash(html.unescape(title_text)), TITLE_LIMIT)
    elif "h-entry" in text:
        title = page_title(BeautifulSoup(text, "lxml"), final_url)  # rare: no <title>, maybe an h-entry name
    else:
        title = urlsplit(final_url).hostname or final_url
    return PageReading(title=title, excerpt=excerpt_around(found), link_text=_link_text(found))


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

