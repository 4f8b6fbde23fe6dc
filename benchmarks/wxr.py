"""The WordPress import benchmark: a generated WXR 1.2 file, imported by the real CLI.

    python benchmarks/wxr.py generate FILE [--posts N] [--comments N] [--seed S]
    python benchmarks/wxr.py measure [--db postgresql://...] [--posts N] [--comments N] [--file FILE]
    make bench ARGS="--only wxr"                      # the same, as a section of the benchmark suite

``generate`` streams a realistic export to disk, one item at a time (the file is never held in
memory): ``--posts`` posts (10,000) carrying ``--comments`` comments (200,000) spread unevenly
(a few posts with hundreds, many with a handful, some with none), threaded replies, about 5 %
pingbacks and 1 % trackbacks (each source URL appears once per post), mixed statuses (mostly
approved, some held, spam and trash, with WordPress's and Akismet's comment meta), classic-editor
bodies of 2-4 KB (paragraphs separated by blank lines, no ``<p>``, links out and to earlier
posts, a ``[caption]`` now and then, the ``<!--more-->`` tag), a few block-editor posts,
nested categories and tags, pages (one a child page), drafts, a private and a password-protected
post, ``_wp_old_slug`` now and then, the attachments the captions and galleries name, and one
author, ``admin``. The shape is WordPress 6.x's own (tests/fixtures/wordpress/wxr-export.xml).

``measure`` runs ``flask --app blogapp import-wxr FILE --json`` in a subprocess against a fresh
database (``init-db`` and ``create-admin admin`` first, outside the measurement), then the same
file again (it must add nothing), and prints the wall time, the importing process's peak RSS
(``VmHWM`` of that process, read from /proc while it runs; ``ru_maxrss`` from ``wait4`` where
there is no /proc) and the counts, against the targets: under 90 s and under 250 MB for
10,000 posts and 200,000 comments on this 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent

DEFAULT_POSTS, DEFAULT_COMMENTS = 10_000, 200_000
TARGET_SECONDS, TARGET_RSS_MB = 90.0, 250.0
SITE = "https://oldblog.example.com"
SITE_NAME = "Field Notes"
ADMIN_EMAIL = "admin@oldblog.example.com"

# ---------------------------------------------------------------------------- words

_WORDS = (
    "practice season client garden river morning letter window library kitchen harbor journey bicycle "
    "notebook lantern meadow orchard market station bridge village mountain weather shadow picture theory "
    "pattern method habit routine question answer reason moment evening winter summer autumn spring "
    "friend teacher student neighbour stranger craft skill patience attention silence rhythm balance "
    "measure detail surface texture colour signal noise review draft chapter margin footnote archive "
    "compass anchor thread needle ladder engine circuit harvest recipe bread coffee tea paper ink"
).split()
_ADJ = (
    "quiet small honest slow careful early late simple strange useful gentle stubborn bright narrow wide "
    "hidden ordinary patient curious steady rough clear modest open"
).split()
_VERBS = (
    "notice keep build carry follow repair measure write read gather share test change plan return "
    "listen wait begin finish borrow lend trust question"
).split()
_FIRST = ("Ada Bob Carol Dan Eve Frank Grace Hugo Iris Jon Kate Liam Maya Nina Omar Priya Quinn Rosa Sam Tom "
          "Uma Vera Will Xena Yusuf Zoe Leah Jordan Ana Mateo Sofia Kenji Aisha Lars Ines").split()
_LAST = ("Reader Visitor Okafor Brandt Whitaker Lee Souza Raman Ellison Novak Ferreira Tanaka Haddad Larsen "
         "Moreau Kowalski Quinn Oduya Petrov Silva Nguyen Schmidt Rossi Murphy").split()
_DOMAINS = ("example.org", "example.net", "example.com", "blog.example.org", "notes.example.net",
            "words.example.com", "journal.example.org")

CATEGORY_TREE = [  # (name, [children, each (name, [grandchildren])])
    ("Writing", [("Drafts &amp; Revisions", []), ("Style", [("Punctuation", []), ("Voice", [])])]),
    ("Practice", [("Client Care", []), ("Supervision", []), ("Ethics", [])]),
    ("Travel", [("Europe", [("Portugal", []), ("Norway", [])]), ("Asia", [("Japan", [])]), ("By Train", [])]),
    ("Cooking", [("Bread", []), ("Preserves", [])]),
    ("Books", [("Reviews", []), ("Reading Lists", [])]),
    ("Garden", [("Vegetables", []), ("Orchard", [])]),
    ("Tools", [("Software", [("Open Source", [])]), ("Hand Tools", [])]),
    ("Notes", []),
    ("Uncategorized", []),
]


def _slug(name: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in name.lower().replace("&amp;", "and"))
    return "-".join(filter(None, out.split("-")))


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wp_date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "0000-00-00 00:00:00"


def _rfc822(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S +0000")


# ---------------------------------------------------------------------------- the file's numbers


@dataclass
class FileStats:
    """What the generated file holds, to check the import's counts against."""

    path: str = ""
    bytes: int = 0
    seconds: float = 0.0
    posts: int = 0  # every post item: published, drafts, pending, private, password-protected
    published_posts: int = 0
    drafts: int = 0
    pages: int = 0
    attachments: int = 0
    other_items: int = 0  # nav menu items: skipped by the import
    comments: int = 0  # comment_type comment (every status)
    pingbacks: int = 0
    trackbacks: int = 0
    replies: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    max_comments_on_a_post: int = 0
    posts_without_comments: int = 0
    posts_with_100_or_more: int = 0
    block_editor_posts: int = 0
    captions: int = 0
    galleries: int = 0
    old_slugs: int = 0
    categories: int = 0
    tags: int = 0

    @property
    def all_comments(self) -> int:
        return self.comments + self.pingbacks + self.trackbacks


# ---------------------------------------------------------------------------- the generator


