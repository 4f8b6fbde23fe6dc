"""Moving out and back in: our own WXR export imported into an empty blog gives the same blog;
old addresses of imported posts lead to the new ones; importing sends nothing."""
from __future__ import annotations

import io
import json
import re
import xmlrpc.client
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from blogapp.demo import seed
from blogapp.extensions import db
from blogapp.models import (
    BodyFormat,
    Category,
    Comment,
    CommentKind,
    CommentStatus,
    ContentVersion,
    ImportedItem,
    JobRecord,
    LegacyPath,
    LinkbackLog,
    OutboundLink,
    OutboundState,
    Page,
    Post,
    PostStatus,
    Tag,
    Tombstone,
    User,
    utcnow,
)
from blogapp.pages import save_page
from blogapp.posts import save_post
from blogapp.templating import post_path, site_request_context
from blogapp.wxr.exporter import WxrExporter
from blogapp.wxr.importer import WxrImporter
from blogapp.wxr.read import Item, WxrReader
from conftest import SITE_URL
from helpers import add_comment

# Whatever the input, the app never answers 500.
pytestmark = pytest.mark.usefixtures("no_server_errors")

# ------------------------------------------------------------------ building and comparing blogs


def _build_rich_blog():
    """The demo blog, and what the demo lacks: a nested category, a private, a draft and a scheduled
    post, an HTML post, pages, a Webmention, a trackback, a trashed comment, a closed-pings post."""
    seed()
    maya = db.session.scalar(select(User).where(User.username == "maya"))
    now = utcnow().replace(microsecond=0)
    parent = db.session.scalar(select(Category).where(Category.name == "Client Care"))
    child = Category(name="Intake Forms", slug="intake-forms", parent_id=parent.id)
    db.session.add(child)
    db.session.flush()
    nested = save_post(None, title="Forms & <Paperwork>", body="A **Markdown** body with [a link](http://127.0.0.1:9/x).\n\nTwo paragraphs.",
                       categories=["Intake Forms"], tags=["forms"], publish=True, published_at=now - timedelta(days=3),
                       author=maya, pings_open=False, excerpt="Forms, in short: a <summary> & more.")
    save_post(None, title="Private notes", body="Only for me.", private=True, published_at=now - timedelta(days=2), author=maya)
    save_post(None, title="A draft", body="Not yet.", author=maya)
    save_post(None, title="Scheduled", body="Later.", publish=True, published_at=now + timedelta(days=7), author=maya,
              send_linkbacks=False)
    html_post = save_post(None, title="From WordPress", body="<p>An <em>HTML</em> body.</p>\n<p>[unknown_code x=1]</p>",
                          body_format=BodyFormat.HTML.value, publish=True, published_at=now - timedelta(days=1), author=maya)
    db.session.commit()
    mention = Comment(post_id=nested.id, kind=CommentKind.WEBMENTION.value, status=CommentStatus.APPROVED.value,
                      author_name="Web Author", author_url="http://127.0.0.1:9/me", author_photo="http://127.0.0.1:9/me.jpg",
                      source_url="http://127.0.0.1:9/liked", source_key="127.0.0.1:9/liked", response_type="like",
                      content="", created_at=now - timedelta(hours=5))
    track = Comment(post_id=html_post.id, kind=CommentKind.TRACKBACK.value, status=CommentStatus.PENDING.value,
                    author_name="Other Blog", author_url="http://127.0.0.1:9/tb", source_url="http://127.0.0.1:9/tb",
                    source_key="127.0.0.1:9/tb", content="A title\n\nAn excerpt with < and & in it",
                    created_at=now - timedelta(hours=4), ip="127.0.0.9")
    db.session.add_all([mention, track])
    db.session.commit()
    trashed = add_comment(nested.id, "Was *here*", name="Trashy", status=CommentStatus.TRASH, minutes=3)
    db.session.get(Comment, trashed).previous_status = CommentStatus.APPROVED.value
    db.session.commit()
    save_page(None, title="About", body="Who *I* am.", menu_order=1, author=maya)
    save_page(None, title="Contact", body="<p>Write to me.</p>", body_format=BodyFormat.HTML.value, menu_order=2)
    db.session.commit()


