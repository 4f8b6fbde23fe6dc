"""The task registry (``@task``, lanes, ``on_give_up`` hooks) and what a task may raise to say how
it ended: ``Postpone`` (not now), ``TransientJobError`` (try again later), ``JobFailed`` (failed, as
the task recorded it), anything else (failed).
No database, no Flask."""
from __future__ import annotations

from collections.abc import Callable

import requests

from ..linkback.fetch import transient_status

TASKS: dict[str, Callable] = {}
GIVE_UP: dict[str, Callable] = {}
# Lanes: what strangers can queue in bulk (the verification of their linkbacks) runs in a lane of
# its own, behind the site's own jobs (sending, importing), so a flood never delays those by more
# than the one verification running.
MAIN, LINKBACKS = "main", "linkbacks"
LANES: dict[str, str] = {}


def task(name: str, *, on_give_up: Callable | None = None, lane: str = MAIN) -> Callable[[Callable], Callable]:
    """Register ``fn(*args, **kwargs)`` as the task ``name``; the function is returned unchanged.

    ``lane``: ``MAIN``, or ``LINKBACKS`` for work that strangers can queue in bulk (taken only when
    no job of the main lane is due).

    ``on_give_up(*args, **kwargs)``, if given, is called (in an app context, its writes committed)
    when the job's process died during its last attempt: the task never ended, so the hook ends
    what it held (a claim, a "verifying" status).
    """

    def register(fn: Callable) -> Callable:
        existing = TASKS.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"task {name!r} is already registered to {existing.__module__}.{existing.__qualname__}")
        if lane not in (MAIN, LINKBACKS):
            raise ValueError(f"a task's lane is {MAIN!r} or {LINKBACKS!r}, not {lane!r}")
        TASKS[name] = fn
        LANES[name] = lane
        if on_give_up is not None:
            GIVE_UP[name] = on_give_up
        return fn

    return register


def lane_of(name: str) -> str:
    return LANES.get(name, MAIN)


class Postpone(Exception):
    """Raised by a task: not now, run me again in ``delay`` seconds; this run is not an attempt."""

    def __init__(self, delay: float, reason: str = "postponed"):
        super().__init__(reason)
        self.delay = max(0.0, float(delay))


class TransientJobError(Exception):
    """A failure worth trying again later.

    With ``status`` (the HTTP status the task got), only 5xx and 429 are transient; any other
    status fails the job at once.
    """

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message or (f"HTTP {status}" if status is not None else "transient failure"))
        self.status = status


class JobFailed(Exception):
    """Raised by a task that failed and has recorded so itself (its writes are committed): the job
    fails at once, without a retry, with this message as its error."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientJobError):
        return exc.status is None or transient_status(exc.status)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return transient_status(exc.response.status_code)
    return False
