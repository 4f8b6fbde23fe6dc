"""The readers' page cache and conditional GETs (blogapp/pagecache.py).

Pages are cached per process; what makes them stale is the content version in the database, so
the tests also run two apps on one database, as two gunicorn workers are.
"""
from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import create_engine, delete, event, text

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, Post, save_site_settings, utcnow
from blogapp.moderation import apply_action
from blogapp.posts import save_post
from blogapp.templating import site_request_context
from blogapp.pagecache import VersionListener
from conftest import TEST_DATABASE_URL, count_queries
from helpers import add_comment, make_post, wait_for

NEEDS_POSTGRESQL = pytest.mark.skipif(not TEST_DATABASE_URL, reason="LISTEN/NOTIFY needs PostgreSQL: set TEST_DATABASE_URL")


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE_LISTEN": False}])
def test_a_second_view_is_served_from_the_cache_with_one_query(app, client, ctx):
    _, path = make_post(title="Cached")
    first = client.get(path)
    assert first.status_code == 200 and first.headers["ETag"].startswith('W/"')
    with count_queries(app) as queries:
        second = client.get(path)
    assert second.status_code == 200 and second.get_data() == first.get_data()
    assert queries[0] == 1  # the content version, nothing else
    assert second.headers["X-Pingback"] == first.headers["X-Pingback"]
    assert second.headers["Content-Type"] == first.headers["Content-Type"]


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE_LISTEN": False}, {"PAGE_CACHE": False}])
def test_conditional_gets_answer_304_without_rendering(app, client, ctx):
    _, path = make_post(title="Conditional")
    first = client.get(path)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    with count_queries(app) as queries:
        again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    assert queries[0] <= 1  # the versions (none on PostgreSQL once the listener has them); rendering takes more
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(path, headers={"If-None-Match": 'W/"0-other"'}).status_code == 200
    for url in ("/", "/feed/", path + "feed/"):
        tag = client.get(url).headers["ETag"]
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 304, url


def test_an_approved_comment_makes_the_page_new_and_a_held_one_does_not(app, client, ctx):
    post_id, path = make_post(title="Thread")
    etag = client.get(path).headers["ETag"]
    held = add_comment(post_id, "Held for now", status=CommentStatus.PENDING)
    assert client.get(path).headers["ETag"] == etag  # nothing readers see changed
    apply_action(db.session.get(Comment, held), "approve")
    db.session.commit()
    page = client.get(path, headers={"If-None-Match": etag})
    assert page.status_code == 200 and "Held for now" in page.get_data(as_text=True)
    assert page.headers["ETag"] != etag


def test_bulk_deletes_and_setting_changes_make_pages_new(app, client, ctx):
    post_id, path = make_post(title="Bulk")
    add_comment(post_id, "A mention", kind=CommentKind.WEBMENTION, source_url="http://other.test/m")
    assert "A mention" in client.get(path).get_data(as_text=True)
    db.session.execute(delete(Comment).where(Comment.post_id == post_id))
    db.session.commit()
    assert "A mention" not in client.get(path).get_data(as_text=True)
    save_site_settings({"SITE_TITLE": "A New Title"})
    db.session.commit()
    g.pop("site_settings", None)  # the test's own app context (shared with the client) read them already
    assert "A New Title" in client.get("/").get_data(as_text=True)


def test_personal_pages_are_never_cached(app, client, ctx, admin_client):
    post_id, path = make_post(title="Personal")
    client.get(path)
    # The admin is logged in: no ETag, the page is rendered for them.
    page = admin_client.get(path)
    assert "ETag" not in page.headers and "Dashboard" in page.get_data(as_text=True)


def test_a_visitor_sees_their_own_held_comment(app, ctx):
    post_id, path = make_post(title="Held")
    visitor, other = app.test_client(), app.test_client()
    other.get(path)  # cached for everyone else
    form = {"author_name": "Vera", "author_email": "vera@example.org", "author_url": "", "content": "My held words",
            "parent_id": "", "homepage": ""}
    assert visitor.post(f"/posts/{post_id}/comments", data=form).status_code == 303
    mine = visitor.get(path)
    assert "My held words" in mine.get_data(as_text=True) and "ETag" not in mine.headers
    assert "My held words" not in other.get(path).get_data(as_text=True)


def test_a_scheduled_post_appears_when_its_time_comes(app, client, ctx):
    make_post(title="Already out")
    save_post(None, title="Coming soon", body="Soon.", publish=True, published_at=utcnow() + timedelta(seconds=1))
    db.session.commit()
    assert "Coming soon" not in client.get("/").get_data(as_text=True)
    time.sleep(1.1)
    assert "Coming soon" in client.get("/").get_data(as_text=True)
    assert "Coming soon" in client.get("/feed/").get_data(as_text=True)


