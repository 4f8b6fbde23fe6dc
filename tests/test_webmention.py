"""The Webmention receiver, end to end: a live server over real HTTP called with ``requests``,
verifying source pages served by real HTTP servers on 127.0.0.1 (``tests/sites.py``); the
verification job runs in-process (``blogapp.jobs.wait_idle``)."""
from __future__ import annotations

import pytest
import requests
from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp import jobs
from blogapp.extensions import db
from blogapp.models import BlockedDomain, Comment, LinkbackLog
from helpers import make_post

SITE = "http://blog.test"
ENDPOINT = SITE + "/webmention"


@pytest.fixture
def config_overrides():
    return {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve"}


@pytest.fixture
def post(app, ctx):
    """A published post open to linkbacks: (id, path, permalink)."""
    post_id, path = make_post(title="Target post", days_ago=3)
    return post_id, path, SITE + path


def send(live_server, source, target, **kw):
    data = {k: v for k, v in (("source", source), ("target", target)) if v is not None}
    return requests.post(live_server.url + "/webmention", data=data, timeout=10, allow_redirects=False, **kw)


def settle(app):
    assert jobs.wait_idle(15, app=app)


def rows(app):
    with app.app_context():
        db.session.expire_all()
        return db.session.scalars(select(Comment).order_by(Comment.id)).all()


def status_of(live_server, response, **headers):
    location = response.headers["Location"]
    assert location.startswith(SITE + "/webmention/")
    return requests.get(live_server.url + location[len(SITE):], headers=headers, timeout=10)


def state(live_server, response) -> dict:
    answer = status_of(live_server, response, Accept="application/json")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    return answer.json()


def page(target_url: str, *, element: str | None = None, extra: str = "") -> str:
    element = element or f'<a href="{target_url}">the post</a>'
    return f"<!doctype html><html><head><title>A page</title></head><body><p>See {element}.</p>{extra}</body></html>"


def reply_page(target_url: str, prop: str = "u-in-reply-to", text: str = "Great post, I agree!") -> str:
    return f"""<!doctype html><html><body>
<article class="h-entry">
  <span class="p-author h-card"><img class="u-photo" src="https://alice.example/me.jpg" alt=""><a class="u-url p-name" href="https://alice.example/">Alice Example</a></span>
  <a class="{prop}" href="{target_url}">the post</a>
  <div class="e-content">{text}</div>
</article></body></html>"""


# --------------------------------------------------------------------------- accepted


def test_accepted_201_location_and_status_page_then_verified(app, live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/mention", page(target))
    response = send(live_server, source, target)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith(SITE + "/webmention/")
    assert len(response.headers["Location"].rsplit("/", 1)[1]) >= 24
    settle(app)
    data = state(live_server, response)
    assert data["status"] == "verified" and data["source"] == source and data["target"] == target
    html = status_of(live_server, response, Accept="text/html")
    assert html.status_code == 200 and "verified" in html.text and html.headers["Content-Type"].startswith("text/html")
    [row] = rows(app)
    assert (row.post_id, row.kind, row.status, row.response_type) == (post_id, "webmention", "approved", "mention")
    assert row.source_url == source
    [request] = source_site.requests
    assert request.method == "GET" and "verifying webmention" in request.headers["User-Agent"]


def test_status_page_shows_queued_before_the_job_runs(app, live_server, source_site, post, monkeypatch):
    _, _, target = post
    source = source_site.page("/mention", page(target))
    monkeypatch.setattr(app.extensions["jobs"], "submit", lambda *a, **k: None)  # the job never runs
    response = send(live_server, source, target)
    assert response.status_code == 201
    assert state(live_server, response)["status"] == "queued"


def test_unknown_token_is_404(live_server, post):
    assert requests.get(live_server.url + "/webmention/nope", timeout=10).status_code == 404
    assert requests.get(live_server.url + "/webmention/" + "x" * 200, timeout=10).status_code == 404


# --------------------------------------------------------------------------- 400s, before any fetch


@pytest.mark.parametrize("case", [
    "missing source", "missing target", "source not http", "target not http", "target not ours",
    "target not a post", "source is target", "json body", "no post at target",
])
def test_bad_requests_are_400_and_fetch_nothing(app, live_server, source_site, post, case):
    _, path, target = post
    source = source_site.page("/mention", page(target))
    if case == "missing source":
        response = send(live_server, None, target)
    elif case == "missing target":
        response = send(live_server, source, None)
    elif case == "source not http":
        response = send(live_server, "ftp://example.org/x", target)
    elif case == "target not http":
        response = send(live_server, source, "mailto:me@blog.test")
    elif case == "target not ours":
        response = send(live_server, source, "http://elsewhere.test/2020/01/01/x/")
    elif case == "target not a post":
        response = send(live_server, source, SITE + "/")
    elif case == "no post at target":
        response = send(live_server, source, SITE + "/2020/01/01/no-such-post/")
    elif case == "source is target":
        response = send(live_server, target + "#frag", target)
    else:
        response = requests.post(live_server.url + "/webmention", json={"source": source, "target": target}, timeout=10)
    assert response.status_code == 400, (case, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("text/plain") and response.text.strip()
    assert "Location" not in response.headers
    assert jobs.wait_idle(5, app=app)
    assert source_site.requests == [] and rows(app) == []


def test_blocked_domain_is_429(app, live_server, source_site, post):
    _, _, target = post
    source = source_site.page("/mention", page(target))
    with app.app_context():
        db.session.add(BlockedDomain(domain="127.0.0.1"))
        db.session.commit()
    response = send(live_server, source, target)
    assert response.status_code == 429 and "not accepted" in response.text
    assert source_site.requests == []


@pytest.mark.parametrize("config_overrides", [{
    "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve", "RATELIMIT_ENABLED": True,
    "LINKBACK_RATE_LIMIT": "1 per minute", "LINKBACK_SOURCE_RATE_LIMIT": "1 per minute",
    "LINKBACK_PENDING_PER_HOST": 2}])
def test_past_the_rates_webmentions_are_still_taken_up_to_the_cap_of_waiting_ones(app, live_server, source_site, post):
    """The rates pace verification; they turn no sender away. A host may have two Webmentions
    waiting here; a third, while they wait, is 429, and nothing is written for it."""
    _, _, target = post
    # The job thread is held by the first (slow) source while the second waits behind it.
    slow = source_site.slow("/slow", body=page(target).encode(), chunk_delay=0.3, chunks=3)
    waiting = source_site.page("/waiting", page(target))
    first, second = send(live_server, slow, target), send(live_server, waiting, target)
    assert (first.status_code, second.status_code) == (201, 201)  # the second is past both rates
    third = send(live_server, source_site.page("/third", page(target)), target)
    assert third.status_code == 429 and "waiting to be verified" in third.text
    settle(app)
    assert [(c.source_url, c.status) for c in rows(app)] == [(slow, "approved"), (waiting, "approved")]
    assert (state(live_server, first)["status"], state(live_server, second)["status"]) == ("verified", "verified")
    with app.app_context():
        assert [e.source_url for e in db.session.scalars(select(LinkbackLog).order_by(LinkbackLog.id))] == [
            slow, waiting]
    assert "/third" not in [r.path for r in source_site.requests]


def test_body_over_the_limit_is_400(app, live_server, source_site, post):
    _, _, target = post
    response = requests.post(live_server.url + "/webmention", data={"source": "http://x.test/" + "a" * 70000,
                                                                    "target": target}, timeout=10)
    assert response.status_code == 400 and "larger" in response.text


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("element", [
    '<a href="{t}">post</a>', '<img src="{t}" alt="">', '<video src="{t}"></video>', '<audio src="{t}"></audio>',
    '<video><source src="{t}"></video>',
])
def test_link_in_element_counts(app, live_server, source_site, post, element):
    _, _, target = post
    source = source_site.page("/m", page(target, element=element.format(t=target)))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    assert state(live_server, response)["status"] == "verified"
    assert len(rows(app)) == 1


@pytest.mark.parametrize("element", ["{t}", "<!-- <a href=\"{t}\">post</a> -->", '<a href="http://blog.test/other/">x</a>'])
def test_text_or_comment_only_is_refused(app, live_server, source_site, post, element):
    _, _, target = post
    source = source_site.page("/m", page(target, element=element.format(t=target)))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    data = state(live_server, response)
    assert data["status"] == "refused" and "does not link" in data["message"]
    assert rows(app) == []


def test_source_not_found_is_refused(app, live_server, source_site, post):
    _, _, target = post
    response = send(live_server, source_site.url + "/missing", target)
    assert response.status_code == 201
    settle(app)
    data = state(live_server, response)
    assert data["status"] == "refused" and "404" in data["message"]


# --------------------------------------------------------------------------- microformats and display


def test_mf2_reply_is_stored_and_shown(app, live_server, source_site, post):
    _, path, target = post
    source = source_site.page("/reply", reply_page(target, text="Great <b>post</b>, I agree!"))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    [row] = rows(app)
    assert row.response_type == "reply"
    assert (row.author_name, row.author_url, row.author_photo) == (
        "Alice Example", "https://alice.example/", "https://alice.example/me.jpg")
    assert row.content == "Great post, I agree!"
    soup = BeautifulSoup(requests.get(live_server.url + path, timeout=10).text, "lxml")
    [item] = soup.select("li.webmention")
    assert item.select_one(".h-card .p-name").get_text(strip=True) == "Alice Example"
    assert item.select_one(".h-card .u-photo")["src"] == "https://alice.example/me.jpg"
    assert item.select_one(".p-content").get_text(strip=True) == "Great post, I agree!"


def test_likes_are_shown_compactly(app, live_server, source_site, post):
    _, path, target = post
    for n, name in enumerate(["Alice", "Bob", "Carol"]):
        html = reply_page(target, prop="u-like-of", text="").replace("Alice Example", name)
        response = send(live_server, source_site.page(f"/like{n}", html), target)
        assert response.status_code == 201
        settle(app)
    assert [r.response_type for r in rows(app)] == ["like"] * 3
    soup = BeautifulSoup(requests.get(live_server.url + path, timeout=10).text, "lxml")
    assert soup.select("li.webmention") == []  # not shown as (empty) comments
    [likes] = soup.select(".webmention-reactions.reactions-like")
    assert likes.select_one(".reactions-count").get_text(strip=True) == "3 likes"
    assert [img["alt"] for img in likes.select("img.u-photo")] == ["Alice", "Bob", "Carol"]
    assert "No Comments" in soup.select_one(".comments-title").get_text()


def test_repost_type(app, live_server, source_site, post):
    _, path, target = post
    send(live_server, source_site.page("/r", reply_page(target, prop="u-repost-of")), target)
    settle(app)
    assert [r.response_type for r in rows(app)] == ["repost"]
    soup = BeautifulSoup(requests.get(live_server.url + path, timeout=10).text, "lxml")
    assert soup.select_one(".reactions-repost .reactions-count").get_text(strip=True) == "1 repost"


def shown_webmentions(live_server, path) -> list[dict]:
    """The Webmentions the post page shows as comments, as readers see them."""
    soup = BeautifulSoup(requests.get(live_server.url + path, timeout=10).text, "lxml")
    shown = []
    for item in soup.select("li.webmention"):
        author, content, photo = (item.select_one(".h-card .p-name"), item.select_one(".p-content"),
                                  item.select_one(".h-card .u-photo"))
        shown.append({"name": author.get_text(), "href": author["href"], "photo": photo["src"] if photo else None,
                      "content": content.get_text() if content else ""})
    return shown


def plain_page(target_url: str, title: str, before: str, after: str) -> str:
    return (f"<!doctype html><html><head><title>{title}</title></head><body><nav><a href=\"/\">Home</a></nav>"
            f"<p>{before} <a href=\"{target_url}\">their post</a> {after}</p><footer>Elsewhere</footer></body></html>")


def test_a_plain_page_shows_its_title_and_the_excerpt_as_a_pingback_does(app, live_server, source_site, post):
    """No microformats: the page's <title> is the author, the words around the link the content,
    by the pingback's rule (about 100 characters each side, cut at words, marked […])."""
    _, path, target = post
    before = "Words that stay well clear of the excerpt. " * 4 + "I was reading"
    source = source_site.page("/plain", plain_page(target, "Tom &amp; Jerry &#8211; notes", before,
                                                    "this morning, and agree."))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    [row] = rows(app)
    assert (row.kind, row.response_type, row.author_name, row.author_url) == (
        "webmention", "mention", "Tom & Jerry – notes", source)
    # The last 100 characters before the link, from a word's start: two of the four sentences.
    expected = ("[…] Words that stay well clear of the excerpt. Words that stay well clear of the excerpt."
                " I was reading their post this morning, and agree. […]")
    assert row.content == expected
    assert shown_webmentions(live_server, path) == [
        {"name": "Tom & Jerry – notes", "href": source, "photo": None, "content": expected}]


def test_a_plain_page_that_changed_updates_its_title_and_excerpt(app, live_server, source_site, post):
    _, path, target = post
    source = source_site.page("/plain", plain_page(target, "First title", "At first I read", "and liked it."))
    send(live_server, source, target)
    settle(app)
    [first] = rows(app)
    assert (first.author_name, first.content) == ("First title", "[…] At first I read their post and liked it. […]")
    source_site.page("/plain", plain_page(target, "Second title", "Later I read", "again, and changed my mind."))
    response = send(live_server, source, target)
    settle(app)
    [row] = rows(app)
    assert row.id == first.id and "updated" in state(live_server, response)["message"]
    assert shown_webmentions(live_server, path) == [{
        "name": "Second title", "href": source, "photo": None,
        "content": "[…] Later I read their post again, and changed my mind. […]"}]


def test_an_mf2_page_shows_its_h_card_and_e_content_not_its_title(app, live_server, source_site, post):
    _, path, target = post
    html = reply_page(target, text="Short and <i>sweet</i>.").replace("<html><body>",
                                                                    "<html><head><title>Page title</title></head><body>")
    source = source_site.page("/reply", html)
    send(live_server, source, target)
    settle(app)
    assert shown_webmentions(live_server, path) == [{
        "name": "Alice Example", "href": "https://alice.example/", "photo": "https://alice.example/me.jpg",
        "content": "Short and sweet."}]


def test_an_h_entry_without_an_author_is_named_by_the_page_title(app, live_server, source_site, post):
    """No h-card: the <title>, as for a plain page; no e-content: the entry's (implied) name, its text."""
    _, path, target = post
    html = (f'<html><head><title>Bob\'s notes</title></head><body><article class="h-entry">'
            f'<p>Read <a class="u-in-reply-to" href="{target}">this</a> today.</p></article></body></html>')
    send(live_server, source_site.page("/note", html), target)
    settle(app)
    [row] = rows(app)
    assert row.response_type == "reply"
    assert (row.author_name, row.content) == ("Bob's notes", "Read this today.")


@pytest.mark.parametrize("element", ['<img src="{t}" alt="a picture of the post">', '<video src="{t}"></video>'])
def test_a_media_link_is_found_on_a_large_page_and_excerpted(app, live_server, source_site, post, element):
    """The narrowed reader finds an <img>/<video> link past 200 KB of other links and text."""
    _, _, target = post
    filler = "".join(f'<p>Paragraph {n} with <a href="/other/{n}/">a link</a>.</p>' for n in range(4000))
    html = page(target, element=element.format(t=target), extra=filler)
    assert len(html) > 200_000
    send(live_server, source_site.page("/big", html), target)
    settle(app)
    [row] = rows(app)
    assert row.author_name == "A page" and row.content.startswith("[…] See ") and row.content.endswith(". […]")


# --------------------------------------------------------------------------- update and delete


def test_resend_updates_the_comment(app, live_server, source_site, post):
    _, _, target = post
    source = source_site.page("/reply", reply_page(target, text="First version"))
    send(live_server, source, target)
    settle(app)
    [first] = rows(app)
    source_site.page("/reply", reply_page(target, text="Second version"))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    [row] = rows(app)
    assert row.id == first.id and row.content == "Second version"
    assert "updated" in state(live_server, response)["message"]


@pytest.mark.parametrize("gone", ["410", "404", "no link"])
def test_resend_removes_when_gone(app, live_server, source_site, post, gone):
    _, path, target = post
    source = source_site.page("/reply", reply_page(target))
    send(live_server, source, target)
    settle(app)
    assert len(rows(app)) == 1
    if gone == "no link":
        source_site.page("/reply", "<html><body><p>Nothing here now.</p></body></html>")
    else:
        source_site.page("/reply", "gone", status=int(gone))
    response = send(live_server, source, target)
    assert response.status_code == 201
    settle(app)
    assert rows(app) == []
    data = state(live_server, response)
    assert data["status"] == "refused" and "removed" in data["message"]
    assert "Alice" not in requests.get(live_server.url + path, timeout=10).text


# --------------------------------------------------------------------------- discovery


def test_post_pages_advertise_the_endpoint(live_server, post):
    _, path, _ = post
    response = requests.get(live_server.url + path, timeout=10)
    assert response.headers["Link"] == f'<{ENDPOINT}>; rel="webmention"'
    assert response.links["webmention"]["url"] == ENDPOINT
    soup = BeautifulSoup(response.text, "lxml")
    assert soup.find("link", rel="webmention")["href"] == ENDPOINT


def test_log_rows_carry_tokens(app, live_server, source_site, post):
    _, _, target = post
    response = send(live_server, source_site.page("/m", page(target)), target)
    settle(app)
    with app.app_context():
        [entry] = db.session.scalars(select(LinkbackLog)).all()
        assert entry.protocol == "webmention" and entry.token == response.headers["Location"].rsplit("/", 1)[1]


QUICK_RETRIES = {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
                 "JOBS_MAX_ATTEMPTS": 3, "JOBS_BACKOFF_BASE": 0.05, "JOBS_BACKOFF_MAX": 0.1}


@pytest.mark.parametrize("config_overrides", [QUICK_RETRIES])
def test_resend_with_a_server_error_keeps_the_comment(app, live_server, source_site, post):
    _, _, target = post
    source = source_site.page("/reply", reply_page(target))
    send(live_server, source, target)
    settle(app)
    source_site.page("/reply", "oops", status=500)
    response = send(live_server, source, target)
    settle(app)
    data = state(live_server, response)
    assert data["status"] == "refused" and "500" in data["message"] and "removed" not in data["message"]
    assert len(rows(app)) == 1
    # Tried as often as JOBS_MAX_ATTEMPTS allows: a server error may pass.
    assert len([r for r in source_site.requests if r.path == "/reply"]) == 1 + 3


@pytest.mark.parametrize("config_overrides", [QUICK_RETRIES])
def test_a_source_that_fails_for_a_moment_is_verified_on_a_retry(app, live_server, source_site, post):
    _, _, target = post
    answers = [503, 200]

    def flaky(request):
        status = answers.pop(0) if answers else 200
        return status, {"Content-Type": "text/html"}, page(target) if status == 200 else "busy"

    source = source_site.handler("/flaky", flaky)
    response = send(live_server, source, target)
    settle(app)
    assert state(live_server, response)["status"] == "verified"
    assert [r.kind for r in rows(app)] == ["webmention"]


@pytest.mark.parametrize("kind,body,links", [
    ("text/plain", "I liked {target} a lot.", True),
    ("text/plain", "I liked a post on that blog.", False),
    ("application/json", '{{"items": [{{"url": "https://other.example/", "in-reply-to": ["{target}"]}}]}}', True),
    ("application/json", '{{"note": "the post at blog.test"}}', False),
])
def test_plain_text_and_json_sources(app, live_server, source_site, post, kind, body, links):
    _, _, target = post
    source = source_site.page("/doc", body.format(target=target), content_type=f"{kind}; charset=utf-8")
    response = send(live_server, source, target)
    settle(app)
    assert state(live_server, response)["status"] == ("verified" if links else "refused")
    stored = rows(app)
    assert [(r.kind, r.response_type, r.source_url) for r in stored] == ([("webmention", "mention", source)] if links else [])


def test_a_page_whose_meta_status_says_410_is_removed(app, live_server, source_site, post):
    _, _, target = post
    source = source_site.page("/reply", reply_page(target))
    send(live_server, source, target)
    settle(app)
    assert len(rows(app)) == 1
    source_site.page("/reply", f'<html><head><meta http-equiv="Status" content="410 Gone"></head>'
                               f'<body><p>Deleted. It once linked to <a href="{target}">the post</a>.</p></body></html>')
    response = send(live_server, source, target)
    settle(app)
    assert rows(app) == []
    assert "removed" in state(live_server, response)["message"]


@pytest.mark.parametrize("config_overrides", [{"WEBMENTION_ENABLED": False}])
def test_webmention_can_be_turned_off(app, live_server, source_site, post):
    _, path, target = post
    response = requests.get(live_server.url + path, timeout=10)
    assert "Link" not in response.headers and response.headers["X-Pingback"]
    assert not BeautifulSoup(response.text, "lxml").find("link", rel="webmention")
    answer = send(live_server, source_site.page("/m", page(target)), target)
    assert answer.status_code == 404 and "does not accept Webmentions" in answer.text
    assert source_site.requests == []
