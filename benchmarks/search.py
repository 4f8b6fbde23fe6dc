"""The search benchmark: two-word queries at 100,000 posts on PostgreSQL (``/?s=words``).

    python benchmarks/search.py [--db postgresql://...] [--posts N] [--queries N]
    make bench ARGS="--only search --db postgresql://postgres@127.0.0.1:5432/test"

PostgreSQL only (SQLite's FTS5 is not what a blog of this size runs on): the URL is ``--db``, else
``TEST_DATABASE_URL``; with neither, it prints one line saying it skipped and exits 0.

In a schema of its own (dropped at the end), the tables are made by ``create_all`` (the search
trigger and GIN index with them), then ``--posts`` posts (100,000) are written by bulk INSERTs
(2,000 rows a statement): titles of 4-9 words and bodies of 80-480 words drawn from a vocabulary
of 20,000 words by Zipf's law (word k about 1/k as often as the first): the demo's English words,
most frequent first, then made-up words for the long tail. The search trigger fills each post's tsvector as it is written, as for a real save.

Then ``--queries`` two-word queries (300), each word drawn from the vocabulary's ranks 20-2,000
(real words a reader types, from common to rare), are timed through ``blogapp.search.find`` (the
count, the page of 10 by ``ts_rank``, the headlines: everything the results page asks of the
database), and again as the whole results page (``GET /?s=...``, page cache off). p50 and p95 of
each are printed, against the target: p50 under 50 ms.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

DEFAULT_POSTS, DEFAULT_QUERIES = 100_000, 300
VOCABULARY = 20_000
TARGET_P50_MS = 50.0


def vocabulary(size: int = VOCABULARY, seed: int = 7) -> list[str]:
    """Real English words first (the demo's, by how often the demo uses them), then made-up ones."""
    from collections import Counter

    demo = (ROOT / "blogapp" / "demo.py").read_text(encoding="utf-8")
    counts = Counter(w.lower() for w in re.findall(r"[A-Za-z]{2,}", demo))
    words = [w for w, _ in counts.most_common()]
    rng = random.Random(seed)
    syllables = ["ba", "ce", "di", "fo", "gu", "ha", "ke", "li", "mo", "nu", "pa", "re", "si", "to", "vu", "wa",
                 "zo", "ran", "tel", "mor", "kin", "dal", "ves", "pri", "sto"]
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words[:size]


def seed_posts(conn, words: list[str], posts: int, seed: int = 5) -> float:
    """``posts`` published posts by bulk INSERTs (multi-row, 2,000 rows a statement); returns the seconds."""
    from itertools import accumulate

    from sqlalchemy import insert

    from blogapp.models import Post

    started = time.perf_counter()
    rng = random.Random(seed)
    cumulative = list(accumulate(1.0 / rank for rank in range(1, len(words) + 1)))  # Zipf, s = 1
    now = datetime.now(UTC).replace(tzinfo=None)
    batch = []
    for i in range(1, posts + 1):
        title = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 9))).capitalize()
        body = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(80, 480)))
        batch.append({"title": title, "slug": f"bench-{i}", "body": body, "body_format": "markdown",
                      "body_html": f"<p>{body}</p>", "search_text": body, "excerpt": "", "status": "published",
                      "published_at": now - timedelta(minutes=7 * i), "created_at": now, "updated_at": now,
                      "comments_open": True, "pings_open": True, "send_linkbacks": False})
        if len(batch) == 2000 or i == posts:
            conn.execute(insert(Post.__table__), batch)
            batch = []
    conn.exec_driver_sql("ANALYZE post")
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def queries(words: list[str], count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    band = words[20:2000]
    return [f"{rng.choice(band)} {rng.choice(band)}" for _ in range(count)]


def measure(url: str, posts: int, count: int, log=print) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from blogapp import create_app
    from blogapp.extensions import db
    from blogapp.models import utcnow
    from blogapp import search

    base = make_url(url)
    if base.drivername in ("postgresql", "postgres"):
        base = base.set(drivername="postgresql+psycopg")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schema = f"bench_search_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    workdir = Path(tempfile.mkdtemp(prefix="blogapp-bench-search-"))
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": base.render_as_string(hide_password=False),
                          "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
                          "SECRET_KEY": secrets.token_hex(16), "SITE_URL": "http://localhost", "PAGE_CACHE": False,
                          "RATELIMIT_ENABLED": False, "JOBS_BACKEND": "thread"},
                         instance_path=str(workdir / "instance"))
        words = vocabulary()
        with app.app_context():
            db.create_all()
            log(f"Seeding {posts:,} posts (bulk INSERTs; the search trigger fills each tsvector) ...")
            with db.engine.begin() as conn:
                seconds = seed_posts(conn, words, posts)
                size = conn.execute(text("SELECT pg_size_pretty(pg_relation_size('ix_post_search_vector'))")).scalar()
            log(f"  {seconds:.0f} s; GIN index {size}")
            asked = queries(words, count)
            for q in asked[:20]:  # warm the caches, as a serving database is
                search.find(search.terms(q), offset=0, limit=10, now=utcnow())
                db.session.rollback()
            find_ms, matches = [], []
            for q in asked:
                started = time.perf_counter()
                found = search.find(search.terms(q), offset=0, limit=10, now=utcnow())
                find_ms.append((time.perf_counter() - started) * 1000)
                matches.append(found.total)
                db.session.rollback()
            plan = "\n".join(db.session.execute(text(
                "EXPLAIN SELECT count(*) FROM post WHERE search_vector @@ plainto_tsquery('english', :q)"),
                {"q": asked[0]}).scalars())
            db.session.rollback()
        client = app.test_client()
        page_ms = []
        for q in asked:
            started = time.perf_counter()
            response = client.get("/", query_string={"s": q})
            page_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"/?s={q} answered {response.status_code}")
        return {"posts": posts, "queries": count, "seed_seconds": seconds, "index_size": size,
                "find_p50": percentile(find_ms, 0.50), "find_p95": percentile(find_ms, 0.95),
                "page_p50": percentile(page_ms, 0.50), "page_p95": percentile(page_ms, 0.95),
                "matches_median": statistics.median(matches), "matches_max": max(matches), "plan": plan}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def describe(r: dict) -> list[str]:
    verdict = "MET" if r["find_p50"] < TARGET_P50_MS else "MISSED"
    return [
        f"Search, {r['posts']:,} posts, {r['queries']} two-word queries (matches per query: median "
        f"{r['matches_median']:,.0f}, most {r['matches_max']:,}):",
        f"  database work (blogapp.search.find: count, page by ts_rank, headlines): "
        f"p50 {r['find_p50']:.1f} ms, p95 {r['find_p95']:.1f} ms",
        f"  whole results page (GET /?s=..., page cache off, in-process): "
        f"p50 {r['page_p50']:.1f} ms, p95 {r['page_p95']:.1f} ms",
        f"  {verdict:<12} search p50 under {TARGET_P50_MS:.0f} ms: {r['find_p50']:.1f} ms",
    ]


def only(args) -> int:
    """``bench.py --only search``: this benchmark alone; it prints its figures (no results file)."""
    url = args.db or os.environ.get("TEST_DATABASE_URL")
    if not url:
        print("search benchmark skipped: it runs on PostgreSQL only (give --db URL or set TEST_DATABASE_URL)")
        return 0
    posts = getattr(args, "search_posts", None) or getattr(args, "posts", None) or DEFAULT_POSTS
    result = measure(url, posts, getattr(args, "search_queries", None) or DEFAULT_QUERIES,
                     log=lambda m: print(m, flush=True))
    print("\n".join(describe(result)))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="a postgresql:// URL (default: TEST_DATABASE_URL)")
    p.add_argument("--posts", dest="search_posts", type=int, default=DEFAULT_POSTS)
    p.add_argument("--queries", dest="search_queries", type=int, default=DEFAULT_QUERIES)
    return only(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
