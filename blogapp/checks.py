"""``flask --app blogapp check``: is this configuration ready to serve? One line per problem.

Each check is cheap and bounded: a server that is down answers "refused" or runs out of a
connect timeout of a few seconds, it never holds the check. An error means the blog cannot
work as configured; a warning, that it works but not as production wants it.
"""
from __future__ import annotations

import difflib
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from .config import DEFAULTS, SECRET_KEY_FILE
from .linkback.fetch import parse_allowlist
from .service_errors import INIT_DB, explain_database, explain_redis, summary
from .settings_check import FORMS, masked, setting_problems

CONNECT_TIMEOUT = 4  # seconds, for the database and Redis
ENV_PREFIX = "BLOGAPP_"


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.message}"


def error(message: str) -> Finding:
    return Finding("error", message)


def warning(message: str) -> Finding:
    return Finding("warning", message)


def settings(app: Flask) -> list[Finding]:
    """Every setting in its form, the mail settings' too when there are any (create_app refused to
    start otherwise: this repeats it for a config changed since), and names in the environment that
    look like a setting misspelt."""
    findings = [error(line) for line in setting_problems(app.config)]
    known = set(DEFAULTS) | set(FORMS) | set(app.default_config) | {"INSTANCE_PATH"}
    for variable in sorted(os.environ):
        name = variable.removeprefix(ENV_PREFIX)
        if variable.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(DEFAULTS), n=1, cutoff=0.8)
            if close:
                findings.append(warning(f"{variable} is not a setting, so it is ignored: "
                                        f"did you mean {ENV_PREFIX}{close[0]}?"))
    return findings


def secret_key(app: Flask) -> list[Finding]:
    key, stored = str(app.config["SECRET_KEY"]), Path(app.instance_path) / SECRET_KEY_FILE
    try:
        generated = stored.read_text().strip() == key
    except OSError:
        generated = False
    if generated:
        return [warning(f"SECRET_KEY was generated into {stored}: in production set BLOGAPP_SECRET_KEY, the same "
                        "for every process (python3 -c 'import secrets; print(secrets.token_hex(32))')")]
    if len(key) < 32:
        return [warning(f"SECRET_KEY has {len(key)} characters: anyone who guesses it can sign in as an admin; "
                        "use 32 or more random ones")]
    return []


def site_url(app: Flask) -> list[Finding]:
    config = app.config
    findings = []
    host = urlsplit(config["SITE_URL"]).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        findings.append(warning(f"SITE_URL is {config['SITE_URL']}, on this machine only: permalinks, feeds and "
                                "linkbacks name it; set BLOGAPP_SITE_URL to the public address"))
    if isinstance(config["HSTS_SECONDS"], int) and config["HSTS_SECONDS"] > 0 \
            and not config["SITE_URL"].startswith("https://"):
        findings.append(warning("HSTS_SECONDS is set but SITE_URL is not https: no Strict-Transport-Security "
                                "header is sent"))
    return findings


def fetch_allowlist(app: Flask) -> list[Finding]:
    findings = []
    try:
        networks = parse_allowlist(app.config["LINKBACK_FETCH_ALLOWLIST"])
    except ValueError:
        return []  # the settings' check says what is wrong with it
    for network in networks:
        if network.prefixlen == 0:
            findings.append(warning(f"LINKBACK_FETCH_ALLOWLIST has {network}: strangers' linkbacks can make this "
                                    "server fetch any address, its own and its network's included"))
    return findings


def _database_engine(app: Flask):
    """An engine of its own for the check: no pool, a connect timeout."""
    from .extensions import db

    url = db.engine.url  # Flask-SQLAlchemy's, with a relative SQLite path made absolute
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    connect_args = dict(options.get("connect_args") or {})
    if url.get_backend_name() == "postgresql":
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    elif url.get_backend_name() == "sqlite":
        connect_args.setdefault("timeout", CONNECT_TIMEOUT)
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def database(app: Flask) -> list[Finding]:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .extensions import db

    engine = _database_engine(app)
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:") and not Path(url.database).exists():
        return [error(f"the SQLite database {url.database} does not exist yet: {INIT_DB}")]
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    heads = set(script.get_heads())
    # Alembic's notes on each context ("Context impl ...") are not findings.
    alembic_log = logging.getLogger("alembic.runtime.migration")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:
        return [error(explain_database(exc, url) or f"the database could not be checked: {summary(exc)}")]
    finally:
        alembic_log.setLevel(level)
        engine.dispose()
    if not current:
        if not tables & set(db.metadata.tables):
            return [error(f"the database has no tables yet: {INIT_DB}")]
        return [error("the database has the blog's tables but no migration revision (alembic_version): if its "
                      "schema is the newest, record that with `flask --app blogapp db stamp head`")]
    if current == heads:
        return []
    unknown = sorted(revision for revision in current if not _known(script, revision))
    if unknown:
        return [error(f"the database is at revision {', '.join(unknown)}, which this code does not know (a newer "
                      "release migrated it?): run that release, or restore the database")]
    return [error(f"the database is at revision {', '.join(sorted(current))}, the code's newest is "
                  f"{', '.join(sorted(heads))}: {INIT_DB}")]


def _known(script, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for a revision it has no file for
        return False


def redis_server(app: Flask) -> list[Finding]:
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        return []
    try:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        return [error("REDIS_URL is set but the redis package is not installed: pip install -e '.[redis]'")]
    client = Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT,
                            retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
    except Exception as exc:
        return [error(explain_redis(exc, redis_url) or f"Redis at {masked(redis_url)} failed: {summary(exc)}")]
    finally:
        client.close()
    return []


CHECKS = (settings, secret_key, site_url, fetch_allowlist, database, redis_server)


def run_checks(app: Flask) -> list[Finding]:
    """Every check's findings, in the order of CHECKS; needs an app context."""
    return [finding for check in CHECKS for finding in check(app)]


def count_line(findings: list[Finding]) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    if not findings:
        return "No problems found."
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}."
