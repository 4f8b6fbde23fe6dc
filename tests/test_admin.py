"""The admin area: logging in, writing posts, moderating comments and linkbacks, site settings.

Every test drives the real app through the test client (CSRF on), then checks what is in the
database and what the HTML says; nothing is mocked.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from blogapp.extensions import db
from blogapp.models import Category, Comment, Post, SiteSetting, Tag, User, utcnow
from blogapp.posts import save_post
from blogapp.templating import post_path, site_request_context
from blogapp.text import render_comment

from conftest import count_queries, csrf_token

PASSWORD = "correct horse"


# ---------------------------------------------------------------- helpers


# Fail any test during which the app answered 500, even if the test did not look.
pytestmark = pytest.mark.usefixtures("no_server_errors")


class Data:
    """Builds and reads rows in contexts of their own, so nothing is cached between requests."""

    def __init__(self, app):
        self.app = app

    @contextmanager
    def session(self):
        with site_request_context(self.app):
            yield db.session

    def post(self, title="A post", body="Some *text*.", *, days_ago=1, publish=True, **kw) -> tuple[int, str]:
        """A committed post published ``days_ago`` (negative: scheduled); returns (id, path)."""
        with self.session() as s:
            author = s.scalar(select(User).limit(1))
            post = save_post(
                None, title=title, body=body, publish=publish, author=author,
                published_at=(utcnow() - timedelta(days=days_ago)) if publish else None, **kw,
            )
            s.commit()
            return post.id, post_path(post)

    def path(self, post_id: int) -> str:
        with self.session() as s:
            return post_path(s.get(Post, post_id))

    def comment(self, post_id, text="Hello there", *, status="approved", kind="comment", parent_id=None,
                name="Visitor", email="visitor@example.org", source_url=None, minutes=0) -> int:
        with self.session() as s:
            comment = Comment(
                post_id=post_id, parent_id=parent_id, kind=kind, status=status, author_name=name,
                author_email=email if kind == "comment" else "", content=text,
                content_html=render_comment(text) if kind == "comment" else "",
                source_url=source_url, source_key=source_url, author_url=source_url or "",
                created_at=utcnow() - timedelta(hours=1) + timedelta(minutes=minutes),
            )
            s.add(comment)
            s.commit()
            return comment.id

    def linkback(self, post_id, source_url="https://other.example/a-post/", *, kind="pingback", status="pending",
                 text="…a fine post, see it here…", name="Other Blog") -> int:
        return self.comment(post_id, text, status=status, kind=kind, source_url=source_url, name=name)

    @staticmethod
    def _row(obj) -> dict | None:
        if obj is None:
            return None
        return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}

    def post_row(self, post_id) -> dict | None:
        with self.session() as s:
            return self._row(s.get(Post, post_id))

    def comment_row(self, comment_id) -> dict | None:
        with self.session() as s:
            return self._row(s.get(Comment, comment_id))

    def status(self, comment_id) -> str | None:
        row = self.comment_row(comment_id)
        return row and row["status"]

    def count(self, model, *where) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where))

    def post_terms(self, post_id) -> tuple[list[str], list[str]]:
        with self.session() as s:
            post = s.get(Post, post_id)
            return [c.name for c in post.categories], [t.name for t in post.tags]

    def site_settings(self) -> dict:
        with self.session() as s:
            return {row.key: json.loads(row.value) for row in s.scalars(select(SiteSetting))}

    def update_post(self, post_id, **values) -> None:
        with self.session() as s:
            post = s.get(Post, post_id)
            for key, value in values.items():
                setattr(post, key, value)
            s.commit()


@pytest.fixture
def data(app):
    return Data(app)


@pytest.fixture
def reader(app):
    """A second browser, never logged in."""
    return app.test_client()


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def text_of(response) -> str:
    return " ".join(soup(response).get_text(" ").split())


def location(response) -> str:
    """The redirect target as path?query, asserting it stays on this site."""
    parts = urlsplit(response.headers["Location"])
    assert parts.netloc in ("", "blog.test", "localhost"), response.headers["Location"]
    return parts.path + (f"?{parts.query}" if parts.query else "")


def browser_form(response, selector="form") -> dict:
    """What a browser would send for the form on the page, unchanged (submit buttons left out)."""
    form = soup(response).select_one(selector)
    assert form is not None, f"no {selector} on the page"
    values: dict[str, list[str]] = {}
    for el in form.find_all(["input", "textarea", "select"]):
        name = el.get("name")
        if not name or el.has_attr("disabled"):
            continue
        if el.name == "textarea":
            value = el.string or ""
            # A browser drops the one newline that follows <textarea>.
            value = value[2:] if value.startswith("\r\n") else value[1:] if value.startswith("\n") else value
        elif el.name == "select":
            chosen = el.find("option", selected=True) or el.find("option")
            value = chosen.get("value", chosen.get_text()) if chosen else ""
        elif el.get("type") in ("checkbox", "radio"):
            if not el.has_attr("checked"):
                continue
            value = el.get("value", "on")
        elif el.get("type") in ("submit", "button", "image", "reset"):
            continue
        else:
            value = el.get("value", "")
        values.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in values.items()}


def nav_pending(response) -> int:
    badge = soup(response).select_one("nav.admin-nav .pending-count")
    assert badge is not None, "no pending count in the admin nav"
    return int(badge.get_text(strip=True))


def comment_ids_on_page(response) -> list[int]:
    return [int(tr["id"][1:]) for tr in soup(response).select("table.comments-table tbody tr[id]")]


def post_form(**overrides) -> dict:
    values = {
        "title": "Hello world", "slug": "", "body": "Some **bold** text.", "categories": "", "tags": "",
        "status": "draft", "published_at": "", "comments_open": "y", "pings_open": "y", "save": "1",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def visitor_comment(post_id, **overrides) -> dict:
    values = {"author_name": "Vera Visitor", "author_email": "vera@example.org", "author_url": "",
              "content": "What a nice post.", "parent_id": "", "homepage": ""}
    values.update(overrides)
    return values


@pytest.fixture
def token(admin_client):
    """A CSRF token of the logged-in admin's session."""
    return csrf_token(admin_client, "/admin/")


# ---------------------------------------------------------------- logging in and out


@pytest.fixture
def some_rows(auth, data):
    """An admin account, a post and a pending comment, for the URLs that need ids."""
    auth.create()
    post_id, _ = data.post("Existing post")
    comment_id = data.comment(post_id, "Pending words", status="pending")
    return {"post": post_id, "comment": comment_id}


ADMIN_GET_URLS = [
    "/admin/",
    "/admin/posts",
    "/admin/posts?status=draft",
    "/admin/posts/new",
    "/admin/posts/{post}/edit",
    "/admin/posts/{post}/linkbacks",
    "/admin/comments",
    "/admin/comments?status=spam&kind=linkbacks",
    "/admin/comments/{comment}/edit",
    "/admin/comments/{comment}/reply",
    "/admin/settings",
]


@pytest.mark.parametrize("url", ADMIN_GET_URLS)
def test_logged_out_get_redirects_to_login(client, some_rows, url):
    url = url.format(**some_rows)
    response = client.get(url)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/admin/login"
    assert parse_qs(target.query)["next"] == [url]
    page = client.get(location(response))
    assert page.status_code == 200
    assert "Please log in to continue." in text_of(page)
    # The login page is the only admin thing a stranger sees.
    assert soup(page).select_one("nav.admin-nav") is None
    assert "Pending words" not in page.get_data(as_text=True)


ADMIN_POST_URLS = [
    ("/admin/posts/new", post_form(title="Sneaky")),
    ("/admin/posts/{post}/edit", post_form(title="Sneaky")),
    ("/admin/posts/{post}/delete", {}),
    ("/admin/posts/bulk", {"action": "delete", "ids": "{post}"}),
    ("/admin/comments/{comment}/approve", {}),
    ("/admin/comments/{comment}/delete", {}),
    ("/admin/comments/bulk", {"action": "approve", "ids": "{comment}"}),
    ("/admin/comments/{comment}/edit", {"author_name": "X", "content": "Sneaky", "status": "approved"}),
    ("/admin/comments/{comment}/reply", {"content": "Sneaky"}),
    ("/admin/settings", {"SITE_TITLE": "Sneaky", "POSTS_PER_PAGE": "3", "COMMENT_MODERATION": "approve",
                         "COMMENT_THREAD_DEPTH": "2", "CLOSE_COMMENTS_AFTER_DAYS": "0"}),
    ("/admin/logout", {}),
]


