"""Settings come from defaults, then instance/config.py, then BLOGAPP_* variables."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from blogapp import create_app
from blogapp.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def test_order_defaults_instance_file_environment(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('SITE_TITLE = "From the file"\nSITE_URL = "https://file.test/"\nPOSTS_PER_PAGE = 7\n')
    monkeypatch.setenv("BLOGAPP_SITE_URL", "https://env.test")
    monkeypatch.setenv("BLOGAPP_POSTS_PER_PAGE", "3")
    app = create_app(instance_path=str(instance))
    assert app.config["SITE_TITLE"] == "From the file"  # file over default
    assert app.config["SITE_URL"] == "https://env.test"  # environment over file
    assert app.config["POSTS_PER_PAGE"] == 3  # JSON-decoded
    assert app.config["COMMENT_THREAD_DEPTH"] == DEFAULTS["COMMENT_THREAD_DEPTH"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'blog.sqlite'}"


def test_secret_key_is_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("BLOGAPP_SECRET_KEY", raising=False)
    instance = tmp_path / "instance"
    first = create_app(instance_path=str(instance)).config["SECRET_KEY"]
    second = create_app(instance_path=str(instance)).config["SECRET_KEY"]
    assert first == second and len(first) >= 64
    assert (instance / "secret_key").stat().st_mode & 0o077 == 0
    other = create_app(instance_path=str(tmp_path / "elsewhere")).config["SECRET_KEY"]
    assert other != first
    monkeypatch.setenv("BLOGAPP_SECRET_KEY", "configured")
    assert create_app(instance_path=str(instance)).config["SECRET_KEY"] == "configured"


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", readme, re.MULTILINE)}
    assert table >= set(DEFAULTS), f"missing from README: {set(DEFAULTS) - table}"
    for name in DEFAULTS:
        assert f"`BLOGAPP_{name}`" in readme


def test_sqlite_runs_in_wal_mode(app):
    from blogapp.extensions import db

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context(), db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    else:
        with app.app_context():
            assert db.engine.dialect.name == "postgresql"



@pytest.mark.parametrize("config_overrides", [{"PROXY_COUNT": 1, "COMMENT_MODERATION": "approve"},
                                              {"PROXY_COUNT": 0, "COMMENT_MODERATION": "approve"}])
def test_behind_a_proxy_the_client_is_the_address_it_forwards(app, client, ctx, config_overrides):
    """PROXY_COUNT=1: the address the proxy puts in X-Forwarded-For is the client's (a comment's IP),
    for every layer, ProxyFix being the outermost; without a proxy the header is anybody's words."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from blogapp.extensions import db
    from blogapp.models import Comment
    from helpers import make_post

    behind_proxy = bool(config_overrides["PROXY_COUNT"])
    assert isinstance(app.wsgi_app, ProxyFix) == behind_proxy
    post_id, _ = make_post(title="Proxied")
    form = {"author_name": "Pat", "author_email": "pat@example.org", "author_url": "", "content": "Hello",
            "parent_id": "", "homepage": ""}
    answer = client.post(f"/posts/{post_id}/comments", data=form, headers={"X-Forwarded-For": "203.0.113.9"},
                         environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert answer.status_code == 303
    ip = db.session.scalar(db.select(Comment.ip).where(Comment.post_id == post_id))
    assert ip == ("203.0.113.9" if behind_proxy else "10.0.0.2")


@pytest.mark.parametrize("config_overrides", [{"LINKBACK_VERIFY_CPU": 0.05, "LINKBACK_VERIFY_BURST": 0.0}])
def test_the_verification_burst_is_a_setting(app, config_overrides):
    """LINKBACK_VERIFY_BURST: how much verification CPU a process may owe before linkbacks wait."""
    budget = app.extensions["linkback_receiver"].cpu
    assert budget.burst == 0.0 and not budget.exhausted()
    budget.spend(0.01)  # a hundredth of a second owed, none allowed: the next linkback waits
    assert budget.exhausted()


# ------------------------------------------------------------------ settings read in their form


def _env_app(tmp_path, monkeypatch, **variables):
    """An app built as a server builds it: from BLOGAPP_* variables (instance/config.py absent)."""
    for name in [name for name in os.environ if name.startswith("BLOGAPP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BLOGAPP_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("BLOGAPP_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'blog.sqlite'}")
    for name, value in variables.items():
        monkeypatch.setenv(f"BLOGAPP_{name}", value)
    return create_app(instance_path=str(tmp_path / "instance"))


@pytest.mark.parametrize("written, networks", [
    ("127.0.0.2/32", ["127.0.0.2/32"]),  # a bare CIDR: not JSON, so it arrives as text
    ("127.0.0.2/32, 10.1.0.0/16", ["127.0.0.2/32", "10.1.0.0/16"]),
    ('["127.0.0.2/32", "10.1.0.0/16"]', ["127.0.0.2/32", "10.1.0.0/16"]),
    ("", []),
])
def test_the_fetch_allowlist_reads_as_an_operator_writes_it(tmp_path, monkeypatch, written, networks):
    import ipaddress

    from blogapp.linkback.fetch import FetchError

    app = _env_app(tmp_path, monkeypatch, LINKBACK_FETCH_ALLOWLIST=written)
    fetcher = app.extensions["linkback_receiver"].fetcher
    assert list(fetcher.policy.allowlist) == [ipaddress.ip_network(n) for n in networks]
    if "127.0.0.2/32" in networks:
        assert fetcher.check_url("http://127.0.0.2:1234/page")[2] == "127.0.0.2"  # allowlisted: any port
    with pytest.raises(FetchError, match="loopback"):
        fetcher.check_url("http://127.0.0.3/page")  # next door is still refused


def test_an_unreadable_allowlist_stops_the_app_with_one_line(tmp_path, monkeypatch):
    from blogapp.settings_check import SettingsError

    with pytest.raises(SettingsError) as refused:
        _env_app(tmp_path, monkeypatch, LINKBACK_FETCH_ALLOWLIST="127.0.0.2/32, 10.0.0.300/8")
    message = refused.value.format_message()
    assert "\n" not in message
    assert message.startswith("LINKBACK_FETCH_ALLOWLIST='127.0.0.2/32, 10.0.0.300/8' cannot be read")
    assert "'10.0.0.300/8' is not an IP network" in message and "expected CIDRs" in message


@pytest.mark.parametrize("name, written, expected", [
    ("POSTS_PER_PAGE", "ten", "a whole number from 1"),
    ("POSTS_PER_PAGE", "0", "a whole number from 1"),
    ("PAGE_CACHE_TIMEOUT", "2.5", "a whole number"),
    ("PAGE_CACHE", "maybe", "true or false"),
    ("LINKBACK_CONNECT_TIMEOUT", "soon", "a number above 0"),
    ("LINKBACK_CONNECT_TIMEOUT", "0", "a number above 0"),
    ("LINKBACK_FETCH_PORTS", "80, http", "port numbers"),
    ("SITE_URL", "blog.example.com", "an absolute http(s) URL"),
    ("SITE_URL", "https://blog.example.com/?utm_source=x", "an absolute http(s) URL"),
    ("SITE_ALIASES", "https://old.example, old.example", "http(s) base URLs"),
    ("TIMEZONE", "Mars/Olympus", "an IANA time zone"),
    ("COMMENT_RATE_LIMIT", "lots", "rates such as"),
    ("JOBS_BACKEND", "celery", "one of auto, thread, rq"),
    ("REDIS_URL", "127.0.0.1:6379", "redis://host:6379/0"),
    ("SQLALCHEMY_DATABASE_URI", "postgres://blog:hunter2@127.0.0.1/blog", "sqlite:////"),
    ("HSTS_SECONDS", "-1", "a whole number from 0"),
    ("MAIL_PORT", "smtp", "a whole number from 1 to 65535"),
])
def test_an_unreadable_setting_names_itself_its_value_and_the_form_expected(tmp_path, monkeypatch, name, written,
                                                                           expected):
    from blogapp.settings_check import SettingsError

    with pytest.raises(SettingsError) as refused:
        _env_app(tmp_path, monkeypatch, **{name: written})
    [line] = refused.value.problems
    assert line.startswith(f"{name}=") and "cannot be read" in line and f"expected {expected}" in line
    assert "hunter2" not in line  # a password in a URL is never shown
    try:
        as_read = json.loads(written)  # what from_prefixed_env made of it
    except ValueError:
        as_read = written
    if name != "SQLALCHEMY_DATABASE_URI":
        assert f"{name}={as_read!r} " in line
    else:
        assert "postgres://blog:***@127.0.0.1/blog" in line


def test_settings_that_contradict_each_other_stop_the_app(tmp_path, monkeypatch):
    from blogapp.settings_check import SettingsError

    with pytest.raises(SettingsError, match="JOBS_BACKEND='rq' needs REDIS_URL"):
        _env_app(tmp_path, monkeypatch, JOBS_BACKEND="rq")
    with pytest.raises(SettingsError, match="MAIL_USE_TLS and MAIL_USE_SSL are both on"):
        _env_app(tmp_path, monkeypatch, MAIL_USE_TLS="true", MAIL_USE_SSL="yes")


def test_settings_are_put_in_their_form(tmp_path, monkeypatch):
    """What an operator writes in the environment is what the app uses: "False" is false (it was
    a non-empty, so true, text), "10" a number, "80,8080" a list."""
    app = _env_app(tmp_path, monkeypatch, PAGE_CACHE="False", WEBMENTION_ENABLED="off", SELF_PINGS="yes",
                   LINKBACK_FETCH_PORTS="80,8080", SITE_ALIASES="https://old.example/, http://older.example",
                   SITE_TITLE="1984", POSTS_PER_PAGE="7", LINKBACK_VERIFY_BUDGET="3", MAIL_PORT="587")
    config = app.config
    assert config["PAGE_CACHE"] is False and config["WEBMENTION_ENABLED"] is False and config["SELF_PINGS"] is True
    assert config["LINKBACK_FETCH_PORTS"] == [80, 8080]
    assert app.extensions["linkback_receiver"].fetcher.policy.allowed_ports == (80, 8080)
    assert config["SITE_ALIASES"] == ["https://old.example", "http://older.example"]
    assert config["SITE_TITLE"] == "1984" and config["POSTS_PER_PAGE"] == 7
    assert config["LINKBACK_VERIFY_BUDGET"] == 3.0 and config["MAIL_PORT"] == 587


def test_every_setting_has_a_form():
    """A setting added to DEFAULTS is read at startup like the others (blogapp/settings_check.py's
    FORMS), so a value that cannot be read stops the app with its line, never a traceback later."""
    from blogapp.settings_check import FORMS

    assert set(DEFAULTS) - set(FORMS) == {"SECRET_KEY"}  # any text is a key
