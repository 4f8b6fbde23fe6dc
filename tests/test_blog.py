"""Readers' pages: index, permalinks, archives, the thread, the comment form."""
from __future__ import annotations

import re

import mf2py
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, save_site_settings
from conftest import count_queries
from helpers import add_comment, make_post


def soup(response):
    return BeautifulSoup(response.get_data(as_text=True), "lxml")


def comment_form(**overrides):
    data = {"author_name": "Ann Reader", "author_email": "ann@example.org", "author_url": "",
            "content": "A thoughtful remark.", "parent_id": "", "homepage": ""}
    data.update(overrides)
    return data


# ------------------------------------------------------------------ index and archives

def test_index_lists_newest_first_and_paginates(app, client, ctx):
    save_site_settings({"POSTS_PER_PAGE": 2})
    db.session.commit()
    for i in range(5):
        make_post(title=f"Post number {i}", days_ago=10 - i)
    first = soup(client.get("/"))
    titles = [a.get_text() for a in first.select("h2.entry-title a")]
    assert titles == ["Post number 4", "Post number 3"]
    # The link carries a cursor (tests/test_pagination.py); /page/N/ alone still works.
    assert first.select_one("a.older")["href"].startswith("/page/2/?after=")
    third = soup(client.get("/page/3/"))
    assert [a.get_text() for a in third.select("h2.entry-title a")] == ["Post number 0"]
    assert client.get("/page/4/").status_code == 404


def test_drafts_and_scheduled_posts_are_hidden(app, client, ctx):
    _, draft_path = make_post(title="Secret draft", publish=False)
    _, future_path = make_post(title="Tomorrow's post", days_ago=-1)
    page = client.get("/").get_data(as_text=True)
    assert "Secret draft" not in page and "Tomorrow" not in page
    assert client.get(draft_path).status_code == 404
    assert client.get(future_path).status_code == 404
    assert "Tomorrow" not in client.get("/feed/").get_data(as_text=True)


def test_permalink_is_dated_and_stable(app, client, ctx):
    post_id, path = make_post(title="Stable Address", days_ago=3)
    assert re.fullmatch(r"/\d{4}/\d{2}/\d{2}/stable-address/", path)
    assert client.get(path).status_code == 200
    # A wrong date leads to the canonical address; without the slash, Flask adds it.
    wrong = re.sub(r"/\d{2}/stable", "/01/stable", path) if not path.split("/")[3] == "01" else re.sub(r"/\d{2}/stable", "/02/stable", path)
    moved = client.get(wrong)
    assert moved.status_code == 301 and moved.headers["Location"].endswith(path)
    assert client.get(path.rstrip("/")).status_code in (301, 308)


def test_category_tag_and_month_archives(app, client, ctx):
    make_post(title="Care post", categories=["Client Care"], tags=["boundaries"], days_ago=2)
    make_post(title="Other post", categories=["Marketing / Strategy"], days_ago=2)
    def listed(url):
        return [a.get_text() for a in soup(client.get(url)).select(".h-feed h2.entry-title a")]

    assert listed("/category/client-care/") == ["Care post"]
    assert "Category: Client Care" in client.get("/category/client-care/").get_data(as_text=True)
    assert listed("/tag/boundaries/") == ["Care post"]
    assert listed("/category/marketing-strategy/") == ["Other post"]
    assert client.get("/category/nothing/").status_code == 404
    page = soup(client.get("/"))
    month_link = next(a["href"] for a in page.select(".widget a") if re.fullmatch(r"/\d{4}/\d{2}/", a["href"]))
    assert sorted(listed(month_link)) == ["Care post", "Other post"]
    assert client.get("/2026/13/").status_code == 404


def test_styled_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = soup(response)
    assert page.select_one("h1").get_text() == "Page not found"
    assert page.select_one("link[rel=stylesheet]")


# ------------------------------------------------------------------ the thread

@pytest.mark.parametrize("approved, heading", [(0, "No Comments"), (1, "One Comment"), (2, "2 Comments"), (5, "5 Comments")])
def test_heading_counts_approved_comments_and_linkbacks(app, client, ctx, approved, heading):
    post_id, path = make_post()
    for i in range(approved):
        if i % 2:
            add_comment(post_id, kind=CommentKind.PINGBACK, name=f"Linking page {i}", source_url=f"http://other.test/{i}")
        else:
            add_comment(post_id, f"comment {i}")
    add_comment(post_id, "waiting", status=CommentStatus.PENDING)
    add_comment(post_id, "junk", status=CommentStatus.SPAM)
    page = soup(client.get(path))
    assert page.select_one("h2.comments-title").get_text(strip=True) == heading
    text = page.get_text()
    assert "waiting" not in text and "junk" not in text