def _unchanged(data, rows) -> None:
    post = data.post_row(rows["post"])
    assert post is not None and post["title"] == "Existing post"
    comment = data.comment_row(rows["comment"])
    assert comment is not None and comment["status"] == "pending" and comment["content"] == "Pending words"
    assert data.count(Post) == 1 and data.count(Comment) == 1
    assert data.site_settings() == {}


@pytest.mark.parametrize(("url", "form"), ADMIN_POST_URLS)
def test_logged_out_post_redirects_to_login_and_changes_nothing(client, data, some_rows, url, form):
    url = url.format(**some_rows)
    form = {k: v.format(**some_rows) for k, v in form.items()}
    form["csrf_token"] = csrf_token(client, "/admin/login")
    response = client.post(url, data=form)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"
    _unchanged(data, some_rows)


@pytest.mark.parametrize(("url", "form"), ADMIN_POST_URLS)
def test_post_without_csrf_token_is_refused(admin_client, data, some_rows_for_admin, url, form):
    rows = some_rows_for_admin
    url = url.format(**rows)
    form = {k: v.format(**rows) for k, v in form.items()}
    response = admin_client.post(url, data=form)
    assert response.status_code == 400
    assert "The form had expired or was sent from elsewhere" in text_of(response)
    _unchanged(data, rows)
    # Still logged in (the refused logout did nothing).
    assert admin_client.get("/admin/").status_code == 200


@pytest.mark.parametrize(("url", "form"), ADMIN_POST_URLS)
def test_post_with_a_wrong_csrf_token_is_refused(admin_client, data, some_rows_for_admin, url, form):
    rows = some_rows_for_admin
    url = url.format(**rows)
    form = {k: v.format(**rows) for k, v in form.items()}
    form["csrf_token"] = "x" + csrf_token(admin_client, "/admin/")[1:]
    assert admin_client.post(url, data=form).status_code == 400
    _unchanged(data, rows)


@pytest.fixture
def some_rows_for_admin(admin_client, data):
    post_id, _ = data.post("Existing post")
    comment_id = data.comment(post_id, "Pending words", status="pending")
    return {"post": post_id, "comment": comment_id}


def test_login_page(client):
    response = client.get("/admin/login")
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one('input[name="username"]') is not None
    assert page.select_one('input[name="password"][type="password"]') is not None
    assert page.select_one('input[name="csrf_token"]') is not None


@pytest.mark.parametrize(("username", "password"), [("admin", "wrong horse"), ("nobody", PASSWORD), ("admin", PASSWORD.upper())])
def test_login_with_wrong_credentials_shows_an_error(auth, client, username, password):
    auth.create()
    response = auth.login(username, password)
    assert response.status_code == 401
    page = soup(response)
    assert page.select_one(".field-error").get_text(strip=True) == "Wrong username or password."
    # What was typed as a name stays; the password is never echoed back.
    assert page.select_one('input[name="username"]')["value"] == username
    assert password not in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_login_with_empty_fields_is_a_bad_request(auth, client):
    auth.create()
    response = client.post("/admin/login", data={"username": "", "password": "", "csrf_token": csrf_token(client, "/admin/login")})
    assert response.status_code == 400
    assert len(soup(response).select(".field-error")) == 2
    assert client.get("/admin/").status_code == 302


def test_login_with_the_right_password(auth, client):
    auth.create()
    response = auth.login()
    assert response.status_code == 302
    assert location(response) == "/admin/"
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    assert soup(dashboard).select_one(".admin-bar .who").get_text(strip=True) == "Admin"
    # The login page now sends a logged-in admin on to the dashboard.
    assert location(client.get("/admin/login")) == "/admin/"


def test_login_without_csrf_token_is_refused(auth, client):
    auth.create()
    response = client.post("/admin/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_login_follows_a_local_next(auth, client):
    auth.create()
    redirect = client.get("/admin/settings")
    login_url = location(redirect)
    response = client.post(login_url, data={"username": "admin", "password": PASSWORD,
                                            "csrf_token": csrf_token(client, login_url)})
    assert response.status_code == 302
    assert location(response) == "/admin/settings"


@pytest.mark.parametrize(
    "next_url",
    [
        "http://evil.example/",
        "https://evil.example/admin/",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "/\t/evil.example/",
        " //evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_does_not_follow_next_to_another_site(auth, client, next_url):
    auth.create()
    response = client.post(
        "/admin/login", query_string={"next": next_url},
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_token(client, "/admin/login")},
    )
    assert response.status_code == 302
    # Where a browser would go: it drops tabs and newlines and reads "\\" as "/" in http URLs.
    raw = response.headers["Location"]
    cleaned = re.sub(r"[\t\r\n]", "", raw).strip().replace("\\", "/")
    target = urlsplit(urljoin("http://blog.test/admin/login", cleaned))
    assert (target.scheme, target.netloc) == ("http", "blog.test"), raw
    assert target.path == "/admin/", raw


def test_logout_needs_post_and_csrf(admin_client, reader):
    assert admin_client.get("/admin/logout").status_code == 405
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.post("/admin/logout").status_code == 400
    assert admin_client.get("/admin/").status_code == 200

    dashboard = admin_client.get("/admin/")
    form = browser_form(dashboard, "form.logout")
    response = admin_client.post("/admin/logout", data=form)
    assert response.status_code == 302
    assert location(response) == "/"
    assert "You are logged out." in text_of(admin_client.get("/"))
    assert admin_client.get("/admin/").status_code == 302


def test_passwords_are_stored_hashed(runner, auth, client, data):
    # Accounts are made on the command line; the form then checks against what was stored.
    for name in ("admin", "other"):
        result = runner.invoke(args=["create-admin", name, "--password", "s3cret words"])
        assert result.exit_code == 0, result.output
    with data.session() as s:
        stored = dict(s.execute(select(User.username, User.password_hash)).all())
    for value in stored.values():
        assert "s3cret" not in value
        assert re.match(r"^(scrypt|pbkdf2):", value), value
    # The same password twice gives two different hashes: they are salted.
    assert stored["admin"] != stored["other"]
    assert auth.login("admin", "s3cret word").status_code == 401
    assert auth.login("admin", "s3cret words").status_code == 302


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}])
def test_login_is_rate_limited(auth, client, config_overrides):
    auth.create()
    for _ in range(3):
        assert auth.login(password="wrong").status_code == 401
    response = auth.login(password="wrong")
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Traceback" not in html
    page = soup(response)
    assert page.select_one("form input[name=password]") is not None
    assert page.select_one(".field-error").get_text(strip=True) == "Too many attempts. Please wait a minute and try again."
    # Even the right password waits now, and the page still offers the form.
    right = auth.login()
    assert right.status_code == 429
    assert client.get("/admin/").status_code == 302
    # Looking at the form is not limited.
    assert client.get("/admin/login").status_code == 200


# ---------------------------------------------------------------- writing posts


def _new_post(admin_client, **fields):
    form = post_form(**fields)
    form["csrf_token"] = csrf_token(admin_client, "/admin/posts/new")
    return admin_client.post("/admin/posts/new", data=form)


def _only_post(data) -> dict:
    with data.session() as s:
        ids = s.scalars(select(Post.id)).all()
    assert len(ids) == 1, ids
    return data.post_row(ids[0])


def test_new_post_form(admin_client):
    response = admin_client.get("/admin/posts/new")
    assert response.status_code == 200
    form = browser_form(response, "form.post-editor")
    assert form["status"] == "draft"
    # Both discussion switches start open, each its own field.
    assert form["comments_open"] == "y" and form["pings_open"] == "y"


def test_create_draft(admin_client, data, reader):
    response = _new_post(admin_client, title="My draft", body="Not *yet*.", categories="Self Care, Self care", tags="a, b")
    assert response.status_code == 302
    post = _only_post(data)
    assert location(response) == f"/admin/posts/{post['id']}/edit"
    assert (post["title"], post["status"], post["published_at"], post["slug"]) == ("My draft", "draft", None, "my-draft")
    assert post["body"] == "Not *yet*." and "<em>yet</em>" in post["body_html"]
    assert data.post_terms(post["id"]) == (["Self Care"], ["a", "b"])
    assert "Draft saved." in text_of(admin_client.get(location(response)))

    path = data.path(post["id"])
    assert reader.get(path).status_code == 404
    assert "My draft" not in reader.get("/").get_data(as_text=True)
    preview = admin_client.get(path)
    assert preview.status_code == 200
    assert "Preview: this post is a draft and readers cannot see it yet." in text_of(preview)