class _Writer:
    def __init__(self, rng: random.Random):
        self.rng = rng

    # ------------------------------------------------------------------ text

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def sentence(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.3:
            s = f"The {r.choice(_ADJ)} {r.choice(_WORDS)} is where we {r.choice(_VERBS)} the {self.words(r.randint(1, 3))}"
        elif kind < 0.55:
            s = f"I {r.choice(_VERBS)} {self.words(r.randint(2, 6))} and then {r.choice(_VERBS)} the {r.choice(_WORDS)}"
        elif kind < 0.75:
            s = f"Every {r.choice(_WORDS)} has a {r.choice(_ADJ)} {r.choice(_WORDS)}, {self.words(r.randint(3, 8))}"
        else:
            s = self.words(r.randint(6, 16))
        s = s[0].upper() + s[1:]
        return s + r.choice(".........?!")

    def title(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.4:
            t = f"On {r.choice(_ADJ)} {r.choice(_WORDS)}s"
        elif kind < 0.7:
            t = f"The {r.choice(_WORDS)} and the {r.choice(_WORDS)}"
        elif kind < 0.85:
            t = f"How I {r.choice(_VERBS)} my {r.choice(_WORDS)}"
        elif kind < 0.95:
            t = f"{r.choice(_WORDS).title()} &amp; {r.choice(_WORDS)}: notes"
        else:
            t = f"What the {r.choice(_WORDS)} taught me about {r.choice(_WORDS)}&#8217;s {r.choice(_WORDS)}"
        return t[0].upper() + t[1:]

    def outside_url(self) -> str:
        r = self.rng
        return f"https://{r.choice(('www.', '', 'blog.'))}{r.choice(_WORDS)}-{r.randint(1, 400)}.{r.choice(_DOMAINS)}" \
               f"/{r.choice(_WORDS)}/{r.choice(_WORDS)}-{r.randint(1, 9999)}/"

    def inline(self, text: str, links: list[str]) -> str:
        """A paragraph's sentences with some inline markup and the given links woven in."""
        r = self.rng
        parts = text.split(" ")
        if len(parts) > 6 and r.random() < 0.25:
            i = r.randrange(len(parts) - 2)
            tag = r.choice(("strong", "em", "em", "code"))
            parts[i] = f"<{tag}>{parts[i]}"
            parts[i + 1] = f"{parts[i + 1]}</{tag}>"
        for url in links:
            i = r.randrange(max(1, len(parts) - 3))
            n = r.randint(1, 3)
            parts[i] = f'<a href="{url}">{parts[i]}'
            j = min(i + n, len(parts) - 1)
            parts[j] = parts[j] + "</a>"
        return " ".join(parts)

    # ------------------------------------------------------------------ post bodies

    def classic_body(self, size: int, links_out: list[str], links_in: list[str], caption: tuple[int, str] | None,
                     gallery: list[int] | None) -> str:
        """Paragraphs separated by blank lines, no <p> (wpautop adds them), ~``size`` characters."""
        r = self.rng
        paragraphs: list[str] = []
        links = links_out + links_in
        r.shuffle(links)
        length = 0
        while length < size:
            kind = r.random()
            if kind < 0.06 and paragraphs:
                block = f"<h3>{self.sentence()[:-1]}</h3>"
            elif kind < 0.11 and paragraphs:
                block = "<ul>\n" + "\n".join(f"<li>{self.words(r.randint(2, 7))}</li>"
                                            for _ in range(r.randint(2, 5))) + "\n</ul>"
            elif kind < 0.14 and paragraphs:
                block = f"<blockquote>{self.sentence()} {self.sentence()}</blockquote>"
            else:
                sentences = [self.sentence() for _ in range(r.randint(2, 6))]
                if r.random() < 0.15:  # a single newline inside the paragraph: a <br /> there
                    cut = r.randint(1, len(sentences))
                    text = " ".join(sentences[:cut]) + "\n" + " ".join(sentences[cut:])
                else:
                    text = " ".join(sentences)
                take = [links.pop() for _ in range(min(len(links), r.choice((0, 0, 1, 1, 2))))]
                block = self.inline(text.strip(), take)
            paragraphs.append(block)
            length += len(block) + 2
            if len(paragraphs) == 2 and r.random() < 0.3:
                paragraphs.append("<!--more-->")
        while links:  # whatever links were not placed go into the last paragraphs
            paragraphs.append(self.inline(self.sentence() + " " + self.sentence(), [links.pop()]))
        if caption is not None:
            att_id, url = caption
            at = r.randint(1, len(paragraphs))
            paragraphs.insert(at, f'[caption id="attachment_{att_id}" align="align{r.choice(("none", "left", "center"))}"'
                                  f' width="{r.choice((300, 640, 1024))}"]<img class="size-medium wp-image-{att_id}" '
                                  f'src="{url}" alt="{self.words(2)}" width="300" height="200" /> '
                                  f'{self.sentence()}[/caption]')
        if gallery:
            paragraphs.insert(r.randint(1, len(paragraphs)), f'[gallery ids="{",".join(map(str, gallery))}"]')
        return "\n\n".join(paragraphs)

    def block_body(self, size: int, links_out: list[str], links_in: list[str], image: tuple[int, str] | None) -> str:
        r = self.rng
        blocks = []
        links = links_out + links_in
        length = 0
        while length < size:
            kind = r.random()
            if kind < 0.1 and blocks:
                block = f"<!-- wp:heading -->\n<h2>{self.sentence()[:-1]}</h2>\n<!-- /wp:heading -->"
            elif kind < 0.17 and blocks:
                items = "".join(f"<li>{self.words(r.randint(2, 6))}</li>" for _ in range(r.randint(2, 4)))
                block = f"<!-- wp:list -->\n<ul>{items}</ul>\n<!-- /wp:list -->"
            elif kind < 0.2 and blocks:
                block = (f'<!-- wp:quote -->\n<blockquote class="wp-block-quote"><p>{self.sentence()}</p>'
                         f"<cite>{r.choice(_FIRST)}</cite></blockquote>\n<!-- /wp:quote -->")
            else:
                text = " ".join(self.sentence() for _ in range(r.randint(2, 5)))
                take = [links.pop() for _ in range(min(len(links), r.choice((0, 1))))]
                block = f"<!-- wp:paragraph -->\n<p>{self.inline(text, take)}</p>\n<!-- /wp:paragraph -->"
            blocks.append(block)
            length += len(block) + 2
        if image is not None:
            att_id, url = image
            blocks.insert(1, f'<!-- wp:image {{"id":{att_id},"sizeSlug":"large"}} -->\n<figure class="wp-block-image '
                             f'size-large"><img src="{url}" alt="" class="wp-image-{att_id}"/><figcaption>'
                             f"{self.sentence()}</figcaption></figure>\n<!-- /wp:image -->")
        if r.random() < 0.3:
            blocks.append("<!-- wp:latest-posts /-->")
        return "\n\n".join(blocks)

    # ------------------------------------------------------------------ comments

    def comment_text(self, spam: bool) -> str:
        r = self.rng
        if spam:
            return (f"Great post!!! {self.sentence()} Visit <a href=\"{self.outside_url()}\">cheap {r.choice(_WORDS)}s</a> "
                    f"and <a href=\"{self.outside_url()}\">best {r.choice(_WORDS)}</a> now.")
        paragraphs = []
        for _ in range(r.choice((1, 1, 1, 1, 2, 2, 3))):
            text = " ".join(self.sentence() for _ in range(r.randint(1, 4)))
            if r.random() < 0.06:
                text = self.inline(text, [self.outside_url()])
            elif r.random() < 0.08:
                text = text.replace(" the ", " the <em>", 1).replace(".", "</em>.", 1) if " the " in text else text
            paragraphs.append(text)
        text = "\n\n".join(paragraphs)
        if r.random() < 0.05:
            text += " Tom &amp; Jerry would agree &#8211; or not."
        return text


def _ip(rng: random.Random) -> str:
    return f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"


def _comment_counts(rng: random.Random, eligible: int, total: int) -> list[int]:
    """``total`` comments over ``eligible`` posts, unevenly: lognormal weights (a few posts get
    hundreds, most a handful, some none)."""
    if eligible <= 0:
        return []
    weights = [rng.lognormvariate(0.0, 1.4) for _ in range(eligible)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    cap = max(200, total // 100)  # the busiest post: 2,000 of 200,000
    short = total - sum(min(c, cap) for c in counts)
    counts = [min(c, cap) for c in counts]
    while short > 0:
        for i in rng.choices(range(eligible), weights=weights, k=short):
            if counts[i] < cap:
                counts[i] += 1
                short -= 1
        if all(c >= cap for c in counts):
            break
    return counts


def generate(path: str | Path, posts: int = DEFAULT_POSTS, comments: int = DEFAULT_COMMENTS, seed: int = 20261203,
             log=None) -> FileStats:
    """Write the export to ``path``, item by item; return what it holds."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    w = _Writer(rng)
    stats = FileStats(path=str(path))
    statuses: dict[str, int] = {}

    # Terms: nested categories and a few hundred tags.
    categories: list[tuple[str, str, str]] = []  # (slug, name, parent slug)

    def add_tree(nodes, parent: str) -> None:
        for name, children in nodes:
            slug = _slug(name)
            categories.append((slug, name, parent))
            add_tree(children, slug)

    add_tree(CATEGORY_TREE, "")
    tag_names = sorted({f"{rng.choice(_ADJ)} {rng.choice(_WORDS)}" for _ in range(400)} | set(_WORDS[:60]))
    tags = [(_slug(name), name) for name in tag_names]
    stats.categories, stats.tags = len(categories), len(tags)

    start = datetime(2011, 3, 1, 8, 0, 0)
    span = (datetime(2025, 6, 1) - start).total_seconds()
    n_special = {"draft": max(1, posts // 100), "pending": max(1, posts // 1000)}
    # Which posts are what: drafts and pending spread through the file, one private, one password.
    special: dict[int, str] = {}
    if posts >= 10:
        picks = rng.sample(range(posts // 10, posts), min(posts - posts // 10, n_special["draft"] + n_special["pending"] + 2))
        for i in picks[:n_special["draft"]]:
            special[i] = "draft"
        for i in picks[n_special["draft"]:n_special["draft"] + n_special["pending"]]:
            special[i] = "pending"
        special[picks[-2]] = "private"
        special[picks[-1]] = "password"
    eligible = [i for i in range(posts) if special.get(i) not in ("draft", "pending")]
    counts = dict(zip(eligible, _comment_counts(rng, len(eligible), comments), strict=True))

    permalinks: list[str] = []  # published posts' addresses on the old site, for links between posts
    next_id = 10
    comment_id = 1

    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        write = out.write
        now = datetime(2025, 6, 2, 9, 30, 0)
        write(f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- This is a WordPress eXtended RSS file generated by WordPress as an export of your site. -->
<!-- It contains information about your site's posts, pages, comments, categories, and other content. -->
<!-- You may use this file to transfer that content from one site to another. -->
<!-- This file is not intended to serve as a complete backup of your site. -->

<!-- To import this information into a WordPress site follow these steps: -->
<!-- 1. Log in to that site as an administrator. -->
<!-- 2. Go to Tools: Import in the WordPress admin panel. -->
<!-- 3. Install the "WordPress" importer from the list. -->
<!-- 4. Activate & Run Importer. -->
<!-- 5. Upload this file using the form provided on that page. -->
<!-- 6. You will first be asked to map the authors in this export file to users -->
<!--    on the site. For each author, you may choose to map to an -->
<!--    existing user on the site or to create a new user. -->
<!-- 7. WordPress will then import each of the posts, pages, comments, categories, etc. -->
<!--    contained in this file into your site. -->

	<!-- generator="WordPress/6.1.9" created="{now:%Y-%m-%d %H:%M}" -->
<rss version="2.0"
	xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:wp="http://wordpress.org/export/1.2/"
>

<channel>
	<title>{SITE_NAME}</title>
	<link>{SITE}</link>
	<description>A generated WordPress site for the import benchmark</description>
	<pubDate>{_rfc822(now)}</pubDate>
	<language>en-US</language>
	<wp:wxr_version>1.2</wp:wxr_version>
	<wp:base_site_url>{SITE}</wp:base_site_url>
	<wp:base_blog_url>{SITE}</wp:base_blog_url>

		<wp:author><wp:author_id>1</wp:author_id><wp:author_login>{_cdata("admin")}</wp:author_login><wp:author_email>{_cdata(ADMIN_EMAIL)}</wp:author_email><wp:author_display_name>{_cdata("admin")}</wp:author_display_name><wp:author_first_name>{_cdata("")}</wp:author_first_name><wp:author_last_name>{_cdata("")}</wp:author_last_name></wp:author>

""")
        term_ids: dict[tuple[str, str], int] = {}
        for slug, name, parent in categories:
            term_ids[("category", slug)] = len(term_ids) + 1
            write(f"""		<wp:category>
		<wp:term_id>{term_ids[("category", slug)]}</wp:term_id>
		<wp:category_nicename>{_cdata(slug)}</wp:category_nicename>
		<wp:category_parent>{_cdata(parent)}</wp:category_parent>
		<wp:cat_name>{_cdata(name)}</wp:cat_name>
	</wp:category>
""")
        for slug, name in tags:
            term_ids[("post_tag", slug)] = len(term_ids) + 1
            write(f"""		<wp:tag>
		<wp:term_id>{term_ids[("post_tag", slug)]}</wp:term_id>
		<wp:tag_slug>{_cdata(slug)}</wp:tag_slug>
		<wp:tag_name>{_cdata(name)}</wp:tag_name>
	</wp:tag>
""")
        term_ids[("nav_menu", "main-menu")] = len(term_ids) + 1
        for (taxonomy, slug), term_id in term_ids.items():
            if taxonomy == "category":
                name, parent = next((n, p) for s, n, p in categories if s == slug)
            elif taxonomy == "post_tag":
                name, parent = next(n for s, n in tags if s == slug), ""
            else:
                name, parent = "Main menu", ""
            write(f"""		<wp:term>
		<wp:term_id>{term_id}</wp:term_id>
		<wp:term_taxonomy>{_cdata(taxonomy)}</wp:term_taxonomy>
		<wp:term_slug>{_cdata(slug)}</wp:term_slug>
		<wp:term_parent>{_cdata(parent)}</wp:term_parent>
		<wp:term_name>{_cdata(name)}</wp:term_name>
	</wp:term>
""")
        write("\t\t\n\t<generator>https://wordpress.org/?v=6.1.9</generator>\n\n")

        # ---------------------------------------------------------------- pages first (low ids)
        page_specs = [
            ("About", "about", "publish", 0, "This blog is where I keep notes on practice, travel and the garden.\n\n"
             "I write most weeks. <a href=\"" + SITE + "/contact/\">Write to me</a> if something here was useful."),
            ("Contact", "contact", "publish", 0, "Use the form below, or write to the address in the footer.\n\n"
             '[contact-form-7 id="42" title="Contact form 1"]'),
            ("Services", "services", "publish", 0, None),
            ("Supervision", "supervision", "publish", "services", None),
            ("Workshops", "workshops", "publish", "services", None),
            ("Archives", "archives", "publish", 0, "Every post, by month.\n\n[archives type=\"monthly\"]"),
            ("Reading list", "reading-list", "publish", 0, None),
            ("Privacy Policy", "privacy-policy", "draft", 0, None),
        ]
        page_ids: dict[str, int] = {}
        for title, slug, status, parent, body in page_specs:
            pid = next_id
            next_id += 1
            page_ids[slug] = pid
            when = start + timedelta(days=rng.randint(0, 30), seconds=rng.randint(0, 86399))
            if body is None:
                body = w.block_body(rng.randint(1500, 3000), [w.outside_url()], [], None) if slug == "privacy-policy" \
                    else w.classic_body(rng.randint(1200, 2500), [w.outside_url()], [], None, None)
            parent_id = page_ids.get(parent, 0) if parent else 0
            link = f"{SITE}/{'services/' if parent else ''}{slug}/" if status == "publish" else f"{SITE}/?page_id={pid}"
            write(_item_xml(title=title, link=link, pub=when if status == "publish" else None, guid=f"{SITE}/?page_id={pid}",
                            content=body, excerpt="", post_id=pid, post_date=when,
                            post_date_gmt=when if status == "publish" else None, modified=when, comment_status="closed",
                            ping_status="closed", slug=slug, status=status, parent=parent_id,
                            menu_order=len(page_ids), post_type="page", password="", terms="",
                            meta=[("_wp_page_template", "default"), ("_edit_last", "1")], comments=""))
            stats.pages += 1

        # ---------------------------------------------------------------- posts, their attachments and comments
        last_when = start
        for i in range(posts):
            pid = next_id
            next_id += 1
            kind = special.get(i, "publish")
            when = start + timedelta(seconds=span * (i + rng.random() * 0.8) / max(posts, 1))
            when = max(when, last_when + timedelta(seconds=1))
            last_when = when
            title = w.title()
            slug = f"{_slug(title.replace('&#8217;', ''))}-{pid}"
            year_path = f"{SITE}/{when:%Y/%m/%d}/{slug}/"
            block = rng.random() < 0.03
            attachments: list[tuple[int, str]] = []
            caption = gallery = None
            roll = rng.random()
            if roll < 0.09:
                att = (next_id, f"{SITE}/wp-content/uploads/{when:%Y/%m}/{rng.choice(_WORDS)}-{next_id}.jpg")
                next_id += 1
                attachments.append(att)
                caption = att
            elif roll < 0.095 and not block:
                gallery = []
                for _ in range(rng.randint(2, 5)):
                    att = (next_id, f"{SITE}/wp-content/uploads/{when:%Y/%m}/{rng.choice(_WORDS)}-{next_id}.jpg")
                    next_id += 1
                    attachments.append(att)
                    gallery.append(att[0])
            links_out = [w.outside_url() for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))]
            links_in = [rng.choice(permalinks) for _ in range(rng.choice((1, 2)))] \
                if permalinks and rng.random() < 0.35 else []
            size = rng.randint(2000, 4000)
            if block:
                content = w.block_body(size, links_out, links_in, caption)
                stats.block_editor_posts += 1
            else:
                content = w.classic_body(size, links_out, links_in, caption, gallery)
            stats.captions += caption is not None
            stats.galleries += gallery is not None
            draft = kind in ("draft", "pending")
            meta = [("_edit_last", "1")]
            if not draft and rng.random() < 0.02:
                meta.append(("_wp_old_slug", f"{_slug(w.title())}-{pid}"))
                stats.old_slugs += 1
            if caption is not None:
                meta.append(("_thumbnail_id", str(caption[0])))
            terms = []
            cats = rng.sample(categories[:-1], rng.choice((1, 1, 1, 2))) if rng.random() > 0.05 else [categories[-1]]
            for slug_c, name_c, _ in cats:
                terms.append(f'\t\t<category domain="category" nicename="{slug_c}">{_cdata(name_c)}</category>\n')
            for slug_t, name_t in rng.sample(tags, rng.choice((0, 1, 2, 3, 3, 4, 5, 6))):
                terms.append(f'\t\t<category domain="post_tag" nicename="{slug_t}">{_cdata(name_t)}</category>\n')
            n_comments = counts.get(i, 0)
            comments_xml = _comments_xml(w, rng, n_comments, when, comment_id, permalinks, stats, statuses) \
                if n_comments else ""
            comment_id += n_comments
            old = i < posts * 0.7
            write(_item_xml(
                title=title, link=f"{SITE}/?p={pid}" if draft else year_path, pub=None if draft else when,
                guid=f"{SITE}/?p={pid}", content=content,
                excerpt=w.sentence() + " " + w.sentence() if rng.random() < 0.1 else "", post_id=pid, post_date=when,
                post_date_gmt=None if draft else when,
                modified=when + timedelta(days=rng.choice((0, 0, 0, 1, 30, 400))),
                comment_status="closed" if old and rng.random() < 0.2 else "open",
                ping_status="closed" if old and rng.random() < 0.3 else "open",
                slug="" if kind == "draft" and rng.random() < 0.5 else slug,
                status={"password": "publish"}.get(kind, kind), parent=0, menu_order=0, post_type="post",
                password="open sesame" if kind == "password" else "", terms="".join(terms), meta=meta,
                comments=comments_xml))
            stats.posts += 1
            if draft:
                stats.drafts += 1
            else:
                stats.published_posts += kind == "publish"
                permalinks.append(year_path)
            stats.max_comments_on_a_post = max(stats.max_comments_on_a_post, n_comments)
            stats.posts_without_comments += n_comments == 0
            stats.posts_with_100_or_more += n_comments >= 100
            for att_id, url in attachments:
                write(_attachment_xml(att_id, url, pid, when, w))
                stats.attachments += 1
            if log and (i + 1) % 2000 == 0:
                log(f"  generated {i + 1:,} of {posts:,} posts ({out.tell() / 1e6:,.0f} MB)")

        # ---------------------------------------------------------------- a menu (skipped by the import)
        for n, pid in enumerate(list(page_ids.values())[:5]):
            mid = next_id
            next_id += 1
            write(_item_xml(title="", link=f"{SITE}/?p={mid}", pub=start, guid=f"{SITE}/?p={mid}", content=" ",
                            excerpt="", post_id=mid, post_date=start, post_date_gmt=start, modified=start,
                            comment_status="closed", ping_status="closed", slug=str(mid), status="publish", parent=0,
                            menu_order=n + 1, post_type="nav_menu_item", password="",
                            terms='\t\t<category domain="nav_menu" nicename="main-menu"><![CDATA[Main menu]]></category>\n',
                            meta=[("_menu_item_type", "post_type"), ("_menu_item_object_id", str(pid)),
                                  ("_menu_item_object", "page")], comments=""))
            stats.other_items += 1
        write("\t</channel>\n</rss>\n")
        stats.bytes = out.tell()
    stats.statuses = dict(sorted(statuses.items()))
    stats.seconds = time.monotonic() - t0
    return stats


def _item_xml(*, title, link, pub, guid, content, excerpt, post_id, post_date, post_date_gmt, modified, comment_status,
              ping_status, slug, status, parent, menu_order, post_type, password, terms, meta, comments) -> str:
    meta_xml = "".join(f"""		<wp:postmeta>
		<wp:meta_key>{_cdata(k)}</wp:meta_key>
		<wp:meta_value>{_cdata(v)}</wp:meta_value>
		</wp:postmeta>
""" for k, v in meta)
    return f"""		<item>
		<title>{_cdata(title)}</title>
		<link>{_esc(link)}</link>
		<pubDate>{_rfc822(pub) if pub else ""}</pubDate>
		<dc:creator>{_cdata("admin")}</dc:creator>
		<guid isPermaLink="false">{_esc(guid)}</guid>
		<description></description>
		<content:encoded>{_cdata(content)}</content:encoded>
		<excerpt:encoded>{_cdata(excerpt)}</excerpt:encoded>
		<wp:post_id>{post_id}</wp:post_id>
		<wp:post_date>{_cdata(_wp_date(post_date))}</wp:post_date>
		<wp:post_date_gmt>{_cdata(_wp_date(post_date_gmt))}</wp:post_date_gmt>
		<wp:post_modified>{_cdata(_wp_date(modified))}</wp:post_modified>
		<wp:post_modified_gmt>{_cdata(_wp_date(modified))}</wp:post_modified_gmt>
		<wp:comment_status>{_cdata(comment_status)}</wp:comment_status>
		<wp:ping_status>{_cdata(ping_status)}</wp:ping_status>
		<wp:post_name>{_cdata(slug)}</wp:post_name>
		<wp:status>{_cdata(status)}</wp:status>
		<wp:post_parent>{parent}</wp:post_parent>
		<wp:menu_order>{menu_order}</wp:menu_order>
		<wp:post_type>{_cdata(post_type)}</wp:post_type>
		<wp:post_password>{_cdata(password)}</wp:post_password>
		<wp:is_sticky>0</wp:is_sticky>
{terms}{meta_xml}{comments}		</item>
"""


def _attachment_xml(att_id: int, url: str, parent: int, when: datetime, w: _Writer) -> str:
    name = url.rsplit("/", 1)[1]
    return _item_xml(
        title=name.rsplit(".", 1)[0], link=f"{SITE}/?attachment_id={att_id}", pub=when, guid=url, content="",
        excerpt=w.sentence(), post_id=att_id, post_date=when, post_date_gmt=when, modified=when,
        comment_status="open", ping_status="closed", slug=name.rsplit(".", 1)[0], status="inherit", parent=parent,
        menu_order=0, post_type="attachment", password="", terms="",
        meta=[("_wp_attached_file", url.split("/uploads/", 1)[1]),
              ("_wp_attachment_metadata", 'a:5:{s:5:"width";i:1200;s:6:"height";i:800;s:4:"file";s:%d:"%s";'
                                          's:8:"filesize";i:183422;s:5:"sizes";a:0:{}}' % (len(name), name))],
        comments="",
    ).replace("</wp:is_sticky>\n", f"</wp:is_sticky>\n\t\t<wp:attachment_url>{_cdata(url)}</wp:attachment_url>\n", 1)


def _comments_xml(w: _Writer, rng: random.Random, n: int, post_when: datetime, first_id: int, permalinks: list[str],
                  stats: FileStats, statuses: dict[str, int]) -> str:
    """The ``n`` comments of one post: comments (threaded), pingbacks and trackbacks."""
    parts = []
    when = post_when
    replyable: list[int] = []  # approved reader comments of this post, by comment id
    sources: set[str] = set()
    for k in range(n):
        cid = first_id + k
        when = when + timedelta(seconds=int(rng.expovariate(1 / 40000)) + 30)
        roll = rng.random()
        parent, user_id, meta, ip = 0, 0, [], _ip(rng)
        if roll < 0.05 or roll > 0.99:
            ctype = "pingback" if roll < 0.05 else "trackback"
            source = None
            if ctype == "pingback" and permalinks and rng.random() < 0.25:
                source = rng.choice(permalinks)  # a link from another post of this same blog
                author = f"{w.title()} &#8211; {SITE_NAME}"
                ip = "127.0.0.1"
            if source is None or source in sources:
                source = f"https://{rng.choice(_WORDS)}-{rng.randint(1, 300)}.{rng.choice(_DOMAINS)}/" \
                         f"{when:%Y/%m}/{rng.choice(_WORDS)}-{cid}/"
                author = f"{w.title()} | {rng.choice(_ADJ).title()} {rng.choice(_WORDS).title()}"
            sources.add(source)
            email, url = "", source
            if ctype == "pingback":
                content = f"[&#8230;] {w.sentence()} {w.words(rng.randint(4, 12))} [&#8230;]"
            else:
                content = f"<strong>{w.title()}</strong>\n\n{w.sentence()} {w.sentence()}"
            approved = rng.choices(("1", "0", "spam"), (90, 6, 4))[0]
        else:
            ctype = "comment"
            approved = rng.choices(("1", "0", "spam", "trash"), (88, 6, 4, 2))[0]
            if approved != "spam" and replyable and rng.random() < 0.35:
                recent = replyable[-8:]
                parent = rng.choice(recent) if rng.random() < 0.7 else rng.choice(replyable)
            if parent and rng.random() < 0.08:
                author, email, url, user_id = "admin", ADMIN_EMAIL, SITE, 1
            else:
                author = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
                email = f"{author.lower().replace(' ', '.')}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"
                url = f"https://{author.split()[0].lower()}.{rng.choice(_DOMAINS)}/" if rng.random() < 0.3 else ""
            content = w.comment_text(approved == "spam")
            if approved == "1":
                replyable.append(cid)
            if parent:
                stats.replies += 1
        if approved in ("spam", "trash"):
            meta.append(("_wp_trash_meta_status", rng.choice(("0", "1"))))
            meta.append(("_wp_trash_meta_time", str(int(when.replace(tzinfo=UTC).timestamp()) + 3600)))
        if ctype == "comment" and rng.random() < 0.5:
            meta.append(("akismet_result", "true" if approved == "spam" else "false"))
            meta.append(("akismet_history", 'a:3:{s:4:"time";d:%d.%06d;s:5:"event";s:%d:"%s";s:4:"user";s:0:"";}' % (
                int(when.replace(tzinfo=UTC).timestamp()), rng.randint(0, 999999),
                12 if approved != "spam" else 10, "check-ham" if approved != "spam" else "check-spam")[:200]))
        statuses[approved] = statuses.get(approved, 0) + 1
        if ctype == "comment":
            stats.comments += 1
        elif ctype == "pingback":
            stats.pingbacks += 1
        else:
            stats.trackbacks += 1
        meta_xml = "".join(f"""			<wp:commentmeta>
	<wp:meta_key>{_cdata(k)}</wp:meta_key>
			<wp:meta_value>{_cdata(v)}</wp:meta_value>
			</wp:commentmeta>
""" for k, v in meta)
        parts.append(f"""			<wp:comment>
			<wp:comment_id>{cid}</wp:comment_id>
			<wp:comment_author>{_cdata(author)}</wp:comment_author>
			<wp:comment_author_email>{_cdata(email)}</wp:comment_author_email>
			<wp:comment_author_url>{_esc(url)}</wp:comment_author_url>
			<wp:comment_author_IP>{_cdata(ip)}</wp:comment_author_IP>
			<wp:comment_date>{_cdata(_wp_date(when))}</wp:comment_date>
			<wp:comment_date_gmt>{_cdata(_wp_date(when))}</wp:comment_date_gmt>
			<wp:comment_content>{_cdata(content)}</wp:comment_content>
			<wp:comment_approved>{_cdata(approved)}</wp:comment_approved>
			<wp:comment_type>{_cdata(ctype)}</wp:comment_type>
			<wp:comment_parent>{parent}</wp:comment_parent>
			<wp:comment_user_id>{user_id}</wp:comment_user_id>
{meta_xml}			</wp:comment>
""")
    return "".join(parts)


# ---------------------------------------------------------------------------- measuring the import


@dataclass
class ImportRun:
    """One ``import-wxr --json`` process: how long, how much memory, what it said."""

    seconds: float = 0.0  # wall time, process start to exit (interpreter and app start-up included)
    cpu_seconds: float = 0.0  # user + system of the importing process (wait4)
    peak_rss_mb: float | None = None  # VmHWM of the process, from /proc (None: no /proc)
    maxrss_mb: float = 0.0  # ru_maxrss from wait4 (Linux folds in the RSS of the process that spawned it)
    rss_trend: list[tuple[float, float]] = field(default_factory=list)  # (seconds, VmRSS MB), about 1 a second
    counts: dict = field(default_factory=dict)  # the --json line
    line: str = ""  # the summary line for people
    returncode: int = 0
    stderr: str = ""
    machine_busy: float | None = None  # cores in use on the whole machine during the run, on average
    postgres_cpu: float | None = None  # CPU seconds of the local PostgreSQL server's processes during the run

    @property
    def others_cores(self) -> float | None:
        """Cores used by everything but the importer and the database server, on average."""
        if self.machine_busy is None or not self.seconds:
            return None
        return max(0.0, self.machine_busy - (self.cpu_seconds + (self.postgres_cpu or 0.0)) / self.seconds)

    @property
    def rss_mb(self) -> float:
        return self.peak_rss_mb if self.peak_rss_mb is not None else self.maxrss_mb

    @property
    def added(self) -> int:
        return sum(int(self.counts.get(k, 0)) for k in ("posts", "pages", "comments", "pingbacks", "trackbacks",
                                                         "webmentions"))


@dataclass
class WxrResult:
    kind: str  # sqlite | postgresql
    file: FileStats
    first: ImportRun
    second: ImportRun | None
    rows_after_first: dict[str, int] = field(default_factory=dict)
    rows_after_second: dict[str, int] = field(default_factory=dict)
    db_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def full_size(self) -> bool:
        return self.file.posts >= DEFAULT_POSTS and self.file.all_comments >= DEFAULT_COMMENTS


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MB) of a live process; {} once it has exited (or without /proc)."""
    found = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith((b"VmRSS:", b"VmHWM:")):
                    name, value = line.split(b":", 1)
                    found[name.decode()] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, all) clock ticks of every CPU so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    fields += [0] * (8 - len(fields))
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]  # user, nice, system, irq, softirq
    return busy, sum(fields[:8])  # all: with idle, iowait and steal


def _postgres_cpu() -> float | None:
    """CPU seconds used so far by the local PostgreSQL server: its processes, and the ended
    backends its postmaster has reaped. None where there is none to see."""
    total, seen = 0, False
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
        except OSError:
            continue
        if not head.endswith("(postgres"):
            continue
        fields = rest.split()
        seen = True
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1" or not fields[1].isdigit() or _comm(fields[1]) != "postgres":
            total += int(fields[13]) + int(fields[14])  # the postmaster: cutime, cstime of reaped backends
    return total / os.sysconf("SC_CLK_TCK") if seen else None


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def run_import(cmd: list[str], env: dict[str, str], workdir: Path, poll: float = 0.02,
               postgres: bool = False) -> ImportRun:
    """Run the import in its own process and measure that process alone: wall time from start to exit,
    CPU and ``ru_maxrss`` from ``wait4`` on its pid, and the peak RSS of its own address space
    (``VmHWM`` in /proc, read until it exits: unlike ``ru_maxrss``, it does not count what the
    process that spawned it had resident)."""
    out_path, err_path = workdir / "import.out", workdir / "import.err"
    run = ImportRun()
    ticks0, pg0 = _machine_ticks(), _postgres_cpu() if postgres else None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        next_sample = 1.0  # the first second is start-up
        hwm = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                run.seconds = time.monotonic() - t0
                break
            now = time.monotonic() - t0
            seen = _proc_status(proc.pid)
            if "VmHWM" in seen:
                hwm = max(hwm or 0.0, seen["VmHWM"])
            if "VmRSS" in seen and now >= next_sample:
                run.rss_trend.append((now, seen["VmRSS"]))
                next_sample = now + 1.0
            time.sleep(poll)
        proc.returncode = run.returncode = os.waitstatus_to_exitcode(status)
    ticks1, pg1 = _machine_ticks(), _postgres_cpu() if postgres else None
    if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
        run.machine_busy = (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1]) * (os.cpu_count() or 1)
    if pg0 is not None and pg1 is not None:
        run.postgres_cpu = max(0.0, pg1 - pg0)
    run.peak_rss_mb = hwm
    run.maxrss_mb = usage.ru_maxrss / 1024  # KB on Linux
    run.cpu_seconds = usage.ru_utime + usage.ru_stime
    lines = out_path.read_text(errors="replace").splitlines()
    run.stderr = err_path.read_text(errors="replace")[-4000:]
    for line in reversed(lines):
        if line.startswith("{"):
            run.counts = json.loads(line)
            break
    run.line = next((line for line in lines if not line.startswith("{")), "")
    return run


def _code_version() -> str:
    """The commit, and a digest of the import's modules (they may be uncommitted while being worked on)."""
    import hashlib

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    digest = hashlib.sha1()
    for path in sorted((ROOT / "blogapp" / "wxr").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "blogapp"], cwd=ROOT, capture_output=True, text=True)
    return (f"commit {head.stdout.strip() or 'unknown'}{' with uncommitted changes in blogapp/' if dirty.stdout.strip() else ''}"
            f"; blogapp/wxr/*.py digest {digest.hexdigest()[:12]}")