def test_replies_nest_up_to_the_depth_limit(app, client, ctx):
    save_site_settings({"COMMENT_THREAD_DEPTH": 3})
    db.session.commit()
    post_id, path = make_post()
    parent = None
    ids = []
    for depth in range(5):
        parent = add_comment(post_id, f"level {depth + 1}", parent_id=parent, minutes=depth)
        ids.append(parent)
    page = soup(client.get(path))
    depth_of = {cid: len(page.select_one(f"#comment-{cid}").find_parents("ol", class_="children")) for cid in ids}
    assert [depth_of[c] for c in ids] == [0, 1, 2, 2, 2]
    # No reply link at the deepest level.
    assert page.select_one(f"#comment-{ids[1]} .comment-reply-link")
    assert not page.select_one(f"#comment-{ids[2]} > .comment-body .comment-reply-link")


def test_reply_to_unapproved_parent_is_shown_at_top_level(app, client, ctx):
    post_id, path = make_post()
    parent = add_comment(post_id, "held parent", status=CommentStatus.PENDING)
    child = add_comment(post_id, "visible reply", parent_id=parent, minutes=1)
    page = soup(client.get(path))
    assert page.select_one(f"#comment-{child}").parent.name == "ol"
    assert "comment-list" in page.select_one(f"#comment-{child}").parent["class"]


def test_linkbacks_read_like_wordpress(app, client, ctx):
    post_id, path = make_post()
    add_comment(post_id, "[…] a useful excerpt […]", kind=CommentKind.PINGBACK,
                name="Seasons of Practice | A SMART PRACTICE", source_url="http://other.test/seasons/")
    add_comment(post_id, "<script>alert(1)</script>", kind=CommentKind.TRACKBACK,
                name="<b>Evil</b> title", source_url="http://other.test/tb/", minutes=1)
    html = client.get(path).get_data(as_text=True)
    line = soup(client.get(path)).select_one("li.pingback .linkback-line")
    assert line.get_text(" ", strip=True).startswith("Pingback: Seasons of Practice | A SMART PRACTICE")
    title_link = line.select_one(".p-name")
    assert title_link["href"] == "http://other.test/seasons/"
    assert title_link.get_text() == "Seasons of Practice | A SMART PRACTICE"
    assert "[…] a useful excerpt […]" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<b>Evil</b>" not in html
    page = soup(client.get(path))
    assert page.select_one("li.pingback") and page.select_one("li.trackback")


def test_closed_comments_end_the_thread(app, client, ctx):
    post_id, path = make_post(comments_open=False)
    add_comment(post_id, "Earlier words")
    page = soup(client.get(path))
    area = page.select_one("#comments")
    assert area.find_all(recursive=False)[-1].get_text() == "Comments are closed."
    assert not page.select("form.comment-form")
    assert "Earlier words" in area.get_text()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form())
    assert response.status_code == 403
    assert db.session.scalar(select(func.count(Comment.id))) == 1


def test_microformats_can_be_read_by_other_sites(app, client, ctx):
    post_id, path = make_post(title="Readable post", body="Body words.", categories=["Client Care"], tags=["growth"],
                              author=None)
    add_comment(post_id, "Nice one", name="Bea")
    add_comment(post_id, "excerpt", kind=CommentKind.PINGBACK, name="Their page", source_url="http://other.test/p", minutes=1)
    parsed = mf2py.parse(doc=client.get(path).get_data(as_text=True), url="http://blog.test" + path)
    entry = next(i for i in parsed["items"] if "h-entry" in i["type"])
    props = entry["properties"]
    assert props["name"] == ["Readable post"]
    assert "Body words." in props["content"][0]["html"]
    assert props["url"] == ["http://blog.test" + path]
    assert props["published"][0].startswith(path[1:11].replace("/", "-"))
    assert set(props["category"]) == {"Client Care", "growth"}
    comments = props["comment"]
    assert [c["type"] for c in comments] == [["h-cite"], ["h-cite"]]
    bea = comments[0]["properties"]
    assert bea["author"][0]["properties"]["name"] == ["Bea"]
    assert re.fullmatch(re.escape("http://blog.test" + path) + r"#comment-\d+", bea["url"][0])
    assert "published" in bea and "Nice one" in bea["content"][0]["value"]
    ping = comments[1]["properties"]
    assert ping["url"] == ["http://other.test/p"]
    assert ping["author"][0]["properties"]["name"] == ["Their page"]
    assert ping["content"] == ["excerpt"]