def test_create_published_post(admin_client, data, reader):
    before = utcnow()
    response = _new_post(admin_client, title="Out now", status="published")
    assert response.status_code == 302
    post = _only_post(data)
    assert post["status"] == "published"
    assert before - timedelta(seconds=1) <= post["published_at"] <= utcnow()
    assert "Post published." in text_of(admin_client.get(location(response)))
    # Saved again, published still: WordPress's "Post updated."; as a draft, "Draft saved."
    edit = location(response)
    form = post_form(title="Out now", status="published")
    form["csrf_token"] = csrf_token(admin_client, edit)
    again = text_of(admin_client.get(location(admin_client.post(edit, data=form))))
    assert "Post updated." in again and "Post published." not in again
    form["status"] = "draft"
    assert "Draft saved." in text_of(admin_client.get(location(admin_client.post(edit, data=form))))
    form["status"] = "published"
    assert "Post published." in text_of(admin_client.get(location(admin_client.post(edit, data=form))))

    path = data.path(post["id"])
    page = reader.get(path)
    assert page.status_code == 200
    assert soup(page).select_one("h1.entry-title").get_text(strip=True) == "Out now"
    assert "<strong>bold</strong>" in page.get_data(as_text=True)
    assert "Out now" in [a.get_text(strip=True) for a in soup(reader.get("/")).select("h2.entry-title a")]


