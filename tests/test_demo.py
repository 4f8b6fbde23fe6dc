"""The demo blog looks like the one the README promises."""
from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp.demo import seed
from blogapp.extensions import db
from blogapp.models import CommentStatus, Post
from blogapp.templating import post_path


def test_demo_thriving_practice_post(app, client, ctx):
    seed()
    post = db.session.scalar(select(Post).where(Post.title == "Want a Thriving Practice? Do Good Work"))
    assert {c.name for c in post.categories} == {"Client Care", "Marketing / Strategy", "Self Care / Therapists"}
    assert len(post.tags) >= 2
    assert not post.comments_open
    page = BeautifulSoup(client.get(post_path(post)).get_data(as_text=True), "lxml")
    thread = page.select_one("#comments")
    assert thread.select_one(".comments-title").get_text(strip=True) == "One Comment"
    ping = thread.select_one("li.pingback")
    assert ping.select_one(".linkback-line").get_text(" ", strip=True).startswith(
        "Pingback: Seasons of Practice | A SMART PRACTICE")
    # The pingback comes from the blog's own later post, which really links here.
    source = ping.select_one(".p-name")["href"]
    seasons = db.session.scalar(select(Post).where(Post.title == "Seasons of Practice"))
    assert source == "http://blog.test" + post_path(seasons)
    seasons_page = BeautifulSoup(client.get(post_path(seasons)).get_data(as_text=True), "lxml")
    assert seasons_page.select_one(f'.e-content a[href="http://blog.test{post_path(post)}"]')
    assert thread.find_all(recursive=False)[-1].get_text() == "Comments are closed."
    assert not page.select_one("form.comment-form")


def test_demo_has_an_open_threaded_discussion(app, client, ctx):
    seed()
    posts = db.session.scalars(select(Post)).all()
    assert len(posts) >= 4
    open_posts = [p for p in posts if p.comments_open]
    threaded = [p for p in open_posts if any(c.parent_id and c.status == CommentStatus.APPROVED for c in p.comments)]
    assert threaded
    page = BeautifulSoup(client.get(post_path(threaded[0])).get_data(as_text=True), "lxml")
    assert page.select("ol.children ol.children li.comment")
    assert page.select_one("form.comment-form")


def test_demo_has_an_about_page_in_the_navigation(app, client, ctx):
    from blogapp.demo import seed

    seed()
    home = client.get("/").get_data(as_text=True)
    assert 'href="/about/"' in home
    about = client.get("/about/")
    assert about.status_code == 200 and "Maya Ellison" in about.get_data(as_text=True)
