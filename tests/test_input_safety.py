"""Input no form or protocol may take (issue 11, section 3): NUL characters, ids too big for a
column, XML-RPC bodies in charsets Python cannot read, introspection given the wrong types, and
linkback URLs over 2,000 characters.

Each case asserts the exact answer (a form's 400 with what was typed kept, an XML-RPC fault
code, a TrackBack error, a Webmention 400), that the database is exactly as it was, and that
nothing was logged as an error (no traceback). The NUL cases matter on PostgreSQL, whose text
cannot hold ``\\x00``; they run on both databases.
"""
from __future__ import annotations

import http.client
import logging
import xmlrpc.client
from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp.models import Comment, User
from blogapp.validation import NUL_MESSAGE
from conftest import SITE_URL, csrf_token
from helpers import add_comment, database, make_post

SITE = "http://blog.test"
FORM = "application/x-www-form-urlencoded"
LONG = "http://127.0.0.1:9/" + "a" * 2000  # 2,019 characters


@pytest.fixture
def config_overrides():
    return {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
            "LINKBACK_VERIFY_BUDGET": 5.0}


@pytest.fixture
def post(app, ctx):
    """A published post open to comments and pings: (id, path, permalink, an approved comment's id)."""
    post_id, path = make_post(title="Target post", days_ago=3)
    comment_id = add_comment(post_id, "A first comment")
    return post_id, path, SITE + path, comment_id


@pytest.fixture
def unchanged(post, caplog):
    """After the test: the database exactly as before it, and no error (no traceback) logged."""
    caplog.set_level(logging.INFO)
    before = database()
    yield
    assert database() == before
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


def field_value(html: str, name: str) -> str:
    element = BeautifulSoup(html, "lxml").find(attrs={"name": name})
    assert element is not None, f"no field {name}"
    return element.get_text().removeprefix("\n") if element.name == "textarea" else element.get("value", "")


def field_errors(html: str) -> list[str]:
    soup = BeautifulSoup(html, "lxml")
    return [e.get_text(" ", strip=True) for e in soup.select(".field-error, .error, .errors li, [id$='-error']")]


# --------------------------------------------------------------------------- NUL in admin forms


@pytest.fixture
def admin_user(auth, post):
    auth.create()


