"""``read_page`` with ``hints`` (the narrowed read) must decide exactly as the whole-page read.

Every case is read both ways; the two readings (or the two refusals) must be the same. The
fragments are the tricky spellings of links and of places where a link does not count; the
random pages mix them, many times, with a fixed seed.
"""
from __future__ import annotations

import random

import pytest

from blogapp.linkback.errors import NO_LINK, LinkbackError, SourceGone
from blogapp.linkback.verify import read_page
from blogapp.linkback.webmention import LINKING

SOURCE = "http://source.example/2026/a-post/"
TARGET = "http://blog.test/2026/11/27/the-slug/"
HINTS = ("the-slug",)


def is_target(url: str) -> bool:
    return url.split("#")[0].split("?")[0].lower() in (TARGET, "https" + TARGET[4:])


def both(page: str, charset: str | None = "utf-8", *, same_excerpt: bool = True, **options):
    """``options``: Webmention's reading (``linking``, ``status_meta``), the same both ways."""
    def one(**kw):
        try:
            return read_page(page.encode("utf-8"), charset, SOURCE, is_target, **options, **kw)
        except SourceGone:
            return "gone"
        except LinkbackError as error:
            assert error.code == NO_LINK
            return "no link"

    whole, narrowed = one(), one(hints=HINTS)
    if same_excerpt or isinstance(whole, str) or isinstance(narrowed, str):  # a refusal: the same one
        assert narrowed == whole, f"narrowed {narrowed!r} != whole {whole!r} for:\n{page[:2000]}"
    else:
        # The decision, the title and the link are the same; the excerpt of a link that sits in no
        # paragraph-like block (straight in <body>) is taken from the text near it, which may differ.
        assert (narrowed.title, narrowed.link_text) == (whole.title, whole.link_text), f"{narrowed!r} != {whole!r}"
        assert narrowed.link_text in narrowed.excerpt
    return whole


FRAGMENTS = {
    "plain link": f'<p>Before <a href="{TARGET}">the post</a> after.</p>',
    "https link": f'<p>See <a href="https{TARGET[4:]}">it</a>.</p>',
    "single quotes": f"<p>See <a href='{TARGET}'>it</a>.</p>",
    "unquoted": f"<p>See <a href={TARGET}>it</a>.</p>",
    "upper case tag": f'<P>See <A HREF="{TARGET}">it</A>.</P>',
    "entity slashes": '<p>See <a href="http:&#47;&#47;blog.test&#47;2026&#47;11&#47;27&#47;the-slug&#47;">it</a>.</p>',
    "entity in slug": '<p>See <a href="http://blog.test/2026/11/27/the&#45;slug/">it</a>.</p>',
    "percent in slug": '<p>See <a href="http://blog.test/2026/11/27/the%2Dslug/">it</a>.</p>',
    "fragment and query": f'<p>See <a href="{TARGET}?utm=x#comments">it</a>.</p>',
    "area": f'<map name="m"><area href="{TARGET}" alt="the map"></map>',
    "in a comment": f'<!-- <a href="{TARGET}">hidden</a> -->',
    "in a script": f'<script>document.write(\'<a href="{TARGET}">x</a>\')</script>',
    "in a style": f'<style>/* <a href="{TARGET}"> */ p {{ color: red }}</style>',
    "in a textarea": f'<textarea><a href="{TARGET}">x</a></textarea>',
    "as text only": f"<p>The address is {TARGET} as text.</p>",
    "escaped markup": f"<pre>&lt;a href=\"{TARGET}\"&gt;</pre>",
    "other link": '<p>An <a href="http://elsewhere.example/the-slug-not/">elsewhere</a> link.</p>',
    "near miss": '<p>A <a href="http://blog.test/2026/11/27/the-slug-two/">sibling</a> post.</p>',
    "gt in attribute": f'<p><a title="a > b" href="{TARGET}">quoted gt</a></p>',
    "data-href": f'<p><a data-href="{TARGET}" href="http://elsewhere.example/">decoy</a></p>',
    "empty href": '<p><a href="">empty</a> and <a href="#the-slug">fragment</a></p>',
    "title element": "<title>A &amp; B — the page</title>",
    "base tag": '<base href="http://blog.test/2026/11/27/">',
    "relative after base": '<p>Relative: <a href="the-slug/">here</a>.</p>',
    "long paragraph": "<p>" + "Words and more words. " * 400 + f'<a href="{TARGET}">deep</a>' + " trailing." * 50 + "</p>",
    "unterminated comment": "<!-- this comment never ends",
    "long comment before": "<p>Intro.</p><!-- " + "hidden words " * 1000 + f'<a href="{TARGET}">in the comment</a> -->'
                           + f'<p>Real <a href="{TARGET}">outside</a> link.</p>',
    "long script before": "<script>var s = '" + "x" * 9000 + f'<a href="{TARGET}">in the script</a>' + "';</script>"
                          + f'<p>Real <a href="{TARGET}">outside</a> link.</p>',
    "h-entry": '<article class="h-entry"><h1 class="p-name">An entry name</h1></article>',
    "nested inline": f'<p>Some <b>bold <i>and <a href="{TARGET}"><span>nested</span> text</a></i></b>, then more.</p>',
    "list item": f'<ul><li>One</li><li>Two with <a href="{TARGET}">a link</a>, yes</li></ul>',
}


