"""Reading a WordPress export (WXR 1.0 to 1.2) as a stream of plain records. No Flask, no database.

The file is parsed incrementally (``lxml.etree.iterparse``) and every ``<item>`` is cleared
once read, so a file of any size costs the memory of one item. A file that declares a DTD is
refused before parsing: WordPress never writes one, and a DTD is how entity-expansion
("billion laughs") and external-entity attacks get in. Entities are not resolved and nothing is
fetched from the network either way.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from lxml import etree

from ..validation import BIGINT_MAX, parse_id

WP_NAMESPACE_PREFIX = "http://wordpress.org/export/"  # then 1.0/, 1.1/ or 1.2/
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
_ZERO_DATE = "0000-00-00 00:00:00"


class WxrError(Exception):
    """The file cannot be read as a WordPress export; the message says why, for people."""


@dataclass
class Channel:
    title: str = ""
    link: str = ""
    base_site_url: str = ""
    base_blog_url: str = ""
    wxr_version: str = ""


@dataclass
class Author:
    id: int | None
    login: str
    email: str = ""
    display_name: str = ""


@dataclass
class Term:
    taxonomy: str  # category | post_tag | (other taxonomies: nav_menu, post_format...)
    slug: str
    name: str
    parent_slug: str = ""


@dataclass
class ItemTerm:
    """A term an item is filed under: ``<category domain="post_tag" nicename="slug">Name</category>``."""

    domain: str
    slug: str
    name: str


@dataclass
class ItemComment:
    id: int
    author: str = ""
    author_email: str = ""
    author_url: str = ""
    author_ip: str = ""
    date: datetime | None = None  # the site's local time, used only when the UTC one is missing
    date_gmt: datetime | None = None
    content: str = ""
    approved: str = "1"  # 1 | 0 | spam | trash | post-trashed
    type: str = ""  # "" or comment | pingback | trackback | webmention | ...
    parent: int = 0
    user_id: int = 0
    agent: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Item:
    """A post, page, attachment or other post type, with its comments."""

    post_id: int
    post_type: str = "post"
    title: str = ""
    link: str = ""
    guid: str = ""
    creator: str = ""
    content: str = ""
    excerpt: str = ""
    pub_date: datetime | None = None
    post_date: datetime | None = None
    post_date_gmt: datetime | None = None
    modified_gmt: datetime | None = None
    comment_status: str = "open"
    ping_status: str = "open"
    slug: str = ""
    status: str = "publish"
    parent: int = 0
    menu_order: int = 0
    password: str = ""
    attachment_url: str = ""
    terms: list[ItemTerm] = field(default_factory=list)
    meta: dict[str, list[str]] = field(default_factory=dict)
    comments: list[ItemComment] = field(default_factory=list)


Record = Channel | Author | Term | Item


_SPLIT_TAGS: dict[str, tuple[str, str]] = {}


def _local(tag) -> tuple[str, str]:
    """(namespace, local name) of an lxml tag; comments and PIs have no string tag."""
    if not isinstance(tag, str):
        return "", ""
    split = _SPLIT_TAGS.get(tag)
    if split is None:
        if tag[0] == "{":
            ns, _, name = tag[1:].partition("}")
            split = (ns, name)
        else:
            split = ("", tag)
        if len(_SPLIT_TAGS) < 1000:  # an export has a few dozen; a hostile file cannot grow this
            _SPLIT_TAGS[tag] = split
    return split


def _is_wp(ns: str) -> bool:
    return ns.startswith(WP_NAMESPACE_PREFIX) and not ns.endswith("/excerpt/")


def _text(element) -> str:
    return element.text or ""


def _int(value: str, default: int = 0) -> int:
    """An id or count as WordPress writes one (ASCII digits); anything else, or one no BIGINT
    column could hold, is ``default``."""
    return parse_id(value, maximum=BIGINT_MAX) or default


def parse_wp_date(value: str) -> datetime | None:
    """``2015-03-26 14:05:00`` as a naive datetime; WordPress writes zeros for "no date"."""
    value = (value or "").strip()
    if len(value) < 19 or value.startswith("0000"):
        return None
    try:  # by hand: strptime costs ten times as much, and an export holds a date per comment
        return datetime(int(value[0:4]), int(value[5:7]), int(value[8:10]),
                        int(value[11:13]), int(value[14:16]), int(value[17:19]))
    except ValueError:
        return None


def _parse_rfc822(value: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


# A DTD, in any encoding libxml2 reads: found in the bytes before the root element, it is refused
# before the parser sees it.
_DTD_MARKERS = tuple(marker.encode(encoding) for marker in ("<!DOCTYPE", "<!ENTITY")
                     for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))
CHUNK = 64 * 1024
# The elements that make records (or the channel's own fields), in any namespace version; anything
# else, even a huge non-WordPress feed's entry, is never reported (its <entry> is, to refuse it).
_RECORD_TAGS = ("item", "{*}author", "{*}category", "{*}tag", "{*}term", "title", "link", "{*}base_site_url",
                "{*}base_blog_url", "{*}wxr_version", "{*}entry")


def _check_root(root) -> None:
    if root is None:
        return
    ns, name = _local(root.tag)
    if name != "rss":
        raise WxrError(f"not a WordPress export: the file's root element is <{name or root.tag}>, an export's is <rss>")


def _first_line(message: str) -> str:
    """libxml2's message, one line and in our words where we know it: it may quote the broken
    text, newlines and all, or name its own options."""
    line = (message or "").splitlines()[0] if message else "unreadable"
    line = line.split(", line ")[0].strip()[:200]
    if "Excessive depth" in line:
        return "elements nest deeper than 256 levels, which no WordPress export does"
    if "too big" in line or "too long" in line or "huge" in line.lower():
        return "a single field is larger than 10 MB, more than this importer reads"
    return line


def scan_creators(stream: BinaryIO) -> set[str]:
    """The ``dc:creator`` of every item, read in one quick pass (for files that declare no authors)."""
    creators = set()
    for _, element in etree.iterparse(stream, events=("end",), tag=f"{{{DC_NS}}}creator", resolve_entities=False,
                                      no_network=True, load_dtd=False, huge_tree=False, recover=True):
        creators.add((element.text or "").strip())
        element.clear()
    return creators - {""}


class WxrReader:
    """``for record in WxrReader(open(path, "rb"))``: Channel (once, before the first item), Author,
    Term and Item records in file order. ``bytes_read`` tells progress.

    Raises ``WxrError`` for a file that is not a WordPress export, and for one cut off or
    broken part way: the records before the break have been given out whole by then.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0
        self.channel = Channel()

    def _events(self):
        """The ``end`` of each element that may be a record, the file fed to the parser a chunk at a
        time. Only those elements make events: an item's hundreds of fields cost none."""
        parser = etree.XMLPullParser(
            events=("end",), tag=_RECORD_TAGS, resolve_entities=False, no_network=True, load_dtd=False,
            dtd_validation=False, huge_tree=False, remove_comments=True, remove_pis=True,
        )
        in_prolog, tail = True, b""
        while True:
            chunk = self._stream.read(CHUNK)
            self.bytes_read += len(chunk)
            if in_prolog and chunk:
                window = tail + chunk
                if any(marker in window for marker in _DTD_MARKERS):
                    raise WxrError("the file declares a DTD (<!DOCTYPE>), which WordPress exports never do; it was "
                                   "refused unread, as entity-expansion and external-entity attacks use one")
                tail = window[-40:]
            if not chunk:
                if self.bytes_read == 0:
                    raise WxrError("the file is empty")
                try:
                    root = parser.close()
                except etree.XMLSyntaxError as exc:
                    if in_prolog:
                        raise WxrError(f"the file is not XML: {_first_line(exc.msg)}") from None
                    raise WxrError(f"the file is cut off at line {exc.lineno or '?'}: it ends before the export "
                                   "does") from None
                _check_root(root)
                yield from parser.read_events()
                return
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                if in_prolog:
                    raise WxrError(f"the file is not XML: {_first_line(exc.msg)}") from None
                raise WxrError(f"the file is not well-formed XML (line {exc.lineno}): {_first_line(exc.msg)}") from None
            for event in parser.read_events():
                if in_prolog:
                    # An element has ended, so the root has started and the prolog (the only place a
                    # DTD can be) is over.
                    in_prolog = False
                    _check_root(event[1].getroottree().getroot())
                yield event

    def __iter__(self) -> Iterator[Record]:
        channel_told = False
        wp_seen = False
        for _, element in self._events():
            parent = element.getparent()
            if parent is None or _local(parent.tag)[1] != "channel":
                continue  # an item's own title, link or category: read with its item
            ns, name = _local(element.tag)
            if _is_wp(ns):
                wp_seen = True
            if name == "item" and not ns:
                if not wp_seen:
                    raise WxrError("not a WordPress export: the feed has items but no WordPress (wp:) data; "
                                   "export it from WordPress with Tools > Export")
                if not channel_told:
                    channel_told = True
                    yield self.channel
                yield self._item(element)
            elif _is_wp(ns) and name == "author":
                yield self._author(element)
            elif _is_wp(ns) and name in ("category", "tag", "term"):
                term = self._term(element, name)
                if term is not None:
                    yield term
            elif not ns and name in ("title", "link"):
                setattr(self.channel, name, (element.text or "").strip())
            elif _is_wp(ns) and name in ("base_site_url", "base_blog_url", "wxr_version"):
                setattr(self.channel, name, (element.text or "").strip())
            # Done with it: clear it and drop it (and anything before it) from the channel.
            element.clear()
            while element.getprevious() is not None:
                del parent[0]
        if not wp_seen:
            raise WxrError("not a WordPress export: no WordPress (wp:) data in the file; export it from WordPress "
                           "with Tools > Export")
        if not channel_told:
            yield self.channel

    # ------------------------------------------------------------------ records

    @staticmethod
    def _author(element) -> Author:
        fields = {}
        for child in element:
            ns, name = _local(child.tag)
            fields[name] = _text(child).strip()
        return Author(
            id=_int(fields.get("author_id", ""), 0) or None,
            login=fields.get("author_login", ""),
            email=fields.get("author_email", ""),
            display_name=fields.get("author_display_name", ""),
        )

    @staticmethod
    def _term(element, kind: str) -> Term | None:
        fields = {}
        for child in element:
            ns, name = _local(child.tag)
            fields[name] = _text(child).strip()
        if kind == "category":
            return Term("category", fields.get("category_nicename", ""), fields.get("cat_name", ""),
                        fields.get("category_parent", ""))
        if kind == "tag":
            return Term("post_tag", fields.get("tag_slug", ""), fields.get("tag_name", ""))
        taxonomy = fields.get("term_taxonomy", "")
        if not taxonomy:
            return None
        return Term(taxonomy, fields.get("term_slug", ""), fields.get("term_name", ""), fields.get("term_parent", ""))

    @staticmethod
    def _item(element) -> Item:
        item = Item(post_id=0)
        for child in element:
            ns, name = _local(child.tag)
            value = _text(child)
            if not ns:
                if name == "title":
                    item.title = value
                elif name == "link":
                    item.link = value.strip()
                elif name == "guid":
                    item.guid = value.strip()
                elif name == "pubDate":
                    item.pub_date = _parse_rfc822(value)
                elif name == "category":
                    item.terms.append(ItemTerm(child.get("domain", "category"), (child.get("nicename") or "").strip(),
                                               value.strip()))
            elif ns == DC_NS and name == "creator":
                item.creator = value.strip()
            elif ns == CONTENT_NS and name == "encoded":
                item.content = value
            elif ns.startswith(WP_NAMESPACE_PREFIX) and ns.endswith("/excerpt/") and name == "encoded":
                item.excerpt = value
            elif _is_wp(ns):
                WxrReader._item_field(item, name, value, child)
        return item

    @staticmethod
    def _item_field(item: Item, name: str, value: str, child) -> None:
        if name == "post_id":
            item.post_id = _int(value)
        elif name == "post_date":
            item.post_date = parse_wp_date(value)
        elif name == "post_date_gmt":
            item.post_date_gmt = parse_wp_date(value)
        elif name == "post_modified_gmt":
            item.modified_gmt = parse_wp_date(value)
        elif name in ("comment_status", "ping_status", "status", "post_type"):
            setattr(item, name, value.strip())
        elif name == "post_name":
            item.slug = value.strip()
        elif name == "post_parent":
            item.parent = _int(value)
        elif name == "menu_order":
            item.menu_order = _int(value)
        elif name == "post_password":
            item.password = value
        elif name == "attachment_url":
            item.attachment_url = value.strip()
        elif name == "postmeta":
            key, meta_value = _meta(child)
            if key:
                item.meta.setdefault(key, []).append(meta_value)
        elif name == "comment":
            item.comments.append(_comment(child))


