"""gunicorn's production settings for blogapp: ``gunicorn -c gunicorn.conf.py`` (the app is named below).

Threads, not more processes: a pingback holds its request thread while the source is verified
(at most LINKBACK_VERIFY_BUDGET seconds) and at most LINKBACK_MAX_IN_FLIGHT verifications run per
process, so with more threads than that, readers always find a free one. The benchmarks
(benchmarks/, `make bench`) run under exactly these settings.
"""
import gc
import importlib.util
import os
import sys
from logging.handlers import SysLogHandler
from pathlib import Path

from gunicorn.glogging import Logger

wsgi_app = "blogapp:create_app()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Keep-alive connections are cheap with threads and save readers a TCP handshake each time.
keepalive = 5
timeout = 30
graceful_timeout = 20
# Never let a proxy's X-Forwarded-* be trusted here: blogapp does that itself (PROXY_COUNT).
forwarded_allow_ips = "127.0.0.1"

# Logs: requests on standard output, everything else (gunicorn's and the app's) on standard error;
# under systemd both go to the journal. Every line is time, process, level, logger, message, as
# blogapp/logs.py writes them. The client address is the reader's: the app's ProxyFix
# (PROXY_COUNT) rewrites it before gunicorn logs the request.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
errorlog = "-"


def _app_log_format():
    """blogapp/logs.py, loaded from its file as a module of its own. Importing the blogapp package
    here, in the master, would hand its old code to every worker forked after a reload (HUP)."""
    spec = importlib.util.spec_from_file_location("blogapp_log_format", Path(__file__).parent / "blogapp" / "logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_log_format = _app_log_format()


class OneLineLogger(Logger):
    """gunicorn's logger, with the app's one-line format on its error and access lines (syslog's
    handler, if configured, keeps its own)."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            if getattr(handler, "_gunicorn", False) and not isinstance(handler, SysLogHandler):
                handler.setFormatter(_log_format.OneLineFormatter(_log_format.FORMAT, _log_format.DATE_FORMAT))


logger_class = OneLineLogger


def post_worker_init(worker):
    """Tune the worker's interpreter once the app is loaded.

    The app lives as long as the worker: freeze what exists now (modules, templates, the URL map)
    so the garbage collector stops walking it, and collect less often. Rendering a page makes many
    short-lived objects; with the defaults, collections were a fifth of a page's time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # A thread doing CPU work (reading a pingback's source) hands the GIL on every millisecond
    # rather than every five, so a reader's request is not kept waiting behind it.
    sys.setswitchinterval(0.001)
    # Take up at once what a dead process left (jobs whose lease expired), not at the first request.
    app = getattr(worker, "wsgi", None)
    if hasattr(app, "extensions") and "jobs" in app.extensions:
        from blogapp import jobs

        jobs.start(app)