def _flask(*args: str) -> list[str]:
    return [str(BIN / "flask"), "--app", "blogapp", *args]


def _row_counts(uri: str) -> tuple[dict[str, int], float | None]:
    """Rows in the tables an import fills, and the database's size in MB."""
    from sqlalchemy import create_engine, text

    tables = ("post", "page", "comment", "category", "tag", "post_categories", "post_tags", "imported_item",
              "legacy_path", "outbound_link")
    engine = create_engine(uri)
    counts: dict[str, int] = {}
    size = None
    try:
        with engine.connect() as conn:
            for table in tables:
                try:
                    counts[table] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
                except Exception:  # a table of another name in this schema version: leave it out
                    conn.rollback()
            if engine.dialect.name == "postgresql":
                size = conn.execute(text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")).scalar()
                size = float(size) / 1e6 if size else None
    finally:
        engine.dispose()
    if uri.startswith("sqlite:///"):
        db_path = Path(uri.removeprefix("sqlite:///"))
        size = sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists()) / 1e6
    return counts, size


def measure(create_db, kind: str, env_base: dict[str, str], workdir: Path, posts: int = DEFAULT_POSTS,
            comments: int = DEFAULT_COMMENTS, file: str | None = None, log=print) -> WxrResult:
    """Generate the file (or take ``file``), import it into a fresh database, then import it again.

    ``create_db(label)`` returns the URI of a fresh, empty database (bench.py's ``Databases.create``);
    ``env_base`` is the environment of the blog's commands (``BLOGAPP_*`` settings, no database).
    """
    if file:
        stats = FileStats(path=file, bytes=Path(file).stat().st_size)
        log(f"Importing {file} ({stats.bytes / 1e6:,.0f} MB, not generated here: its counts are not checked)")
    else:
        path = workdir / f"wxr-{posts}-{comments}.xml"
        log(f"Generating a WXR file: {posts:,} posts, {comments:,} comments ...")
        stats = generate(path, posts=posts, comments=comments, log=log)
        log(f"  {stats.bytes / 1e6:,.0f} MB in {stats.seconds:.1f} s: {stats.posts:,} posts ({stats.drafts} drafts), "
            f"{stats.pages} pages, {stats.attachments:,} attachments, {stats.comments:,} comments, "
            f"{stats.pingbacks:,} pingbacks, {stats.trackbacks:,} trackbacks; up to {stats.max_comments_on_a_post:,} "
            f"comments on a post, {stats.posts_without_comments:,} posts with none")
    uri = create_db("wxr")
    env = {**env_base, "BLOGAPP_SQLALCHEMY_DATABASE_URI": uri}
    for step in (_flask("init-db"), _flask("create-admin", "admin", "--password", secrets.token_urlsafe(16),
                                          "--display-name", "Admin")):
        done = subprocess.run(step, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[3:5])} failed:\n{done.stdout}\n{done.stderr}")
    cmd = _flask("import-wxr", str(stats.path), "--json")
    log(f"  import-wxr --json into a fresh {kind} database ...")
    first = run_import(cmd, env, workdir, postgres=kind == "postgresql")
    if first.returncode != 0:
        raise RuntimeError(f"import-wxr failed (exit {first.returncode}):\n{first.stderr}")
    log(f"  {first.seconds:.1f} s, peak RSS {first.rss_mb:.0f} MB: {first.line}")
    result = WxrResult(kind, stats, first, None)
    result.notes.append("code measured: " + _code_version())
    result.rows_after_first, result.db_mb = _row_counts(uri)
    log("  the same file again ...")
    second = run_import(cmd, env, workdir, postgres=kind == "postgresql")
    if second.returncode != 0:
        raise RuntimeError(f"the second import-wxr failed (exit {second.returncode}):\n{second.stderr}")
    log(f"  {second.seconds:.1f} s, peak RSS {second.rss_mb:.0f} MB: {second.line}")
    result.second = second
    result.rows_after_second, _ = _row_counts(uri)
    return result


