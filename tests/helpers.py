"""Small builders for test data, through the same code paths the app uses."""
from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, utcnow
from blogapp.posts import save_post
from blogapp.templating import post_path
from blogapp.text import render_comment


def make_post(title="A post", body="Some *text*.", days_ago=1, publish=True, **kw):
    """A committed post; returns (id, path). Needs an app and request context."""
    post = save_post(None, title=title, body=body, publish=publish,
                     published_at=(utcnow() - timedelta(days=days_ago)) if publish else None, **kw)
    db.session.commit()
    return post.id, post_path(post)


def add_comment(post_id, text="Hello", *, name="Visitor", status=CommentStatus.APPROVED, kind=CommentKind.COMMENT,
                parent_id=None, minutes=0, source_url=None, email="visitor@example.org"):
    comment = Comment(
        post_id=post_id, parent_id=parent_id, kind=kind.value, status=status.value, author_name=name,
        author_email=email, content=text, content_html=render_comment(text) if kind == CommentKind.COMMENT else "",
        source_url=source_url, source_key=source_url, author_url=source_url or "",
        created_at=utcnow() - timedelta(days=1) + timedelta(minutes=minutes),
    )
    db.session.add(comment)
    db.session.commit()
    return comment.id


def database() -> dict[str, list]:
    """Every row of every table, as the database has it now: but the page cache's version counter,
    whose row the first rendered page creates (a write of content changes its own table too)."""
    db.session.rollback()
    return {table.name: sorted(map(repr, db.session.execute(table.select()).all()))
            for table in db.metadata.sorted_tables if table.name != "content_version"}


def wait_for(condition, timeout=10.0, interval=0.01):
    """``condition()``'s first truthy value within ``timeout`` seconds, else its last (falsy) one."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def unavailable(reason: str):
    """A peer or browser a test needs is missing: skip with the reason; under ``CI=true``, where
    ``.ci/run`` provides them, fail instead, so CI never passes by skipping."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run provides it, so this test must run)")
    pytest.skip(reason)
