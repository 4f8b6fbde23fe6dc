"""Notifications by email (blogapp/notify/), received by a real SMTP server on 127.0.0.1 (aiosmtpd).

The admin is mailed each comment or linkback held (and, if asked, each published), with links that
open a confirmation page; a commenter who asked is mailed each approved reply, with a one-click
unsubscribe; a mail server that is down delays the mail, never the request, and loses nothing.
"""
from __future__ import annotations

import logging
import re
import socket
import time
import xmlrpc.client
from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from bs4 import BeautifulSoup
from flask import g
from sqlalchemy import select

from blogapp import create_app, jobs
from blogapp.extensions import db
from blogapp.models import Comment, JobRecord, save_site_settings
from blogapp.notify import tokens
from blogapp.settings_check import SettingsError
from conftest import SITE_URL, csrf_token
from helpers import add_comment, make_post, wait_for

pytestmark = pytest.mark.usefixtures("no_server_errors")

ADMIN = "owner@example.org"


class Inbox:
    """An aiosmtpd handler keeping what it received: the envelopes and the parsed messages."""

    def __init__(self):
        self.envelopes: list[tuple[str, list[str]]] = []
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def smtp_server(inbox: Inbox, port: int) -> Controller:
    # server_hostname: aiosmtpd would otherwise ask for this machine's name (a DNS lookup).
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mail.test")
    controller.start()
    return controller


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def config_overrides(smtp_port, pg_schema):
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port, "NOTIFY_EMAIL": ADMIN,
            "COMMENT_MODERATION": "hold-all", "JOBS_BACKOFF_BASE": 0.3, "LINKBACK_MODERATION": "hold",
            "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_VERIFY_BUDGET": 5.0, "LINKBACK_VERIFY_BURST": 1.0}


@pytest.fixture
def inbox(smtp_port):
    box = Inbox()
    controller = smtp_server(box, smtp_port)
    yield box
    controller.stop()


def settings(**values) -> None:
    save_site_settings(values)
    db.session.commit()


def fresh() -> None:
    """The test's app context is its requests' (``ctx``): forget what a request kept in ``g`` (the
    settings, the logged-in user), as a real request never sees another's."""
    g.pop("site_settings", None)
    g.pop("_login_user", None)


