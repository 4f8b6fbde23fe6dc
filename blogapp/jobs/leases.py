"""Leases on running jobs: each attempt's owner id, and the one thread per process that renews the
leases it holds every third of ``JOBS_LEASE_SECONDS``. A lease left to expire means its process
died (``sweep`` runs the job again)."""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import update

from ..extensions import db
from ..models import JobRecord, JobStatus, utcnow

log = logging.getLogger(__name__)


class Leases:
    """The leases this process holds on running jobs, all renewed by one thread."""

    THREAD_NAME = "blogapp-job-leases"

    def __init__(self, app: Flask):
        self.app = app
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def seconds(self) -> float:
        return float(self.app.config["JOBS_LEASE_SECONDS"])

    def expiry(self) -> datetime:
        return utcnow() + timedelta(seconds=self.seconds)

    @staticmethod
    def new_owner() -> str:
        """Unique per attempt; says which process holds it (host and pid), for whoever reads the table."""
        return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(6)}"

    def hold(self, owner: str) -> None:
        with self._lock:
            self._held.add(owner)
            forked = self._pid != os.getpid()  # a thread does not survive a fork: start one here
            if self._thread is None or forked or not self._thread.is_alive():
                self._pid = os.getpid()
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._renew, args=(self._stop,), name=self.THREAD_NAME,
                                                daemon=True)
                self._thread.start()

    def release(self, owner: str) -> None:
        with self._lock:
            self._held.discard(owner)

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.seconds / 3):
            with self._lock:
                owners = list(self._held)
            if not owners:
                continue
            try:
                with self.app.app_context():
                    db.session.execute(
                        update(JobRecord)
                        .where(JobRecord.lease_owner.in_(owners), JobRecord.status == JobStatus.RUNNING.value)
                        .values(lease_expires_at=self.expiry())
                    )
                    db.session.commit()
            except Exception:  # the database is away for a moment: the next round tries again
                log.warning("could not renew the leases of running jobs", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
