"""WordPress's Discussion settings' spam rules: COMMENT_MAX_LINKS, COMMENT_MODERATION_KEYS and
COMMENT_DISALLOWED_KEYS, on visitors' comments (the real form), on pingbacks and Webmentions (a
real page on 127.0.0.1 and the real ``xmlrpc.client``), set in the admin's Settings form and in
``BLOGAPP_*`` variables."""
from __future__ import annotations

import json
import subprocess
import sys
import xmlrpc.client

import pytest
import requests
from bs4 import BeautifulSoup
from flask import g
from sqlalchemy import select

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import Comment, load_site_settings, save_site_settings
from blogapp.moderation import count_links
from blogapp.templating import site_request_context
from conftest import SITE_URL, csrf_token
from helpers import make_post, wait_for

pytestmark = pytest.mark.usefixtures("no_server_errors")

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"


@pytest.fixture
def config_overrides():
    """Comments published at once, so that a rule is what holds one; linkbacks likewise."""
    return {"COMMENT_MODERATION": "approve", "LINKBACK_MODERATION": "approve",
            "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_VERIFY_BUDGET": 5.0,
            "LINKBACK_VERIFY_BURST": 1.0}


def rules(**values) -> None:
    save_site_settings(values)
    db.session.commit()


def comment(client, post_id, **fields):
    # The test's app context (``ctx``) is its requests' too, as Flask reuses a pushed one: its ``g``
    # would keep the settings the first request read, which a real request never sees.
    g.pop("site_settings", None)
    data = {"author_name": "Ann Reader", "author_email": "ann@example.org", "author_url": "",
            "content": "A thoughtful remark.", "parent_id": "", "homepage": "", **fields}
    response = client.post(f"/posts/{post_id}/comments", data=data, headers={"User-Agent": BROWSER})
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    return db.session.scalars(select(Comment).order_by(Comment.id.desc())).first()


# ------------------------------------------------------------------ counting links, as WordPress does


@pytest.mark.parametrize("text, links", [
    ("no address here", 0),
    ("see http://a.example/ and https://b.example/x", 2),
    ('<a href="http://a.example/">a link</a>', 1),
    ('<a href="http://a.example/">http://a.example/</a>', 2),  # its text is an address too
    ("<a href='//a.example/'>a</a> <A HREF = \"HTTPS://b.example\">b</a>", 2),
    ("ftp://files.example/ and mailto:someone@example.org", 1),  # "//" counts, whatever came before
])
def test_links_are_counted_as_wordpress_counts_them(text, links):
    assert count_links(text) == links


# ------------------------------------------------------------------ comments


def test_a_comment_with_as_many_links_as_the_limit_is_held(app, client, ctx):
    post_id, path = make_post()
    assert load_site_settings(app.config)["COMMENT_MAX_LINKS"] == 2  # WordPress's default
    one = comment(client, post_id, content="One link: https://a.example/")
    two = comment(client, post_id, content="https://a.example/ and https://b.example/")
    assert (one.status, two.status) == ("approved", "pending")
    page = client.get(path).get_data(as_text=True)
    assert "Your comment is awaiting moderation." in page  # its author is told, as for any held one

    rules(COMMENT_MAX_LINKS=0)  # no limit
    many = comment(client, post_id, content=" ".join(f"https://{n}.example/" for n in range(9)))
    assert many.status == "approved"
    rules(COMMENT_MAX_LINKS=1)
    assert comment(client, post_id, content="One link again: https://a.example/").status == "pending"


@pytest.mark.parametrize("fields", [
    {"content": "Visit my CASINO today"},
    {"author_name": "Casino Bob"},
    {"author_email": "bob@casino.example"},
    {"author_url": "https://casino.example/"},
], ids=["content", "name", "email", "url"])
def test_a_moderation_key_in_any_field_holds_the_comment(app, client, ctx, fields):
    post_id, _ = make_post()
    rules(COMMENT_MODERATION_KEYS=["casino"])
    assert comment(client, post_id, **fields).status == "pending"
    assert comment(client, post_id).status == "approved"  # nothing matches


