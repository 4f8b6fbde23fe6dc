"""The LinkbackLog: one row per linkback received, its verdict, and a Webmention's status token."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select

from ..extensions import db
from ..linkback.receive import Mention
from ..linkback.urls import source_key
from ..models import LinkbackLog, utcnow
from ..validation import contains_nul

ROWS_KEPT = 5000
TOKEN_LIMIT = 64
# A Webmention's status page says these for the row's outcome.
STATES = {"verifying": "queued", "accepted": "verified", "refused": "refused"}
_INSERT = insert(LinkbackLog.__table__)  # built once; the values are bound per call


def entry_values(mention: Mention, post_id: int, **fields) -> dict:
    """The columns of a log row for ``mention``, waiting for its verdict."""
    return dict(protocol=mention.protocol, source_url=mention.source[:2000],
                source_host=(urlsplit(mention.source).hostname or "").lower()[:255],
                target_url=mention.target[:2000], post_id=post_id, client_ip=mention.client_ip, **fields)


def new_entry(mention: Mention, post_id: int, **fields) -> LinkbackLog:
    """A log row for ``mention`` (added to the session), waiting for its verdict."""
    entry = LinkbackLog(**entry_values(mention, post_id, **fields))
    db.session.add(entry)
    return entry


def insert_entry(mention: Mention, post_id: int, **fields) -> int:
    """``new_entry`` as one INSERT, for the claim's hot path: the new row's id."""
    return db.session.execute(_INSERT, entry_values(mention, post_id, **fields)).inserted_primary_key[0]


def trim(newest_id: int) -> bool:
    """Now and then (true when it did), drop the oldest finished rows (a pending one is someone's
    answer to come); the caller commits."""
    if newest_id % 100:
        return False
    db.session.execute(delete(LinkbackLog).where(LinkbackLog.id <= newest_id - ROWS_KEPT,
                                                 LinkbackLog.outcome != "verifying"))
    return True


def finish(entry: LinkbackLog, outcome: str, message: str, code: int | None = None) -> None:
    entry.outcome, entry.fault_code, entry.message, entry.finished_at = outcome, code, message, utcnow()


def finish_webmention(entry: LinkbackLog, outcome: str, message: str, code: int | None = None,
                      comment_id: int | None = None) -> None:
    """The verdict of ``entry`` and of every other Webmention waiting for the same post and source
    (their jobs, run after, find nothing to do)."""
    key = source_key(entry.source_url)
    waiting = db.session.scalars(select(LinkbackLog).where(
        LinkbackLog.protocol == "webmention", LinkbackLog.post_id == entry.post_id,
        LinkbackLog.outcome == "verifying")).all()
    for row in {entry, *[w for w in waiting if source_key(w.source_url) == key]}:
        finish(row, outcome, message, code)
        if comment_id is not None:
            row.comment_id = comment_id


def by_token(token: str) -> LinkbackLog | None:
    if len(token) > TOKEN_LIMIT or contains_nul(token):
        return None
    return db.session.scalar(select(LinkbackLog).where(LinkbackLog.token == token))


def status_of(entry: LinkbackLog) -> dict:
    """What a Webmention's status page shows."""
    return {
        "status": STATES.get(entry.outcome, entry.outcome),
        "source": entry.source_url,
        "target": entry.target_url,
        "message": entry.message,
        "received": entry.created_at.isoformat() + "Z",
        "finished": entry.finished_at.isoformat() + "Z" if entry.finished_at else None,
    }
