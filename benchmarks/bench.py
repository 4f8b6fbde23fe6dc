"""The blogapp benchmark suite: prints figures, writes them down, never fails on a number.

    make bench                                   # SQLite, default size
    make bench ARGS=--quick                      # short runs, to try it out
    make bench ARGS="--db postgresql://postgres@127.0.0.1:5432/test"
    make bench ARGS="--scale --db postgresql://postgres@127.0.0.1:5432/test"

Everything runs on loopback: gunicorn serving the blog (and a bare Flask "floor" app with the
same settings), wrk as the load, and the pingback flood's sources. See benchmarks/README.md for
what each figure means and the targets.
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import flood as flood_mod  # noqa: E402
import hitratio as hitratio_mod  # noqa: E402
import search as search_mod  # noqa: E402
import seed as seed_mod  # noqa: E402
import wxr as wxr_mod  # noqa: E402
from pages import html_page  # noqa: E402
from wrk import Wrk, WrkResult, ensure_wrk, wrk_version  # noqa: E402

BIN = Path(sys.executable).parent  # the venv's bin: gunicorn and flask live beside this python
# Where a gunicorn config of the documented production settings would be; the first found is used.
GUNICORN_CONFIGS = ("gunicorn.conf.py", "gunicorn_conf.py", "deploy/gunicorn.conf.py", "conf/gunicorn.conf.py")
# Used only while the repository has no gunicorn config file (see benchmarks/README.md).
FALLBACK_GUNICORN = ["--worker-class", "gthread", "--threads", "8"]
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
SCALE_POSTS, SCALE_COMMENTS = 100_000, 1_000_000


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0):
    """A GET on loopback without urllib, so no proxy setting can send it elsewhere."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), body
    finally:
        conn.close()


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Our environment minus any BLOGAPP_* setting or proxy, plus ``extra``: runs never inherit config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOGAPP_") and k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


class Gunicorn:
    """One gunicorn in its own process group, logging to a file, stopped for sure."""

    def __init__(self, name: str, app: str, env: dict[str, str], settings: list[str], workdir: Path,
                 pythonpath: Path | None = None):
        self.name = name
        self.port = free_port()
        self.log = workdir / f"gunicorn-{name}.log"
        cmd = [str(BIN / "gunicorn"), *settings, "--bind", f"127.0.0.1:{self.port}"]
        if pythonpath:
            cmd += ["--pythonpath", str(pythonpath)]
        cmd.append(app)
        self.cmd = cmd
        self.env = env
        self.workers = int(settings[settings.index("--workers") + 1]) if "--workers" in settings else 2
        self.proc: subprocess.Popen | None = None

    def start(self, probe: str = "/") -> Gunicorn:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited at start:\n{self.tail()}")
            try:
                status, _, _ = http_get(self.port, probe, timeout=5)
                if status < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.name} did not answer within 60 s:\n{self.tail()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def errors(self, lines: int = 40) -> str:
        """The last traceback or error lines of the log, for a scenario that saw 5xx answers."""
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        starts = [i for i, line in enumerate(text) if "Traceback" in line or "ERROR" in line]
        return "\n".join(text[starts[-1]:][:lines] if starts else text[-lines:])

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def gunicorn_settings(args) -> tuple[list[str], str]:
    """The settings every server gets (blog and floor alike), and how to describe them."""
    config = Path(args.gunicorn_config) if args.gunicorn_config else next(
        (ROOT / c for c in GUNICORN_CONFIGS if (ROOT / c).is_file()), None)
    if config:
        return (["-c", str(config), "--workers", str(args.workers)],
                f"-c {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config} --workers {args.workers}")
    settings = ["--workers", str(args.workers), *FALLBACK_GUNICORN]
    return settings, " ".join(settings) + " (no gunicorn config in the repository: the benchmark's fallback)"


# ---------------------------------------------------------------------------- databases


class Databases:
    """Fresh databases for one run: SQLite files in the temp dir, or PostgreSQL schemas dropped at the end."""

    def __init__(self, url: str | None, workdir: Path):
        self.workdir = workdir
        self.schemas: list[str] = []
        self.pg = None
        if url:
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url

            base = make_url(url)
            if base.drivername in ("postgresql", "postgres"):
                base = base.set(drivername="postgresql+psycopg")  # psycopg 3 is what the project installs
            if not base.drivername.startswith("postgresql"):
                sys.exit(f"--db takes a postgresql:// URL, not {base.drivername}")
            self.pg = base
            self.admin = create_engine(base, isolation_level="AUTOCOMMIT")

    @property
    def kind(self) -> str:
        return "postgresql" if self.pg else "sqlite"

    def create(self, label: str) -> str:
        if not self.pg:
            return f"sqlite:///{self.workdir / f'{label}.sqlite'}"
        from sqlalchemy import text

        schema = f"bench_{label}_{secrets.token_hex(4)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        url = self.pg.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def version(self) -> str:
        if not self.pg:
            return f"SQLite {sqlite3.sqlite_version}"
        from sqlalchemy import text

        with self.admin.connect() as conn:
            return " ".join(conn.execute(text("SELECT version()")).scalar().split()[:2])

    def drop_all(self) -> None:
        if not self.pg:
            return
        from sqlalchemy import text

        with self.admin.connect() as conn:
            for schema in self.schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.schemas.clear()
        self.admin.dispose()


# ---------------------------------------------------------------------------- figures


@dataclass
class Row:
    scenario: str
    result: WrkResult | None
    ratio: float | None = None  # to the floor, or to the no-flood figure
    ratio_of: str = "floor"
    note: str = ""


@dataclass
class Target:
    what: str
    met: bool | None  # None: not measured in this run
    detail: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    scale_rows: list[Row] = field(default_factory=list)
    flood_rows: list[Row] = field(default_factory=list)
    verify: list[tuple[str, float, float]] = field(default_factory=list)  # (page, read_page ms, lxml ms)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wxr: wxr_mod.WxrResult | None = None  # the WordPress import
    hit_ratio: hitratio_mod.HitRatio | None = None  # the page cache while comments arrive
    flood_cores: dict[str, float] = field(default_factory=dict)  # a flood's title -> cores it alone cost the blog


def fmt_result(r: WrkResult | None) -> tuple[str, str, str]:
    if r is None:
        return "n/a", "n/a", "n/a"
    if r.requests == 0:  # wrk's latency lines then read 0: nothing finished, not "instant"
        return "0", "-", "-"
    return f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}"


