"""The readers' page cache and conditional GETs (blogapp/pagecache.py).

Pages are cached per process; what makes them stale is the content version in the database, so
the tests also run two apps on one database, as two gunicorn workers are.
"""
from __future__ import annotations

import secrets
import time
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import delete

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, Post, save_site_settings, utcnow
from blogapp.moderation import apply_action
from blogapp.posts import save_post
from blogapp.templating import site_request_context
from conftest import count_queries
from helpers import add_comment, make_post


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


@pytest.mark.parametrize("config_overrides", [{}, {"PAGE_CACHE": False}])
def test_conditional_gets_answer_304_without_rendering(app, client, ctx):
    _, path = make_post(title="Conditional")
    first = client.get(path)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    with count_queries(app) as queries:
        again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    assert queries[0] == 1
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


def test_a_change_made_by_another_worker_is_seen_at_once(app, client, tmp_path, pg_schema):
    """Two apps on one database, each with its own in-process cache, as two gunicorn workers.

    No test-wide app context here: each request has its own, and its own session, as in a worker.
    """
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Shared")
    assert "From the other worker" not in client.get(path).get_data(as_text=True)
    other = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SITE_URL", "TESTING")},
                        "SQLALCHEMY_ENGINE_OPTIONS": app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
                        "SECRET_KEY": "other-" + secrets.token_hex(4), "RATELIMIT_ENABLED": False},
                       instance_path=str(tmp_path / "other-instance"))
    try:
        with other.app_context():
            add_comment(post_id, "From the other worker")
        assert "From the other worker" in client.get(path).get_data(as_text=True)
        with other.app_context():
            post = db.session.get(Post, post_id)
            post.title = "Shared, renamed"
            db.session.commit()
        assert "Shared, renamed" in client.get("/").get_data(as_text=True)
    finally:
        other.extensions["linkback_receiver"].shutdown()
        other.extensions["jobs"].shutdown()
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


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
