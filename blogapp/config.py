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
    # WordPress's Discussion rules, for comments and linkbacks (the source URL, title and excerpt):
    # hold one with this many links or more (0: no limit); hold one that contains any of the
    # moderation keys (words, names, URLs, emails, IPs; in its content, name, URL, email, IP or user
    # agent); send one that contains any of the disallowed keys to spam. In the environment, JSON lists.
    # Days a post stays in the Trash before it is deleted for good, as WordPress's EMPTY_TRASH_DAYS
    # (checked hourly by every process's job sweeper); 0: never.
    "EMPTY_TRASH_DAYS": 30,
    "COMMENT_MAX_LINKS": 2,
    "COMMENT_MODERATION_KEYS": [],
    "COMMENT_DISALLOWED_KEYS": [],
    # Flask-Limiter: per client IP. Storage is memory unless REDIS_URL is set.
    "COMMENT_RATE_LIMIT": "5 per minute;30 per hour",
    "LOGIN_RATE_LIMIT": "10 per minute;50 per hour",
    "REDIS_URL": None,
    # Readers' pages cached whole (per process, or in Redis when REDIS_URL is set); ETags and 304s either way.
    "PAGE_CACHE": True,
    "PAGE_CACHE_TIMEOUT": 300,  # seconds a cached page is kept at most
    # PostgreSQL: each process learns of content changes by LISTEN/NOTIFY instead of asking on every view.
    "PAGE_CACHE_LISTEN": True,
    # Number of reverse proxies in front of us whose X-Forwarded-* headers we trust.
    "PROXY_COUNT": 0,
    # Other base URLs that are this site (old domains, http/https mirrors), for linkback targets.
    "SITE_ALIASES": [],
    # Treat www.example.com and example.com as the same site when matching linkback targets.
    "SITE_WWW_EQUIVALENT": False,
    # Strict-Transport-Security max-age, in seconds, sent on every response when SITE_URL is https; 0: off.
    "HSTS_SECONDS": 0,
    # Receiving pingbacks and trackbacks.
    "LINKBACK_MODERATION": "hold-new-sources",  # approve | hold | hold-new-sources
    "PINGBACK_MASK_FAULTS": False,  # answer every fault but 48 as a bare 0, as WordPress does
    "TRACKBACK_VERIFY": True,  # fetch a trackback's url and require a link to the post
    "LINKBACK_VERIFY_BUDGET": 2.0,  # seconds a sender waits for the exact answer
    "LINKBACK_MAX_IN_FLIGHT": 8,  # simultaneous verifications (outgoing fetches) per process
    # Share of one core a process may spend verifying linkbacks, on average; past it, later. 0: no limit.
    "LINKBACK_VERIFY_CPU": 0.05,
    "LINKBACK_VERIFY_BURST": 0.15,  # seconds of that CPU a process may owe at once (a few big pages)
    "LINKBACK_BODY_LIMIT": 65536,  # bytes of a pingback or trackback request we read
    "LINKBACK_RATE_LIMIT": "20 per minute;200 per hour",  # per client IP
    "LINKBACK_SOURCE_RATE_LIMIT": "10 per minute;100 per hour",  # per source host
    # Past the rates above, the CPU share or the in-flight cap, a linkback is not refused: it is
    # accepted ("verification continues") and verified later by a job, at the budgeted rate.
    # What a flood can leave waiting is bounded by these caps on pending verifications; past
    # one, fault 49 (Webmention: 429) at once.
    "LINKBACK_PENDING_PER_HOST": 120,  # per source host (an honest blog pinging 100 posts at once still fits)
    "LINKBACK_PENDING_PER_IP": 120,  # per client IP
    "LINKBACK_PENDING_TOTAL": 2000,  # in all
    # Advertise and accept Webmentions (off: only pingbacks and trackbacks are taken).
    "WEBMENTION_ENABLED": True,
    # Sending: tell the pages our posts link to (each post also has its own switch).
    "SEND_LINKBACKS": True,
    # A link to another of our posts records a pingback there directly, approved.
    "SELF_PINGS": True,
    # The guarded fetcher (receiving and sending).
    "LINKBACK_FETCH_TIMEOUT": 10.0,  # total deadline of one fetch, redirects included
    "LINKBACK_CONNECT_TIMEOUT": 3.0,
    "LINKBACK_READ_TIMEOUT": 5.0,
    "LINKBACK_FETCH_MAX_BYTES": 1_000_000,
    "LINKBACK_FETCH_MAX_REDIRECTS": 5,
    "LINKBACK_FETCH_PORTS": [80, 443, 8080],
    # CIDRs the fetcher may reach although private or loopback (tests, intranets); any port there.
    "LINKBACK_FETCH_ALLOWLIST": [],
    # Background jobs (blogapp/jobs/): "auto" is "rq" when REDIS_URL is set, else "thread".
    "JOBS_BACKEND": "auto",  # auto | thread | rq
    "JOBS_QUEUE": "blogapp",  # the RQ queue; `flask --app blogapp worker` serves it
    "JOBS_MAX_ATTEMPTS": 5,  # runs of a job, the first included, before a transient failure is final
    "JOBS_BACKOFF_BASE": 2.0,  # seconds before the first retry; doubled for each later one
    "JOBS_BACKOFF_MAX": 300.0,  # the longest wait between two attempts
    # A running job's process renews its lease every third of this; a lease left to expire (the
    # process died) makes the job run again, found by a sweep every JOBS_SWEEP_SECONDS.
    "JOBS_LEASE_SECONDS": 30.0,
    "JOBS_SWEEP_SECONDS": 10.0,
    # A web process queueing a job waits this long for Redis (to connect, and for each answer);
    # past it, the job waits in the database and goes to Redis when it is back.
    "JOBS_REDIS_TIMEOUT": 1.0,
    # `flask worker`'s scheduler (a thread of the worker) moves due retries to the queue this often;
    # its lock outlives a killed worker this long, so a new worker schedules within it.
    "JOBS_SCHEDULER_INTERVAL": 1.0,
    "JOBS_SCHEDULER_LOCK_SECONDS": 30.0,
    # The largest request body any form may send, in bytes; larger ones are answered 413 unread.
    # (The WXR upload below raises it for that one view.)
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # The largest WordPress export (WXR) an admin may upload at /admin/tools/import, in bytes.
    "WXR_UPLOAD_MAX_BYTES": 512 * 1024 * 1024,
    # Mail (blogapp/notify/), named as Flask-Mail names them; sent by a job, retried while the server is away.
    "MAIL_SERVER": None,  # the SMTP host; None: no mail is sent (nor queued)
    "MAIL_PORT": 25,  # 587 is usual with MAIL_USE_TLS, 465 with MAIL_USE_SSL
    "MAIL_USE_TLS": False,  # STARTTLS after connecting
    "MAIL_USE_SSL": False,  # TLS from the start (SMTPS)
    "MAIL_USERNAME": None,  # log in to the server with this and MAIL_PASSWORD; None: no login
    "MAIL_PASSWORD": None,  # secret: never logged nor shown
    "MAIL_DEFAULT_SENDER": None,  # From: "Name <address>" or an address; None: the site's title at noreply@ its host
    # Notifications (Settings): the admin's address (None: the admin is not mailed), and what about:
    # each comment or linkback held for moderation, each one published. Commenters ask for replies themselves.
    "NOTIFY_EMAIL": None,
    "NOTIFY_HELD": True,
    "NOTIFY_PUBLISHED": False,
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
