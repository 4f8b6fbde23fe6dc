"""Pacing of lanes: a lane's next job waits while a budget (``seconds_to_wait()``) is spent.
Read by both back ends before they take a job from the lane."""
from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)


def pace(app: Flask, lane: str, seconds_to_wait: Callable[[], float]) -> None:
    """Pace a lane: its next job waits until ``seconds_to_wait()`` is 0 (a CPU budget). The job
    thread just takes nothing from the lane meanwhile, and an RQ worker waits before the job:
    no write, no claim, while the budget refills."""
    app.extensions["job_pace"][lane] = seconds_to_wait


def pace_wait(app: Flask, lane: str) -> float:
    """Seconds the lane's next job must still wait (0: take it now)."""
    fn = app.extensions.get("job_pace", {}).get(lane)
    try:
        return max(0.0, float(fn())) if fn is not None else 0.0
    except Exception:  # a broken pace must not stop the queue
        log.exception("pacing the %s lane failed", lane)
        return 0.0
