"""The post page's thread, built in Python (blogapp.threads.render_thread) rather than by a loop in
templates/blog/post.html: the same HTML as that loop printed, whatever the comments hold, and only
what each reader may see."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from blogapp.extensions import db
from blogapp.models import Comment, CommentStatus, save_site_settings
from blogapp.threads import ThreadComment, ThreadNode, build_thread, render_thread
from blogapp.templating import site_request_context, site_zone
from helpers import add_comment, make_post

# The loop templates/blog/post.html had until render_thread replaced it, verbatim: what the
# thread must still print, byte for byte.
OLD_LOOP = """{% for step, node in thread_steps %}
{% if step == "close" %}{% if node.children %}</ol>
  {% endif %}</li>
{% else %}{% set c = node.comment %}
{% if c.kind == "comment" %}
<li id="comment-{{ c.id }}" class="comment depth-{{ node.depth }} p-comment h-cite{% if c.status == 'pending' %} comment-pending{% endif %}{% if c.user_id %} by-admin{% endif %}">
  <article class="comment-body">
    <footer class="comment-meta">
      <span class="comment-author p-author h-card">
        {%- if c.author_url %}<a class="u-url p-name" href="{{ c.author_url }}" rel="external nofollow ugc">{{ c.author_name }}</a>
        {%- else %}<span class="p-name">{{ c.author_name }}</span>{% endif -%}
      </span>
      {% if c.user_id %}<span class="badge">Author</span>{% endif %}
      <a class="u-url comment-permalink" href="{{ post_link }}#comment-{{ c.id }}"><time class="dt-published" datetime="{{ c.created_at|isotime }}">{{ c.created_at|localtime("%B %-d, %Y at %H:%M") }}</time></a>
    </footer>
    {% if c.status == "pending" %}<p class="comment-awaiting-moderation">Your comment is awaiting moderation.</p>{% endif %}
    <div class="comment-content e-content">{{ c.content_html|safe }}</div>
    {% if comments_open and c.status == "approved" and node.depth < max_depth %}
    <p class="reply"><a class="comment-reply-link" href="{{ post_url }}?replytocom={{ c.id }}#respond" data-reply-to="{{ c.id }}" data-author="{{ c.author_name }}" aria-label="Reply to {{ c.author_name }}">Reply</a></p>
    {% endif %}
  </article>
  {% if node.children %}
  <ol class="children">{% endif %}
{% elif c.kind == "webmention" %}
<li id="comment-{{ c.id }}" class="linkback webmention webmention-{{ c.response_type or 'mention' }} depth-{{ node.depth }} p-comment h-cite">
  <article class="comment-body">
    <footer class="comment-meta">
      <span class="comment-author p-author h-card">
        {%- if c.author_photo %}<img class="u-photo avatar" src="{{ c.author_photo }}" alt="" width="32" height="32" loading="lazy" referrerpolicy="no-referrer"> {% endif -%}
        <a class="u-url p-name" href="{{ c.author_url or c.source_url }}" rel="external nofollow ugc">{{ c.author_name or c.source_url }}</a>
      </span>
      <span class="webmention-label">{{ "replied" if c.response_type == "reply" else "mentioned this" }}</span>
      <a class="u-url linkback-date" href="{{ c.source_url }}" rel="external nofollow ugc"><time class="dt-published" datetime="{{ c.created_at|isotime }}">{{ c.created_at|localtime("%B %-d, %Y at %H:%M") }}</time></a>
    </footer>
    {% if c.content %}<div class="comment-content p-content">{{ c.content }}</div>{% endif %}
  </article>
  {% if node.children %}
  <ol class="children">{% endif %}
{% else %}
<li id="comment-{{ c.id }}" class="linkback {{ c.kind }} depth-{{ node.depth }} p-comment h-cite">
  <div class="comment-body">
    <p class="linkback-line"><span class="linkback-label">{{ c.kind|capitalize }}:</span> <span class="p-author h-card"><a href="{{ c.source_url or c.author_url }}" class="u-url p-name" rel="external nofollow ugc">{{ c.author_name or c.source_url }}</a></span>
      <a class="u-url linkback-date" href="{{ c.source_url or c.author_url }}" rel="external nofollow ugc"><time class="dt-published" datetime="{{ c.created_at|isotime }}">{{ c.created_at|localtime }}</time></a></p>
    {% if c.content %}<p class="linkback-excerpt p-content">{{ c.content }}</p>{% endif %}
  </div>
  {% if node.children %}
  <ol class="children">{% endif %}
{% endif %}
{% endif %}
{% endfor %}
"""

POST_URL = "/2026/03/01/a-post/"
POST_LINK = "http://blog.test/2026/03/01/a-post/"
HOSTILE = """<script>alert('x')</script> & "quotes" """


def old_steps(roots: list[ThreadNode]) -> list[tuple[str, ThreadNode]]:
    """The flat ("open", node) ... ("close", node) sequence the old loop walked."""
    steps = []

    def visit(node):
        steps.append(("open", node))
        for child in node.children:
            visit(child)
        steps.append(("close", node))

    for node in roots:
        visit(node)
    return steps


def comment(id, kind="comment", *, minutes=0, **values) -> ThreadComment:
    fields = {"parent_id": None, "status": "approved", "author_name": f"Reader {id}", "author_url": "",
              "author_photo": None, "source_url": None, "content": "", "content_html": f"<p>Comment {id}</p>",
              "created_at": datetime(2026, 3, 28, 23, 30) + timedelta(minutes=minutes), "user_id": None,
              "response_type": None}
    fields.update(values)
    return ThreadComment(id=id, kind=kind, **fields)


def every_kind() -> list[ThreadComment]:
    """Each branch of the thread's markup, with values that need escaping wherever a value is printed."""
    rows = [
        comment(1, author_name=HOSTILE, author_url="https://a.example/?x=1&y='2'\"", content_html="<p>safe &amp; sound</p>"),
        comment(2, parent_id=1, minutes=1, user_id=7, author_name="The Author", author_url="https://blog.test/"),
        comment(3, parent_id=2, minutes=2, status="pending", author_name="Held <i>one</i>"),
    ]
    parent = 3
    for i in range(4, 11):  # a chain deeper than any depth limit below
        rows.append(comment(i, parent_id=parent, minutes=i))
        parent = i
    rows += [
        comment(11, "webmention", minutes=20, response_type="reply", author_name=HOSTILE, author_url="",
                source_url="https://src.example/a?b=1&c=<2>", author_photo='https://img.example/p.png?a=1&b="2"',
                content="A reply <b>with</b> & 'markup'"),
        comment(12, "webmention", minutes=21, response_type=None, author_name="", source_url="https://src.example/m"),
        comment(13, "webmention", minutes=22, response_type="mention", author_name="Mentioner",
                author_url="https://mentioner.example/", source_url="https://src.example/n", content=""),
        comment(14, "pingback", minutes=23, author_name="", source_url="https://ping.example/?q=<x>&r=1",
                content="[…] excerpt & more […]"),
        comment(15, "trackback", minutes=24, author_name=HOSTILE, source_url=None, author_url="https://tb.example/",
                content=""),
        comment(16, parent_id=11, minutes=25, author_name="Answers a webmention"),
        comment(17, parent_id=14, minutes=26, author_name="Answers a pingback"),
        comment(18, parent_id=99, minutes=27, author_name="Parent not shown"),
        comment(19, minutes=28, created_at=datetime(2026, 10, 4, 13, 59, 59), author_name="Across a DST change"),
    ]
    return rows


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham", "America/New_York"])
@pytest.mark.parametrize("max_depth", [1, 3, 5, 10])
@pytest.mark.parametrize("comments_open", [True, False])
def test_thread_html_is_what_the_template_loop_printed(app, ctx, zone, max_depth, comments_open):
    app.config["TIMEZONE"] = zone
    roots = build_thread(every_kind(), max_depth)
    old = app.jinja_env.from_string(OLD_LOOP).render(
        thread_steps=old_steps(roots), post_url=POST_URL, post_link=POST_LINK, comments_open=comments_open,
        max_depth=max_depth)
    new = render_thread(roots, zone=site_zone(), post_url=POST_URL, post_link=POST_LINK,
                        comments_open=comments_open, max_depth=max_depth)
    assert str(new) == old
    assert "<script>" not in new and "&lt;script&gt;" in new