@pytest.mark.parametrize("field", ["username", "password"])
def test_nul_in_login_is_the_forms_error(admin_user, client, unchanged, field):
    data = {"username": "admin", "password": "correct horse", "csrf_token": csrf_token(client, "/admin/login")}
    data[field] = data[field][:2] + "\x00" + data[field][2:]
    response = client.post("/admin/login", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert NUL_MESSAGE in html
    assert field_value(html, "username") == "admin"  # kept, minus the NUL
    assert client.get("/admin/").status_code == 302  # not logged in


POST_FORM = {"title": "A title", "slug": "", "body": "Some body", "excerpt": "", "categories": "", "tags": "one, two",
             "status": "published"}


@pytest.mark.parametrize("field", ["title", "slug", "body", "excerpt", "categories", "tags"])
def test_nul_in_a_new_post_is_the_forms_error(admin_client, unchanged, field):
    data = {**POST_FORM, "csrf_token": csrf_token(admin_client, "/admin/posts/new")}
    data[field] = "x\x00y"
    response = admin_client.post("/admin/posts/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert NUL_MESSAGE in html
    assert field_value(html, field) == "xy"


def test_nul_in_an_edited_post_is_the_forms_error(admin_client, post, unchanged):
    url = f"/admin/posts/{post[0]}/edit"
    data = {**POST_FORM, "title": "New\x00 title", "csrf_token": csrf_token(admin_client, url)}
    response = admin_client.post(url, data=data)
    assert response.status_code == 400
    assert field_value(response.get_data(as_text=True), "title") == "New title"


@pytest.mark.parametrize("field", ["title", "slug", "body"])
def test_nul_in_a_page_is_the_forms_error(admin_client, unchanged, field):
    data = {"title": "About", "slug": "", "body": "Text", "menu_order": "0", "status": "published",
            "csrf_token": csrf_token(admin_client, "/admin/pages/new")}
    data[field] = "ab\x00out"
    response = admin_client.post("/admin/pages/new", data=data)
    assert response.status_code == 400
    assert NUL_MESSAGE in response.get_data(as_text=True)
    assert field_value(response.get_data(as_text=True), field) == "about"


@pytest.mark.parametrize("field", ["SITE_TITLE", "SITE_DESCRIPTION", "POSTS_PER_PAGE"])
def test_nul_in_settings_is_the_forms_error(admin_client, unchanged, field):
    data = {"SITE_TITLE": "My blog", "SITE_DESCRIPTION": "Words", "POSTS_PER_PAGE": "10",
            "COMMENT_MODERATION": "hold", "COMMENT_THREAD_DEPTH": "5", "CLOSE_COMMENTS_AFTER_DAYS": "0",
            "csrf_token": csrf_token(admin_client, "/admin/settings")}
    data[field] = data[field][:1] + "\x00" + data[field][1:]
    response = admin_client.post("/admin/settings", data=data)
    assert response.status_code == 400
    assert NUL_MESSAGE in response.get_data(as_text=True)


@pytest.mark.parametrize("field", ["author_name", "author_email", "author_url", "content"])
def test_nul_in_a_moderated_comment_is_the_forms_error(admin_client, post, unchanged, field):
    url = f"/admin/comments/{post[3]}/edit"
    data = {"author_name": "Visitor", "author_email": "v@example.org", "author_url": "https://v.example/",
            "content": "Edited", "status": "approved", "csrf_token": csrf_token(admin_client, url)}
    data[field] = data[field][:3] + "\x00" + data[field][3:]
    response = admin_client.post(url, data=data)
    assert response.status_code == 400
    assert NUL_MESSAGE in response.get_data(as_text=True)


def test_nul_in_a_reply_is_the_forms_error(admin_client, post, unchanged):
    url = f"/admin/comments/{post[3]}/reply"
    response = admin_client.post(url, data={"content": "Thanks\x00!", "csrf_token": csrf_token(admin_client, url)})
    assert response.status_code == 400
    assert field_value(response.get_data(as_text=True), "content") == "Thanks!"


def test_nul_in_a_blocked_domain_blocks_nothing(admin_client, unchanged):
    token = csrf_token(admin_client, "/admin/linkbacks")
    response = admin_client.post("/admin/linkbacks/block", data={"domain": "spam\x00.example", "csrf_token": token})
    assert response.status_code == 302  # as for any refused domain: back to the list, the error flashed
    assert NUL_MESSAGE in admin_client.get("/admin/linkbacks").get_data(as_text=True)


# --------------------------------------------------------------------------- the comment form

COMMENT = {"author_name": "Ann", "author_email": "ann@example.org", "author_url": "https://ann.example/",
           "content": "My comment text", "parent_id": ""}


@pytest.mark.parametrize("field", ["author_name", "author_email", "author_url", "content", "parent_id"])
def test_nul_in_the_comment_form_is_the_forms_error(client, post, unchanged, field):
    data = dict(COMMENT)
    data[field] = data[field][:2] + "\x00" + data[field][2:]
    response = client.post(f"/posts/{post[0]}/comments", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_value(html, "content") == COMMENT["content"].replace("\x00", "")


@pytest.mark.parametrize("parent_id", ["99999999999999999999", "-1", str(2**31), "abc"])
def test_a_parent_id_that_is_no_id_is_the_forms_error(client, post, unchanged, parent_id):
    response = client.post(f"/posts/{post[0]}/comments", data={**COMMENT, "parent_id": parent_id})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_value(html, "content") == COMMENT["content"]
    assert "your text is kept below" in html


# --------------------------------------------------------------------------- Webmention


@pytest.mark.parametrize("source,target,message", [
    ("http://127.0.0.1:9/a\x00b", None, "The source contains a NUL character (%00)."),
    ("http://127.0.0.1:9/page", "\x00", "The target contains a NUL character (%00)."),
    (LONG, None, "The source is longer than 2,000 characters."),
    ("http://127.0.0.1:9/page", SITE + "/" + "t" * 2000, "The target is longer than 2,000 characters."),
])
def test_webmention_refuses_nul_and_long_urls(client, post, unchanged, source, target, message):
    body = urlencode({"source": source, "target": target if target is not None else post[2]})
    response = client.post("/webmention", data=body, content_type=FORM)
    assert response.status_code == 400
    assert response.get_data(as_text=True) == message + "\n"


def test_webmention_status_token_with_nul_is_not_found(client, unchanged):
    assert client.get("/webmention/ab%00cd").status_code == 404


# --------------------------------------------------------------------------- trackback


@pytest.mark.parametrize("field", ["url", "title", "excerpt", "blog_name"])
def test_trackback_refuses_nul_in_any_field(client, post, unchanged, field):
    data = {"url": "http://127.0.0.1:9/page", "title": "T", "excerpt": "E", "blog_name": "B"}
    data[field] += "\x00"
    response = client.post(post[1] + "trackback/", data=urlencode(data), content_type=FORM)
    assert response.status_code == 200
    root = BeautifulSoup(response.get_data(as_text=True), "xml")
    assert root.find("error").get_text() == "1"
    assert root.find("message").get_text() == f"The {field} field contains a NUL character (%00)."


def test_trackback_to_a_slug_with_nul_is_no_post(client, post, unchanged):
    path = post[1].rstrip("/") + "%00/trackback/"
    response = client.post(path, data="url=http%3A%2F%2F127.0.0.1%3A9%2Fpage", content_type=FORM)
    root = BeautifulSoup(response.get_data(as_text=True), "xml")
    assert (root.find("error").get_text(), root.find("message").get_text()) == ("1", "There is no post at this address.")


def test_trackback_refuses_a_long_url(client, post, unchanged):
    response = client.post(post[1] + "trackback/", data=urlencode({"url": LONG}), content_type=FORM)
    root = BeautifulSoup(response.get_data(as_text=True), "xml")
    assert (root.find("error").get_text(), root.find("message").get_text()) == (
        "1", "The source URI is longer than 2,000 characters.")


# --------------------------------------------------------------------------- XML-RPC


def raw_call(server, body: bytes):
    """POST ``body`` to /xmlrpc: the decoded answer, or the Fault (always HTTP 200, text/xml)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/xmlrpc", body=body, headers={"Content-Type": "text/xml"})
        response = connection.getresponse()
        status, content_type, data = response.status, response.headers["Content-Type"], response.read()
    finally:
        connection.close()
    assert status == 200 and content_type.startswith("text/xml"), (status, data[:300])
    try:
        return xmlrpc.client.loads(data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def call(server, method, *params):
    return raw_call(server, xmlrpc.client.dumps(params, method).encode("utf-8"))


@pytest.mark.parametrize("encoding", ["x-bogus", "rot13", "base64", "zlib", "hex", "bz2", "utf-7", "idna", "punycode"])
def test_xmlrpc_body_in_an_unusable_encoding_is_a_parse_error(live_server, post, unchanged, encoding):
    body = (f'<?xml version="1.0" encoding="{encoding}"?><methodCall><methodName>pingback.ping</methodName>'
            f"<params><param><value><string>http://127.0.0.1:9/</string></value></param>"
            f"<param><value><string>{post[2]}</string></value></param></params></methodCall>").encode("ascii")
    answer = raw_call(live_server, body)
    assert isinstance(answer, xmlrpc.client.Fault) and answer.faultCode == -32700


@pytest.mark.parametrize("method", ["system.methodHelp", "system.methodSignature"])
@pytest.mark.parametrize("param", [["pingback.ping"], {"name": "pingback.ping"}, 42])
def test_introspection_given_no_string_is_invalid_params(live_server, post, unchanged, method, param):
    answer = call(live_server, method, param)
    assert isinstance(answer, xmlrpc.client.Fault) and answer.faultCode == -32602


def test_introspection_still_answers_a_string(live_server, post, unchanged):
    assert call(live_server, "system.methodSignature", "pingback.ping") == [["string", "string", "string"]]
    assert "sourceURI" in call(live_server, "system.methodHelp", "pingback.ping")


def test_pingback_with_nul_cannot_be_xml_so_is_a_parse_error(live_server, post, unchanged):
    # XML 1.0 cannot carry U+0000, raw or as &#0;: the call is not well-formed.
    assert call(live_server, "pingback.ping", "http://127.0.0.1:9/a\x00b", post[2]).faultCode == -32700
    body = xmlrpc.client.dumps(("http://127.0.0.1:9/aXb", post[2]), "pingback.ping").replace("aXb", "a&#0;b")
    assert raw_call(live_server, body.encode("utf-8")).faultCode == -32700


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("which", ["source", "target"])
def test_pingback_with_a_long_url_is_invalid_params(app, live_server, post, unchanged, mask, which):
    app.config["PINGBACK_MASK_FAULTS"] = mask
    source, target = ("http://127.0.0.1:9/page", post[2])
    if which == "source":
        source = LONG
    else:
        target = post[2] + "?" + "x" * 2000
    answer = call(live_server, "pingback.ping", source, target)
    assert (answer.faultCode, answer.faultString) == (-32602, f"The {which} URI is longer than 2,000 characters.")


def test_get_pingbacks_of_a_long_url_is_invalid_params(live_server, post, unchanged):
    answer = call(live_server, "pingback.extensions.getPingbacks", post[2] + "?" + "x" * 2000)
    assert (answer.faultCode, answer.faultString) == (-32602, "The url is longer than 2,000 characters.")


@pytest.mark.parametrize("url, status", [
    ("/2026/11/30/a%00b/", 404), ("/a%00b/", 404), ("/category/a%00b/", 404), ("/tag/a%00b/", 404),
    ("/2026/11/30/a%00b/feed/", 404), ("/webmention/a%00b", 404), ("/archives/%00/", 404),
    ("/?p=1%00", 400), ("/admin/login?next=%00", 400), ("/page/2/?after=%00", 400),
])
def test_a_nul_in_the_address_is_no_page_of_ours(client, post, unchanged, url, status):
    assert client.get(url).status_code == status


def test_a_nul_in_an_admin_filter_is_refused(admin_client, unchanged):
    assert admin_client.get("/admin/comments?status=%00").status_code == 400
    assert admin_client.get("/admin/posts?status=pub%00lished").status_code == 400


def test_a_trackback_to_a_permalink_with_a_wrong_date_is_refused(client, post, unchanged):
    right = post[1]
    parts = right.strip("/").split("/")
    wrong_day = "01" if parts[2] != "01" else "02"
    wrong = "/" + "/".join([parts[0], parts[1], wrong_day, parts[3]]) + "/trackback/"
    response = client.post(wrong, data="url=http%3A%2F%2F127.0.0.1%3A9%2Fpage", content_type=FORM)
    root = BeautifulSoup(response.get_data(as_text=True), "xml")
    assert root.find("error").get_text() == "1"
    assert root.find("message").get_text() == (
        f"There is no post at this address; this post's trackback address is {SITE_URL}{right}trackback/")