def test_scheduled_post_is_hidden_until_its_date(admin_client, data, reader):
    when = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    response = _new_post(admin_client, title="Coming soon", status="published", published_at=when.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 302
    post = _only_post(data)
    assert post["status"] == "published"
    assert post["published_at"] == when.replace(tzinfo=None)
    assert f"Scheduled for {when:%B} {when.day}, {when:%Y at %H:%M}." in text_of(admin_client.get(location(response)))

    path = data.path(post["id"])
    assert path.startswith(f"/{when:%Y/%m/%d}/coming-soon")
    assert reader.get(path).status_code == 404
    assert "Coming soon" not in reader.get("/").get_data(as_text=True)
    assert "Coming soon" not in reader.get("/feed/").get_data(as_text=True)
    preview = admin_client.get(path)
    assert preview.status_code == 200
    assert "Preview: this post is scheduled for" in text_of(preview)
    listing = soup(admin_client.get("/admin/posts"))
    assert "Scheduled" in listing.select_one("table.list tbody tr").get_text()

    # Its time comes (moved here rather than waiting three days): readers see it.
    data.update_post(post["id"], published_at=utcnow() - timedelta(minutes=1))
    page = reader.get(data.path(post["id"]))
    assert page.status_code == 200
    assert "Preview:" not in text_of(page)
    assert "Coming soon" in [a.get_text() for a in soup(reader.get("/")).select("h2.entry-title a")]


@pytest.mark.parametrize("config_overrides", [{"TIMEZONE": "America/New_York"}])
def test_publish_date_is_typed_in_the_site_zone(admin_client, data, config_overrides):
    response = _new_post(admin_client, title="Zoned", status="published", published_at="2031-07-04T21:30")
    assert response.status_code == 302
    post = _only_post(data)
    # 21:30 in New York in July (EDT, UTC-4) is 01:30 UTC the next day.
    assert post["published_at"] == datetime(2031, 7, 5, 1, 30)
    assert data.path(post["id"]) == "/2031/07/04/zoned/"
    # The edit form shows it back in the site's zone.
    form = browser_form(admin_client.get(location(response)), "form.post-editor")
    assert form["published_at"] == "2031-07-04T21:30"


@pytest.mark.parametrize("config_overrides", [{}, {"TIMEZONE": "Asia/Kathmandu"}])
def test_edit_keeps_the_permalink_of_a_published_post(admin_client, data, reader, config_overrides):
    post_id, path = data.post("First title", days_ago=40, categories=["News"], tags=["t1"])
    data.update_post(post_id, published_at=data.post_row(post_id)["published_at"].replace(microsecond=0, second=37))
    before = data.post_row(post_id)
    path = data.path(post_id)
    edit = admin_client.get(f"/admin/posts/{post_id}/edit")
    assert edit.status_code == 200
    assert soup(edit).select_one("p.permalink a")["href"] == path

    form = browser_form(edit, "form.post-editor")
    assert form["title"] == "First title" and form["slug"] == "first-title" and form["status"] == "published"
    assert form["categories"] == "News" and form["tags"] == "t1"
    form.update(title="A better title", body="New *body*.", save="1")
    response = admin_client.post(f"/admin/posts/{post_id}/edit", data=form)
    assert response.status_code == 302

    after = data.post_row(post_id)
    assert after["title"] == "A better title" and "<em>body</em>" in after["body_html"]
    assert after["slug"] == before["slug"]
    assert after["published_at"] == before["published_at"]
    assert after["status"] == "published"
    assert data.post_terms(post_id) == (["News"], ["t1"])
    assert data.path(post_id) == path
    page = reader.get(path)
    assert page.status_code == 200
    assert soup(page).select_one("h1.entry-title").get_text(strip=True) == "A better title"


def test_edit_with_an_empty_slug_keeps_the_slug(admin_client, data):
    post_id, path = data.post("Stable address")
    form = browser_form(admin_client.get(f"/admin/posts/{post_id}/edit"), "form.post-editor")
    form.update(slug="", title="Renamed")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    assert data.post_row(post_id)["slug"] == "stable-address"
    assert data.path(post_id) == path


def test_slugs_stay_unique(admin_client, data):
    data.post("Same title")
    assert _new_post(admin_client, title="Same title").status_code == 302
    with data.session() as s:
        assert sorted(s.scalars(select(Post.slug))) == ["same-title", "same-title-2"]


def test_preview_renders_markdown_without_saving(admin_client, data):
    form = post_form(title="Previewed", body="Some **bold** and <script>alert(1)</script>", save=None, preview="1")
    form["csrf_token"] = csrf_token(admin_client, "/admin/posts/new")
    response = admin_client.post("/admin/posts/new", data=form)
    assert response.status_code == 200
    preview = soup(response).select_one("section.preview")
    assert preview is not None
    assert preview.select_one("h1.entry-title").get_text() == "Previewed"
    assert preview.select_one(".entry-content strong").get_text() == "bold"
    assert "<script>" not in str(preview)
    assert soup(response).select_one("textarea[name=body]").get_text().strip() == form["body"]
    assert data.count(Post) == 0


def test_preview_of_an_existing_post_changes_nothing(admin_client, data):
    post_id, _ = data.post("Kept", body="Old body")
    form = browser_form(admin_client.get(f"/admin/posts/{post_id}/edit"), "form.post-editor")
    form.update(title="Changed", body="# New\n\n*body*", preview="1")
    response = admin_client.post(f"/admin/posts/{post_id}/edit", data=form)
    assert response.status_code == 200
    assert soup(response).select_one("section.preview .entry-content em").get_text() == "body"
    row = data.post_row(post_id)
    assert (row["title"], row["body"]) == ("Kept", "Old body")


@pytest.mark.parametrize("title", ["", "   "])
def test_empty_title_reshows_the_form_with_what_was_typed(admin_client, data, title):
    body = "A long body\nwith *two* lines & <angle> brackets."
    response = _new_post(admin_client, title=title, body=body, tags="kept-tag", status="published", comments_open=None)
    assert response.status_code == 400
    page = soup(response)
    assert page.select_one(".form-error").get_text(strip=True).startswith("The post was not saved.")
    assert page.select_one(".field-title .field-error").get_text(strip=True) == "A post needs a title."
    form = browser_form(response, "form.post-editor")
    assert form["body"].replace("\r\n", "\n") == body
    assert form["tags"] == "kept-tag" and form["status"] == "published"
    assert "comments_open" not in form and form["pings_open"] == "y"
    assert data.count(Post) == 0


def test_edit_with_an_empty_title_saves_nothing(admin_client, data):
    post_id, _ = data.post("Original", body="Original body")
    form = browser_form(admin_client.get(f"/admin/posts/{post_id}/edit"), "form.post-editor")
    form.update(title="", body="Edited body")
    response = admin_client.post(f"/admin/posts/{post_id}/edit", data=form)
    assert response.status_code == 400
    assert browser_form(response, "form.post-editor")["body"] == "Edited body"
    row = data.post_row(post_id)
    assert (row["title"], row["body"]) == ("Original", "Original body")


def test_bad_publish_date_is_a_form_error(admin_client, data):
    response = _new_post(admin_client, status="published", published_at="next tuesday")
    assert response.status_code == 400
    assert soup(response).select_one(".field-published_at .field-error") is not None
    assert data.count(Post) == 0


def test_editing_a_missing_post_is_404(admin_client, token):
    assert admin_client.get("/admin/posts/999/edit").status_code == 404
    assert admin_client.post("/admin/posts/999/edit", data=post_form(csrf_token=token)).status_code == 404
    assert admin_client.post("/admin/posts/999/delete", data={"csrf_token": token}).status_code == 404


def test_delete_post_removes_it_and_its_comments(admin_client, data, reader):
    post_id, path = data.post("Doomed", categories=["Kept category"])
    other_id, _ = data.post("Survivor")
    root = data.comment(post_id, "root")
    data.comment(post_id, "reply", parent_id=root)
    data.linkback(post_id)
    kept = data.comment(other_id, "elsewhere")
    edit = admin_client.get(f"/admin/posts/{post_id}/edit")
    form = browser_form(edit, "form.danger-zone")
    response = admin_client.post(f"/admin/posts/{post_id}/delete", data=form)
    assert response.status_code == 302
    assert location(response) == "/admin/posts"
    assert "Deleted “Doomed”." in text_of(admin_client.get("/admin/posts"))
    assert data.post_row(post_id) is None
    assert data.count(Comment, Comment.post_id == post_id) == 0
    assert data.comment_row(kept) is not None and data.post_row(other_id) is not None
    assert data.count(Category) == 1
    # It was public, so its address now answers 410 Gone (a tombstone), for readers and admins alike.
    assert reader.get(path).status_code == 410
    assert admin_client.get(path).status_code == 410


@pytest.mark.parametrize(("comments_open", "pings_open"), [(True, True), (False, True), (True, False), (False, False)])
def test_discussion_switches_are_independent(admin_client, data, reader, comments_open, pings_open):
    response = _new_post(admin_client, title="Talk", status="published",
                         comments_open="y" if comments_open else None, pings_open="y" if pings_open else None)
    assert response.status_code == 302
    post = _only_post(data)
    assert (post["comments_open"], post["pings_open"]) == (comments_open, pings_open)

    page = reader.get(data.path(post["id"]))
    closed = soup(page).select_one("#comments p.no-comments")
    if comments_open:
        assert closed is None
        assert soup(page).select_one("form.comment-form") is not None
    else:
        assert closed.get_text() == "Comments are closed."
        assert soup(page).select_one("form.comment-form") is None
        assert soup(page).select_one("#respond") is None

    # The edit form shows each switch as saved, and saving it unchanged keeps both.
    edit = admin_client.get(location(response))
    form = browser_form(edit, "form.post-editor")
    assert ("comments_open" in form, "pings_open" in form) == (comments_open, pings_open)
    assert admin_client.post(location(response), data=form).status_code == 302
    post = data.post_row(post["id"])
    assert (post["comments_open"], post["pings_open"]) == (comments_open, pings_open)
    row = soup(admin_client.get("/admin/posts")).select_one("td.discussion").get_text(" ", strip=True)
    assert f"Comments {'open' if comments_open else 'closed'}" in row
    assert f"Pings {'open' if pings_open else 'closed'}" in row


def test_closed_comments_refuse_a_comment(admin_client, data, reader):
    post_id, path = data.post("Closed", comments_open=False)
    response = reader.post(f"/posts/{post_id}/comments", data=visitor_comment(post_id))
    assert response.status_code == 403
    assert data.count(Comment) == 0


def _bulk_posts(admin_client, action, ids):
    token = csrf_token(admin_client, "/admin/posts")
    return admin_client.post("/admin/posts/bulk", data={"csrf_token": token, "action": action,
                                                        "ids": [str(i) for i in ids], "next": "/admin/posts?status=published"})


def test_bulk_open_and_close_comments_and_pings(admin_client, data):
    a, _ = data.post("A")
    b, _ = data.post("B")
    c, _ = data.post("C")

    def flags():
        return {pid: (data.post_row(pid)["comments_open"], data.post_row(pid)["pings_open"]) for pid in (a, b, c)}

    response = _bulk_posts(admin_client, "close-comments", [a, b])
    assert response.status_code == 302
    assert location(response) == "/admin/posts?status=published"
    assert flags() == {a: (False, True), b: (False, True), c: (True, True)}
    assert "2 post(s) updated." in text_of(admin_client.get("/admin/posts"))

    _bulk_posts(admin_client, "close-pings", [b, c])
    assert flags() == {a: (False, True), b: (False, False), c: (True, False)}
    _bulk_posts(admin_client, "open-comments", [b])
    assert flags() == {a: (False, True), b: (True, False), c: (True, False)}
    _bulk_posts(admin_client, "open-pings", [a, b, c])
    assert flags() == {a: (False, True), b: (True, True), c: (True, True)}

    listing = soup(admin_client.get("/admin/posts"))
    rows = {r.select_one("a.row-title").get_text(): r.select_one("td.discussion").get_text(" ", strip=True)
            for r in listing.select("table.list tbody tr")}
    assert rows["A"] == "Comments closed Pings open"
    assert rows["B"] == "Comments open Pings open"


def test_bulk_form_on_the_post_list(admin_client, data):
    a, _ = data.post("A")
    b, _ = data.post("B")
    listing = admin_client.get("/admin/posts")
    form = browser_form(listing, 'form[action="/admin/posts/bulk"]')
    options = [o["value"] for o in soup(listing).select("#bulk-action option")]
    assert {"open-comments", "close-comments", "open-pings", "close-pings", "trash"} <= set(options)
    form.update(action="close-pings", ids=[str(a)])
    assert admin_client.post("/admin/posts/bulk", data=form).status_code == 302
    assert data.post_row(a)["pings_open"] is False and data.post_row(b)["pings_open"] is True


def test_bulk_without_a_selection_or_action_changes_nothing(admin_client, data):
    a, _ = data.post("A")
    assert _bulk_posts(admin_client, "close-comments", []).status_code == 302
    assert "Select at least one post." in text_of(admin_client.get("/admin/posts"))
    assert _bulk_posts(admin_client, "explode", [a]).status_code == 302
    assert "Choose a bulk action." in text_of(admin_client.get("/admin/posts"))
    assert data.post_row(a)["comments_open"] is True


def test_bulk_delete_posts(admin_client, data):
    a, _ = data.post("A")
    b, _ = data.post("B")
    c, _ = data.post("C")
    data.comment(a, "on A")
    data.comment(b, "on B")
    asked = _bulk_posts(admin_client, "delete", [a, b])  # "Delete permanently" asks first
    assert asked.status_code == 200 and "Delete permanently?" in text_of(asked)
    assert data.post_row(a) is not None and data.post_row(b) is not None
    confirm = browser_form(asked, "form.confirm-delete")
    assert admin_client.post("/admin/posts/bulk", data=confirm).status_code == 302
    assert "2 post(s) deleted permanently." in text_of(admin_client.get("/admin/posts"))
    assert data.post_row(a) is None and data.post_row(b) is None and data.post_row(c) is not None
    assert data.count(Comment) == 0


def test_post_list_filters_and_counts(admin_client, data):
    published, _ = data.post("Live one")
    data.post("Unfinished", publish=False)
    data.comment(published, "ok")
    data.comment(published, "held", status="pending")
    titles = lambda r: [a.get_text() for a in soup(r).select("a.row-title")]  # noqa: E731
    assert sorted(titles(admin_client.get("/admin/posts"))) == ["Live one", "Unfinished"]
    assert titles(admin_client.get("/admin/posts?status=draft")) == ["Unfinished"]
    assert titles(admin_client.get("/admin/posts?status=published")) == ["Live one"]
    row = soup(admin_client.get("/admin/posts?status=published")).select_one("table.list tbody tr")
    assert row.select_one(".pending-count").get_text() == "1"


# ---------------------------------------------------------------- moderation


def _act(client, comment_id, action, next_url="/admin/comments"):
    token = csrf_token(client, "/admin/comments")
    return client.post(f"/admin/comments/{comment_id}/{action}", data={"csrf_token": token, "next": next_url})


def _bulk(client, action, ids, next_url="/admin/comments"):
    token = csrf_token(client, "/admin/comments")
    return client.post("/admin/comments/bulk", data={"csrf_token": token, "action": action,
                                                     "ids": [str(i) for i in ids], "next": next_url})


def test_pending_tab_lists_comments_and_linkbacks(admin_client, data):
    post_id, _ = data.post("Discussed")
    held = data.comment(post_id, "Please *approve* me", status="pending", minutes=1)
    ping = data.linkback(post_id, "https://other.example/linking-post/")
    track = data.linkback(post_id, "https://third.example/tb/", kind="trackback", name="Third")
    shown = data.comment(post_id, "Already public", status="approved")
    data.comment(post_id, "Buy pills", status="spam")

    response = admin_client.get("/admin/comments")
    assert response.status_code == 200
    assert sorted(comment_ids_on_page(response)) == sorted([held, ping, track])
    page = soup(response)
    ping_row = page.select_one(f"tr#c{ping}")
    assert "Pingback from https://other.example/linking-post/" in ping_row.get_text(" ", strip=True)
    assert ping_row.select_one('a[href="https://other.example/linking-post/"]') is not None
    assert page.select_one(f"tr#c{held} .comment-text em").get_text() == "approve"
    assert [a.get_text(" ", strip=True) for a in page.select("nav.tabs > a")] == [
        "All (4)", "Pending (3)", "Approved (1)", "Spam (1)", "Trash (0)"]
    # Each pending row offers its actions, each a CSRF-protected form.
    buttons = [b.get_text() for b in page.select(f"tr#c{held} .row-actions button")]
    assert buttons == ["Approve", "Spam", "Trash"]

    assert sorted(comment_ids_on_page(admin_client.get("/admin/comments?kind=linkbacks"))) == sorted([ping, track])
    assert comment_ids_on_page(admin_client.get("/admin/comments?kind=comments")) == [held]
    assert comment_ids_on_page(admin_client.get("/admin/comments?status=approved")) == [shown]
    assert comment_ids_on_page(admin_client.get("/admin/comments?status=bogus")) == comment_ids_on_page(response)

    dashboard = text_of(admin_client.get("/admin/"))
    assert "3 awaiting moderation" in dashboard and "Please *approve* me" in dashboard


def test_comment_row_action_forms_work_as_rendered(admin_client, data):
    post_id, _ = data.post()
    held = data.comment(post_id, "Held", status="pending")
    page = admin_client.get("/admin/comments?status=pending")
    form_el = soup(page).select_one(f"tr#c{held} form[action$='/approve']")
    form = browser_form(page, f"tr#c{held} form[action$='/approve']")
    response = admin_client.post(form_el["action"], data=form)
    assert response.status_code == 302
    assert location(response) == "/admin/comments?status=pending"
    assert data.status(held) == "approved"
    assert "1 comment approved." in text_of(admin_client.get("/admin/comments"))


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        ("pending", "approve", "approved"),
        ("spam", "approve", "approved"),
        ("approved", "unapprove", "pending"),
        ("pending", "spam", "spam"),
        ("approved", "spam", "spam"),
        ("pending", "trash", "trash"),
        ("approved", "trash", "trash"),
        ("spam", "trash", "trash"),
    ],
)
def test_single_moderation_actions(admin_client, data, reader, start, action, end):
    post_id, path = data.post()
    comment_id = data.comment(post_id, "Moderate me", status=start)
    response = _act(admin_client, comment_id, action)
    assert response.status_code == 302
    assert data.status(comment_id) == end
    if end in ("spam", "trash"):
        # Where it was before it was hidden; spam moved to the trash has no such place here.
        assert data.comment_row(comment_id)["previous_status"] == (None if start == "spam" else start)
    public = reader.get(path).get_data(as_text=True)
    assert ("Moderate me" in public) == (end == "approved")


