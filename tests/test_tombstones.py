"""A post readers could see answers 410 Gone once deleted or unpublished; never-public ones stay 404."""
from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.models import Post, Tombstone
from blogapp.posts import remove_post, save_post
from conftest import csrf_token
from helpers import make_post


def test_deleted_post_answers_410_with_a_tombstone(app, admin_client, ctx):
    post_id, path = make_post(title="Soon gone")
    token = csrf_token(admin_client, f"/admin/posts/{post_id}/edit")
    assert admin_client.post(f"/admin/posts/{post_id}/delete", data={"csrf_token": token}).status_code == 302
    reader = app.test_client()
    response = reader.get(path)
    assert response.status_code == 410
    page = BeautifulSoup(response.get_data(as_text=True), "lxml")
    assert page.select_one("h1").get_text() == "This post is gone"
    assert "Soon gone" in page.get_text()


def test_bulk_delete_leaves_tombstones_too(app, admin_client, ctx):
    first, first_path = make_post(title="One")
    second, second_path = make_post(title="Two")
    token = csrf_token(admin_client, "/admin/posts")
    admin_client.post("/admin/posts/bulk", data={"csrf_token": token, "action": "delete", "confirmed": "yes",
                                                 "ids": [first, second]})
    reader = app.test_client()
    assert reader.get(first_path).status_code == 410 and reader.get(second_path).status_code == 410


def test_unpublished_post_is_gone_and_back_when_republished(app, client, ctx):
    post_id, path = make_post(title="Flip")
    post = db.session.get(Post, post_id)
    save_post(post, title=post.title, body=post.body, publish=False)
    db.session.commit()
    assert client.get(path).status_code == 410
    save_post(post, title=post.title, body=post.body, publish=True)
    db.session.commit()
    # Republished today, so at today's date: the old address leads there.
    assert client.get(path, follow_redirects=True).status_code == 200
    assert db.session.scalar(select(Tombstone)) is None


def test_a_draft_never_public_is_404_when_deleted(app, client, ctx):
    post_id, path = make_post(title="Private draft", publish=False)
    remove_post(db.session.get(Post, post_id))
    db.session.commit()
    assert client.get(path).status_code == 404
    assert db.session.scalar(select(Tombstone)) is None
