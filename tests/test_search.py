"""Search as WordPress readers know it: ``/?s=words``, ranked, highlighted, paginated, cached,
never showing what readers may not read, and unmoved by whatever a query holds."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, inspect, select, text

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import BodyFormat, ImportedItem, LegacyPath, OutboundLink, Post, utcnow
from blogapp.posts import remove_post, save_post
from blogapp.search import SQLITE_INDEX_TABLES, marked_html, terms
from blogapp.wxr.exporter import WxrExporter
from blogapp.wxr.importer import WxrImporter
from conftest import database_config
from helpers import make_post


@pytest.fixture
def client(app, no_server_errors):
    """The test client, and the test fails if the app answered 500 during it."""
    return app.test_client()


def search(client, query, **params):
    return client.get("/", query_string={"s": query, **params})


def shown_ids(html: str) -> list[int]:
    """The posts a results page lists, in its order."""
    return [int(n) for n in re.findall(r'<article class="[^"]*" id="post-(\d+)"', html)]


def test_a_post_with_the_words_in_its_title_and_text_ranks_above_one_with_each_once(app, ctx, client):
    strong, _ = make_post("Orchid repotting", body="Orchid repotting needs bark. Repotting an orchid in spring is best.",
                          days_ago=5)
    # Newer, so that by date alone it would come first.
    weak, _ = make_post("A walk in the park", body="I saw an orchid, and later read about repotting ferns.", days_ago=1)
    make_post("Unrelated", body="Nothing about plants here.", days_ago=0)
    html = search(client, "orchid repotting").get_data(as_text=True)
    assert shown_ids(html) == [strong, weak]


def test_every_word_is_required(app, ctx, client):
    both, _ = make_post("Tea", body="Green tea with lemon.")
    make_post("Only tea", body="Black tea, nothing else.")
    make_post("Only lemon", body="Lemon cake.")
    assert shown_ids(search(client, "tea lemon").get_data(as_text=True)) == [both]


def test_results_page_has_the_heading_and_highlighted_excerpts(app, ctx, client):
    post_id, path = make_post("Notes on the heron", body="Early today a *grey heron* stood by the pond; a < b & c > d.")
    response = search(client, "heron")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Search results for: heron" in html
    article = html[html.index(f'id="post-{post_id}"'):]
    assert f'<a href="{path}">Notes on the <mark>heron</mark></a>' in article
    excerpt = re.search(r'<div class="p-summary entry-excerpt">\s*<p>(.*?)</p>', article, re.S).group(1)
    assert "grey <mark>heron</mark> stood" in excerpt
    assert "a &lt; b &amp; c &gt; d" in excerpt  # the text escaped; only our <mark> is markup
    assert '<meta name="robots" content="noindex">' in html


def test_the_query_is_shown_escaped(app, ctx, client):
    html = search(client, '<script>alert("x")</script>').get_data(as_text=True)
    assert "<script>alert" not in html
    assert "Search results for: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_no_results_says_so_and_shows_the_search_box_again(app, ctx, client):
    make_post("Something", body="About something else.")
    html = search(client, "xylophone").get_data(as_text=True)
    assert "nothing matched your search terms" in html
    form = re.search(r'<section class="no-results">.*?</section>', html, re.S).group(0)
    assert 'method="get"' in form and 'name="s"' in form and 'value="xylophone"' in form
    assert re.search(r'<label for="search-again">', form)


def test_an_empty_or_blank_query_is_the_home_page(app, ctx, client):
    make_post("Home post", body="Home.")
    home = client.get("/").get_data(as_text=True)
    for query in ("", "   ", "\t"):
        html = search(client, query).get_data(as_text=True)
        assert "Search results for" not in html
        assert shown_ids(html) == shown_ids(home) != []


def test_readers_never_find_drafts_private_scheduled_or_removed_posts(app, ctx, client):
    public, _ = make_post("Zebrafish public", body="zebrafish")
    make_post("Zebrafish draft", body="zebrafish", publish=False)
    make_post("Zebrafish private", body="zebrafish", private=True)
    make_post("Zebrafish scheduled", body="zebrafish", days_ago=-3)
    removed, _ = make_post("Zebrafish removed", body="zebrafish")
    remove_post(db.session.get(Post, removed))
    db.session.commit()
    assert shown_ids(search(client, "zebrafish").get_data(as_text=True)) == [public]


def test_an_edit_shows_in_results_at_once_with_the_page_cache_on(app, ctx, client):
    assert app.config["PAGE_CACHE"]
    post_id, _ = make_post("Birds", body="A robin.")
    make_post("Other", body="A quokka.")
    first = search(client, "quokka")
    again = search(client, "quokka")
    assert again.headers["X-Cache"] == "hit"  # the results page is cached like the others
    assert post_id not in shown_ids(again.get_data(as_text=True))
    post = db.session.get(Post, post_id)
    save_post(post, title=post.title, body="A robin, then a quokka.", publish=True)  # the text alone
    db.session.commit()
    after = search(client, "quokka")
    assert post_id in shown_ids(after.get_data(as_text=True))
    assert first.headers["X-Cache"] == "miss"
    save_post(post, title="Birds and a wombat", body=post.body, publish=True)  # the title alone
    db.session.commit()
    assert shown_ids(search(client, "wombat").get_data(as_text=True)) == [post_id]


def test_a_deleted_post_disappears_from_results_and_from_the_index(app, ctx, client):
    post_id, _ = make_post("Kestrel", body="A kestrel hovering.")
    assert shown_ids(search(client, "kestrel").get_data(as_text=True)) == [post_id]
    remove_post(db.session.get(Post, post_id))
    db.session.commit()
    assert shown_ids(search(client, "kestrel").get_data(as_text=True)) == []
    if db.engine.dialect.name == "sqlite":  # nothing left behind in the FTS5 table either
        assert db.session.scalar(text("SELECT count(*) FROM post_search WHERE post_search MATCH 'kestrel'")) == 0


def test_posts_imported_from_a_wxr_file_are_found(app, ctx, client):
    save_post(None, title="From WordPress", body="<p>An <em>HTML</em> body about a narwhal.</p>",
              body_format=BodyFormat.HTML.value, publish=True, published_at=utcnow() - timedelta(days=2))
    make_post("Markdown one", body="A *narwhal* again.")
    db.session.commit()
    exported = "".join(WxrExporter().chunks()).encode("utf-8")
    for model in (OutboundLink, ImportedItem, LegacyPath, Post):
        db.session.execute(delete(model))
    db.session.commit()
    assert shown_ids(search(client, "narwhal").get_data(as_text=True)) == []
    WxrImporter().run(io.BytesIO(exported))
    html = search(client, "narwhal").get_data(as_text=True)
    imported = db.session.scalars(select(Post.id)).all()
    assert len(imported) == 2 and sorted(shown_ids(html)) == sorted(imported)
    assert "about a <mark>narwhal</mark>" in html
    assert "<em>" not in re.search(r"about a <mark>narwhal</mark>[^<]*", html).group(0)


HOSTILE = [
    '"', "'", '"unbalanced', 'orchid"', '""', "*", "orchid*", "NEAR", "NEAR(orchid bark)", "NEAR(orchid", "orchid OR bark",
    "OR", "AND", "NOT", "orchid NOT bark", "-orchid", "orchid -bark", "title:orchid", ":", "^orchid", "orchid + bark",
    "(", ")", "((orchid", "orchid))", "{orchid bark}", "[orchid]", "\\", "%", "_", "orchid's", "'; DROP TABLE post; --",
    "&amp;", "<mark>", "\ue000orchid\ue001", "x" * 300, ("orchid " * 60)[:300], "café naïve 日本語 Ελληνικά", "🦜🌱",
    "orchid 🌱", "\u200b", "a" * 5000,
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_answer_200(app, ctx, client, query):
    post_id, _ = make_post("Orchid care", body="Orchid bark, repotted.")
    response = search(client, query)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Traceback" not in html
    assert "Search results for: " in html
    words = {word.lower() for word in terms(query)}
    if db.engine.dialect.name == "postgresql":
        words -= {"or", "and", "not", "s"}  # English stop words: PostgreSQL drops them, SQLite keeps them
    if words and words <= {"orchid", "bark"}:  # the words of it are still searched, the rest ignored
        assert shown_ids(html) == [post_id]
    elif words - {"orchid", "bark", "care", "repotted"}:  # a word the post lacks: every word is required
        assert shown_ids(html) == []


def test_a_nul_in_the_query_is_refused(app, client):
    assert client.get("/?s=a%00b").status_code == 400


def test_only_the_words_of_a_query_reach_the_engine():
    assert terms('NEAR("orchid" bark)* -fern title:x') == ["NEAR", "orchid", "bark", "fern", "title", "x"]
    assert terms("🦜 & | ( )") == []
    assert len(terms("w " * 100)) == 24
    assert str(marked_html("a <b> \ue000c\ue001 \ue001 \ue000d")) == "a &lt;b&gt; <mark>c</mark>  <mark>d</mark>"


@pytest.mark.parametrize("config_overrides", [{"POSTS_PER_PAGE": 2}])
def test_results_are_paginated_and_the_links_keep_the_query(app, ctx, client, config_overrides):
    # The same length, the word more often in each: the last made (the oldest) ranks first.
    ids = [make_post(f"Lichen {n}", body="lichen " * (n + 1) + "moss " * (5 - n), days_ago=n)[0] for n in range(5)]
    first = search(client, "lichen")
    html = first.get_data(as_text=True)
    assert "Page 1 of 3" in html
    older = re.search(r'<a class="older" href="([^"]+)"', html).group(1)
    assert older == "/page/2/?s=lichen"
    second = client.get(older).get_data(as_text=True)
    assert "Page 2 of 3" in second and "Search results for: lichen" in second
    assert re.search(r'<a class="newer" href="/\?s=lichen"', second)
    assert client.get("/page/3/?s=lichen").status_code == 200
    assert client.get("/page/4/?s=lichen").status_code == 404
    wordpress_style = search(client, "lichen", paged="2").get_data(as_text=True)
    seen = shown_ids(html) + shown_ids(second) + shown_ids(client.get("/page/3/?s=lichen").get_data(as_text=True))
    assert shown_ids(wordpress_style) == shown_ids(second)
    assert sorted(seen) == sorted(ids)  # every match once, across the pages
    assert seen[0] == ids[4]  # the word most often first


def test_the_sidebar_has_a_search_form_that_works_without_javascript(app, ctx, client):
    make_post("Anything", body="Some text.")
    for path in ("/", "/?s=anything", "/?s=nothingmatches"):
        html = client.get(path).get_data(as_text=True)
        sidebar = re.search(r'<aside class="sidebar".*?</aside>', html, re.S).group(0)
        form = re.search(r'<form class="search-form"[^>]*>.*?</form>', sidebar, re.S).group(0)
        assert 'method="get"' in form and 'action="/"' in form
        assert re.search(r'<label for="sidebar-search">[^<]+</label>', form)
        assert '<input type="search" id="sidebar-search" name="s">' in form


def test_the_migration_builds_the_index_for_existing_posts_and_the_schema_of_the_models(tmp_path, pg_schema):
    """Upgrade (posts already there are found), the same schema as create_all, downgrade removes it all."""
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SITE_URL": "http://blog.test",
                      **database_config(tmp_path, pg_schema)}, instance_path=str(tmp_path / "i"))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        db.drop_all()  # other tests leave their (emptied) tables in the PostgreSQL schema
        try:
            upgrade(directory=directory, revision="e5b2c8d14f60")
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO post (title, slug, body, body_format, body_html, excerpt, status,"
                                  " published_at, created_at, updated_at, comments_open, pings_open, send_linkbacks)"
                                  " VALUES ('Old post', 'old-post', '', 'html', '<p>An old <b>axolotl</b>.</p>', '',"
                                  " 'published', :t, :t, :t, true, true, true)"), {"t": utcnow() - timedelta(days=1)})
            upgrade(directory=directory, revision="f14a5e7c2b90")
            from blogapp.search import find
            found = find(["axolotl"], offset=0, limit=10, now=utcnow())
            assert found.total == 1 and "<mark>axolotl</mark>" in found.hits[0].excerpt
            db.session.remove()  # (its transaction would hold the lock the DDL below waits for)
            upgrade(directory=directory, revision="heads")
            with db.engine.connect() as conn:
                index_tables = lambda name, kind, parent: not (kind == "table" and name in SQLITE_INDEX_TABLES)  # noqa: E731
                diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": index_tables}), db.metadata)
            assert diff == []
            downgrade(directory=directory, revision="e5b2c8d14f60")
            with db.engine.connect() as conn:
                found = inspect(conn)
                assert not {c["name"] for c in found.get_columns("post")} & {"search_text", "search_vector"}
                assert not set(found.get_table_names()) & SQLITE_INDEX_TABLES
        finally:
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                conn.exec_driver_sql("DROP TABLE IF EXISTS post_search")
            db.engine.dispose()
