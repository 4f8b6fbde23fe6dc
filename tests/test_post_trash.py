"""Posts' Trash, as in WordPress: "Move to Trash" takes a post from readers (a public one's
address answers 410, as a deleted one's) and keeps it and its comments; Restore brings it back as
a draft (WordPress since 5.6) at its old address once published again; "Delete permanently" asks
first."""
from __future__ import annotations

import re

from bs4 import BeautifulSoup
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from blogapp.extensions import db
from blogapp.models import Comment, Post
from blogapp.posts import PostError, save_post
from blogapp.templating import site_request_context
from conftest import csrf_token
from helpers import add_comment, make_post

import pytest


def page(response):
    return BeautifulSoup(response.get_data(as_text=True), "lxml")


def form_data(form) -> MultiDict:
    return MultiDict([(i["name"], i.get("value", "")) for i in form.select("input[name]")])


def row(post_id) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def listed(admin_client, url) -> list[str]:
    return [t.get_text(strip=True) for t in page(admin_client.get(url)).select("table.posts-table .row-title")]


def test_move_to_trash_then_restore_then_publish_again(app, admin_client):
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Second thoughts")
        comment = add_comment(post_id, "A kind word.")
    reader = app.test_client()
    assert reader.get(path).status_code == 200
    editor = page(admin_client.get(f"/admin/posts/{post_id}/edit"))
    trash = editor.select_one("form.danger-zone")
    assert trash["action"] == f"/admin/posts/{post_id}/trash" and trash.button.get_text() == "Move to Trash"
    assert admin_client.post(trash["action"], data=form_data(trash)).status_code == 302

    with app.app_context():
        post = row(post_id)
        assert post.trashed_at is not None and post.status == "draft"
        assert db.session.get(Comment, comment) is not None  # its thread is kept
    assert reader.get(path).status_code == 410  # gone, as a deleted post
    assert "Second thoughts" not in reader.get("/").get_data(as_text=True)
    assert "Second thoughts" not in reader.get("/feed/").get_data(as_text=True)
    assert "Second thoughts" not in listed(admin_client, "/admin/posts")
    assert listed(admin_client, "/admin/posts?status=trash") == ["Second thoughts"]
    tabs = page(admin_client.get("/admin/posts")).select_one(".tabs").get_text(" ", strip=True)
    assert "Trash (1)" in tabs
    # In the Trash it cannot be edited: the editor sends back to the Trash with a word.
    answer = admin_client.get(f"/admin/posts/{post_id}/edit", follow_redirects=True)
    assert "is in the Trash. Restore it to edit it." in page(answer).get_text()

    restore = page(admin_client.get("/admin/posts?status=trash")).select_one(f"form#restore-{post_id}")
    assert admin_client.post(restore["action"], data=form_data(restore)).status_code == 302
    with app.app_context():
        post = row(post_id)
        assert post.trashed_at is None and post.status == "draft"  # back, as a draft: nothing republished
    assert reader.get(path).status_code == 410
    assert listed(admin_client, "/admin/posts?status=draft") == ["Second thoughts"]
    with app.app_context(), site_request_context(app):
        post = row(post_id)
        save_post(post, title=post.title, body=post.body, publish=True, published_at=post.published_at)
        db.session.commit()
    assert reader.get(path).status_code == 200  # at its old address
    assert "A kind word." in reader.get(path).get_data(as_text=True)


def test_delete_permanently_asks_first(app, admin_client):
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Doomed")
        add_comment(post_id, "bye")
    token = csrf_token(admin_client, "/admin/posts")
    admin_client.post(f"/admin/posts/{post_id}/trash", data={"csrf_token": token})
    trash = page(admin_client.get("/admin/posts?status=trash"))
    link = trash.select_one("a.action-delete")
    asked = admin_client.get(link["href"])
    assert asked.status_code == 200
    question = page(asked)
    assert question.select_one("h1").get_text() == "Delete permanently?"
    assert "“Doomed” and its comments will be deleted for good." in question.get_text()
    with app.app_context():
        assert row(post_id) is not None  # asking changed nothing
    confirm = question.select_one("form.confirm-delete")
    assert admin_client.post(confirm["action"], data=form_data(confirm)).status_code == 302
    with app.app_context():
        assert row(post_id) is None and db.session.scalar(select(func.count(Comment.id))) == 0
    assert app.test_client().get(path).status_code == 410
    assert "The Trash is empty." in page(admin_client.get("/admin/posts?status=trash")).get_text()


def test_bulk_trash_and_restore(app, admin_client):
    with app.app_context(), site_request_context(app):
        ids = [make_post(title=f"Post {n}")[0] for n in range(3)]
    token = csrf_token(admin_client, "/admin/posts")
    bulk = page(admin_client.get("/admin/posts")).select_one("#bulk-action")
    assert [o["value"] for o in bulk.select("option") if o["value"]][-1] == "trash"
    admin_client.post("/admin/posts/bulk", data=MultiDict([("csrf_token", token), ("action", "trash"),
                                                             ("ids", ids[0]), ("ids", ids[1])]))
    assert sorted(listed(admin_client, "/admin/posts?status=trash")) == ["Post 0", "Post 1"]
    assert listed(admin_client, "/admin/posts") == ["Post 2"]
    in_trash = page(admin_client.get("/admin/posts?status=trash")).select_one("#bulk-action")
    assert [o["value"] for o in in_trash.select("option") if o["value"]] == ["restore", "delete"]
    admin_client.post("/admin/posts/bulk", data=MultiDict([("csrf_token", token), ("action", "restore"),
                                                             ("ids", ids[0])]))
    assert listed(admin_client, "/admin/posts?status=trash") == ["Post 1"]
    with app.app_context():
        assert row(ids[0]).status == "draft" and row(ids[2]).status == "published"