@pytest.mark.parametrize(("start", "action"), [("approved", "approve"), ("pending", "unapprove"), ("spam", "spam"),
                                               ("trash", "trash"), ("pending", "restore"), ("approved", "restore")])
def test_moderation_action_that_does_not_apply_changes_nothing(admin_client, data, start, action):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, status=start)
    assert _act(admin_client, comment_id, action).status_code == 302
    assert data.status(comment_id) == start
    assert f"Nothing to do: the comment is already {start}." in text_of(admin_client.get("/admin/comments"))


def test_unknown_action_and_missing_comment_are_404(admin_client, data):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, status="pending")
    assert _act(admin_client, comment_id, "publish").status_code == 404
    assert _act(admin_client, 999, "approve").status_code == 404
    assert admin_client.get("/admin/comments/999/edit").status_code == 404
    assert admin_client.get("/admin/comments/999/reply").status_code == 404
    assert data.status(comment_id) == "pending"


@pytest.mark.parametrize(("start", "via"), [("approved", "trash"), ("pending", "trash"), ("approved", "spam"), ("pending", "spam")])
def test_restore_returns_to_the_previous_status(admin_client, data, start, via):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, status=start)
    _act(admin_client, comment_id, via)
    assert data.status(comment_id) == via
    response = _act(admin_client, comment_id, "restore", f"/admin/comments?status={via}")
    assert location(response) == f"/admin/comments?status={via}"
    assert data.status(comment_id) == start
    assert data.comment_row(comment_id)["previous_status"] is None
    assert "1 comment restored." in text_of(admin_client.get("/admin/comments"))


@pytest.mark.parametrize("start", ["approved", "pending"])
def test_restore_after_spam_then_trash_goes_back_to_before_spam(admin_client, data, start):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, status=start)
    _act(admin_client, comment_id, "spam")
    _act(admin_client, comment_id, "trash")
    assert data.status(comment_id) == "trash"
    _act(admin_client, comment_id, "restore")
    assert data.status(comment_id) == start
    # "Not spam" on something moved from the trash to spam never lands it back in the trash.
    _act(admin_client, comment_id, "trash")
    _act(admin_client, comment_id, "spam")
    _act(admin_client, comment_id, "restore")
    assert data.status(comment_id) == start


def test_approving_from_spam_forgets_the_old_status(admin_client, data):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, status="pending")
    _act(admin_client, comment_id, "spam")
    _act(admin_client, comment_id, "approve")
    assert data.comment_row(comment_id)["previous_status"] is None
    _act(admin_client, comment_id, "trash")
    _act(admin_client, comment_id, "restore")
    assert data.status(comment_id) == "approved"


def test_restore_after_editing_the_status_to_trash(admin_client, data):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, "Approved words", status="approved")
    form = browser_form(admin_client.get(f"/admin/comments/{comment_id}/edit"), "form.narrow-form")
    form["status"] = "trash"
    assert admin_client.post(f"/admin/comments/{comment_id}/edit", data=form).status_code == 302
    assert data.status(comment_id) == "trash"
    _act(admin_client, comment_id, "restore")
    assert data.status(comment_id) == "approved"


def test_delete_forever_keeps_the_replies(admin_client, data, reader):
    post_id, path = data.post()
    top = data.comment(post_id, "Top comment", minutes=0)
    middle = data.comment(post_id, "Middle comment", parent_id=top, minutes=1)
    leaf = data.comment(post_id, "Leaf comment", parent_id=middle, minutes=2)
    sibling = data.comment(post_id, "Second leaf", parent_id=middle, minutes=3)
    _act(admin_client, middle, "trash")
    response = _act(admin_client, middle, "delete", "/admin/comments?status=trash")
    assert response.status_code == 302
    assert "1 comment deleted permanently." in text_of(admin_client.get("/admin/comments"))
    assert data.comment_row(middle) is None
    assert data.comment_row(leaf)["parent_id"] == top
    assert data.comment_row(sibling)["parent_id"] == top
    assert data.status(leaf) == "approved"

    page = soup(reader.get(path))
    nested = [li["id"] for li in page.select(f"li#comment-{top} > ol.children > li")]
    assert nested == [f"comment-{leaf}", f"comment-{sibling}"]
    assert "Middle comment" not in page.get_text()

    # Deleting a top-level comment makes its replies top-level.
    _act(admin_client, top, "delete")
    assert data.comment_row(top) is None
    assert data.comment_row(leaf)["parent_id"] is None
    page = soup(reader.get(path))
    assert [li["id"] for li in page.select("ol.comment-list > li")] == [f"comment-{leaf}", f"comment-{sibling}"]


def test_bulk_delete_of_a_comment_and_its_reply_keeps_the_grandchild(admin_client, data, reader):
    post_id, path = data.post()
    a = data.comment(post_id, "Comment A", status="spam", minutes=0)
    b = data.comment(post_id, "Comment B", status="spam", parent_id=a, minutes=1)
    c = data.comment(post_id, "Comment C", status="approved", parent_id=b, minutes=2)
    assert _bulk(admin_client, "delete", [b, a], "/admin/comments?status=spam").status_code == 302
    assert data.comment_row(a) is None and data.comment_row(b) is None
    assert data.comment_row(c)["parent_id"] is None
    assert [li["id"] for li in soup(reader.get(path)).select("ol.comment-list > li")] == [f"comment-{c}"]


