"""The background import behind the admin's Tools page: an uploaded WXR file, run through
``WxrImporter`` by the job ``wxr.import``.

The upload waits in ``instance/imports/<token>.xml``, under a random name (never the client's).
While the job runs, ``<token>.json`` beside it holds ``{"size": ..., "bytes_read": ...}``.
Progress is a file, not a row: a dry run rolls back each batch it writes, and a row updated
inside the import's transactions would be rolled back with it. The outcome is the job's ``JobRecord.result``:
``{"summary": <one line>, "counts": ImportSummary.as_dict(), "size": bytes}``, or ``"error"`` (the
importer's one line) instead of ``"summary"``, with the counts of what was kept. An import that
stops with ``ImportFailed`` is a job that succeeded (it ran and recorded its outcome); a job
that *failed* crashed, and its ``last_error`` says how. Both files are deleted when the job ends.
With the RQ back end the worker must see the web processes' instance folder.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import NamedTuple

from flask import current_app

from .. import jobs
from ..extensions import db
from ..models import JobRecord, User
from .importer import ImportFailed, WxrImporter

IMPORT_TASK = "wxr.import"
UPLOAD_DIR = "imports"
_TOKEN = re.compile(r"\A[A-Za-z0-9_-]{16,64}\Z")


class Progress(NamedTuple):
    size: int
    bytes_read: int

    @property
    def percent(self) -> int:
        if self.size <= 0:
            return 0
        return max(0, min(100, self.bytes_read * 100 // self.size))


def imports_dir() -> Path:
    return Path(current_app.instance_path) / UPLOAD_DIR


def new_upload() -> tuple[str, Path]:
    """A fresh random token and the path its upload is to be saved at (the folder is created)."""
    directory = imports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    return token, directory / f"{token}.xml"


def upload_path(token: str) -> Path:
    return imports_dir() / f"{_checked(token)}.xml"


def progress_path(token: str) -> Path:
    return imports_dir() / f"{_checked(token)}.json"


def _checked(token: str) -> str:
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ValueError("not an import token")
    return token


def write_progress(token: str, size: int, bytes_read: int) -> None:
    """Replace the progress file at once (readers never see half of it)."""
    path = progress_path(token)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps({"size": int(size), "bytes_read": int(bytes_read)}))
    os.replace(partial, path)


def read_progress(token: str) -> Progress | None:
    """What the running job last wrote; None before it started, after it ended, or if unreadable."""
    try:
        data = json.loads(progress_path(token).read_text())
        return Progress(int(data["size"]), int(data["bytes_read"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start_import(token: str, *, default_author_id: int | None, dry_run: bool) -> JobRecord:
    """Queue the import of the upload saved under ``token``; returns the job's record."""
    path = upload_path(token)
    write_progress(token, path.stat().st_size, 0)
    return jobs.enqueue(IMPORT_TASK, token, default_author_id=default_author_id, dry_run=bool(dry_run),
                        key=f"{IMPORT_TASK}:{token}")


def token_of(record: JobRecord) -> str | None:
    """The upload token of a ``wxr.import`` job, or None for any other record."""
    if record.name != IMPORT_TASK:
        return None
    try:
        token = json.loads(record.args)["args"][0]
        return _checked(token)
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def is_dry_run(record: JobRecord) -> bool:
    try:
        return bool(json.loads(record.args)["kwargs"].get("dry_run"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def discard(token: str) -> None:
    """Delete the upload and its progress file."""
    upload_path(token).unlink(missing_ok=True)
    progress_path(token).unlink(missing_ok=True)


@jobs.task(IMPORT_TASK)
def run_import(token: str, default_author_id: int | None = None, dry_run: bool = False) -> dict:
    """Import the upload, reporting progress to its JSON file; the upload is deleted at the end."""
    path = upload_path(token)
    try:
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            return {"error": "the uploaded file is gone (an earlier run of this import removed it): upload it again",
                    "counts": None, "size": None}
        with stream:
            size = os.fstat(stream.fileno()).st_size
            author = db.session.get(User, default_author_id) if default_author_id else None
            importer = WxrImporter(default_author=author, dry_run=dry_run,
                                   progress=lambda bytes_read: write_progress(token, size, bytes_read))
            try:
                summary = importer.run(stream)
            except ImportFailed as exc:
                return {"error": exc.message, "counts": exc.summary.as_dict(), "size": size}
        return {"summary": summary.line(), "counts": summary.as_dict(), "size": size}
    finally:
        discard(token)
