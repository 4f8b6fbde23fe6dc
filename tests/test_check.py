"""``flask --app blogapp check``: one line per problem, then the count; exit 1 on any error.

Real parts: SQLite files, Redis and PostgreSQL on 127.0.0.1 (the PostgreSQL server's own answers
about missing roles and databases only where TEST_DATABASE_URL is set), a closed loopback port for
a server that is down, and a socket that listens but never answers for one that hangs.
"""
from __future__ import annotations

import secrets
import socket
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from blogapp import create_app
from blogapp.extensions import db
from conftest import TEST_DATABASE_URL, TEST_REDIS_URL

NEEDS_POSTGRESQL = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")
NEEDS_REDIS = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis: set TEST_REDIS_URL")
INIT_DB = "run `flask --app blogapp init-db`"
FIRST_REVISION = "1f2bb5d83cbe"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_app(tmp_path, **settings):
    config = {"TESTING": True, "SECRET_KEY": "k" * 40, "SITE_URL": "https://blog.example",
              "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'blog.sqlite'}", **settings}
    return create_app(config, instance_path=str(tmp_path / "instance"))


def run_check(app) -> tuple[int, list[str]]:
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output.splitlines()


def init_db(app) -> None:
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output


def test_a_blog_ready_to_serve_has_no_problems(tmp_path):
    app = check_app(tmp_path)
    init_db(app)
    assert run_check(app) == (0, ["No problems found."])


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path):
    app = check_app(tmp_path)
    path = tmp_path / "blog.sqlite"
    assert run_check(app) == (1, [f"error: the SQLite database {path} does not exist yet: {INIT_DB}",
                                  "1 error, 0 warnings."])
    assert not path.exists()


def test_a_database_without_tables(tmp_path):
    (tmp_path / "blog.sqlite").touch()
    assert run_check(check_app(tmp_path)) == (1, [f"error: the database has no tables yet: {INIT_DB}",
                                                  "1 error, 0 warnings."])


def test_migrations_behind_ahead_or_unrecorded(tmp_path):
    app = check_app(tmp_path)
    init_db(app)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "stamp", FIRST_REVISION]).exit_code == 0
    code, lines = run_check(app)
    assert code == 1 and lines[0].startswith(f"error: the database is at revision {FIRST_REVISION}, the code's newest is ")
    assert lines[0].endswith(INIT_DB)

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedf00d'"))
    code, lines = run_check(app)
    assert code == 1 and "at revision f00dfeedf00d, which this code does not know" in lines[0]

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    code, lines = run_check(app)
    assert code == 1 and "the blog's tables but no migration revision" in lines[0]


def test_warnings_alone_exit_zero(tmp_path):
    """A key generated into the instance folder, a loopback SITE_URL, HSTS asked for over http:
    the blog works, but not as production wants it."""
    app = check_app(tmp_path, SECRET_KEY=None, SITE_URL="http://127.0.0.1:5000", HSTS_SECONDS=60)
    init_db(app)
    code, lines = run_check(app)
    assert code == 0 and lines[-1] == "0 errors, 3 warnings."
    assert lines[0].startswith(f"warning: SECRET_KEY was generated into {tmp_path / 'instance' / 'secret_key'}: ")
    assert lines[1].startswith("warning: SITE_URL is http://127.0.0.1:5000, on this machine only")
    assert lines[2].startswith("warning: HSTS_SECONDS is set but SITE_URL is not https")


def test_a_short_secret_key_is_a_warning(tmp_path):
    app = check_app(tmp_path, SECRET_KEY="changeme")
    init_db(app)
    assert run_check(app)[1][0].startswith("warning: SECRET_KEY has 8 characters")


def test_a_misspelt_setting_in_the_environment_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOGAPP_POSTS_PER_PGE", "5")
    app = check_app(tmp_path)
    init_db(app)
    code, lines = run_check(app)
    assert code == 0 and lines[0] == ("warning: BLOGAPP_POSTS_PER_PGE is not a setting, so it is ignored: "
                                      "did you mean BLOGAPP_POSTS_PER_PAGE?")


