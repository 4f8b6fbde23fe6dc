"""Logging: one line per record (time, process, level, logger, message) on standard error.

A traceback or a newline inside a message is written as ``\\n``: one event stays one line for grep
and for the journal (under systemd, each line of standard error is one journal entry), and text
from a request cannot forge a line of its own.

gunicorn's own lines use the same format (``gunicorn.conf.py``, which repeats ``FORMAT`` and
``DATE_FORMAT``: it must not import this package, see there).
"""
from __future__ import annotations

import logging
import sys
import threading

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class OneLineFormatter(logging.Formatter):
    """``logging.Formatter`` with line breaks escaped, the traceback's included."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


def configure(level: int = logging.INFO) -> None:
    """Send every logger's records to standard error, one line each, unless the host process has
    configured logging already (a root handler exists): then its handlers and format stay.

    Called from ``create_app`` (not when testing), so ``flask`` commands, the RQ worker and
    gunicorn's workers all log alike; a second app in the same process changes nothing."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    # A background thread's uncaught exception (a job thread, a listener) is printed by Python
    # itself, many lines and no time: through the log instead.
    threading.excepthook = log_uncaught_in_thread


def log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("threading").error("uncaught exception in thread %s", name,
                                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
