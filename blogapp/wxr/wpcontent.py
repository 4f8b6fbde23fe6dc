"""WordPress post content as WordPress shows it to readers.

A WXR export's ``content:encoded`` holds a post as it was written, not as it was shown:
WordPress builds the page by running filters over it. ``convert_post_content`` does the part
of that work that decides how an imported post reads:

- Block-editor content (it contains ``<!-- wp:``) keeps its HTML; the block delimiter comments
  go, and dynamic blocks that have no HTML of their own (``<!-- wp:latest-posts /-->``) vanish.
  WordPress does not run wpautop on such content, so neither do we.
- Classic content goes through ``autop``: paragraphs from blank lines, ``<br />`` from single
  newlines, as WordPress 6.1's wpautop does (see its docstring).
- WordPress's own shortcodes become HTML: ``[caption]``/``[wp_caption]`` a ``<figure>`` with a
  ``<figcaption>``; ``[gallery]`` a ``<figure class="gallery">`` of the export's attachments;
  ``[embed]URL[/embed]`` and a URL alone on its line (oEmbed, which we cannot fetch) a paragraph
  holding a link; ``[audio]``, ``[video]`` and ``[playlist]`` links to the media files. A
  figure never ends up inside a ``<p>``: where one would, the paragraph is closed before it and
  opened again after it.
- Shortcodes of plugins are left as text, exactly as written, as WordPress itself shows a
  shortcode nobody has registered. Their names are reported in ``Converted.unknown_shortcodes``.
- The text gets WordPress's typography (``texturize``, WordPress's wptexturize): curly quotes and
  apostrophes, primes, en and em dashes, ellipses, ™ and ×, as characters. As in WordPress this
  happens before shortcodes run: what a caption shortcode encloses is texturized, its
  ``caption="..."`` attribute is not; gallery captions are (WordPress texturizes those itself).

Which bracketed text counts as an unknown shortcode: WordPress only treats registered names as
shortcodes, so ``[sic]`` or ``[1]`` in prose was never one. We cannot know what was registered,
so we count ``[name ...]`` (not escaped, not inside ``<pre>``, ``<code>``, a comment or a tag)
only if ``name`` starts with a letter, is made of letters, digits, ``_`` and ``-``, and one of:
its attributes contain ``=``; it is self-closing (``[name /]``); a ``[/name]`` follows it; the
name contains ``_`` or ``-`` (``contact-form-7``, ``su_button``, ``vc_row``, ``et_pb_section``);
or the name is in ``PLUGIN_SHORTCODES``. Counted or not, the text stays as written.
``[[name]]`` (escaped) shows as ``[name]`` when ``name`` is a core or counted shortcode, as
WordPress showed it while the plugin was active; prose like ``[[sic]]`` stays as it is.

Deliberate differences from WordPress: shortcodes inside ``<pre>`` and ``<code>`` are left
alone (WordPress runs them); a caption or gallery in the middle of a paragraph splits it
(WordPress nests the figure in the ``<p>``); block tags are recognised in any letter case
(WordPress's wpautop only knows lower-case ones); where WordPress's wpautop leaves a stray
``</p>`` in tag soup, we leave none. Attachments are never downloaded; their URLs stay as
they are; the link text of an embed, audio or video URL is the URL as written (WordPress made
a dash of a "--" in it). Smilies are not turned into images. The result is not sanitised: it is
meant to go through ``blogapp.text`` next.

WordPress texturizes, when it shows them, post titles, contents and excerpts, comment texts,
category and tag names and descriptions, the site's name and description, and menu item
titles; not the names of comment authors (the comment list prints them as stored) nor the
``alt`` or ``title`` attributes. ``texturize_text`` is for the plain-text ones (a title),
``texturize`` for HTML (a comment's text, which WordPress texturizes before its wpautop).
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "Attachment",
    "Converted",
    "PLUGIN_SHORTCODES",
    "autop",
    "convert_post_content",
    "strip_block_comments",
    "texturize",
    "texturize_text",
]


@dataclass
class Attachment:
    """An attachment item of the export (``wp:post_type`` attachment)."""

    id: int
    url: str  # wp:attachment_url
    title: str = ""
    caption: str = ""  # excerpt:encoded of the attachment, HTML
    parent_id: int | None = None  # wp:post_parent


@dataclass
class Converted:
    """A post's content as readers saw it, and the shortcodes we could not render."""

    html: str
    unknown_shortcodes: list[str]  # names left as text, in order of appearance, repeats kept


# Shortcodes of popular plugins (Jetpack, form, gallery, slider and shop plugins) whose names
# are plain words; names with "_" or "-" count anyway.
PLUGIN_SHORTCODES = frozenset({
    "gravityform", "gravityforms", "wpforms", "formidable", "fluentform", "youtube", "vimeo",
    "soundcloud", "dailymotion", "slideshare", "googlemaps", "googleapps", "instagram", "flickr",
    "tweet", "twitter", "spotify", "bandcamp", "scribd", "gist", "ted", "twitch", "twitchtv", "vine",
    "polldaddy", "crowdsignal", "wufoo", "archives", "sitemap", "latex", "sourcecode", "recipe",
    "portfolio", "slideshow", "ngg", "nggallery", "imagebrowser", "singlepic", "layerslider",
    "metaslider", "smartslider3", "products", "product", "wpdm", "embedyt", "envira", "foogallery",
    "easyazon", "fbcomments", "ultimatemember", "woocommerce",
})

# --- autop ---------------------------------------------------------------------------------

# Elements WordPress's wpautop treats as blocks: never wrapped in <p>, no <br /> next to them.
_BLOCK_ELEMENTS = (
    "table thead tfoot caption col colgroup tbody tr td th div dl dd dt ul ol li pre form map area"
    " blockquote address math style p h1 h2 h3 h4 h5 h6 hr fieldset legend section article aside"
    " hgroup header footer nav figure details menu summary"
).split()


def _names_pattern(names: list[str]) -> str:
    """An alternation of ``names`` grouped by first letter: the regex engine then tries a
    handful of branches at each "<" instead of forty (searches take half the time)."""
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[0], []).append(name[1:])
    return "|".join(
        first + ("(?:" + "|".join(sorted(rests, key=len, reverse=True)) + ")" if rests != [""] else "")
        for first, rests in by_first.items()
    )


_BLOCK_NAMES = _names_pattern(_BLOCK_ELEMENTS)
# A block-level piece autop must not look inside: a <pre> element, a rendered shortcode.
# Tokens are control characters, which cannot occur in a WXR file (XML 1.0 forbids them).
_BLOCK_TOKEN = "\x01{}\x02"
_INLINE_TOKEN = "\x03{}\x04"
_KEPT_NEWLINE = "\x05"  # a newline autop must not turn into <br /> or a paragraph break
_SENTINELS = dict.fromkeys(range(0x00, 0x09))  # str.translate table that deletes them
_TOKEN = re.compile(r"\x01(\d+)\x02|\x03(\d+)\x04")

