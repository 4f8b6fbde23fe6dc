"""The jobs' app wiring: ``init_app`` picks the back end (``JOBS_BACKEND``) and installs it with the
leases and the lanes' pace; ``start`` (first request via ``StartOnFirstRequest``, ``flask worker``,
gunicorn's worker init), ``wait_idle`` and ``shutdown`` act on this process's part of it."""
from __future__ import annotations

import logging

from flask import Flask, current_app

from .current import backend
from .leases import Leases
from .rq_backend import RQBackend
from .thread_backend import ThreadBackend

log = logging.getLogger(__name__)

BACKENDS = ("auto", "thread", "rq")


def init_app(app: Flask) -> None:
    choice = str(app.config["JOBS_BACKEND"]).lower()
    if choice not in BACKENDS:
        raise ValueError(f"JOBS_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "auto":
        choice = "rq" if app.config["REDIS_URL"] else "thread"
    if choice == "rq":
        if not app.config["REDIS_URL"]:
            raise ValueError("JOBS_BACKEND is 'rq' but REDIS_URL is not set")
        app.extensions["jobs"] = RQBackend(app)
    else:
        app.extensions["jobs"] = ThreadBackend(app)
    app.extensions["job_leases"] = Leases(app)
    app.extensions["job_pace"] = {}


def start(app: Flask | None = None) -> None:
    """Start this process's part of the back end now: the job thread (thread), or the sweeper that
    runs again the jobs of dead processes (rq). Called on the first request, by ``flask worker``
    and by gunicorn's worker init; later calls do nothing."""
    backend(app).start()


def wait_idle(timeout: float = 10.0, app: Flask | None = None) -> bool:
    """Wait until no job is queued, retrying or running; False if ``timeout`` passed first."""
    return backend(app).wait_idle(timeout)


def shutdown(app: Flask | None = None, timeout: float = 10.0) -> None:
    """Stop taking jobs; the one running is finished, waiting ones stay queued in the database."""
    app = app or current_app
    backend(app).shutdown(timeout)
    app.extensions["job_leases"].stop()


class StartOnFirstRequest:
    """WSGI: start the process's job back end when the first request comes in (``flask run``,
    gunicorn, any server), so a restarted web process takes up what a dead one left."""

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self.started = False

    def __call__(self, environ, start_response):
        if not self.started:
            self.started = True
            try:
                start(self.app)
            except Exception:
                log.exception("the job back end could not be started")
        return self.wsgi_app(environ, start_response)