# ---------------------------------------------------------------------------- verdicts and reports


def _expected(stats: FileStats) -> dict[str, int]:
    return {"posts": stats.posts, "pages": stats.pages, "comments": stats.comments, "pingbacks": stats.pingbacks,
            "trackbacks": stats.trackbacks}


def targets(result: WxrResult) -> list[tuple[str, bool | None, str]]:
    """(what, MET / MISSED / None for not measured, detail), as bench.py's Target takes them."""
    first, second, stats = result.first, result.second, result.file
    size = f"{stats.posts:,} posts, {stats.all_comments:,} comments" if stats.posts else "the given file"
    off = None if result.full_size else f"not at the target's size ({DEFAULT_POSTS:,} posts, {DEFAULT_COMMENTS:,} comments)"
    out = [
        (f"WXR import of {DEFAULT_POSTS:,} posts and {DEFAULT_COMMENTS:,} comments < {TARGET_SECONDS:.0f} s ({result.kind})",
         first.seconds < TARGET_SECONDS if off is None else None, f"{first.seconds:.1f} s" + (f"; {off}" if off else "")),
        (f"WXR import of {DEFAULT_POSTS:,} posts and {DEFAULT_COMMENTS:,} comments: peak RSS < {TARGET_RSS_MB:.0f} MB "
         f"({result.kind})", first.rss_mb < TARGET_RSS_MB if off is None else None,
         f"{first.rss_mb:.0f} MB" + (f"; {off}" if off else "")),
    ]
    if stats.posts:
        expected = _expected(stats)
        got = {k: int(first.counts.get(k, 0)) for k in expected}
        diff = ", ".join(f"{k} {got[k]:,} of {v:,}" for k, v in expected.items() if got[k] != v)
        out.append((f"WXR import brings every post, page and comment of the file ({size})", not diff,
                    diff or "all: " + ", ".join(f"{v:,} {k}" for k, v in got.items())))
    if second is not None:
        same_rows = result.rows_after_first == result.rows_after_second
        changed = ", ".join(f"{t} {result.rows_after_first.get(t)} -> {n}" for t, n in result.rows_after_second.items()
                            if result.rows_after_first.get(t) != n)
        out.append(("WXR import of the same file again adds nothing", second.added == 0 and same_rows,
                    f"{second.added} added, rows {'unchanged' if same_rows else 'changed: ' + changed}; "
                    f"{second.seconds:.1f} s"))
    return out


