"""The post page's render time, in-process, with the page cache off; and its HTML, kept to compare.

Builds the app on a SQLite file seeded as the benchmark suite seeds it (``seed.py``: a post with
200 comments, threads four deep, pingbacks and webmentions), plus a second post with every kind
of thread entry (likes, reposts, bookmarks, a webmention reply, a trackback, an admin's comment,
names that need escaping, replies nested past the thread depth, a held comment), and a closed
post. Then times N sequential GETs of the benchmark post with the Flask test client::

    python benchmarks/render.py [-n 300] [--db FILE] [--save DIR | --compare DIR] [--cold-thread] [--profile]

``--db FILE`` keeps the database (seeded on first use) so that pages saved with ``--save`` can be
compared with ``--compare`` byte for byte later: the seed's dates come from the clock, so a new
database would show other dates.
"""
from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import seed as seed_mod  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402

from blogapp import create_app  # noqa: E402
from blogapp.extensions import db  # noqa: E402
from blogapp.models import Comment, Post, SiteSetting  # noqa: E402

SITE_URL = "http://blog.bench"
EXTRAS_SLUG = "notes-from-practice-59"  # the second newest post: extra kinds of comments
CLOSED_SLUG = "notes-from-practice-58"  # comments closed
MARK = "render.py extras"


def build_app(uri: str, **overrides):
    config = {"SECRET_KEY": "render-bench", "SITE_URL": SITE_URL, "RATELIMIT_ENABLED": False,
              "SQLALCHEMY_DATABASE_URI": uri, "PAGE_CACHE": False, "WTF_CSRF_ENABLED": True, **overrides}
    app = create_app(config, instance_path=tempfile.mkdtemp(prefix="render-instance-"))
    return app


def prepare(path: Path) -> None:
    """Create and seed the database at ``path`` unless it is there already."""
    if path.exists():
        return
    uri = f"sqlite:///{path}"
    app = build_app(uri)
    with app.app_context():
        db.create_all()
    seed_mod.seed(uri, posts=60, comments=300, log=lambda m: print(m, file=sys.stderr))
    with app.app_context():
        add_extras()
    app.extensions["linkback_receiver"].shutdown()


def add_extras() -> None:
    post = db.session.scalar(select(Post).where(Post.slug == EXTRAS_SLUG))
    closed = db.session.scalar(select(Post).where(Post.slug == CLOSED_SLUG))
    db.session.execute(update(Post).where(Post.id == closed.id).values(comments_open=False, pings_open=False))
    base = post.published_at + timedelta(minutes=5)
    next_id = (db.session.scalar(select(Comment.id).order_by(Comment.id.desc()).limit(1)) or 0) + 1
    rows = []

    def add(minutes, **values):
        nonlocal next_id
        row = {"id": next_id, "post_id": post.id, "parent_id": None, "kind": "comment", "status": "approved",
               "author_name": "", "author_email": "x@example.org", "author_url": "", "source_url": None,
               "source_key": None, "content": "", "content_html": "", "created_at": base + timedelta(minutes=minutes),
               "updated_at": base, "ip": "192.0.2.9", "user_agent": MARK, "user_id": None, "response_type": None,
               "author_photo": None}
        row.update(values)
        rows.append(row)
        next_id += 1
        return row["id"]

    top = add(1, author_name='Eve <script>alert("x")</script> & "Co"', author_url="https://eve.example/?a=1&b='2'",
              content="hi", content_html="<p>Hi &amp; <em>welcome</em></p>")
    parent = top
    for depth in range(7):  # deeper than the default thread depth (5)
        parent = add(2 + depth, parent_id=parent, author_name=f"Replier {depth} 'quoted'",
                     content_html=f"<p>Reply level {depth + 2}</p>")
    add(10, parent_id=top, user_id=1, author_name="Bench Author", author_url="https://blog.bench/",
        content_html="<p>The author answers.</p>")
    held = add(11, status="pending", author_name="Held <b>Harry</b>", content_html="<p>Held for moderation</p>")
    add(12, parent_id=held, author_name="Reply to a held one", content_html="<p>Parent is not visible</p>")
    add(13, status="spam", author_name="Spammer", content_html="<p>buy</p>")
    for i, kind in enumerate(("like", "repost", "bookmark", "like")):
        src = f"https://social{i}.example/{kind}/{i}"
        add(20 + i, kind="webmention", response_type=kind, source_url=src, source_key=src[8:],
            author_name=f"Fan {i} & <friends>" if i != 1 else "", author_url="" if i == 2 else f"https://fan{i}.example/",
            author_photo=f"https://fan{i}.example/photo.jpg?s=32&x=\"1\"" if i % 2 == 0 else None)
    src = "https://replier.example/reply/1"
    wm_reply = add(30, kind="webmention", response_type="reply", source_url=src, source_key=src[8:],
                   author_name="Web Replier", author_url="https://replier.example/",
                   author_photo="https://replier.example/me.png", content="A reply <with> & markup \"quoted\"")
    add(31, parent_id=wm_reply, author_name="Answer to a webmention", content_html="<p>ok</p>")
    src = "https://mentioner.example/m"
    add(32, kind="webmention", response_type=None, source_url=src, source_key=src[8:], author_name="",
        content="")
    src = "https://tb.example/post?x=1&y=2"
    add(33, kind="trackback", source_url=src, source_key=src[8:], author_name="TB <Blog>",
        content="An excerpt & more […]")
    src = "https://pb.example/p"
    add(34, kind="pingback", source_url=src, source_key=src[8:], author_name="", content="")
    db.session.execute(insert(Comment.__table__), rows)
    db.session.commit()


