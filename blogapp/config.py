"""Settings: defaults in code, then ``instance/config.py``, then ``BLOGAPP_*`` variables.

Every setting the application reads is declared in ``DEFAULTS`` so the README's table
and the code cannot drift apart: ``tests/test_config.py`` checks the table against it.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULTS: dict[str, object] = {
    # Where the data lives. ``None`` means a SQLite file in the instance folder.
    "SQLALCHEMY_DATABASE_URI": None,
    # The public base URL: permalinks, feeds and linkback target matching come from it.
    "SITE_URL": "http://127.0.0.1:5000",
    "SITE_TITLE": "A SMART PRACTICE",
    "SITE_DESCRIPTION": "Notes on running a thoughtful therapy practice.",
    # ``None`` means: generate one into ``instance/secret_key`` on first start and reuse it.
    "SECRET_KEY": None,
    # IANA zone in which dates are shown and archives are grouped.
    "TIMEZONE": "UTC",
    "POSTS_PER_PAGE": 10,
    "FEED_SIZE": 20,
    # Defaults of the site settings an admin can change at /admin/settings.
    "COMMENT_MODERATION": "hold-all",  # hold-all | hold-new | approve
    "COMMENT_THREAD_DEPTH": 5,
    "CLOSE_COMMENTS_AFTER_DAYS": 0,  # 0 = never
    # Flask-Limiter: per client IP. Storage is memory unless REDIS_URL is set.
    "COMMENT_RATE_LIMIT": "5 per minute;30 per hour",
    "LOGIN_RATE_LIMIT": "10 per minute;50 per hour",
    "REDIS_URL": None,
    # Number of reverse proxies in front of us whose X-Forwarded-* headers we trust.
    "PROXY_COUNT": 0,
}

SECRET_KEY_FILE = "secret_key"


def load_secret_key(instance_path: str) -> str:
    """Return the key stored in the instance folder, creating it once if missing."""
    path = Path(instance_path) / SECRET_KEY_FILE
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    # O_EXCL so two workers starting together cannot overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
