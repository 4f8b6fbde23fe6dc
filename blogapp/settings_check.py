"""Every setting read in its form, once, at startup: numbers, switches, lists, CIDRs, URLs.

``read_settings(config)`` puts each value in ``config`` in its form and raises ``SettingsError``
naming every setting it cannot read, one line each: the setting, its value and the form expected.
An environment value that is not JSON arrives as text (``from_prefixed_env``), so text is read as
an operator writes it: ``127.0.0.2/32, 10.1.0.0/16`` is a list, ``off`` and ``False`` are false.
``create_app`` calls it before anything uses a setting, so an unreadable one stops every process
(gunicorn's workers, ``flask worker``, each command) with those lines, never a traceback or a
worker that runs on a guess. ``flask check`` shows the same lines (blogapp/checks.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from .linkback.fetch import parse_allowlist

try:
    # gunicorn's own error for an app that cannot load: its worker prints the message alone and the
    # server stops ("App failed to load"), instead of a traceback and workers booted again and again.
    from gunicorn.errors import AppImportError as _AppCannotLoad
except ImportError:  # gunicorn is in the "prod" extra only
    class _AppCannotLoad(Exception):
        pass


class SettingsError(click.ClickException, _AppCannotLoad):
    """Settings that cannot be read, one line each. Every ``flask`` command prints it as
    ``Error: ...`` and exits 1 (click); gunicorn prints it and stops (see above)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Unreadable(ValueError):
    """A value not in its setting's form; the message says what was wrong with it."""


TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Form:
    expected: str  # what to write instead, in words
    read: Callable[[Any], Any]  # the value in its form, or Unreadable
    secret: bool = False  # a URL that may hold a password: shown with the password masked