_PRE_ELEMENT = re.compile(r"<(?i:pre)\b[^>]*>.*?</(?i:pre)\s*>", re.S)
# Newlines that are not line breaks: inside a tag or comment, inside a script, style or svg.
_NEWLINES_TO_KEEP = re.compile(
    r"<(?:(?P<raw>(?i:script|style|svg))\b[^>]*>.*?</(?P=raw)>"
    r"|!--(?:[^\n-]|-(?!->))*\n.*?-->|[a-zA-Z/!?][^<>\n]*\n[^<>]*>)",
    re.S | re.I,
)
_DOUBLE_BR = re.compile(r"<(?i:br)\s*/?>\s*<(?i:br)\s*/?>")
_ANY_BR = re.compile(r"<(?i:br)\s*/?>")
_AROUND_FIGCAPTION = re.compile(r"\s*(<(?i:figcaption)\b)|(</(?i:figcaption)>)\s*")
# A paragraph ends before an opening block tag and after a closing one; both around an <hr>
# (it has no closing tag) and around a block token. (A pattern that starts with one plain
# character is searched much faster than one that starts with a choice: tokens go apart.)
_PARAGRAPH_BOUNDARY = re.compile(
    rf"<(?:(?P<both>(?i:hr)\b[^>]*>)"
    rf"|(?P<before>(?i:{_BLOCK_NAMES})(?=[\s/>]))"
    rf"|/(?P<after>(?i:{_BLOCK_NAMES}))>)"
)
_BLOCK_TOKEN_FOUND = re.compile(r"\x01\d+\x02")
_BLANK_LINE = re.compile(r"\n\s*\n")
# When deciding what sits at the edge of a paragraph, WordPress matches block names as prefixes,
# so <picture>, <param> and <track> count too; we do the same, to read the same.
_EDGE_TAG = re.compile(rf"</?(?i:{_BLOCK_NAMES})[^>]*>|\x01\d+\x02")
_LEADING_SPACE = re.compile(r"\s*")
_LONE_PARAGRAPH_OPEN = re.compile(r"<(?i:p)(?:\s[^>]*)?>")
_LONE_PARAGRAPH_CLOSE = re.compile(r"</(?i:p)\s*>")
_BLOCKQUOTE_OPEN = re.compile(r"<(?i:blockquote)\b")
_LIST_ITEM_OPEN = re.compile(r"<(?i:li)")
_CLOSES_DIV_LIKE = re.compile(r"</(?i:div|address|form)>")
# No <br /> goes before these (WordPress's own, shorter list; names again as prefixes).
_NO_BREAK_BEFORE = re.compile(r"\s*</?(?i:p|li|div|dl|dd|dt|th|pre|td|ul|ol)[^>]*>")
# For a <br /> that was already in the text, the same two rules as for the ones we add.
_SOURCE_BR_AFTER_TAG = re.compile(r">\s*<br />")
_SOURCE_BR_BEFORE_TAG = re.compile(r"<br />(?=\s*</?(?i:p|li|div|dl|dd|dt|th|pre|td|ul|ol)[^>]*>)")


def autop(text: str) -> str:
    """Paragraphs and line breaks as WordPress's ``wpautop`` (br on) makes them.

    Text separated by blank lines becomes ``<p>`` paragraphs; a single newline inside one
    becomes ``<br />``; two ``<br>`` in a row end a paragraph. Block-level elements (``div``,
    ``ul``, ``li``, ``blockquote``, ``table``, ``h1``-``h6``, ``figure``, ...) start and end
    paragraphs and get no ``<br />`` next to their tags; text right after an opening block tag
    is not wrapped (``<li>text</li>``), except in a ``blockquote``, whose text gets its own
    ``<p>``. ``<pre>`` elements are kept byte for byte; newlines inside tags and comments are
    not line breaks; existing ``<p>`` are not doubled; empty paragraphs are dropped. Inline
    content (``<a>``, ``<img>``, ``<strong>``, ``<iframe>``, comments) is wrapped like text.
    """
    pieces: list[str] = []
    return _fill_tokens(_autop_with_tokens(text.translate(_SENTINELS), pieces), pieces)