@contextmanager
def other_worker(app, tmp_path, **config):
    """A second app on the same database, with its own in-process cache: another gunicorn worker."""
    other = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SITE_URL", "TESTING")},
                        "SQLALCHEMY_ENGINE_OPTIONS": app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
                        "SECRET_KEY": "other-" + secrets.token_hex(4), "RATELIMIT_ENABLED": False, **config},
                       instance_path=str(tmp_path / f"other-instance-{secrets.token_hex(2)}"))
    try:
        yield other
    finally:
        other.extensions["linkback_receiver"].shutdown()
        other.extensions["jobs"].shutdown()
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_change_made_by_another_worker_is_seen_at_once(app, client, tmp_path, pg_schema):
    """Two apps on one database, each with its own in-process cache, as two gunicorn workers.

    No test-wide app context here: each request has its own, and its own session, as in a worker.
    (On PostgreSQL the first app may be listening for changes by now: a commit in this process
    tells its listeners at once, so this holds there too.)
    """
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Shared")
    assert "From the other worker" not in client.get(path).get_data(as_text=True)
    with other_worker(app, tmp_path) as other:
        with other.app_context():
            add_comment(post_id, "From the other worker")
        assert "From the other worker" in client.get(path).get_data(as_text=True)
        with other.app_context():
            post = db.session.get(Post, post_id)
            post.title = "Shared, renamed"
            db.session.commit()
        assert "Shared, renamed" in client.get("/").get_data(as_text=True)


def listening(app) -> bool:
    listener = app.extensions.get("page_version_listener")
    return listener is not None and listener.row() is not None


def listened_post(app, client, title: str):
    """A post, viewed once, and the app's version listener once it holds the version."""
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title=title)
    client.get(path)
    assert wait_for(lambda: listening(app)), "the version listener never got a row"
    return post_id, path, app.extensions["page_version_listener"]


@NEEDS_POSTGRESQL
def test_on_postgresql_cached_views_ask_the_database_nothing(app, client, ctx):
    _, path = make_post(title="Listened")
    first = client.get(path)
    assert wait_for(lambda: listening(app)), "the version listener never got a row"
    with count_queries(app) as queries:
        for _ in range(20):
            again = client.get(path)
            assert again.status_code == 200 and again.get_data() == first.get_data()
        assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert queries[0] == 0


@NEEDS_POSTGRESQL
def test_on_postgresql_a_change_in_another_process_arrives_by_notification(app, client, tmp_path, pg_schema,
                                                                           monkeypatch):
    """A change committed by another process reaches this one's listener by NOTIFY, not by polling.

    The other "process" here shares our Python process, where a commit tells the listeners
    directly; that shortcut is switched off so that only the notification can carry it."""
    monkeypatch.setattr(VersionListener, "RECHECK_EVERY", 60.0)
    monkeypatch.setattr(VersionListener, "FRESH_FOR", 120.0)
    monkeypatch.setattr(VersionListener, "changed_here", lambda self: None)
    post_id, path, listener = listened_post(app, client, "Pushed")
    before = listener.row().version
    with other_worker(app, tmp_path) as other:
        with other.app_context():
            add_comment(post_id, "Carried by a notification")
        assert wait_for(lambda: listener.row().version > before, timeout=10), "no notification arrived"
        assert "Carried by a notification" in client.get(path).get_data(as_text=True)


@NEEDS_POSTGRESQL
def test_on_postgresql_a_lost_listener_connection_falls_back_and_reconnects(app, client, tmp_path, pg_schema,
                                                                             monkeypatch):
    """The listening connection is cut: until it is back, readers are answered from the database.

    The change below is made in this Python process, where a commit would also tell the
    listener directly; that is switched off, so only the fallback can show it."""
    monkeypatch.setattr(VersionListener, "changed_here", lambda self: None)
    post_id, path, listener = listened_post(app, client, "Resilient")
    lost = listener.backend_pid
    killer = create_engine(TEST_DATABASE_URL)
    try:
        with killer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost}).scalar()
        assert wait_for(lambda: listener.row() is None, timeout=5), "the loss went unnoticed"
        with other_worker(app, tmp_path) as other:
            with other.app_context():
                add_comment(post_id, "While the listener was away")
            page = client.get(path)
            assert page.status_code == 200 and "While the listener was away" in page.get_data(as_text=True)
        assert wait_for(lambda: listening(app) and listener.backend_pid != lost, timeout=10), "it never came back"
        with killer.connect() as conn:
            alive = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": listener.backend_pid})
            assert alive.scalar() == 1
    finally:
        killer.dispose()