def _whole(value, minimum: int, maximum: int | None) -> int:
    if isinstance(value, bool):
        raise Unreadable("a switch, not a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9][0-9_]*\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise Unreadable("not a whole number")
    if value < minimum or (maximum is not None and value > maximum):
        raise Unreadable("out of range")
    return value


def whole(minimum: int = 0, maximum: int | None = None) -> Form:
    words = f"a whole number from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
    return Form(words, lambda value: _whole(value, minimum, maximum))


def _number(value, minimum: float, above: bool) -> float:
    if isinstance(value, bool):
        raise Unreadable("a switch, not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Unreadable("not a number") from None
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise Unreadable("not a number")
    if value < minimum or (above and value == minimum):
        raise Unreadable("out of range")
    return float(value)


def number(minimum: float = 0.0, above: bool = False) -> Form:
    words = f"a number {'above' if above else 'from'} {minimum:g}" + ("" if above else " up")
    return Form(words, lambda value: _number(value, minimum, above))


def _switch(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise Unreadable("not a switch")


SWITCH = Form("true or false (also yes/no, on/off, 1/0)", _switch)


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # BLOGAPP_SITE_TITLE=1984 is JSON for a number
    raise Unreadable("not text")


TEXT = Form("text", _text)


def choice(*options: str) -> Form:
    def read(value):
        if isinstance(value, str) and value.strip().lower() in options:
            return value.strip().lower()
        raise Unreadable("not one of the choices")

    return Form("one of " + ", ".join(options), read)


def _rate_limits(value) -> str:
    from limits import parse_many

    if not isinstance(value, str) or not value.strip():
        raise Unreadable("not a rate")
    try:
        parse_many(value)
    except ValueError:
        raise Unreadable("not a rate") from None
    return value


RATES = Form('rates such as "5 per minute;30 per hour"', _rate_limits)


def _zone(value) -> str:
    if not isinstance(value, str):
        raise Unreadable("not a time zone name")
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise Unreadable("no such time zone") from None
    return value.strip()


ZONE = Form('an IANA time zone such as "UTC" or "Europe/Paris"', _zone)


def _items(value) -> list:
    """A list as written: a JSON list, or text of comma-separated items (one item alone too)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [value]


def _keys(value) -> list[str]:
    """Spam keys: a JSON list of text (a key may hold a comma); nothing, an empty list."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if not isinstance(value, (list, tuple)):
        raise Unreadable("not a JSON list")
    keys = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise Unreadable(f"{item!r} is not text")
        if str(item).strip():
            keys.append(str(item).strip())
    return keys


KEYS = Form('a JSON list of words, names, URLs, emails or IPs, such as ["casino", "203.0.113.7"]', _keys)


def url_problem(value, *, base: bool) -> str | None:
    """Why ``value`` is not an absolute http(s) URL, or None. A ``base`` URL (SITE_URL, an alias)
    may have a path below which the site lives, and nothing else: no query, fragment or login."""
    if not isinstance(value, str) or not value.strip():
        return "not a URL"
    if value != value.strip() or any(c.isspace() for c in value):
        return "it contains spaces"
    try:
        parts = urlsplit(value)
        parts.port  # a port that is not a number from 0 to 65535 raises
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    if base:
        if parts.username is not None or parts.password is not None:
            return "it has a user name or password"
        if parts.query or parts.fragment or "?" in value or "#" in value:
            return "it has a query or fragment (?...#...)"
        if ";" in parts.path or "//" in parts.path:
            return "its path is not a plain folder"
    return None


def _base_url(value) -> str:
    problem = url_problem(value, base=True)
    if problem:
        raise Unreadable(problem)
    return value.rstrip("/")


SITE = Form('an absolute http(s) URL such as "https://blog.example.com" (a path below it at most)', _base_url)


def _base_urls(value) -> list[str]:
    urls = []
    for item in _items(value):
        problem = url_problem(item, base=True)
        if problem:
            raise Unreadable(f"{item!r}: {problem}")
        urls.append(item.rstrip("/"))
    return urls


ALIASES = Form("http(s) base URLs, comma-separated or as a JSON list", _base_urls)


def _ports(value) -> list[int]:
    ports = []
    for item in _items(value):
        try:
            ports.append(_whole(item, 1, 65535))
        except Unreadable:
            raise Unreadable(f"{item!r} is not a port") from None
    if not ports:
        raise Unreadable("no port")
    return ports


PORTS = Form("port numbers (1 to 65535), comma-separated or as a JSON list", _ports)


def _allowlist(value) -> list[str]:
    try:
        return [str(network) for network in parse_allowlist(value)]
    except ValueError as exc:
        raise Unreadable(str(exc)) from None


ALLOWLIST = Form("CIDRs such as 10.0.0.0/8, comma-separated or as a JSON list", _allowlist)


def optional(form: Form) -> Form:
    """The form, or nothing: None or empty text (``BLOGAPP_REDIS_URL=``) means not set."""
    def read(value):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return form.read(value)

    return Form(form.expected + ", or nothing", read, form.secret)


def _database_url(value) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if not isinstance(value, str):
        raise Unreadable("not a URL")
    try:
        url = make_url(value)
    except ArgumentError:
        raise Unreadable("not a database URL") from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise Unreadable(f"{url.drivername}:// is no database SQLAlchemy knows") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise Unreadable(f"its driver is not installed ({exc.name or exc})") from None
    return value


DATABASE_URL = Form("sqlite:////path/to/blog.sqlite or postgresql+psycopg://user@host:5432/database",
                    _database_url, secret=True)


def _redis_url(value) -> str:
    if not isinstance(value, str):
        raise Unreadable("not a URL")
    try:
        parts = urlsplit(value.strip())
        parts.port
    except ValueError:
        raise Unreadable("not a URL") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise Unreadable("it does not start with redis://, rediss:// or unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise Unreadable("it names no host")
    return value.strip()


REDIS = Form("redis://host:6379/0 (rediss:// with TLS, unix:///path.sock)", _redis_url, secret=True)


def _host_name(value) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() or c in "/:@" for c in value.strip()):
        raise Unreadable("not a host name")
    return value.strip()


def _queue_name(value) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]+", value.strip()):
        raise Unreadable("not a queue name")
    return value.strip()


def _mailbox(value, *, named: bool) -> str:
    """An address (``named``: or "Name <address>"), on one line."""
    from email.utils import parseaddr

    if not isinstance(value, str) or not value.strip():
        raise Unreadable("not an email address")
    if "\r" in value or "\n" in value:
        raise Unreadable("it spans lines")
    name, address = parseaddr(value.strip())
    if (name and not named) or address.count("@") != 1 or any(c.isspace() for c in address) \
            or not all(address.split("@")):
        raise Unreadable("not an email address")
    return value.strip()


MAIL_ADDRESS = Form("an email address such as admin@example.com", lambda value: _mailbox(value, named=False))
MAILBOX = Form('an email address, or "Name <address>"', lambda value: _mailbox(value, named=True))




# Shown as *** when it cannot be read (see shown()).
PASSWORD = Form("text", _text, secret=True)


FORMS: dict[str, Form] = {
    "SQLALCHEMY_DATABASE_URI": optional(DATABASE_URL),
    "SITE_URL": SITE,
    "SITE_TITLE": TEXT,
    "SITE_DESCRIPTION": TEXT,
    "TIMEZONE": ZONE,
    "POSTS_PER_PAGE": whole(1),
    "FEED_SIZE": whole(1),
    "COMMENT_MODERATION": choice("hold-all", "hold-new", "approve"),
    "COMMENT_THREAD_DEPTH": whole(1),
    "CLOSE_COMMENTS_AFTER_DAYS": whole(0),
    "EMPTY_TRASH_DAYS": whole(0),
    "COMMENT_MAX_LINKS": whole(0),
    "COMMENT_MODERATION_KEYS": KEYS,
    "COMMENT_DISALLOWED_KEYS": KEYS,
    "COMMENT_RATE_LIMIT": RATES,
    "LOGIN_RATE_LIMIT": RATES,
    "REDIS_URL": optional(REDIS),
    "PAGE_CACHE": SWITCH,
    "PAGE_CACHE_TIMEOUT": whole(0),
    "PAGE_CACHE_LISTEN": SWITCH,
    "PROXY_COUNT": whole(0),
    "SITE_ALIASES": ALIASES,
    "SITE_WWW_EQUIVALENT": SWITCH,
    "HSTS_SECONDS": whole(0),
    "LINKBACK_MODERATION": choice("approve", "hold", "hold-new-sources"),
    "PINGBACK_MASK_FAULTS": SWITCH,
    "TRACKBACK_VERIFY": SWITCH,
    "LINKBACK_VERIFY_BUDGET": number(0),
    "LINKBACK_MAX_IN_FLIGHT": whole(1),
    "LINKBACK_VERIFY_CPU": number(0),
    "LINKBACK_VERIFY_BURST": number(0),
    "LINKBACK_BODY_LIMIT": whole(1),
    "LINKBACK_RATE_LIMIT": RATES,
    "LINKBACK_SOURCE_RATE_LIMIT": RATES,
    "LINKBACK_PENDING_PER_HOST": whole(0),
    "LINKBACK_PENDING_PER_IP": whole(0),
    "LINKBACK_PENDING_TOTAL": whole(0),
    "WEBMENTION_ENABLED": SWITCH,
    "SEND_LINKBACKS": SWITCH,
    "SELF_PINGS": SWITCH,
    "LINKBACK_FETCH_TIMEOUT": number(0, above=True),
    "LINKBACK_CONNECT_TIMEOUT": number(0, above=True),
    "LINKBACK_READ_TIMEOUT": number(0, above=True),
    "LINKBACK_FETCH_MAX_BYTES": whole(1),
    "LINKBACK_FETCH_MAX_REDIRECTS": whole(0),
    "LINKBACK_FETCH_PORTS": PORTS,
    "LINKBACK_FETCH_ALLOWLIST": ALLOWLIST,
    "JOBS_BACKEND": choice("auto", "thread", "rq"),
    "JOBS_QUEUE": Form("a queue name (letters, digits, - _ . :)", _queue_name),
    "JOBS_MAX_ATTEMPTS": whole(1),
    "JOBS_BACKOFF_BASE": number(0),
    "JOBS_BACKOFF_MAX": number(0),
    "JOBS_LEASE_SECONDS": number(0, above=True),
    "JOBS_SWEEP_SECONDS": number(0, above=True),
    "JOBS_REDIS_TIMEOUT": number(0, above=True),
    "JOBS_SCHEDULER_INTERVAL": number(0, above=True),
    "JOBS_SCHEDULER_LOCK_SECONDS": number(0, above=True),
    "MAX_CONTENT_LENGTH": whole(1),
    "WXR_UPLOAD_MAX_BYTES": whole(1),
    # Mail and notifications (blogapp/notify/).
    "MAIL_SERVER": optional(Form("a host name such as smtp.example.com", _host_name)),
    "MAIL_PORT": optional(whole(1, 65535)),
    "MAIL_USE_TLS": SWITCH,
    "MAIL_USE_SSL": SWITCH,
    "MAIL_USERNAME": optional(TEXT),
    "MAIL_PASSWORD": optional(PASSWORD),
    "MAIL_DEFAULT_SENDER": optional(MAILBOX),
    "NOTIFY_EMAIL": optional(MAIL_ADDRESS),
    "NOTIFY_HELD": SWITCH,
    "NOTIFY_PUBLISHED": SWITCH,
}


def masked(text: str) -> str:
    """A URL with its password, if any, as ***."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", text)


def shown(value, secret: bool = False) -> str:
    if secret and not isinstance(value, str):
        return "'***'"  # (a password of the wrong type: not shown either)
    text = repr(masked(value) if secret and isinstance(value, str) else value)
    return text if len(text) <= 100 else text[:97] + "..."


def problem_line(name: str, value, form: Form, reason: str) -> str:
    """The one line for an unreadable setting: what it is, what it holds, what to write."""
    return f"{name}={shown(value, form.secret)} cannot be read ({reason}): expected {form.expected}"


def read_settings(config) -> None:
    """Put every setting of ``config`` that has a form in that form; raise ``SettingsError`` with a
    line per setting that cannot be read (and per pair of settings that contradict each other)."""
    problems = _read(config)
    if problems:
        raise SettingsError(problems)


def setting_problems(config) -> list[str]:
    """The lines ``read_settings`` would raise, leaving ``config`` as it is."""
    return _read({name: config[name] for name in FORMS if name in config})


def _read(config) -> list[str]:
    problems = []
    for name, form in FORMS.items():
        if name not in config:
            continue
        try:
            config[name] = form.read(config[name])
        except Unreadable as exc:
            problems.append(problem_line(name, config[name], form, str(exc)))
    return problems or contradictions(config)


def contradictions(config) -> list[str]:
    """Settings each readable but impossible together."""
    lines = []
    if config.get("JOBS_BACKEND") == "rq" and not config.get("REDIS_URL"):
        lines.append("JOBS_BACKEND='rq' needs REDIS_URL: set REDIS_URL, or JOBS_BACKEND to thread or auto")
    if config.get("MAIL_USE_TLS") and config.get("MAIL_USE_SSL"):
        lines.append("MAIL_USE_TLS and MAIL_USE_SSL are both on: use one (TLS: STARTTLS, usually port 587; "
                     "SSL: TLS from the start, usually port 465)")
    return lines
