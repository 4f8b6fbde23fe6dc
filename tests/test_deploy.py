"""deploy/: the systemd units pass ``systemd-analyze verify`` and agree with gunicorn.conf.py; the
environment file's settings are ones the app reads, in forms it reads; nginx.conf, run by Debian's
nginx on loopback in front of a real gunicorn (gunicorn.conf.py), passes the reader's address, scheme
and host, serves /static/ itself, and caps bodies as the app does.

systemd-analyze, nginx and openssl (the test's certificate) are Debian's; a test that needs one
skips with the reason where it is missing, and fails under ``CI=true`` (.ci/run installs nginx).
"""
from __future__ import annotations

import grp
import http.client
import os
import pwd
import re
import runpy
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from blogapp.config import DEFAULTS
from blogapp.settings_check import read_settings
from blogapp.templating import site_request_context
from helpers import make_post, unavailable
from ops_helpers import BIN, ROOT, Apps, free_port, process_env

DEPLOY = ROOT / "deploy"
CHECKOUT = "/srv/blog"  # where the deploy files expect the repository
ENV_FILE = "/etc/blogapp/blogapp.env"
SITE_HOST = "blog.example.com"  # nginx.conf's server_name; never resolved: every connection goes to 127.0.0.1
READER = "127.0.0.3"  # the test's client connects from here, so the proxy's own 127.0.0.1 cannot pass for it


def tool(name: str) -> str:
    """A Debian program, also found in the sbin directories a non-root PATH may lack."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        unavailable(f"{name} is not installed")
    return found


def unit(name: str) -> dict[str, list[str]]:
    """A unit file's settings as ``Section.Key`` -> its values, in order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    (value,) = settings[key]
    return value