def print_result(result: WxrResult) -> None:
    print(f"\nWordPress import (WXR), {result.kind}")
    print(f"  {'run':<22} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'added':>9}")
    for name, run in (("first import", result.first), ("same file again", result.second)):
        if run is not None:
            print(f"  {name:<22} {run.seconds:>8.1f} {run.cpu_seconds:>8.1f} {run.rss_mb:>12.0f} {run.added:>9,}")
            print(f"      {run.line}")
            print(f"      {_load(run)}")


def _load(run: ImportRun) -> str:
    """Who used the machine's CPUs meanwhile: the importer, the database server, everything else."""
    if run.machine_busy is None:
        return "machine load: n/a (no /proc/stat)"
    text = f"importer {run.cpu_seconds / run.seconds:.2f} cores"
    if run.postgres_cpu is not None:
        text += f", PostgreSQL server {run.postgres_cpu / run.seconds:.2f}"
    return (f"CPU during the run ({os.cpu_count()} cores): {text}, other processes {run.others_cores:.2f} "
            f"(all together {run.machine_busy:.2f})")


def _trend(run: ImportRun) -> str:
    if not run.rss_trend:
        return "n/a"
    picks = sorted({0, len(run.rss_trend) // 4, len(run.rss_trend) // 2, 3 * len(run.rss_trend) // 4,
                    len(run.rss_trend) - 1})
    return ", ".join(f"{run.rss_trend[i][1]:.0f} MB at {run.rss_trend[i][0]:.0f} s" for i in picks)


