"""``@cached_page``: an anonymous reader's GET of a view is answered from the cache while every
part of the site the page showed is unchanged, and 304 when the reader has it already.

A view says what it shows with ``depends_on(...)`` (``scopes.py``); every page depends on the
site and the post list. Versions are read once, before the view runs; parts named only while it
ran are read after it, and the page is kept only if none of them moved past the counter read
first (else it may mix data from before and after a change).
"""
from __future__ import annotations

from datetime import datetime
from functools import wraps

from flask import Flask, Response, current_app, has_request_context, request, session
from flask_login import current_user

from ..extensions import db
from ..models import utcnow
from . import versions as store_versions
from .scopes import EVERY_PAGE
from .store import KEPT_HEADERS, PageEntry, cache, fragment_key, page_key
from .validators import make_etag, not_modified, validator_headers
from .versions import Versions

# Session keys that make a page someone's own: held comments, flash messages, a logged-in user.
_PERSONAL = ("held_comments", "_flashes", "_user_id")
REQUEST_VERSIONS = "blogapp.page_versions"  # request.environ: what this request has read (the fast path may have)
_DEPENDS = "blogapp.page_depends"  # request.environ: the parts the page being rendered shows
_MOVED = "blogapp.page_moved"  # request.environ: a part a fragment shows moved while it was computed
_TURNS = "blogapp.page_turns"  # request.environ: when what the page shows changes by itself (turns_at)


def depends_on(*names: str) -> None:
    """The page being rendered shows these parts of the site (``scopes.py``)."""
    if has_request_context():
        request.environ.setdefault(_DEPENDS, set()).update(names)


def turns_at(moment: datetime) -> None:
    """What the page being rendered shows changes by itself at ``moment`` (UTC), with nothing
    written: a post's comments close at an age. Before it, the page is kept until then; after
    it, the page is dated from then. Either way its ETag says which side of it the page is."""
    if has_request_context():
        earlier = request.environ.get(_TURNS)
        request.environ[_TURNS] = moment if earlier is None else min(earlier, moment)


def known_versions(app: Flask, names) -> Versions | None:
    """What the listener knows (every part), else the database's versions of ``names``."""
    listener = app.extensions.get("page_version_listener")
    if listener is None and "page_version_engine" not in app.extensions:
        store_versions.reader_engine(app)
        listener = app.extensions["page_version_listener"]
    return (listener and listener.row()) or store_versions.read(app, names)


def _covers(found: Versions | None, names) -> bool:
    return found is not None and (found.complete or all(name in found.scopes for name in names))


def versions_for(names) -> Versions:
    """The versions of ``names`` as this request sees them: read once, made if missing, and a
    scheduled post come due moves the post list first."""
    environ = request.environ if has_request_context() else {}
    found = environ.get(REQUEST_VERSIONS)
    if _covers(found, names):
        return found
    app = current_app._get_current_object()
    wanted = set(names) | set(found.scopes if found and not found.complete else ()) | set(EVERY_PAGE)
    fresh = known_versions(app, wanted)
    if fresh is None:  # a database made without migrations: the rows come with the first page
        store_versions.create_rows(db.session.connection())
        db.session.commit()
        fresh = store_versions.read(app, wanted)
    if fresh.due_now():
        store_versions.bump_posts_if_due(db.session, fresh.due)
        db.session.commit()
        fresh = store_versions.read(app, wanted)
    if found is not None and not found.complete:
        # Keep the counter first read: parts read now are checked against it (see the docstring).
        fresh = fresh._replace(version=min(fresh.version, found.version), changed_at=found.changed_at)
    environ[REQUEST_VERSIONS] = fresh
    return fresh


def current_version() -> tuple[int, object]:
    """The counter and when anything last changed (the rows are made if missing)."""
    found = versions_for(EVERY_PAGE)
    return found.version, found.changed_at


def fragment(name: str, names, compute):
    """``compute()``'s value, kept while the parts ``names`` are unchanged (the sidebar, counts).

    Its parts are the page's too. The value must pickle (plain data)."""
    depends_on(*names)
    found = versions_for(names)  # read before computing: at worst a value kept under older versions
    parts = set(names)
    versions = tuple(sorted((part, found.of(part)[0]) for part in parts))
    app = current_app._get_current_object()
    key = fragment_key(app.extensions["page_release"], name)
    hit = cache.get(key)
    if hit is not None and hit[0] == versions:
        return hit[1]
    value = compute()
    after = known_versions(app, parts)
    if after is None or any(after.of(part)[0] != version for part, version in versions):
        # What it shows changed while it was computed: it may mix before and after, so neither it
        # nor the page showing it is kept (the next view computes it again).
        if has_request_context():
            request.environ[_MOVED] = True
        return value
    cache.set(key, (versions, value))
    return value


def _personal() -> bool:
    return current_user.is_authenticated or any(key in session for key in _PERSONAL)


def _answer(body, status, headers, etag, last_modified, *, hit: bool) -> Response:
    if not_modified(request.environ, etag, last_modified):
        response = Response(status=304)
    else:
        response = body if isinstance(body, Response) else Response(body, status=status, headers=headers)
    for name, value in validator_headers(etag, last_modified):
        if name == "Vary":
            response.vary.add(value)  # merged with what the app already varies on
        else:
            response.headers[name] = value
    response.headers["X-Cache"] = "hit" if hit else "miss"
    return response


def cached_page(view):
    """Cache and validate an anonymous reader's GET of this view (see the module docstring)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.method not in ("GET", "HEAD") or _personal():
            return view(*args, **kwargs)
        app = current_app._get_current_object()
        release = app.extensions["page_release"]
        key = page_key(release, request.environ)
        entry: PageEntry | None = cache.get(key)
        start = versions_for([*EVERY_PAGE, *(entry.names if entry else ())])
        if entry is not None and entry.current(start):
            if entry.body is not None and app.config["PAGE_CACHE"]:
                return _answer(entry.body, entry.status, entry.headers, entry.etag, entry.last_modified, hit=True)
            if not_modified(request.environ, entry.etag, entry.last_modified):
                return _answer(None, 304, [], entry.etag, entry.last_modified, hit=True)
        request.environ[_DEPENDS] = set(EVERY_PAGE)
        response = app.make_response(view(*args, **kwargs))
        if response.status_code != 200 or response.direct_passthrough or _personal():
            return response  # (the view made it personal: a flash, say)
        names = request.environ[_DEPENDS]
        end = versions_for(names)
        shown = tuple(sorted((name, end.of(name)[0]) for name in names))
        if max(version for _, version in shown) > start.version or request.environ.get(_MOVED):
            return response  # a part changed while the page was rendered: neither kept nor tagged
        last_modified = max(end.of(name)[1] for name in names)
        tagged, until = shown, None
        if (turns := request.environ.get(_TURNS)) is not None:
            if utcnow() < turns:
                until = turns
            else:
                last_modified = max(last_modified, turns)
            tagged = (*shown, ("turned" if until is None else "turns", turns.isoformat()))
        last_modified = last_modified.replace(microsecond=0)
        etag = make_etag(tagged, release)
        headers = [(name, response.headers[name]) for name in KEPT_HEADERS if name in response.headers]
        body = response.get_data() if app.config["PAGE_CACHE"] else None
        kept = PageEntry(body, response.status_code, headers, shown, etag, last_modified, until)
        if kept != entry:  # (with the page cache off, a page rendered again mostly has the validators kept)
            cache.set(key, kept)
        return _answer(response, response.status_code, headers, etag, last_modified, hit=False)

    return wrapper