def _s(when):
    """WXR keeps times to the second."""
    return when.replace(microsecond=0) if when else None


def _snapshot() -> dict:
    """What a reader or an admin can tell about the blog, with ids replaced by stable names."""
    users = {u.id: u.username for u in db.session.scalars(select(User))}
    cats = {c.id: c for c in db.session.scalars(select(Category))}
    posts = {}
    for post in db.session.scalars(select(Post)):
        comments = db.session.scalars(select(Comment).where(Comment.post_id == post.id)).all()
        key_of = {c.id: (c.author_name, _s(c.created_at)) for c in comments}
        posts[post.slug] = {
            "title": post.title, "status": post.status, "published_at": _s(post.published_at), "excerpt": post.excerpt,
            "body": post.body, "body_format": post.body_format, "body_html": post.body_html,
            "comments_open": post.comments_open, "pings_open": post.pings_open,
            "send_linkbacks": post.send_linkbacks, "author": users.get(post.author_id),
            "categories": sorted((c.name, c.slug, cats[c.parent_id].name if c.parent_id else None) for c in post.categories),
            "tags": sorted((t.name, t.slug) for t in post.tags),
            "comments": sorted(
                (c.kind, c.status, c.author_name, c.author_email, c.author_url, c.source_url, c.content, c.content_html,
                 _s(c.created_at), c.ip, key_of.get(c.parent_id), c.response_type, c.author_photo, c.previous_status,
                 users.get(c.user_id))
                for c in comments
            ),
        }
    pages = {p.slug: (p.title, p.body, p.body_format, p.body_html, p.status, p.menu_order)
             for p in db.session.scalars(select(Page))}
    return {"posts": posts, "pages": pages}


def _export() -> bytes:
    return "".join(WxrExporter().chunks()).encode("utf-8")


def _empty_the_blog() -> None:
    """Everything but the users and settings: the blog as a new install with the same accounts."""
    for model in (LinkbackLog, OutboundLink, ImportedItem, LegacyPath, Comment, Tombstone, JobRecord):
        db.session.execute(delete(model))
    for model in (Post, Page, Category, Tag):
        db.session.execute(delete(model))
    db.session.commit()


def _import(data: bytes, **kw):
    return WxrImporter(**kw).run(io.BytesIO(data))


# ------------------------------------------------------------------ the round trip


def test_our_export_imported_into_an_empty_blog_gives_the_same_blog(app, ctx):
    _build_rich_blog()
    before = _snapshot()
    assert before["posts"]["forms-paperwork"]["categories"] == [("Intake Forms", "intake-forms", "Client Care")]
    replies = db.session.scalar(select(func.count(Comment.id)).where(Comment.parent_id.is_not(None)))
    assert replies >= 4
    data = _export()
    _empty_the_blog()
    assert db.session.scalar(select(func.count(Post.id))) == 0
    summary = _import(data)
    assert summary.posts == len(before["posts"]) and summary.pages == len(before["pages"]) == 3
    after = _snapshot()
    for slug in before["posts"]:
        assert after["posts"][slug] == before["posts"][slug], slug
    assert after == before
    # The thread is threaded: the demo's replies point at their parents again.
    assert db.session.scalar(select(func.count(Comment.id)).where(Comment.parent_id.is_not(None))) == replies


def test_the_round_trip_keeps_what_readers_see(app, ctx, client):
    _build_rich_blog()
    paths = [post_path(p) for p in db.session.scalars(select(Post).where(Post.visible()))] + ["/", "/about/", "/feed/"]
    pages_before = {path: client.get(path).get_data(as_text=True) for path in paths}
    data = _export()
    _empty_the_blog()
    _import(data)
    for path, html in pages_before.items():
        response = client.get(path)
        assert response.status_code == 200, path
        # Comment ids change; the text readers read does not.
        assert _text_of(response.get_data(as_text=True)) == _text_of(html), path


