"""Turning what people type into safe HTML, and small text helpers.

Posts are written by admins in Markdown (raw HTML allowed, then sanitised with a broad
allow-list); comments by strangers in a Markdown subset, sanitised with a narrow one.
Both are rendered once, when saved, so pages only print stored HTML.
"""
from __future__ import annotations

import html as html_module
import re
import unicodedata

import nh3
from markdown_it import MarkdownIt

_post_md = MarkdownIt("commonmark", {"html": True, "linkify": True, "typographer": True}).enable(
    ["table", "strikethrough", "linkify", "replacements", "smartquotes"]
)
_comment_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": True, "breaks": True})
    .enable(["linkify", "strikethrough", "replacements", "smartquotes"])
    .disable(["heading", "lheading", "image", "hr", "html_block", "html_inline", "reference"])
)

_SAFE_SCHEMES = {"http", "https", "mailto"}
_POST_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "dl", "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
_POST_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "abbr": {"title"},
}
_COMMENT_TAGS = {"a", "blockquote", "br", "code", "del", "em", "li", "ol", "p", "pre", "s", "strong", "ul"}


def render_post(body: str, body_format: str = "markdown") -> str:
    """A post's or page's stored HTML: its Markdown rendered, or its HTML (imported) as it is,
    sanitised with the posts' allow-list either way."""
    html = body or "" if body_format == "html" else _post_md.render(body or "")
    return nh3.clean(html, tags=_POST_TAGS, attributes=_POST_ATTRIBUTES, url_schemes=_SAFE_SCHEMES)


def sanitize_comment_html(html: str) -> str:
    """A comment that arrives as HTML (imported from WordPress): the comments' narrow allow-list."""
    return nh3.clean(html or "", tags=_COMMENT_TAGS, attributes={"a": {"href"}}, url_schemes=_SAFE_SCHEMES,
                     link_rel="nofollow ugc")


def render_comment(text: str) -> str:
    """A visitor's comment: Markdown-lite, links marked ``nofollow ugc``, nothing executable."""
    html = _comment_md.render(text or "")
    return nh3.clean(
        html,
        tags=_COMMENT_TAGS,
        attributes={"a": {"href"}},
        url_schemes=_SAFE_SCHEMES,
        link_rel="nofollow ugc",
    )


# Elements that stand apart from their neighbours: their text is never run into the next one's
# ("<li>one</li><li>two</li>" is "one two", not "onetwo").
_BLOCK_ELEMENTS = (
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h[1-6]", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
)
_BLOCK_TAG = re.compile(r"<(?=/?(?:" + "|".join(_BLOCK_ELEMENTS) + r")\b)", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """The text of an HTML fragment, entities decoded and whitespace collapsed; block elements
    (paragraphs, list items, cells, line breaks...) are kept apart by a space."""
    text = nh3.clean(_BLOCK_TAG.sub(" <", html or ""), tags=set())
    return " ".join(html_module.unescape(text).split())


def excerpt(html: str, limit: int) -> str:
    """The start of an HTML fragment's text (``html_to_text``), at most ``limit`` characters,
    cut between words and ended with "…" when cut."""
    text = html_to_text(html)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # (a word longer than the limit is cut through)
    return cut.rstrip() + "…"


def slugify(value: str, max_length: int = 180) -> str:
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^a-zA-Z0-9]+", "-", value).strip("-").lower()
    return value[:max_length].strip("-")


def safe_http_url(value: str) -> str:
    """``value`` if it is an http(s) URL, else an empty string (no ``javascript:`` author links)."""
    value = (value or "").strip()
    if re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE):
        return value
    return ""