def held_comment_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Comment.id).where(Comment.status == "pending", Comment.user_agent == MARK)))


def post_paths(app) -> dict[str, str]:
    from blogapp.templating import post_path, site_request_context

    with site_request_context(app):
        return {slug: post_path(db.session.scalar(select(Post).where(Post.slug == slug)))
                for slug in (seed_mod.BENCH_SLUG, EXTRAS_SLUG, CLOSED_SLUG)}


CSRF = re.compile(rb'name="csrf_token" value="[^"]*"')


def pages(path: Path) -> dict[str, bytes]:
    """The HTML of every page variant worth comparing, by name."""
    uri = f"sqlite:///{path}"
    out: dict[str, bytes] = {}

    def get(app, name, url, *, session=None, method="GET", data=None, status=None):
        client = app.test_client()
        if session:
            with client.session_transaction() as s:
                s.update(session)
        resp = client.open(url, method=method, data=data)
        body = CSRF.sub(b'name="csrf_token" value="X"', resp.data)
        out[name] = f"{resp.status_code}\n".encode() + body

    app = build_app(uri)
    paths = post_paths(app)
    bench, extras, closed = paths[seed_mod.BENCH_SLUG], paths[EXTRAS_SLUG], paths[CLOSED_SLUG]
    held = held_comment_ids(app)
    get(app, "bench", bench)
    get(app, "bench-replytocom", bench + "?replytocom=5")
    get(app, "extras", extras)
    get(app, "extras-held-shown-to-author", extras, session={"held_comments": held})
    get(app, "extras-replytocom-missing", extras + "?replytocom=999999")
    get(app, "closed", closed)
    get(app, "extras-form-error", f"/posts/{_post_id(app, EXTRAS_SLUG)}/comments", method="POST",
        data={"content": "", "author_name": "<x>", "author_email": "nope"})
    get(app, "extras-admin", extras, session={"_user_id": "1", "_fresh": True})
    app.extensions["linkback_receiver"].shutdown()
    # Another zone (dates and permalinks move), another thread depth (a site setting).
    app = build_app(uri, TIMEZONE="Pacific/Chatham", WEBMENTION_ENABLED=False)
    paths = post_paths(app)
    get(app, "extras-chatham", paths[EXTRAS_SLUG])
    get(app, "bench-chatham", paths[seed_mod.BENCH_SLUG])
    with app.app_context():
        db.session.merge(SiteSetting(key="COMMENT_THREAD_DEPTH", value="2"))
        db.session.commit()
    try:
        get(app, "extras-depth2", paths[EXTRAS_SLUG])
        get(app, "bench-depth2", paths[seed_mod.BENCH_SLUG])
    finally:
        with app.app_context():
            db.session.delete(db.session.get(SiteSetting, "COMMENT_THREAD_DEPTH"))
            db.session.commit()
    app.extensions["linkback_receiver"].shutdown()
    return out