@pytest.mark.parametrize("name", FRAGMENTS)
def test_each_fragment_reads_the_same_both_ways(name):
    page = f"<!doctype html><html><head><title>Source</title></head><body>{FRAGMENTS[name]}</body></html>"
    both(page)


def test_the_narrowed_read_finds_what_the_whole_read_finds():
    page = ("<!doctype html><html><head><title>Source &amp; co</title></head><body>"
            + FRAGMENTS["in a comment"] + FRAGMENTS["other link"] + FRAGMENTS["plain link"] + "</body></html>")
    reading = both(page)
    assert reading != "no link"
    assert reading.title == "Source & co" and reading.link_text == "the post"
    assert reading.excerpt == "[…] Before the post after. […]"


def test_a_page_without_the_slug_is_refused_without_reading_it():
    page = "<html><body>" + "<p>filler <a href='http://x.example/'>x</a></p>" * 2000 + "</body></html>"
    assert both(page) == "no link"


def test_a_link_a_megabyte_in_reads_the_same():
    filler = "".join(f'<p>Paragraph {i} with <a href="http://other.example/{i}">a link</a> and <em>text</em>.</p>\n'
                     for i in range(12000))
    page = f"<html><head><title>Big</title></head><body>{filler}{FRAGMENTS['plain link']}</body></html>"
    assert len(page) > 900_000
    assert both(page).link_text == "the post"


@pytest.mark.parametrize("seed", range(60))
def test_random_pages_read_the_same_both_ways(seed):
    rng = random.Random(seed)
    names = list(FRAGMENTS)
    head = rng.choice(["<title>Random page</title>", "", FRAGMENTS["base tag"], "<title>T</title>" + FRAGMENTS["base tag"]])
    parts = [FRAGMENTS[rng.choice(names)] for _ in range(rng.randint(1, 12))]
    page = f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
    both(page, same_excerpt=False)


# Webmention's reading: media elements link too, and a page may say it is gone.
WEBMENTION = {"linking": LINKING, "status_meta": True}
MEDIA_FRAGMENTS = {
    "img": f'<p>A picture: <img src="{TARGET}" alt="the post, drawn"> and words after.</p>',
    "img without alt": f'<p>A picture: <img src="{TARGET}"> and words.</p>',
    "video": f'<p>Watch <video src="{TARGET}" controls></video> now.</p>',
    "audio": f'<p>Hear <audio src="{TARGET}"></audio> it.</p>',
    "source in video": f'<figure><video><source src="{TARGET}" type="video/mp4"></video><figcaption>Clip</figcaption></figure>',
    "img in a comment": f'<!-- <img src="{TARGET}"> -->',
    "img href": f'<p><img href="{TARGET}" src="http://elsewhere.example/x.png"></p>',
    "gone meta": '<meta http-equiv="Status" content="410 Gone">',
    "gone meta in a comment": '<!-- <meta http-equiv="Status" content="410 Gone"> -->',
    "other meta": '<meta http-equiv="refresh" content="410; url=/">',
}
WEBMENTION_FRAGMENTS = {**FRAGMENTS, **MEDIA_FRAGMENTS}


@pytest.mark.parametrize("name", WEBMENTION_FRAGMENTS)
def test_each_fragment_reads_the_same_both_ways_for_a_webmention(name):
    page = f"<!doctype html><html><head><title>Source</title></head><body>{WEBMENTION_FRAGMENTS[name]}</body></html>"
    both(page, **WEBMENTION)


def test_a_webmention_finds_a_media_link_and_a_page_that_says_it_is_gone():
    page = f"<html><head><title>Pictures</title></head><body>{MEDIA_FRAGMENTS['img']}</body></html>"
    reading = both(page, **WEBMENTION)
    assert (reading.title, reading.link_text) == ("Pictures", "the post, drawn")
    assert reading.excerpt == "[…] A picture: the post, drawn and words after. […]"
    assert both(page) == "no link"  # for a pingback, only <a> and <area> link
    gone = page.replace("<title>", MEDIA_FRAGMENTS["gone meta"] + "<title>")
    assert both(gone, **WEBMENTION) == "gone"
    assert both(gone) == "no link"  # a pingback does not read it


@pytest.mark.parametrize("seed", range(40))
def test_random_pages_read_the_same_both_ways_for_a_webmention(seed):
    rng = random.Random(seed)
    names = list(WEBMENTION_FRAGMENTS)
    parts = [WEBMENTION_FRAGMENTS[rng.choice(names)] for _ in range(rng.randint(1, 12))]
    page = f"<!doctype html><html><head><title>Random</title></head><body>{''.join(parts)}</body></html>"
    both(page, same_excerpt=False, **WEBMENTION)