def test_thread_html_from_orm_comments_too(app, ctx):
    """build_thread and render_thread take Comment objects as well as rows."""
    post_id, _ = make_post()
    first = add_comment(post_id, "First & *best*", name="Ann <Reader>")
    add_comment(post_id, "A reply", parent_id=first, minutes=1)
    comments = db.session.query(Comment).order_by(Comment.id).all()
    roots = build_thread(comments, 5)
    old = app.jinja_env.from_string(OLD_LOOP).render(
        thread_steps=old_steps(roots), post_url=POST_URL, post_link=POST_LINK, comments_open=True, max_depth=5)
    assert str(render_thread(roots, zone=site_zone(), post_url=POST_URL, post_link=POST_LINK, comments_open=True,
                             max_depth=5)) == old


# ------------------------------------------------------------------ the page, with the page cache off
# Each request in its own app context, as in production: data is set up in separate contexts
# (a test's own app context would be shared by its requests, and with it ``g``'s settings).

no_page_cache = pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])


def page(client, path):
    response = client.get(path, follow_redirects=True)  # (the permalink's date is in the site's zone)
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "lxml")


@contextmanager
def setup(app):
    with app.app_context(), site_request_context(app):
        yield
        db.session.commit()


@no_page_cache
def test_a_held_comment_is_shown_to_its_author_only(app, client, config_overrides):
    with setup(app):
        post_id, path = make_post()
        add_comment(post_id, "Approved words")
        held = add_comment(post_id, "Held words", status=CommentStatus.PENDING, minutes=1)
    other = app.test_client()
    assert "Held words" not in page(other, path).get_text()
    with client.session_transaction() as session:
        session["held_comments"] = [held]
    mine = page(client, path)
    li = mine.select_one(f"#comment-{held}")
    assert "comment-pending" in li["class"]
    assert li.select_one(".comment-awaiting-moderation").get_text() == "Your comment is awaiting moderation."
    # After the author's view, another reader still does not see it; nor does the author see
    # someone else's held comment.
    with setup(app):
        theirs = add_comment(post_id, "Someone else's held words", status=CommentStatus.PENDING, minutes=2)
    again = page(client, path)
    assert again.select_one(f"#comment-{held}") and not again.select_one(f"#comment-{theirs}")
    text = page(other, path).get_text()
    assert "Held words" not in text and "Someone else's" not in text