def test_bulk_moderation(admin_client, data, reader):
    post_id, path = data.post()
    ids = [data.comment(post_id, f"Comment {n}", status="pending", minutes=n) for n in range(4)]
    ping = data.linkback(post_id)
    response = _bulk(admin_client, "approve", [*ids[:3], ping], "/admin/comments?status=pending")
    assert response.status_code == 302
    assert location(response) == "/admin/comments?status=pending"
    assert [data.status(i) for i in [*ids, ping]] == ["approved"] * 3 + ["pending", "approved"]
    assert "4 comments approved." in text_of(admin_client.get("/admin/comments"))
    public = text_of(reader.get(path))
    assert all(f"Comment {n}" in public for n in range(3)) and "Comment 3" not in public

    _bulk(admin_client, "spam", ids[:2])
    assert [data.status(i) for i in ids] == ["spam", "spam", "approved", "pending"]
    # Only what the action applies to is counted.
    _bulk(admin_client, "trash", ids)
    assert [data.status(i) for i in ids] == ["trash"] * 4
    assert "4 comments moved to the trash." in text_of(admin_client.get("/admin/comments"))
    # Restoring from the trash goes back to where each was before spam and trash.
    _bulk(admin_client, "restore", ids)
    assert [data.status(i) for i in ids] == ["approved", "approved", "approved", "pending"]
    _bulk(admin_client, "delete", ids[:2])
    assert data.comment_row(ids[0]) is None and data.comment_row(ids[1]) is None
    assert data.count(Comment) == 3


def test_bulk_form_on_the_moderation_page(admin_client, data):
    post_id, _ = data.post()
    a = data.comment(post_id, "a", status="pending")
    b = data.comment(post_id, "b", status="pending")
    page = admin_client.get("/admin/comments")
    form = browser_form(page, "form#bulk-form")
    # The row checkboxes sit outside the form and belong to it through form="bulk-form".
    boxes = soup(page).select('input[name="ids"][form="bulk-form"]')
    assert sorted(int(b["value"]) for b in boxes) == sorted([a, b])
    form.update(action="spam", ids=[str(a)])
    assert admin_client.post("/admin/comments/bulk", data=form).status_code == 302
    assert data.status(a) == "spam" and data.status(b) == "pending"


def test_bulk_moderation_without_selection_or_action(admin_client, data):
    post_id, _ = data.post()
    a = data.comment(post_id, status="pending")
    _bulk(admin_client, "approve", [])
    assert "Select at least one comment." in text_of(admin_client.get("/admin/comments"))
    _bulk(admin_client, "", [a])
    assert "Choose a bulk action." in text_of(admin_client.get("/admin/comments"))
    _bulk(admin_client, "nuke", [a])
    assert data.status(a) == "pending"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_moderation_does_not_redirect_off_site(admin_client, data, next_url):
    post_id, _ = data.post()
    a = data.comment(post_id, status="pending")
    assert location(_act(admin_client, a, "approve", next_url)) == "/admin/comments"
    assert location(_bulk(admin_client, "unapprove", [a], next_url)) == "/admin/comments"
    assert location(_bulk_posts_next(admin_client, post_id, next_url)) == "/admin/posts"


def _bulk_posts_next(admin_client, post_id, next_url):
    token = csrf_token(admin_client, "/admin/posts")
    return admin_client.post("/admin/posts/bulk", data={"csrf_token": token, "action": "close-pings",
                                                        "ids": str(post_id), "next": next_url})


def test_edit_comment_rerenders_and_sanitises(admin_client, data, reader):
    post_id, path = data.post()
    comment_id = data.comment(post_id, "Original words", status="approved", name="Sam")
    edit = admin_client.get(f"/admin/comments/{comment_id}/edit")
    assert edit.status_code == 200
    form = browser_form(edit, "form.narrow-form")
    assert (form["author_name"], form["content"], form["status"]) == ("Sam", "Original words", "approved")

    evil = 'Now **bold** <script>alert("x")</script> <img src=x onerror=alert(1)> [link](javascript:alert(2))'
    form.update(author_name="Samantha", content=evil, author_url="https://sam.example/")
    response = admin_client.post(f"/admin/comments/{comment_id}/edit", data=form)
    assert response.status_code == 302
    assert location(response) == "/admin/comments?status=approved"
    row = data.comment_row(comment_id)
    assert row["content"] == evil and row["author_name"] == "Samantha" and row["author_url"] == "https://sam.example/"
    assert "<strong>bold</strong>" in row["content_html"]
    assert "<script" not in row["content_html"] and "<img" not in row["content_html"]
    assert 'href="javascript' not in row["content_html"]

    html = reader.get(path).get_data(as_text=True)
    assert "<strong>bold</strong>" in html
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;alert" in html
    li = soup(reader.get(path)).select_one(f"li#comment-{comment_id}")
    assert li.select_one(".comment-author a").get_text() == "Samantha"
    # The moderation list prints the stored, sanitised HTML too.
    admin_html = admin_client.get("/admin/comments?status=approved").get_data(as_text=True)
    assert "<script>alert" not in admin_html and "<img src=x" not in admin_html


@pytest.mark.parametrize(("field", "value", "error_field"), [("author_email", "not-an-email", "author_email"),
                                                             ("content", "", "content"),
                                                             ("author_name", "", "author_name"),
                                                             ("author_url", "not a url", "author_url"),
                                                             ("author_url", "javascript://x.example/%0Aalert(1)",
                                                              "author_url"),
                                                             ("status", "published", "status")])
def test_edit_comment_with_bad_values_saves_nothing(admin_client, data, field, value, error_field):
    post_id, _ = data.post()
    comment_id = data.comment(post_id, "Original words", status="pending")
    before = data.comment_row(comment_id)
    form = browser_form(admin_client.get(f"/admin/comments/{comment_id}/edit"), "form.narrow-form")
    form.update(content="Changed words")
    form[field] = value
    response = admin_client.post(f"/admin/comments/{comment_id}/edit", data=form)
    assert response.status_code == 400
    assert soup(response).select_one(f".field-{error_field} .field-error") is not None
    assert data.comment_row(comment_id) == before


def test_edit_a_linkback(admin_client, data, reader):
    post_id, path = data.post()
    ping = data.linkback(post_id, "https://other.example/p/", status="approved")
    edit = admin_client.get(f"/admin/comments/{ping}/edit")
    assert edit.status_code == 200
    assert soup(edit).select_one("h1").get_text() == "Edit Pingback"
    form = browser_form(edit, "form.narrow-form")
    form.update(content="Shorter <b>excerpt</b>")
    assert admin_client.post(f"/admin/comments/{ping}/edit", data=form).status_code == 302
    row = data.comment_row(ping)
    assert row["content"] == "Shorter <b>excerpt</b>" and row["kind"] == "pingback"
    assert row["source_url"] == "https://other.example/p/"
    html = reader.get(path).get_data(as_text=True)
    assert "Shorter &lt;b&gt;excerpt&lt;/b&gt;" in html


def test_reply_as_admin(admin_client, data, reader):
    post_id, path = data.post()
    parent = data.comment(post_id, "A question?", status="pending", name="Asker")
    page = admin_client.get(f"/admin/comments/{parent}/reply")
    assert page.status_code == 200
    assert "Replying approves this comment." in text_of(page)
    form = browser_form(page, "form.narrow-form")
    form["content"] = "An *answer*. <script>alert(1)</script>"
    response = admin_client.post(f"/admin/comments/{parent}/reply", data=form)
    assert response.status_code == 302
    assert location(response) == "/admin/comments?status=approved"

    assert data.status(parent) == "approved"
    with data.session() as s:
        reply = s.scalar(select(Comment).where(Comment.parent_id == parent))
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert reply is not None
        assert (reply.status, reply.kind, reply.post_id, reply.user_id) == ("approved", "comment", post_id, admin.id)
        assert reply.author_name == "Admin"
        assert "<em>answer</em>" in reply.content_html and "<script" not in reply.content_html
        reply_id = reply.id

    public = soup(reader.get(path))
    nested = public.select_one(f"ol.comment-list > li#comment-{parent} > ol.children > li#comment-{reply_id}")
    assert nested is not None
    assert "by-admin" in nested["class"]
    assert nested.select_one(".comment-content em").get_text() == "answer"
    assert "<script>alert(1)" not in reader.get(path).get_data(as_text=True)
    assert public.select_one("h2.comments-title").get_text() == "2 Comments"


def test_reply_to_an_approved_comment_keeps_it_approved(admin_client, data):
    post_id, _ = data.post()
    parent = data.comment(post_id, "Visible", status="approved")
    form = browser_form(admin_client.get(f"/admin/comments/{parent}/reply"), "form.narrow-form")
    form["content"] = "Thanks"
    assert admin_client.post(f"/admin/comments/{parent}/reply", data=form).status_code == 302
    assert data.status(parent) == "approved"
    assert data.count(Comment, Comment.parent_id == parent, Comment.status == "approved") == 1