def status_note(r: WrkResult, expected: int) -> str:
    """Say when answers were not what the scenario expects (a 404 is fast, and meaningless)."""
    other = r.count_other_than(expected)
    parts = [] if r.requests else ["no request finished within the run (wrk --timeout 10s)"]
    if other:
        seen = ", ".join(f"{n} x {code}" for code, n in sorted(r.statuses.items()))
        parts.append(f"{other} of {r.requests} answers were not {expected} ({seen})")
    if r.socket_errors and any(int(n) for n in re.findall(r"\d+", r.socket_errors)):
        parts.append(f"socket errors: {r.socket_errors}")
    return "; ".join(parts)


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"  {'scenario':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>12}")
    for row in rows:
        rps, p50, p99 = fmt_result(row.result)
        ratio = f"{row.ratio:.2f} {row.ratio_of}" if row.ratio is not None else ""
        print(f"  {row.scenario:<44} {rps:>9} {p50:>8} {p99:>8} {ratio:>12}")
        if row.note:
            print(f"      {row.note}")


# ---------------------------------------------------------------------------- scenarios


def seed_database(dbs: Databases, label: str, env_base: dict[str, str], posts: int, comments: int):
    uri = dbs.create(label)
    env = child_env({**env_base, "BLOGAPP_SQLALCHEMY_DATABASE_URI": uri})
    out = subprocess.run([str(BIN / "flask"), "--app", "blogapp", "init-db"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"init-db failed:\n{out.stdout}\n{out.stderr}")
    print(f"Seeding the {label} database: {posts:,} posts, {comments:,} comments besides the benchmark post's 200",
          flush=True)
    seeded = seed_mod.seed(uri, posts=posts, comments=comments, log=lambda m: print(m, flush=True))
    return uri, seeded


def blog_env(base: dict[str, str], uri: str, port: int, **extra: str) -> dict[str, str]:
    return child_env({**base, "BLOGAPP_SQLALCHEMY_DATABASE_URI": uri, "BLOGAPP_SITE_URL": f"http://127.0.0.1:{port}",
                      **extra})


def start_blog(name: str, base: dict[str, str], uri: str, settings: list[str], workdir: Path, path: str,
               servers: list[Gunicorn], **extra: str) -> Gunicorn:
    server = Gunicorn(name, "blogapp:create_app()", {}, settings, workdir)
    server.env = blog_env(base, uri, server.port, **extra)
    servers.append(server)
    print(f"Starting gunicorn: {name} on port {server.port}", flush=True)
    return server.start(path)


def conditional_headers(server: Gunicorn, path: str) -> tuple[dict[str, str] | None, str]:
    status, headers, _ = http_get(server.port, path)
    if status != 200:
        return None, f"the post page answered {status}"
    if "etag" in headers:
        return {"If-None-Match": headers["etag"]}, f"If-None-Match: {headers['etag']}"
    if "last-modified" in headers:
        return {"If-Modified-Since": headers["last-modified"]}, f"If-Modified-Since: {headers['last-modified']}"
    return None, "no ETag/Last-Modified: 304 not possible yet"


def deep_listing_rows(wrk: Wrk, nocache: Gunicorn, uri: str, floor_rps: float | None, label: str) -> list[Row]:
    """Index pages from the cache-off server, one request at a time: page 2, and a page half way
    down the blog asked for by number (OFFSET) and by the cursor its "Older posts" link carries."""
    from sqlalchemy import DateTime, Integer, create_engine, text as sql

    from blogapp.blog.listing import cursor_at
    from blogapp.config import DEFAULTS

    engine = create_engine(uri)
    now = datetime.now(UTC).replace(tzinfo=None)  # stored naive, in UTC
    try:
        with engine.connect() as conn:
            listed = conn.execute(sql("SELECT count(*) FROM post WHERE status = 'published' AND published_at <= :now"),
                                  {"now": now}).scalar()
            per_page = DEFAULTS["POSTS_PER_PAGE"]
            deep = max(3, listed // per_page // 2)
            edge = conn.execute(sql("SELECT published_at, id FROM post WHERE status = 'published' AND published_at <= :now "
                                    "ORDER BY published_at DESC, id DESC LIMIT 1 OFFSET :n")
                                .columns(published_at=DateTime, id=Integer),
                                {"now": now, "n": (deep - 1) * per_page - 1}).first()
    finally:
        engine.dispose()
    rows = []
    for name, path in ((f"index page 2{label}", "/page/2/"),
                       (f"index page {deep:,} by number (OFFSET){label}", f"/page/{deep}/"),
                       (f"index page {deep:,} by its Older link (cursor){label}",
                        f"/page/{deep}/?after={cursor_at(edge.published_at, edge.id)}")):
        print(f"  wrk {name}, cache off, one request at a time ...", flush=True)
        r = wrk.measure(nocache.url(path), connections=1)
        rows.append(Row(name, r, r.rps / floor_rps if floor_rps else None, note=status_note(r, 200)))
    return rows


def render_after_a_comment(workdir: Path) -> str:
    """The cache-off figures above render with the page's fragments kept (the thread, the sidebar,
    the neighbours). After a new comment the thread is built again: its in-process cost, beside
    the warm one, from ``render.py`` (a note, not a target)."""
    figures = {}
    for label, extra in (("thread built again", ["--cold-thread"]), ("fragments kept", [])):
        out = subprocess.run([sys.executable, str(HERE / "render.py"), "-n", "200", "--db", str(workdir / "render.sqlite"),
                              *extra], capture_output=True, text=True, cwd=ROOT)
        found = re.search(r"CPU\s+p50\s+([0-9.]+) ms", out.stdout)
        figures[label] = f"{found.group(1)} ms" if found else "not measured (" + (out.stderr.strip().splitlines() or ["?"])[-1] + ")"
    return ("post page, cache off, rendered in-process one at a time (render.py, CPU p50): after a new comment (the "
            f"thread and its fragment built again) {figures['thread built again']}; with every fragment kept "
            f"{figures['fragments kept']}")


def reader_pages(wrk: Wrk, blog: Gunicorn, nocache: Gunicorn, post_path: str, floor_rps: float | None,
                 label: str = "") -> tuple[list[Row], str, bool | None]:
    """Index, post page (cache on, cache off), feed, conditional GET: the rows, and the 304 verdict."""
    rows = []
    for name, server, path in (("index", blog, "/"), ("post page, 200 comments", blog, post_path),
                               ("post page, cache off", nocache, post_path), ("Atom feed", blog, "/feed/")):
        print(f"  wrk {name}{label} ...", flush=True)
        r = wrk.measure(server.url(path))
        rows.append(Row(name + label, r, r.rps / floor_rps if floor_rps else None, note=status_note(r, 200)))
        if any(code >= 500 for code in r.statuses):
            print(f"  {name}{label}: server errors; the end of gunicorn's log:\n{server.errors()}", flush=True)
    # Latency, not throughput: one request at a time, so p50 is the time to render the page rather
    # than time spent queueing behind 32 connections (with keep-alive, two connections may well
    # share one worker process and its GIL, so "one per worker" cannot be had from outside).
    name = "post page, cache off, one request at a time"
    print(f"  wrk {name}{label} ...", flush=True)
    r = wrk.measure(nocache.url(post_path), connections=1)
    rows.append(Row(name + label, r, r.rps / floor_rps if floor_rps else None, note=status_note(r, 200)))
    headers, how = conditional_headers(blog, post_path)
    verdict: bool | None
    if headers is None:
        rows.append(Row("conditional GET (304)" + label, None, note=how))
        verdict = False
    else:
        print(f"  wrk conditional GET{label} ({how}) ...", flush=True)
        r = wrk.measure(blog.url(post_path), headers, tally=True)
        non304 = r.count_other_than(304)
        note = f"{how}; {non304} of {r.requests} answers were not 304"
        if non304:
            note += " (" + ", ".join(f"{n} x {c}" for c, n in sorted(r.statuses.items())) + ")"
        rows.append(Row("conditional GET (304)" + label, r, r.rps / floor_rps if floor_rps else None, note=note))
        verdict = non304 == 0 and r.requests > 0
        how = note
    return rows, how, verdict


def verify_cpu(iterations: int) -> list[tuple[str, float, float]]:
    """CPU ms of read_page vs lxml.html.fromstring on the same 1 MB pages (median of iterations)."""
    import lxml.html

    from blogapp.linkback.errors import LinkbackError
    from blogapp.linkback.verify import read_page

    target = "http://127.0.0.1:5000/2026/11/27/the-benchmark-post/"
    source = "http://127.0.0.1:8080/2026/11/28/a-linking-post/"
    pages = [("1 MB page, link near the end", html_page(1_000_000, target)),
             ("1 MB page, no link", html_page(1_000_000, None))]

    def verify(body: bytes) -> None:
        # As the receiver calls it (blogapp/linkback/receive.py): the post's slug as the hint.
        try:
            read_page(body, "utf-8", source, lambda url: url == target, hints=("the-benchmark-post",))
        except LinkbackError:
            pass

    def cpu_ms(fn, body: bytes) -> float:
        fn(body)  # warm: imports, parser setup
        times = []
        for _ in range(iterations):
            t0 = time.process_time()
            fn(body)
            times.append((time.process_time() - t0) * 1000)
        return statistics.median(times)

    results = []
    for name, body in pages:
        print(f"  timing read_page and lxml on the {name} ({len(body):,} bytes) ...", flush=True)
        results.append((name, cpu_ms(verify, body), cpu_ms(lxml.html.fromstring, body)))
    return results


def final_outcomes(uri: str, prefix: str) -> str:
    """How the verifications that got a slot ended, as the blog logged them (answers may say "continues")."""
    from sqlalchemy import create_engine, text

    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT outcome, fault_code, COUNT(*) FROM linkback_log WHERE source_url LIKE :p "
                                     "GROUP BY outcome, fault_code ORDER BY 3 DESC"), {"p": prefix + "%"}).all()
    finally:
        engine.dispose()
    return ", ".join(f"{n} {outcome}" + (f" (fault {code})" if code is not None else "") for outcome, code, n in rows) \
        or "nothing"


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:  # no /proc: not Linux
        return found
    for entry in entries:
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@dataclass
class CpuUse:
    """CPU seconds used during one measurement, by whom (Linux only; zeros elsewhere)."""
    blog: float = 0.0  # the blog's gunicorn master and workers
    harness: float = 0.0  # this process: the flood's senders and source servers
    wrk: float = 0.0
    seconds: float = 0.0  # wall time

    def describe(self, requests: int) -> str:
        per_request = f" ({self.blog / requests * 1000:.2f} ms per reader request)" if requests else ""
        return (f"CPU in {self.seconds:.0f} s (of {self.seconds * (os.cpu_count() or 1):.0f} available): blog "
                f"{self.blog:.1f} s{per_request}, flood senders and sources {self.harness:.1f} s, wrk {self.wrk:.1f} s")


