"""Logs: one line per record, with time, process, level and logger name, from the app (its own
logging, set up by create_app) and from gunicorn (gunicorn.conf.py), requests on standard output;
a host that set up logging itself keeps its own."""
from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time

import requests

from blogapp.logs import DATE_FORMAT, FORMAT, OneLineFormatter
from ops_helpers import BIN, ROOT, flask_command, free_port, process_env

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[\d+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: .*$")


def test_a_record_with_a_traceback_is_one_line():
    try:
        raise ValueError("broken\nin two")
    except ValueError:
        record = logging.getLogger("blogapp.example").makeRecord(
            "blogapp.example", logging.ERROR, __file__, 1, "first\nsecond", (), sys.exc_info())
    line = OneLineFormatter(FORMAT, DATE_FORMAT).format(record)
    assert "\n" not in line and LINE.match(line)
    assert " ERROR blogapp.example: first\\nsecond\\nTraceback (most recent call last):\\n" in line
    assert line.endswith("ValueError: broken\\nin two")


APP_LOGS = """
import logging, threading
from blogapp import create_app
app = create_app()
logging.getLogger("blogapp.example").warning("a warning\\nwith a second line")
try:
    1 / 0
except ZeroDivisionError:
    app.logger.exception("an error")
def fail():
    raise RuntimeError("in a thread")
thread = threading.Thread(target=fail, name="example-thread")
thread.start()
thread.join()
"""


def run_python(tmp_path, code: str) -> subprocess.CompletedProcess:
    uri = f"sqlite:///{tmp_path / 'blog.sqlite'}"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=process_env(tmp_path, {"SQLALCHEMY_DATABASE_URI": uri}),
                          capture_output=True, text=True, timeout=60)


def test_the_app_logs_one_line_per_record(tmp_path):
    done = run_python(tmp_path, APP_LOGS)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert all(LINE.match(line) for line in lines), done.stderr
    assert len(lines) == 3, done.stderr  # each once: no second handler (Flask's own) repeats them
    warning, error, uncaught = lines
    assert " WARNING blogapp.example: a warning\\nwith a second line" in warning
    assert " ERROR blogapp: an error\\nTraceback (most recent call last):" in error and "ZeroDivisionError" in error
    assert " ERROR threading: uncaught exception in thread example-thread\\nTraceback" in uncaught
    assert "RuntimeError: in a thread" in uncaught


def test_a_host_that_set_up_logging_keeps_its_own(tmp_path):
    done = run_python(tmp_path, 'import logging\nlogging.basicConfig(format="HOST %(name)s %(message)s")\n' + APP_LOGS)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("HOST blogapp.example a warning\nwith a second line\nHOST blogapp an error\n")
    assert not any(LINE.match(line) for line in done.stderr.splitlines())  # no second handler of ours


def test_gunicorn_logs_requests_and_its_own_lines_as_the_app_does(tmp_path):
    """gunicorn.conf.py as in production: requests on standard output, gunicorn's and the app's
    lines on standard error, all one line each in the same format."""
    uri = f"sqlite:///{tmp_path / 'blog.sqlite'}"
    assert flask_command(tmp_path, {"SQLALCHEMY_DATABASE_URI": uri}, "init-db").returncode == 0
    port = free_port()
    settings = {"SQLALCHEMY_DATABASE_URI": uri, "SITE_URL": f"http://127.0.0.1:{port}",
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # down: /readyz logs why it is not ready
    with open(tmp_path / "stdout", "wb") as out, open(tmp_path / "stderr", "wb") as err:
        server = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                   "--workers", "1", "--no-control-socket"], cwd=ROOT, env=process_env(tmp_path, settings),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "stderr").read_text()
            try:
                healthy = requests.get(url + "/healthz", timeout=15, headers={"User-Agent": "probe/1"})
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn never answered"
                time.sleep(0.1)
        assert healthy.status_code == 200
        assert requests.get(url + "/readyz", timeout=10).status_code == 503
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    requests_log = (tmp_path / "stdout").read_text().splitlines()
    everything_else = (tmp_path / "stderr").read_text().splitlines()

    assert all(LINE.match(line) for line in requests_log + everything_else), requests_log + everything_else
    assert any(re.search(r' INFO gunicorn\.access: 127\.0\.0\.1 "GET /healthz HTTP/1\.1" 200 16 \d+ms "-" "probe/1"$', line)
               for line in requests_log), requests_log
    assert any(' INFO gunicorn.access: 127.0.0.1 "GET /readyz HTTP/1.1" 503 ' in line for line in requests_log)
    assert any(" INFO gunicorn.error: Booting worker with pid: " in line for line in everything_else)
    assert any(" WARNING blogapp.health: not ready: redis: " in line for line in everything_else)
