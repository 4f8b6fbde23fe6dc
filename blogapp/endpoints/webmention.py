"""``/webmention``: the W3C Webmention receiver.

The request is checked at once for what is local and cheap (the form, the URLs, the target
post, blocked domains and rate limits), answered ``201 Created`` with a status page, and
verified by a background job (``webmention.verify``) that fetches the source through the
linkback receiver's guarded fetcher, looks for a link to the target and reads the source's
microformats. One comment per (post, source): a resend updates it, a source that now answers
404 or 410 or no longer links to the target removes it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from urllib.parse import parse_qsl, urljoin, urlsplit

import mf2py
from bs4 import BeautifulSoup
from flask import Response, current_app, jsonify, render_template, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import jobs
from ..extensions import csrf, db
from ..linkback.errors import ACCESS_DENIED, NO_LINK, SOURCE_NOT_FOUND, LinkbackError
from ..linkback.fetch import HTML_TYPES, FetchError
from ..linkback.receive import Mention
from ..linkback.urls import TargetLinks, is_http_url, source_key, url_problem
from ..linkback.verify import cap, decode_html, squash
from ..models import Comment, CommentKind, LinkbackLog, utcnow
from ..templating import absolute_url
from ..validation import contains_nul
from . import bp

log = logging.getLogger(__name__)

CONTENT_LIMIT = 1000
NAME_LIMIT = 250
# Elements whose URL attribute counts as a link to the target (the W3C implementation report's cases).
LINKING = {"a": "href", "img": "src", "video": "src", "audio": "src", "source": "src"}
# mf2 property -> response type, in order of precedence.
RESPONSE_PROPERTIES = (("in-reply-to", "reply"), ("like-of", "like"), ("repost-of", "repost"),
                       ("bookmark-of", "bookmark"))
REACTIONS = ("like", "repost", "bookmark")  # shown compactly, not as comments
# What a source may be (Webmention §3.2.2): HTML is read with microformats; text and JSON for the URL.
SOURCE_TYPES = (*HTML_TYPES, "text/plain", "application/json")


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _read_form() -> dict[str, str]:
    """The form fields, from a body capped at LINKBACK_BODY_LIMIT; raises ValueError with the reason."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ValueError("The request body must be application/x-www-form-urlencoded.")
    limit = int(current_app.config["LINKBACK_BODY_LIMIT"])
    if (request.content_length or 0) > limit:
        raise ValueError(f"The request is larger than {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"The request is larger than {limit} bytes.")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ValueError("The request body is not valid UTF-8.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value.strip())
    return fields


@bp.route("/webmention", methods=["POST"])
@csrf.exempt
def webmention_endpoint():
    if not current_app.config["WEBMENTION_ENABLED"]:
        return _text("This site does not accept Webmentions.", 404)
    try:
        fields = _read_form()
    except ValueError as exc:
        return _text(str(exc), 400)
    source, target = fields.get("source", ""), fields.get("target", "")
    if not source:
        return _text("The source parameter is missing.", 400)
    if not target:
        return _text("The target parameter is missing.", 400)
    for url, name in ((source, "source"), (target, "target")):
        if problem := url_problem(url, name):
            return _text(problem, 400)
    if not is_http_url(source):
        return _text("The source is not an http or https URL.", 400)
    if not is_http_url(target):
        return _text("The target is not an http or https URL.", 400)
    if source_key(source) == source_key(target):
        return _text("The source and the target are the same page.", 400)
    receiver = current_app.extensions["linkback_receiver"]
    store = receiver.store
    try:
        resolved = store.resolve_target(target)
    except LinkbackError as error:
        return _text(error.message, 400)
    if source_key(source) == source_key(resolved.url):
        return _text("The source and the target are the same page.", 400)
    mention = Mention(protocol="webmention", source=source, target=target,
                      client_ip=request.remote_addr or "", user_agent=request.user_agent.string or "")
    host = (urlsplit(source).hostname or "").lower()
    try:
        # Every Webmention waits in the queue: past the sender's rates it is still taken (the job
        # verifies at the budgeted rate); only the caps on what waits turn it away.
        store.admit(mention, host)
        store.check_room(mention, host)
    except LinkbackError as error:
        return _text(error.message, 429 if error.code == ACCESS_DENIED else 400)

    token = secrets.token_urlsafe(24)
    key = "webmention:" + hashlib.sha256(f"{resolved.post_id} {source_key(source)}".encode()).hexdigest()
    record = _record(source, target, host, resolved.post_id, mention.client_ip, token, key)
    if record is None:
        return _text("The Webmention could not be stored; try again later.", 503)
    jobs.submit(record)
    location = absolute_url(f"/webmention/{token}")
    response = _text(f"Webmention from {source} to {target} queued for verification; status at {location}", 201)
    response.headers["Location"] = location
    return response