def test_check_reads_the_settings_as_startup_does(tmp_path):
    """The same reader: a value that would stop create_app is an error line of the check."""
    from blogapp.settings_check import SettingsError

    with pytest.raises(SettingsError) as at_start:
        check_app(tmp_path, LINKBACK_FETCH_ALLOWLIST="10.0.0.300/8")
    app = check_app(tmp_path)
    init_db(app)
    app.config["LINKBACK_FETCH_ALLOWLIST"] = "10.0.0.300/8"  # changed after the start
    assert run_check(app) == (1, [f"error: {at_start.value.problems[0]}", "1 error, 0 warnings."])


def test_an_allowlist_of_everything_is_a_warning(tmp_path):
    app = check_app(tmp_path, LINKBACK_FETCH_ALLOWLIST="0.0.0.0/0")
    init_db(app)
    assert run_check(app)[1][0].startswith("warning: LINKBACK_FETCH_ALLOWLIST has 0.0.0.0/0")


def test_redis_down_is_an_error(tmp_path):
    port = closed_port()
    app = check_app(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    init_db(app)
    code, lines = run_check(app)
    assert code == 1 and lines[0].startswith(f"error: cannot reach Redis at redis://127.0.0.1:{port}/0: is it running")


@NEEDS_REDIS
def test_redis_up_is_no_problem(tmp_path):
    app = check_app(tmp_path, REDIS_URL=TEST_REDIS_URL, JOBS_QUEUE=f"blogapp-check-{secrets.token_hex(4)}")
    init_db(app)
    assert run_check(app) == (0, ["No problems found."])


def test_a_hung_server_does_not_hold_the_check(tmp_path):
    """A server that takes the connection and never answers: each check gives up on its own
    timeout (a few seconds), and says so."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        app = check_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://blog@127.0.0.1:{port}/blog",
                        REDIS_URL=f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        code, lines = run_check(app)
        took = time.monotonic() - started
    assert code == 1 and lines[-1] == "2 errors, 0 warnings."
    assert lines[0].startswith(f"error: cannot connect to the PostgreSQL server at 127.0.0.1:{port}: ")
    assert lines[0].endswith("(connection timeout expired)")
    assert lines[1].startswith(f"error: cannot reach Redis at redis://127.0.0.1:{port}/0")
    assert took < 20


def test_postgresql_down_is_an_error(tmp_path):
    port = closed_port()
    app = check_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://blog@127.0.0.1:{port}/blog")
    code, lines = run_check(app)
    assert code == 1 and lines[0].startswith(f"error: cannot connect to the PostgreSQL server at 127.0.0.1:{port}: "
                                             "is it running, and is SQLALCHEMY_DATABASE_URI right? (")


@NEEDS_POSTGRESQL
def test_postgresql_without_the_database_or_the_role(tmp_path):
    url = make_url(TEST_DATABASE_URL)
    place = f"{url.host}:{url.port or 5432}"
    missing = f"blogapp_no_db_{secrets.token_hex(4)}"
    no_database = url.set(database=missing).render_as_string(hide_password=False)
    code, lines = run_check(check_app(tmp_path, SQLALCHEMY_DATABASE_URI=no_database))
    assert code == 1 and lines[0].startswith(
        f'error: the database "{missing}" does not exist on the PostgreSQL server at {place}: create it')

    nobody = f"blogapp_no_role_{secrets.token_hex(4)}"
    no_role = url.set(username=nobody, password=None).render_as_string(hide_password=False)
    code, lines = run_check(check_app(tmp_path, SQLALCHEMY_DATABASE_URI=no_role))
    assert code == 1 and lines[0].startswith(
        f'error: the role "{nobody}" does not exist on the PostgreSQL server at {place}: create it')


@NEEDS_POSTGRESQL
def test_postgresql_migrations_are_read_in_the_blogs_schema(tmp_path):
    """The check connects as the app does (its search_path here), so it reads that schema's revision."""
    schema = f"blogapp_check_{secrets.token_hex(4)}"
    admin = create_engine(TEST_DATABASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        options = {"connect_args": {"options": f"-csearch_path={schema}"}}
        app = check_app(tmp_path, SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL, SQLALCHEMY_ENGINE_OPTIONS=options)
        assert run_check(app)[1][0] == f"error: the database has no tables yet: {INIT_DB}"
        init_db(app)
        assert run_check(app) == (0, ["No problems found."])
        assert app.test_cli_runner().invoke(args=["db", "stamp", FIRST_REVISION]).exit_code == 0
        assert "the code's newest is" in run_check(app)[1][0]
        with app.app_context():
            db.engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