def markdown(result: WxrResult) -> list[str]:
    """The section of a results file."""
    stats, first, second = result.file, result.first, result.second
    lines = [f"## WordPress import (WXR), {result.kind}", ""]
    if stats.posts:
        lines += [f"Generated file (`benchmarks/wxr.py`): {stats.bytes / 1e6:,.0f} MB, written in {stats.seconds:.1f} s; "
                  f"{stats.posts:,} posts ({stats.published_posts:,} published, {stats.drafts} drafts or pending, "
                  "a private and a password-protected one), "
                  f"{stats.pages} pages, {stats.attachments:,} attachments, {stats.other_items} menu items; "
                  f"{stats.comments:,} comments ({stats.replies:,} replies), {stats.pingbacks:,} pingbacks, "
                  f"{stats.trackbacks:,} trackbacks; statuses {', '.join(f'{k}: {v:,}' for k, v in stats.statuses.items())}; "
                  f"up to {stats.max_comments_on_a_post:,} comments on a post, {stats.posts_with_100_or_more} posts "
                  f"with 100 or more, {stats.posts_without_comments:,} with none; {stats.block_editor_posts} block-editor "
                  f"posts, {stats.captions} captions, {stats.galleries} galleries, {stats.old_slugs} old slugs; "
                  f"{stats.categories} categories (nested), {stats.tags} tags.", ""]
    else:
        lines += [f"File: `{stats.path}` ({stats.bytes / 1e6:,.0f} MB).", ""]
    lines += ["| run | wall s | importer CPU s | peak RSS MB | ru_maxrss MB | added | already here |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for name, run in (("first import", first), ("same file again", second)):
        if run is None:
            continue
        already = ", ".join(f"{v:,} {k}s" for k, v in run.counts.get("already_here", {}).items()) or "-"
        peak = f"{run.peak_rss_mb:.0f}" if run.peak_rss_mb is not None else "n/a"
        lines.append(f"| {name} | {run.seconds:.1f} | {run.cpu_seconds:.1f} | {peak} | {run.maxrss_mb:.0f} | "
                     f"{run.added:,} | {already} |")
    lines += ["", f"- first import: {first.line}", f"- counts (`--json`): `{json.dumps(first.counts)}`",
              f"- first import, {_load(first)}"]
    if second is not None:
        lines += [f"- same file again: {second.line}", f"- same file again, {_load(second)}"]
    lines.append(f"- resident memory of the first import over time: {_trend(first)}")
    rows = ", ".join(f"{t} {n:,}" for t, n in result.rows_after_first.items())
    lines.append(f"- rows after the import: {rows}" + (f"; database {result.db_mb:,.0f} MB" if result.db_mb else ""))
    lines += [f"- {n}" for n in result.notes]
    lines += ["- wall time: from starting `flask --app blogapp import-wxr FILE --json` to its exit (start-up included); "
              "`init-db` and `create-admin` ran before, unmeasured. Peak RSS: `VmHWM` of the importing process "
              "(the database server's memory is not in it); ru_maxrss from wait4 also counts what the benchmark "
              "process had resident when it spawned the import.", ""]
    return lines


def readme_block(result: WxrResult, results_name: str, quick: bool) -> list[str]:
    """The short WXR block of benchmarks/README.md."""
    first, second, stats = result.first, result.second, result.file
    size = (f"{stats.posts:,} posts, {stats.all_comments:,} comments, {stats.bytes / 1e6:,.0f} MB file"
            if stats.posts else f"{stats.bytes / 1e6:,.0f} MB file")
    lines = [f"WXR import, {result.kind}, {date.today().isoformat()}{' (quick)' if quick else ''}, {size}: "
             f"[full results](results/{results_name})", "",
             "| run | wall s | importer CPU s | peak RSS MB | added |", "|---|---:|---:|---:|---:|"]
    for name, run in (("first import", first), ("same file again", second)):
        if run is not None:
            lines.append(f"| {name} | {run.seconds:.1f} | {run.cpu_seconds:.1f} | {run.rss_mb:.0f} | {run.added:,} |")
    lines.append("")
    for what, met, detail in targets(result):
        verdict = "not measured" if met is None else ("MET" if met else "MISSED")
        lines.append(f"- {verdict}: {what} ({detail})")
    return lines


def update_readme(readme: Path, result: WxrResult, results_name: str, quick: bool) -> None:
    start, end = f"<!-- bench:wxr-{result.kind}:start -->", f"<!-- bench:wxr-{result.kind}:end -->"
    block = "\n".join([start, *readme_block(result, results_name, quick), end])
    text = readme.read_text() if readme.exists() else ""
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


def sizes(args) -> tuple[int, int]:
    """The file's size for a bench run: the target's, or a tenth of it with --quick."""
    posts = args.wxr_posts or (DEFAULT_POSTS // 10 if args.quick else DEFAULT_POSTS)
    comments = args.wxr_comments or (DEFAULT_COMMENTS // 10 if args.quick else DEFAULT_COMMENTS)
    return posts, comments


def only(args, databases_cls, child_env) -> int:
    """``bench.py --only wxr``: this section alone (no wrk, no gunicorn); results in
    benchmarks/results/<date>[-pg]-wxr.md and the WXR block of benchmarks/README.md."""
    import platform
    import sqlite3

    workdir = Path(tempfile.mkdtemp(prefix="blogapp-bench-wxr-"))
    dbs = databases_cls(args.db, workdir)
    env = child_env({"BLOGAPP_INSTANCE_PATH": str(workdir / "instance"), "BLOGAPP_SECRET_KEY": secrets.token_hex(32),
                     "BLOGAPP_JOBS_BACKEND": "thread", "BLOGAPP_TIMEZONE": "UTC",
                     **{"BLOGAPP_" + k.removeprefix("BLOGAPP_"): v
                        for k, _, v in (item.partition("=") for item in args.setting)}})
    try:
        try:
            model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        except (OSError, StopIteration):
            model = platform.processor() or "unknown"
        info = [("CPUs (nproc)", f"{os.cpu_count()} ({model})"), ("OS", platform.platform()),
                ("Python", platform.python_version()),
                ("database", dbs.version() if dbs.pg else f"SQLite {sqlite3.sqlite_version}")]
        print("Machine: " + "; ".join(f"{k} {v}" for k, v in info), flush=True)
        posts, comments = sizes(args)
        result = measure(dbs.create, dbs.kind, env, workdir, posts, comments, file=args.wxr_file,
                         log=lambda m: print(m, flush=True))
        print_result(result)
        verdicts = targets(result)
        print("\nTargets:")
        for what, met, detail in verdicts:
            print(f"  {'not measured' if met is None else ('MET' if met else 'MISSED'):<12} {what}: {detail}")
        name = f"{date.today().isoformat()}{'-pg' if dbs.pg else ''}-wxr.md"
        path = HERE / "results" / name
        lines = [f"# blogapp benchmark, WordPress import only, {date.today().isoformat()}", ""]
        if args.quick:
            lines += ["*Quick run (`--quick`): a tenth of the target's size, indicative only.*", ""]
        lines += ["## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info], ""]
        lines += markdown(result)
        lines += ["## Targets", "", "| target | result | measured |", "|---|---|---|"]
        lines += [f"| {what} | {'not measured' if met is None else ('MET' if met else 'MISSED')} | {detail} |"
                  for what, met, detail in verdicts]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        update_readme(HERE / "README.md", result, name, args.quick)
        print(f"\nWrote {path.relative_to(ROOT)} and the wxr-{dbs.kind} block in benchmarks/README.md")
        return 0
    finally:
        try:
            dbs.drop_all()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Generate a WordPress export, or measure importing one (see the docstring)")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write a WXR file")
    g.add_argument("file")
    g.add_argument("--posts", type=int, default=DEFAULT_POSTS)
    g.add_argument("--comments", type=int, default=DEFAULT_COMMENTS)
    g.add_argument("--seed", type=int, default=20261203)
    m = sub.add_parser("measure", help="import a generated (or given) file twice and print the figures; "
                                       "writes nothing (bench.py --only wxr writes results)")
    m.add_argument("--db", help="a PostgreSQL URL (a fresh schema is created and dropped); default: SQLite")
    m.add_argument("--posts", type=int, default=DEFAULT_POSTS)
    m.add_argument("--comments", type=int, default=DEFAULT_COMMENTS)
    m.add_argument("--file", help="import this file instead of generating one")
    args = p.parse_args(argv)
    if args.command == "generate":
        stats = generate(args.file, args.posts, args.comments, args.seed, log=print)
        print(json.dumps(asdict(stats), indent=1))
        return 0
    sys.path.insert(0, str(HERE))
    from bench import Databases, child_env  # noqa: PLC0415  (bench imports this module at its top)

    workdir = Path(tempfile.mkdtemp(prefix="blogapp-wxr-"))
    dbs = Databases(args.db, workdir)
    env = child_env({"BLOGAPP_INSTANCE_PATH": str(workdir / "instance"), "BLOGAPP_SECRET_KEY": secrets.token_hex(32),
                     "BLOGAPP_JOBS_BACKEND": "thread", "BLOGAPP_TIMEZONE": "UTC"})
    try:
        result = measure(dbs.create, dbs.kind, env, workdir, args.posts, args.comments, file=args.file)
        print_result(result)
        for what, met, detail in targets(result):
            print(f"  {'not measured' if met is None else ('MET' if met else 'MISSED'):<12} {what}: {detail}")
        return 0
    finally:
        try:
            dbs.drop_all()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
