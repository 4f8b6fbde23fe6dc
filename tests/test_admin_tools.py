"""The admin's Tools page: a WordPress export uploaded, imported by a background job, its progress
and summary on a status page; the blog downloaded as a WordPress export.

The uploads go through the real app with CSRF on; the job runs on the app's own back end (a
thread in this process, or RQ on Redis with TEST_REDIS_URL), and the status page is polled the
way a browser would. The last test does the same in a real headless Chromium.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, JobRecord, Post, PostStatus, User
from blogapp.templating import post_path, site_request_context
from blogapp.wxr import import_job
from blogapp.wxr.read import Item, WxrReader

from helpers import unavailable
from conftest import TEST_REDIS_URL, csrf_token

FIXTURE = Path(__file__).parent / "fixtures" / "wordpress" / "wxr-export.xml"
# What the fixture holds (see tests/fixtures/wordpress/PROVENANCE.md): its one author is "admin".
FIXTURE_POSTS, FIXTURE_PAGES, FIXTURE_COMMENTS = 8, 3, 11
SUMMARY = "Imported 8 posts, 3 pages, 11 comments, 2 pingbacks, 1 trackback"
DEADLINE = 30.0  # seconds an import of the fixture may take at most, on a slow machine


# ---------------------------------------------------------------- helpers


# Fail any test during which the app answered 500, even if the test did not look.
pytestmark = pytest.mark.usefixtures("no_server_errors")


def upload(client, data: bytes = None, *, filename="export.xml", token: str | None = "fetch", **fields):
    """POST the file to /admin/tools/import as a browser's form would (CSRF token from the Tools page)."""
    form = {"default_author": "", **fields}
    if token == "fetch":
        token = csrf_token(client, "/admin/tools")
    if token is not None:
        form["csrf_token"] = token
    if data is not None or filename is not None:
        form["file"] = (io.BytesIO(FIXTURE.read_bytes() if data is None else data), filename or "")
    return client.post("/admin/tools/import", data=form, content_type="multipart/form-data")


def status_of(page) -> str:
    return BeautifulSoup(page.get_data(as_text=True), "html.parser").select_one(".import-status")["data-status"]


def wait_until_done(client, url: str) -> BeautifulSoup:
    """Poll the status page, as its own refresh would, until it no longer says running."""
    deadline = time.monotonic() + DEADLINE
    while True:
        page = client.get(url)
        assert page.status_code == 200
        if status_of(page) != "running":
            return BeautifulSoup(page.get_data(as_text=True), "html.parser")
        assert time.monotonic() < deadline, f"the import at {url} was still running after {DEADLINE} s"
        time.sleep(0.05)


def counts_table(soup: BeautifulSoup) -> dict[str, int]:
    return {row.th.get_text(strip=True): int(row.td.get_text(strip=True))
            for row in soup.select("table.import-counts tr[data-count]")}


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def uploads_left(app) -> list[str]:
    folder = Path(app.instance_path) / import_job.UPLOAD_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def job(app, job_id: int) -> JobRecord:
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        db.session.expunge(record)
        return record