def test_a_trashed_post_cannot_be_saved_and_its_pings_are_refused(app, ctx, admin_client):
    post_id, path = make_post(title="Trashed")
    token = csrf_token(admin_client, "/admin/posts")
    admin_client.post(f"/admin/posts/{post_id}/trash", data={"csrf_token": token})
    post = row(post_id)
    with pytest.raises(PostError, match="in the Trash"):
        save_post(post, title="Changed", body="x", publish=True)
    db.session.rollback()
    assert row(post_id).title == "Trashed"


def test_the_export_says_trash_for_a_trashed_post_as_wordpress_does(app, ctx):
    from blogapp.posts import trash_post
    from blogapp.wxr.exporter import WxrExporter

    kept, _ = make_post(title="Kept")
    binned, _ = make_post(title="Binned")
    trash_post(db.session.get(Post, binned))
    db.session.commit()
    text = "".join(WxrExporter().chunks())
    statuses = {title: status for title, status in re.findall(
        r"<title><!\[CDATA\[(\w+)\]\]></title>.*?<wp:status><!\[CDATA\[(\w+)\]\]></wp:status>", text, re.S)}
    assert statuses == {"Kept": "publish", "Binned": "trash"}


def test_a_trashed_posts_comments_wait_with_it(app, admin_client):
    from blogapp.models import CommentStatus

    with app.app_context(), site_request_context(app):
        kept_id, _ = make_post(title="Kept")
        binned_id, _ = make_post(title="Binned")
        add_comment(kept_id, "on the kept one", status=CommentStatus.PENDING)
        add_comment(binned_id, "on the binned one", status=CommentStatus.PENDING)
    token = csrf_token(admin_client, "/admin/posts")
    admin_client.post(f"/admin/posts/{binned_id}/trash", data={"csrf_token": token})

    def shown(url):
        return page(admin_client.get(url)).select_one("table.comments-table").get_text(" ")

    assert "on the binned one" not in shown("/admin/comments") and "on the kept one" in shown("/admin/comments")
    listing = page(admin_client.get("/admin/comments"))
    assert listing.select_one(".tabs a[aria-current=page]").get_text(" ", strip=True) == "Pending (1)"
    assert listing.select_one(".admin-nav .pending-count").get_text() == "1"
    assert "on the binned one" not in page(admin_client.get("/admin/")).get_text()
    assert "on the binned one" in shown(f"/admin/comments?post={binned_id}")  # asked for: shown
    restore = page(admin_client.get("/admin/posts?status=trash")).select_one(f"form#restore-{binned_id}")
    admin_client.post(restore["action"], data=form_data(restore))
    assert "on the binned one" in shown("/admin/comments")


@pytest.mark.parametrize("config_overrides", [{"EMPTY_TRASH_DAYS": 30}])
def test_the_trash_empties_itself_after_its_days(app, ctx, config_overrides, caplog):
    from datetime import timedelta

    from blogapp.jobs import Sweeper
    from blogapp.models import utcnow
    from blogapp.posts import trash_post

    old_id, old_path = make_post(title="Long gone")
    recent_id, _ = make_post(title="Just binned")
    kept_id, _ = make_post(title="Not binned")
    add_comment(old_id, "goes with it")
    for post_id in (old_id, recent_id):
        trash_post(db.session.get(Post, post_id))
    db.session.commit()
    db.session.get(Post, old_id).trashed_at = utcnow() - timedelta(days=31)
    db.session.get(Post, recent_id).trashed_at = utcnow() - timedelta(days=29)
    db.session.commit()

    caplog.set_level("INFO", logger="blogapp.jobs")
    sweeper = Sweeper(app, at_start=False)
    sweeper.once()  # what every process's sweeper does, hourly
    db.session.expire_all()
    assert db.session.get(Post, old_id) is None and db.session.scalar(select(func.count(Comment.id))) == 0
    assert db.session.get(Post, recent_id) is not None and db.session.get(Post, kept_id) is not None
    assert "emptied the Trash: 1 post(s)" in caplog.text
    assert app.test_client().get(old_path).status_code == 410  # it was public: still "gone"
    # Within the hour, this process does not look again; and 0 days means never.
    db.session.get(Post, recent_id).trashed_at = utcnow() - timedelta(days=40)
    db.session.commit()
    sweeper.once()
    db.session.expire_all()
    assert db.session.get(Post, recent_id) is not None
    app.config["EMPTY_TRASH_DAYS"] = 0
    fresh_sweeper = Sweeper(app, at_start=False)
    fresh_sweeper.once()
    db.session.expire_all()
    assert db.session.get(Post, recent_id) is not None
    app.config["EMPTY_TRASH_DAYS"] = 30
    Sweeper(app, at_start=False).once()
    db.session.expire_all()
    assert db.session.get(Post, recent_id) is None