def test_moderation_keys_match_the_address_and_the_browser_too(app, client, ctx):
    post_id, _ = make_post()
    rules(COMMENT_MODERATION_KEYS=["127.0.0.1"])
    assert comment(client, post_id).status == "pending"
    rules(COMMENT_MODERATION_KEYS=["firefox/120"])
    assert comment(client, post_id).status == "pending"
    rules(COMMENT_MODERATION_KEYS=["  ", "chrome"])  # blank keys match nothing
    assert comment(client, post_id).status == "approved"


def test_a_disallowed_key_sends_the_comment_to_spam_unseen(app, admin_client):
    # No ``ctx``: a reader and an admin, each request in its own app context (a shared one would
    # share Flask-Login's user between the two clients).
    with app.app_context(), site_request_context(app):
        post_id, path = make_post()
        rules(COMMENT_DISALLOWED_KEYS=["cheap pills"])
    reader = app.test_client()
    with app.app_context():
        spam = comment(reader, post_id, content="Buy CHEAP PILLS here")
    assert spam.status == "spam"
    page = reader.get(path).get_data(as_text=True)
    assert "CHEAP PILLS" not in page  # not shown, not even to its author
    assert "Your comment is awaiting moderation." in page  # told what a held one is told
    # Tags do not hide a key; and a spam match wins over a hold.
    with app.app_context():
        rules(COMMENT_DISALLOWED_KEYS=["casino"], COMMENT_MODERATION_KEYS=["casino"])
        assert comment(reader, post_id, content="ca<b></b>sino games").status == "spam"
        assert comment(reader, post_id, content="&#99;asino nights").status == "spam"  # nor does an entity
    listed = admin_client.get("/admin/comments?status=spam").get_data(as_text=True)
    assert "Buy CHEAP PILLS here" in listed


def test_an_admins_own_comment_is_not_checked(app, client, ctx, admin_client):
    post_id, _ = make_post()
    rules(COMMENT_DISALLOWED_KEYS=["casino"], COMMENT_MAX_LINKS=1)
    path_page = admin_client.get("/admin/").status_code
    assert path_page == 200
    token = csrf_token(admin_client, "/admin/settings")
    mine = comment(admin_client, post_id, content="On casino law: https://law.example/", csrf_token=token)
    assert mine.status == "approved" and mine.user_id is not None


def test_rules_only_hold_or_spam_never_publish(app, client, ctx):
    """A comment its moderation mode holds stays held when no rule matches."""
    post_id, _ = make_post()
    rules(COMMENT_MODERATION="hold-all", COMMENT_MODERATION_KEYS=["casino"])
    assert comment(client, post_id).status == "pending"


# ------------------------------------------------------------------ linkbacks


def linking_page(target: str, title: str, excerpt: str) -> str:
    return (f"<!doctype html><html><head><title>{title}</title></head><body><article>"
            f"<p>{excerpt} <a href=\"{target}\">this post</a>.</p></article></body></html>")


def pingback(server, source, target) -> str:
    with xmlrpc.client.ServerProxy(server.url + "/xmlrpc") as proxy:
        return proxy.pingback.ping(source, target)


def test_pingbacks_meet_the_same_rules(app, ctx, live_server, source_site):
    post_id, path = make_post(title="Target post")
    target = SITE_URL + path
    rules(COMMENT_DISALLOWED_KEYS=["casino"], COMMENT_MODERATION_KEYS=["payday"])
    pages = {
        "clean": source_site.page("/clean", linking_page(target, "A fair review", "I liked")),
        "title": source_site.page("/title", linking_page(target, "Best CASINO bonuses", "I liked")),
        "excerpt": source_site.page("/excerpt", linking_page(target, "A review", "Payday loans and")),
        "address": source_site.page("/casino-reviews", linking_page(target, "Reviews", "I liked")),
        "links": source_site.page("/links", linking_page(
            target, "Many links", "See https://a.example/ and https://b.example/ about")),
    }
    for source in pages.values():
        assert "registered" in pingback(live_server, source, target)
    statuses = {name: db.session.scalar(select(Comment.status).where(Comment.source_url == url))
                for name, url in pages.items()}
    assert statuses == {"clean": "approved", "title": "spam", "excerpt": "pending", "address": "spam",
                        "links": "pending"}
    shown = BeautifulSoup(requests.get(live_server.url + path, timeout=10).text, "html.parser").get_text()
    assert "A fair review" in shown and "CASINO" not in shown and "Payday" not in shown