def _record(source: str, target: str, host: str, post_id: int, client_ip: str, token: str, key: str):
    """The log row (the status page) and the job that verifies it, in one commit: once we answer
    201, the verification survives any crash. One job per post and source at a time (``key``);
    while one is waiting, this request's job comes after it, and finds its row either finished
    with the other's (nothing to do) or not (it verifies)."""
    for keyed in (jobs.active_with_key(key) is None, False):
        entry = LinkbackLog(protocol="webmention", source_url=source[:2000], source_host=host[:255],
                            target_url=target[:2000], post_id=post_id, client_ip=client_ip, token=token,
                            outcome="verifying", message="queued")
        db.session.add(entry)
        try:
            db.session.flush()
            record = jobs.prepare("webmention.verify", entry.id, key=key if keyed else None)
            db.session.commit()
            return record
        except IntegrityError:  # the same post and source, queued by another request just now
            db.session.rollback()
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("recording a Webmention failed")
            return None
    return None


STATES = {"verifying": "queued", "accepted": "verified", "refused": "refused"}


@bp.route("/webmention/<token>", methods=["GET"])
def webmention_status(token: str):
    entry = db.session.scalar(select(LinkbackLog).where(LinkbackLog.token == token)) if len(token) <= 64 and not contains_nul(token) else None
    if entry is None:
        return _text("There is no Webmention with this token.", 404)
    state = STATES.get(entry.outcome, entry.outcome)
    data = {
        "status": state,
        "source": entry.source_url,
        "target": entry.target_url,
        "message": entry.message,
        "received": entry.created_at.isoformat() + "Z",
        "finished": entry.finished_at.isoformat() + "Z" if entry.finished_at else None,
    }
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if best == "application/json" and request.accept_mimetypes["application/json"] > request.accept_mimetypes["text/html"]:
        return jsonify(data)
    return render_template("blog/webmention_status.html", wm=data)


# ---------------------------------------------------------------- verification (a background job)


def _finish(entry: LinkbackLog, outcome: str, message: str, code: int | None = None, comment_id: int | None = None) -> None:
    """Record the outcome on this entry and on any other pending entry for the same post and source."""
    key = source_key(entry.source_url)
    pending = db.session.scalars(select(LinkbackLog).where(
        LinkbackLog.protocol == "webmention", LinkbackLog.post_id == entry.post_id,
        LinkbackLog.outcome == "verifying")).all()
    for row in {entry, *[p for p in pending if source_key(p.source_url) == key]}:
        row.outcome, row.message, row.fault_code, row.finished_at = outcome, message, code, utcnow()
        if comment_id is not None:
            row.comment_id = comment_id


def _give_up(log_id: int) -> None:
    """The process verifying it died on the job's last attempt: the Webmention ends, refused."""
    entry = db.session.get(LinkbackLog, log_id)
    if entry is not None and entry.outcome == "verifying":
        _finish(entry, "refused", "The Webmention could not be verified: the process verifying it stopped, "
                                  "on every attempt.", 0)


