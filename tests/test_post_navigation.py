"""A post page's "Previous post" / "Next post" links: read once and kept until the post list
changes (a publication, a retitled or removed post, a scheduled post come due), with the page
cache on or off."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from blogapp.extensions import db
from blogapp.models import Post, utcnow
from blogapp.posts import remove_post, save_post
from blogapp.templating import post_path
from helpers import make_post, wait_for


def links(client, path) -> dict[str, tuple[str, str]]:
    html = client.get(path).get_data(as_text=True)
    return {rel: (href, title) for href, rel, title in re.findall(
        r'<a class="nav-(?:previous|next)" href="([^"]+)" rel="(prev|next)"><span class="nav-label">[^<]+</span> ([^<]*)</a>',
        html)}


def edit(post_id: int, **changes) -> Post:
    post = db.session.get(Post, post_id)
    fields = dict(title=post.title, body=post.body, publish=True, published_at=post.published_at)
    saved = save_post(post, **{**fields, **changes})
    db.session.commit()
    return saved


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": True}, {"PAGE_CACHE": False}], ids=["cache-on", "cache-off"])
def test_neighbour_links_follow_the_post_list(app, client, ctx):
    a_id, a_path = make_post(title="Alpha", days_ago=3)
    b_id, b_path = make_post(title="Beta", days_ago=2)
    c_id, c_path = make_post(title="Gamma", days_ago=1)
    assert links(client, b_path) == {"prev": (a_path, "Alpha"), "next": (c_path, "Gamma")}
    assert links(client, a_path) == {"next": (b_path, "Beta")}
    assert links(client, c_path) == {"prev": (b_path, "Beta")}

    edit(c_id, title="Gamma & Co")  # a retitled neighbour: the link says so (escaped)
    assert links(client, b_path)["next"] == (c_path, "Gamma &amp; Co")

    d_id, d_path = make_post(title="Delta", days_ago=1.5)  # published between Beta and Gamma
    assert links(client, b_path)["next"] == (d_path, "Delta")
    assert links(client, c_path)["prev"] == (d_path, "Delta")

    remove_post(db.session.get(Post, d_id))
    db.session.commit()
    assert links(client, b_path)["next"] == (c_path, "Gamma &amp; Co")

    edit(a_id, publish=False)  # back to a draft: Beta has no previous post
    assert links(client, b_path) == {"next": (c_path, "Gamma &amp; Co")}


def test_a_scheduled_post_becomes_a_neighbour_when_its_time_comes(app, client, ctx):
    _, a_path = make_post(title="Alpha", days_ago=2)
    e_id, _ = make_post(title="Epsilon", days_ago=1)
    e_path = post_path(edit(e_id, published_at=utcnow() + timedelta(seconds=1)))  # due in a second
    assert links(client, a_path) == {}
    assert wait_for(lambda: links(client, a_path) == {"next": (e_path, "Epsilon")}, timeout=5, interval=0.1)