def job_id_of(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    match = re.fullmatch(r"/admin/tools/import/(\d+)", urlsplit(response.headers["Location"]).path)
    assert match, response.headers["Location"]
    return int(match.group(1))


# ---------------------------------------------------------------- the page


def test_tools_page_offers_import_and_export(app, admin_client):
    page = admin_client.get("/admin/tools")
    assert page.status_code == 200
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    form = soup.select_one("form.import-form")
    assert form["method"] == "post" and form["action"] == "/admin/tools/import"
    assert form["enctype"] == "multipart/form-data"
    assert form.select_one("input[name=csrf_token][type=hidden]")["value"]
    assert form.select_one("input[type=file][name=file]")
    authors = form.select_one("select[name=default_author]")
    assert [(o["value"], o.get_text()) for o in authors.select("option")] == [("", "Nobody (stop)"), ("1", "Admin (admin)")]
    assert form.select_one("input[type=checkbox][name=dry_run]")
    assert "Files up to 512 MB." in form.get_text()
    assert soup.select_one("a.export-download")["href"] == "/admin/tools/export"
    assert soup.select_one('.admin-nav a[aria-current="page"]').get_text() == "Tools"
    assert admin_client.get("/admin/").status_code == 200
    dashboard = BeautifulSoup(admin_client.get("/admin/").get_data(as_text=True), "html.parser")
    assert dashboard.select_one('.admin-nav a[href="/admin/tools"]').get_text() == "Tools"


@pytest.mark.parametrize("method, path", [
    ("GET", "/admin/tools"), ("POST", "/admin/tools/import"), ("GET", "/admin/tools/import/1"),
    ("GET", "/admin/tools/export"),
])
def test_anonymous_users_are_sent_to_log_in(app, client, method, path):
    data = {"file": (io.BytesIO(FIXTURE.read_bytes()), "export.xml")} if method == "POST" else None
    response = client.open(path, method=method, data=data, content_type="multipart/form-data" if data else None)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"
    assert uploads_left(app) == [] and count(app, JobRecord) == 0 and count(app, Post) == 0


# ---------------------------------------------------------------- importing


def test_upload_is_imported_in_the_background(app, admin_client):
    response = upload(admin_client, filename="../../etc/passwd.xml")
    job_id = job_id_of(response)
    url = f"/admin/tools/import/{job_id}"

    soup = wait_until_done(admin_client, url)
    assert soup.select_one('meta[http-equiv="refresh"]') is None  # done: no more reloading
    assert soup.select_one(".import-summary").get_text().startswith(SUMMARY)
    assert counts_table(soup) == {"Posts": 8, "Pages": 3, "Comments": 11, "Pingbacks": 2, "Trackbacks": 1,
                                  "Webmentions": 0, "Skipped": 0}
    record = job(app, job_id)
    assert record.name == "wxr.import" and record.status == "succeeded"
    assert json.loads(record.result)["counts"]["posts"] == FIXTURE_POSTS
    assert uploads_left(app) == []  # the upload and its progress file are gone
    assert not (Path(app.instance_path).parent / "etc").exists()  # the client's file name was never a path

    assert count(app, Post) == FIXTURE_POSTS
    assert count(app, Comment, Comment.kind == CommentKind.COMMENT.value) == FIXTURE_COMMENTS
    # What readers see: a published imported post with its approved comments, on its public page.
    with app.app_context(), site_request_context(app):
        comment = db.session.scalars(
            select(Comment).join(Post).where(Post.status == PostStatus.PUBLISHED.value,
                                             Comment.status == CommentStatus.APPROVED.value,
                                             Comment.kind == CommentKind.COMMENT.value).order_by(Comment.id)).first()
        path, title, author = post_path(comment.post), comment.post.title, comment.author_name
    reader = app.test_client()
    public = reader.get(path)
    assert public.status_code == 200
    html = BeautifulSoup(public.get_data(as_text=True), "html.parser")
    assert title in html.select_one("h1").get_text()
    assert author in html.get_text()
    assert title in reader.get("/").get_data(as_text=True)

    # The same file again adds nothing.
    again = wait_until_done(admin_client, f"/admin/tools/import/{job_id_of(upload(admin_client))}")
    assert again.select_one(".import-summary").get_text().startswith("Nothing new")
    assert count(app, Post) == FIXTURE_POSTS


def test_a_file_that_is_not_wxr_shows_the_error_and_imports_nothing(app, admin_client):
    job_id = job_id_of(upload(admin_client, b"<html><body>Not an export</body></html>", filename="page.xml"))
    soup = wait_until_done(admin_client, f"/admin/tools/import/{job_id}")
    assert soup.select_one(".import-status")["data-status"] == "failed"
    error = soup.select_one(".import-error").get_text()
    assert error == "not a WordPress export: the file's root element is <html>, an export's is <rss>; nothing was imported"
    assert soup.select_one(".import-summary") is None
    assert count(app, Post) == 0 and count(app, Comment) == 0
    assert uploads_left(app) == []


def test_unknown_authors_stop_the_import_unless_a_user_is_chosen(app, client, auth):
    auth.create("alice")  # the fixture's author is "admin", who is not a user here
    assert auth.login("alice").status_code == 302
    stopped = wait_until_done(client, f"/admin/tools/import/{job_id_of(upload(client))}")
    assert "the file's author admin is not a user here" in stopped.select_one(".import-error").get_text()
    assert count(app, Post) == 0

    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice")).id
    done = wait_until_done(client, f"/admin/tools/import/{job_id_of(upload(client, default_author=str(alice)))}")
    assert done.select_one(".import-summary").get_text().startswith(SUMMARY)
    assert count(app, Post, Post.author_id == alice) == FIXTURE_POSTS


def test_a_dry_run_reports_and_writes_nothing(app, admin_client):
    url = f"/admin/tools/import/{job_id_of(upload(admin_client, dry_run='y'))}"
    assert BeautifulSoup(admin_client.get(url).get_data(as_text=True), "html.parser").h1.get_text() == "Import (dry run)"
    soup = wait_until_done(admin_client, url)
    assert soup.select_one("h1").get_text() == "Import (dry run)"
    assert soup.select_one(".import-summary").get_text().startswith("Would import 8 posts")
    assert counts_table(soup)["Posts"] == FIXTURE_POSTS
    assert count(app, Post) == 0 and count(app, Comment) == 0
    assert uploads_left(app) == []


def test_an_upload_without_the_csrf_token_is_refused(app, admin_client):
    response = upload(admin_client, token=None)
    assert response.status_code == 400
    assert "The form had expired" in response.get_data(as_text=True)
    forged = upload(admin_client, token="not-a-token")
    assert forged.status_code == 400
    assert count(app, JobRecord) == 0 and uploads_left(app) == [] and count(app, Post) == 0


def test_a_form_without_a_file_is_shown_again(app, admin_client):
    response = upload(admin_client, filename=None)
    assert response.status_code == 400
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert soup.select_one(".field-file .field-error").get_text() == "Choose a WordPress export file."
    assert count(app, JobRecord) == 0 and uploads_left(app) == []


@pytest.mark.parametrize("config_overrides", [{"WXR_UPLOAD_MAX_BYTES": 4096}])
def test_a_file_over_the_cap_gets_a_413_page(app, admin_client):
    assert FIXTURE.stat().st_size > 4096
    response = upload(admin_client)
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "WXR_UPLOAD_MAX_BYTES" in text and "4,096 bytes" in text
    assert count(app, JobRecord) == 0 and uploads_left(app) == []
    small = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    assert upload(admin_client, small).status_code == 303  # under the cap: taken


def test_the_status_page_shows_progress_while_the_job_runs(app, admin_client):
    """Each state of the job, as the page shows it (the record and progress file set by hand)."""
    token = secrets.token_urlsafe(24)
    with app.app_context():
        record = JobRecord(name="wxr.import", key=f"wxr.import:{token}", status="queued",
                           args=json.dumps({"args": [token], "kwargs": {}}))
        db.session.add(record)
        db.session.commit()
        job_id = record.id
        import_job.imports_dir().mkdir(parents=True, exist_ok=True)
        import_job.write_progress(token, 4000, 0)
    url = f"/admin/tools/import/{job_id}"

    def page_and_set(**changes):
        page = admin_client.get(url)
        assert page.status_code == 200
        with app.app_context():
            row = db.session.get(JobRecord, job_id)
            for name, value in changes.items():
                setattr(row, name, value)
            db.session.commit()
        return BeautifulSoup(page.get_data(as_text=True), "html.parser")

    waiting = page_and_set(status="running")
    assert waiting.select_one('meta[http-equiv="refresh"]')["content"] == "2"
    assert "Waiting to start" in waiting.select_one(".import-waiting").get_text()

    with app.app_context():
        import_job.write_progress(token, 4000, 1000)
    running = page_and_set(status="succeeded", result=json.dumps({"summary": "Imported 1 post.", "counts": {"posts": 1}}))
    assert running.select_one('meta[http-equiv="refresh"]')["content"] == "2"
    assert running.select_one(".import-running").get_text(" ", strip=True) == "Importing… 25%"
    assert running.select_one("progress")["value"] == "25"
    assert running.select_one(".import-summary") is None

    done = page_and_set(status="failed", result=None, last_error="OperationalError: the disk is full")
    assert done.select_one('meta[http-equiv="refresh"]') is None
    assert done.select_one(".import-summary").get_text() == "Imported 1 post."
    assert counts_table(done) == {"Posts": 1}

    crashed = page_and_set()
    assert crashed.select_one('meta[http-equiv="refresh"]') is None
    assert crashed.select_one(".import-error").get_text() == "The import stopped: OperationalError: the disk is full"

    assert admin_client.get(f"/admin/tools/import/{job_id + 1}").status_code == 404
    with app.app_context():
        other = JobRecord(name="linkback.send", status="succeeded", args=json.dumps({"args": [1], "kwargs": {}}))
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    assert admin_client.get(f"/admin/tools/import/{other_id}").status_code == 404  # not an import


# ---------------------------------------------------------------- exporting


def test_the_export_download_is_a_wxr_file_that_reads_back(app, admin_client):
    wait_until_done(admin_client, f"/admin/tools/import/{job_id_of(upload(admin_client))}")
    assert count(app, Post) == FIXTURE_POSTS

    response = admin_client.get("/admin/tools/export")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/xml"
    assert re.fullmatch(r'attachment; filename="a-smart-practice\.wordpress\.\d{4}-\d{2}-\d{2}\.xml"',
                        response.headers["Content-Disposition"])
    items = [r for r in WxrReader(io.BytesIO(response.get_data())) if isinstance(r, Item)]
    assert len([i for i in items if i.post_type == "post"]) == FIXTURE_POSTS
    assert len([i for i in items if i.post_type == "page"]) == FIXTURE_PAGES
    assert sum(len(i.comments) for i in items if i.post_type == "post") == count(app, Comment)


# ---------------------------------------------------------------- on Redis (RQ)

RQ_QUEUE = "blogapp-test-tools-" + secrets.token_hex(4)


@contextmanager
def signals_kept():
    """RQ's worker installs SIGINT/SIGTERM handlers; pytest keeps its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the RQ back end needs Redis: set TEST_REDIS_URL")
@pytest.mark.parametrize("config_overrides", [{"JOBS_BACKEND": "rq", "REDIS_URL": TEST_REDIS_URL, "JOBS_QUEUE": RQ_QUEUE}])
def test_with_rq_the_worker_imports_the_upload(app, admin_client, runner):
    import redis

    try:
        job_id = job_id_of(upload(admin_client))
        url = f"/admin/tools/import/{job_id}"
        waiting = admin_client.get(url)
        assert status_of(waiting) == "running"  # queued in Redis: nothing runs in the web process
        assert "Waiting to start" in waiting.get_data(as_text=True)
        assert len(uploads_left(app)) == 2  # the upload and its progress file
        with signals_kept():
            worker = runner.invoke(args=["worker", "--burst", "--name", f"{RQ_QUEUE}-worker"])
        assert worker.exit_code == 0, worker.output
        soup = wait_until_done(admin_client, url)
        assert soup.select_one(".import-summary").get_text().startswith(SUMMARY)
        assert count(app, Post) == FIXTURE_POSTS and uploads_left(app) == []
    finally:
        conn = redis.Redis.from_url(TEST_REDIS_URL)
        for key in conn.scan_iter(match=f"*{RQ_QUEUE}*", count=1000):
            conn.delete(key)
        for members_of in ("rq:queues", "rq:workers"):
            for member in conn.smembers(members_of):
                if RQ_QUEUE.encode() in member:
                    conn.srem(members_of, member)
        conn.close()


# ---------------------------------------------------------------- in a real browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "Chromium/chromedriver not installed: apt-get install chromium chromium-driver"


_browser_unavailable = unavailable


@pytest.fixture
def chromium(tmp_path):
    """A headless Chromium that can reach nothing but 127.0.0.1 (as in tests/test_browser.py)."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _browser_unavailable(f"{INSTALL_HINT} (selenium import failed: {exc})")
    if not shutil.which(CHROMIUM) or not shutil.which(CHROMEDRIVER):
        _browser_unavailable(INSTALL_HINT)
    saved_env = os.environ.get("SE_AVOID_STATS")
    os.environ["SE_AVOID_STATS"] = "true"
    dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, never listening: a proxy that refuses
    dead.bind(("127.0.0.1", 0))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-default-apps", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--window-size=1280,900",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                f"--proxy-server=http://127.0.0.1:{dead.getsockname()[1]}",
                "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--disable-breakpad",
                "--disable-field-trial-config", "--metrics-recording-only", "--no-pings",
                "--no-default-browser-check", "--safebrowsing-disable-auto-update",
                "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
                "PasswordLeakDetection,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater",
                "--lang=en-US"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"credentials_enable_service": False,
                                              "profile.password_manager_enabled": False})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        dead.close()
        _browser_unavailable(f"{INSTALL_HINT} (Chromium would not start: {exc.msg})")
    driver.set_page_load_timeout(30)
    try:
        driver.get("about:blank")
        driver.get_log("performance")  # drain what Chromium's start-up page asked for (chrome:// URLs)
        yield driver
        urls = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        stray = [u for u in urls if urlsplit(u).scheme not in ("data", "blob", "about", "chrome-error")
                 and urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
        assert not stray, f"the browser tried to leave 127.0.0.1: {stray}"
    finally:
        driver.quit()
        dead.close()
        if saved_env is None:
            os.environ.pop("SE_AVOID_STATS", None)
        else:
            os.environ["SE_AVOID_STATS"] = saved_env


def test_in_a_browser_an_admin_uploads_an_export_and_sees_the_summary(app, auth, live_server, chromium):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    auth.create()
    driver = chromium
    driver.get(live_server.url + "/admin/login")
    driver.find_element(By.ID, "username").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys("correct horse")
    driver.find_element(By.CSS_SELECTOR, ".login-box button[type=submit]").click()
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".admin-nav")))

    driver.find_element(By.LINK_TEXT, "Tools").click()
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.import-form")))
    assert urlsplit(driver.current_url).path == "/admin/tools"
    driver.find_element(By.CSS_SELECTOR, "form.import-form input[type=file]").send_keys(str(FIXTURE.resolve()))
    driver.find_element(By.CSS_SELECTOR, "form.import-form button[type=submit]").click()

    summary = WebDriverWait(driver, DEADLINE, ignored_exceptions=(WebDriverException,)).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, ".import-summary")))
    assert summary.text.startswith(SUMMARY)
    assert re.fullmatch(r"/admin/tools/import/\d+", urlsplit(driver.current_url).path)
    assert driver.find_element(By.CSS_SELECTOR, "table.import-counts tr[data-count=posts] td").text == "8"
    assert not driver.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert count(app, Post) == FIXTURE_POSTS