def _text_of(html: str) -> str:
    import re

    html = re.sub(r'(post-|page-|comment-|replytocom=|#comment-|data-reply-to="|"c)\d+', r"\1N", html)
    html = re.sub(r"/posts/\d+/comments", "/posts/N/comments", html)
    html = re.sub(r'name="parent_id"[^>]*value="\d+"', 'name="parent_id" value="N"', html)
    html = re.sub(r"<(updated|id)>[^<]*</\1>", "", html)
    html = re.sub(r"(T\d\d:\d\d:\d\d)\.\d+", r"\1", html)  # WXR keeps times to the second
    return html


def test_importing_our_own_export_into_the_same_blog_adds_nothing(app, ctx):
    _build_rich_blog()
    before = _snapshot()
    summary = _import(_export())
    assert summary.added == 0
    assert summary.already["post"] == len(before["posts"]) and summary.already["page"] == len(before["pages"])
    assert _snapshot() == before
    assert "Nothing new" in summary.line()


# ------------------------------------------------------------------ idempotence, dry run


def test_the_same_file_twice_adds_nothing_and_a_longer_one_only_what_is_new(app, ctx):
    _build_rich_blog()
    data = _export()
    _empty_the_blog()
    first = _import(data)
    counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in (Post, Comment, Page, ImportedItem)}
    second = _import(data)
    assert second.added == 0 and "Nothing new" in second.line()
    assert {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in (Post, Comment, Page, ImportedItem)} == counts
    assert second.already["comment"] == first.comments + first.pingbacks + first.trackbacks + first.webmentions
    # A longer export of the old site: one more comment on an existing post, one more post.
    longer = data.decode().replace(
        "\t</item>\n",
        "\t\t<wp:comment><wp:comment_id>990001</wp:comment_id><wp:comment_author><![CDATA[Late Reader]]></wp:comment_author>"
        "<wp:comment_date_gmt>2026-01-02 03:04:05</wp:comment_date_gmt><wp:comment_content><![CDATA[Late.]]></wp:comment_content>"
        "<wp:comment_approved>1</wp:comment_approved><wp:comment_type>comment</wp:comment_type></wp:comment>\n\t</item>\n",
        1,
    ).replace(
        "</channel>",
        "\t<item><title>One more</title><dc:creator>maya</dc:creator><wp:post_id>990002</wp:post_id>"
        "<wp:post_date_gmt>2025-05-05 05:05:05</wp:post_date_gmt><wp:post_name>one-more</wp:post_name>"
        "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>"
        "<content:encoded><![CDATA[Hello]]></content:encoded></item>\n</channel>",
    ).encode()
    third = _import(longer)
    assert (third.posts, third.comments, third.pages, third.pingbacks) == (1, 1, 0, 0)
    assert db.session.scalar(select(func.count(Post.id))) == counts["Post"] + 1
    assert db.session.scalar(select(func.count(Comment.id))) == counts["Comment"] + 1


def test_dry_run_reports_and_writes_nothing(app, ctx):
    _build_rich_blog()
    data = _export()
    _empty_the_blog()
    version = db.session.scalar(select(ContentVersion.version))
    dry = _import(data, dry_run=True)
    assert dry.posts > 0 and dry.comments > 0 and dry.line().startswith("Would import")
    assert db.session.scalar(select(func.count(Post.id))) == 0
    assert db.session.scalar(select(func.count(ImportedItem.id))) == 0
    assert db.session.scalar(select(ContentVersion.version)) == version
    real = _import(data)
    assert (real.posts, real.pages, real.comments, real.pingbacks, real.trackbacks) == \
        (dry.posts, dry.pages, dry.comments, dry.pingbacks, dry.trackbacks)