# --- systemd -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["blogapp.service", "blogapp-worker.service"])
def test_units_pass_systemd_analyze_verify(tmp_path, name):
    """verify checks every key and value and that the programs exist: the unit is rendered with its
    checkout and environment file moved into tmp_path. Any line it prints (an unknown key, a value it
    ignores) fails the test, although verify itself exits 0 for those."""
    analyze = tool("systemd-analyze")
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    for program in ("gunicorn", "flask"):
        (checkout / ".venv" / "bin" / program).symlink_to(BIN / program)
    (checkout / "instance").mkdir()
    env_file = tmp_path / "blogapp.env"
    shutil.copy(DEPLOY / "blogapp.env.example", env_file)
    rendered = (DEPLOY / name).read_text().replace(CHECKOUT, str(checkout)).replace(ENV_FILE, str(env_file))
    (tmp_path / name).write_text(rendered)

    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_units_stop_and_reload_gunicorn_gracefully_and_share_one_setup():
    """What verify cannot judge: the units against gunicorn.conf.py and against each other."""
    web, worker = unit("blogapp.service"), unit("blogapp-worker.service")
    gunicorn_conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    assert one(web, "Service.ExecStart") == f"{CHECKOUT}/.venv/bin/gunicorn -c gunicorn.conf.py"
    assert one(web, "Service.WorkingDirectory") == CHECKOUT  # where -c gunicorn.conf.py is found
    # TERM to the master alone (it stops its workers gracefully); systemd waits longer than it does.
    assert one(web, "Service.KillMode") == "mixed"
    assert float(one(web, "Service.TimeoutStopSec")) > gunicorn_conf["graceful_timeout"]
    assert one(web, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(web, "Service.Type") == "notify"  # gunicorn's master sends READY=1

    assert one(worker, "Service.ExecStart") == f"{CHECKOUT}/.venv/bin/flask --app blogapp worker"
    # The worker and whatever it started are stopped together, never left behind (process/none).
    assert one(worker, "Service.KillMode") in ("mixed", "control-group")

    for settings in (web, worker):
        assert one(settings, "Service.Restart") == "on-failure"
        assert one(settings, "Service.User") not in ("", "root")
        assert one(settings, "Service.NoNewPrivileges") == "yes"
        assert one(settings, "Service.ProtectSystem") == "strict"
        # The only place either writes: uploads wait there for the worker, SQLite and the generated key live there.
        assert one(settings, "Service.ReadWritePaths") == f"{CHECKOUT}/instance"
    for key in ("Service.User", "Service.Group", "Service.WorkingDirectory", "Service.EnvironmentFile"):
        assert web[key] == worker[key] == [one(web, key)], key
    assert one(web, "Service.EnvironmentFile") == ENV_FILE


# --- the environment file ----------------------------------------------------------------------

# NAME=value or NAME="value": read alike by systemd's EnvironmentFile= and by sh (the README sources it).
ASSIGNMENT = re.compile(r'(?P<name>[A-Z][A-Z0-9_]*)=(?:"(?P<quoted>[^"\\$`]*)"|(?P<bare>[^\s"\'\\$`;#&|<>()]*))')
GUNICORN_VARIABLES = {"GUNICORN_BIND", "WEB_CONCURRENCY", "GUNICORN_THREADS"}


def env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(the settings it sets, the ones it shows commented out), each line checked for its form."""
    active, suggested = {}, {}
    for line in (DEPLOY / "blogapp.env.example").read_text().splitlines():
        if not line.strip():
            continue
        commented = line.startswith("#")
        candidate = line.lstrip("#").strip() if commented else line
        match = ASSIGNMENT.fullmatch(candidate)
        if commented and not (match or re.match(r"[A-Z_]+=", candidate)):
            continue  # prose
        assert match, f"not a NAME=value line that systemd and sh read alike: {line!r}"
        value = match["quoted"] if match["quoted"] is not None else match["bare"]
        (suggested if commented else active)[match["name"]] = value
    return active, suggested


def test_env_example_sets_what_production_needs_in_forms_the_app_reads(tmp_path, monkeypatch):
    active, suggested = env_example()

    for name in ("SECRET_KEY", "SITE_URL", "SQLALCHEMY_DATABASE_URI", "REDIS_URL", "PROXY_COUNT"):
        assert f"BLOGAPP_{name}" in active, name
    assert active["BLOGAPP_PROXY_COUNT"] == "1"  # nginx.conf is the one proxy
    assert active["BLOGAPP_SITE_URL"].startswith("https://")
    assert active["BLOGAPP_SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    # A placeholder, not a key: `flask check` warns about a key this short (blogapp/checks.py).
    assert len(active["BLOGAPP_SECRET_KEY"]) < 32
    # gunicorn's bind is the address nginx.conf's upstream names.
    assert f"server {active['GUNICORN_BIND']};" in (DEPLOY / "nginx.conf").read_text()

    # Every name is a setting (a misspelt one would be ignored) or a variable gunicorn.conf.py reads.
    every = {**active, **suggested}
    gunicorn_conf = (ROOT / "gunicorn.conf.py").read_text()
    for name in every:
        if name.startswith("BLOGAPP_"):
            assert name.removeprefix("BLOGAPP_") in DEFAULTS, f"{name} is not a setting"
        else:
            assert name in GUNICORN_VARIABLES and f'os.environ.get("{name}"' in gunicorn_conf, name

    # Every value, the commented-out ones too, in a form create_app accepts.
    for name in list(os.environ):
        if name.startswith("BLOGAPP_"):
            monkeypatch.delenv(name)
    for name, value in every.items():
        monkeypatch.setenv(name, value)
    config = Config(str(tmp_path))
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("BLOGAPP")
    read_settings(config)
    assert config["PROXY_COUNT"] == 1

    # And sh reads each active line as systemd does.
    sourced = subprocess.run(["sh", "-c", 'set -a; . "$0"; env -0', str(DEPLOY / "blogapp.env.example")],
                             env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True)
    shell = dict(item.split("=", 1) for item in sourced.stdout.split("\0") if "=" in item)
    assert {name: shell.get(name) for name in active} == active


# --- nginx -----------------------------------------------------------------------------------------


def test_nginx_caps_bodies_as_the_app_does():
    """client_max_body_size: the app's MAX_CONTENT_LENGTH everywhere, WXR_UPLOAD_MAX_BYTES for the import."""
    conf = (DEPLOY / "nginx.conf").read_text()
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

    def size(text_: str) -> int:
        number, unit_ = re.fullmatch(r"(\d+)([kmg]?)", text_.lower()).groups()
        return int(number) * units[unit_]

    server_wide = re.findall(r"^    client_max_body_size (\S+);", conf, re.M)
    assert [size(s) for s in server_wide] == [DEFAULTS["MAX_CONTENT_LENGTH"]]
    import_block = re.search(r"location = /admin/tools/import \{(.*?)\}", conf, re.S)
    assert import_block, "no location for the WXR upload"
    assert [size(s) for s in re.findall(r"client_max_body_size (\S+);", import_block[1])] == [
        DEFAULTS["WXR_UPLOAD_MAX_BYTES"]]


def render_site(*, https_port: int, http_port: int, upstream_port: int, cert: Path, key: Path, webroot: Path) -> str:
    """deploy/nginx.conf on loopback ports, with this repository's static/, the test's certificate
    and a web root of its own for certificate challenges."""
    site = (DEPLOY / "nginx.conf").read_text()
    replacements = {
        "root /var/www/html;": f"root {webroot};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        f"{CHECKOUT}/": f"{ROOT}/",
        f"/etc/letsencrypt/live/{SITE_HOST}/fullchain.pem": str(cert),
        f"/etc/letsencrypt/live/{SITE_HOST}/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx.conf has no {old!r} any more: adapt render_site"
        site = site.replace(old, new)
    listening = re.findall(r"^\s*listen\s+(\S+?)[\s;]", site, re.M)
    assert listening and all(address.startswith("127.0.0.1:") for address in listening), listening
    return site


def nginx_main_conf(tmp_path: Path, site: Path) -> Path:
    """What Debian's /etc/nginx/nginx.conf would be, for a run as this user with everything in tmp_path."""
    user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    temp = {kind: tmp_path / f"nginx-{kind}" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = tmp_path / "nginx-main.conf"
    conf.write_text(f"""
user {user} {group};
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp_path}/nginx-access.log;
    {"".join(f"{kind}_temp_path {path};" for kind, path in temp.items())}
    include {site};
}}
""")
    return conf


def make_certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text() if log.exists() else "exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing answered on port {port}"
            time.sleep(0.05)


class Through:
    """Requests to nginx's https port from READER, for SITE_HOST, each on a connection of its own."""

    def __init__(self, port: int, cert: Path):
        self.port = port
        self.context = ssl.create_default_context(cafile=str(cert))

    def __call__(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                 source_address=(READER, 0), timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Host": SITE_HOST, **(headers or {})})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


def plain_http(port: int, path: str) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": SITE_HOST})
        response = connection.getresponse()
        return response.status, response.headers["Location"], response.read()
    finally:
        connection.close()


NGINX_ERROR_PAGE = b"<center>nginx</center>"  # the footer of nginx's own error pages, never the app's


def test_nginx_in_front_of_gunicorn(tmp_path):
    """deploy/nginx.conf as it runs: Debian's nginx on loopback ports (TLS with a certificate made
    here), gunicorn with gunicorn.conf.py behind it, the blog on SQLite with BLOGAPP_PROXY_COUNT=1."""
    nginx = tool("nginx")
    cert, key = make_certificate(tmp_path)
    https_port, http_port, upstream_port = free_port(), free_port(), free_port()
    challenge = tmp_path / "webroot" / ".well-known" / "acme-challenge" / "token-1"
    challenge.parent.mkdir(parents=True)
    challenge.write_text("token-1.key")
    site = tmp_path / "site.conf"
    site.write_text(render_site(https_port=https_port, http_port=http_port, upstream_port=upstream_port,
                                cert=cert, key=key, webroot=tmp_path / "webroot"))
    nginx_args = [nginx, "-p", str(tmp_path), "-c", str(nginx_main_conf(tmp_path, site)),
                  "-e", str(tmp_path / "nginx-error.log")]
    checked = subprocess.run([*nginx_args, "-t"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr

    uri = f"sqlite:///{tmp_path / 'blog.sqlite'}"
    apps = Apps(tmp_path)
    try:
        with site_request_context(apps(uri, create_tables=True)):
            post_id, _ = make_post(title="Through the proxy")
    finally:
        apps.close()

    env = process_env(tmp_path, {"SQLALCHEMY_DATABASE_URI": uri, "SITE_URL": f"https://{SITE_HOST}", "PROXY_COUNT": 1})
    env.update(GUNICORN_BIND=f"127.0.0.1:{upstream_port}", WEB_CONCURRENCY="1", GUNICORN_THREADS="4")
    out, err = tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        gunicorn = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--no-control-socket"], cwd=ROOT,
                                    env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    server = None
    try:
        server = subprocess.Popen([*nginx_args, "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(upstream_port, gunicorn, err)
        wait_for_port(https_port, server, tmp_path / "nginx-error.log")
        through = Through(https_port, cert)

        # A page, and its stylesheet served by nginx from static/ with the long expiry.
        status, _, page = through("GET", "/")
        assert status == 200 and b"Through the proxy" in page
        stylesheet = re.search(rb'/static/style\.css\?v=[0-9a-f]+', page)[0].decode()
        status, headers, body = through("GET", stylesheet)
        assert status == 200 and body == (ROOT / "static" / "style.css").read_bytes()
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["Content-Type"].startswith("text/css")
        status, headers, _ = through("GET", "/static/style.css")  # unversioned: checked again each time
        assert status == 200 and headers["Cache-Control"] == "no-cache"

        # The reader's address, not nginx's nor one the client claims, and https with the host asked for.
        comment = urlencode({"author_name": "Reader", "author_email": "reader@example.com", "content": "Hello."})
        status, headers, _ = through("POST", f"/posts/{post_id}/comments", comment.encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded",
                                      "X-Forwarded-For": "203.0.113.9"})
        assert status == 303, status
        engine = create_engine(uri, poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT ip FROM comment")).scalars().all() == [READER]
        engine.dispose()
        status, headers, _ = through("GET", "/admin")  # Werkzeug's redirect to /admin/ is an absolute URL
        assert (status, headers["Location"]) == (308, f"https://{SITE_HOST}/admin/")

        # Bodies: over MAX_CONTENT_LENGTH refused by nginx; at it, passed on; the import's larger cap.
        cap = DEFAULTS["MAX_CONTENT_LENGTH"]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = through("POST", f"/posts/{post_id}/comments", b"x" * (cap + 1), form)
        assert status == 413 and NGINX_ERROR_PAGE in body
        status, _, body = through("POST", f"/posts/{post_id}/comments", b"x" * cap, form)
        assert status == 400 and NGINX_ERROR_PAGE not in body  # the app's answer: no such fields
        status, _, body = through("POST", "/admin/tools/import", b"x" * (2 * cap), form)
        # Through to the app, whose own 413 (its page) says a stranger may not upload at all.
        assert status == 413 and NGINX_ERROR_PAGE not in body and b"<html" in body.lower()

        # Plain http moves to https, but for certificate challenges.
        assert plain_http(http_port, "/2026/?x=1")[:2] == (301, f"https://{SITE_HOST}/2026/?x=1")
        assert plain_http(http_port, "/.well-known/acme-challenge/token-1") == (200, None, b"token-1.key")

        reload_drops_no_request(through, gunicorn, err)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(60)

    requests_seen = out.read_text()
    assert "/static/" not in requests_seen  # nginx answered those alone
    assert re.search(r'"POST /admin/tools/import HTTP/1\.[01]" 413 ', requests_seen)


def reload_drops_no_request(through: Through, gunicorn: subprocess.Popen, err: Path) -> None:
    """blogapp.service's ExecReload signal while readers keep asking: gunicorn replaces its worker
    (new code, the same socket) and every request is answered."""
    reload_signal = re.fullmatch(r"/bin/kill -(\w+) \$MAINPID", one(unit("blogapp.service"), "Service.ExecReload"))[1]
    booted = err.read_text().count("Booting worker with pid")
    statuses: list[int] = []
    stop = threading.Event()

    def read_pages():
        while not stop.is_set():
            try:
                statuses.append(through("GET", "/")[0])
            except OSError as exc:
                statuses.append(repr(exc))

    reader = threading.Thread(target=read_pages)
    reader.start()
    try:
        time.sleep(0.2)
        gunicorn.send_signal(getattr(signal, f"SIG{reload_signal}"))
        deadline = time.monotonic() + 60
        while not (err.read_text().count("Booting worker with pid") > booted and "Worker exiting" in err.read_text()):
            assert gunicorn.poll() is None and time.monotonic() < deadline, \
                f"after SIG{reload_signal}, gunicorn stopped or kept its old worker:\n" + err.read_text()[-2000:]
            time.sleep(0.05)
        served = len(statuses)
        while len(statuses) < served + 5:  # the new worker answers too
            assert time.monotonic() < deadline, statuses[-5:]
            time.sleep(0.05)
    finally:
        stop.set()
        reader.join(30)
    assert gunicorn.poll() is None
    assert statuses and set(statuses) == {200}, [s for s in statuses if s != 200][:5]