def comment(client, post_id, **fields):
    """Post the comment form as a visitor; the new comment."""
    fresh()
    data = {"author_name": "Ann Reader", "author_email": "ann@example.org", "author_url": "https://ann.test/",
            "content": "A thoughtful remark.", "parent_id": "", "homepage": "", **fields}
    response = client.post(f"/posts/{post_id}/comments", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    return db.session.scalars(select(Comment).order_by(Comment.id.desc())).first()


def settle(app) -> None:
    assert jobs.wait_idle(10, app)
    db.session.expire_all()


def notify_jobs() -> list[JobRecord]:
    db.session.expire_all()
    return list(db.session.scalars(select(JobRecord).where(JobRecord.name.like("notify.%")).order_by(JobRecord.id)))


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


def link(message, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}\s*(\S+)\r?$", body(message), re.MULTILINE)
    assert match, f"no {label!r} link in:\n{body(message)}"
    return match.group(1)


def path_of(url: str) -> str:
    assert url.startswith(SITE_URL + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def assert_proper_headers(message, to: str) -> None:
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert message[name], f"no {name} header"
        assert "\n" not in str(message[name]) and "\r" not in str(message[name])
    assert to in message["To"]
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"


# ------------------------------------------------------------------ the admin's mail


@pytest.mark.parametrize("action, status", [("approve", "approved"), ("spam", "spam"), ("trash", "trash")])
def test_held_comment_mails_the_admin_and_its_links_confirm_before_acting(app, client, ctx, auth, inbox, action, status):
    post_id, path = make_post(title="Seasons of Practice")
    held = comment(client, post_id, content="Held words, with ünïcode.")
    assert held.status == "pending"
    settle(app)
    assert len(inbox.messages) == 1 and inbox.envelopes[0][1] == [ADMIN]
    message = inbox.messages[0]
    assert_proper_headers(message, ADMIN)
    assert message["Subject"] == '[A SMART PRACTICE] Please moderate: "Seasons of Practice"'
    assert "ann@example.org" in message["Reply-To"]
    text = body(message)
    for expected in ("Seasons of Practice", SITE_URL + path, "Author: Ann Reader", "Email: ann@example.org",
                     "URL: https://ann.test/", "Held words, with ünïcode."):
        assert expected in text
    url = link(message, {"approve": "Approve it:", "spam": "Spam it:", "trash": "Trash it:"}[action])
    assert path_of(url) == f"/admin/notify/comments/{held.id}/{action}"

    # Not logged in: to the login, and back.
    anonymous = client.get(path_of(url))
    assert anonymous.status_code == 302
    login = urlsplit(anonymous.headers["Location"])
    assert login.path == "/admin/login" and path_of(url) in parse_qs(login.query)["next"][0]
    auth.create()
    token = csrf_token(client, "/admin/login")
    back = client.post(anonymous.headers["Location"], data={"username": "admin", "password": "correct horse",
                                                            "csrf_token": token})
    assert urlsplit(back.headers["Location"]).path == path_of(url)

    # A GET shows the comment and a button, and changes nothing.
    page = client.get(path_of(url))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Held words" in html and 'method="post"' in html and 'name="csrf_token"' in html
    db.session.expire_all()
    assert db.session.get(Comment, held.id).status == "pending"
    # A POST without the token changes nothing either; with it, the action is done.
    assert client.post(path_of(url)).status_code == 400
    db.session.expire_all()
    assert db.session.get(Comment, held.id).status == "pending"
    done = client.post(path_of(url), data={"csrf_token": csrf_token(client, path_of(url))})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Comment, held.id).status == status


def test_published_comment_mails_the_admin_only_when_asked(app, client, ctx, inbox):
    post_id, path = make_post(title="Open thread")
    settings(COMMENT_MODERATION="approve")
    assert comment(client, post_id, content="First, unannounced.").status == "approved"
    settle(app)
    assert inbox.messages == [] and notify_jobs() == []

    settings(NOTIFY_PUBLISHED=True)
    published = comment(client, post_id, content="Second, announced.")
    settle(app)
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert_proper_headers(message, ADMIN)
    assert message["Subject"] == '[A SMART PRACTICE] Comment: "Open thread"'
    assert "Second, announced." in body(message) and "Approve it:" not in body(message)
    assert path_of(link(message, "Trash it:")) == f"/admin/notify/comments/{published.id}/trash"
    assert path_of(link(message, "Spam it:")) == f"/admin/notify/comments/{published.id}/spam"


@pytest.mark.parametrize("missing", ["NOTIFY_EMAIL", "MAIL_SERVER"])
def test_without_an_address_or_a_server_nothing_is_sent_nor_queued(app, client, ctx, inbox, missing):
    if missing == "NOTIFY_EMAIL":
        settings(NOTIFY_EMAIL="")
    else:
        app.config["MAIL_SERVER"] = None
    post_id, _ = make_post()
    settings(COMMENT_MODERATION="approve", NOTIFY_PUBLISHED=True)
    parent = comment(client, post_id, notify_replies="y")
    reply = comment(client, post_id, author_name="Bob", author_email="bob@example.org", parent_id=str(parent.id))
    settings(COMMENT_MODERATION="hold-all")
    comment(client, post_id, content="held")
    settle(app)
    assert reply.status == "approved"
    jobs_left = notify_jobs()
    if missing == "NOTIFY_EMAIL":  # the commenter is still told of the reply; the admin of nothing
        assert [job.name for job in jobs_left] == ["notify.reply"]
        assert [m["To"] for m in inbox.messages] == ["Ann Reader <ann@example.org>"]
    else:
        assert jobs_left == [] and inbox.messages == []


def test_the_admin_is_not_mailed_about_their_own_comment(app, ctx, admin_client, inbox):
    post_id, path = make_post()
    settings(NOTIFY_PUBLISHED=True)
    g.pop("site_settings", None)
    response = admin_client.post(f"/posts/{post_id}/comments", headers={"Origin": SITE_URL}, data={
        "author_name": "Admin", "author_email": ADMIN, "content": "My own.", "parent_id": "", "homepage": ""})
    assert response.status_code == 303
    settle(app)
    assert db.session.scalar(select(Comment.status)) == "approved"
    assert inbox.messages == [] and notify_jobs() == []


# ------------------------------------------------------------------ replies


def test_a_reply_published_at_once_mails_the_commenter_who_asked(app, client, ctx, inbox):
    post_id, path = make_post(title="Threads")
    settings(COMMENT_MODERATION="approve", NOTIFY_EMAIL="")
    parent = comment(client, post_id, content="Does this work?", notify_replies="y")
    quiet = comment(client, post_id, author_name="Cy", author_email="cy@example.org", content="Not subscribed.")
    assert parent.notify_replies and not quiet.notify_replies
    reply = comment(client, post_id, author_name="Bob Writer", author_email="bob@example.org",
                    content="It does, Ann.", parent_id=str(parent.id))
    comment(client, post_id, author_name="Ann again", content="Thanks! (my own reply)", parent_id=str(parent.id))
    comment(client, post_id, author_name="Bob", author_email="bob@example.org", content="To Cy.", parent_id=str(quiet.id))
    settle(app)

    assert len(inbox.messages) == 1, [m["Subject"] for m in inbox.messages]
    message = inbox.messages[0]
    assert inbox.envelopes[0][1] == ["ann@example.org"]
    assert_proper_headers(message, "ann@example.org")
    assert message["Subject"] == '[A SMART PRACTICE] Bob Writer replied to your comment on "Threads"'
    text = body(message)
    assert "It does, Ann." in text and "> Does this work?" in text
    assert SITE_URL + path + f"#comment-{reply.id}" in text
    unsubscribe = link(message, "To get no more mails about replies to this comment (this comment only), open:")
    assert path_of(unsubscribe).startswith("/notify/unsubscribe/")
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_reply_approved_later_by_the_admin_mails_the_commenter_once(app, ctx, admin_client, inbox):
    client = app.test_client()  # a visitor (admin_client is the fixture's client, logged in)
    post_id, _ = make_post(title="Moderated")
    parent = comment(client, post_id, content="Question?", notify_replies="y")
    fresh()
    token = csrf_token(admin_client, "/admin/comments")
    admin_client.post(f"/admin/comments/{parent.id}/approve", data={"csrf_token": token})  # the list's button
    reply = comment(client, post_id, author_name="Bob", author_email="bob@example.org", content="Answer.",
                    parent_id=str(parent.id))
    assert reply.status == "pending"
    settle(app)
    assert inbox.to("ann@example.org") == []  # held: not yet
    assert len(inbox.to(ADMIN)) == 2  # the admin heard of both, held

    fresh()
    admin_client.post("/admin/comments/bulk", data={"csrf_token": token, "action": "approve", "ids": [str(reply.id)]})
    settle(app)
    assert [body(m).count("Answer.") for m in inbox.to("ann@example.org")] == [1]
    # Unapproved and approved again (the edit form): not mailed twice.
    admin_client.post(f"/admin/comments/{reply.id}/unapprove", data={"csrf_token": token})
    edit = admin_client.post(f"/admin/comments/{reply.id}/edit", data={
        "csrf_token": token, "author_name": "Bob", "author_email": "bob@example.org", "author_url": "",
        "content": "Answer.", "status": "approved"})
    assert edit.status_code == 302
    settle(app)
    assert db.session.get(Comment, reply.id).status == "approved"
    assert len(inbox.to("ann@example.org")) == 1


def test_an_admins_reply_from_the_dashboard_mails_the_commenter(app, ctx, admin_client, inbox):
    post_id, _ = make_post(title="Asked")
    parent_id = add_comment(post_id, "Is anyone there?", name="Ann Reader", email="ann@example.org")
    db.session.get(Comment, parent_id).notify_replies = True
    db.session.commit()
    fresh()
    token = csrf_token(admin_client, f"/admin/comments/{parent_id}/reply")
    assert admin_client.post(f"/admin/comments/{parent_id}/reply",
                             data={"csrf_token": token, "content": "Yes, here."}).status_code == 302
    settle(app)
    [message] = inbox.to("ann@example.org")
    assert "Yes, here." in body(message) and "replied to your comment" in message["Subject"]


def _reply_mail(app, client, inbox, post_id, parent_id, text):
    before = len(inbox.messages)
    comment(client, post_id, author_name="Bob", author_email="bob@example.org", content=text, parent_id=str(parent_id))
    settle(app)
    return inbox.messages[before:]


def test_unsubscribe_confirms_on_get_and_stops_on_post(app, client, ctx, inbox):
    post_id, _ = make_post()
    settings(COMMENT_MODERATION="approve", NOTIFY_EMAIL="")
    parent = comment(client, post_id, notify_replies="y")
    [message] = _reply_mail(app, client, inbox, post_id, parent.id, "One.")
    url = path_of(link(message, "To get no more mails about replies to this comment (this comment only), open:"))

    page = client.get(url)  # a mail client's prefetch, or the person: a button, nothing done
    assert page.status_code == 200 and "Unsubscribe" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Comment, parent.id).notify_replies
    assert len(_reply_mail(app, client, inbox, post_id, parent.id, "Two.")) == 1

    done = client.post(url)  # the button (no session, no CSRF token: the signed link is the proof)
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(Comment, parent.id).notify_replies
    assert _reply_mail(app, client, inbox, post_id, parent.id, "Three.") == []