def _meta(element) -> tuple[str, str]:
    key = value = ""
    for child in element:
        ns, name = _local(child.tag)
        if name == "meta_key":
            key = _text(child).strip()
        elif name == "meta_value":
            value = _text(child)
    return key, value


def _as_text(value: str) -> str:
    return value


def _stripped(value: str) -> str:
    return value.strip()


# A comment's fields: element name -> (attribute, how its text is read). One lookup per field, as
# an export has a dozen fields per comment and hundreds of thousands of comments.
_COMMENT_FIELDS = {
    "comment_id": ("id", _int), "comment_author": ("author", _as_text),
    "comment_author_email": ("author_email", _stripped), "comment_author_url": ("author_url", _stripped),
    "comment_author_IP": ("author_ip", _stripped), "comment_date": ("date", parse_wp_date),
    "comment_date_gmt": ("date_gmt", parse_wp_date), "comment_content": ("content", _as_text),
    "comment_approved": ("approved", _stripped), "comment_type": ("type", _stripped),
    "comment_parent": ("parent", _int), "comment_user_id": ("user_id", _int), "comment_agent": ("agent", _as_text),
}


def _comment(element) -> ItemComment:
    comment = ItemComment(id=0)
    for child in element:
        ns, name = _local(child.tag)
        field = _COMMENT_FIELDS.get(name)
        if field is not None:
            setattr(comment, field[0], field[1](child.text or ""))
        elif name == "commentmeta":
            key, meta_value = _meta(child)
            if key:
                comment.meta[key] = meta_value
    return comment