def metered(server: Gunicorn, run) -> tuple[WrkResult, CpuUse]:
    """``run()`` (a wrk run), with the CPU each party used meanwhile."""
    pids = [server.proc.pid, *_children(server.proc.pid)] if server.proc else []
    blog0 = sum(_proc_cpu(pid) for pid in pids)
    own0, wrk0, t0 = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    result = run()
    own1, wrk1 = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    use = CpuUse(blog=sum(_proc_cpu(pid) for pid in pids) - blog0,
                 harness=(own1.user + own1.system) - (own0.user + own0.system),
                 wrk=(wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime),
                 seconds=time.monotonic() - t0)
    return result, use


def run_floods(args, wrk: Wrk, base: dict[str, str], dbs: Databases, settings: list[str], workdir: Path,
               servers: list[Gunicorn], report: Report) -> None:
    """Reader throughput on the post page while pingbacks flood in, against the same blog without.

    Each flood gets a blog of its own on a freshly seeded database: what one flood leaves waiting
    (verifications under the caps per client and per source host, all 127.0.0.1 here) would
    otherwise decide how the next one is answered."""
    limit = args.linkback_rate_limit

    def fresh_blog(name: str) -> tuple[Gunicorn, str, str]:
        uri, seeded = seed_database(dbs, name.replace("-", "_"), base, posts=60, comments=300)
        # Rate limits stay on, as in production, but high: the in-flight cap is what is measured.
        blog = start_blog(name, base, uri, settings, workdir, seeded.bench_path, servers,
                          BLOGAPP_RATELIMIT_ENABLED="true", BLOGAPP_LINKBACK_RATE_LIMIT=limit,
                          BLOGAPP_LINKBACK_SOURCE_RATE_LIMIT=limit)
        return blog, uri, blog.url(seeded.bench_path)

    blog, _, target = fresh_blog("blog-no-flood")
    print("  wrk post page, no flood ...", flush=True)
    wrk.run(target, duration=wrk.warmup)  # a warm-up, then the measurement, metered
    base_r, base_cpu = metered(blog, lambda: wrk.run(target))
    report.flood_rows.append(Row("post page, no flood", base_r, None,
                                 note="; ".join(filter(None, [status_note(base_r, 200), base_cpu.describe(base_r.requests)]))))
    blog.stop()
    floods = (
        (f"{args.flood_size} pingbacks in flight, sources answer in {args.slow_seconds:g} s", "slow",
         lambda target: flood_mod.slow_source(target, args.slow_seconds)),
        (f"{args.flood_size} pingbacks in flight, {args.big_mb:g} MB sources", "big",
         lambda target: flood_mod.big_source(target, int(args.big_mb * 1_000_000))),
    )
    for title, label, make_source in floods:
        blog, uri, target = fresh_blog(f"blog-flood-{label}")
        wrk.run(target, duration=wrk.warmup)
        source = make_source(target)
        flood = flood_mod.Flood(blog.port, source, target, size=args.flood_size, label=f"{label}-{secrets.token_hex(3)}",
                                period=args.flood_period)
        print(f"  wrk post page during the flood: {title} ...", flush=True)
        try:
            flood.start()
            # The flood alone first (the first wave is in flight before readers are measured): what
            # it costs the blog, and what it costs this machine's senders and sources.
            _, alone = metered(blog, lambda: time.sleep(3.0))
            r, cpu = metered(blog, lambda: wrk.run(target))
        finally:
            flood.stop()
            drained = source.wait_idle(args.slow_seconds + 20)
            source.stop()
        time.sleep(1.0)  # the blog records the last verifications
        tally = ", ".join(f"{n} {outcome}" for outcome, n in flood.tally.most_common())
        report.flood_cores[title] = alone.blog / alone.seconds
        note = f"{flood.sent} pingbacks in {flood.waves} waves: {tally}"
        note += f"; in the linkback log: {final_outcomes(uri, source.url(flood.label))}"
        if not drained:
            note += "; the sources were still busy 20 s after the flood"
        note += (f"; the flood alone used {alone.blog / alone.seconds:.2f} cores in the blog and "
                 f"{alone.harness / alone.seconds:.2f} in its senders and sources; with readers, " + cpu.describe(r.requests))
        extra = status_note(r, 200)
        report.flood_rows.append(Row(title, r, r.rps / base_r.rps if base_r.rps else None, "no-flood",
                                     note + (f"; {extra}" if extra else "")))
        blog.stop()


