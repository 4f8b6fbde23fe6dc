"""The admin's comment list as a WordPress admin uses it: the All tab, a search box, a filter by
post (the posts list's comment count links there), and Undo after trash or spam."""
from __future__ import annotations

import re

from bs4 import BeautifulSoup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus
from conftest import csrf_token
from helpers import add_comment, make_post


def listed(admin_client, url) -> list[int]:
    page = BeautifulSoup(admin_client.get(url).get_data(as_text=True), "lxml")
    return [int(row["id"][1:]) for row in page.select("table.comments-table tbody tr[id]")]


def status_of(comment_id) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Comment.status).where(Comment.id == comment_id))


def test_the_all_tab_lists_every_comment_but_spam_and_trash(app, admin_client, ctx):
    post_id, _ = make_post()
    ids = {status: add_comment(post_id, f"a {status} one", status=CommentStatus(status))
           for status in ("pending", "approved", "spam", "trash")}
    assert sorted(listed(admin_client, "/admin/comments?status=all")) == sorted([ids["pending"], ids["approved"]])
    page = BeautifulSoup(admin_client.get("/admin/comments?status=all").get_data(as_text=True), "lxml")
    assert page.select_one(".tabs a[aria-current=page]").get_text(" ", strip=True) == "All (2)"
    # Each row offers what fits its own status.
    pending_actions = {b.get_text() for b in page.select(f"tr#c{ids['pending']} .row-actions button")}
    approved_actions = {b.get_text() for b in page.select(f"tr#c{ids['approved']} .row-actions button")}
    assert pending_actions == {"Approve", "Spam", "Trash"}
    assert approved_actions == {"Unapprove", "Spam", "Trash"}


def test_comments_can_be_searched_within_a_tab(app, admin_client, ctx):
    post_id, _ = make_post()
    by_name = add_comment(post_id, "Nice post", name="Zelda Quartz", status=CommentStatus.PENDING)
    by_text = add_comment(post_id, "I found 50%_off deals", status=CommentStatus.PENDING)
    by_mail = add_comment(post_id, "Hello", email="ZQ@mail.example", status=CommentStatus.PENDING)
    other = add_comment(post_id, "Unrelated", status=CommentStatus.PENDING)
    assert listed(admin_client, "/admin/comments?s=zelda") == [by_name]
    assert listed(admin_client, "/admin/comments?s=%25_off") == [by_text]  # % and _ are themselves
    assert listed(admin_client, "/admin/comments?s=zq%40MAIL") == [by_mail]
    assert listed(admin_client, "/admin/comments?status=approved&s=zelda") == []  # within the tab
    assert sorted(listed(admin_client, "/admin/comments?s=++")) == sorted([by_name, by_text, by_mail, other])
    page = BeautifulSoup(admin_client.get("/admin/comments?s=nothing+like+it").get_data(as_text=True), "lxml")
    assert "No comments found for “nothing like it”." in page.select_one("table.comments-table").get_text()
    assert admin_client.get("/admin/comments?s=" + "x" * 5000).status_code == 200
    assert admin_client.get("/admin/comments?s=a%00b").status_code == 400  # the app's answer to any NUL


def test_a_posts_comment_count_leads_to_its_comments(app, admin_client, ctx):
    first, _ = make_post(title="First post")
    second, _ = make_post(title="Second post")
    mine = [add_comment(first, "on the first"), add_comment(first, "held", status=CommentStatus.PENDING)]
    add_comment(second, "on the second")
    posts = BeautifulSoup(admin_client.get("/admin/posts").get_data(as_text=True), "lxml")
    link = next(a for a in posts.select("a[href^='/admin/comments']") if f"post={first}" in a["href"])
    assert sorted(listed(admin_client, link["href"])) == sorted(mine)
    page = BeautifulSoup(admin_client.get(link["href"]).get_data(as_text=True), "lxml")
    assert page.select_one("h1").get_text() == "Comments on “First post”"
    # The tabs keep the filter; a post that is not there is no filter, not an error.
    assert all(f"post={first}" in a["href"] for a in page.select(".tabs a"))
    assert admin_client.get("/admin/comments?post=999999&status=all").status_code == 200
    assert admin_client.get("/admin/comments?post=abc").status_code == 200