@NEEDS_POSTGRESQL
def test_on_postgresql_the_listener_ends_with_its_app(app, client, tmp_path, pg_schema):
    """Apps come and go (tests, reloads): each one's listening connection must go with it."""
    with app.app_context(), site_request_context(app):
        _, path = make_post(title="Short-lived")
    with other_worker(app, tmp_path) as other:
        other.test_client().get(path)
        assert wait_for(lambda: listening(other))
        listener = other.extensions["page_version_listener"]
        backend = listener.backend_pid
    watcher = create_engine(TEST_DATABASE_URL)
    try:
        def gone():
            with watcher.connect() as conn:
                return not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                        {"pid": backend}).scalar()
        listener.thread.join(timeout=5)
        assert not listener.thread.is_alive(), "the listener's thread outlived its app"
        assert listener.row() is None
        assert wait_for(gone, timeout=5), "the listening connection outlived its app"
    finally:
        watcher.dispose()


def test_a_cached_page_never_shows_a_flash_to_someone_else(app, ctx):
    post_id, path = make_post(title="Flash")
    first, second = app.test_client(), app.test_client()
    with first.session_transaction() as sess:
        sess["_flashes"] = [("info", "A message for the first visitor")]
    assert "A message for the first visitor" in first.get(path).get_data(as_text=True)
    assert "A message for the first visitor" not in second.get(path).get_data(as_text=True)
    assert "A message for the first visitor" not in first.get(path).get_data(as_text=True)  # shown once


def test_static_assets_have_versioned_urls_kept_for_a_year(app, client, ctx):
    page = client.get("/").get_data(as_text=True)
    import re
    href = re.search(r'href="(/static/style\.css\?v=[0-9a-f]{10})"', page).group(1)
    with client.get(href) as answer:
        assert answer.status_code == 200 and answer.cache_control.max_age == 365 * 24 * 3600
    with client.get("/static/style.css") as plain:  # unversioned: revalidated as before
        assert plain.cache_control.max_age != 365 * 24 * 3600
    # The version is the file's content: changing the file changes the URL.
    from hashlib import sha256
    from pathlib import Path
    assert href.endswith(sha256((Path(app.static_folder) / "style.css").read_bytes()).hexdigest()[:10])