def test_one_click_unsubscribe_and_bad_tokens(app, client, ctx, inbox, monkeypatch):
    post_id, _ = make_post()
    settings(COMMENT_MODERATION="approve", NOTIFY_EMAIL="")
    parent = comment(client, post_id, notify_replies="y")
    [message] = _reply_mail(app, client, inbox, post_id, parent.id, "One.")
    url = path_of(message["List-Unsubscribe"].strip("<>"))

    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    bad = client.post(tampered, data={"List-Unsubscribe": "One-Click"})
    assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
    assert client.get(tampered).status_code == 400
    monkeypatch.setattr(tokens, "MAX_AGE", -1)
    expired = client.get(url)
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    monkeypatch.undo()
    db.session.expire_all()
    assert db.session.get(Comment, parent.id).notify_replies

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, with no cookie and no CSRF token.
    one_click = app.test_client().post(url, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    db.session.expire_all()
    assert not db.session.get(Comment, parent.id).notify_replies
    assert _reply_mail(app, client, inbox, post_id, parent.id, "Two.") == []


# ------------------------------------------------------------------ the mail server away


def test_a_mail_server_down_delays_the_mail_never_the_request(app, client, ctx, smtp_port, caplog):
    caplog.set_level(logging.WARNING)
    post_id, _ = make_post(title="Patience")
    started = time.monotonic()
    held = comment(client, post_id, content="Waiting for the server.")
    assert time.monotonic() - started < 2.0 and held.status == "pending"

    retrying = wait_for(lambda: [j for j in notify_jobs() if j.status == "retrying"], timeout=10)
    assert retrying, notify_jobs()
    assert "unreachable" in retrying[0].last_error
    lines = wait_for(lambda: [r for r in caplog.records if "notify.admin" in r.getMessage()])  # (logged after the commit)
    assert lines and all("\n" not in r.getMessage() and r.exc_info is None for r in lines)

    inbox = Inbox()
    controller = smtp_server(inbox, smtp_port)
    try:
        assert wait_for(lambda: [j.status for j in notify_jobs()] == ["succeeded"], timeout=15), notify_jobs()
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and "Waiting for the server." in body(inbox.messages[0])
    assert notify_jobs()[0].attempts >= 2


# ------------------------------------------------------------------ headers and linkbacks


def test_names_and_titles_cannot_add_headers(app, client, ctx, inbox):
    post_id, _ = make_post(title="Title\r\nBcc: title@evil.example")
    settings(COMMENT_MODERATION="approve", NOTIFY_PUBLISHED=True)
    parent = comment(client, post_id, author_name="Ann\r\nBcc: parent@evil.example", notify_replies="y")
    comment(client, post_id, author_name="Eve\r\nBcc: victim@evil.example\r\n\r\nInjected body",
            author_email="eve@example.org", content="Hi.", parent_id=str(parent.id))
    settle(app)
    assert len(inbox.messages) == 3  # the admin: two published; Ann: a reply
    recipients = sorted(r for _, rcpts in inbox.envelopes for r in rcpts)
    assert recipients == ["ann@example.org", ADMIN, ADMIN]
    for message in inbox.messages:
        assert message["Bcc"] is None and message["Cc"] is None
        assert not any("evil.example" in value and name not in ("Subject", "To", "Reply-To")
                       for name, value in message.items())
        for name in ("Subject", "To", "Reply-To", "From"):
            assert "\n" not in str(message[name] or "") and "\r" not in str(message[name] or "")
    reply_mail = inbox.to("ann@example.org")[0]
    assert reply_mail["Subject"].startswith("[A SMART PRACTICE] Eve Bcc: victim@evil.example Injected body replied")


def test_a_held_linkback_mails_the_admin_with_its_source(app, ctx, live_server, source_site, inbox):
    post_id, path = make_post(title="Target post")
    target = SITE_URL + path
    source = source_site.page("/review", "<!doctype html><html><head><title>A Fair Review</title></head><body>"
                              f"<article><p>I liked <a href=\"{target}\">this post</a> a lot.</p></article></body></html>")
    with xmlrpc.client.ServerProxy(live_server.url + "/xmlrpc") as proxy:
        assert "registered" in proxy.pingback.ping(source, target)
    assert wait_for(lambda: inbox.messages, timeout=10)
    settle(app)
    [message] = inbox.messages
    assert_proper_headers(message, ADMIN)
    assert message["Subject"] == '[A SMART PRACTICE] Please moderate: "Target post"'
    text = body(message)
    assert "A new pingback on the post" in text and "Website: A Fair Review" in text and f"URL: {source}" in text
    assert "I liked" in text
    linkback = db.session.scalar(select(Comment).where(Comment.source_url == source))
    assert linkback.status == "pending"
    assert path_of(link(message, "Approve it:")) == f"/admin/notify/comments/{linkback.id}/approve"


# ------------------------------------------------------------------ settings


def test_mail_settings_are_read_and_the_password_never_shown(tmp_path):
    with pytest.raises(SettingsError) as error:
        create_app({"TESTING": True, "SECRET_KEY": "k", "MAIL_PASSWORD": ["hunter2"], "NOTIFY_EMAIL": "not an address",
                    "MAIL_DEFAULT_SENDER": "Blog\r\nBcc: x@example.org <blog@example.org>"},
                   instance_path=str(tmp_path))
    message = str(error.value.message)
    assert "hunter2" not in message and "MAIL_PASSWORD='***'" in message
    assert "NOTIFY_EMAIL=" in message and "MAIL_DEFAULT_SENDER=" in message


def test_the_settings_page_saves_the_notification_choices(app, ctx, admin_client):
    token = csrf_token(admin_client, "/admin/settings")
    page = BeautifulSoup(admin_client.get("/admin/settings").get_data(as_text=True), "html.parser")
    assert "Notifications" in page.get_text()
    assert page.select_one("input[name=NOTIFY_HELD]").has_attr("checked")  # on by default
    assert not page.select_one("input[name=NOTIFY_PUBLISHED]").has_attr("checked")
    assert page.select_one("input[name=NOTIFY_EMAIL]")["value"] == ADMIN
    from blogapp.models import load_site_settings
    form = {key: str(value) for key, value in load_site_settings(app.config).items()
            if not isinstance(value, (list, bool)) and value is not None}
    form.update(csrf_token=token, NOTIFY_EMAIL="bad address", NOTIFY_PUBLISHED="y")
    assert admin_client.post("/admin/settings", data=form).status_code == 400
    form.update(NOTIFY_EMAIL=" me@example.org ")
    assert admin_client.post("/admin/settings", data=form).status_code == 302
    db.session.expire_all()
    saved = load_site_settings(app.config)
    assert (saved["NOTIFY_EMAIL"], saved["NOTIFY_HELD"], saved["NOTIFY_PUBLISHED"]) == ("me@example.org", False, True)


def test_a_reply_whose_mail_job_another_approval_wrote_is_approved_anyway(app, ctx, admin_client, inbox, monkeypatch):
    """Two admins approving one reply at once: both find no mail job (the check), one writes it,
    the other's insert meets the unique key. That approval must stand, and the reply be mailed once."""
    from blogapp.notify import events, who

    client = app.test_client()
    post_id, _ = make_post(title="Raced")
    parent = comment(client, post_id, content="Question?", notify_replies="y")
    fresh()
    token = csrf_token(admin_client, "/admin/comments")
    admin_client.post(f"/admin/comments/{parent.id}/approve", data={"csrf_token": token})
    reply = comment(client, post_id, author_name="Bob", author_email="bob@example.org", content="Answer.",
                    parent_id=str(parent.id))
    settle(app)
    fresh()
    real_check, raced = who.reply_job_due, []

    def checked_then_beaten(reply_row):
        due = real_check(reply_row)  # the check passes...
        if due:  # ...and the other approval's job is written before ours
            jobs.prepare(who.REPLY_TASK, reply_row.id, key=who.reply_key(reply_row.id))
            raced.append(reply_row.id)
        return due

    monkeypatch.setattr(events, "reply_job_due", checked_then_beaten)
    answer = admin_client.post("/admin/comments/bulk", data={"csrf_token": token, "action": "approve",
                                                             "ids": [str(reply.id)]})
    assert answer.status_code == 302
    assert raced == [reply.id]  # the interleaving happened
    fresh()
    assert db.session.get(Comment, reply.id).status == "approved"
    assert len([j for j in notify_jobs() if j.key == who.reply_key(reply.id)]) == 1