def _autop_with_tokens(text: str, pieces: list[str]) -> str:
    """``autop`` over text that may hold block tokens; ``<pre>`` elements become more of them."""
    if not text.strip():
        return ""
    if "<" in text:  # <pre> elements go before newlines are normalised: kept byte for byte
        text = _PRE_ELEMENT.sub(lambda m: _add_piece(pieces, m.group(), _BLOCK_TOKEN), text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _NEWLINES_TO_KEEP.sub(lambda m: m.group().replace("\n", _KEPT_NEWLINE), text)
    text = _DOUBLE_BR.sub("\n\n", text)
    text = _ANY_BR.sub("<br />", text)
    if "figcaption" in text or "FIGCAPTION" in text:
        # WordPress glues a figcaption to the image before it, so no <br /> comes between.
        text = _AROUND_FIGCAPTION.sub(lambda m: m.group(1) or m.group(2), text)
    text = _PARAGRAPH_BOUNDARY.sub(_mark_paragraph_boundary, text)
    if "\x01" in text:
        text = _BLOCK_TOKEN_FOUND.sub("\n\n\\g<0>\n\n", text)
    paragraphs = [p for p in (_paragraph(chunk.strip("\n")) for chunk in _BLANK_LINE.split(text)) if p]
    # A <p> or </p> standing alone between blank lines wrapped what now has paragraphs of its own.
    last = len(paragraphs) - 1
    paragraphs = [
        p for i, p in enumerate(paragraphs)
        if not (i < last and _LONE_PARAGRAPH_OPEN.fullmatch(p))
        and not (i > 0 and _LONE_PARAGRAPH_CLOSE.fullmatch(p))
    ]
    text = "".join(p + "\n" for p in paragraphs)
    if text.endswith("\n</p>\n"):  # WordPress trims the newline before the very last </p>
        text = text[:-6] + "</p>\n"
    return text.replace(_KEPT_NEWLINE, "\n")


def _mark_paragraph_boundary(m: re.Match) -> str:
    if m.group("before"):
        return "\n\n" + m.group()
    if m.group("after"):
        return m.group() + "\n\n"
    return "\n\n" + m.group() + "\n\n"  # <hr>


def _paragraph(chunk: str) -> str:
    """One blank-line-separated chunk as HTML. After the boundaries were marked, a chunk is at
    most: one block tag (or token) at its start, inline content, one block tag at its end."""
    body_start = _LEADING_SPACE.match(chunk).end()
    lead = _EDGE_TAG.match(chunk, body_start)
    lead_tag = lead.group() if lead else ""
    body_start = lead.end() if lead else 0
    trail_tag = _trailing_edge_tag(chunk, body_start)
    body = chunk[body_start:len(chunk.rstrip()) - len(trail_tag)] if trail_tag else chunk[body_start:]
    if not body.strip():
        return lead_tag + trail_tag

    if not lead_tag:
        opening = "<p>"
    elif _BLOCKQUOTE_OPEN.match(lead_tag):
        opening = lead_tag + "<p>"  # a quote's text is a paragraph of the quote
    else:
        opening = lead_tag  # text right inside <li>, <div>, <td>... stays bare
    if not trail_tag:
        # An open <li> on one line is its own item; anything else needs its paragraph closed.
        bare_list_item = bool(lead_tag) and _LIST_ITEM_OPEN.match(lead_tag) and "\n" not in chunk
        closing = "" if bare_list_item else "</p>"
    elif trail_tag.lower() == "</blockquote>":
        closing = "</p>" + trail_tag
    elif not lead_tag and "<" not in body and _CLOSES_DIV_LIKE.fullmatch(trail_tag):
        closing = "</p>" + trail_tag
    else:
        closing = trail_tag
    return _line_breaks(opening + body + closing)


def _trailing_edge_tag(chunk: str, start: int) -> str:
    """The block tag (or token) that ends ``chunk``, if one does after ``start``."""
    end = len(chunk.rstrip())
    if end <= start:
        return ""
    if chunk[end - 1] == ">":
        tag_start = chunk.rfind("<", start, end)
    elif chunk[end - 1] == "\x02":
        tag_start = chunk.rfind("\x01", start, end)
    else:
        return ""
    if tag_start != -1 and _EDGE_TAG.fullmatch(chunk, tag_start, end):
        return chunk[tag_start:end]
    return ""


def _line_breaks(html_text: str) -> str:
    """Each newline of a paragraph as ``<br />`` (spaces before it dropped), except right
    after a block tag, right before the closing or opening of a p, li, div, list or cell, and
    after a ``<br />`` that is already there."""
    has_source_br = "<br />" in html_text
    if "\n" in html_text:
        lines = html_text.split("\n")
        out: list[str] = []
        for line, next_line in zip(lines, lines[1:]):
            if line.endswith("<br />"):
                out.append(line + "\n")
                continue
            text = line.rstrip(" \t")
            if text.endswith("<br />"):  # WordPress then keeps one space and adds a second <br />
                text += line[len(text)]
            elif text.endswith(">") and _EDGE_TAG.fullmatch(text, text.rfind("<")):
                out.append(text + "\n")
                continue
            out.append(text + ("\n" if _NO_BREAK_BEFORE.match(next_line) else "<br />\n"))
        out.append(lines[-1])
        html_text = "".join(out)
    if has_source_br:
        html_text = _SOURCE_BR_AFTER_TAG.sub(lambda m: _drop_br_after_block_tag(html_text, m), html_text)
        html_text = _SOURCE_BR_BEFORE_TAG.sub("", html_text)
    return html_text


def _drop_br_after_block_tag(html_text: str, m: re.Match) -> str:
    tag_start = html_text.rfind("<", 0, m.start())
    if tag_start != -1 and _EDGE_TAG.fullmatch(html_text, tag_start, m.start() + 1):
        return ">"
    return m.group()


def _add_piece(pieces: list[str], html_text: str, token: str) -> str:
    """Keep ``html_text`` aside and return the token that stands for it ("" for nothing)."""
    if not html_text:
        return ""
    pieces.append(html_text)
    return token.format(len(pieces) - 1)


def _fill_tokens(text: str, pieces: list[str]) -> str:
    """``text`` with its tokens replaced by the pieces they stand for. A piece may hold older
    tokens (a <pre> that autop set aside after a shortcode inside it was replaced)."""
    if "\x01" not in text and "\x03" not in text:
        return text
    return _TOKEN.sub(lambda m: _fill_tokens(pieces[int(m.group(1) or m.group(2))], pieces), text)


# --- texturize -----------------------------------------------------------------------------

# Typographic characters wptexturize produces (WordPress writes them as numeric entities).
_LDQUO, _RDQUO, _LSQUO, _RSQUO = "\u201c", "\u201d", "\u2018", "\u2019"
_PRIME, _DOUBLE_PRIME = "\u2032", "\u2033"
_EN_DASH, _EM_DASH, _ELLIPSIS, _TIMES, _TRADE_MARK = "\u2013", "\u2014", "\u2026", "\u00d7", "\u2122"

# What counts as a space next to a quote or a dash: WordPress's list, not Unicode's.
_TX_SPACES = frozenset(" \t\r\n\xa0")
# A quote right after one of these (or at the start of the text) opens; a single quote also
# opens after a double one.
_OPENS_DOUBLE_AFTER = _TX_SPACES | frozenset("([{-")
_OPENS_SINGLE_AFTER = _OPENS_DOUBLE_AFTER | {'"'}
# A quote right before one of these (or at the end) may close.
_CLOSES_BEFORE = _TX_SPACES | frozenset(".,:;!?)}]-")
# A single quote between a non-space and anything but these is an apostrophe (it's, O'Neil).
_NOT_APOSTROPHE_BEFORE = _TX_SPACES | frozenset("([{\"-")
# Words that start with an apostrophe, not with an opening quote (lower case only).
_ELIDED_WORDS = ("tain't", "twere", "twas", "tis", "twill", "til", "bout", "nuff", "round", "cause", "em")

# Everything wptexturize changes, or must see, in a piece of text: the elided words, dash runs,
# a hyphen that may stand between spaces, "...", `` and '' pairs, quotes but for apostrophes
# between two letters (_IN_WORD_APOSTROPHE does those), " (tm)", and closing quotes already
# written as entities. (The lookahead lets the search skip quickly over most characters.)
_TX_TOKEN = re.compile(
    r"(?=[-'\"`.(&])(?:'(?:" + "|".join(_ELIDED_WORDS) + r")"
    r"|---?|(?<![^ \t\r\n\xa0;])-(?![^ \t\r\n\xa0&])|\.\.\.|``|''"
    r"|(?<![A-Za-z])'|'(?![A-Za-z])|\"|(?<= )\(tm\)|&\#82(?:17|21);)"
)
_IN_WORD_APOSTROPHE = re.compile(r"'(?<=[A-Za-z]')(?=[A-Za-z])")  # (a literal first is fast)
# 1x2, 10x20, 1.5x2 (not 0x1A, 1x2x3, a1x2); "2,x3" too, but only where a plain "2x3" is. ASCII:
# the digits and word boundaries are those of WordPress (a PHP regex on bytes).
_TX_TIMES = re.compile(r"x(?<=\dx)(?=\d)", re.ASCII)
_TX_MULTIPLICATION = re.compile(r"\b(0[\d.,]+|[1-9][\d.,]*)x(\d[\d.,]*)\b", re.ASCII)
_TIMES_SIGN = r"\1" + _TIMES + r"\2"
_TX_QUOTED_NUMBER = re.compile(r"\d[\d.,]*", re.ASCII)
_TX_DECADE = re.compile(r"\d\d(?![%\d]|[.,]\d)", re.ASCII)
_TX_STATIC = {"...": _ELLIPSIS, "``": _LDQUO, "''": _RDQUO, "(tm)": _TRADE_MARK}

# Where texturize must not look: comments, tags (quoted attribute values may hold ">"),
# <script> and <style> elements whole, shortcode tags, our tokens. Three patterns that start
# with a plain character are searched much faster than one that starts with a choice.
_TX_TAG = re.compile(
    r"""
    <(?: !--.*?(?:-->|\Z)
       | (?P<raw>script|style)\b(?:[^>="']|=\s*(?:"[^"]*"|'[^']*')|[="'])*>.*?(?:</(?P=raw)\s*>|\Z)
       | (?:(?P<end>/)?(?P<tag>[A-Za-z][^\s/>"'=]*)|[!?/])(?:[^>="']|=\s*(?:"[^"]*"|'[^']*')|[="'])*(?:>|\Z) )
    """,
    re.X | re.S | re.I,
)
_TX_SHORTCODE_TAG = re.compile(
    r"""\[(?:(?P<escaped>\[)|(?P<end>/))?(?P<name>[A-Za-z][A-Za-z0-9_-]*)(?=[\s/\]])
        (?P<attrs>(?:[^\[\]<>]|<[^\[\]>]*>)*)\]\]?""",
    re.X,
)
_TX_TOKEN_PLACE = re.compile(r"\x01\d+\x02|\x03\d+\x04", re.ASCII)
_TX_NOT_IN_PLUGIN_SHORTCODE = re.compile(r"[<>\n]")
# Elements and shortcodes whose text stays as written (WordPress's lists, plus [sourcecode]).
_NO_TEXTURIZE_TAGS = frozenset({"pre", "code", "kbd", "tt"})
_NO_TEXTURIZE_SHORTCODES = frozenset({"code", "sourcecode"})


def texturize(html_text: str) -> str:
    """Curly quotes, dashes, ellipses and the like in the text of ``html_text``, as WordPress 6.1's
    ``wptexturize`` puts them there, written as characters (“ ” ‘ ’ ′ ″ – — … × ™), not entities.

    Tags, attribute values, comments, shortcode tags (core ones and those we count as plugin
    shortcodes, see the module docstring) and the text inside ``<pre>``, ``<code>``, ``<kbd>``,
    ``<tt>``, ``<script>``, ``<style>`` and ``[code]`` stay exactly as written; so do entities.
    Like WordPress, each run of text between two tags is texturized on its own: a quote at the
    start of one opens (``<b>it</b>'s`` gives ‘s, as it did in WordPress).

    The rules (learnt by running WordPress on many inputs, not taken from its code):

    - ``---`` is an em dash; ``--`` is an em dash with a space (or the text's edge) on both
      sides, else an en dash (but ``xn--`` stays); ``-`` with spaces on both sides is an en dash.
      ``...`` is an ellipsis, `````` ``...'' `````` are double quotes, ``(tm)`` after a space is ™.
      ``1x2``, ``10x20``, ``1.5x2`` get a multiplication sign (not ``0x1A``, ``1x2x3``, ``a1x2``;
      ``2,x3`` only in a text that has a plain ``2x3`` too).
    - A double quote opens at the start, after a space (``&nbsp;`` counts), ``(``, ``[``, ``{``,
      ``-`` or ``&lt;``, unless a space follows it; a single quote opens there and after a double
      quote. A number quoted after a space (``"42"``, ``'6'``) is quoted, not primed.
    - An apostrophe: ``'tis``, ``'twas``, ``'cause``, ``'em`` and a few more elided words (lower
      case); ``'90s``, ``'99`` (two digits, not a percentage or decimal); a quote after a
      non-space and before anything but a space, punctuation, ``([{"-`` (``it's``, ``5'10``).
    - After a digit, a quote before a space, punctuation or the end is a prime (``12'``, ``6"``),
      unless it closes a quote: in a stretch from an opening quote to the next, with no other
      closing quote that a space or punctuation follows, the last such digit-quote before a full
      stop closes, else the last one (``"a 6"`` is “a 6”, ``"a 6" board"`` is “a 6″ board”). After
      a decade (``5'10"``) it closes. Before other characters it is a prime (``6"x``), or for
      ``'``, before a letter, an apostrophe. Closing quotes written as entities (``&#8221;``,
      ``&#8217;``) count for this; the characters (” ’) do not, as in WordPress.
    - Any other double quote closes; any other single quote closes before a space, punctuation
      or the end, and stays straight before ``(``, ``[``, ``{`` and ``"`` (``a'(b``).

    Deliberate differences from WordPress: a lone ``&`` stays ``&`` (WordPress writes ``&#038;``);
    no-texturize tags are found in any letter case (WordPress skips ``<pre>`` but texturizes
    ``<PRE>``); a quoted attribute value may hold ``>``; a ``<`` that starts no tag (``a < b``,
    ``<3``) is text, where WordPress leaves everything up to the next ``>`` untouched;
    ``<script>``/``<style>`` end only at their closing tag; shortcodes are the core ones and
    those we count as a plugin's, and their tags are not texturized (WordPress did not touch
    them while the plugin was active; without it, WordPress curls the quotes of
    ``[contact-form-7 id="1"]``); ``[code]`` and ``[sourcecode]`` (plugins' code shortcodes)
    enclose text that is not texturized, as WordPress's ``[code]`` when registered.
    """
    if not html_text:
        return html_text
    out: list[str] = []
    tag_stack: list[str] = []  # open no-texturize elements
    shortcode_stack: list[str] = []  # open no-texturize shortcodes
    text_start = 0
    for m in _markup_to_skip(html_text):
        text = html_text[text_start:m.start()]
        if text:
            out.append(text if tag_stack or shortcode_stack else _texturize_text(text))
        markup = m.group()
        out.append(markup)
        text_start = m.end()
        if m.re is _TX_TAG:
            tag = m.group("tag")
            if tag and tag.lower() in _NO_TEXTURIZE_TAGS:
                _push_or_pop(tag_stack, tag.lower(), bool(m.group("end")), markup.endswith("/>"))
        elif m.re is _TX_SHORTCODE_TAG:
            name = m.group("name").lower()
            if name in _NO_TEXTURIZE_SHORTCODES and not m.group("escaped"):
                _push_or_pop(shortcode_stack, name, bool(m.group("end")), m.group("attrs").endswith("/"))
    text = html_text[text_start:]
    out.append(text if tag_stack or shortcode_stack else _texturize_text(text))
    return "".join(out)


def _markup_to_skip(html_text: str) -> Iterator[re.Match]:
    """The tags, comments, shortcode tags and tokens of ``html_text``, left to right."""
    has_brackets = "[" in html_text
    if not has_brackets and "\x01" not in html_text and "\x03" not in html_text:
        yield from _TX_TAG.finditer(html_text)  # the common case, and the fast one
        return
    patterns = [_TX_TAG, _TX_TOKEN_PLACE]
    if has_brackets:
        patterns.append(_TX_SHORTCODE_TAG)
    found = [pattern.search(html_text) for pattern in patterns]  # the next match of each
    pos = 0
    while True:
        for i, m in enumerate(found):
            if m is not None and m.start() < pos:
                found[i] = patterns[i].search(html_text, pos)
        m = min((m for m in found if m is not None), key=_match_start, default=None)
        if m is None:
            return
        if m.re is _TX_SHORTCODE_TAG and not _is_shortcode_tag(m, html_text):
            pos = m.start() + 1  # prose in brackets: text like the rest
            continue
        yield m
        pos = m.end()


def _is_shortcode_tag(m: re.Match, html_text: str) -> bool:
    """Whether a ``_TX_SHORTCODE_TAG`` match is a shortcode's tag: a core shortcode's (which may
    hold tags in its attributes, as in WordPress) or one we count as a plugin's (on one line and
    without tags: prose in brackets can be long)."""
    name = m.group("name")
    if name in _CORE_SHORTCODES:
        return True
    attrs = m.group("attrs")
    if _TX_NOT_IN_PLUGIN_SHORTCODE.search(attrs):
        return False
    return bool(m.group("end")) or _ShortcodeRenderer._looks_like_plugin_shortcode(
        name, attrs, attrs.endswith("/"), html_text, m.end())


def _match_start(m: re.Match) -> int:
    return m.start()


def _push_or_pop(stack: list[str], name: str, closing: bool, self_closing: bool) -> None:
    """An opening no-texturize tag is pushed; a closing one pops only its own opening."""
    if closing:
        if stack and stack[-1] == name:
            stack.pop()
    elif not self_closing:
        stack.append(name)


def texturize_text(text: str) -> str:
    """``texturize`` for plain text (a post or comment title, a category name): nothing in it is
    markup, ``<`` and ``>`` count where ``&lt;`` and ``&gt;`` do in HTML, and ``&`` is a character."""
    if not text:
        return text
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    result = _texturize_text(escaped)
    if result == escaped:
        return text
    return result.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _is_space_before(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] in _TX_SPACES or text.endswith("&nbsp;", 0, i)


def _is_space_at(text: str, i: int) -> bool:
    return i >= len(text) or text[i] in _TX_SPACES or text.startswith("&nbsp;", i)


def _opens_after(text: str, i: int, chars: frozenset[str]) -> bool:
    """Whether a quote at ``i`` follows the start, a space or an opening character."""
    if i == 0 or text[i - 1] in chars:
        return True
    return text[i - 1] == ";" and (text.endswith("&nbsp;", 0, i) or text.endswith("&lt;", 0, i))


def _closes_at(text: str, i: int) -> bool:
    """Whether what comes at ``i`` lets a quote before it close: the end, a space, punctuation."""
    if i >= len(text):
        return True
    if text[i] in _CLOSES_BEFORE:  # (an ellipsis is not punctuation here: WordPress sees "&#8230;")
        return not text.startswith("...", i)
    return text[i] == "&" and (text.startswith("&nbsp;", i) or text.startswith("&gt;", i))


def _texturize_text(text: str) -> str:
    """One run of text between tags, texturized."""
    m = _TX_TOKEN.search(text)
    if m is not None:
        text = _texturize_tokens(text, m)
    if "'" in text:
        text = _IN_WORD_APOSTROPHE.sub(_RSQUO, text)
    if "x" in text and _TX_TIMES.search(text):
        text = _TX_MULTIPLICATION.sub(_TIMES_SIGN, text)
    return text


def _texturize_tokens(text: str, m: re.Match) -> str:
    """``text`` with what ``_TX_TOKEN`` finds in it (the first find is ``m``) replaced."""
    pieces: list[str] = []
    # Per kind of quote, in order: ("open", -1), ("close", -1) or ("digit", index in pieces)
    # for a quote after a digit that may close (or else is a prime).
    events: dict[str, list[tuple[str, int]]] = {"'": [], '"': []}
    after_digit: set[str] = set()  # the kinds of quote that had "digit" events
    decade_end = -1  # where the two digits after an apostrophe like '90 end
    pos = 0
    length = len(text)
    while m is not None:
        start = m.start()
        token = m.group()
        pieces.append(text[pos:start])
        pos = m.end()
        first = token[0]
        if first == "-":
            if token == "---":
                pieces.append(_EM_DASH)
            elif _is_space_before(text, start) and _is_space_at(text, pos):
                pieces.append(_EM_DASH if token == "--" else _EN_DASH)
            elif token == "--":
                pieces.append("--" if text.endswith("xn", 0, start) else _EN_DASH)
            else:
                pieces.append("-")
        elif len(token) > 1:
            if first == "'" and len(token) > 2:  # 'tis, 'twas ...
                pieces.append(_RSQUO + token[1:].replace("'", _RSQUO))
                # WordPress counts these apostrophes as closing quotes when it pairs quotes.
                events["'"].append(("close", -1))
            elif first == "&":  # a closing quote written as an entity counts when pairing
                pieces.append(token)
                events['"' if token == "&#8221;" else "'"].append(("close", -1))
            else:  # ..., ``, '', (tm)
                pieces.append(_TX_STATIC[token])
                if token == "''":  # (a `` opens, but does not start a stretch for pairing)
                    events['"'].append(("close", -1))
        else:
            kind = token
            kind_events = events[kind]
            after_a_digit = start > 0 and "0" <= text[start - 1] <= "9"
            if kind == "'" and _TX_DECADE.match(text, pos):
                pieces.append(_RSQUO)
                decade_end = pos + 2
            elif start == decade_end and _closes_at(text, pos):
                # The quote right after '90 closes (WordPress: 5'10" is 5’10”, not 5’10″).
                pieces.append(_RSQUO if kind == "'" else _RDQUO)
                kind_events.append(("close", -1))
            elif _opens_after(text, start, _OPENS_SINGLE_AFTER if kind == "'" else _OPENS_DOUBLE_AFTER) and (
                kind == "'" or pos == length or not _is_space_at(text, pos)
            ):
                number = _TX_QUOTED_NUMBER.match(text, pos)
                if (number and text.startswith(kind, number.end())
                        and _is_space_before(text, start)
                        and not (kind == "'" and text.startswith("''", number.end()))):
                    opening, closing = (_LSQUO, _RSQUO) if kind == "'" else (_LDQUO, _RDQUO)
                    pieces.append(opening + number.group() + closing)
                    pos = number.end() + 1
                    kind_events.append(("open", -1))
                    kind_events.append(("close", -1))
                else:
                    pieces.append(_LSQUO if kind == "'" else _LDQUO)
                    kind_events.append(("open", -1))
            elif after_a_digit and _closes_at(text, pos):
                # A quote that a full stop follows is the likelier to close (see below).
                kind_events.append(("digit." if text.startswith(".", pos) else "digit", len(pieces)))
                after_digit.add(kind)
                pieces.append(kind)  # decided below
            elif after_a_digit:
                if kind == '"':
                    pieces.append(_DOUBLE_PRIME)
                elif _apostrophe_before(text, pos):
                    pieces.append(_RSQUO)  # 1980's
                else:
                    pieces.append(_PRIME)
            elif _closes_at(text, pos):
                pieces.append(_RSQUO if kind == "'" else _RDQUO)
                kind_events.append(("close", -1))
            elif kind == '"':
                pieces.append(_RDQUO)  # closes, but does not count as closing (a"b)
            elif _apostrophe_before(text, pos):
                pieces.append(_RSQUO)  # it's, O'Neil
            else:
                pieces.append("'")  # a'(b: WordPress leaves it straight
        m = _TX_TOKEN.search(text, pos)
    pieces.append(text[pos:])
    for kind in after_digit:
        _primes_or_closing(pieces, kind, events[kind])
    return "".join(pieces)


def _apostrophe_before(text: str, i: int) -> bool:
    """Whether a single quote before ``i`` (after a non-space) is an apostrophe."""
    return i < len(text) and text[i] not in _NOT_APOSTROPHE_BEFORE and not text.startswith("&lt;", i)


def _primes_or_closing(pieces: list[str], kind: str, events: list[tuple[str, int]]) -> None:
    """Decide the quotes after digits: primes, but for one in a stretch opened by a quote that
    nothing else closes, which closes it: the last one before a full stop, else the last one
    (WordPress: "a 2". 6 2" is “a 2”. 6 2″, "a 2" 6 2" is “a 2″ 6 2”)."""
    prime, closing = (_PRIME, _RSQUO) if kind == "'" else (_DOUBLE_PRIME, _RDQUO)
    opened = closed = False
    digits: list[int] = []
    before_stop = -1  # the last of them before a full stop
    for event, index in [*events, ("open", -1)]:
        if event[0] == "d":
            digits.append(index)
            if event == "digit.":
                before_stop = index
            continue
        if event == "close":
            closed = True
            continue
        for i in digits:
            pieces[i] = prime
        if digits and opened and not closed:
            pieces[before_stop if before_stop != -1 else digits[-1]] = closing
        opened, closed, digits, before_stop = True, False, [], -1


# --- block editor --------------------------------------------------------------------------

# <!-- wp:name {json} -->, <!-- /wp:name -->, <!-- wp:name /-->, names optionally namespaced.
# WordPress escapes "--" in block attributes, so a delimiter ends at the first "-->" after it.
_BLOCK_DELIMITER_START = re.compile(r"<!--\s+/?wp:")
_BLOCK_DELIMITER = re.compile(
    r"<!--\s+/?wp:[a-z][a-z0-9_-]*(?:/[a-z][a-z0-9_-]*)?\s+(?:\{.*\}\s+)?/?-->", re.S
)
_SHORTCODE_BLOCK = re.compile(r"<!--\s+wp:shortcode\s+-->(.*?)<!--\s+/wp:shortcode\s+-->", re.S)


def strip_block_comments(text: str) -> str:
    """``text`` without block-editor delimiter comments (and the line break after one that
    stands on its own line); the blocks' inner HTML stays where it was, self-closing (dynamic)
    blocks vanish. Other comments (``<!--more-->``) stay."""
    out: list[str] = []
    pos = 0
    for m in _BLOCK_DELIMITER_START.finditer(text):
        if m.start() < pos:
            continue
        end = text.find("-->", m.end())
        if end == -1:
            break  # no comment closes after this point
        end += 3
        if not _BLOCK_DELIMITER.fullmatch(text, m.start(), end):
            continue
        out.append(text[pos:m.start()])
        # One that stands on its own line takes its line break along, so blocks are not left
        # apart by runs of empty lines.
        if text.startswith("\n", end) and (m.start() == 0 or text[m.start() - 1] == "\n"):
            end += 1
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --- shortcodes and embeds -----------------------------------------------------------------

# One pass finds, left to right, whichever comes first: something shortcodes must not touch
# (<pre>, <code>, a comment, a tag with a "[" in it), a URL WordPress would embed (alone in a
# paragraph, or alone on its line), or a shortcode's opening tag. The text is scanned with a
# newline in front, so that its first line is a line like the others.
_CONTENT_SCAN = re.compile(
    r"""
      <(?: (?P<verbatim>(?P<raw>pre|code|script|style)\b[^>]*>.*?</(?P=raw)\s*>)
         | p(?:\s[^>]*)?>[ \t]*(?P<url_paragraph>https?://[^\s<>"]+)[ \t]*</p\s*>
         | (?P<markup>!--.*?-->|[a-zA-Z/!?][^>\[]*\[[^>]*>) )
    | \n[ \t]*(?P<url_line>https?://[^\s<>"]+)[ \t]*(?=\n|\Z)
    | \[(?P<escaped>\[?)(?P<name>[A-Za-z0-9_-]+)(?=[\s/\]])(?P<attrs>[^\[\]]*)\]
    """,
    re.X | re.S | re.I,
)
_SHORTCODE_ATTRIBUTE = re.compile(
    r"""
      (?P<key>[\w.-]+)\s*=\s*(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)'|(?P<bare>[^\s"']+))
    | "(?P<pos_double>[^"]*)" | '(?P<pos_single>[^']*)' | (?P<word>\S+)
    """,
    re.X,
)
_CAPTIONED_IMAGE = re.compile(r"((?:<a\s[^>]+>\s*)?<img\s[^>]+>(?:\s*</a>)?)(.*)", re.I | re.S)
_LEADING_DIGITS = re.compile(r"\s*(\d+)")
_PARAGRAPH_TAG_OR_BLOCK_TOKEN = re.compile(r"(?i:<p(?:\s[^>]*)?>|</p\s*>)|\x01\d+\x02")

_CORE_SHORTCODES = frozenset({"caption", "wp_caption", "gallery", "embed", "audio", "video", "playlist"})
_SHORTCODE_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "jpe", "png", "gif", "webp", "avif", "bmp", "ico",
                               "svg", "tif", "tiff", "heic"})
