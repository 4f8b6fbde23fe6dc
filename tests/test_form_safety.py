"""Forms against other sites and against size: login cookies that a cross-site POST does not
carry, an admin's comment that must come from our own pages, one request-size cap
(MAX_CONTENT_LENGTH) answered 413 before the body is read, and error pages that echo no more
of a field than its own limit.
"""
from __future__ import annotations

import io
import re
import socket
import time
import xmlrpc.client
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.models import Comment, CommentStatus, User

from conftest import csrf_token
from helpers import make_post

MB = 1024 * 1024
WXR_FIXTURE = Path(__file__).parent / "fixtures" / "wordpress" / "wxr-export.xml"

pytestmark = pytest.mark.usefixtures("no_server_errors")


def comment_form(**overrides):
    data = {"author_name": "Ann Reader", "author_email": "ann@example.org", "author_url": "",
            "content": "A thoughtful remark.", "parent_id": "", "homepage": ""}
    data.update(overrides)
    return data


def comments(app) -> list[Comment]:
    with app.app_context():
        rows = db.session.scalars(select(Comment).order_by(Comment.id)).all()
        db.session.expunge_all()
        return rows


def admin_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == "admin"))


def set_cookies(response) -> dict[str, str]:
    """Each Set-Cookie header of the response, by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


# ---------------------------------------------------------------- cookies


def test_login_cookies_are_httponly_and_samesite_lax_and_not_secure_on_http(app, client, auth):
    auth.create()
    token = csrf_token(client, "/admin/login")
    response = client.post("/admin/login", data={"username": "admin", "password": "correct horse", "remember": "y",
                                                  "csrf_token": token})
    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in (app.config["SESSION_COOKIE_NAME"], "remember_token"):
        assert name in cookies, f"no {name} cookie set at login: {list(cookies)}"
        assert {"httponly", "samesite=lax"} <= flags(cookies[name]), cookies[name]
        assert "secure" not in flags(cookies[name])  # SITE_URL is http: a Secure cookie would never come back


def test_the_session_cookie_of_a_reader_is_httponly_and_samesite_lax(app, client, ctx):
    """The session a reader gets for a held comment (no login) carries the same flags."""
    post_id, _ = make_post()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form())
    assert response.status_code == 303
    cookie = set_cookies(response)[app.config["SESSION_COOKIE_NAME"]]
    assert {"httponly", "samesite=lax"} <= flags(cookie)


@pytest.mark.parametrize("config_overrides", [{"SITE_URL": "https://blog.test"}])
def test_with_an_https_site_url_the_cookies_are_secure(app, client, auth):
    auth.create()
    token = csrf_token(client, "/admin/login")
    first = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert first is not None and first.secure and first.http_only
    response = client.post("/admin/login", data={"username": "admin", "password": "correct horse", "remember": "y",
                                                  "csrf_token": token})
    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in (app.config["SESSION_COOKIE_NAME"], "remember_token"):
        assert {"secure", "httponly", "samesite=lax"} <= flags(cookies[name]), cookies[name]


# ---------------------------------------------------------------- an admin's comment


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Referer": "https://evil.example/a-page-with-a-form.html"},
    {"Origin": "null"},
    {"Origin": "http://blog.test.evil.example"},
    {},  # neither Origin nor Referer
], ids=["foreign-origin", "foreign-referer", "null-origin", "lookalike-origin", "no-origin"])
def test_a_cross_site_post_with_the_admins_cookie_is_refused_and_records_nothing(app, admin_client, ctx, headers):
    post_id, _ = make_post()
    forged = comment_form(author_name="Admin", content="Buy cheap pills at spam.example")
    response = admin_client.post(f"/posts/{post_id}/comments", data=forged, headers=headers)
    assert response.status_code == 400
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert "the form was sent from another site" in page.select_one(".form-error").get_text()
    assert page.select_one("textarea[name=content]").get_text().lstrip("\r\n") == "Buy cheap pills at spam.example"  # kept
    assert comments(app) == []


def test_a_wrong_token_from_another_site_is_refused(app, admin_client, ctx):
    post_id, _ = make_post()
    token = csrf_token(admin_client, "/admin/")
    response = admin_client.post(f"/posts/{post_id}/comments", data=comment_form(csrf_token="x" + token[1:]),
                                 headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    assert comments(app) == []


def test_an_admins_comment_with_the_token_is_recorded_as_theirs(app, admin_client, ctx):
    post_id, _ = make_post()
    token = csrf_token(admin_client, "/admin/")
    response = admin_client.post(f"/posts/{post_id}/comments", data=comment_form(author_name="Admin", csrf_token=token))
    assert response.status_code == 303
    [comment] = comments(app)
    assert comment.user_id == admin_id(app) and comment.author_name == "Admin"
    assert comment.status == CommentStatus.APPROVED.value


@pytest.mark.parametrize("config_overrides", [{"SITE_ALIASES": ["https://old.example"]}])
@pytest.mark.parametrize("headers", [
    {"Origin": "http://blog.test"},
    {"Origin": "https://old.example"},
    {"Referer": "http://blog.test/2026/01/01/a-post/"},
], ids=["site-origin", "alias-origin", "site-referer"])
def test_an_admins_comment_from_our_own_pages_is_recorded_as_theirs(app, admin_client, ctx, headers):
    post_id, _ = make_post()
    response = admin_client.post(f"/posts/{post_id}/comments", data=comment_form(), headers=headers)
    assert response.status_code == 303
    [comment] = comments(app)
    assert comment.user_id == admin_id(app) and comment.status == CommentStatus.APPROVED.value


def test_an_anonymous_comment_still_works_from_anywhere(app, client, ctx):
    post_id, _ = make_post()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(content="From a reader"),
                           headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 303
    [comment] = comments(app)
    assert comment.user_id is None and comment.content == "From a reader"
    assert comment.status == CommentStatus.PENDING.value


# ---------------------------------------------------------------- size


class BodyNeverRead(io.BytesIO):
    """A request body that says 5 MB (a few bytes are there) and counts what the app reads of it."""

    def __init__(self):
        super().__init__(b"content=" + b"x" * 100)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.bytes_read += n
        return n


def post_5mb(client, path: str):
    body = BodyNeverRead()
    response = client.post(path, input_stream=body, content_type="application/x-www-form-urlencoded",
                           environ_overrides={"CONTENT_LENGTH": str(5 * MB)})  # what the sender announces
    return response, body


def assert_short_413(response):
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    page = BeautifulSoup(text, "html.parser")
    assert page.select_one(".error-code").get_text() == "413"
    assert "larger than this site accepts" in text
    assert len(text) < 50_000


@pytest.mark.parametrize("path", ["/posts/{post}/comments", "/admin/login", "/admin/settings", "/admin/tools/import", "/"])
def test_a_5mb_anonymous_post_anywhere_gets_413_unread(app, client, ctx, path):
    post_id, _ = make_post()
    response, body = post_5mb(client, path.format(post=post_id))
    assert_short_413(response)
    assert body.bytes_read == 0
    assert comments(app) == []


def test_a_5mb_pingback_or_webmention_gets_its_protocols_refusal_unread(app, client, ctx):
    """The linkback endpoints read at most LINKBACK_BODY_LIMIT and answer in their own protocol."""
    make_post()
    response, body = post_5mb(client, "/xmlrpc")
    assert response.status_code == 200
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(response.get_data())
    assert fault.value.faultCode == -32600

    assert body.bytes_read == 0
    response, body = post_5mb(client, "/webmention")
    assert response.status_code == 400
    assert body.bytes_read == 0
    assert comments(app) == []


@pytest.mark.parametrize("path", ["/posts/{post}/comments", "/admin/settings", "/admin/posts/new"])
def test_a_5mb_post_by_an_admin_gets_413_unread(app, admin_client, ctx, path):
    post_id, _ = make_post()
    response, body = post_5mb(admin_client, path.format(post=post_id))
    assert_short_413(response)
    assert body.bytes_read == 0
    assert comments(app) == []
    assert admin_client.get("/admin/").status_code == 200  # still logged in: nothing else went wrong


@pytest.mark.parametrize("path", ["/posts/{post}/comments", "/admin/login"])
def test_the_413_comes_at_once_over_http_without_the_body(app, live_server, ctx, path):
    """Over a real socket: 5 MB announced, 20 bytes sent; the answer comes without waiting for the rest."""
    post_id, _ = make_post()
    target = path.format(post=post_id)
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall((f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      f"Content-Length: {5 * MB}\r\n\r\ncontent=xxxxxxxxxxxx").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)  # a server waiting for the body would time out here
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 4
    assert comments(app) == []


@pytest.mark.parametrize("config_overrides", [{"MAX_CONTENT_LENGTH": 2048}])
def test_a_comment_under_the_cap_is_taken_and_one_over_it_is_not(app, client, ctx):
    post_id, _ = make_post()
    assert client.post(f"/posts/{post_id}/comments", data=comment_form(content="y" * 1000)).status_code == 303
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(content="y" * 3000))
    assert_short_413(response)
    assert len(comments(app)) == 1


@pytest.mark.parametrize("config_overrides", [{"MAX_CONTENT_LENGTH": 2048}])
def test_an_admins_wxr_upload_may_exceed_the_global_cap(app, admin_client):
    assert WXR_FIXTURE.stat().st_size > 2048
    token = csrf_token(admin_client, "/admin/tools")
    response = admin_client.post("/admin/tools/import", content_type="multipart/form-data", data={
        "default_author": "", "dry_run": "y", "csrf_token": token,
        "file": (io.BytesIO(WXR_FIXTURE.read_bytes()), "export.xml")})
    assert response.status_code == 303
    assert re.fullmatch(r"/admin/tools/import/\d+", response.headers["Location"].removeprefix("http://localhost"))


def test_a_comment_over_its_limits_gets_400_echoing_no_more_than_the_limits(app, client, ctx):
    post_id, _ = make_post()
    typed = comment_form(content="q" * 200_000, author_name="n" * 5000, author_url="https://" + "u" * 5000 + ".example/",
                         author_email="e" * 5000 + "@example.org", parent_id="9" * 5000)
    response = client.post(f"/posts/{post_id}/comments", data=typed)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    page = BeautifulSoup(text, "html.parser")
    assert page.select_one("textarea[name=content]").get_text().lstrip("\r\n") == "q" * 10_000  # the limit's worth, no more
    assert "q" * 10_001 not in text
    assert page.select_one("input[name=author_name]")["value"] == "n" * 245
    assert "n" * 246 not in text and "u" * 2001 not in text and "e" * 255 not in text and "9" * 21 not in text
    assert "Comments are limited to 10,000 characters." in page.select_one(".field-content .field-error").get_text()
    assert len(text) < 60_000
    assert comments(app) == []


def test_a_comment_at_its_limit_is_taken_whole(app, client, ctx):
    post_id, _ = make_post()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(content="q" * 10_000))
    assert response.status_code == 303
    assert comments(app)[0].content == "q" * 10_000


def test_an_admins_comment_from_the_post_page_carries_the_token(app, admin_client, ctx):
    """No Origin or Referer at all (a privacy extension strips them): the page's own token vouches."""
    post_id, path = make_post()
    page = admin_client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "the comment form of a logged-in admin has no token"
    response = admin_client.post(f"/posts/{post_id}/comments", data={
        "author_name": "Admin", "author_email": "admin@example.org", "content": "From the page itself.",
        "parent_id": "", "csrf_token": token.group(1)})
    assert response.status_code == 303
    assert [c.content for c in comments(app)] == ["From the page itself."]


def test_an_unknown_username_costs_a_password_check_too(app, client, auth, monkeypatch):
    """Login timing must not tell names apart: an unknown name's password is checked against a hash
    made as account hashes are (werkzeug's check, spied on and called through)."""
    from blogapp.admin import routes
    from werkzeug import security

    checked = []

    def spy(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])
        return security.check_password_hash(pwhash, password)

    monkeypatch.setattr(routes, "check_password_hash", spy)
    token = csrf_token(client, "/admin/login")
    response = client.post("/admin/login", data={"username": "nobody-here", "password": "a guess", "csrf_token": token})
    assert response.status_code == 401
    # The method and cost of werkzeug's default, as create-admin uses: "scrypt:32768:8:1".
    assert checked == [security.generate_password_hash("x").split("$", 1)[0]]
