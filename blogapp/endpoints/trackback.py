"""``<permalink>trackback/``: Six Apart's TrackBack receiver."""
from __future__ import annotations

import codecs
import html
import re
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import nh3
from charset_normalizer import from_bytes
from flask import Response, current_app, redirect, request
from sqlalchemy import select

from ..extensions import csrf, db
from ..linkback.errors import LinkbackError
from ..linkback.receive import Mention
from ..linkback.verify import NOT_XML
from ..models import Post
from ..templating import absolute_url, permalink, post_path
from ..validation import contains_nul
from . import BodyTooLarge, bp, read_capped_body


# Guessed when a sender declares no charset and the bytes are not UTF-8: WordPress's own list
# (ISO-8859-1 read as its superset windows-1252, JIS, EUC-JP, SJIS) and a few other common ones.
# Unrestricted detection reads short Western text as cp1250 ("crème" -> "crčme").
LEGACY_CHARSETS = ["cp1252", "cp1251", "shift_jis", "euc_jp", "iso2022_jp", "gb18030", "big5", "euc_kr"]
# Python's codecs that read backslash escapes ("\\u00e9"), not a charset any sender means: they
# warn (DeprecationWarning) on an unknown escape, and name half a surrogate pair at will.
NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape"}
# Half of a surrogate pair: no character at all, though a few codecs can name one (see read_fields).
_SURROGATE = re.compile("[\ud800-\udfff]")


class TrackbackError(ValueError):
    pass


def trackback_response(error: str | None = None) -> Response:
    if error is None:
        body = '<?xml version="1.0" encoding="utf-8"?>\n<response>\n<error>0</error>\n</response>\n'
    else:
        body = (f'<?xml version="1.0" encoding="utf-8"?>\n<response>\n<error>1</error>\n'
                f"<message>{escape(error)}</message>\n</response>\n")
    return Response(body, content_type="text/xml; charset=utf-8")


def _charset_of(raw_pairs: list[tuple[bytes, bytes]]) -> str:
    """The Content-Type's charset, else WordPress's ``charset`` field, else detected."""
    declared = request.mimetype_params.get("charset")
    if not declared:
        declared = next((v.decode("ascii", "replace") for k, v in raw_pairs if k == b"charset"), "")
        # WordPress sends e.g. "UTF-8" or a list such as "UTF-8, ISO-8859-1": take the first.
        declared = declared.split(",")[0].strip()
    if declared:
        try:
            info = codecs.lookup(declared)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            raise TrackbackError(f"Unknown charset {declared!r}.") from None
        if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib: bytes.decode refuses them
            raise TrackbackError(f"Unknown charset {declared!r}.")
        if info.name in NOT_CHARSETS:
            raise TrackbackError(f"Unknown charset {declared!r}.")
        return info.name
    values = b" ".join(v for _, v in raw_pairs)
    try:
        values.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        best = from_bytes(values, cp_isolation=LEGACY_CHARSETS).best()
        return best.encoding if best else "windows-1252"


def read_fields() -> dict[str, str]:
    try:
        raw = read_capped_body()
    except BodyTooLarge as exc:
        raise TrackbackError(str(exc)) from None
    try:
        # Through latin-1, which maps bytes one to one: parse_qsl on bytes fails on any byte
        # over 0x7F before Python 3.12, and the values must stay bytes until the charset is known.
        text_pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, max_num_fields=20,
                               encoding="latin-1", errors="strict")
    except ValueError:
        raise TrackbackError("The request has too many fields.") from None
    pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in text_pairs]
    charset = _charset_of(pairs)
    fields: dict[str, str] = {}
    for key, value in pairs:
        try:
            name, text = key.decode("ascii"), value.decode(charset)
        except UnicodeError:  # idna and punycode raise UnicodeError itself
            raise TrackbackError(f"The request is not valid {charset} text.") from None
        if name in ("url", "title", "excerpt", "blog_name") and name not in fields:
            if contains_nul(text):
                raise TrackbackError(f"The {name} field contains a NUL character (%00).")
            if _SURROGATE.search(text):
                # UTF-7 can name half of a surrogate pair ("+2AA-" is U+D800): no character, which no
                # sanitiser, database or XML document can hold.
                raise TrackbackError(f"The request is not valid {charset} text.")
            # Senders put HTML and entities in these (WordPress: "&#8212;"): keep the text only.
            fields[name] = " ".join(NOT_XML.sub("", html.unescape(nh3.clean(text, tags=set()))).split())
    return fields


@bp.route("/<int:year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/trackback/", methods=["GET", "POST"])
@csrf.exempt
def trackback(year: int, month: int, day: int, slug: str):
    post = None if contains_nul(slug) else db.session.scalar(select(Post).where(Post.slug == slug))
    if request.method == "GET":
        if post is None or not post.is_published:
            return trackback_response("There is no post at this address.")
        return redirect(post_path(post), 302)
    try:
        fields = read_fields()
    except TrackbackError as exc:
        return trackback_response(str(exc))
    if post is None or not post.is_published:
        return trackback_response("There is no post at this address.")
    right = post_path(post) + "trackback/"
    if request.script_root + request.path != right:
        # Another date than the post's: the address is not the post's, as for readers (who are
        # redirected); a POST is not redirected, so the sender is told the right address.
        return trackback_response(f"There is no post at this address; this post's trackback address is {absolute_url(right)}")
    if not fields.get("url"):
        return trackback_response("The url field is required.")
    mention = Mention(
        protocol="trackback", source=fields["url"], target=permalink(post),
        client_ip=request.remote_addr or "", user_agent=request.user_agent.string or "",
        title=fields.get("title", ""), excerpt=fields.get("excerpt", ""), blog_name=fields.get("blog_name", ""),
    )
    try:
        current_app.extensions["linkback_receiver"].receive(mention)
    except LinkbackError as error:
        return trackback_response(error.message)
    return trackback_response()