# WordPress's own lists: wp_get_audio_extensions() and wp_get_video_extensions().
_AUDIO_EXTENSIONS = ("mp3", "ogg", "flac", "m4a", "wav")
_VIDEO_EXTENSIONS = ("mp4", "m4v", "webm", "ogv", "flv")


_NEXTPAGE = re.compile(r"\s*<!--\s*nextpage\s*-->\s*", re.IGNORECASE)


def convert_post_content(
    content: str,
    attachments: Mapping[int, Attachment] | None = None,
    parent_id: int | None = None,
) -> Converted:
    """The HTML WordPress showed readers for a post whose stored content is ``content``.

    ``attachments`` are the export's attachment items by id (for ``[gallery]``, ``[playlist]``
    and ``[audio]``/``[video]`` without a source); ``parent_id`` is the post's own id, whose
    attachments a ``[gallery]`` without ``ids`` shows. Nothing is fetched or sanitised.
    """
    text = (content or "").translate(_SENTINELS).replace("\r\n", "\n").replace("\r", "\n")
    # WordPress splits a post at <!--nextpage--> into pages; here it is one page, and the break
    # between two of them a paragraph break (the sanitiser drops comments: words would run together).
    text = _NEXTPAGE.sub("\n\n", text)
    if "<!-- wp:" in text:
        renderer = _ShortcodeRenderer(attachments or {}, parent_id, classic=False)
        # A shortcode block is the one block WordPress runs wpautop on.
        text = _SHORTCODE_BLOCK.sub(lambda m: autop(m.group(1)), text)
        # WordPress texturizes what the blocks rendered, before it runs shortcodes.
        text = _keep_blocks_out_of_paragraphs(texturize(renderer.replace(strip_block_comments(text))))
    else:
        renderer = _ShortcodeRenderer(attachments or {}, parent_id, classic=True)
        # autop keeps block tokens out of paragraphs by itself: they are blocks to it. WordPress
        # texturizes before wpautop, and before shortcodes (their output, a token here, is not
        # texturized but for what was text between a shortcode's tags, see _caption).
        text = _autop_with_tokens(texturize(renderer.replace(text)), renderer.pieces)
    return Converted(_fill_tokens(text, renderer.pieces).strip(), renderer.unknown)


