"""Settings come from defaults, then instance/config.py, then BLOGAPP_* variables."""
from __future__ import annotations

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