# ---------------------------------------------------------------------------- output


def machine_info(wrk_bin: str, dbs: Databases) -> list[tuple[str, str]]:
    gunicorn_v = subprocess.run([str(BIN / "gunicorn"), "--version"], capture_output=True, text=True).stdout.strip()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return [("CPUs (nproc)", f"{os.cpu_count()} ({model})"), ("OS", platform.platform()),
            ("Python", platform.python_version()), ("gunicorn", gunicorn_v), ("wrk", wrk_version(wrk_bin)),
            ("database", dbs.version())]


def md_table(rows: list[Row]) -> list[str]:
    out = ["| scenario | req/s | p50 ms | p99 ms | ratio | notes |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        rps, p50, p99 = fmt_result(row.result)
        ratio = f"{row.ratio:.2f} of {row.ratio_of}" if row.ratio is not None else ""
        out.append(f"| {row.scenario} | {rps} | {p50} | {p99} | {ratio} | {row.note.replace('|', '/')} |")
    return out


def write_results(path: Path, args, report: Report, info, settings_text: str, sizes: str) -> None:
    lines = [f"# blogapp benchmark, {date.today().isoformat()}", ""]
    if args.quick:
        lines += ["*Quick run (`--quick`): short measurements, indicative only.*", ""]
    lines += ["## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info], ""]
    lines += ["## Settings", "",
              f"- gunicorn (blog and floor alike): `{settings_text}`",
              f"- wrk: `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
              f"after a {args.warmup:g} s warm-up of each URL; loopback; "
              + (f"each connection closed after {args.reconnect_every} requests" if args.reconnect_every
                 else "connections kept for the whole run"),
              f"- data: {sizes}",
              "- blog: `RATELIMIT_ENABLED=false` for the reader pages; page cache off via `BLOGAPP_PAGE_CACHE=false`",
              f"- floods: rate limits on, linkback limits `{args.linkback_rate_limit}` (so the in-flight cap is what "
              f"binds); `LINKBACK_FETCH_ALLOWLIST=[\"127.0.0.0/8\"]`; waves of {args.flood_size} concurrent "
              f"pingbacks, one wave at most every {args.flood_period:g} s", ""]
    lines += ["## Reader pages", "", *md_table(report.rows), ""]
    if report.scale_rows:
        lines += ["## Reader pages at scale", "", *md_table(report.scale_rows), ""]
    if report.verify:
        lines += ["## Verifying a pingback (CPU)", "",
                  "| page | read_page ms | lxml.html.fromstring ms | ratio |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {ours:.0f} | {lxml_ms:.0f} | {ours / lxml_ms:.1f}x |" for name, ours, lxml_ms in report.verify]
        lines.append("")
    if report.hit_ratio:
        lines += ["## The page cache while comments arrive", "",
                  f"{hitratio_mod.READERS} readers over the 60 posts (Zipf popularity, s={hitratio_mod.ZIPF_S:g}; "
                  "85% post pages, the rest the front page, its page 2 and the feed), a comment on a random post "
                  "each second (moderation: approve):", "", "- " + hitratio_mod.describe(report.hit_ratio), ""]
    if report.flood_rows:
        lines += ["## Readers during a pingback flood", "", *md_table(report.flood_rows), ""]
    if report.wxr:
        lines += wxr_mod.markdown(report.wxr)
    lines += ["## Targets", "", "| target | result | measured |", "|---|---|---|"]
    for t in report.targets:
        verdict = "not measured" if t.met is None else ("MET" if t.met else "MISSED")
        lines.append(f"| {t.what} | {verdict} | {t.detail} |")
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in report.notes]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def update_readme(variant: str, report: Report, results_path: Path, args, sizes: str) -> None:
    """Replace this variant's short table in benchmarks/README.md, between its markers."""
    readme = HERE / "README.md"
    start, end = f"<!-- bench:{variant}:start -->", f"<!-- bench:{variant}:end -->"
    rows = [f"{variant}, {date.today().isoformat()}{' (quick)' if args.quick else ''}, {sizes}: "
            f"[full results](results/{results_path.name})", "",
            "| figure | req/s | p50 ms | p99 ms | ratio |", "|---|---:|---:|---:|---:|"]
    for row in report.rows + report.scale_rows + report.flood_rows:
        rps, p50, p99 = fmt_result(row.result)
        ratio = f"{row.ratio:.2f} of {row.ratio_of}" if row.ratio is not None else ""
        rows.append(f"| {row.scenario} | {rps} | {p50} | {p99} | {ratio} |")
    if report.verify:
        rows += ["", "Verifying a pingback, CPU: " + "; ".join(
            f"{name}: {ours:.0f} ms, {ours / lxml_ms:.1f}x lxml" for name, ours, lxml_ms in report.verify) + "."]
    met = sum(1 for t in report.targets if t.met)
    measured = sum(1 for t in report.targets if t.met is not None)
    rows += ["", f"Targets met: {met} of {measured} measured.", ""]
    for t in report.targets:
        verdict = "not measured" if t.met is None else ("MET" if t.met else "MISSED")
        rows.append(f"- {verdict}: {t.what} ({t.detail})")
    block = "\n".join([start, *rows, end])
    text = readme.read_text() if readme.exists() else ""
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


def evaluate(report: Report, args, dbs: Databases, verdict_304: bool | None, how_304: str) -> None:
    by = {row.scenario: row for row in report.rows}
    targets = report.targets

    def ratio_target(what, name, floor=0.5):
        row = by.get(name)
        if row and row.ratio is not None:
            targets.append(Target(what, row.ratio >= floor, f"{row.ratio:.2f} of floor"))
        else:
            targets.append(Target(what, None, "n/a"))

    ratio_target("post page (cache on) >= 0.5 of floor req/s", "post page, 200 comments")
    row = by.get("post page, cache off, one request at a time")
    if row and row.result:
        targets.append(Target("post page, cache off: p50 <= 10 ms (one request at a time)", row.result.p50_ms <= 10,
                              f"p50 {row.result.p50_ms:.1f} ms"))
    ratio_target("post page, cache off >= 0.1 of floor req/s", "post page, cache off", floor=0.1)
    ratio_target("index >= 0.5 of floor req/s", "index")
    ratio_target("Atom feed >= 0.5 of floor req/s", "Atom feed")
    targets.append(Target("conditional GET answers 304", verdict_304, how_304))
    if report.hit_ratio and report.hit_ratio.ratio is not None:
        targets.append(Target("cache hit ratio >= 95% while a comment arrives each second",
                              report.hit_ratio.ratio >= 0.95, hitratio_mod.describe(report.hit_ratio)))
    for name, ours, lxml_ms in report.verify:
        targets.append(Target(f"verifying the {name} <= 5x lxml CPU", ours / lxml_ms <= 5, f"{ours / lxml_ms:.1f}x"))
    for row in report.flood_rows[1:]:
        if row.result and row.ratio is not None:
            ok = row.ratio >= 0.5 and row.result.p99_ms < 250 and row.result.requests > 0
            p99 = f"p99 {row.result.p99_ms:.0f} ms" if row.result.requests else "no request finished"
            targets.append(Target(f"{row.scenario}: >= 0.5 of no-flood req/s, p99 < 250 ms", ok,
                                  f"{row.ratio:.2f}, {p99}"))
    for title, cores in report.flood_cores.items():
        if "MB sources" in title:
            targets.append(Target(f"{title}: the flood alone costs the blog <= 0.5 core", cores <= 0.5,
                                  f"{cores:.2f} cores"))
    if report.scale_rows:
        small = {r.scenario: r for r in report.rows}
        for name in ("index", "post page, 200 comments", "post page, cache off"):
            big = next((r for r in report.scale_rows if r.scenario.startswith(name + " ")), None)
            if not (big and big.result and small.get(name) and small[name].result):
                continue
            factor = big.result.p50_ms / small[name].result.p50_ms
            what = f"at scale, {name}: p50 within 1.5x of the small database"
            if dbs.kind != "postgresql":
                what += " (the target is for PostgreSQL)"
            targets.append(Target(what, factor <= 1.5, f"{factor:.2f}x ({small[name].result.p50_ms:.1f} -> "
                                                       f"{big.result.p50_ms:.1f} ms)"))
        second = next((r for r in report.scale_rows if r.scenario.startswith("index page 2 ")), None)
        by_cursor = next((r for r in report.scale_rows if "(cursor)" in r.scenario), None)
        if second and by_cursor and second.result and by_cursor.result:
            factor = by_cursor.result.p50_ms / second.result.p50_ms
            what = "at scale, a deep index page by its Older link: p50 within 1.5x of page 2"
            if dbs.kind != "postgresql":
                what += " (the target is for PostgreSQL)"
            targets.append(Target(what, factor <= 1.5, f"{factor:.2f}x ({second.result.p50_ms:.1f} -> "
                                                 f"{by_cursor.result.p50_ms:.1f} ms)"))


# ---------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="blogapp benchmarks: print figures, write benchmarks/results/<date>.md")
    p.add_argument("--db", help="a PostgreSQL URL (a fresh schema is created and dropped); default: SQLite")
    p.add_argument("--scale", action="store_true",
                   help=f"also seed {SCALE_POSTS:,} posts and {SCALE_COMMENTS:,} comments and measure the pages again")
    p.add_argument("--posts", type=int, help="posts of the --scale database (to try the seeding path smaller)")
    p.add_argument("--comments", type=int, help="comments of the --scale database")
    p.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-ups, fewer iterations")
    p.add_argument("--duration", type=float, help="seconds of each wrk run (default 10, quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per URL (default 2, quick 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--reconnect-every", type=int, default=100, metavar="N",
                   help="close each wrk connection after N requests, as readers come and go (default 100; 0: never)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--gunicorn-config", help="a gunicorn config file (default: the repository's, if any)")
    p.add_argument("--iterations", type=int, help="read_page/lxml timings per page (default 5, quick 2)")
    p.add_argument("--flood-size", type=int, default=200, help="pingbacks in flight per wave (default 200)")
    p.add_argument("--flood-period", type=float, default=1.0, help="seconds between the starts of two waves, at least")
    p.add_argument("--slow-seconds", type=float, default=5.0, help="how long a slow source takes to answer")
    p.add_argument("--big-mb", type=float, default=5.0, help="size of a big source's page in MB")
    p.add_argument("--linkback-rate-limit", default="100000 per minute",
                   help="LINKBACK_RATE_LIMIT and LINKBACK_SOURCE_RATE_LIMIT during the floods")
    p.add_argument("--skip-floods", action="store_true")
    p.add_argument("--skip-verify", action="store_true")
    p.add_argument("--skip-wxr", action="store_true", help="leave out the WordPress import")
    p.add_argument("--only", choices=["wxr", "search"],
                   help="run one section alone (wxr: the WordPress import; search: two-word queries at "
                        "100,000 posts, PostgreSQL only, --posts N for another size; neither needs wrk nor gunicorn)")
    p.add_argument("--wxr-posts", type=int, help="posts of the generated WXR file (default 10,000; quick 1,000)")
    p.add_argument("--wxr-comments", type=int, help="comments of the WXR file (default 200,000; quick 20,000)")
    p.add_argument("--wxr-file", help="import this WXR file instead of generating one")
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra blog setting for every blog server, e.g. LINKBACK_MAX_IN_FLIGHT=4")
    args = p.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.iterations = args.iterations or (2 if args.quick else 5)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.only == "wxr":
        return wxr_mod.only(args, Databases, child_env)
    if args.only == "search":
        return search_mod.only(args)
    wrk_bin = ensure_wrk()
    if not (BIN / "gunicorn").exists():
        sys.exit(f"gunicorn is not installed in {BIN}: run `make bench` (it installs '.[prod]').")
    workdir = Path(tempfile.mkdtemp(prefix="blogapp-bench-"))
    servers: list[Gunicorn] = []
    dbs = Databases(args.db, workdir)
    report = Report()
    settings, settings_text = gunicorn_settings(args)
    wrk = Wrk(wrk_bin, workdir, threads=args.threads, connections=args.connections, duration=args.duration,
              reconnect_every=args.reconnect_every or None,
              warmup=args.warmup)
    base = {"BLOGAPP_INSTANCE_PATH": str(workdir / "instance"), "BLOGAPP_SECRET_KEY": secrets.token_hex(32),
            "BLOGAPP_RATELIMIT_ENABLED": "false", "BLOGAPP_LINKBACK_FETCH_ALLOWLIST": '["127.0.0.0/8"]',
            "BLOGAPP_JOBS_BACKEND": "thread", "BLOGAPP_TIMEZONE": "UTC"}
    for item in args.setting:
        name, _, value = item.partition("=")
        base["BLOGAPP_" + name.removeprefix("BLOGAPP_")] = value
    scale_posts, scale_comments = args.posts or SCALE_POSTS, args.comments or SCALE_COMMENTS
    sizes = "60 posts, 500 comments (200 on the benchmark post)"
    if args.scale:
        sizes += f"; at scale {scale_posts:,} posts, {scale_comments + 200:,} comments"
    try:
        info = machine_info(wrk_bin, dbs)
        print("Machine: " + "; ".join(f"{k} {v}" for k, v in info))
        print(f"gunicorn settings: {settings_text}", flush=True)
        uri, seeded = seed_database(dbs, "small", base, posts=60, comments=300)
        post_path = seeded.bench_path

        floor = Gunicorn("floor", "floor:app", child_env({}), settings, workdir, pythonpath=HERE)
        servers.append(floor)
        print(f"Starting gunicorn: floor on port {floor.port}", flush=True)
        floor.start()
        # A config file may name the blog as wsgi_app: make sure the command line's floor app won.
        if b"The floor" not in http_get(floor.port, "/")[2]:
            raise RuntimeError("the floor server does not serve benchmarks/floor.py")
        blog = start_blog("blog", base, uri, settings, workdir, post_path, servers)
        nocache = start_blog("blog-cache-off", base, uri, settings, workdir, post_path, servers,
                             BLOGAPP_PAGE_CACHE="false")
        print("Reader pages:", flush=True)
        print("  wrk floor ...", flush=True)
        floor_r = wrk.measure(floor.url("/"))
        report.rows.append(Row("floor: bare Flask, one line", floor_r, 1.0, note=status_note(floor_r, 200)))
        rows, how_304, verdict_304 = reader_pages(wrk, blog, nocache, post_path, floor_r.rps)
        report.rows += rows
        for s in (blog, nocache):
            s.stop()
        print_rows("Reader pages", report.rows)
        report.notes.append(render_after_a_comment(workdir))
        print("  " + report.notes[-1], flush=True)

        print("\nThe page cache while comments arrive:", flush=True)
        # A database of its own: the comments it adds stay out of the other figures.
        uri_busy, seeded_busy = seed_database(dbs, "busy", base, posts=60, comments=300)
        busy = start_blog("blog-busy-day", base, uri_busy, settings, workdir, seeded_busy.bench_path, servers,
                          BLOGAPP_COMMENT_MODERATION="approve")
        report.hit_ratio = hitratio_mod.measure(busy.port, uri_busy, 10.0 if args.quick else 30.0)
        busy.stop()
        print("  " + hitratio_mod.describe(report.hit_ratio), flush=True)

        if not args.skip_verify:
            print("\nVerification CPU:", flush=True)
            report.verify = verify_cpu(args.iterations)
            for name, ours, lxml_ms in report.verify:
                print(f"  {name:<32} read_page {ours:8.0f} ms CPU   lxml {lxml_ms:6.0f} ms   {ours / lxml_ms:5.1f}x")

        if not args.skip_floods:
            print("\nFloods:", flush=True)
            run_floods(args, wrk, base, dbs, settings, workdir, servers, report)
            print_rows("Readers during a pingback flood", report.flood_rows)

        if not args.skip_wxr:
            print("\nWordPress import:", flush=True)
            report.wxr = wxr_mod.measure(dbs.create, dbs.kind, child_env(base), workdir, *wxr_mod.sizes(args),
                                         file=args.wxr_file, log=lambda m: print(m, flush=True))
            wxr_mod.print_result(report.wxr)

        if args.scale:
            uri_big, seeded_big = seed_database(dbs, "scale", base, posts=scale_posts, comments=scale_comments)
            report.notes.append(f"Seeding {seeded_big.posts:,} posts and {seeded_big.comments:,} comments took "
                                f"{seeded_big.seconds:.0f} s.")
            blog = start_blog("blog-scale", base, uri_big, settings, workdir, seeded_big.bench_path, servers)
            nocache = start_blog("blog-scale-cache-off", base, uri_big, settings, workdir, seeded_big.bench_path,
                                 servers, BLOGAPP_PAGE_CACHE="false")
            rows, _, _ = reader_pages(wrk, blog, nocache, seeded_big.bench_path, floor_r.rps, label=" (scale)")
            rows += deep_listing_rows(wrk, nocache, uri_big, floor_r.rps, label=" (scale)")
            report.scale_rows = rows
            for s in (blog, nocache):
                s.stop()
            print_rows("Reader pages at scale", report.scale_rows)

        evaluate(report, args, dbs, verdict_304, how_304)
        if report.wxr:
            report.targets += [Target(*t) for t in wxr_mod.targets(report.wxr)]
        print("\nTargets:")
        for t in report.targets:
            verdict = "not measured" if t.met is None else ("MET" if t.met else "MISSED")
            print(f"  {verdict:<12} {t.what}: {t.detail}")
        variant = dbs.kind + ("-scale" if args.scale else "")
        suffix = ("-pg" if dbs.pg else "") + ("-scale" if args.scale else "")
        results_path = HERE / "results" / f"{date.today().isoformat()}{suffix}.md"
        write_results(results_path, args, report, info, settings_text, sizes)
        update_readme(variant, report, results_path, args, sizes)
        if report.wxr:
            wxr_mod.update_readme(HERE / "README.md", report.wxr, results_path.name, args.quick)
        print(f"\nWrote {results_path.relative_to(ROOT)} and the {variant} table in benchmarks/README.md")
        return 0
    finally:
        for server in reversed(servers):
            server.stop()
        try:
            dbs.drop_all()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