def test_empty_reply_is_refused(admin_client, data):
    post_id, _ = data.post()
    parent = data.comment(post_id, "Question", status="pending")
    form = browser_form(admin_client.get(f"/admin/comments/{parent}/reply"), "form.narrow-form")
    form["content"] = "   "
    response = admin_client.post(f"/admin/comments/{parent}/reply", data=form)
    assert response.status_code == 400
    assert soup(response).select_one(".field-content .field-error").get_text() == "Write something to reply."
    assert data.count(Comment) == 1 and data.status(parent) == "pending"


ADMIN_PAGES = ["/admin/", "/admin/posts", "/admin/posts/new", "/admin/comments", "/admin/comments?status=trash",
               "/admin/settings", "/admin/posts/{post}/edit", "/admin/comments/{comment}/edit",
               "/admin/comments/{comment}/reply"]


def test_pending_count_is_on_every_admin_page(admin_client, data, reader):
    post_id, _ = data.post()
    first = data.comment(post_id, "approved already", status="approved")
    ids = {"post": post_id, "comment": first}

    def counts():
        return {url: nav_pending(admin_client.get(url.format(**ids))) for url in ADMIN_PAGES}

    assert set(counts().values()) == {0}
    # A visitor comments (held for moderation by default) and a pingback arrives.
    assert reader.post(f"/posts/{post_id}/comments", data=visitor_comment(post_id)).status_code == 303
    data.linkback(post_id)
    assert set(counts().values()) == {2}
    with data.session() as s:
        held = s.scalar(select(Comment.id).where(Comment.author_name == "Vera Visitor"))
    _act(admin_client, held, "approve")
    assert set(counts().values()) == {1}
    # Replying to the pending linkback approves it too.
    with data.session() as s:
        ping = s.scalar(select(Comment.id).where(Comment.kind == "pingback"))
    form = browser_form(admin_client.get(f"/admin/comments/{ping}/reply"), "form.narrow-form")
    form["content"] = "Thanks for the link"
    assert admin_client.post(f"/admin/comments/{ping}/reply", data=form).status_code == 302
    assert data.status(ping) == "approved"
    assert set(counts().values()) == {0}


# ---------------------------------------------------------------- site settings

GOOD_SETTINGS = {"SITE_TITLE": "My Practice", "SITE_DESCRIPTION": "Notes", "POSTS_PER_PAGE": "2",
                 "COMMENT_MODERATION": "approve", "COMMENT_THREAD_DEPTH": "3", "CLOSE_COMMENTS_AFTER_DAYS": "10",
                 "COMMENT_MAX_LINKS": "4", "COMMENT_MODERATION_KEYS": "casino\n203.0.113.7",
                 "COMMENT_DISALLOWED_KEYS": "spam.example", "NOTIFY_EMAIL": "owner@example.org", "NOTIFY_HELD": "y"}


def _save_settings(admin_client, **changes):
    form = browser_form(admin_client.get("/admin/settings"), "form.narrow-form")
    form.update(changes)
    return admin_client.post("/admin/settings", data=form)


def test_settings_form_shows_the_defaults(admin_client, app):
    form = browser_form(admin_client.get("/admin/settings"), "form.narrow-form")
    assert form["SITE_TITLE"] == app.config["SITE_TITLE"]
    assert form["POSTS_PER_PAGE"] == str(app.config["POSTS_PER_PAGE"])
    assert form["COMMENT_MODERATION"] == app.config["COMMENT_MODERATION"]
    assert form["COMMENT_THREAD_DEPTH"] == str(app.config["COMMENT_THREAD_DEPTH"])
    assert form["CLOSE_COMMENTS_AFTER_DAYS"] == str(app.config["CLOSE_COMMENTS_AFTER_DAYS"])


def test_settings_are_saved_and_shown_again(admin_client, data, reader):
    response = _save_settings(admin_client, **GOOD_SETTINGS)
    assert response.status_code == 302
    assert location(response) == "/admin/settings"
    assert data.site_settings() == {"SITE_TITLE": "My Practice", "SITE_DESCRIPTION": "Notes", "POSTS_PER_PAGE": 2,
                                    "COMMENT_MODERATION": "approve", "COMMENT_THREAD_DEPTH": 3,
                                    "CLOSE_COMMENTS_AFTER_DAYS": 10, "COMMENT_MAX_LINKS": 4,
                                    "COMMENT_MODERATION_KEYS": ["casino", "203.0.113.7"],
                                    "COMMENT_DISALLOWED_KEYS": ["spam.example"], "NOTIFY_EMAIL": "owner@example.org",
                                    "NOTIFY_HELD": True, "NOTIFY_PUBLISHED": False}
    page = admin_client.get("/admin/settings")
    assert "Settings saved." in text_of(page)
    assert browser_form(page, "form.narrow-form") == {"csrf_token": browser_form(page, "form.narrow-form")["csrf_token"],
                                                      **GOOD_SETTINGS}
    assert soup(reader.get("/")).select_one(".site-title").get_text(strip=True) == "My Practice"
    # Saving again updates the same rows.
    _save_settings(admin_client, POSTS_PER_PAGE="7")
    assert data.site_settings()["POSTS_PER_PAGE"] == 7
    assert data.count(SiteSetting) == 12


def test_close_comments_after_days_takes_effect(admin_client, data, reader):
    old_id, old_path = data.post("Old post", days_ago=30)
    new_id, new_path = data.post("New post", days_ago=2)
    assert soup(reader.get(old_path)).select_one("form.comment-form") is not None

    assert _save_settings(admin_client, CLOSE_COMMENTS_AFTER_DAYS="10").status_code == 302
    page = reader.get(old_path)
    assert page.status_code == 200
    assert soup(page).select_one("#comments p.no-comments").get_text() == "Comments are closed."
    assert soup(page).select_one("form.comment-form") is None
    refused = reader.post(f"/posts/{old_id}/comments", data=visitor_comment(old_id))
    assert refused.status_code == 403
    assert data.count(Comment) == 0
    # A younger post stays open.
    assert soup(reader.get(new_path)).select_one("form.comment-form") is not None
    assert reader.post(f"/posts/{new_id}/comments", data=visitor_comment(new_id)).status_code == 303
    assert data.count(Comment, Comment.post_id == new_id) == 1
    # The post's own switch is untouched: 0 days reopens it.
    assert data.post_row(old_id)["comments_open"] is True
    _save_settings(admin_client, CLOSE_COMMENTS_AFTER_DAYS="0")
    assert soup(reader.get(old_path)).select_one("form.comment-form") is not None


@pytest.mark.parametrize(("mode", "expected"), [("approve", "approved"), ("hold-all", "pending")])
def test_comment_moderation_setting_takes_effect(admin_client, data, reader, mode, expected):
    post_id, path = data.post()
    _save_settings(admin_client, COMMENT_MODERATION=mode)
    assert reader.post(f"/posts/{post_id}/comments", data=visitor_comment(post_id)).status_code == 303
    with data.session() as s:
        status = s.scalar(select(Comment.status).where(Comment.post_id == post_id))
    assert status == expected
    assert nav_pending(admin_client.get("/admin/")) == (1 if expected == "pending" else 0)


def test_hold_new_moderation_trusts_known_commenters(admin_client, data, reader):
    post_id, _ = data.post()
    data.comment(post_id, "earlier", status="approved", email="known@example.org")
    _save_settings(admin_client, COMMENT_MODERATION="hold-new")
    reader.post(f"/posts/{post_id}/comments", data=visitor_comment(post_id, author_email="KNOWN@example.org", content="again"))
    reader.post(f"/posts/{post_id}/comments", data=visitor_comment(post_id, author_email="new@example.org", content="first"))
    with data.session() as s:
        statuses = dict(s.execute(select(Comment.content, Comment.status)).all())
    assert statuses == {"earlier": "approved", "again": "approved", "first": "pending"}


def test_thread_depth_setting_takes_effect(admin_client, data, reader):
    post_id, path = data.post()
    top = data.comment(post_id, "top", minutes=0)
    reply = data.comment(post_id, "reply", parent_id=top, minutes=1)
    _save_settings(admin_client, COMMENT_THREAD_DEPTH="1")
    page = soup(reader.get(path))
    assert page.select(".comment-reply-link") == []
    assert [li["id"] for li in page.select("ol.comment-list > li")] == [f"comment-{top}", f"comment-{reply}"]
    _save_settings(admin_client, COMMENT_THREAD_DEPTH="2")
    page = soup(reader.get(path))
    assert page.select_one(f"li#comment-{top} > ol.children > li#comment-{reply}") is not None
    assert len(page.select(".comment-reply-link")) == 1


