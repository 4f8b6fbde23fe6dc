"""`flask backup FILE` and `flask restore FILE`: a backup taken, the blog changed, the backup
restored, and every row as it was; a consistent copy while another thread writes (SQLite); the
page cache made stale by a restore; one-line errors. PostgreSQL runs in a database of its own
(pg_restore --clean replaces a whole database's tables)."""
from __future__ import annotations

import shutil
import sqlite3
import stat
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from blogapp import pagecache
from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, Post, utcnow
from blogapp.posts import save_post
from blogapp.templating import site_request_context
from conftest import TEST_DATABASE_URL
from helpers import add_comment, database, make_post
from ops_helpers import Apps, free_port, own_postgresql_database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL"))]


@pytest.fixture
def apps(tmp_path):
    built = Apps(tmp_path)
    yield built
    built.close()


@pytest.fixture(params=BACKENDS)
def blog(request, apps, tmp_path):
    """An app on a database of its own, with its tables: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield apps(f"sqlite:///{tmp_path / 'blog.sqlite'}", create_tables=True)
        return
    with own_postgresql_database("blogapp_backup") as uri:
        yield apps(uri, create_tables=True)
        apps.close()  # before the database is dropped


def run(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def fill(app):
    """Two posts, a thread with a reply, a held comment: what a blog has."""
    with app.app_context(), site_request_context(app):
        first, _ = make_post("First", body="The first post.", days_ago=3)
        second, _ = make_post("Second", body="The second post.", days_ago=2, tags=["kept"])
        top = add_comment(first, "A comment", name="Ann")
        add_comment(first, "A reply", name="Bob", parent_id=top, minutes=1)
        add_comment(second, "Held back", status=CommentStatus.PENDING)
        return first, second


def change(app, first, second):
    """A new post, a new comment, a deleted comment, an edited post."""
    with app.app_context(), site_request_context(app):
        make_post("After the backup", body="New.", days_ago=1)
        add_comment(second, "Written after the backup")
        db.session.delete(db.session.scalars(select(Comment).where(Comment.post_id == second)).first())
        save_post(db.session.get(Post, first), title="First, edited", body="Edited.", publish=True)
        db.session.commit()


def rows(app):
    with app.app_context():
        return database()


def test_restore_brings_back_every_row(blog, tmp_path):
    first, second = fill(blog)
    before = rows(blog)
    backup = tmp_path / "blog.backup"
    taken = run(blog, "backup", str(backup))
    assert taken.exit_code == 0, taken.output
    assert taken.output.startswith("Backed up ") and backup.stat().st_size > 0

    change(blog, first, second)
    assert rows(blog) != before

    restored = run(blog, "restore", "--yes", str(backup))
    assert restored.exit_code == 0, restored.output
    assert rows(blog) == before
    with blog.app_context(), site_request_context(blog):
        next_post, _ = make_post("Next", body="Gets the id the first post after the backup got.")
        assert next_post == max(first, second) + 1  # the ids go on from where the backup was


def test_restore_asks_first(blog, tmp_path):
    first, second = fill(blog)
    before = rows(blog)
    backup = tmp_path / "blog.backup"
    assert run(blog, "backup", str(backup)).exit_code == 0
    change(blog, first, second)
    changed = rows(blog)

    declined = run(blog, "restore", str(backup), input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert rows(blog) == changed

    accepted = run(blog, "restore", str(backup), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert rows(blog) == before


def test_restore_leaves_no_cached_page_of_the_replaced_blog(blog, tmp_path):
    """Pages cached after the backup show what the restore removes. Restored, the page cache's
    versions would go back and, counting up again, meet those pages' versions: they must not be
    served then."""
    with blog.app_context(), site_request_context(blog):
        post, path = make_post("A post", body="Text.")
    client = blog.test_client()
    backup = tmp_path / "blog.backup"
    assert run(blog, "backup", str(backup)).exit_code == 0

    with blog.app_context(), site_request_context(blog):
        add_comment(post, "Written after the backup")
    assert "Written after the backup" in client.get(path).get_data(as_text=True)  # and now cached

    assert run(blog, "restore", "--yes", str(backup)).exit_code == 0
    with blog.app_context(), site_request_context(blog):
        add_comment(post, "Written after the restore")
    page = client.get(path).get_data(as_text=True)
    assert "Written after the restore" in page
    assert "Written after the backup" not in page


def test_restore_moves_the_page_cache_past_every_version_seen_since_the_backup(blog, tmp_path):
    """After the backup, a change made every page stale (as an import does: rows written in bulk,
    then the ``site`` part bumped), so the site part took the counter's next number. Were the
    restored counter only bumped once more, the site part would get that same number again, and
    the pages cached since would look current."""
    with blog.app_context(), site_request_context(blog):
        post, path = make_post("The title", body="Text.")
    backup = tmp_path / "blog.backup"
    assert run(blog, "backup", str(backup)).exit_code == 0
    with blog.app_context():
        db.session.execute(text("UPDATE post SET title = 'Imported title' WHERE id = :id"), {"id": post})
        pagecache.bump(db.session)
        db.session.commit()
    client = blog.test_client()
    assert "Imported title" in client.get(path).get_data(as_text=True)  # and now cached

    assert run(blog, "restore", "--yes", str(backup)).exit_code == 0
    page = client.get(path).get_data(as_text=True)
    assert "The title" in page and "Imported title" not in page


def test_sqlite_backup_is_consistent_while_the_blog_writes(apps, tmp_path):
    """A thread commits pairs of comments as fast as it can while the backup runs: the copy holds
    whole pairs only, every pair committed before the backup began, and is a sound database."""
    app = apps(f"sqlite:///{tmp_path / 'blog.sqlite'}", create_tables=True)
    with app.app_context(), site_request_context(app):
        post, _ = make_post("Busy", body="Many comments.")
        filler = "x" * 2000  # a database of some megabytes: the copy takes a while
        db.session.add_all(comment(post, f"filler {n} {filler}") for n in range(2000))
        db.session.commit()

    stop, committed = threading.Event(), []
    failures = []

    def write_pairs():
        try:
            with app.app_context():
                n = 0
                while not stop.is_set():
                    db.session.add_all([comment(post, f"pair {n} a"), comment(post, f"pair {n} b")])
                    db.session.commit()
                    committed.append(n)
                    n += 1
        except Exception as exc:  # reported by the test below
            failures.append(exc)

    writer = threading.Thread(target=write_pairs)
    writer.start()
    try:
        while len(committed) < 50:
            time.sleep(0.01)
        before = len(committed)
        backup = tmp_path / "copy.sqlite"
        taken = run(app, "backup", str(backup))
        during = len(committed) - before
        time.sleep(0.1)
    finally:
        stop.set()
        writer.join(10)
    assert not failures and taken.exit_code == 0, (failures, taken.output)
    assert during > 0, "the writer committed nothing while the backup ran"

    with sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal
        texts = [text for (text,) in copy.execute("SELECT content FROM comment WHERE content LIKE 'pair %'")]
    pairs = {}
    for text in texts:
        _, n, side = text.split()
        pairs.setdefault(int(n), set()).add(side)
    assert all(sides == {"a", "b"} for sides in pairs.values())
    assert sorted(pairs) == list(range(len(pairs)))  # no gap: the state at one moment
    assert before <= len(pairs) < len(committed)


def comment(post_id, text):
    return Comment(post_id=post_id, kind=CommentKind.COMMENT.value, status=CommentStatus.APPROVED.value,
                   author_name="Writer", author_email="w@example.org", content=text, content_html=f"<p>{text}</p>",
                   created_at=utcnow() - timedelta(minutes=1))


def test_backup_and_restore_errors_are_one_line(blog, tmp_path):
    fill(blog)
    missing_folder = run(blog, "backup", str(tmp_path / "no such folder" / "blog.backup"))
    assert missing_folder.exit_code == 1
    assert missing_folder.output == f"Error: cannot write {tmp_path / 'no such folder' / 'blog.backup'}: no directory {tmp_path / 'no such folder'}\n"

    nothing = run(blog, "restore", "--yes", str(tmp_path / "absent.backup"))
    assert (nothing.exit_code, nothing.output) == (1, f"Error: no backup at {tmp_path / 'absent.backup'}\n")

    before = rows(blog)
    junk = tmp_path / "junk.backup"
    junk.write_text("not a backup\n" * 100)
    refused = run(blog, "restore", "--yes", str(junk))
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: ") and refused.output.count("\n") == 1
    assert rows(blog) == before  # nothing replaced


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_an_unreachable_database_is_one_line_too(apps, tmp_path, where):
    if where == "sqlite":
        uri = f"sqlite:///{tmp_path / 'no such folder' / 'blog.sqlite'}"
    else:
        if shutil.which("pg_dump") is None:
            pytest.skip("needs pg_dump (Debian: postgresql-client)")
        uri = f"postgresql+psycopg://blog@127.0.0.1:{free_port()}/blog"  # nothing listens there
    app = apps(uri)
    backup = tmp_path / "blog.backup"
    failed = run(app, "backup", str(backup))
    assert failed.exit_code == 1 and failed.output.startswith("Error: ") and failed.output.count("\n") == 1
    assert not backup.exists() and not list(tmp_path.glob(".blog.backup.*"))
    backup.write_bytes(b"anything")
    refused = run(app, "restore", "--yes", str(backup))
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: cannot read the database: ") and refused.output.count("\n") == 1


def test_sqlite_restore_refuses_a_database_that_is_not_a_blog(apps, tmp_path):
    app = apps(f"sqlite:///{tmp_path / 'blog.sqlite'}", create_tables=True)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    refused = run(app, "restore", "--yes", str(other))
    assert (refused.exit_code, refused.output) == (1, f"Error: {other} is not a backup of a blog (it has no post table)\n")


def test_a_missing_pg_dump_names_the_package(apps, tmp_path, monkeypatch):
    app = apps(f"postgresql+psycopg://blog@127.0.0.1:{free_port()}/blog")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run(app, "backup", str(tmp_path / "blog.backup"))
    assert result.exit_code == 1
    assert result.output == ("Error: pg_dump not found: install PostgreSQL's client programs"
                             " (Debian: apt install postgresql-client)\n")


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="needs pg_dump (Debian: postgresql-client)")
def test_the_password_goes_to_pg_dump_by_environment_only(apps, tmp_path, monkeypatch):
    """The real pg_dump, behind a wrapper that writes down its command line and PGPASSWORD."""
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    seen = tmp_path / "seen"
    wrapper = wrappers / "pg_dump"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" "PGPASSWORD=$PGPASSWORD" > {seen}\nexec {shutil.which("pg_dump")} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{wrappers}:{tmp_path / 'empty'}")
    port = free_port()  # nothing listens: pg_dump says so, in one line
    app = apps(f"postgresql+psycopg://blog:s3cret%20pass@127.0.0.1:{port}/blog?sslmode=disable")
    result = run(app, "backup", str(tmp_path / "blog.backup"))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: pg_dump failed (exit 1): pg_dump: error: connection to server at")
    command_line, password = seen.read_text().splitlines()
    assert "s3cret" not in command_line and "s3cret" not in result.output
    assert password == "PGPASSWORD=s3cret pass"
    assert f"host='127.0.0.1' port='{port}' user='blog' dbname='blog' sslmode='disable'" in command_line
    assert "--format=custom" in command_line
    assert not (tmp_path / "blog.backup").exists() and not list(tmp_path.glob(".blog.backup.*"))