@jobs.task("webmention.verify", on_give_up=_give_up, lane=jobs.LINKBACKS)
def verify(log_id: int) -> str:
    entry = db.session.get(LinkbackLog, log_id)
    if entry is None or entry.outcome != "verifying":
        return "nothing to do"
    budget = current_app.extensions["linkback_receiver"].cpu
    if budget.exhausted():  # verified at the budgeted rate: the readers keep the CPU
        raise jobs.Postpone(max(0.5, budget.seconds_until_room()), "the verification CPU budget is spent")
    started = time.thread_time()
    try:
        outcome = _verify(entry)
    except jobs.TransientJobError:
        db.session.rollback()
        raise  # the entry stays "verifying"; the job is tried again later
    except LinkbackError as error:
        # Only a source that is gone or no longer links takes its stored Webmention away with it.
        removed = _remove(entry) if getattr(error, "gone", False) else False
        message = error.message + (" The Webmention stored from this source was removed." if removed else "")
        _finish(entry, "refused", message, error.code)
        db.session.commit()
        return "refused"
    except Exception:
        db.session.rollback()
        log.exception("verifying webmention %s failed", log_id)
        entry = db.session.get(LinkbackLog, log_id)
        _finish(entry, "refused", "The Webmention could not be verified (an error on our side).", 0)
        db.session.commit()
        return "error"
    finally:
        budget.spend(time.thread_time() - started)
    db.session.commit()
    return outcome


def _remove(entry: LinkbackLog) -> bool:
    if entry.post_id is None:
        return False
    result = db.session.execute(delete(Comment).where(
        Comment.post_id == entry.post_id, Comment.source_key == source_key(entry.source_url),
        Comment.kind == CommentKind.WEBMENTION.value))
    return bool(result.rowcount)


def _verify(entry: LinkbackLog) -> str:
    receiver = current_app.extensions["linkback_receiver"]
    store = receiver.store
    target = store.resolve_target(entry.target_url)  # the post may have closed since
    headers = {"User-Agent": f"{receiver.user_agent}; verifying webmention from {entry.client_ip}",
               "Accept": "text/html, application/xhtml+xml;q=0.9, application/json;q=0.5, text/plain;q=0.4"}
    try:
        page = receiver.fetcher.fetch(entry.source_url, headers=headers, types=SOURCE_TYPES)
    except FetchError as exc:
        if exc.status in (404, 410):
            raise _gone(LinkbackError(SOURCE_NOT_FOUND, f"The source answered HTTP {exc.status}.")) from None
        attempt = jobs.current_attempt()
        if exc.transient and attempt is not None and not attempt.last:
            raise jobs.TransientJobError(exc.message, status=exc.status) from None
        raise LinkbackError(SOURCE_NOT_FOUND, f"The source page could not be fetched: {exc.message}") from None

    site = receiver.site
    is_target = TargetLinks(site, target.url, entry.target_url)

    text = decode_html(page.body, page.charset)
    if page.content_type in HTML_TYPES:
        soup = BeautifulSoup(text, "lxml")
        if _says_gone(soup):
            raise _gone(LinkbackError(SOURCE_NOT_FOUND, "The source page says it is gone (HTTP-equiv status 410)."))
        base_tag = soup.find("base", href=True)
        base = urljoin(page.url, base_tag["href"].strip()) if base_tag else page.url
        if not any(_links(base, el.get(attr, ""), is_target) for el in soup.find_all(list(LINKING))
                   for attr in [LINKING[el.name]]):
            raise _gone(LinkbackError(NO_LINK, "The source page does not link to the target."))
        reading = read_mf2(text, page.url, is_target)
    else:
        # Webmention §3.2.2: a plain-text source must contain the target URL; a JSON one must
        # have it as a value. Such a source has no microformats: it is a plain mention.
        targets = {entry.target_url, target.url}
        found = (any(t in text for t in targets) if page.content_type == "text/plain"
                 else _json_mentions(text, targets, is_target))
        if not found:
            raise _gone(LinkbackError(NO_LINK, "The source does not mention the target URL."))
        reading = {"author_name": "", "author_url": "", "author_photo": "", "content": "", "type": "mention"}
    key = source_key(entry.source_url)
    comment = db.session.scalar(select(Comment).where(Comment.post_id == target.post_id, Comment.source_key == key))
    mention = Mention(protocol="webmention", source=entry.source_url, target=entry.target_url, client_ip=entry.client_ip)
    if comment is None:
        comment = Comment(post_id=target.post_id, kind=CommentKind.WEBMENTION.value, source_key=key,
                          status=store._initial_status(mention).value, ip=entry.client_ip, created_at=utcnow())
        db.session.add(comment)
        updated = False
    elif comment.kind != CommentKind.WEBMENTION.value:
        raise LinkbackError(48, "A pingback or trackback from this source to this post is already registered.")
    else:
        updated = True
    comment.source_url = entry.source_url[:2000]
    comment.author_name = reading["author_name"] or urlsplit(page.url).hostname or ""
    comment.author_url = reading["author_url"] or entry.source_url[:2000]
    comment.author_photo = reading["author_photo"] or None
    comment.content = reading["content"]
    comment.response_type = reading["type"]
    db.session.flush()
    verb = "updated" if updated else "stored"
    _finish(entry, "accepted", f"Verified; {verb} as a {reading['type']} ({comment.status}).", comment_id=comment.id)
    return "verified"