def _keep_blocks_out_of_paragraphs(text: str) -> str:
    """Close a ``<p>`` before a block token inside it and reopen it after; drop the paragraphs
    that this (or a ``<p>`` that held nothing but the block) leaves empty."""
    if "\x01" not in text:
        return text
    out: list[str] = []
    open_tag = None  # the <p ...> we are inside, if any
    open_at = 0  # its index in out
    reopened = False  # whether we opened it ourselves
    pos = 0
    for m in _PARAGRAPH_TAG_OR_BLOCK_TOKEN.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        tag = m.group()
        if tag[0] == "\x01":
            if open_tag is not None:
                if "".join(out[open_at + 1:]).strip():
                    out.append("</p>")
                else:
                    del out[open_at:]
                out.append(tag)
                open_at, reopened = len(out), True
                out.append(open_tag)
            else:
                out.append(tag)
        elif tag[1] == "/":
            if open_tag is not None and reopened and not "".join(out[open_at + 1:]).strip():
                del out[open_at:]
            else:
                out.append(tag)
            open_tag = None
        else:
            open_tag, open_at, reopened = tag, len(out), False
            out.append(tag)
    out.append(text[pos:])
    return "".join(out)


def _shortcode_attributes(attrs: str) -> dict[str, str]:
    """``name="v" name2='v' name3=v bare`` as a dict; keys lower-cased, positional ones by index."""
    found: dict[str, str] = {}
    position = 0
    for m in _SHORTCODE_ATTRIBUTE.finditer(attrs.replace("\xa0", " ").replace("\u200b", " ")):
        if m.group("key"):
            value = m.group("double")
            if value is None:
                value = m.group("single") if m.group("single") is not None else m.group("bare")
            found[m.group("key").lower()] = value
        else:
            value = next(v for v in m.group("pos_double", "pos_single", "word") if v is not None)
            found[str(position)] = value
            position += 1
    return found