def test_cached_pages_are_sent_before_flask_for_readers_without_cookies(app, client, ctx):
    """The WSGI fast path: no Flask request (no session, login or rate-limit work) for a cache hit."""
    _, path = make_post(title="Fast")
    seen = []
    app.before_request(lambda: seen.append(1) and None)
    first = client.get(path)  # a miss: rendered by the app, and cached
    assert len(seen) == 1
    again = client.get(path)
    assert again.get_data() == first.get_data() and len(seen) == 1  # the app never saw it
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary", "Content-Type", "X-Pingback", "Link"):
        assert again.headers[name] == first.headers[name], name
    head = client.head(path)
    assert head.status_code == 200 and head.get_data() == b"" and int(head.headers["Content-Length"]) == len(first.get_data())
    not_modified = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.get_data() == b"" and len(seen) == 1
    assert client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    # A reader with a session cookie goes to the app, which decides what they may see.
    other = app.test_client()
    other.set_cookie(app.config["SESSION_COOKIE_NAME"], "not-a-real-session")
    assert other.get(path).get_data() == first.get_data() and len(seen) == 2
    # An ETag that only looks right for another URL does not make the app's other pages 304.
    assert client.get("/admin/login", headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


# ------------------------------------------------------------------ what a change makes stale


def views(client, *paths):
    """Each page's (ETag, X-Cache) as a reader without cookies gets it now."""
    answers = {path: client.get(path) for path in paths}
    for path, answer in answers.items():
        assert answer.status_code == 200, path
    return {path: (answer.headers["ETag"], answer.headers["X-Cache"]) for path, answer in answers.items()}


def test_a_comment_makes_stale_its_post_and_what_counts_it_and_nothing_else(app, client, ctx):
    per_page = int(app.config["POSTS_PER_PAGE"])
    a_id, a = make_post(title="Post A", days_ago=per_page + 5)  # the oldest: on the second page only
    b_id, b = make_post(title="Post B", days_ago=2)
    for n in range(per_page):
        make_post(title=f"Filler {n}", days_ago=3 + n / 10)
    pages = (a, b, "/", "/page/2/", a + "feed/", b + "feed/", "/feed/")
    views(client, *pages)
    before = views(client, *pages)
    assert {cached for _, cached in before.values()} == {"hit"}

    add_comment(a_id, "A new comment on A")
    after = views(client, *pages)
    stale = {path for path in pages if after[path][0] != before[path][0]}
    assert stale == {a, "/page/2/", a + "feed/"}
    assert all(after[path] == before[path] for path in pages if path not in stale)  # kept, and served as hits
    assert "A new comment on A" in client.get(a).get_data(as_text=True)
    assert "A new comment on A" in client.get(a + "feed/").get_data(as_text=True)


def test_a_post_edit_makes_stale_that_post_and_the_listings_showing_it(app, client, ctx):
    a_id, a = make_post(title="Edited post", days_ago=3)
    b_id, b = make_post(title="Untouched post", days_ago=2)
    pages = (a, b, "/", "/feed/")
    views(client, *pages)
    before = views(client, *pages)

    save_post(db.session.get(Post, a_id), title="Edited post", body="A body rewritten.", publish=True)
    db.session.commit()
    after = views(client, *pages)
    assert {path for path in pages if after[path][0] != before[path][0]} == {a, "/", "/feed/"}
    assert after[b] == before[b]
    assert "A body rewritten." in client.get(a).get_data(as_text=True)

    # A new title shows in every page's sidebar and in the neighbours' links: everything moves.
    save_post(db.session.get(Post, a_id), title="Renamed post", body="A body rewritten.", publish=True)
    db.session.commit()
    renamed = views(client, *pages)
    assert all(renamed[path][0] != after[path][0] for path in pages)
    assert "Renamed post" in client.get(b).get_data(as_text=True)


def test_a_held_or_spam_comment_changes_nothing_and_approving_it_changes_its_post(app, client, ctx):
    a_id, a = make_post(title="Moderated", days_ago=3)
    _, b = make_post(title="Bystander", days_ago=2)
    views(client, a, b)
    before = views(client, a, b)
    held = add_comment(a_id, "Wait for it", status=CommentStatus.PENDING)
    add_comment(a_id, "Buy now", status=CommentStatus.SPAM)
    assert views(client, a, b) == before
    apply_action(db.session.get(Comment, held), "approve")
    db.session.commit()
    after = views(client, a, b)
    assert after[a][0] != before[a][0] and after[b] == before[b]
    apply_action(db.session.get(Comment, held), "trash")  # and back out of sight
    db.session.commit()
    assert "Wait for it" not in client.get(a).get_data(as_text=True)


def test_a_change_in_another_worker_makes_stale_only_what_it_touches(app, client, tmp_path, pg_schema):
    with app.app_context(), site_request_context(app):
        a_id, a = make_post(title="Shared A", days_ago=3)
        _, b = make_post(title="Shared B", days_ago=2)
    views(client, a, b)
    before = views(client, a, b)
    with other_worker(app, tmp_path) as other:
        with other.app_context():
            add_comment(a_id, "Written by the other worker")
        after = views(client, a, b)
    assert after[a][0] != before[a][0] and after[b] == before[b]
    assert "Written by the other worker" in client.get(a).get_data(as_text=True)


def test_a_page_rendered_while_what_it_shows_changes_is_not_kept(app, client, tmp_path, pg_schema):
    """A comment committed by another worker while this one reads the thread: the page it renders
    may mix before and after, so it is neither cached nor given validators; the next view is right."""
    with app.app_context(), site_request_context(app):
        a_id, a = make_post(title="Racing", days_ago=2)
    with other_worker(app, tmp_path) as other:
        fired = []

        def comment_meanwhile(conn, cursor, statement, parameters, context, executemany):
            if not fired and "FROM comment" in statement and "comment.post_id" in statement:
                fired.append(1)
                with other.app_context():
                    add_comment(a_id, "Slipped in meanwhile")

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", comment_meanwhile)
        try:
            racing = client.get(a)
        finally:
            event.remove(engine, "before_cursor_execute", comment_meanwhile)
    assert fired and racing.status_code == 200
    assert "ETag" not in racing.headers
    again = client.get(a)
    assert "Slipped in meanwhile" in again.get_data(as_text=True) and again.headers["X-Cache"] == "miss"
    assert client.get(a).headers["X-Cache"] == "hit"


@NEEDS_POSTGRESQL
def test_on_postgresql_a_comment_elsewhere_leaves_a_listened_page_cached(app, client, tmp_path, pg_schema):
    a_id, a, listener = listened_post(app, client, "Listened A")
    with app.app_context(), site_request_context(app):
        _, b = make_post(title="Listened B")
    views(client, a, b)
    before = views(client, a, b)
    # (A commit in this process makes the listener re-read before it is trusted again: wait for it.)
    seen = wait_for(listener.row).version
    with other_worker(app, tmp_path) as other:
        with other.app_context():
            add_comment(a_id, "Told by NOTIFY")
    assert wait_for(lambda: (row := listener.row()) is not None and row.version > seen, timeout=10)
    with count_queries(app) as queries:
        after = views(client, b)
    assert after[b] == before[b] and queries[0] == 0  # still a hit, from memory
    assert "Told by NOTIFY" in client.get(a).get_data(as_text=True)