@no_page_cache
def test_an_edited_comment_shows_its_new_text_and_name(app, client, config_overrides):
    with setup(app):
        post_id, path = make_post()
        cid = add_comment(post_id, "Before the edit", name="Old Name")
    assert "Before the edit" in page(client, path).select_one(f"#comment-{cid}").get_text()
    with setup(app):
        edited = db.session.get(Comment, cid)
        edited.content_html = "<p>After the edit</p>"
        edited.author_name = "New <Name>"
    li = page(client, path).select_one(f"#comment-{cid}")
    assert "After the edit" in li.get_text() and "Before the edit" not in li.get_text()
    assert li.select_one(".p-name").get_text() == "New <Name>"
    with setup(app):  # moderated away: gone from the page
        db.session.get(Comment, cid).status = CommentStatus.SPAM.value
    assert page(client, path).select_one(f"#comment-{cid}") is None


@no_page_cache
def test_the_thread_depth_setting_applies_at_once(app, client, config_overrides):
    with setup(app):
        post_id, path = make_post()
        parent = None
        ids = []
        for i in range(4):
            parent = add_comment(post_id, f"level {i + 1}", parent_id=parent, minutes=i)
            ids.append(parent)

    def depths():
        soup = page(client, path)
        return [soup.select_one(f"#comment-{cid}")["class"][1] for cid in ids]

    assert depths() == ["depth-1", "depth-2", "depth-3", "depth-4"]
    with setup(app):
        save_site_settings({"COMMENT_THREAD_DEPTH": 2})
    assert depths() == ["depth-1", "depth-2", "depth-2", "depth-2"]


@no_page_cache
def test_comment_dates_follow_the_site_zone(app, client, config_overrides):
    with setup(app):
        post_id, path = make_post(days_ago=30)
        cid = add_comment(post_id, "Dated")
        db.session.get(Comment, cid).created_at = datetime(2026, 3, 28, 23, 30)

    def shown():
        time = page(client, path).select_one(f"#comment-{cid} time")
        return time.get_text(), time["datetime"]

    assert shown() == ("March 28, 2026 at 23:30", "2026-03-28T23:30:00+00:00")
    app.config["TIMEZONE"] = "Pacific/Chatham"  # the same comments: the thread is built again
    assert shown() == ("March 29, 2026 at 13:15", "2026-03-29T13:15:00+13:45")


@no_page_cache
def test_no_reply_links_once_comments_close(app, client, config_overrides):
    with setup(app):
        post_id, path = make_post(days_ago=2)
        cid = add_comment(post_id, "Words")
    assert page(client, path).select_one(f"#comment-{cid} .comment-reply-link")["href"] == f"{path}?replytocom={cid}#respond"
    with setup(app):
        save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 1})
    closed = page(client, path)
    assert closed.select_one(f"#comment-{cid}") and not closed.select(".comment-reply-link")
    assert closed.select_one(".no-comments").get_text() == "Comments are closed."
