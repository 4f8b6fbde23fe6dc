"""Pages (About, Contact) at ``/<slug>/`` and private posts: the admin's side and the readers'.

The app is driven through the test client, CSRF on; rows are built and read in contexts of their
own, so nothing a request sees is left over from the test's session.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from blogapp.extensions import db
from blogapp.models import Page, Post, User, utcnow
from blogapp.pages import save_page, unique_page_slug
from blogapp.posts import save_post
from blogapp.templating import post_path, site_request_context

from conftest import count_queries, csrf_token


# Fail any test during which the app answered 500, even if the test did not look.
pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture
def reader(app):
    """A browser never logged in."""
    return app.test_client()


@contextmanager
def session(app):
    with site_request_context(app):
        yield db.session


def make_page(app, title="About", body="About *us*.", **kw) -> tuple[int, str]:
    """A committed page; returns (id, slug)."""
    with session(app) as s:
        page = save_page(None, title=title, body=body, **kw)
        s.commit()
        return page.id, page.slug


def make_post(app, title="A post", body="Some *text*.", *, published_at=None, **kw) -> tuple[int, str]:
    """A committed post (published a day ago unless told otherwise); returns (id, path)."""
    with session(app) as s:
        kw.setdefault("publish", True)
        post = save_post(None, title=title, body=body, published_at=published_at or utcnow() - timedelta(days=1),
                         author=s.scalar(select(User).limit(1)), **kw)
        s.commit()
        return post.id, post_path(post)


def row(app, model, ident) -> dict | None:
    with session(app) as s:
        obj = s.get(model, ident)
        return None if obj is None else {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def count(app, model) -> int:
    with session(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def text_of(response) -> str:
    return " ".join(soup(response).get_text(" ").split())


def location(response) -> str:
    return urlsplit(response.headers["Location"]).path


def nav_titles(response) -> list[str]:
    return [a.get_text(strip=True) for a in soup(response).select("nav.site-nav a")]


def browser_form(response, selector) -> dict:
    """What a browser would send for the form on the page, unchanged (submit buttons left out)."""
    form = soup(response).select_one(selector)
    assert form is not None, f"no {selector} on the page"
    values = {}
    for el in form.find_all(["input", "textarea"]):
        name = el.get("name")
        if not name or el.get("type") in ("submit", "button"):
            continue
        if el.name == "textarea":
            value = el.string or ""
            # A browser drops the one newline that follows <textarea>.
            values[name] = value[2:] if value.startswith("\r\n") else value[1:] if value.startswith("\n") else value
        elif el.get("type") in ("checkbox", "radio"):
            if el.has_attr("checked"):
                values[name] = el.get("value", "on")
        else:
            values[name] = el.get("value", "")
    return values


def page_form(**overrides) -> dict:
    values = {"title": "About me", "slug": "", "body": "Hello, I am **Maya**.", "menu_order": "0",
              "status": "published", "save": "1"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def new_page(admin_client, **fields):
    form = page_form(**fields)
    form["csrf_token"] = csrf_token(admin_client, "/admin/pages/new")
    return admin_client.post("/admin/pages/new", data=form)


def only_page(app) -> dict:
    with session(app) as s:
        ids = s.scalars(select(Page.id)).all()
    assert len(ids) == 1, ids
    return row(app, Page, ids[0])


# ---------------------------------------------------------------- the admin's pages


@pytest.mark.parametrize("url", ["/admin/pages", "/admin/pages/new", "/admin/pages/{page}/edit"])
def test_page_admin_needs_login(app, client, url):
    page_id, _ = make_page(app)
    response = client.get(url.format(page=page_id))
    assert response.status_code == 302 and location(response) == "/admin/login"


def test_logged_out_delete_changes_nothing(app, client):
    page_id, _ = make_page(app)
    response = client.post(f"/admin/pages/{page_id}/delete", data={"csrf_token": csrf_token(client, "/admin/login")})
    assert response.status_code == 302 and location(response) == "/admin/login"
    assert row(app, Page, page_id) is not None


def test_admin_nav_links_to_pages(admin_client):
    nav = soup(admin_client.get("/admin/pages")).select_one("nav.admin-nav")
    current = nav.select_one('a[aria-current="page"]')
    assert current.get_text(strip=True) == "Pages" and current["href"] == "/admin/pages"


def test_create_a_page(app, admin_client, reader):
    form = browser_form(admin_client.get("/admin/pages/new"), "form.page-editor")
    assert form["status"] == "draft" and form["menu_order"] == "0"
    response = new_page(admin_client, menu_order="3")
    assert response.status_code == 302
    page = only_page(app)
    assert location(response) == f"/admin/pages/{page['id']}/edit"
    assert (page["title"], page["slug"], page["status"], page["menu_order"], page["body_format"]) == (
        "About me", "about-me", "published", 3, "markdown")
    assert "<strong>Maya</strong>" in page["body_html"] and page["published_at"] is not None
    assert "Page published." in text_of(admin_client.get(location(response)))

    shown = reader.get("/about-me/")
    assert shown.status_code == 200
    assert soup(shown).select_one("h1.entry-title").get_text(strip=True) == "About me"
    assert soup(shown).select_one(".entry-content strong").get_text() == "Maya"
    assert soup(shown).select_one('link[rel="canonical"]')["href"] == "http://blog.test/about-me/"
    assert "Preview:" not in text_of(shown)

    listed = soup(admin_client.get("/admin/pages")).select_one("table.pages-table tbody tr")
    cells = [td.get_text(" ", strip=True) for td in listed.select("td")]
    assert cells[1:] == ["/about-me/", "Published", "3"]
    links = {a.get_text(strip=True): a["href"] for a in listed.select("a")}
    assert links["View"] == "/about-me/" and links["Edit"] == f"/admin/pages/{page['id']}/edit"


def test_edit_a_page(app, admin_client, reader):
    page_id, slug = make_page(app, title="Contact", body="Old words.")
    form = browser_form(admin_client.get(f"/admin/pages/{page_id}/edit"), "form.page-editor")
    assert (form["title"], form["slug"], form["body"], form["status"]) == ("Contact", "contact", "Old words.", "published")
    form.update(title="Write to us", slug="write", body="New *words*.", menu_order="7", status="draft")
    response = admin_client.post(f"/admin/pages/{page_id}/edit", data=form)
    assert response.status_code == 302
    page = row(app, Page, page_id)
    assert (page["title"], page["slug"], page["menu_order"], page["status"]) == ("Write to us", "write", 7, "draft")
    assert "Draft saved." in text_of(admin_client.get(location(response)))
    assert reader.get("/contact/").status_code == 404
    # A draft: not for readers, previewed for the admin.
    assert reader.get("/write/").status_code == 404
    preview = admin_client.get("/write/")
    assert preview.status_code == 200 and "Preview: this page is a draft" in text_of(preview)
    assert soup(preview).select_one(".entry-content em").get_text() == "words"


def test_delete_a_page(app, admin_client, reader):
    page_id, slug = make_page(app, title="Doomed")
    kept_id, _ = make_page(app, title="Kept")
    assert reader.get(f"/{slug}/").status_code == 200
    form = browser_form(admin_client.get(f"/admin/pages/{page_id}/edit"), "form.danger-zone")
    response = admin_client.post(f"/admin/pages/{page_id}/delete", data=form)
    assert response.status_code == 302 and location(response) == "/admin/pages"
    assert "Deleted “Doomed”." in text_of(admin_client.get("/admin/pages"))
    assert row(app, Page, page_id) is None and row(app, Page, kept_id) is not None
    assert reader.get(f"/{slug}/").status_code == 404
    assert admin_client.get(f"/admin/pages/{page_id}/edit").status_code == 404


def test_page_forms_refuse_a_missing_or_wrong_csrf_token(app, admin_client):
    page_id, _ = make_page(app, title="Guarded")
    for token in (None, "x" + csrf_token(admin_client, "/admin/pages/new")[1:]):
        extra = {"csrf_token": token} if token else {}
        assert admin_client.post("/admin/pages/new", data=page_form(title="Sneaky", **extra)).status_code == 400
        assert admin_client.post(f"/admin/pages/{page_id}/edit", data=page_form(title="Sneaky", **extra)).status_code == 400
        assert admin_client.post(f"/admin/pages/{page_id}/delete", data=extra).status_code == 400
    assert count(app, Page) == 1 and row(app, Page, page_id)["title"] == "Guarded"


@pytest.mark.parametrize(("fields", "error_field", "message"), [
    ({"title": "  "}, "title", "A page needs a title."),
    ({"menu_order": "first"}, "menu_order", None),
    ({"slug": "feed"}, "slug", "/feed/ is one of the site's own addresses; choose another slug."),
    ({"slug": "2024"}, "slug", "/2024/ is one of the site's own addresses (a year); choose another slug."),
    ({"slug": "Admin"}, "slug", None),
    ({"slug": "xmlrpc"}, "slug", None),
    ({"status": "private"}, "status", None),
])
def test_page_form_errors_keep_what_was_typed(app, admin_client, fields, error_field, message):
    body = "A body\nwith *two* lines & <angle> brackets."
    response = new_page(admin_client, body=body, **fields)
    assert response.status_code == 400
    page = soup(response)
    assert page.select_one(".form-error").get_text(strip=True).startswith("The page was not saved.")
    error = page.select_one(f".field-{error_field} .field-error")
    assert error is not None
    if message:
        assert error.get_text(strip=True) == message
    assert browser_form(response, "form.page-editor")["body"].replace("\r\n", "\n") == body
    assert count(app, Page) == 0


def test_page_preview_saves_nothing(app, admin_client):
    response = new_page(admin_client, title="Previewed", body="Some **bold** and <script>alert(1)</script>",
                        save=None, preview="1")
    assert response.status_code == 200
    preview = soup(response).select_one("section.preview")
    assert preview.select_one("h1.entry-title").get_text() == "Previewed"
    assert preview.select_one(".entry-content strong").get_text() == "bold"
    assert "<script>" not in str(preview)
    assert count(app, Page) == 0


def test_editing_a_missing_page_is_404(admin_client):
    token = csrf_token(admin_client, "/admin/pages/new")
    assert admin_client.get("/admin/pages/999/edit").status_code == 404
    assert admin_client.post("/admin/pages/999/edit", data=page_form(csrf_token=token)).status_code == 404
    assert admin_client.post("/admin/pages/999/delete", data={"csrf_token": token}).status_code == 404
    assert admin_client.get(f"/admin/pages/{2**40}/edit").status_code == 404


def test_an_html_page_is_edited_as_html(app, admin_client, reader):
    page_id, slug = make_page(app, title="Imported", body="<p>Was <b>HTML</b></p>", body_format="html")
    edit = admin_client.get(f"/admin/pages/{page_id}/edit")
    editor = soup(edit).select_one("form.page-editor")
    notice = editor.select_one(".body-format")
    assert notice is not None and "This page is written in HTML (imported)" in notice.get_text()
    assert notice.find_next("textarea")["name"] == "body"  # said above the textarea
    assert editor.select_one("label[for=body]").get_text(strip=True) == "Body (HTML)"
    form = browser_form(edit, "form.page-editor")
    form.update(body="<p>Now <i>edited</i></p>\n\n*still not markdown*")
    assert admin_client.post(f"/admin/pages/{page_id}/edit", data=form).status_code == 302
    page = row(app, Page, page_id)
    assert page["body_format"] == "html"
    assert "*still not markdown*" in page["body_html"] and "<i>edited</i>" in page["body_html"]
    assert "*still not markdown*" in reader.get(f"/{slug}/").get_data(as_text=True)


# ---------------------------------------------------------------- slugs


def test_page_slugs_avoid_the_sites_own_addresses(app, ctx):
    for wanted, expected in [("feed", "feed-2"), ("Admin", "admin-2"), ("page", "page-2"), ("2024", "2024-2"),
                             ("xmlrpc", "xmlrpc-2"), ("posts", "posts-2"), ("webmention", "webmention-2"),
                             ("static", "static-2"), ("category", "category-2"), ("tag", "tag-2"),
                             ("healthz", "healthz-2"), ("wp-admin", "wp-admin-2"), ("about", "about")]:
        assert unique_page_slug(wanted) == expected, wanted
    page = save_page(None, title="Feed", body="")
    assert page.slug == "feed-2"
    # A slug taken by another page gets a number; a page keeps its own.
    assert save_page(None, title="x", body="", slug="feed-2").slug == "feed-2-2"
    assert save_page(page, title="Feed", body="", slug="feed-2").slug == "feed-2"
    db.session.commit()


def test_a_route_added_later_is_reserved_too(app):
    app.add_url_rule("/newsroom/", "newsroom", lambda: "news")
    with session(app):
        assert unique_page_slug("newsroom") == "newsroom-2"
        assert unique_page_slug("newsroom-x") == "newsroom-x"


def test_a_post_slug_does_not_stop_a_page_slug(app, reader):
    make_post(app, title="About")
    _, slug = make_page(app, title="About")
    assert slug == "about"
    assert reader.get("/about/").status_code == 200


# ---------------------------------------------------------------- readers


def test_unknown_and_draft_pages_are_404(app, client):
    make_page(app, title="Hidden", publish=False)
    for path in ("/no-such-page/", "/hidden/"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in text_of(response)  # the themed 404 page: an HTTPException, as before


def endpoint_of(adapter, path: str) -> str:
    try:
        return adapter.match(path, method="GET")[0]
    except HTTPException as exc:  # NotFound, or a redirect
        return type(exc).__name__


def test_the_page_rule_shadows_none_of_the_sites_routes(app, client):
    make_page(app, title="About")
    adapter = app.url_map.bind("blog.test")
    for path, endpoint in [("/", "blog.index"), ("/page/2/", "blog.index"), ("/2024/", "blog.year_archive"),
                           ("/2024/page/2/", "blog.year_archive"), ("/2024/05/", "blog.month_archive"),
                           ("/feed/", "blog.posts_feed"), ("/category/x/", "blog.category"), ("/tag/x/", "blog.tag"),
                           ("/admin/", "admin.dashboard"), ("/xmlrpc", "linkback.xmlrpc_endpoint"),
                           ("/xmlrpc.php", "linkback.xmlrpc_endpoint"), ("/webmention/abc", "linkback.webmention_status"),
                           ("/about/", "blog.page")]:
        assert adapter.match(path, method="GET")[0] == endpoint, path
    # The reserved words never reach the page view, whatever the rules' order; words that only
    # begin like one do.
    for path in ("/page/", "/feed/", "/xmlrpc/", "/static/", "/posts/", "/webmention/", "/admin/", "/tag/",
                 "/category/", "/healthz/", "/wp-admin/", "/0/"):
        assert endpoint_of(adapter, path) != "blog.page", path
    for path in ("/pages/", "/feeds/", "/xmlrpc-2/", "/2024-2/", "/tagged/"):
        assert endpoint_of(adapter, path) == "blog.page", path
    assert client.get("/webmention").status_code == 405  # GET on a POST-only address: not a redirect to a page
    assert client.get("/humans.txt").status_code == 404  # no slash added to an address with a dot
    assert client.get("/old-post.html").status_code == 404
    response = client.get("/about")
    assert response.status_code == 308 and location(response) == "/about/"


@pytest.mark.parametrize("config_overrides", [{"POSTS_PER_PAGE": 1}])
def test_archives_and_paging_still_work_beside_pages(app, client):
    make_page(app, title="About")
    make_page(app, title="Numbers", slug="2023")  # refused as a year: it gets a number
    make_post(app, title="Older post", published_at=datetime(2023, 5, 1, 12))
    make_post(app, title="Newer post", published_at=datetime(2023, 6, 1, 12))
    titles = lambda r: [a.get_text(strip=True) for a in soup(r).select("h2.entry-title a")]  # noqa: E731
    assert titles(client.get("/")) == ["Newer post"]
    second = client.get("/page/2/")
    assert second.status_code == 200 and titles(second) == ["Older post"]
    year = client.get("/2023/")
    assert year.status_code == 200 and titles(year) == ["Newer post"] and "Archive: 2023" in text_of(year)
    assert titles(client.get("/2023/page/2/")) == ["Older post"]
    assert titles(client.get("/2023/05/")) == ["Older post"]
    assert "Newer post" in client.get("/feed/").get_data(as_text=True)
    assert client.get("/2023-2/").status_code == 200


def test_nav_lists_published_pages_in_menu_order_then_title(app, reader):
    make_page(app, title="Zeta", menu_order=2)
    make_page(app, title="Beta", menu_order=1)
    make_page(app, title="alpha", menu_order=1)
    make_page(app, title="Draft page", menu_order=0, publish=False)
    make_page(app, title="Last", menu_order=10)
    home = reader.get("/")
    assert nav_titles(home)[:6] == ["Home", "alpha", "Beta", "Zeta", "Last", "Feed"]  # titles regardless of case
    links = [a["href"] for a in soup(home).select("nav.site-nav a")][1:5]
    assert links == ["/alpha/", "/beta/", "/zeta/", "/last/"]
    here = soup(reader.get("/beta/")).select_one('nav.site-nav a[aria-current="page"]')
    assert here.get_text(strip=True) == "Beta"
    assert "alpha" in nav_titles(reader.get("/no-such-page/"))  # the 404 page has the navigation too


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE_LISTEN": False}])
def test_nav_follows_page_changes_through_the_cache(app, admin_client, reader):
    first_id, _ = make_page(app, title="First", menu_order=1)
    second_id, _ = make_page(app, title="Second", menu_order=2)
    _, post_url = make_post(app, title="Cached post")
    for path in ("/", post_url, "/first/"):
        assert nav_titles(reader.get(path))[1:3] == ["First", "Second"]
    with count_queries(app) as queries:
        cached = reader.get("/")
    assert cached.status_code == 200 and queries[0] == 1  # the content version: the nav is in the cached page

    form = browser_form(admin_client.get(f"/admin/pages/{second_id}/edit"), "form.page-editor")
    form.update(title="Second, now first", menu_order="0")
    assert admin_client.post(f"/admin/pages/{second_id}/edit", data=form).status_code == 302
    for path in ("/", post_url, "/first/"):
        assert nav_titles(reader.get(path))[1:3] == ["Second, now first", "First"], path

    form = browser_form(admin_client.get(f"/admin/pages/{first_id}/edit"), "form.page-editor")
    form.update(status="draft", body="Changed body")
    assert admin_client.post(f"/admin/pages/{first_id}/edit", data=form).status_code == 302
    assert "First" not in nav_titles(reader.get("/"))
    assert reader.get("/first/").status_code == 404

    form = browser_form(admin_client.get(f"/admin/pages/{second_id}/edit"), "form.danger-zone")
    assert admin_client.post(f"/admin/pages/{second_id}/delete", data=form).status_code == 302
    assert nav_titles(reader.get(post_url))[:2] == ["Home", "Feed"]


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])
def test_rendering_a_page_reads_no_page_rows_for_the_nav(app, client):
    for i in range(5):
        make_page(app, title=f"Page {i}", menu_order=i)
    make_post(app, title="A post")
    client.get("/")  # the nav is kept per content version: as on a busy blog
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        home = client.get("/")
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert nav_titles(home)[1:6] == [f"Page {i}" for i in range(5)]
    assert not [s for s in statements if "FROM page" in s], statements


# ---------------------------------------------------------------- private posts


def _new_post(admin_client, **fields):
    form = {"title": "Hello", "slug": "", "body": "Some **bold** text.", "categories": "", "tags": "",
            "status": "draft", "published_at": "", "comments_open": "y", "pings_open": "y", "save": "1", **fields}
    form["csrf_token"] = csrf_token(admin_client, "/admin/posts/new")
    return admin_client.post("/admin/posts/new", data=form)


def test_a_private_post_is_for_admins_only(app, admin_client, reader):
    make_post(app, title="Public one", categories=["Shared"], tags=["common"], published_at=datetime(2024, 3, 2, 12))
    response = _new_post(admin_client, title="Secret diary", status="private", categories="Shared", tags="common",
                         published_at="2024-03-01T10:00")
    assert response.status_code == 302
    assert "Private post saved: only logged-in admins can read it." in text_of(admin_client.get(location(response)))
    with session(app) as s:
        post = s.scalar(select(Post).where(Post.title == "Secret diary"))
        assert post.status == "private" and post.published_at == datetime(2024, 3, 1, 10)
        path = post_path(post)

    assert reader.get(path).status_code == 404
    shown = admin_client.get(path)
    assert shown.status_code == 200 and soup(shown).select_one("h1.entry-title").get_text(strip=True) == "Secret diary"
    for url in ("/", "/2024/", "/2024/03/", "/category/shared/", "/tag/common/", "/feed/", path + "feed/"):
        page = reader.get(url)
        assert "Secret diary" not in page.get_data(as_text=True), url
    assert "Public one" in reader.get("/2024/03/").get_data(as_text=True)
    assert reader.get(path + "feed/").status_code == 404
    sidebar = soup(reader.get("/")).select_one("aside.sidebar")
    assert "Secret diary" not in sidebar.get_text()
    assert "(1)" in sidebar.get_text() and "(2)" not in sidebar.get_text()  # counted nowhere either


def test_the_post_editor_keeps_private_and_lists_it(app, admin_client):
    make_post(app, title="Out")
    make_post(app, title="Unfinished", publish=False)
    post_id, _ = make_post(app, title="Mine", private=True)
    edit = admin_client.get(f"/admin/posts/{post_id}/edit")
    form = browser_form(edit, "form.post-editor")
    assert form["status"] == "private"
    labels = [label.get_text(strip=True) for label in soup(edit).select("fieldset.field-status label")]
    assert labels == ["Draft", "Published", "Private"]
    form.update(title="Still mine")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    assert row(app, Post, post_id)["status"] == "private"

    titles = lambda r: [a.get_text() for a in soup(r).select("a.row-title")]  # noqa: E731
    assert titles(admin_client.get("/admin/posts?status=private")) == ["Still mine"]
    assert "Still mine" not in titles(admin_client.get("/admin/posts?status=published"))
    assert "Still mine" not in titles(admin_client.get("/admin/posts?status=draft"))
    rows = {tr.select_one("a.row-title").get_text(): tr.select("td")[2].get_text(strip=True)
            for tr in soup(admin_client.get("/admin/posts")).select("table.posts-table tbody tr")}
    assert rows == {"Out": "Published", "Unfinished": "Draft", "Still mine": "Private"}
    tabs = [a.get_text(strip=True) for a in soup(admin_client.get("/admin/posts")).select("nav.tabs a")]
    assert "Private" in tabs

    form.update(status="published")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    assert row(app, Post, post_id)["status"] == "published"


def test_a_published_post_made_private_is_404_not_gone(app, admin_client, reader):
    post_id, path = make_post(app, title="Was public")
    assert reader.get(path).status_code == 200
    form = browser_form(admin_client.get(f"/admin/posts/{post_id}/edit"), "form.post-editor")
    form.update(status="private")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    hidden = reader.get(path)
    assert hidden.status_code == 404 and "Was public" not in hidden.get_data(as_text=True)
    assert admin_client.get(path).status_code == 200
    # Made a draft instead, it has gone for readers, as before.
    form.update(status="draft")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    assert reader.get(path).status_code == 410


# ---------------------------------------------------------------- HTML (imported) posts


def test_an_html_post_is_edited_as_html(app, admin_client, reader):
    post_id, path = make_post(app, title="Imported", body="<p>Old <b>HTML</b></p>", body_format="html")
    edit = admin_client.get(f"/admin/posts/{post_id}/edit")
    editor = soup(edit).select_one("form.post-editor")
    notice = editor.select_one(".body-format")
    assert notice is not None and "This post is written in HTML (imported)" in notice.get_text()
    assert notice.find_next("textarea")["name"] == "body"
    assert editor.select_one("label[for=body]").get_text(strip=True) == "Body (HTML)"

    form = browser_form(edit, "form.post-editor")
    form.update(body="<p>New <i>words</i></p>\n\n*not markdown*", preview="1")
    form.pop("save", None)
    preview = soup(admin_client.post(f"/admin/posts/{post_id}/edit", data=form)).select_one("section.preview .entry-content")
    assert preview.select_one("i").get_text() == "words"
    assert "*not markdown*" in preview.get_text() and preview.select_one("em") is None
    assert row(app, Post, post_id)["body"] == "<p>Old <b>HTML</b></p>"

    form.pop("preview")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    saved = row(app, Post, post_id)
    assert saved["body_format"] == "html"
    assert "*not markdown*" in saved["body_html"] and "<em>" not in saved["body_html"]
    assert "*not markdown*" in reader.get(path).get_data(as_text=True)


def test_a_markdown_post_says_nothing_of_html(app, admin_client):
    post_id, _ = make_post(app, title="Plain")
    editor = soup(admin_client.get(f"/admin/posts/{post_id}/edit")).select_one("form.post-editor")
    assert editor.select_one(".body-format") is None
    assert editor.select_one("label[for=body]").get_text(strip=True) == "Body (Markdown)"