def test_cli_import_and_export_with_json(app, runner, tmp_path):
    with app.app_context(), site_request_context(app):
        _build_rich_blog()
    out = tmp_path / "blog.xml"
    exported = runner.invoke(args=["export-wxr", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "Exported" in exported.output and out.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8" ?>')
    assert not (tmp_path / "blog.xml.part").exists()
    to_stdout = runner.invoke(args=["export-wxr"])
    assert to_stdout.exit_code == 0 and "<wp:wxr_version>1.2</wp:wxr_version>" in to_stdout.stdout
    with app.app_context():
        _empty_the_blog()
    result = runner.invoke(args=["import-wxr", str(out), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    with app.app_context():
        assert counts["posts"] == db.session.scalar(select(func.count(Post.id)))
        assert counts["pages"] == db.session.scalar(select(func.count(Page.id)))
        assert counts["comments"] == db.session.scalar(
            select(func.count(Comment.id)).where(Comment.kind == CommentKind.COMMENT.value))
        assert counts["pingbacks"] == 1 and counts["trackbacks"] == 1 and counts["skipped"] == 0
    assert result.output.strip().splitlines()[-2].startswith("Imported ")


# ------------------------------------------------------------------ WordPress content and old addresses

WXR_HEAD = """<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.1/excerpt/"
 xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:wp="http://wordpress.org/export/1.1/">
<channel><title>Old blog</title><link>https://old.example</link>
<wp:wxr_version>1.1</wp:wxr_version><wp:base_site_url>https://old.example</wp:base_site_url>
<wp:author><wp:author_id>7</wp:author_id><wp:author_login>admin</wp:author_login></wp:author>
<wp:category><wp:term_id>1</wp:term_id><wp:category_nicename>parent</wp:category_nicename><wp:category_parent></wp:category_parent><wp:cat_name>Parent</wp:cat_name></wp:category>
<wp:category><wp:term_id>2</wp:term_id><wp:category_nicename>child</wp:category_nicename><wp:category_parent>parent</wp:category_parent><wp:cat_name>Child</wp:cat_name></wp:category>
"""


def _item(post_id, slug, *, link=None, content="Hello", status="publish", comments="", meta="", extra="",
          date="2015-03-26 14:05:00", post_type="post"):
    link = link or f"https://old.example/{slug}/"
    return f"""<item><title>Title {post_id}</title><link>{link}</link><dc:creator>admin</dc:creator>
<guid isPermaLink="false">https://old.example/?p={post_id}</guid>
<content:encoded><![CDATA[{content}]]></content:encoded><wp:post_id>{post_id}</wp:post_id>
<wp:post_date>{date}</wp:post_date><wp:post_date_gmt>{date}</wp:post_date_gmt><wp:comment_status>open</wp:comment_status>
<wp:ping_status>open</wp:ping_status><wp:post_name>{slug}</wp:post_name><wp:status>{status}</wp:status>
<wp:post_type>{post_type}</wp:post_type>{extra}{meta}{comments}</item>
"""


def _wxr(*items) -> bytes:
    return (WXR_HEAD + "".join(items) + "</channel></rss>").encode()


@pytest.fixture
def admin_user(app):
    with app.app_context():
        db.session.add(User(username="admin", password_hash="x"))
        db.session.commit()


def test_old_addresses_answer_301_to_the_new_permalinks(app, ctx, client, admin_user):
    old_slug = "<wp:postmeta><wp:meta_key>_wp_old_slug</wp:meta_key><wp:meta_value>first-name</wp:meta_value></wp:postmeta>"
    data = _wxr(
        _item(123, "seasons-of-practice", link="https://old.example/archives/123/seasons-of-practice/", meta=old_slug),
        _item(7, "about-me", post_type="page", link="https://old.example/about/about-me/"),
        _item(124, "dated", link="https://old.example/2015/03/26/dated/"),
    )
    _import(data)
    post = db.session.scalar(select(Post).where(Post.slug == "seasons-of-practice"))
    new = post_path(post)
    assert new == "/2015/03/26/seasons-of-practice/"
    for old in ("/?p=123", "/archives/123/seasons-of-practice/", "/archives/123/seasons-of-practice",
                "/archives/123/first-name/", "/2015/03/26/first-name/"):
        response = client.get(old)
        assert (response.status_code, response.headers.get("Location")) == (301, new), old
    page = client.get("/?page_id=7")
    assert (page.status_code, page.headers["Location"]) == (301, "/about-me/")
    assert client.get("/about/about-me/").headers.get("Location") == "/about-me/"
    # The permalink shape that is already ours needs no redirect.
    assert client.get("/2015/03/26/dated/").status_code == 200
    assert db.session.scalar(select(LegacyPath.id).where(LegacyPath.path == "/2015/03/26/dated")) is None
    # Unknown old ids and paths are still 404.
    assert client.get("/?p=999").status_code == 404
    assert client.get("/archives/999/nope/").status_code == 404


# (No CPU budget: each ping is verified while its sender waits; the budget is test_pingback's subject.)
LOOPBACK_SOURCES = {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
                    "LINKBACK_VERIFY_BUDGET": 5.0, "LINKBACK_VERIFY_CPU": 0}


@pytest.mark.parametrize("config_overrides", [LOOPBACK_SOURCES])
def test_a_pingback_naming_an_old_address_counts_for_the_post(app, ctx, admin_user, live_server, source_site):
    data = _wxr(_item(123, "seasons", link=f"{SITE_URL}/archives/123/seasons/"))
    _import(data)
    post = db.session.scalar(select(Post).where(Post.slug == "seasons"))
    for n, target in enumerate((f"{SITE_URL}/archives/123/seasons/", f"{SITE_URL}/?p=123")):
        source = source_site.page(f"/links-{n}", f'<html><head><title>Linker {n}</title></head><body>'
                                                 f'<p>See <a href="{target}">this</a>.</p></body></html>')
        server = xmlrpc.client.ServerProxy(live_server.url + "/xmlrpc")
        assert isinstance(server.pingback.ping(source, target), str)
        db.session.expire_all()
        found = db.session.scalar(select(Comment).where(Comment.post_id == post.id, Comment.source_url == source))
        assert found is not None and found.kind == CommentKind.PINGBACK.value, target
    # The old plain address is the site's root plus an id: a page that links to the home page only
    # does not link to the post.
    home_only = source_site.page("/home-only", f'<html><body><a href="{SITE_URL}/">home</a> '
                                               f'<a href="{SITE_URL}/?p=124">another id</a></body></html>')
    with pytest.raises(xmlrpc.client.Fault) as refused:
        xmlrpc.client.ServerProxy(live_server.url + "/xmlrpc").pingback.ping(home_only, f"{SITE_URL}/?p=123")
    assert refused.value.faultCode == 17


def test_wordpress_content_reads_as_it_did_on_wordpress(app, ctx, client, admin_user):
    content = ("First paragraph with <strong>bold</strong>.\nA second line.\n\nSecond paragraph.\n\n"
               '[caption id="attachment_5" align="alignnone" width="300"]<img src="https://old.example/x.jpg" alt="x" /> The caption[/caption]\n\n'
               "[mystery_code a=1]\n\n<script>alert(1)</script>")
    blocks = "<!-- wp:paragraph -->\n<p>Block one.</p>\n<!-- /wp:paragraph -->\n\n<!-- wp:latest-posts /-->"
    summary = _import(_wxr(_item(1, "classic", content=content), _item(2, "blocks", content=blocks)))
    assert summary.unknown_shortcodes == {"mystery_code": 1}
    assert "[mystery_code]" in summary.line()
    classic = client.get("/2015/03/26/classic/").get_data(as_text=True)
    assert "<p>First paragraph with <strong>bold</strong>.<br>\nA second line.</p>" in classic
    assert "<p>Second paragraph.</p>" in classic
    assert '<figure><img src="https://old.example/x.jpg" alt="x"><figcaption>The caption</figcaption></figure>' in classic
    assert "[caption" not in classic and "[mystery_code a=1]" in classic
    assert "<script>alert(1)</script>" not in classic  # the sanitiser still runs
    block_page = client.get("/2015/03/26/blocks/").get_data(as_text=True)
    assert "<p>Block one.</p>" in block_page and "wp:paragraph" not in block_page and "wp:latest" not in block_page


def test_statuses_and_discussion_settings_come_over(app, ctx, client, admin_user):
    closed = _item(1, "closed").replace("<wp:comment_status>open</wp:comment_status>",
                                        "<wp:comment_status>closed</wp:comment_status>")
    data = _wxr(closed, _item(2, "private-one", status="private"), _item(3, "draft-one", status="draft"),
                _item(4, "future-one", status="future", date="2099-01-01 00:00:00"),
                _item(5, "trashed", status="trash"),
                _item(6, "secret", extra="<wp:post_password>pw</wp:post_password>"),
                _item(8, "in-child", extra='<category domain="category" nicename="child"><![CDATA[Child]]></category>'
                                          '<category domain="post_tag" nicename="new-tag"><![CDATA[New Tag]]></category>'))
    summary = _import(data)
    by_slug = {p.slug: p for p in db.session.scalars(select(Post))}
    assert "trashed" not in by_slug and summary.skipped["posts in the trash"] == 1
    assert by_slug["closed"].comments_open is False
    assert "Comments are closed." in client.get("/2015/03/26/closed/").get_data(as_text=True)
    assert by_slug["private-one"].status == PostStatus.PRIVATE
    assert by_slug["secret"].status == PostStatus.PRIVATE and summary.password_protected == 1
    assert client.get("/2015/03/26/private-one/").status_code == 404
    assert client.get("/2015/03/26/secret/").status_code == 404
    assert by_slug["draft-one"].status == PostStatus.DRAFT and by_slug["draft-one"].published_at is None
    assert by_slug["future-one"].is_scheduled
    child = db.session.scalar(select(Category).where(Category.slug == "child"))
    assert child.parent is not None and child.parent.slug == "parent"
    assert [c.slug for c in by_slug["in-child"].categories] == ["child"]
    assert [t.name for t in by_slug["in-child"].tags] == ["New Tag"]


# ------------------------------------------------------------------ nothing is sent


def test_importing_sends_nothing_and_a_later_edit_sends_only_new_links(app, ctx, admin_user, monkeypatch):
    from blogapp import outbound

    sent = []
    monkeypatch.setattr(outbound.Sender, "send", lambda self, *a, **kw: sent.append(a) or None, raising=False)
    content = ('See <a href="http://127.0.0.1:9/elsewhere">a page</a> and <a href="https://old.example/other/">ours</a>.')
    _import(_wxr(_item(1, "linking", content=content)))
    assert db.session.scalar(select(func.count(JobRecord.id))) == 0
    rows = db.session.scalars(select(OutboundLink)).all()
    assert {r.target_url for r in rows} == {"http://127.0.0.1:9/elsewhere", "https://old.example/other/"}
    assert all(r.state == OutboundState.SENT and r.sent_protocol == "imported" for r in rows)
    post = db.session.scalar(select(Post).where(Post.slug == "linking"))
    # An edit that adds a link plans that link alone.
    save_post(post, title=post.title, body=post.body + '<p><a href="http://127.0.0.1:9/new">new</a></p>',
              publish=True, body_format=post.body_format)
    db.session.commit()
    pending = db.session.scalars(select(OutboundLink.target_url).where(OutboundLink.state == OutboundState.PENDING)).all()
    assert pending == ["http://127.0.0.1:9/new"]


def test_imported_pingbacks_keep_their_source_so_a_repeat_is_a_duplicate(app, ctx, admin_user, live_server):
    ping = ("<wp:comment><wp:comment_id>11</wp:comment_id><wp:comment_author><![CDATA[A &#8211; Blog]]></wp:comment_author>"
            "<wp:comment_author_url>http://127.0.0.1:9/linking-page/</wp:comment_author_url>"
            "<wp:comment_date_gmt>2015-03-27 10:00:00</wp:comment_date_gmt>"
            "<wp:comment_content><![CDATA[[&#8230;] an excerpt [&#8230;]]]></wp:comment_content>"
            "<wp:comment_approved>1</wp:comment_approved><wp:comment_type>pingback</wp:comment_type>"
            "<wp:comment_parent>0</wp:comment_parent></wp:comment>")
    _import(_wxr(_item(1, "pinged", comments=ping)))
    comment = db.session.scalar(select(Comment).where(Comment.kind == CommentKind.PINGBACK.value))
    assert comment.author_name == "A – Blog" and comment.content == "[…] an excerpt […]"
    assert comment.source_url == "http://127.0.0.1:9/linking-page/"
    post = db.session.get(Post, comment.post_id)
    server = xmlrpc.client.ServerProxy(live_server.url + "/xmlrpc")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        server.pingback.ping("http://127.0.0.1:9/linking-page", SITE_URL + post_path(post))
    assert fault.value.faultCode == 48


def test_export_is_read_back_by_the_reader_with_every_item(app, ctx):
    _build_rich_blog()
    items = [r for r in WxrReader(io.BytesIO(_export())) if isinstance(r, Item)]
    posts = [i for i in items if i.post_type == "post"]
    assert len(posts) == db.session.scalar(select(func.count(Post.id)))
    assert len({i.post_id for i in items}) == len(items)  # posts and pages never share an id
    statuses = {i.status for i in posts}
    assert statuses == {"publish", "private", "draft", "future"}
    kinds = {c.type for i in posts for c in i.comments}
    assert kinds == {"comment", "pingback", "trackback", "webmention"}
    approved = {c.approved for i in posts for c in i.comments}
    assert approved == {"1", "0", "spam", "trash"}


def _element_paths(data: bytes) -> set[str]:
    """Every element's path (namespace prefixes as WordPress writes them) in a WXR file."""
    from lxml import etree

    prefixes = {"http://purl.org/rss/1.0/modules/content/": "content:", "http://purl.org/dc/elements/1.1/": "dc:",
                "http://wordpress.org/export/1.2/": "wp:", "http://wordpress.org/export/1.2/excerpt/": "excerpt:",
                "http://wellformedweb.org/CommentAPI/": "wfw:"}
    paths, stack = set(), []
    for event, element in etree.iterparse(io.BytesIO(data), events=("start", "end")):
        if event == "start":
            ns, _, name = element.tag[1:].partition("}") if element.tag.startswith("{") else ("", "", element.tag)
            stack.append(prefixes.get(ns, "") + name)
            paths.add("/".join(stack))
        else:
            stack.pop()
    return paths


def test_our_export_uses_only_what_wordpress_itself_writes(app, ctx):
    """WordPress's importer reads what WordPress's exporter writes: our file has the same shape (every
    element we write is one WordPress writes at the same place), and every field its importer needs."""
    from pathlib import Path

    wordpress = _element_paths((Path(__file__).parent / "fixtures/wordpress/wxr-export.xml").read_bytes())
    _build_rich_blog()
    ours = _element_paths(_export())
    assert ours - wordpress == set()
    needed = {"rss/channel/wp:wxr_version", "rss/channel/wp:base_site_url", "rss/channel/wp:author/wp:author_login",
              "rss/channel/wp:category/wp:category_nicename", "rss/channel/wp:tag/wp:tag_slug",
              "rss/channel/item/wp:post_id", "rss/channel/item/wp:post_type", "rss/channel/item/wp:status",
              "rss/channel/item/wp:post_name", "rss/channel/item/wp:post_date_gmt", "rss/channel/item/content:encoded",
              "rss/channel/item/dc:creator", "rss/channel/item/category", "rss/channel/item/wp:postmeta/wp:meta_key",
              "rss/channel/item/wp:comment/wp:comment_id", "rss/channel/item/wp:comment/wp:comment_parent",
              "rss/channel/item/wp:comment/wp:comment_approved", "rss/channel/item/wp:comment/wp:comment_type",
              "rss/channel/item/wp:comment/wp:commentmeta/wp:meta_key"}
    assert needed <= ours


def test_a_category_archive_holds_its_subcategories_posts(app, ctx, client, admin_user):
    data = _wxr(_item(1, "in-parent", extra='<category domain="category" nicename="parent"><![CDATA[Parent]]></category>'),
                _item(2, "in-child", extra='<category domain="category" nicename="child"><![CDATA[Child]]></category>'))
    _import(data)
    def listed(path):
        html = client.get(path).get_data(as_text=True)
        return set(re.findall(r'class="entry-title p-name"><a href="[^"]+">([^<]+)</a>', html))

    assert listed("/category/parent/") == {"Title 1", "Title 2"}
    assert listed("/category/child/") == {"Title 2"}


def test_a_hand_written_excerpt_comes_over(app, ctx, client, admin_user):
    _import(_wxr(_item(1, "summarised", content="A long body that would be cut.",
                       extra="<excerpt:encoded><![CDATA[A <em>short</em> summary &amp; more.]]></excerpt:encoded>")))
    post = db.session.scalar(select(Post).where(Post.slug == "summarised"))
    assert post.excerpt == "A short summary & more."
    assert "A short summary &amp; more." in client.get("/").get_data(as_text=True)


def test_titles_and_comments_read_with_wordpress_typography(app, ctx, client, admin_user):
    comment = ("<wp:comment><wp:comment_id>21</wp:comment_id><wp:comment_author><![CDATA[Bob's \"blog\"]]></wp:comment_author>"
               "<wp:comment_date_gmt>2015-03-27 10:00:00</wp:comment_date_gmt>"
               "<wp:comment_content><![CDATA[It's \"fine\".\n\nSecond paragraph.]]></wp:comment_content>"
               "<wp:comment_approved>1</wp:comment_approved><wp:comment_type></wp:comment_type></wp:comment>")
    item = _item(1, "typography", comments=comment).replace("<title>Title 1</title>", "<title>Tom's \"big\" day</title>")
    _import(_wxr(item))
    post = db.session.scalar(select(Post).where(Post.slug == "typography"))
    assert post.title == "Tom\u2019s \u201cbig\u201d day"
    saved = db.session.scalar(select(Comment).where(Comment.post_id == post.id))
    assert saved.author_name == "Bob's \"blog\""  # WordPress shows names as written
    assert saved.content_html.strip() == "<p>It\u2019s \u201cfine\u201d.</p>\n<p>Second paragraph.</p>"


def test_only_http_links_come_over_from_a_file(app, ctx, client, admin_user):
    """A crafted export cannot put a script behind a commenter's name or a linkback's source."""
    def comment(n, kind, url, photo=""):
        meta = (f"<wp:commentmeta><wp:meta_key>_blogapp_author_photo</wp:meta_key><wp:meta_value><![CDATA[{photo}]]>"
                "</wp:meta_value></wp:commentmeta>") if photo else ""
        return (f"<wp:comment><wp:comment_id>{n}</wp:comment_id><wp:comment_author>Name {n}</wp:comment_author>"
                f"<wp:comment_author_url><![CDATA[{url}]]></wp:comment_author_url>"
                f"<wp:comment_date_gmt>2015-03-27 10:00:0{n}</wp:comment_date_gmt>"
                f"<wp:comment_content>Text {n}</wp:comment_content><wp:comment_approved>1</wp:comment_approved>"
                f"<wp:comment_type>{kind}</wp:comment_type>{meta}</wp:comment>")
    comments = (comment(1, "comment", "javascript:alert(1)") + comment(2, "pingback", "JavaScript:alert(2)")
                + comment(3, "webmention", "http://127.0.0.1:9/ok", photo="javascript:alert(3)")
                + comment(4, "comment", "https://127.0.0.1:9/fine"))
    _import(_wxr(_item(1, "links", comments=comments)))
    rows = {c.author_name: c for c in db.session.scalars(select(Comment))}
    assert rows["Name 1"].author_url == "" and rows["Name 2"].source_url is None
    assert rows["Name 3"].author_photo is None and rows["Name 3"].source_url == "http://127.0.0.1:9/ok"
    assert rows["Name 4"].author_url == "https://127.0.0.1:9/fine"
    page = client.get("/2015/03/26/links/").get_data(as_text=True)
    assert "javascript:" not in page.lower()
