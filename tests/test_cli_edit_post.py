"""``flask edit-post SLUG``: a post changed as the editor's Save changes it, its linkbacks sent
again (to removed links too), its permalink printed last; a mistake is one Error line and
changes nothing.

The linked pages are real HTTP servers on 127.0.0.1 (tests/sites.py) with a Webmention endpoint
that records what it receives (test_outbound.Remote).
"""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from blogapp import outbound
from blogapp.extensions import db
from blogapp.models import OutboundLink, Post, utcnow
from blogapp.posts import save_post
from blogapp.templating import permalink, post_path
from helpers import database, make_post
from test_outbound import Remote

SITE = "http://blog.test"


@pytest.fixture
def config_overrides():
    # The linked pages are on loopback, which the guarded fetcher refuses unless allowlisted.
    return {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"]}


@pytest.fixture
def remote(source_site):
    return Remote(source_site)


def a_post(**kw) -> Post:
    """A published post, a day old, with two categories and a tag, open to comments and pings."""
    fields = {"title": "Before the edit", "body": "The *old* words.", "categories": ["Client Care", "Self Care"],
              "tags": ["first"], **kw}
    post_id, _ = make_post(**fields)
    return db.session.get(Post, post_id)


def edit(runner, *args, input=None):
    return runner.invoke(args=["edit-post", *args], input=input)


def reload(post_id) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def the_error(result) -> str:
    """The one line a refused edit wrote, on standard error, and nothing on standard output."""
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("Error: ")
    return result.stderr.rstrip("\n").removeprefix("Error: ")


# ---------------------------------------------------------------- what changes, what is kept


def test_every_field_given_is_stored_and_shown_on_the_post_page(app, ctx, runner, client, tmp_path):
    post = a_post()
    path = post_path(post)
    assert client.get(path).status_code == 200  # the page is cached with the old post
    body = tmp_path / "new.md"
    body.write_text("The **new** words, with an é.", encoding="utf-8")
    result = edit(runner, post.slug, "--title", "After the edit", "--body-file", str(body), "--category", "Practice",
                  "--category", "Research", "--tag", "second", "--tag", "third, Second", "--comments", "closed",
                  "--pings", "closed")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert (post.title, post.body) == ("After the edit", "The **new** words, with an é.")
    assert "<strong>new</strong>" in post.body_html
    assert [c.name for c in post.categories] == ["Practice", "Research"]
    assert [t.name for t in post.tags] == ["second", "third"]
    assert not post.comments_open and not post.pings_open
    assert post.is_published and post_path(post) == path  # same date, same slug: the same permalink
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "After the edit" in html and "Before the edit" not in html
    assert "<strong>new</strong>" in html and "<em>old</em>" not in html
    assert ">Practice</a>" in html and ">Research</a>" in html and "Client Care" not in html
    assert ">second</a>" in html and ">third</a>" in html and ">first</a>" not in html
    assert "Comments are closed." in html
    assert '<link rel="trackback"' not in html and "trackback:ping" not in html  # pings closed


def test_options_not_given_leave_their_fields_as_they_were(app, ctx, runner):
    post = a_post(comments_open=False)
    before = (post.title, post.body, post.body_html, post.slug, post.published_at, post.status, post.comments_open,
              post.pings_open, post.send_linkbacks, post.excerpt)
    result = edit(runner, post.slug, "--tag", "only this")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert (post.title, post.body, post.body_html, post.slug, post.published_at, post.status, post.comments_open,
            post.pings_open, post.send_linkbacks, post.excerpt) == before
    assert [c.name for c in post.categories] == ["Client Care", "Self Care"]
    assert [t.name for t in post.tags] == ["only this"]
    result = edit(runner, post.slug, "--title", "Only the title")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert post.title == "Only the title" and post.body == before[1] and [t.name for t in post.tags] == ["only this"]
    assert [c.name for c in post.categories] == ["Client Care", "Self Care"]


def test_no_categories_and_no_tags_clear_them(app, ctx, runner, client):
    post = a_post()
    result = edit(runner, post.slug, "--no-categories", "--no-tags")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert post.categories == [] and post.tags == [] and post.title == "Before the edit"
    html = client.get(post_path(post)).get_data(as_text=True)
    assert "Client Care" not in html and ">first</a>" not in html


def test_the_body_can_come_from_standard_input(app, ctx, runner):
    post = a_post()
    result = edit(runner, post.slug, "--body-file", "-", input="Typed *in*.\n")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert post.body == "Typed *in*.\n" and "<em>in</em>" in post.body_html


def test_the_post_page_shows_the_edit_at_once(app, ctx, runner, client):
    """The page is kept in the page cache: a change behind the cache's back (plain SQL on a
    connection of its own) is not seen, so the edit's new title is seen because the edit said so."""
    post = a_post()
    path = post_path(post)
    first = client.get(path)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE post SET title = 'Behind its back' WHERE id = :id"), {"id": post.id})
    cached = client.get(path)
    assert cached.get_data() == first.get_data() and "Behind its back" not in cached.get_data(as_text=True)
    result = edit(runner, post.slug, "--title", "Seen at once")
    assert result.exit_code == 0, result.output
    assert "Seen at once" in client.get(path).get_data(as_text=True)
    assert "Seen at once" in client.get("/").get_data(as_text=True)


# ---------------------------------------------------------------- draft and publish


def test_draft_hides_the_post_and_publish_shows_it_again(app, ctx, runner, client):
    post = a_post(title="Now you see it")
    path = post_path(post)
    assert "Now you see it" in client.get("/").get_data(as_text=True)
    result = edit(runner, post.slug, "--draft")
    assert result.exit_code == 0, result.output
    assert "Updated (draft): Now you see it" in result.output
    assert client.get(path).status_code == 410  # a page readers knew is gone, not unknown
    assert "Now you see it" not in client.get("/").get_data(as_text=True)
    assert "Now you see it" not in client.get("/feed/").get_data(as_text=True)
    result = edit(runner, post.slug, "--publish")
    assert result.exit_code == 0, result.output
    assert "Updated (published): Now you see it" in result.output
    assert reload(post.id).is_published
    assert client.get(path).status_code == 200  # its date kept: the same permalink
    assert "Now you see it" in client.get("/").get_data(as_text=True)


def test_publish_publishes_a_draft_now(app, ctx, runner, client):
    post = a_post(title="Waiting", publish=False)
    assert post.published_at is None
    result = edit(runner, post.slug, "--publish")
    assert result.exit_code == 0, result.output
    post = reload(post.id)
    assert post.is_published and utcnow() - post.published_at < timedelta(minutes=1)
    last = result.output.strip().splitlines()[-1]
    assert last == permalink(post)
    assert client.get(last.removeprefix(SITE)).status_code == 200


def test_draft_and_publish_together_are_a_usage_error(app, ctx, runner):
    post = a_post()
    before = database()
    result = edit(runner, post.slug, "--draft", "--publish")
    assert result.exit_code == 2 and "--draft or --publish, not both" in result.output
    clash = edit(runner, post.slug, "--tag", "x", "--no-tags")
    assert clash.exit_code == 2 and "--tag or --no-tags, not both" in clash.output
    assert database() == before


# ---------------------------------------------------------------- refusals change nothing


def test_an_unknown_slug_is_one_error_line(app, ctx, runner):
    a_post()
    before = database()
    result = edit(runner, "nope", "--title", "Anything")
    assert the_error(result) == 'no post with the slug "nope"'
    assert database() == before


@pytest.mark.parametrize("problem", ["missing", "a folder", "not UTF-8", "not UTF-8 on standard input"])
def test_an_unreadable_body_file_is_one_error_line_and_changes_nothing(app, ctx, runner, tmp_path, problem):
    post = a_post()
    before = database()
    stdin = None
    if problem == "missing":
        source = str(tmp_path / "no-such.md")
    elif problem == "a folder":
        source = str(tmp_path)
    elif problem == "not UTF-8":
        (tmp_path / "latin1.md").write_bytes("Caf\u00e9".encode("latin-1"))
        source = str(tmp_path / "latin1.md")
    else:
        source, stdin = "-", "Caf\u00e9".encode("latin-1")
    result = edit(runner, post.slug, "--title", "Changed", "--body-file", source, input=stdin)
    message = the_error(result)
    assert message.startswith(f"cannot read {'standard input' if source == '-' else source}: ")
    if problem.startswith("not UTF-8"):
        assert "not UTF-8 text" in message
    assert database() == before


def test_an_invalid_title_changes_nothing(app, ctx, runner):
    post = a_post()
    before = database()
    too_long = edit(runner, post.slug, "--title", "x" * 301, "--tag", "new", "--comments", "closed")
    assert the_error(too_long) == "--title: Field cannot be longer than 300 characters."
    blank = edit(runner, post.slug, "--title", "   ", "--no-categories")
    assert the_error(blank) == "--title: A post needs a title."
    assert database() == before
    assert edit(runner, post.slug, "--title", "x" * 300).exit_code == 0  # the editor's limit, not less


def test_the_editor_s_other_checks_apply_too_all_in_one_line(app, ctx, runner, tmp_path):
    post = a_post()
    before = database()
    body = tmp_path / "nul.md"
    body.write_text("A NUL \x00 here", encoding="utf-8")
    result = edit(runner, post.slug, "--body-file", str(body), "--category", "c" * 121)
    message = the_error(result)
    assert message.startswith("--body-file: ") and ". --category: Each name can be at most 120 characters long." in message
    assert database() == before


# ---------------------------------------------------------------- linkbacks


def test_an_edit_sends_webmentions_again_to_kept_and_removed_links(app, ctx, runner, remote, tmp_path):
    keep, drop, ping = remote.webmention_page("/keep"), remote.webmention_page("/drop"), remote.pingback_page("/pb")
    post = save_post(None, title="Linking", body=f"[keep]({keep}) [drop]({drop}) [ping]({ping})", publish=True,
                     published_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    for row in outbound.pending_rows(post):
        outbound.send_now(row)
    source = permalink(post)
    assert sorted(w["target"] for w in remote.webmentions) == sorted([keep, drop]) and len(remote.pings) == 1
    body = tmp_path / "body.md"
    body.write_text(f"[keep]({keep}) [ping]({ping}), and no more of the other.", encoding="utf-8")
    result = edit(runner, post.slug, "--body-file", str(body))
    assert result.exit_code == 0, result.output
    # Sent by the command itself (jobs in-process), before it printed the permalink, last.
    later = remote.webmentions[2:]
    assert sorted(w["target"] for w in later) == sorted([keep, drop])  # the removed link hears too
    assert all(w["source"] == source for w in later)
    assert len(remote.pings) == 1  # a registered pingback is not sent again, as from the editor
    assert result.output.strip().splitlines()[-1] == source
    db.session.expire_all()
    rows = {row.target_url: row for row in db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == post.id))}
    assert rows[drop].linked is False and rows[drop].state == "sent" and rows[keep].state == "sent"