def test_post_author_is_an_h_card(app, client, ctx):
    from blogapp.models import User

    user = User(username="maya", display_name="Maya Ellison")
    user.set_password("x" * 12)
    db.session.add(user)
    db.session.commit()
    _, path = make_post(author=user)
    parsed = mf2py.parse(doc=client.get(path).get_data(as_text=True), url="http://blog.test" + path)
    entry = next(i for i in parsed["items"] if "h-entry" in i["type"])
    assert entry["properties"]["author"][0]["properties"]["name"] == ["Maya Ellison"]


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])  # what rendering costs, not a cache hit
def test_post_page_costs_constant_queries(app, client, ctx):
    small_id, small_path = make_post(title="Small")
    big_id, big_path = make_post(title="Big")
    add_comment(small_id, "one")
    parent = None
    for i in range(60):
        parent = add_comment(big_id, f"c{i}", parent_id=parent if i % 3 else None, minutes=i)
        if i % 10 == 0:
            add_comment(big_id, "ping", kind=CommentKind.PINGBACK, source_url=f"http://other.test/{i}", minutes=i)
    client.get(small_path)  # each viewed once before: the first view also reads the versions of what it showed
    client.get(big_path)
    with count_queries(app) as small:
        assert client.get(small_path).status_code == 200
    with count_queries(app) as big:
        assert client.get(big_path).status_code == 200
    assert small[0] == big[0]
    assert big[0] <= 12


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])
def test_an_unchanged_post_page_is_rendered_from_its_kept_parts(app, client, ctx):
    """Rendered again with nothing it shows changed, the page reads the versions alone: the post,
    its thread, its neighbours, the sidebar and the settings are kept."""
    post_id, path = make_post(title="Kept parts", categories=["Kept"], tags=["Parts"])
    add_comment(post_id, "one")
    first = client.get(path)
    with count_queries(app) as queries:
        again = client.get(path)
    assert again.get_data() == first.get_data() and again.headers["X-Pingback"] == first.headers["X-Pingback"]
    assert queries[0] <= 1  # the versions (none on PostgreSQL once the listener has them)


# ------------------------------------------------------------------ the comment form

def test_comment_is_held_and_shown_to_its_author(app, client, ctx):
    post_id, path = make_post()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(content="Held words"))
    assert response.status_code == 303
    comment = db.session.scalar(select(Comment))
    assert comment.status == "pending" and comment.ip == "127.0.0.1"
    assert response.headers["Location"].endswith(f"{path}#comment-{comment.id}")
    page = client.get(path).get_data(as_text=True)
    assert "Held words" in page and "Your comment is awaiting moderation." in page
    assert "No Comments" in page
    # Another visitor does not see it.
    other = app.test_client().get(path).get_data(as_text=True)
    assert "Held words" not in other


@pytest.mark.parametrize("mode, known, expected", [
    ("approve", False, "approved"),
    ("hold-all", True, "pending"),
    ("hold-new", False, "pending"),
    ("hold-new", True, "approved"),
])
def test_moderation_modes(app, client, ctx, mode, known, expected):
    save_site_settings({"COMMENT_MODERATION": mode})
    db.session.commit()
    post_id, _ = make_post()
    if known:
        add_comment(post_id, "earlier", email="Ann@Example.org")
    client.post(f"/posts/{post_id}/comments", data=comment_form(content="new one"))
    new = db.session.scalar(select(Comment).where(Comment.content == "new one"))
    assert new.status == expected


@pytest.mark.parametrize("field, value, message", [
    ("author_name", "", "Please give your name."),
    ("author_email", "not-an-address", "That email address does not look right."),
    ("author_url", "javascript:alert(1)", "Give a full web address"),
    ("content", "", "Please write a comment."),
    ("content", "x" * 10001, "Comments are limited to 10,000 characters."),
])
def test_form_errors_keep_what_was_typed(app, client, ctx, field, value, message):
    post_id, _ = make_post()
    typed = comment_form(author_name="Ann <Reader>", content="My careful paragraph & more", author_url="https://ann.test/")
    typed[field] = value
    response = client.post(f"/posts/{post_id}/comments", data=typed)
    assert response.status_code == 400
    page = soup(response)
    assert message in page.select_one(f".field-{field} .field-error").get_text()
    assert page.select_one(".form-error")
    for name in ("author_name", "author_email", "author_url"):
        if name != field:
            assert page.select_one(f"input[name={name}]")["value"] == typed[name]
    if field != "content":
        assert page.select_one("textarea[name=content]").get_text().strip() == "My careful paragraph & more"
    assert db.session.scalar(select(func.count(Comment.id))) == 0


