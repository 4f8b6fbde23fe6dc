"""Reading a fetched page: does it link to us, what is it called, what does it say around the link."""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag
from bs4.dammit import EncodingDetector

from .errors import NO_LINK, SOURCE_NOT_FOUND, LinkbackError, SourceGone

# Text limits every protocol shares (WordPress's, as senders and importers expect them).
NAME_LIMIT = 250  # a linkback's name: the page's title, an h-card name, a trackback's title or blog name
EXCERPT_LIMIT = 252  # a trackback's excerpt, as WordPress sends and keeps it
# What counts as a link to the target: the element and its URL attribute. Pingback and trackback
# take <a>/<area>; Webmention adds media (the W3C implementation report's cases).
ANCHORS = {"a": "href", "area": "href"}
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


@dataclass
class SourceReading:
    """What a verified linkback shows, as stored on its comment (every protocol)."""

    author_name: str
    content: str = ""
    author_url: str = ""  # empty: the source's URL
    author_photo: str = ""
    response_type: str | None = None  # Webmention only: mention, reply, like, repost, bookmark


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
              links_to_target: Callable[[str], bool], **kw) -> PageReading:
    """``read_html`` of the page's bytes, decoded by ``decode_html``."""
    return read_html(decode_html(body, http_charset), final_url, links_to_target, **kw)


def read_html(text: str, final_url: str, links_to_target: Callable[[str], bool], *, hints: Iterable[str] = (),
              linking: Mapping[str, str] = ANCHORS, status_meta: bool = False) -> PageReading:
    """Find a link to the target and read the page's title and the excerpt around that link.

    ``links_to_target(url)`` says whether an absolute URL is the target. Raises
    ``LinkbackError(NO_LINK)`` when no element of ``linking`` (name -> URL attribute; by default
    ``<a href>`` and ``<area href>``) resolves to it. ``status_meta``: a page carrying
    ``<meta http-equiv="Status" content="410 Gone">`` raises ``SourceGone`` (a static page's 410).

    ``hints``: strings of which any link to the target contains at least one (such as the
    post's slug), letter case, percent-escapes and character references aside. With them, a
    page is first scanned for the link tags that could be such a link, outside comments,
    scripts and styles; BeautifulSoup then reads only those tags, and the few kilobytes around
    the one that links, instead of building the whole page (a 1 MB page costs a few times a
    bare lxml parse, not thirty).
    """
    needles = tuple(h.lower() for h in hints if h)
    if needles:
        reading = _read_narrowed(text, final_url, links_to_target, needles, linking, status_meta)
        if reading is not None:
            return reading
    soup = BeautifulSoup(text, "lxml")
    if status_meta and _says_gone(soup):
        raise _gone_by_meta()
    link = _link_to_target(soup, _base_of(soup, final_url), links_to_target, linking)
    if link is None:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    return PageReading(title=page_title(soup, final_url), excerpt=excerpt_around(link), link_text=_link_text(link))


def _base_of(soup: BeautifulSoup, final_url: str) -> str:
    base_tag = soup.find("base", href=True)
    try:
        return urljoin(final_url, base_tag["href"].strip()) if base_tag else final_url
    except ValueError:
        return final_url


def _link_to_target(soup: BeautifulSoup, base: str, links_to_target: Callable[[str], bool],
                    linking: Mapping[str, str]) -> Tag | None:
    """The first element of ``linking`` in ``soup`` whose URL, resolved against ``base``, is the target."""
    for candidate in soup.find_all(list(linking)):
        value = candidate.get(linking[candidate.name])
        href = value.strip() if isinstance(value, str) else ""
        if not href or href.startswith("#"):
            continue
        try:
            absolute = urljoin(base, href)
        except ValueError:
            continue
        if links_to_target(absolute):
            return candidate
    return None


def _says_gone(soup: BeautifulSoup) -> bool:
    """``<meta http-equiv="Status" content="410 Gone">``: a static page's way of answering 410."""
    for meta in soup.find_all("meta", attrs={"http-equiv": True, "content": True}):
        if meta["http-equiv"].strip().lower() == "status" and meta["content"].strip().startswith("410"):
            return True
    return False


def _gone_by_meta() -> SourceGone:
    return SourceGone(SOURCE_NOT_FOUND, "The source page says it is gone (HTTP-equiv status 410).")


