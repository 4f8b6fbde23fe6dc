"""The page cache on a busy day: readers over 60 posts (Zipf popularity) while a comment arrives
on a random post once a second. Prints the share of answers served from the cache.

Each answer says ``X-Cache: hit`` (the fast path, or the app's cache) or ``miss`` (rendered).
A comment makes stale only its post's page, its comment feed and the listings that count it
(blogapp.pagecache), so most readers keep getting cached pages.
"""
from __future__ import annotations

import http.client
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import create_engine, text

ZIPF_S = 1.0
READERS = 4  # client threads, each on its own keep-alive connection


@dataclass
class HitRatio:
    seconds: float
    hits: int = 0
    misses: int = 0
    other: dict[int, int] = field(default_factory=dict)  # answers that were not 200, by status
    comments: int = 0
    comment_failures: int = 0
    urls: int = 0

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def ratio(self) -> float | None:
        return self.hits / self.requests if self.requests else None


def reader_urls(uri: str) -> tuple[list[str], list[int]]:
    """The published posts' paths (TIMEZONE is UTC in the benchmarks) and ids."""
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, slug, published_at FROM post WHERE status = 'published' "
                                     "ORDER BY published_at DESC, id DESC")).all()
    finally:
        engine.dispose()
    paths, ids = [], []
    for post_id, slug, published_at in rows:
        when = published_at if not isinstance(published_at, str) else __import__("datetime").datetime.fromisoformat(published_at)
        paths.append(f"/{when:%Y/%m/%d}/{slug}/")
        ids.append(post_id)
    return paths, ids


def measure(port: int, uri: str, seconds: float, *, seed: int = 12) -> HitRatio:
    paths, ids = reader_urls(uri)
    rng = random.Random(seed)
    order = paths[:]
    rng.shuffle(order)  # popularity is not age
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(len(order))]
    # The reader mix: 85% post pages by popularity, then the front page, its second page, the feed.
    mix = [*order, "/", "/page/2/", "/feed/"]
    share = sum(weights)
    mix_weights = [w / share * 0.85 for w in weights] + [0.09, 0.03, 0.03]
    result = HitRatio(seconds=seconds, urls=len(mix))
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def read(n: int) -> None:
        local = random.Random(seed + n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        hits = misses = 0
        other: dict[int, int] = {}
        while time.monotonic() < stop:
            path = local.choices(mix, mix_weights)[0]
            try:
                conn.request("GET", path)
                answer = conn.getresponse()
                answer.read()
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if answer.status != 200:
                other[answer.status] = other.get(answer.status, 0) + 1
            elif answer.getheader("X-Cache") == "hit":
                hits += 1
            else:
                misses += 1
            if answer.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            result.hits += hits
            result.misses += misses
            for status, n in other.items():
                result.other[status] = result.other.get(status, 0) + n

    def comment() -> None:
        local = random.Random(seed - 1)
        next_at = time.monotonic()
        while next_at < stop:
            time.sleep(max(0.0, next_at - time.monotonic()))
            post_id = local.choice(ids)
            body = urlencode({"author_name": "Busy Reader", "author_email": "busy@example.org", "author_url": "",
                              "content": f"Comment {result.comments + 1} on a busy day.", "parent_id": "",
                              "homepage": ""})
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", f"/posts/{post_id}/comments", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
                answer = conn.getresponse()
                answer.read()
                ok = answer.status == 303
            except OSError:
                ok = False
            finally:
                conn.close()
            with lock:
                result.comments += ok
                result.comment_failures += not ok
            next_at += 1.0

    threads = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
    threads.append(threading.Thread(target=comment))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def describe(r: HitRatio) -> str:
    ratio = f"{r.ratio:.1%}" if r.ratio is not None else "n/a"
    text = (f"{ratio} of {r.requests:,} answers from the cache ({r.requests / r.seconds:.0f} req/s over {r.urls} URLs), "
            f"{r.comments} comments in {r.seconds:.0f} s")
    if r.comment_failures:
        text += f", {r.comment_failures} comments refused"
    if r.other:
        text += ", not 200: " + ", ".join(f"{n} x {status}" for status, n in sorted(r.other.items()))
    return text