def _attribute_value(value: str) -> str:
    """Text or an HTML-encoded value, safe inside a double-quoted attribute (entities kept)."""
    return html.escape(html.unescape(value), quote=True)


def _extension(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    return path.rsplit(".", 1)[-1].lower() if "." in path else ""


def _link(url: str, text: str | None = None) -> str:
    href = _attribute_value(url.strip())
    return f'<a href="{href}">{href if text is None else text}</a>'


def _int_list(value: str) -> list[int]:
    return [int(part) for part in value.replace(" ", "").split(",") if part.isdigit()]


class _ShortcodeRenderer:
    """Replaces the shortcodes and embeddable URLs of one post by tokens for their HTML
    (``pieces``), and notes the unknown shortcodes it leaves as text."""

    def __init__(self, attachments: Mapping[int, Attachment], parent_id: int | None, classic: bool):
        self.attachments = attachments
        self.parent_id = parent_id
        self.classic = classic  # whether autop runs afterwards (it did in WordPress, too)
        self.pieces: list[str] = []
        self.unknown: list[str] = []

    def replace(self, text: str) -> str:
        if "[" not in text and "://" not in text:
            return text
        text = "\n" + text
        out: list[str] = []
        pos = 0
        while True:
            m = _CONTENT_SCAN.search(text, pos)
            if m is None:
                break
            out.append(text[pos:m.start()])
            pos = m.end()
            if m.group("verbatim") or m.group("markup"):
                out.append(m.group())
            elif m.group("url_paragraph"):
                out.append(self._block(f"<p>{_link(m.group('url_paragraph'))}</p>"))
            elif m.group("url_line"):
                out.append("\n" + self._block(f"<p>{_link(m.group('url_line'))}</p>"))
            else:
                replacement, pos = self._shortcode(text, m)
                out.append(replacement)
        out.append(text[pos:])
        return "".join(out)[1:]

    def _shortcode(self, text: str, m: re.Match) -> tuple[str, int]:
        """The replacement for the shortcode opening at ``m``, and where scanning goes on."""
        name = m.group("name")
        attrs = m.group("attrs")
        self_closing = attrs.endswith("/")
        if self_closing:
            attrs = attrs[:-1]
        end = m.end()
        content = None
        if not self_closing:
            closing = f"[/{name}]"
            close_at = text.find(closing, end)
            if close_at != -1:
                content = text[end:close_at]
        escaped = bool(m.group("escaped"))
        is_core = name in _CORE_SHORTCODES

        if not is_core:
            counted = self._looks_like_plugin_shortcode(name, attrs, self_closing, text, end)
            if escaped and counted:
                unescaped = self._unescape(text, m, content)
                if unescaped is not None:
                    return unescaped
            if counted and not escaped:
                self.unknown.append(name)
            # Left as text; what it encloses is still content, scanned like the rest.
            return m.group(), end

        whole_end = end if content is None else end + len(content) + len(name) + 3
        if escaped:
            unescaped = self._unescape(text, m, content)
            if unescaped is not None:
                return unescaped
        prefix = "[" if escaped else ""  # "[[name]" without "]]" is not an escape
        rendered = self._render(name, _shortcode_attributes(attrs), content)
        return prefix + rendered, whole_end

    @staticmethod
    def _unescape(text: str, m: re.Match, content: str | None) -> tuple[str, int] | None:
        """``[[name]]`` or ``[[name]...[/name]]`` shown as the shortcode itself, unrun."""
        end = m.end() if content is None else m.end() + len(content) + len(m.group("name")) + 3
        if text.startswith("]", end):
            return text[m.start() + 1:end], end + 1
        return None

    @staticmethod
    def _looks_like_plugin_shortcode(name: str, attrs: str, self_closing: bool, text: str,
                                     end: int) -> bool:
        if name[0] not in _SHORTCODE_NAME_START:
            return False
        return ("=" in attrs or self_closing or "_" in name or "-" in name
                or name in PLUGIN_SHORTCODES or text.find(f"[/{name}]", end) != -1)

    def _render(self, name: str, attrs: dict[str, str], content: str | None) -> str:
        if name in ("caption", "wp_caption"):
            return self._caption(attrs, content or "")
        if name == "gallery":
            return self._block(self._gallery(attrs))
        if name == "embed":
            url = (content or "").strip() or attrs.get("src", "").strip()
            return self._block(f"<p>{_link(url)}</p>") if url else ""
        if name in ("audio", "video"):
            extensions = _AUDIO_EXTENSIONS if name == "audio" else _VIDEO_EXTENSIONS
            url = self._media_source(attrs, extensions)
            return self._inline(_link(url)) if url else ""
        return self._block(self._playlist(attrs))

    def _block(self, html_text: str) -> str:
        return _add_piece(self.pieces, html_text, _BLOCK_TOKEN)

    def _inline(self, html_text: str) -> str:
        return _add_piece(self.pieces, html_text, _INLINE_TOKEN)

    def _nested(self, text: str) -> str:
        """Shortcodes inside another shortcode's content, rendered at once."""
        return _fill_tokens(self.replace(text), self.pieces)

    def _caption(self, attrs: dict[str, str], content: str) -> str:
        caption = attrs.get("caption")
        # WordPress texturizes what is between [caption] and [/caption] (it is text to
        # wptexturize), not the caption="..." attribute.
        content = texturize(content)
        if caption is None:  # the newer form: the caption follows the (linked) image
            m = _CAPTIONED_IMAGE.match(content.strip())
            if m:
                content, caption = m.group(1), m.group(2).strip()
        width = _LEADING_DIGITS.match(attrs.get("width", ""))
        if not caption or not width or int(width.group(1)) < 1:
            # WordPress shows a caption only with a width; without one, just the image.
            return self._inline(self._nested(content))
        caption = self._nested(caption)
        if self.classic:  # wpautop ran over the caption too
            caption = _line_breaks(caption)
        return self._block(
            f"<figure>{self._nested(content.strip())}<figcaption>{caption}</figcaption></figure>"
        )

    def _gallery(self, attrs: dict[str, str]) -> str:
        ids = _int_list(attrs.get("ids") or attrs.get("include") or "")
        if ids:
            chosen = [self.attachments[i] for i in ids if i in self.attachments]
        else:
            parent = attrs.get("id", "").strip()
            parent_id = int(parent) if parent.isdigit() else self.parent_id
            chosen = self._children(parent_id) if parent_id is not None else []
        excluded = set(_int_list(attrs.get("exclude", "")))
        items = [a for a in chosen if a.id not in excluded and _extension(a.url) in _IMAGE_EXTENSIONS | {""}]
        if attrs.get("order", "").upper() == "DESC":
            items.reverse()
        if not items:
            return ""
        link_to_file = attrs.get("link", "") == "file"
        parts = ['<figure class="gallery">']
        for item in items:
            url = _attribute_value(item.url)
            image = f'<img src="{url}" alt="{_attribute_value(item.title)}">'
            if link_to_file:
                image = f'<a href="{url}">{image}</a>'
            if item.caption.strip():  # WordPress texturizes gallery captions itself
                image = f"<figure>{image}<figcaption>{texturize(item.caption.strip())}</figcaption></figure>"
            parts.append(image)
        parts.append("</figure>")
        return "".join(parts)

    def _playlist(self, attrs: dict[str, str]) -> str:
        extensions = _VIDEO_EXTENSIONS if attrs.get("type") == "video" else _AUDIO_EXTENSIONS
        ids = _int_list(attrs.get("ids") or attrs.get("include") or "")
        if ids:
            chosen = [self.attachments[i] for i in ids if i in self.attachments]
        else:
            chosen = self._children(self.parent_id) if self.parent_id is not None else []
        items = [a for a in chosen if _extension(a.url) in extensions]
        if not items:
            return ""
        links = "".join(
            f"<li>{_link(a.url, html.escape(html.unescape(a.title)) if a.title else None)}</li>"
            for a in items
        )
        return f"<ul>{links}</ul>"

    def _media_source(self, attrs: dict[str, str], extensions: tuple[str, ...]) -> str:
        """[audio]/[video]: ``src``, else a source per format, else the post's first such file."""
        for key in ("src", *extensions):
            if attrs.get(key, "").strip():
                return attrs[key]
        if self.parent_id is not None:
            for attachment in self._children(self.parent_id):
                if _extension(attachment.url) in extensions:
                    return attachment.url
        return ""

    def _children(self, parent_id: int) -> list[Attachment]:
        return sorted((a for a in self.attachments.values() if a.parent_id == parent_id),
                      key=lambda a: a.id)
