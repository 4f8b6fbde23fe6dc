"""Large, realistic HTML pages: what a linking blog (or a hostile one) sends us to verify.

Deterministic (seeded), so every run parses the same bytes.
"""
from __future__ import annotations

import random

WORDS = (
    "practice client session boundary referral therapy growth season rest supervision outcome "
    "measure trust frame clock winter spring notes intake question answer colleague work week "
    "practice honest quiet steady cohort garden soil reading course forms depth safe care"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, n: int) -> str:
    """A paragraph with inline markup and links elsewhere, as blog posts have."""
    parts = []
    for i in range(rng.randint(3, 6)):
        s = _sentence(rng)
        roll = rng.random()
        if roll < 0.3:
            s = f'{s} See <a href="https://blog{n % 97}.example.net/{2020 + i}/{n}/post-{i}/">this post</a>.'
        elif roll < 0.45:
            s = f"<em>{s}</em>"
        elif roll < 0.55:
            s = f"<strong>{s}</strong>"
        elif roll < 0.6:
            s = f'{s} <code>x = {n}</code> <abbr title="for example">e.g.</abbr>'
        parts.append(s)
    return "<p>" + " ".join(parts) + "</p>\n"


def html_page(size: int, link_to: str | None, *, title: str = "A long page", link_at: float = 0.97,
              seed: int = 1) -> bytes:
    """About ``size`` bytes of a blog-like page; ``link_to`` is linked at fraction ``link_at`` of it."""
    rng = random.Random(seed)
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\">"
        "<script>window.dataLayer = [];</script></head>\n<body class=\"single\">"
        "<header><nav><ul>" + "".join(f'<li><a href="/section/{i}/">Section {i}</a></li>' for i in range(12))
        + "</ul></nav></header>\n<main><article class=\"h-entry\"><h1 class=\"p-name\">" + title + "</h1>\n"
    )
    tail = "</article></main><footer><p>&copy; A blog. <a href=\"/about/\">About</a></p></footer></body></html>\n"
    chunks: list[str] = []
    total = len(head) + len(tail)
    link_done = link_to is None
    n = 0
    while total < size:
        n += 1
        if n % 25 == 0:
            chunk = f"<h2>Part {n // 25}</h2>\n<ul>" + "".join(f"<li>{_sentence(rng)}</li>" for _ in range(4)) + "</ul>\n"
        elif n % 40 == 0:
            chunk = f"<blockquote><p>{_sentence(rng)}</p></blockquote>\n<img src=\"/img/{n}.jpg\" alt=\"picture {n}\">\n"
        else:
            chunk = _paragraph(rng, n)
        if not link_done and total + len(chunk) >= size * link_at:
            chunk = f'<p>{_sentence(rng)} I wrote about <a href="{link_to}">this excellent post</a> here. {_sentence(rng)}</p>\n' + chunk
            link_done = True
        chunks.append(chunk)
        total += len(chunk)
    return (head + "".join(chunks) + tail).encode("utf-8")