def test_an_edit_that_changes_no_words_sends_nothing_again(app, ctx, runner, remote):
    page = remote.webmention_page("/wm")
    post = save_post(None, title="Quiet", body=f"[page]({page})", publish=True, published_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    for row in outbound.pending_rows(post):
        outbound.send_now(row)
    assert len(remote.webmentions) == 1
    result = edit(runner, post.slug, "--tag", "retagged", "--comments", "closed")
    assert result.exit_code == 0, result.output
    assert len(remote.webmentions) == 1
    assert result.output.strip().splitlines()[-1] == permalink(post)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("config_overrides", [{
    "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "JOBS_BACKEND": "rq", "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
    "JOBS_REDIS_TIMEOUT": 0.3,
}])
def test_linkbacks_that_could_not_be_queued_are_said_so_and_exit_1(app, ctx, runner):
    """Redis away: the post is changed (its permalink still the last line of standard output), the
    command says its linkbacks wait, and exits 1."""
    post = a_post(title="Linking", body="See [a page](http://127.0.0.1:9/page).")
    result = edit(runner, post.slug, "--title", "Linking again")
    assert result.exit_code == 1, result.output
    assert reload(post.id).title == "Linking again"
    assert result.stdout.splitlines()[-1] == permalink(post)
    assert "queued for the worker." not in result.stdout
    error = result.stderr.strip()
    assert error.count("\n") == 0 and error.startswith("Error: the post's linkbacks could not be queued for the worker (")
    assert error.endswith(f"`flask --app blogapp send-pings {post.slug}`")