def test_comment_markup_is_sanitised(app, client, ctx):
    save_site_settings({"COMMENT_MODERATION": "approve"})
    db.session.commit()
    post_id, path = make_post()
    text = ("**bold** and a [link](https://ok.test/) and [bad](javascript:alert(1)) "
            "<script>alert(1)</script> <img src=x onerror=alert(1)> https://bare.test/")
    client.post(f"/posts/{post_id}/comments", data=comment_form(content=text, author_url="https://ann.test/"))
    body = soup(client.get(path)).select_one(".comment-content")
    assert "<strong>bold</strong>" in str(body)
    assert not body.select("script, img, [onerror]")
    assert "javascript:" not in " ".join(a.get("href", "") for a in body.select("a"))
    # What was not allowed stays visible as text, not as markup.
    assert "<script>alert(1)</script>" in body.get_text()
    links = body.select("a")
    assert {a["href"] for a in links} == {"https://ok.test/", "https://bare.test/"}
    assert all(set(a["rel"]) >= {"nofollow", "ugc"} for a in links)


def test_reply_form_and_reply(app, client, ctx):
    save_site_settings({"COMMENT_MODERATION": "approve"})
    db.session.commit()
    post_id, path = make_post()
    parent = add_comment(post_id, "First!", name="Bea")
    form_page = soup(client.get(f"{path}?replytocom={parent}"))
    assert "Reply to Bea" in form_page.select_one(".comment-reply-title").get_text()
    assert form_page.select_one("input[name=parent_id]")["value"] == str(parent)
    client.post(f"/posts/{post_id}/comments", data=comment_form(content="A reply", parent_id=str(parent)))
    reply = db.session.scalar(select(Comment).where(Comment.content == "A reply"))
    assert reply.parent_id == parent
    page = soup(client.get(path))
    assert page.select_one(f"#comment-{parent} ol.children #comment-{reply.id}")


def test_reply_to_a_comment_of_another_post_is_refused(app, client, ctx):
    other_id, _ = make_post(title="Other")
    post_id, _ = make_post(title="This")
    foreign = add_comment(other_id, "elsewhere")
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(parent_id=str(foreign), content="kept text"))
    assert response.status_code == 400
    assert "kept text" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Comment.id))) == 1


def test_honeypot_drops_bots_silently(app, client, ctx):
    post_id, _ = make_post()
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(homepage="http://spam.test/"))
    assert response.status_code == 303
    assert db.session.scalar(select(func.count(Comment.id))) == 0


def test_comment_on_missing_post_is_404(client):
    assert client.post("/posts/999/comments", data=comment_form()).status_code == 404


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_ENABLED": True, "COMMENT_RATE_LIMIT": "2 per minute"}])
def test_comment_rate_limit_keeps_the_text(app, client, ctx):
    post_id, _ = make_post()
    for i in range(2):
        assert client.post(f"/posts/{post_id}/comments", data=comment_form(content=f"c{i}")).status_code == 303
    response = client.post(f"/posts/{post_id}/comments", data=comment_form(content="third, kept"))
    assert response.status_code == 429
    page = soup(response)
    assert "too quickly" in page.select_one(".form-error").get_text()
    assert page.select_one("textarea[name=content]").get_text().strip() == "third, kept"
    assert db.session.scalar(select(func.count(Comment.id))) == 2


@pytest.fixture
def redis_limits():
    from conftest import TEST_REDIS_URL

    if not TEST_REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set: the Redis-backed rate limit is not tested")
    import secrets

    return {"RATELIMIT_ENABLED": True, "COMMENT_RATE_LIMIT": "1 per minute", "REDIS_URL": TEST_REDIS_URL,
            "RATELIMIT_KEY_PREFIX": "blogapp-test-" + secrets.token_hex(4)}


@pytest.fixture
def config_overrides(request):
    return request.getfixturevalue("redis_limits") if "redis_limits" in request.fixturenames else {}


def test_rate_limits_are_shared_through_redis(app, client, ctx, redis_limits):
    import redis

    post_id, _ = make_post()
    assert client.post(f"/posts/{post_id}/comments", data=comment_form()).status_code == 303
    # A second app on the same database and Redis (another worker) sees the same counter.
    from blogapp import create_app

    second = create_app(dict(app.config), instance_path=app.instance_path)
    try:
        assert second.test_client().post(f"/posts/{post_id}/comments", data=comment_form(content="x")).status_code == 429
    finally:
        with second.app_context():
            db.session.remove()
            db.engine.dispose()
    with redis.Redis.from_url(redis_limits["REDIS_URL"]) as server:
        keys = server.keys("*" + redis_limits["RATELIMIT_KEY_PREFIX"] + "*")
        assert keys
        server.delete(*keys)
def test_huge_numbers_in_urls_are_404(client):
    for url, status in [("/page/99999999999999999999/", 404), ("/2026/11/", 200),
                        ("/admin/posts/99999999999999999999/edit", 404)]:
        assert client.get(url).status_code == status, url
    assert client.get("/page/99999999999999999999/").status_code == 404
    assert client.post("/posts/99999999999999999999/comments", data={}).status_code == 404
    assert client.get("/99999999999999999999/").status_code == 404
