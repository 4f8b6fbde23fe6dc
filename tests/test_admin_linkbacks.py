"""The admin's view of linkbacks: the verification log and blocked domains."""
from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.models import BlockedDomain, CommentKind, CommentStatus, LinkbackLog
from conftest import csrf_token
from helpers import add_comment, make_post


def test_log_lists_refused_and_accepted_verifications(app, admin_client, ctx):
    post_id, _ = make_post(title="Pinged post")
    db.session.add_all([
        LinkbackLog(protocol="pingback", source_url="http://late.test/a", target_url="http://blog.test/x/",
                    post_id=post_id, outcome="refused", fault_code=17, message="The source page does not link to the target."),
        LinkbackLog(protocol="trackback", source_url="http://good.test/b", target_url="http://blog.test/x/",
                    post_id=post_id, outcome="accepted", message="stored as pending"),
    ])
    db.session.commit()
    page = BeautifulSoup(admin_client.get("/admin/linkbacks").get_data(as_text=True), "lxml")
    rows = page.select("table.linkback-log tbody tr")
    assert len(rows) == 2
    assert "fault 17" in rows[1].get_text() and "does not link" in rows[1].get_text()
    refused = admin_client.get("/admin/linkbacks?outcome=refused").get_data(as_text=True)
    assert "late.test" in refused and "good.test" not in refused


def test_block_and_unblock_a_domain(app, admin_client, ctx):
    token = csrf_token(admin_client, "/admin/linkbacks")
    response = admin_client.post("/admin/linkbacks/block", data={"domain": "Spam.Example.", "csrf_token": token})
    assert response.status_code == 302
    assert db.session.scalar(select(BlockedDomain.domain)) == "spam.example"
    bad = admin_client.post("/admin/linkbacks/block", data={"domain": "not a domain!", "csrf_token": token},
                            follow_redirects=True)
    assert "does not look like a domain" in bad.get_data(as_text=True)
    assert db.session.query(BlockedDomain).count() == 1
    blocked_id = db.session.scalar(select(BlockedDomain.id))
    assert admin_client.post(f"/admin/linkbacks/unblock/{blocked_id}", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.query(BlockedDomain).count() == 0


def test_block_domain_from_the_moderation_queue(app, admin_client, ctx):
    post_id, _ = make_post()
    add_comment(post_id, "[…] spammy […]", kind=CommentKind.PINGBACK, status=CommentStatus.PENDING,
                source_url="http://www.spam.example/page")
    page = BeautifulSoup(admin_client.get("/admin/comments").get_data(as_text=True), "lxml")
    form = next(f for f in page.select("form") if f.get("action") == "/admin/linkbacks/block")
    data = {i["name"]: i.get("value", "") for i in form.select("input[name]")}
    assert admin_client.post(form["action"], data=data).status_code == 302
    assert db.session.scalar(select(BlockedDomain.domain)) == "www.spam.example"


def test_block_requires_csrf(app, admin_client, ctx):
    assert admin_client.post("/admin/linkbacks/block", data={"domain": "x.example"}).status_code == 400
    assert db.session.query(BlockedDomain).count() == 0


def test_admin_lists_paginate_keeping_their_filters(app, admin_client, ctx):
    post_id, _ = make_post()
    for i in range(55):
        add_comment(post_id, f"pending {i}", status=CommentStatus.PENDING, minutes=i)
    first = BeautifulSoup(admin_client.get("/admin/comments?status=pending&kind=comments").get_data(as_text=True), "lxml")
    older = first.select_one("nav.pagination a")
    assert older.get_text().startswith("Older")
    assert "status=pending" in older["href"] and "kind=comments" in older["href"] and "page=2" in older["href"]
    second = BeautifulSoup(admin_client.get(older["href"]).get_data(as_text=True), "lxml")
    assert len(second.select("table.comments-table tbody tr")) == 5
    assert second.select_one("nav.pagination a").get_text().startswith("←") or "Newer" in second.select_one("nav.pagination a").get_text()


def _row_block_forms(admin_client, url="/admin/linkbacks") -> dict[str, dict]:
    """The Block button of each row of the log: {domain: the form's fields}."""
    page = BeautifulSoup(admin_client.get(url).get_data(as_text=True), "lxml")
    forms = {}
    for form in page.select("table.linkback-log form"):
        assert form["action"] == "/admin/linkbacks/block" and form["method"] == "post"
        fields = {i["name"]: i.get("value", "") for i in form.select("input[name]")}
        forms[fields["domain"]] = fields
    return forms


def test_each_row_of_the_log_has_a_block_button(app, admin_client, ctx):
    post_id, path = make_post(title="Pinged post")
    for source in ("http://spam.example/a", "http://www.spam.example/b", "http://good.test/c", "http://blog.test/own/"):
        db.session.add(LinkbackLog(protocol="pingback", source_url=source, source_host=source.split("/")[2],
                                   target_url="http://blog.test" + path, post_id=post_id, outcome="refused",
                                   fault_code=17))
    db.session.commit()
    forms = _row_block_forms(admin_client, "/admin/linkbacks?outcome=refused")
    assert set(forms) == {"spam.example", "www.spam.example", "good.test"}  # never our own host
    answer = admin_client.post("/admin/linkbacks/block", data=forms["spam.example"])
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/linkbacks?outcome=refused")
    assert db.session.scalars(select(BlockedDomain.domain)).all() == ["spam.example"]
    # Blocked now, with its subdomains: their rows lose the button; the others keep it.
    assert set(_row_block_forms(admin_client)) == {"good.test"}


def test_our_own_host_cannot_be_blocked(app, admin_client, ctx):
    app.config["SITE_ALIASES"] = ["https://old-name.example/blog"]
    token = csrf_token(admin_client, "/admin/linkbacks")
    for domain in ("blog.test", "test", "old-name.example", "example"):
        answer = admin_client.post("/admin/linkbacks/block", data={"domain": domain, "csrf_token": token},
                                   follow_redirects=True)
        assert answer.status_code == 200
        message = BeautifulSoup(answer.get_data(as_text=True), "lxml").get_text(" ")
        assert f"{domain} was not blocked: it is this site's own address" in message, message
    assert db.session.query(BlockedDomain).count() == 0
    # A neighbour of ours is not us.
    admin_client.post("/admin/linkbacks/block", data={"domain": "other.example", "csrf_token": token})
    assert db.session.scalars(select(BlockedDomain.domain)).all() == ["other.example"]