def _post_id(app, slug: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Post.id).where(Post.slug == slug))


def timings(path: Path, n: int, warmup: int = 20, cold_thread: bool = False) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this thread's) milliseconds of each of ``n`` GETs of the benchmark post.

    ``cold_thread``: before each GET, move the thread's part and forget the threads built (see
    ``forget_threads``), as when a comment has just changed: each GET builds the thread again.

    The garbage collector is set as gunicorn.conf.py sets it in each worker (frozen after start,
    collecting less often). CPU time is the steadier figure on a busy machine: other processes
    stretch the wall clock, not the work done.
    """
    app = build_app(f"sqlite:///{path}")
    url = post_paths(app)[seed_mod.BENCH_SLUG]
    client = app.test_client()
    for _ in range(warmup):
        assert client.get(url).status_code == 200
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(20_000, 50, 100)
    wall, cpu = [], []
    try:
        for _ in range(n):
            if cold_thread:
                forget_threads(app, seed_mod.BENCH_SLUG)
            t0, c0 = time.perf_counter(), time.thread_time()
            resp = client.get(url)
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    app.extensions["linkback_receiver"].shutdown()
    return wall, cpu


def forget_threads(app, slug: str) -> None:
    """As when a comment on the post has just been approved: its thread's part moves (so the kept
    thread fragment is stale) and the process forgets the threads it built."""
    try:
        from blogapp.pagecache import bump, thread_scope
        from blogapp.threads import thread_html
    except ImportError:  # before threads were kept
        return
    thread_html.cache_clear()
    with app.app_context():
        post_id = db.session.scalar(select(Post.id).where(Post.slug == slug))
        bump(db.session, [thread_scope(post_id)])
        db.session.commit()


def profile(path: Path, n: int) -> None:
    import cProfile
    import pstats

    app = build_app(f"sqlite:///{path}")
    url = post_paths(app)[seed_mod.BENCH_SLUG]
    client = app.test_client()
    for _ in range(10):
        client.get(url)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        client.get(url)
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(50)
    app.extensions["linkback_receiver"].shutdown()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=300, help="timed requests (default 300)")
    p.add_argument("--db", type=Path, help="keep the seeded database in this file (seeded if absent)")
    p.add_argument("--save", type=Path, help="write the pages' HTML into this directory")
    p.add_argument("--compare", type=Path, help="compare the pages' HTML with those saved in this directory")
    p.add_argument("--profile", action="store_true", help="cProfile the requests instead of timing them")
    p.add_argument("--cold-thread", action="store_true",
                   help="build the thread on every GET (as after a comment changed), not the one kept from the last")
    args = p.parse_args(argv)
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="render-bench-")
        args.db = Path(tmp.name) / "blog.sqlite"
    prepare(args.db)
    status = 0
    if args.save or args.compare:
        got = pages(args.db)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for name, body in got.items():
                (args.save / f"{name}.html").write_bytes(body)
            print(f"saved {len(got)} pages in {args.save}")
        if args.compare:
            for name, body in got.items():
                old = (args.compare / f"{name}.html").read_bytes()
                same = old == body
                status |= not same
                print(f"{'same' if same else 'DIFFERENT'}: {name} ({len(body)} bytes)")
    if args.profile:
        profile(args.db, args.n)
    elif not (args.save or args.compare) or args.n:
        wall, cpu = timings(args.db, args.n, cold_thread=args.cold_thread)
        print(f"post page, 200 comments, PAGE_CACHE off, {args.n} sequential GETs in-process (Flask test client)"
              f"{', thread built every time' if args.cold_thread else ''}:")
        for label, times in (("wall", wall), ("CPU", cpu)):
            q = statistics.quantiles(times, n=10)
            print(f"  {label:4}  p50 {statistics.median(times):6.2f} ms  p90 {q[8]:6.2f} ms  "
                  f"mean {statistics.fmean(times):6.2f} ms")
    if tmp:
        tmp.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
