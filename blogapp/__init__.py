"""blogapp: a Flask blog engine whose comment threads speak the web's linkback protocols."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .config import DEFAULTS, load_secret_key
from .settings_check import read_settings
from .extensions import csrf, db, limiter, login_manager, migrate
from . import search
from .pagecache.store import REDIS_TIMEOUTS
from .validation import MAX_ID

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` in every route, capped at what an integer column holds.

    A larger number cannot name anything, so it is a 404 at routing, never an overflow
    deep in a database driver.
    """

    # ASCII digits only: Werkzeug's \d also takes other scripts' digits ("١٢"), which int() reads.
    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the application: settings, extensions, blueprints, CLI.

    ``test_config`` replaces ``instance/config.py`` and the environment, so tests see
    only what they set.
    """
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("BLOGAPP_INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("BLOGAPP")
    else:
        app.config.from_mapping(test_config)
    read_settings(app.config)  # each setting in its form, or SettingsError: one line per unreadable one
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(Path(app.instance_path) / "blog.sqlite")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = load_secret_key(app.instance_path)
    app.config["SITE_URL"] = str(app.config["SITE_URL"]).rstrip("/")
    # Login cookies: out of scripts' reach, not sent with another site's POST, and on https never over http.
    secure = app.config["SITE_URL"].startswith("https://")
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
                      REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=secure)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://", "unix://")):
        # Redis away: limits are counted in each process meanwhile (Flask-Limiter asks it again),
        # and a Redis that does not answer at once is not waited for.
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {**REDIS_TIMEOUTS, **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})}
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True,
                     include_name=search.not_the_index)
    csrf.init_app(app)
    # Flask-Limiter's Limiter is one object for every app in the process (tests make many): each
    # app's default and application-wide limits are its own settings' (ours are all settings),
    # not those an earlier app set, and it starts with its own storage taken as alive, not on the
    # fallback an earlier app's Redis outage left it on.
    limiter.limit_manager.set_default_limits([])
    limiter.limit_manager.set_application_limits([])
    limiter.init_app(app)
    limiter._storage_dead = False
    login_manager.init_app(app)

    from . import admin, backup, blog, cli, edge, endpoints, errors, health, jobs, logs, notify, pagecache, templating

    jobs.init_app(app)
    pagecache.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    app.register_blueprint(blog.bp)
    endpoints.init_app(app)
    app.register_blueprint(admin.bp, url_prefix="/admin")
    notify.init_app(app)  # mail notifications: their job tasks, the confirmation and unsubscribe pages
    cli.init_app(app)
    health.init_app(app)
    backup.init_app(app)

    app.wsgi_app = jobs.StartOnFirstRequest(app, app.wsgi_app)
    edge.install(app)  # around every layer that answers: HSTS on all responses, hosts not ours noted
    if app.config["PROXY_COUNT"]:
        # Outermost: every layer below (the page cache's fast path included) sees the client's
        # address and scheme, as the proxies in front say them.
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    if not app.debug and not app.testing:
        logs.configure()
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL lets readers proceed while a comment is written; foreign keys are off by default."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints, not at every commit: a crash of the process loses
    # nothing, a power cut may lose the last commits (never the file's consistency). Every pingback
    # writes three times; a flood of them must not queue readers behind disk flushes.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
