"""The command-line tools, run through Flask's CLI runner on the test database."""
from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.models import Comment, Post, User
from conftest import TEST_REDIS_URL
from helpers import add_comment


def test_create_admin(app, runner):
    result = runner.invoke(args=["create-admin", "editor", "--password", "long enough"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "editor"))
        assert user.check_password("long enough") and "long enough" not in user.password_hash
    again = runner.invoke(args=["create-admin", "editor", "--password", "long enough"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_create_admin_prompts_for_password(app, runner):
    result = runner.invoke(args=["create-admin", "prompted"], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    short = runner.invoke(args=["create-admin", "shorty", "--password", "short"])
    assert short.exit_code != 0 and "at least 8" in short.output


def test_create_post_prints_permalink_last(app, runner, tmp_path):
    body = tmp_path / "body.md"
    body.write_text("Hello *world*", encoding="utf-8")
    result = runner.invoke(args=["create-post", "--title", "From the CLI", "--body-file", str(body),
                                 "--category", "Client Care", "--tag", "cli", "--comments", "closed"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("http://blog.test/") and last.endswith("/from-the-cli/")
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.is_published and not post.comments_open and post.pings_open
        assert [c.name for c in post.categories] == ["Client Care"]
        assert "<em>world</em>" in post.body_html
    assert app.test_client().get(last.removeprefix("http://blog.test")).status_code == 200


def test_create_post_errors_are_one_line(runner):
    both = runner.invoke(args=["create-post", "--title", "T", "--body", "x", "--body-file", "y"])
    assert both.exit_code != 0 and both.output.strip().count("\n") == 0
    neither = runner.invoke(args=["create-post", "--title", "T"])
    assert neither.exit_code != 0
    blank = runner.invoke(args=["create-post", "--title", "   ", "--body", "x"])
    assert blank.exit_code != 0 and "title" in blank.output


def test_create_draft(app, runner):
    result = runner.invoke(args=["create-post", "--title", "Not yet", "--body", "x", "--draft", "--slug", "custom slug"])
    assert result.exit_code == 0
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.slug == "custom-slug" and not post.is_published


def test_set_discussion(app, runner):
    runner.invoke(args=["create-post", "--title", "Switches", "--body", "x"])
    result = runner.invoke(args=["set-discussion", "switches", "--pings", "closed"])
    assert result.exit_code == 0 and "comments open, pings closed" in result.output
    with app.app_context():
        post = db.session.scalar(select(Post))
        assert post.comments_open and not post.pings_open
    missing = runner.invoke(args=["set-discussion", "nope", "--comments", "closed"])
    assert missing.exit_code != 0 and "no post with slug 'nope'" in missing.output
    nothing = runner.invoke(args=["set-discussion", "switches"])
    assert nothing.exit_code != 0


def test_list_comments_json(app, runner, ctx):
    runner.invoke(args=["create-post", "--title", "Talked about", "--body", "x"])
    post = db.session.scalar(select(Post))
    first = add_comment(post.id, "Hi there", name="Bea")
    add_comment(post.id, "Reply", name="Cy", parent_id=first, minutes=1)
    result = runner.invoke(args=["list-comments", "talked-about", "--json"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["author_name"] for r in rows] == ["Bea", "Cy"]
    assert set(rows[0]) == {"id", "kind", "status", "author_name", "author_url", "source_url", "content",
                            "parent_id", "created_at"}
    assert rows[1]["parent_id"] == rows[0]["id"] and rows[0]["kind"] == "comment"
    assert rows[0]["created_at"].endswith("+00:00")


def test_seed_demo_refuses_a_blog_with_posts(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code != 0 and "already" in again.output
    assert runner.invoke(args=["seed-demo", "--if-empty"]).exit_code == 0
    with app.app_context():
        assert db.session.query(Post).count() == 5
        assert db.session.query(Comment).count() > 5


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the RQ back end needs Redis: set TEST_REDIS_URL")
@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": TEST_REDIS_URL, "JOBS_BACKEND": "rq",
                                               "JOBS_QUEUE": f"blogapp-cli-{secrets.token_hex(4)}"}])
def test_create_post_says_when_the_back_end_refused_its_linkbacks(app, runner, monkeypatch):
    """Redis answers but the back end refuses the job (a bug, not an outage): jobs.submit records
    it failed, and the command says so instead of "queued"."""
    from blogapp import jobs

    def refuse(*args, **kwargs):
        raise ValueError("no room for it")

    monkeypatch.setattr(jobs.backend(app), "submit", refuse)
    result = runner.invoke(args=["create-post", "--title", "Refused", "--body", "See [a page](http://127.0.0.1:9/p)."])
    assert result.exit_code == 1 and "queued for the worker." not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: the post's linkbacks could not be queued for the worker (ValueError: no room for it); they wait: "
        "send them with `flask --app blogapp send-pings refused`")