@lru_cache(maxsize=8)
def _scanner(elements: tuple[str, ...]) -> re.Pattern:
    """One pass over the page's text: comments and the raw-text elements are taken whole (nothing
    in them is a link; a <title>'s text is kept), and every start tag of ``elements``, <base> and
    <meta> is found."""
    names = "|".join(sorted({*elements, "base", "meta"}, key=len, reverse=True))
    return re.compile(
        r"<!--.*?(?:-->|\Z)"
        r"|<(script|style|textarea|title|xmp)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>(.*?)(?:</\1\s*>|\Z)"
        rf"|<({names})\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
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


def _read_narrowed(text: str, final_url: str, links_to_target, needles: tuple[str, ...],
                   linking: Mapping[str, str], status_meta: bool) -> PageReading | None:
    title_text, base_tag, candidates, skipped, metas = None, None, [], [], []
    for match in _scanner(tuple(sorted(linking))).finditer(text):
        raw_element, element = match.group(1), match.group(3)
        if element is None:
            skipped.append(match.span())
            if raw_element and raw_element.lower() == "title" and title_text is None:
                title_text = match.group(2)
        elif (name := element.lower()) == "base":
            base_tag = base_tag or match.group(0)
        elif name == "meta":
            if status_meta and "http-equiv" in match.group(0).lower():
                metas.append(match.group(0))
        elif _mentions(match.group(0), needles):
            candidates.append((match.start(), match.end(), name))
    if metas and _says_gone(BeautifulSoup("".join(metas), "lxml")):
        raise _gone_by_meta()
    if not candidates:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    # BeautifulSoup decides: on the candidate tags alone (each closed, so none nests in another).
    base = _base_of(BeautifulSoup(base_tag, "lxml"), final_url) if base_tag else final_url
    few = BeautifulSoup("".join(f"{text[a:b]}</{name}>" for a, b, name in candidates), "lxml")
    tags = few.find_all(list(linking))
    if len(tags) != len(candidates):
        return None  # markup too odd to map back: read the whole page
    link = _link_to_target(few, base, links_to_target, linking)
    if link is None:
        raise LinkbackError(NO_LINK, "The source page does not link to the target.")
    start, end, _ = candidates[next(i for i, tag in enumerate(tags) if tag is link)]
    # The excerpt: the page around the link, starting outside any comment or script.
    window_start = max(0, start - WINDOW)
    for a, b in skipped:
        if a < window_start < b:
            window_start = b
            break
    around = BeautifulSoup(text[window_start:end + WINDOW], "lxml")
    found = _link_to_target(around, base, links_to_target, linking) or link
    if title_text is not None and squash(html.unescape(title_text)):
        title = cap(squash(html.unescape(title_text)), NAME_LIMIT)
    elif "h-entry" in text:
        title = page_title(BeautifulSoup(text, "lxml"), final_url)  # rare: no <title>, maybe an h-entry name
    else:
        title = urlsplit(final_url).hostname or final_url
    return PageReading(title=title, excerpt=excerpt_around(found), link_text=_link_text(found))


def page_title(soup: BeautifulSoup, final_url: str) -> str:
    """``<title>``, else the h-entry's name, else the host."""
    if soup.title and squash(soup.title.get_text()):
        return cap(squash(soup.title.get_text()), NAME_LIMIT)
    entry = soup.find(class_="h-entry")
    name = entry.find(class_="p-name") if entry else None
    if name and squash(name.get_text()):
        return cap(squash(name.get_text()), NAME_LIMIT)
    return urlsplit(final_url).hostname or final_url


def _is_visible(node) -> bool:
    return (isinstance(node, NavigableString) and not isinstance(node, _INVISIBLE)
            and not any(p.name in _SKIP_PARENTS for p in node.parents if isinstance(p, Tag)))


def _visible_strings(node: Tag):
    return (string for string in node.descendants if _is_visible(string))


def _link_text(link: Tag) -> str:
    text = (squash(link.get_text()) or squash(link.get("title", "")) or squash(link.get("alt", ""))
            or link.get("href") or link.get("src") or "")
    return cap(text, LINK_TEXT_LIMIT)


def excerpt_around(link: Tag) -> str:
    """Up to about 100 characters each side of the link's text, from the block around it.

    Counted in characters, cut at word boundaries, marked ``[…]`` where text was left out.
    Other links nearby are just text here, so they cannot break it.
    """
    block = link.find_parent(BLOCKS) or link
    inside = set(id(s) for s in _visible_strings(link))
    before, after, seen_link = [], [], False
    for node in block.descendants:  # in document order: the link itself (an <img> has no text) splits it
        if node is link:
            seen_link = True
        elif id(node) not in inside and _is_visible(node):
            (after if seen_link else before).append(str(node))
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

