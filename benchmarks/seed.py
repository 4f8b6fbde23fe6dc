"""Fill a freshly migrated blogapp database with benchmark data, fast.

Bulk Core inserts (executemany) in batches, one transaction per batch, with explicit ids so
replies can name their parents without a round trip. The ORM and ``save_post`` are far too slow
for a million rows, so sequences are set and statistics gathered by hand at the end.

Usage (the schema must exist: ``flask --app blogapp init-db`` first)::

    python benchmarks/seed.py URI [--posts N] [--comments N]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, event, inspect, insert, text

from blogapp.models import db  # noqa: F401  (imports every model into the metadata)
from blogapp.text import render_comment, render_post

BENCH_SLUG = "the-benchmark-post"
BENCH_COMMENTS = 200
BENCH_LINKBACKS = 20
THREAD_DEPTH = 4  # replies nest this deep on the benchmark post

CATEGORIES = ["Client Care", "Marketing / Strategy", "Self Care / Therapists", "Supervision", "Ethics",
              "Telehealth", "Business", "Research", "Training", "Groups", "Couples", "Adolescents"]
TAGS = [f"topic {i}" for i in range(40)]

POST_BODIES = [
    "Every few months a colleague asks how to fill a practice. *There is no trick*, only work done well.\n\n"
    "## The referral you never see\n\nMost new clients come from people I never met. [A note on referrals]"
    "(https://example.org/referrals) says the same.\n\n- Show up prepared.\n- Say what you will do, then do it.\n"
    "- Measure something.\n\nThat is slow, and it is also the only kind of marketing that compounds.",
    "Practices have seasons. There are springs when every week brings an enquiry, and winters when the phone is "
    "quiet.\n\nWinter is when I **read**, take a course and rest.\n\n> Tend the soil.\n\n1. Read\n2. Rest\n3. Repeat",
    "The fifty-minute hour is a container, not a cage. A client who knows the hour will end can risk going "
    "somewhere difficult.\n\n`Name the time` ten minutes before the end. Leave room to land.",
    "Here is my small, unglamorous rule: no more than five clients on any day, and one afternoon a week with "
    "nothing scheduled at all.\n\nMy clients have never suffered from my rest. They have suffered from my fatigue.",
]
COMMENT_TEXTS = [
    "This reframed something for me. I have been apologising for ending on time.",
    "Ending on time *is* the care. Try saying \"we have ten minutes left\" warmly.",
    "I tried it this week. One client said it helped her pace what she wanted to bring up. Thank you!",
    "I work with adolescents and the frame is even more important there. They test it constantly.",
    "Same with couples. If one partner gets extra minutes, the other notices. See https://example.org/couples",
    "Ha, yes. The clock as a neutral third party.",
    "Any tips for telehealth? Ending a video call feels more abrupt than walking someone to the door.",
]
NAMES = ["Priya Raman", "Maya Ellison", "Tom Okafor", "Leah Brandt", "Sam Whitaker", "Jordan Lee", "Ana Souza"]


@dataclass
class Seeded:
    bench_path: str  # the benchmark post's permalink path
    posts: int
    comments: int
    seconds: float


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def seed(uri: str, *, posts: int = 60, comments: int = 300, batch: int = 10_000, log=print) -> Seeded:
    """Seed ``posts`` posts (the benchmark post included) and ``comments`` comments besides its 200."""
    started = time.monotonic()
    engine = create_engine(uri)
    tables = db.metadata.tables
    rng = random.Random(42)
    now = _utcnow()
    rendered_bodies = [render_post(b) for b in POST_BODIES]
    rendered_comments = [render_comment(t) for t in COMMENT_TEXTS]
    total_rows = 0

    def write(table: str, rows) -> None:
        """Insert an iterable of dicts, ``batch`` at a time, each batch its own transaction."""
        nonlocal total_rows
        chunk: list[dict] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                with engine.begin() as conn:
                    conn.execute(insert(tables[table]), chunk)
                total_rows += len(chunk)
                chunk = []
        if chunk:
            with engine.begin() as conn:
                conn.execute(insert(tables[table]), chunk)
            total_rows += len(chunk)

    if engine.dialect.name == "sqlite":
        # Throwaway data: durability buys nothing here.
        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    write("user", [{"id": 1, "username": "bench", "display_name": "Bench Author", "password_hash": "!",
                    "created_at": now}])
    write("category", [{"id": i + 1, "name": n, "slug": n.lower().replace(" / ", "-").replace(" ", "-")}
                       for i, n in enumerate(CATEGORIES)])
    write("tag", [{"id": i + 1, "name": n, "slug": n.replace(" ", "-")} for i, n in enumerate(TAGS)])

    # Posts 1..n-1 are spread over the past (a day apart when few, ten years when many); post n,
    # the benchmark post, is the newest, so the index and the feed show it too.
    n = max(posts, 1)
    span = timedelta(days=min(n, 3650))
    bench_id = n
    bench_published = now - timedelta(minutes=30)

    def post_rows():
        for i in range(1, n + 1):
            bench = i == bench_id
            published = bench_published if bench else now - timedelta(hours=1) - span * (n - i) / n
            body = POST_BODIES[i % len(POST_BODIES)]
            yield {
                "id": i, "title": "The Benchmark Post" if bench else f"Notes from practice, part {i}",
                "slug": BENCH_SLUG if bench else f"notes-from-practice-{i}",
                "body": body, "body_html": rendered_bodies[i % len(POST_BODIES)], "status": "published",
                "published_at": published, "created_at": published, "updated_at": published,
                "comments_open": True, "pings_open": True, "send_linkbacks": False, "author_id": 1,
            }

    log(f"  seeding {n} posts ...")
    write("post", post_rows())
    write("post_categories", ({"post_id": i, "category_id": c}
                              for i in range(1, n + 1) for c in {i % 12 + 1, (i * 7) % 12 + 1}))
    write("post_tags", ({"post_id": i, "tag_id": t}
                        for i in range(1, n + 1) for t in {i % 40 + 1, (i * 3) % 40 + 1, (i * 11) % 40 + 1}))

    next_id = 1

    def comment(post_id: int, parent_id: int | None, created: datetime, k: int, *, status="approved",
                kind="comment") -> dict:
        nonlocal next_id
        cid, next_id = next_id, next_id + 1
        name = NAMES[k % len(NAMES)]
        row = {
            "id": cid, "post_id": post_id, "parent_id": parent_id, "kind": kind, "status": status,
            "previous_status": None, "author_name": name, "author_email": f"reader{k % 500}@example.org",
            "author_url": "", "source_url": None, "source_key": None,
            "content": COMMENT_TEXTS[k % len(COMMENT_TEXTS)], "content_html": rendered_comments[k % len(COMMENT_TEXTS)],
            "created_at": created, "updated_at": created, "ip": "192.0.2.1", "user_agent": "bench",
            "user_id": None, "response_type": None, "author_photo": None,
        }
        if kind != "comment":
            # Linkbacks: a distinct linking page each, so (post_id, source_key) never collides.
            source = f"https://linker{cid % 50}.example.com/{cid}/a-post-linking-here/"
            row.update(author_name=f"A linking post {cid} | Linker {cid % 50}", author_url=source, source_url=source,
                       source_key=source.removeprefix("https://"), ip="198.51.100.7", user_agent="WordPress/6.4",
                       content="[…] as argued in this excellent post, the frame is what makes depth safe […]",
                       content_html="<p>[…] as argued in this excellent post, the frame is what makes depth safe […]</p>",
                       response_type="mention" if kind == "webmention" else None)
        return row

    def bench_comments():
        # 180 comments in chains 4 deep (every fourth one starts a thread), then 20 linkbacks on top.
        t = bench_published
        parent = None
        for k in range(BENCH_COMMENTS - BENCH_LINKBACKS):
            t += timedelta(minutes=3)
            row = comment(bench_id, None if k % THREAD_DEPTH == 0 else parent, t, k)
            parent = row["id"]
            yield row
            if k % 9 == 0:  # linkbacks arrive between comments, as top-level entries
                t += timedelta(minutes=1)
                yield comment(bench_id, None, t, k, kind="pingback" if (k // 9) % 2 == 0 else "webmention")

    def other_comments():
        # ``comments`` spread unevenly over the other posts: mostly approved, some held or spam,
        # a few linkbacks, a third of them replies.
        if n < 2 or comments <= 0:
            return
        weights = [rng.random() ** 2 for _ in range(n - 1)]
        scale = comments / sum(weights)
        counts = [int(w * scale) for w in weights]
        for j in rng.sample(range(n - 1), min(comments - sum(counts), n - 1)):
            counts[j] += 1
        for idx, count in enumerate(counts):
            post_id = idx + 1
            t = now - timedelta(hours=1) - span * (n - post_id) / n
            ids: list[int] = []
            for k in range(count):
                t += timedelta(minutes=7)
                roll = rng.random()
                status = "approved" if roll < 0.9 else ("pending" if roll < 0.97 else "spam")
                kind = "pingback" if rng.random() < 0.03 else "comment"
                parent = ids[rng.randrange(len(ids))] if ids and kind == "comment" and rng.random() < 0.33 else None
                row = comment(post_id, parent, t, k + post_id, status=status, kind=kind)
                ids.append(row["id"])
                yield row

    log(f"  seeding {BENCH_COMMENTS} comments on the benchmark post and {comments} elsewhere ...")
    write("comment", bench_comments())
    write("comment", other_comments())

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the sequences at 1: the app's next insert would collide.
            for table in ("user", "category", "tag", "post", "comment"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                  f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))"))
        tables = inspect(conn).get_table_names()
        if "content_version" in tables:
            # Tell any page cache that what readers see has changed: all of it (blogapp.pagecache).
            conn.execute(text("UPDATE content_version SET version = version + 1, changed_at = :now"), {"now": now})
        if "cache_scope" in tables:
            conn.execute(text("UPDATE cache_scope SET version = (SELECT version FROM content_version WHERE id = 1),"
                              " changed_at = :now WHERE name = 'site'"), {"now": now})
    # Fresh statistics, as autovacuum (or a DBA) would have gathered on a live blog.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()

    when = bench_published  # the permalink date is in TIMEZONE, UTC in the benchmark
    path = f"/{when.year}/{when.month:02d}/{when.day:02d}/{BENCH_SLUG}/"
    seconds = time.monotonic() - started
    log(f"  seeded {total_rows} rows in {seconds:.1f} s")
    return Seeded(bench_path=path, posts=n, comments=next_id - 1, seconds=seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uri")
    parser.add_argument("--posts", type=int, default=60)
    parser.add_argument("--comments", type=int, default=300)
    args = parser.parse_args(argv)
    result = seed(args.uri, posts=args.posts, comments=args.comments)
    print(result.bench_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