def test_posts_per_page_setting_takes_effect(admin_client, data, reader):
    for n in range(3):
        data.post(f"Post {n}", days_ago=n + 1)
    _save_settings(admin_client, POSTS_PER_PAGE="2")
    first = soup(reader.get("/"))
    assert [a.get_text() for a in first.select("h2.entry-title a")] == ["Post 0", "Post 1"]
    assert "Page 1 of 2" in first.get_text()
    second = soup(reader.get("/page/2/"))
    assert [a.get_text() for a in second.select("h2.entry-title a")] == ["Post 2"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("COMMENT_THREAD_DEPTH", "0"),
        ("COMMENT_THREAD_DEPTH", "11"),
        ("COMMENT_THREAD_DEPTH", ""),
        ("POSTS_PER_PAGE", "0"),
        ("POSTS_PER_PAGE", "abc"),
        ("POSTS_PER_PAGE", "101"),
        ("CLOSE_COMMENTS_AFTER_DAYS", "-1"),
        ("CLOSE_COMMENTS_AFTER_DAYS", "1.5"),
        ("COMMENT_MODERATION", "everything-goes"),
        ("SITE_TITLE", ""),
    ],
)
def test_invalid_settings_are_refused(admin_client, data, reader, field, value):
    changes = {**GOOD_SETTINGS, field: value}
    response = _save_settings(admin_client, **changes)
    assert response.status_code == 400
    page = soup(response)
    assert page.select_one(".form-error").get_text(strip=True).startswith("The settings were not saved.")
    assert page.select(".field-error")
    shown = browser_form(response, "form.narrow-form")
    # What was typed is shown again, valid fields included.
    if field != "COMMENT_MODERATION":
        assert shown[field] == value
    assert shown["SITE_DESCRIPTION"] == "Notes"
    assert data.site_settings() == {}
    assert soup(reader.get("/")).select_one(".site-title").get_text(strip=True) != "My Practice"


# ---------------------------------------------------------------- odd input never breaks anything


@pytest.mark.parametrize("url", ["/admin/posts/99999999999999999999/edit", "/admin/comments/99999999999999999999/edit",
                                 "/admin/comments/99999999999999999999/reply"])
def test_huge_ids_in_addresses_are_404(admin_client, url):
    assert admin_client.get(url).status_code == 404


def test_huge_ids_in_posted_actions_are_404(admin_client, token):
    assert admin_client.post("/admin/comments/99999999999999999999/approve", data={"csrf_token": token}).status_code == 404
    assert admin_client.post("/admin/posts/99999999999999999999/delete", data={"csrf_token": token}).status_code == 404


def test_bulk_ignores_ids_that_are_not_numbers(admin_client, data):
    post_id, _ = data.post()
    a = data.comment(post_id, status="pending")
    odd = ["²", "abc", "-1", "", "99999999999999999999", str(a)]
    assert _bulk(admin_client, "approve", odd).status_code == 302
    assert data.status(a) == "approved"
    assert "1 comment approved." in text_of(admin_client.get("/admin/comments"))
    assert _bulk_posts(admin_client, "close-comments", [*odd[:-1], str(post_id)]).status_code == 302
    assert data.post_row(post_id)["comments_open"] is False
    assert "1 post(s) updated." in text_of(admin_client.get("/admin/posts"))


def test_bulk_counts_only_posts_that_exist(admin_client, data):
    post_id, _ = data.post()
    _bulk_posts(admin_client, "trash", [post_id, 9999])
    assert "1 post(s) moved to the Trash." in text_of(admin_client.get("/admin/posts"))
    _bulk_posts(admin_client, "trash", [9999])
    assert "0 post(s) moved to the Trash." in text_of(admin_client.get("/admin/posts"))


@pytest.mark.parametrize("field", ["categories", "tags"])
def test_overlong_term_names_are_a_form_error(admin_client, data, field):
    response = _new_post(admin_client, title="Terms", **{field: "ok, " + "x" * 121})
    assert response.status_code == 400
    assert soup(response).select_one(f".field-{field} .field-error") is not None
    assert browser_form(response, "form.post-editor")[field] == "ok, " + "x" * 121
    assert data.count(Post) == 0
    # 120 characters is fine.
    assert _new_post(admin_client, title="Terms", **{field: "x" * 120}).status_code == 302


@pytest.mark.parametrize("config_overrides", [{}, {"TIMEZONE": "Pacific/Kiritimati"}, {"TIMEZONE": "America/New_York"}])
@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59", "1000-01-01T00:00"])
def test_publish_dates_out_of_range_are_a_form_error(admin_client, data, config_overrides, when):
    response = _new_post(admin_client, status="published", published_at=when)
    assert response.status_code == 400
    assert soup(response).select_one(".field-published_at .field-error") is not None
    assert data.count(Post) == 0


def test_overlong_title_is_a_form_error(admin_client, data):
    response = _new_post(admin_client, title="t" * 301)
    assert response.status_code == 400
    assert data.count(Post) == 0
    assert _new_post(admin_client, title="é" * 300).status_code == 302


def test_bad_status_choice_is_a_form_error(admin_client, data):
    response = _new_post(admin_client, status="archived")
    assert response.status_code == 400
    assert soup(response).select_one(".field-status .field-error").get_text() == "Not a valid choice."
    assert data.count(Post) == 0


@pytest.mark.parametrize("url", ["/admin/posts?page=99999999999999999999", "/admin/posts?page=-3", "/admin/posts?page=x",
                                 "/admin/comments?page=99999999999999999999", "/admin/comments?page=0&status=spam"])
def test_odd_page_numbers_are_harmless(admin_client, data, url):
    post_id, _ = data.post("Listed")
    data.comment(post_id, status="pending")
    data.comment(post_id, status="spam")
    response = admin_client.get(url)
    assert response.status_code == 200  # a page number out of range shows the nearest page


@pytest.mark.parametrize("url", ["/admin/comments", "/admin/comments?status=approved", "/admin/posts", "/admin/"])
def test_lists_take_the_same_number_of_queries_however_long(app, admin_client, data, url):
    def queries():
        admin_client.get(url)  # warm up: the session user, site settings
        with count_queries(app, versions=False) as counted:
            assert admin_client.get(url).status_code == 200
        return counted[0]

    def add_rows(n):
        for i in range(n):
            post_id, _ = data.post(f"Post {i}")
            parent = data.comment(post_id, "parent", status="approved")
            data.comment(post_id, "reply", status="pending", parent_id=parent)
            data.linkback(post_id, f"https://other.example/{i}/", status="approved")

    add_rows(1)
    few = queries()
    add_rows(6)
    assert queries() == few


@pytest.mark.parametrize("field", ["categories", "tags"])
def test_term_names_whose_slugs_grow_are_saved(admin_client, data, field):
    # "ﬃ" is one character but becomes "ffi" in an address: 100 of them make a 300-character slug.
    name = "ﬃ" * 100
    response = _new_post(admin_client, title="Ligatures", status="published", **{field: f"{name}, {name}x"})
    assert response.status_code == 302
    model = Category if field == "categories" else Tag
    with data.session() as s:
        slugs = s.scalars(select(model.slug).order_by(model.id)).all()
    assert len(slugs) == 2 and len(set(slugs)) == 2
    assert all(slug.startswith("ffiffi") and len(slug) <= model.slug.type.length for slug in slugs)


def test_a_hand_written_excerpt_is_saved_and_shown_in_listings_and_the_feed(admin_client, data, client):
    post_id, path = data.post("With a summary", body="The long body of the post, which listings would cut.")
    form = browser_form(admin_client.get(f"/admin/posts/{post_id}/edit"), "form.post-editor")
    form.update(excerpt="  A short summary, by hand.  ")
    assert admin_client.post(f"/admin/posts/{post_id}/edit", data=form).status_code == 302
    assert data.post_row(post_id)["excerpt"] == "A short summary, by hand."
    edit_page = admin_client.get(f"/admin/posts/{post_id}/edit").get_data(as_text=True)
    assert "A short summary, by hand.</textarea>" in edit_page
    admin_client.post("/admin/logout", data={"csrf_token": csrf_token(admin_client, "/admin/")})
    listing = client.get("/").get_data(as_text=True)
    assert "A short summary, by hand." in listing and "which listings would cut" not in listing
    assert "<summary>A short summary, by hand.</summary>" in client.get("/feed/").get_data(as_text=True)