def test_a_webmention_meets_the_same_rules(app, ctx, live_server, source_site):
    post_id, path = make_post(title="Target post")
    target = SITE_URL + path
    rules(COMMENT_MODERATION_KEYS=["payday"])
    source = source_site.page("/mention", linking_page(target, "Payday notes", "I liked"))
    answer = requests.post(live_server.url + "/webmention", data={"source": source, "target": target}, timeout=10)
    assert answer.status_code in (200, 201, 202), answer.text
    assert wait_for(lambda: db.session.scalar(select(Comment.status).where(Comment.source_url == source)) == "pending")


# ------------------------------------------------------------------ where the rules are set


def test_the_settings_form_takes_one_key_per_line_and_shows_them_again(app, ctx, admin_client):
    token = csrf_token(admin_client, "/admin/settings")
    form = {"csrf_token": token, "SITE_TITLE": "Blog", "SITE_DESCRIPTION": "", "POSTS_PER_PAGE": "10",
            "COMMENT_MODERATION": "approve", "COMMENT_THREAD_DEPTH": "5", "CLOSE_COMMENTS_AFTER_DAYS": "0",
            "COMMENT_MAX_LINKS": "3",
            "COMMENT_MODERATION_KEYS": "  casino \r\n\r\nbuy now, cheap\r\n203.0.113.7",
            "COMMENT_DISALLOWED_KEYS": "spam.example"}
    assert admin_client.post("/admin/settings", data=form).status_code == 302
    db.session.expire_all()
    settings = load_site_settings(app.config)
    assert settings["COMMENT_MAX_LINKS"] == 3
    assert settings["COMMENT_MODERATION_KEYS"] == ["casino", "buy now, cheap", "203.0.113.7"]
    assert settings["COMMENT_DISALLOWED_KEYS"] == ["spam.example"]
    page = BeautifulSoup(admin_client.get("/admin/settings").get_data(as_text=True), "html.parser")
    assert page.select_one("textarea[name=COMMENT_MODERATION_KEYS]").get_text().strip() == \
        "casino\nbuy now, cheap\n203.0.113.7"
    assert page.select_one("input[name=COMMENT_MAX_LINKS]")["value"] == "3"

    # A bad value: the form's error, what was typed kept, nothing saved.
    bad = {**form, "COMMENT_MAX_LINKS": "-1", "COMMENT_DISALLOWED_KEYS": "x" * 501 + "\nkept line"}
    answer = admin_client.post("/admin/settings", data=bad)
    assert answer.status_code == 400
    shown = BeautifulSoup(answer.get_data(as_text=True), "html.parser")
    assert "kept line" in shown.select_one("textarea[name=COMMENT_DISALLOWED_KEYS]").get_text()
    assert "at most 500 characters" in shown.get_text()
    db.session.expire_all()
    assert load_site_settings(app.config)["COMMENT_DISALLOWED_KEYS"] == ["spam.example"]


def test_environment_variables_are_json_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOGAPP_COMMENT_MODERATION_KEYS", json.dumps(["casino", "buy now, cheap"]))
    monkeypatch.setenv("BLOGAPP_COMMENT_DISALLOWED_KEYS", "")
    monkeypatch.setenv("BLOGAPP_COMMENT_MAX_LINKS", "5")
    monkeypatch.setenv("BLOGAPP_SECRET_KEY", "test-key-" + "x" * 20)
    monkeypatch.setenv("BLOGAPP_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'blog.sqlite'}")
    app = create_app(instance_path=str(tmp_path / "instance"))  # the environment read, as in production
    assert app.config["COMMENT_MODERATION_KEYS"] == ["casino", "buy now, cheap"]
    assert app.config["COMMENT_DISALLOWED_KEYS"] == []
    assert app.config["COMMENT_MAX_LINKS"] == 5


def test_a_key_list_that_is_not_json_stops_the_app_with_one_line(tmp_path):
    env = {"BLOGAPP_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'blog.sqlite'}",
           "BLOGAPP_COMMENT_MODERATION_KEYS": "casino, poker", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "blogapp", "check"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [line for line in (done.stdout + done.stderr).splitlines() if "COMMENT_MODERATION_KEYS" in line]
    assert "JSON list" in line and "casino, poker" in line