def test_undo_puts_trashed_and_spammed_comments_back(app, admin_client, ctx):
    post_id, _ = make_post()
    held = add_comment(post_id, "held one", status=CommentStatus.PENDING)
    public = add_comment(post_id, "public one")
    token = csrf_token(admin_client, "/admin/comments")
    answer = admin_client.post(f"/admin/comments/{public}/trash", data={"csrf_token": token, "next": "/admin/comments?status=all"})
    assert status_of(public) == "trash"
    page = BeautifulSoup(admin_client.get(answer.headers["Location"]).get_data(as_text=True), "lxml")
    undo = page.select_one("form.notice-undo")
    assert undo is not None and "1 moved to the trash" in undo.get_text(" ")
    fields = MultiDict([(i["name"], i.get("value", "")) for i in undo.select("input[name]")])
    assert admin_client.post(undo["action"], data=fields).status_code == 302
    assert status_of(public) == "approved"  # back where it was
    # The offer is made once: the next page has none.
    again = BeautifulSoup(admin_client.get("/admin/comments").get_data(as_text=True), "lxml")
    assert again.select_one("form.notice-undo") is None

    # A bulk spam, undone: each back to its own status.
    admin_client.post("/admin/comments/bulk", data={"csrf_token": token, "action": "spam", "ids": [held, public]})
    assert (status_of(held), status_of(public)) == ("spam", "spam")
    page = BeautifulSoup(admin_client.get("/admin/comments").get_data(as_text=True), "lxml")
    undo = page.select_one("form.notice-undo")
    assert "2 marked as spam" in undo.get_text(" ")
    admin_client.post(undo["action"], data=MultiDict([(i["name"], i.get("value", "")) for i in undo.select("input[name]")]))
    assert (status_of(held), status_of(public)) == ("pending", "approved")

    # Undo touches only what is still in spam or trash, and needs the CSRF token.
    assert admin_client.post("/admin/comments/undo", data={"ids": [held]}).status_code == 400
    admin_client.post("/admin/comments/undo", data={"csrf_token": token, "ids": [held, public]})
    assert (status_of(held), status_of(public)) == ("pending", "approved")
    # Approving offers no undo.
    admin_client.post(f"/admin/comments/{held}/approve", data={"csrf_token": token})
    assert BeautifulSoup(admin_client.get("/admin/comments").get_data(as_text=True), "lxml").select_one(
        "form.notice-undo") is None


def test_the_dashboards_pending_items_can_be_moderated_where_they_are(app, admin_client, ctx):
    post_id, _ = make_post()
    first = add_comment(post_id, "first held", status=CommentStatus.PENDING)
    second = add_comment(post_id, "second held", status=CommentStatus.PENDING, kind=CommentKind.PINGBACK,
                         source_url="http://spam.example/x")
    page = BeautifulSoup(admin_client.get("/admin/").get_data(as_text=True), "lxml")
    item = page.select_one(f"#pending-{first}")
    assert {b.get_text() for b in item.select("button")} == {"Approve", "Spam"}
    assert item.select_one("a.action-reply")["href"] == f"/admin/comments/{first}/reply"
    approve = item.select_one("form:has(button.action-approve)")
    answer = admin_client.post(approve["action"], data=MultiDict(
        [(i["name"], i.get("value", "")) for i in approve.select("input[name]")]))
    assert answer.headers["Location"].endswith("/admin/")  # back on the dashboard
    spam = page.select_one(f"#pending-{second} form:has(button.action-spam)")
    admin_client.post(spam["action"], data=MultiDict([(i["name"], i.get("value", "")) for i in spam.select("input[name]")]))
    assert (status_of(first), status_of(second)) == ("approved", "spam")
    after = BeautifulSoup(admin_client.get("/admin/").get_data(as_text=True), "lxml")
    assert after.select(".mini-comment") == [] and "Nothing waits for you." in after.get_text()


def test_the_editors_linkbacks_part_is_served_alone_for_its_refresh(app, admin_client, ctx):
    from blogapp.models import OutboundLink

    post_id, _ = make_post(title="Linking post", body="No links.")
    db.session.add(OutboundLink(post_id=post_id, source_url="http://blog.test/x/", target_url="http://a.example/",
                                target_hash="a" * 64, linked=True, state="pending"))
    db.session.commit()
    answer = admin_client.get(f"/admin/posts/{post_id}/linkbacks")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    part = BeautifulSoup(answer.get_data(as_text=True), "lxml").select_one("section#linkbacks")
    assert part["data-pending"] == "1" and part["data-refresh"] == f"/admin/posts/{post_id}/linkbacks"
    assert "http://a.example/" in part.get_text()
    # The editor's page holds the same part (logged out: the login page; tests/test_admin.py).
    editor = BeautifulSoup(admin_client.get(f"/admin/posts/{post_id}/edit").get_data(as_text=True), "lxml")
    assert editor.select_one("section#linkbacks")["data-pending"] == "1"
    assert admin_client.get("/admin/posts/999999/linkbacks").status_code == 404
