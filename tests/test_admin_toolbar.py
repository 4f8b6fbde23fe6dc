"""The admin toolbar on readers' pages (WordPress's): a logged-in admin sees Dashboard, Edit post
(or page), the number of comments awaiting moderation, New post and Log out; readers never do,
and the pages they are sent from the cache never hold it."""
from __future__ import annotations

from bs4 import BeautifulSoup

from blogapp.models import CommentStatus
from blogapp.pages import save_page
from blogapp.extensions import db
from blogapp.templating import site_request_context
from helpers import add_comment, make_post


def toolbar(response):
    return BeautifulSoup(response.get_data(as_text=True), "lxml").select_one("nav.admin-toolbar")


def test_a_logged_in_admin_sees_the_toolbar_with_this_posts_edit_link(app, admin_client, ctx):
    post_id, path = make_post(title="Shown")
    for n in range(3):
        add_comment(post_id, f"held {n}", status=CommentStatus.PENDING)
    bar = toolbar(admin_client.get(path))
    assert bar is not None
    links = {a.get_text(" ", strip=True): a["href"] for a in bar.select("a")}
    assert links["Edit post"] == f"/admin/posts/{post_id}/edit"
    assert links["Dashboard"] == "/admin/" and links["New post"] == "/admin/posts/new"
    assert links["Comments 3"] == "/admin/comments"
    logout = bar.select_one("form.toolbar-logout")
    assert logout["action"] == "/admin/logout" and logout.select_one("input[name=csrf_token]")["value"]
    # The home page has it too, without an Edit link; a page has its own.
    home = toolbar(admin_client.get("/"))
    assert home is not None and home.select_one("a.toolbar-edit") is None
    page = save_page(None, title="About", body="About us.")
    db.session.commit()
    assert toolbar(admin_client.get("/about/")).select_one("a.toolbar-edit")["href"] == f"/admin/pages/{page.id}/edit"
    # Its logout works as the dashboard's does.
    fields = {i["name"]: i.get("value", "") for i in logout.select("input[name]")}
    assert admin_client.post(logout["action"], data=fields).status_code == 302
    assert toolbar(admin_client.get(path)) is None


def test_readers_never_see_it_even_from_the_cache(app, admin_client):
    # No ``ctx``: Flask would reuse its app context for both clients' requests, and with it
    # Flask-Login's user; each request here has its own, as in a server.
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Shown")
    reader = app.test_client()
    assert toolbar(reader.get(path)) is None  # cached now, for readers
    assert toolbar(admin_client.get(path)) is not None  # the admin's own page
    again = reader.get(path)
    assert again.status_code == 200 and toolbar(again) is None


def test_the_comment_form_knows_a_logged_in_admin(app, admin_client):
    from sqlalchemy import select

    from blogapp.models import Comment, User

    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Shown")
        name = db.session.scalar(select(User)).name
    form = BeautifulSoup(admin_client.get(path).get_data(as_text=True), "lxml").select_one("form.comment-form")
    assert form.select_one("[name=author_name]") is None and form.select_one("[name=author_email]") is None
    assert f"Logged in as {name}" in form.select_one(".logged-in-as").get_text(" ", strip=True)
    assert form.select_one("#save-commenter") is None  # nothing to remember
    fields = {i["name"]: i.get("value", "") for i in form.select("input[name]") if i.get("type") != "checkbox"}
    answer = admin_client.post(form["action"].split("#")[0], data={**fields, "content": "Thanks, all."},
                               headers={"Origin": "http://blog.test"})
    assert answer.status_code == 303
    with app.app_context():
        mine = db.session.scalar(select(Comment))
        assert (mine.author_name, mine.author_email, mine.author_url, mine.status) == (
            name, "", app.config["SITE_URL"] + "/", "approved")
        assert mine.user_id is not None
    # A reader still gets the whole form.
    reader = BeautifulSoup(app.test_client().get(path).get_data(as_text=True), "lxml")
    assert reader.select_one("form.comment-form [name=author_email]") is not None
