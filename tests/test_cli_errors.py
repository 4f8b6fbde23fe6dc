"""Mistakes get one clear line: a command, a worker or gunicorn meeting a database it cannot use,
an unreadable setting or Redis away says so on one line of standard error and exits non-zero.

Run as an operator runs them, each in a process of its own (``flask``, ``gunicorn`` from this
interpreter's environment, BLOGAPP_* variables, a temporary instance folder): only there would a
traceback show.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from blogapp import create_app
from conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NEEDS_POSTGRESQL = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")  # blogapp/logs.py's format: a log record, not output


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(tmp_path, settings: dict) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("BLOGAPP_")}
    env.update(BLOGAPP_INSTANCE_PATH=str(tmp_path / "instance"), BLOGAPP_SECRET_KEY=secrets.token_hex(32),
               BLOGAPP_SITE_URL="https://blog.example", BLOGAPP_JOBS_BACKEND="thread",
               BLOGAPP_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'blog.sqlite'}")
    env.update({f"BLOGAPP_{name}": str(value) for name, value in settings.items()})
    return env


def run(tmp_path, argv: list[str], timeout: float = 90, **settings) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=environment(tmp_path, settings), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def flask(tmp_path, *args: str, **settings) -> subprocess.CompletedProcess:
    return run(tmp_path, [str(BIN / "flask"), "--app", "blogapp", *args], **settings)


def the_error(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command wrote to standard error (its log records aside), checked to be
    one line, and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


def test_a_database_without_tables(tmp_path):
    result = flask(tmp_path, "list-comments", "a-post")
    assert the_error(result) == "the database has no tables yet: run `flask --app blogapp init-db` (no such table: post)"
    assert result.stderr.count("\n") == 1  # nothing else at all


def test_a_database_not_up_to_date(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'blog.sqlite'}"},
                     instance_path=str(tmp_path / "instance"))
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    from blogapp.extensions import db
    from blogapp.templating import site_request_context
    from helpers import make_post

    with app.app_context(), site_request_context(app):
        make_post(title="A post")
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE comment")  # as if the code were newer than the schema
        db.session.remove()
        db.engine.dispose()
    assert the_error(flask(tmp_path, "list-comments", "a-post")) == (
        "the database is not up to date: run `flask --app blogapp init-db` (no such table: comment)")


def test_a_sqlite_file_that_cannot_be_opened(tmp_path):
    path = tmp_path / "no-such-folder" / "blog.sqlite"
    message = the_error(flask(tmp_path, "list-comments", "a-post", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}"))
    assert message.startswith(f"cannot open the SQLite database {path}: does its folder exist")


def test_postgresql_down(tmp_path):
    port = closed_port()
    message = the_error(flask(tmp_path, "set-discussion", "a-post", "--comments", "closed",
                              SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://blog@127.0.0.1:{port}/blog"))
    assert message.startswith(f"cannot connect to the PostgreSQL server at 127.0.0.1:{port}: is it running, and is "
                              "SQLALCHEMY_DATABASE_URI right? (")
    assert "Connection refused" in message  # the original error's own words


@NEEDS_POSTGRESQL
@pytest.mark.parametrize("part", ["database", "role"])
def test_postgresql_without_the_database_or_the_role(tmp_path, part):
    url = make_url(TEST_DATABASE_URL)
    name = f"blogapp_no_{part}_{secrets.token_hex(4)}"
    wrong = url.set(database=name) if part == "database" else url.set(username=name, password=None)
    message = the_error(flask(tmp_path, "list-comments", "a-post",
                              SQLALCHEMY_DATABASE_URI=wrong.render_as_string(hide_password=False)))
    assert message.startswith(f'the {part} "{name}" does not exist on the PostgreSQL server at '
                              f"{url.host}:{url.port or 5432}: create it")
    assert message.endswith(f'{part} "{name}" does not exist)')


def test_an_unreadable_setting_stops_the_worker(tmp_path):
    message = the_error(flask(tmp_path, "worker", "--burst", LINKBACK_FETCH_ALLOWLIST="10.0.0.300/8"))
    assert message == ("LINKBACK_FETCH_ALLOWLIST='10.0.0.300/8' cannot be read ('10.0.0.300/8' is not an IP network "
                       "in CIDR form): expected CIDRs such as 10.0.0.0/8, comma-separated or as a JSON list")


def test_an_unreadable_setting_stops_the_check_too(tmp_path):
    message = the_error(flask(tmp_path, "check", POSTS_PER_PAGE="ten"))
    assert message.startswith("POSTS_PER_PAGE='ten' cannot be read (not a whole number)")


def test_check_counts_its_findings_and_fails_on_an_error(tmp_path):
    result = flask(tmp_path, "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [
        f"error: the SQLite database {tmp_path / 'blog.sqlite'} does not exist yet: run `flask --app blogapp init-db`",
        "1 error, 0 warnings."]


def test_an_unreadable_setting_stops_gunicorn_with_one_line(tmp_path):
    """gunicorn prints the line, once, and stops ("App failed to load"): no traceback, and no
    workers booted again and again."""
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{closed_port()}", "--workers", "1",
            "--no-control-socket"]
    result = run(tmp_path, argv, timeout=60, POSTS_PER_PAGE="ten")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("POSTS_PER_PAGE='ten' cannot be read (not a whole number): expected a whole number "
                               "from 1 up") == 1, result.stderr
    assert "App failed to load" in result.stderr


def test_linkbacks_that_could_not_be_queued_are_not_said_queued(tmp_path):
    """Redis away: the post is published (its permalink still the last line of output), and the
    command says its linkbacks could not be queued, and exits 1."""
    port = closed_port()
    redis = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "JOBS_BACKEND": "rq"}
    assert flask(tmp_path, "init-db", **redis).returncode == 0
    result = flask(tmp_path, "create-post", "--title", "Linking", "--body", "See [a page](http://127.0.0.1:9/page).",
                   **redis)
    message = the_error(result)
    assert message.startswith("the post's linkbacks could not be queued for the worker (")
    assert f"127.0.0.1:{port}" in message and message.endswith("`flask --app blogapp send-pings linking`")
    assert "queued for the worker." not in result.stdout
    assert result.stdout.splitlines()[-1].endswith("/linking/")