def _says_gone(soup: BeautifulSoup) -> bool:
    """``<meta http-equiv="Status" content="410 Gone">``: a static page's way of answering 410."""
    for meta in soup.find_all("meta", attrs={"http-equiv": True, "content": True}):
        if meta["http-equiv"].strip().lower() == "status" and meta["content"].strip().startswith("410"):
            return True
    return False


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
            if value in targets or (value.startswith(("http://", "https://")) and _links("", value, is_target)):
                return True
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _gone(error: LinkbackError) -> LinkbackError:
    error.gone = True
    return error


def _links(base: str, value: str, is_target) -> bool:
    value = (value or "").strip()
    if not value or value.startswith("#"):
        return False
    try:
        return is_target(urljoin(base, value))
    except ValueError:
        return False


def _first_str(values) -> str:
    for value in values or []:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            if "value" in value and isinstance(value["value"], str):
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


def read_mf2(html: str, url: str, is_target) -> dict:
    """Author (name, url, photo), content text and response type from the source's first h-entry."""
    result = {"author_name": "", "author_url": "", "author_photo": "", "content": "", "type": "mention"}
    try:
        parsed = mf2py.parse(doc=html, url=url)
    except Exception:  # a page mf2py cannot read is still a mention
        log.warning("mf2 parsing of %s failed", url, exc_info=True)
        return result
    entries = list(_entries(parsed.get("items", [])))
    if not entries:
        return result
    # The h-entry that responds to the target, else the first.
    entry = next((e for e in entries for prop, _ in RESPONSE_PROPERTIES
                  if any(is_target(u) for u in _urls_of(e["properties"].get(prop)))), entries[0])
    props = entry.get("properties", {})
    for prop, kind in RESPONSE_PROPERTIES:
        if any(is_target(u) for u in _urls_of(props.get(prop))):
            result["type"] = kind
            break
    author = (props.get("author") or [None])[0]
    if isinstance(author, dict):
        aprops = author.get("properties", {})
        result["author_name"] = _first_str(aprops.get("name")) or (author.get("value") if isinstance(author.get("value"), str) else "")
        result["author_url"] = _first_str(aprops.get("url"))
        result["author_photo"] = _first_str(aprops.get("photo"))
    elif isinstance(author, str):
        if is_http_url(author):
            result["author_url"] = author
        else:
            result["author_name"] = author
    content = (props.get("content") or [None])[0]
    if isinstance(content, dict):
        text = content.get("value", "")
    elif isinstance(content, str):
        text = content
    else:
        text = _first_str(props.get("summary")) or _first_str(props.get("name"))
    result["author_name"] = cap(squash(result["author_name"]), NAME_LIMIT)
    for name in ("author_url", "author_photo"):
        if not is_http_url(result[name]) or len(result[name]) > 2000:
            result[name] = ""
    result["content"] = cap(squash(text or ""), CONTENT_LIMIT)
    return result
