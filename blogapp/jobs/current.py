"""An app's job machinery as ``init_app`` installed it in ``app.extensions``, found again by the
rest of the package: ``backend()`` (thread or RQ) and ``leases()``, of the given or current app."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from .leases import Leases
    from .rq_backend import RQBackend
    from .thread_backend import ThreadBackend


def backend(app: Flask | None = None) -> ThreadBackend | RQBackend:
    app = app or current_app
    try:
        return app.extensions["jobs"]
    except KeyError:
        raise RuntimeError("blogapp.jobs.init_app(app) was not called") from None


def leases(app: Flask | None = None) -> Leases:
    return (app or current_app).extensions["job_leases"]
