"""Edge cases of the WXR import found in review: repeated and oversized ids, statuses WordPress
plugins add, another site's page of the same slug, odd plain links, dates and page breaks.

Built on the helpers of test_wxr_bad_input.py (the real WordPress export, edited).
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.models import Page, Post
from blogapp.pages import save_page
from test_wxr_bad_input import (  # noqa: F401  (admin is a fixture)
    FIXTURE,
    WXR,
    add_comments_to_first_item,
    add_items,
    admin,
    comment_xml,
    imported,
    item_xml,
    output_lines,
    path_of,
    run,
    write,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")


def no_crash(result) -> list[str]:
    """An odd file may be refused (one "Error:" line, exit 1) or imported, but never a traceback."""
    assert "Traceback" not in result.output, result.output[-2000:]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.exit_code
    lines = output_lines(result)
    if result.exit_code == 1:
        assert len(lines) == 1 and lines[0].startswith("Error: "), lines
        assert "IntegrityError" not in lines[0] and "sqlite3" not in lines[0], lines[0]
    return lines


def test_two_items_with_the_same_post_id_do_not_crash_the_import(app, runner, admin, tmp_path):
    # A merged or hand-edited export: today the ImportedItem insert of the batch raises IntegrityError
    # (CLI: a traceback; admin upload: the job "failed" with the SQL statement shown on the page).
    data = add_items(WXR, item_xml(901, title="First", slug="first-901"),
                     item_xml(901, title="Second", slug="second-901"))
    no_crash(run(runner, write(tmp_path, "dup.xml", data)))


def test_two_comments_with_the_same_comment_id_do_not_crash_the_import(app, runner, admin, tmp_path):
    data = add_items(WXR, item_xml(901, comments=[comment_xml(990, author="One"), comment_xml(990, author="Two")]))
    no_crash(run(runner, write(tmp_path, "dupc.xml", data)))


def test_an_id_too_large_for_the_database_does_not_crash_the_import(app, runner, admin, tmp_path):
    # Today: OverflowError: Python int too large to convert to SQLite INTEGER (a traceback).
    huge = 99999999999999999999
    data = add_items(WXR, item_xml(huge, title="Huge id", slug="huge-id"))
    no_crash(run(runner, write(tmp_path, "huge.xml", data)))


@pytest.mark.parametrize("status", ["pitch", "in-progress", "assigned", "something-unknown"])
def test_a_post_with_a_status_we_do_not_know_is_not_published(app, client, runner, admin, tmp_path, status):
    # Editorial plugins (Edit Flow, PublishPress) keep unfinished posts under their own statuses,
    # which WordPress never shows to readers. importer._insert_posts publishes any status it does
    # not know (its else branch), so an unfinished draft goes out on the front page and the feed.
    data = add_items(WXR, item_xml(901, title="Secret plans", slug="secret-plans", status=status,
                                   content="Not ready for readers."))
    no_crash(run(runner, write(tmp_path, "status.xml", data)))
    post = imported(app, "post", 901)
    assert post is None or post.status != "published", post.status
    for url in ("/", "/feed/"):
        assert "Not ready for readers." not in client.get(url).get_data(as_text=True), url


def test_a_page_from_another_site_is_not_taken_for_an_existing_page_with_the_same_slug(app, runner, admin, tmp_path):
    # The blog already has its own About page; the WordPress site has one too (another site, other
    # text). _find_existing matches pages by slug alone, so the WordPress page is reported as
    # "already here" and its text is silently dropped; /?page_id=ID then leads to the blog's own page.
    with app.app_context():
        save_page(None, title="About", body="The blog's own about text.", slug="about")
        db.session.commit()
    data = add_items(WXR, item_xml(901, title="About me", slug="about", post_type="page",
                                   content="The WordPress about text."))
    lines = no_crash(run(runner, write(tmp_path, "about.xml", data)))
    assert lines and "already here" not in lines[-1], lines
    with app.app_context():
        bodies = [p.body for p in db.session.scalars(select(Page))]
    assert any("The WordPress about text." in body for body in bodies), bodies


@pytest.mark.parametrize("query", ["p=\u0661", "p=\uff11", "p=0_1", "page_id=%C2%B2", "p=-1"])
def test_plain_links_take_ascii_digits_only(app, client, runner, admin, tmp_path, query):
    result = run(runner, write(tmp_path, "edge.xml", WXR))
    assert result.exit_code == 0, result.output
    assert client.get(f"/?{query}").status_code == 404


def test_a_page_break_keeps_the_words_apart(app, client, runner, admin, tmp_path):
    document = WXR.replace("<![CDATA[<!-- wp:paragraph -->\n<p>Welcome to WordPress.",
                           "<![CDATA[Page one<!--nextpage-->Page two\n<!-- wp:paragraph -->\n<p>Welcome to WordPress.", 1)
    assert document != WXR
    assert run(runner, write(tmp_path, "edge.xml", document)).exit_code == 0
    with app.app_context():
        body = db.session.scalar(select(Post.body_html).where(Post.slug == "hello-world"))
    assert "Page onePage two" not in body and "Page one" in body and "Page two" in body


def test_the_export_writes_four_digit_years(app, runner, admin, tmp_path):
    from datetime import datetime

    from blogapp.templating import site_request_context
    from blogapp.wxr.exporter import WxrExporter

    with app.app_context(), site_request_context(app):
        from blogapp.posts import save_post

        save_post(None, title="Ancient", body="x", publish=True, published_at=datetime(1, 1, 1, 12, 0, 0))
        db.session.commit()
        text = "".join(WxrExporter().chunks())
    assert "<wp:post_date_gmt><![CDATA[0001-01-01 12:00:00]]></wp:post_date_gmt>" in text


def test_the_summary_reads_right_for_one_of_a_kind(app, runner, admin, tmp_path):
    first = run(runner, write(tmp_path, "edge.xml", WXR))
    again = run(runner, write(tmp_path, "edge.xml", WXR))
    line = output_lines(again)[-1]
    assert line.startswith("Nothing new: everything in the file is here already"), line
    assert "posts: 8" in line and "pages: 3" in line and "comments and linkbacks: 14" in line, line
    assert first.exit_code == again.exit_code == 0
