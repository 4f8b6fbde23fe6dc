"""End-to-end tests in a real headless Chromium, driven by Selenium, against the live server.

The browser talks only to the app on 127.0.0.1: every host name other than the loopback
ones resolves to nothing, every non-loopback request goes to a dead proxy on 127.0.0.1,
Chromium's own background services are switched off, and after each test the DevTools
network log is checked for any request that left the loopback address.

Skipped when Chromium, chromedriver or Selenium is missing:
``apt-get install chromium chromium-driver``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from blogapp.extensions import db
from blogapp.models import BlockedDomain, Comment, CommentStatus, LinkbackLog, OutboundLink, Post, save_site_settings
from helpers import add_comment, make_post, unavailable

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as exc:  # pragma: no cover - depends on the machine
    webdriver = None
    SELENIUM_IMPORT_ERROR = exc
else:
    SELENIUM_IMPORT_ERROR = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "Chromium/chromedriver not installed: apt-get install chromium chromium-driver"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = 10  # seconds, for explicit waits
# By name, not id: ids of form fields have clashed with the layout's before (see test_comment_box_has_its_label).
COMMENT_BOX = "form.comment-form textarea[name=content]"


# ------------------------------------------------------------------ the browser

def _dead_port() -> socket.socket:
    """A loopback port that is bound but never listens: connections to it are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, with a fresh profile and no way off the loopback."""
    if SELENIUM_IMPORT_ERROR is not None:
        unavailable(f"{INSTALL_HINT} (selenium import failed: {SELENIUM_IMPORT_ERROR})")
    if not shutil.which(CHROMIUM) or not shutil.which(CHROMEDRIVER):
        unavailable(INSTALL_HINT)

    saved_env = os.environ.get("SE_AVOID_STATS")
    os.environ["SE_AVOID_STATS"] = "true"  # Selenium Manager must not phone home (it is not used anyway)
    dead = _dead_port()
    dead_proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        # Belt and braces against any traffic off the loopback address:
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        f"--proxy-server={dead_proxy}",  # loopback bypasses proxies implicitly; everything else dies here
        "--disable-client-side-phishing-detection",
        "--disable-domain-reliability",
        "--disable-breakpad",
        "--disable-field-trial-config",
        "--metrics-recording-only",
        "--no-pings",
        "--no-default-browser-check",
        "--safebrowsing-disable-auto-update",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
        "PasswordLeakDetection,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"credentials_enable_service": False, "profile.password_manager_enabled": False}
    )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})

    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        dead.close()
        unavailable(f"{INSTALL_HINT} (Chromium would not start: {exc.msg})")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        dead.close()
        if saved_env is None:
            os.environ.pop("SE_AVOID_STATS", None)
        else:
            os.environ["SE_AVOID_STATS"] = saved_env


def _requested_urls(driver) -> list[str]:
    """URLs the pages asked for since the last call, from the DevTools performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _off_loopback(urls: list[str]) -> list[str]:
    bad = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "chrome-error"):
            continue
        if parts.hostname not in LOOPBACK_HOSTS:
            bad.append(url)
    return bad


@pytest.fixture
def driver(browser, live_server):
    """The module's browser, on this test's live server, with no cookies and a desktop window."""
    browser.set_window_size(*DESKTOP)
    browser.get(live_server.url + "/")  # a page of ours, to scope the cookie jar
    browser.delete_all_cookies()
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # also other ports' leftovers
    _requested_urls(browser)  # drain the log
    yield browser
    try:
        stray = _off_loopback(_requested_urls(browser))
    finally:
        browser.get("about:blank")
        browser.delete_all_cookies()
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    assert not stray, f"the browser tried to leave 127.0.0.1: {stray}"


# ------------------------------------------------------------------ helpers

class Site:
    """Navigation that stays on the live server."""

    def __init__(self, driver, server):
        self.driver, self.server = driver, server
        self.origin = urlsplit(server.url).netloc

    def open(self, path: str):
        assert path.startswith("/") and not path.startswith("//"), path
        self.driver.get(self.server.url + path)
        self.check_origin()

    def check_origin(self):
        here = urlsplit(self.driver.current_url)
        assert here.netloc == self.origin, f"left the live server: {self.driver.current_url}"

    @property
    def path(self) -> str:
        return urlsplit(self.driver.current_url).path

    @property
    def fragment(self) -> str:
        return urlsplit(self.driver.current_url).fragment

    def follow(self, element):
        """Click a link or submit button and wait for the next page to replace this one."""
        href = element.get_attribute("href")
        if href:
            assert urlsplit(href).netloc == self.origin, f"refusing to follow {href}"
        # Mark this document, so the wait below knows when another one has fully loaded. (Waiting
        # for an old element to go stale races Chromium's navigation: it can fail with "Node with
        # given id does not belong to the document" instead of the stale element error.)
        marker = secrets.token_hex(8)
        self.driver.execute_script("window.__e2eDocument = arguments[0]", marker)
        self.click(element)
        WebDriverWait(self.driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script(
                "return window.__e2eDocument !== arguments[0] && document.readyState === 'complete'", marker
            )
        )
        self.check_origin()

    def click(self, element):
        # The stylesheet asks for smooth scrolling; WebDriver's own scroll-then-click would race it.
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
        element.click()

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, selector: str):
        return WebDriverWait(self.driver, WAIT).until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))

    def wait_text(self, selector: str, text: str):
        WebDriverWait(self.driver, WAIT).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))
        return self.css(selector)

    def type(self, selector: str, text: str):
        field = self.css(selector)
        field.clear()
        field.send_keys(text)
        return field

    def value(self, selector: str) -> str:
        return self.css(selector).get_property("value")

    def login(self, username="admin", password="correct horse"):
        self.open("/admin/login")
        self.type("#username", username)
        self.type("#password", password)
        self.follow(self.css(".login-box button[type=submit]"))
        self.wait_for(".admin-nav")
        assert self.path == "/admin/"

    def logout(self):
        self.follow(self.css("form.logout button[type=submit]"))
        self.wait_text("main .notice-info", "You are logged out.")
        assert not self.all(".admin-nav")


@pytest.fixture
def site(driver, live_server):
    return Site(driver, live_server)


def fresh(stmt):
    """Run a query in the test's own session, seeing what the live server has committed."""
    db.session.rollback()
    try:
        return db.session.scalar(stmt)
    finally:
        db.session.rollback()


# ------------------------------------------------------------------ readers

def test_comment_form_keeps_input_on_error_then_holds_comment_for_its_author(site, ctx):
    post_id, path = make_post(title="Open for comments", body="Tell me what you think.")
    site.open(path)

    site.type(COMMENT_BOX, "First line of my comment.\n\nA second *paragraph*.")
    site.type("#author_name", "Ann Reader")
    site.type("#author_email", "ann-at-example.org")
    site.type("#author_url", "https://ann.example/")
    site.follow(site.css("form.comment-form button[type=submit]"))

    # The post page comes back (as the form's answer), the mistake marked next to its field,
    # everything typed kept.
    assert site.path == f"/posts/{post_id}/comments"
    assert site.fragment == "respond"  # the page opens at the form
    assert site.css("h1.entry-title").text == "Open for comments"
    site.wait_for("#respond .form-error")
    WebDriverWait(site.driver, WAIT).until(  # the first mistake gets the focus
        lambda d: d.switch_to.active_element.get_attribute("id") == "author_email")
    email_field = site.css("p.field-author_email")
    assert "has-error" in email_field.get_attribute("class")
    error = email_field.find_element(By.CSS_SELECTOR, ".field-error")
    assert error.text == "That email address does not look right."
    assert error.is_displayed()
    email_input = site.css("#author_email")
    assert email_input.get_attribute("aria-invalid") == "true"
    assert email_input.get_attribute("aria-describedby") == error.get_attribute("id")
    assert site.value(COMMENT_BOX) == "First line of my comment.\n\nA second *paragraph*."
    assert site.value("#author_name") == "Ann Reader"
    assert site.value("#author_url") == "https://ann.example/"
    assert site.value("#author_email") == "ann-at-example.org"
    assert not site.all("p.field-content.has-error, p.field-author_name.has-error, p.field-author_url.has-error")
    assert fresh(select(func.count(Comment.id))) == 0

    # Fixed and sent again: back on the post, their comment shown to them as held.
    site.type("#author_email", "ann@example.org")
    site.follow(site.css("form.comment-form button[type=submit]"))
    assert site.path == path
    assert site.fragment.startswith("comment-")
    comment_id = int(site.fragment.removeprefix("comment-"))
    notice = site.wait_text("main .notice-info", "Thank you. Your comment is awaiting moderation.")
    assert notice.is_displayed()
    mine = site.css(f"li#comment-{comment_id}")
    assert "comment-pending" in mine.get_attribute("class")
    assert mine.find_element(By.CSS_SELECTOR, ".comment-awaiting-moderation").text == "Your comment is awaiting moderation."
    assert mine.find_element(By.CSS_SELECTOR, ".comment-author").text == "Ann Reader"
    assert mine.find_element(By.CSS_SELECTOR, ".comment-content em").text == "paragraph"
    assert not mine.find_elements(By.CSS_SELECTOR, ".comment-reply-link")  # held comments take no replies
    # The form is empty again, ready for another comment.
    assert site.value(COMMENT_BOX) == ""
    assert fresh(select(Comment.status).where(Comment.id == comment_id)) == CommentStatus.PENDING.value

    # Another visitor (no cookies) sees neither the comment nor the notice.
    site.driver.delete_all_cookies()
    site.open(path)
    site.wait_for("#respond")
    assert not site.all(f"#comment-{comment_id}")
    assert not site.all(".comment-awaiting-moderation, main .notice")
    assert "Ann Reader" not in site.css("#comments").text


def test_reply_nests_under_its_parent(site, ctx):
    save_site_settings({"COMMENT_MODERATION": "approve"})
    db.session.commit()
    post_id, path = make_post(title="Threads", body="Talk amongst yourselves.")
    parent_id = add_comment(post_id, "The first word.", name="Alice Parent")
    other_id = add_comment(post_id, "Another thought.", name="Bob Other", minutes=5)
    site.open(path)

    assert site.css(".comment-reply-title").text.startswith("Leave a Reply")
    # Reply opens the form under the comment, in place (without JavaScript the link reloads the
    # page with the form set to reply: tests/test_blog.py); Cancel puts it back.
    site.driver.execute_script("window.__samePage = true")
    site.click(site.css(f"#comment-{other_id} > .comment-body .comment-reply-link"))
    assert site.css(f"#comment-{other_id} > #respond")  # right under Bob's comment
    assert site.css("#parent_id").get_property("value") == str(other_id)
    assert site.driver.switch_to.active_element.get_attribute("name") == "content"
    site.click(site.css(".comment-reply-title a"))
    assert not site.all(f"#comment-{other_id} > #respond") and site.css("#respond")
    assert site.css(".comment-reply-title").text.startswith("Leave a Reply")
    assert site.css("#parent_id").get_property("value") == ""
    site.click(site.css(f"#comment-{parent_id} > .comment-body .comment-reply-link"))
    assert site.css(f"#comment-{parent_id} > #respond")
    assert site.wait_text(".comment-reply-title", "Reply to Alice Parent")
    assert site.css("#parent_id").get_property("value") == str(parent_id)
    assert site.css(".comment-reply-title a").text == "Cancel reply"
    assert site.driver.execute_script("return window.__samePage === true")  # no page was loaded

    site.type(COMMENT_BOX, "I agree with Alice.")
    site.type("#author_name", "Carol Reply")
    site.type("#author_email", "carol@example.org")
    site.follow(site.css("form.comment-form button[type=submit]"))

    assert site.path == path
    reply_id = int(site.fragment.removeprefix("comment-"))
    reply = site.css(f"#comment-{parent_id} > ol.children > li#comment-{reply_id}")
    assert "depth-2" in reply.get_attribute("class")
    assert reply.find_element(By.CSS_SELECTOR, ".comment-content").text == "I agree with Alice."
    assert reply.find_element(By.CSS_SELECTOR, ".comment-author").text == "Carol Reply"
    assert not reply.find_elements(By.CSS_SELECTOR, ".comment-awaiting-moderation")  # published at once
    assert not site.all(f"#comment-{other_id} ol.children")
    assert site.css(".comment-reply-title").text.startswith("Leave a Reply")  # the form is back to a new thread
    assert fresh(select(Comment.parent_id).where(Comment.id == reply_id)) == parent_id

    # An anonymous reader sees the same thread.
    site.driver.delete_all_cookies()
    site.open(path)
    assert site.css(f"#comment-{parent_id} > ol.children > li#comment-{reply_id}")


def test_save_my_name_email_and_website_fills_the_next_form(site, ctx):
    save_site_settings({"COMMENT_MODERATION": "approve"})
    db.session.commit()
    first_id, first = make_post(title="First", body="One.")
    _, second = make_post(title="Second", body="Two.")
    site.open(first)
    consent = site.css("#save-commenter")
    assert consent.is_displayed() and not consent.is_selected()  # opt-in, shown by the script
    site.type(COMMENT_BOX, "Remember me.")
    site.type("#author_name", "Dana Keep")
    site.type("#author_email", "dana@example.org")
    site.type("#author_url", "https://dana.example/")
    site.click(consent)
    site.follow(site.css("form.comment-form button[type=submit]"))
    cookie = site.driver.get_cookie("comment_author")
    assert cookie is not None and cookie["sameSite"] == "Lax"

    site.open(second)  # a page from the cache, filled here by the browser
    assert (site.value("#author_name"), site.value("#author_email"), site.value("#author_url")) == (
        "Dana Keep", "dana@example.org", "https://dana.example/")
    assert site.css("#save-commenter").is_selected()
    # Unticked and sent: forgotten.
    site.type(COMMENT_BOX, "Forget me.")
    site.click(site.css("#save-commenter"))
    site.follow(site.css("form.comment-form button[type=submit]"))
    assert site.driver.get_cookie("comment_author") is None
    site.open(first)
    assert site.value("#author_name") == "" and not site.css("#save-commenter").is_selected()
    assert fresh(select(func.count(Comment.id))) == 2


def test_closed_post_ends_with_comments_closed_and_has_no_form(site, ctx):
    post_id, path = make_post(title="Closed for comments", body="No more, thanks.", comments_open=False)
    add_comment(post_id, "Said before it closed.", name="Early Bird")
    site.open(path)

    section = site.wait_for("#comments")
    assert "Said before it closed." in section.text
    last = site.driver.execute_script("return document.querySelector('#comments').lastElementChild")
    assert last.tag_name == "p" and "no-comments" in last.get_attribute("class")
    assert last.text == "Comments are closed."
    assert last.is_displayed()
    assert not site.all("#respond, form.comment-form, #comments textarea, #comments input")
    assert not site.all(".comment-reply-link")


def test_comment_box_has_its_label(site, ctx):
    _, path = make_post(title="Labelled", body="Body.")
    site.open(path)
    box = site.css(COMMENT_BOX)
    duplicates = site.driver.execute_script(
        "const seen = {}; document.querySelectorAll('[id]').forEach(e => seen[e.id] = (seen[e.id] || 0) + 1);"
        "return Object.keys(seen).filter(id => seen[id] > 1);"
    )
    labels = site.driver.execute_script("return Array.from(arguments[0].labels).map(l => l.textContent.trim())", box)
    site.click(site.css("p.field-content label"))  # clicking a field's label puts the cursor in it
    focused = site.driver.switch_to.active_element == box
    # The comment box once had id "content", as did <main>: its label then named <main>.
    assert (duplicates, labels, focused) == ([], ["Comment"], True)
    skip_target = site.driver.execute_script(
        "return document.querySelector(document.querySelector('a.skip-link').getAttribute('href'))"
    )
    assert skip_target is not None and skip_target.tag_name == "main"


# ------------------------------------------------------------------ the dashboard

def test_admin_writes_previews_publishes_then_closes_comments(site, auth, ctx):
    auth.create()
    site.login()
    site.open("/admin/posts")
    site.follow(site.css("h1 a.button"))  # "Add New"
    assert site.path == "/admin/posts/new"
    assert site.css("h1").text == "Add New Post"

    site.type("#title", "Written in the Browser")
    site.type("#body", "Hello *world*.\n\nA list:\n\n- one\n- **two**\n")
    site.follow(site.css(".post-editor button[name=preview]"))

    # The preview shows rendered Markdown; nothing is stored yet and the text is kept.
    preview = site.wait_for("section.preview")
    assert preview.find_element(By.CSS_SELECTOR, ".entry-title").text == "Written in the Browser"
    assert preview.find_element(By.CSS_SELECTOR, ".entry-content em").text == "world"
    assert [li.text for li in preview.find_elements(By.CSS_SELECTOR, ".entry-content li")] == ["one", "two"]
    assert preview.find_element(By.CSS_SELECTOR, ".entry-content li strong").text == "two"
    assert site.value("#title") == "Written in the Browser"
    assert site.value("#body").startswith("Hello *world*.")
    assert fresh(select(func.count(Post.id))) == 0

    site.click(site.css("input[name=status][value=published]"))
    assert site.css("#comments_open").is_selected()  # open by default
    site.follow(site.css(".post-editor button[name=save]"))

    site.wait_text("main .notice-success", "Post published.")
    assert site.css("h1").text == "Edit Post"
    post_id = fresh(select(Post.id).where(Post.title == "Written in the Browser"))
    assert post_id is not None
    assert site.path == f"/admin/posts/{post_id}/edit"
    assert fresh(select(Post.status).where(Post.id == post_id)) == "published"
    link = site.css("p.permalink a")
    public = urlsplit(link.text)
    assert (public.scheme, public.netloc) == ("http", "blog.test")  # shown as the public address...
    permalink_path = urlsplit(link.get_attribute("href")).path  # ...linked by path, so it opens here
    assert permalink_path == public.path
    assert permalink_path.endswith("/written-in-the-browser/")

    # A reader (logged out) opens the permalink.
    site.logout()
    site.open(permalink_path)
    assert site.css("h1.entry-title").text == "Written in the Browser"
    assert site.css(".entry-content em").text == "world"
    assert not site.all(".notice-warning")  # not a preview
    assert site.css("form.comment-form")

    # Back in the editor: close comments.
    site.login()
    site.open(f"/admin/posts/{post_id}/edit")
    box = site.css("#comments_open")
    assert box.is_selected()
    site.click(box)
    assert not box.is_selected()
    site.follow(site.css(".post-editor button[name=save]"))
    site.wait_text("main .notice-success", "Post updated.")
    assert not site.css("#comments_open").is_selected()
    assert fresh(select(Post.comments_open).where(Post.id == post_id)) is False

    site.logout()
    site.open(permalink_path)
    closed = site.wait_for("#comments .no-comments")
    assert closed.text == "Comments are closed."
    assert not site.all("form.comment-form")


def test_admin_approves_pending_comment(site, auth, ctx):
    post_id, path = make_post(title="Moderate me", body="Body.")
    add_comment(post_id, "Already public.", name="Old Friend", minutes=-5)
    held_id = add_comment(post_id, "Please let me in.", name="Pat Pending", status=CommentStatus.PENDING)
    auth.create()
    site.login()

    site.follow(site.css(".admin-nav a[href='/admin/comments']"))
    assert site.css(".tabs a[aria-current=page]").text.startswith("Pending")
    bubble = site.css(".admin-nav .pending-count")
    assert bubble.text == "1"
    row = site.css(f"tr#c{held_id}")
    assert "Pat Pending" in row.find_element(By.CSS_SELECTOR, "td.author").text
    assert row.find_element(By.CSS_SELECTOR, ".comment-text").text == "Please let me in."
    assert len(site.all("table.comments-table tbody tr[id]")) == 1  # only the held one

    site.follow(row.find_element(By.CSS_SELECTOR, "button.action-approve"))
    site.wait_text("main .notice-success", "1 comment approved.")
    assert site.css(".tabs a[aria-current=page]").text.startswith("Pending")  # back on the same tab
    assert site.css(".admin-nav .pending-count").text == "0"
    assert not site.all(f"tr#c{held_id}")
    assert "No pending comments." in site.css("table.comments-table").text
    assert fresh(select(Comment.status).where(Comment.id == held_id)) == CommentStatus.APPROVED.value

    site.logout()
    site.open(path)
    shown = site.css(f"li#comment-{held_id}")
    assert shown.find_element(By.CSS_SELECTOR, ".comment-content").text == "Please let me in."
    assert not shown.find_elements(By.CSS_SELECTOR, ".comment-awaiting-moderation")
    assert site.css(".comments-title").text == "2 Comments"


def test_admin_selects_all_trashes_then_undoes(site, auth, ctx):
    """The select-all box (a script) and Undo, in a real browser."""
    post_id, _ = make_post(title="Busy post", body="Body.")
    held = [add_comment(post_id, f"Held {n}.", name=f"Visitor {n}", status=CommentStatus.PENDING, minutes=-n)
            for n in range(3)]
    auth.create()
    site.login()
    site.open("/admin/comments")
    select_all = site.css("thead input.select-all")
    assert select_all.is_displayed()  # shown by the script (hidden without it)
    site.click(select_all)
    assert all(box.is_selected() for box in site.all("tbody input[name=ids]"))
    site.click(site.all("tbody input[name=ids]")[0])  # one unticked: "all" is no longer true
    assert not select_all.is_selected()
    site.click(select_all)
    Select(site.css("#bulk-action")).select_by_value("trash")
    site.follow(site.css("#bulk-form button[type=submit]"))
    site.wait_text("main .notice-success", "3 comments moved to the trash.")
    assert [fresh(select(Comment.status).where(Comment.id == i)) for i in held] == ["trash"] * 3
    site.follow(site.css("form.notice-undo button.action-undo"))
    site.wait_text("main .notice-success", "3 comments restored.")
    assert [fresh(select(Comment.status).where(Comment.id == i)) for i in held] == ["pending"] * 3
    assert len(site.all("table.comments-table tbody tr[id]")) == 3


def test_admin_toolbar_on_a_post_leads_to_its_editor(site, auth, ctx):
    post_id, path = make_post(title="Toolbar post", body="Body.")
    add_comment(post_id, "Wait for me.", status=CommentStatus.PENDING)
    site.open(path)
    assert not site.all("nav.admin-toolbar")  # a reader's page
    auth.create()
    site.login()
    site.open(path)
    bar = site.css("nav.admin-toolbar")
    assert bar.is_displayed() and bar.location["y"] < 50  # at the top of the page
    assert site.css("nav.admin-toolbar .pending-count").text == "1"
    site.follow(site.css("nav.admin-toolbar a.toolbar-edit"))
    assert site.path == f"/admin/posts/{post_id}/edit"
    assert site.value("#title") == "Toolbar post"


def test_linkbacks_sent_refresh_themselves_while_one_is_pending(site, auth, ctx):
    """The editor's table follows a pending send to its end without a reload of the page."""
    post_id, _ = make_post(title="Linking post", body="A post whose one send is written below.")
    row = OutboundLink(post_id=post_id, source_url="http://blog.test/x/", target_url="http://127.0.0.1:9/page",
                       target_hash="f" * 64, linked=True, state="pending", message="Waiting to be sent.")
    db.session.add(row)
    db.session.commit()
    auth.create()
    site.login()
    site.open(f"/admin/posts/{post_id}/edit")
    assert site.css(f"#outbound-{row.id} .state").text == "pending"
    site.driver.execute_script("window.__samePage = true")
    db.session.execute(update(OutboundLink).where(OutboundLink.id == row.id).values(
        state="sent", protocol="webmention", code=202, message="Accepted."))
    db.session.commit()
    WebDriverWait(site.driver, WAIT).until(lambda d: d.find_element(
        By.CSS_SELECTOR, f"#outbound-{row.id} .state").text == "sent")
    assert site.driver.execute_script("return window.__samePage === true")  # refreshed in place
    assert site.css("section#linkbacks").get_attribute("data-pending") == "0"  # and it stops asking


def test_reader_searches_from_the_sidebar(site, ctx):
    make_post(title="Orchid care in winter", body="Water the orchid sparingly in winter.")
    make_post(title="Tax season", body="Nothing about plants here.")
    site.open("/")
    site.type("#sidebar-search", "orchid winter")
    site.follow(site.css(".widget-search button[type=submit]"))
    assert site.path == "/" and "s=orchid+winter" in site.driver.current_url
    assert "orchid winter" in site.css("h1").text
    titles = [t.text for t in site.all("h2.entry-title")]
    assert titles == ["Orchid care in winter"]
    assert [m.text for m in site.all("h2.entry-title mark")] == ["Orchid", "winter"]
    site.type("#sidebar-search", "nothing-matches-this")
    site.follow(site.css(".widget-search button[type=submit]"))
    assert not site.all("h2.entry-title") and site.all("main form.search-form")  # said, and the box again


def test_admin_trashes_restores_and_deletes_a_post_for_good(site, auth, ctx):
    post_id, path = make_post(title="Trash me", body="Body.")
    auth.create()
    site.login()
    site.open(f"/admin/posts/{post_id}/edit")
    site.follow(site.css("form.danger-zone button[type=submit]"))
    site.wait_text("main .notice-success", "moved to the Trash")
    site.follow(site.css(".tabs a[href$='status=trash']"))
    assert [t.text for t in site.all("table.posts-table .row-title")] == ["Trash me"]
    site.follow(site.css("button.action-restore"))
    site.wait_text("main .notice-success", "restored from the Trash as a draft")
    assert site.path == f"/admin/posts/{post_id}/edit"
    site.follow(site.css("form.danger-zone button[type=submit]"))
    site.open("/admin/posts?status=trash")
    site.follow(site.css("a.action-delete"))
    assert site.css("h1").text == "Delete permanently?"
    assert fresh(select(func.count(Post.id))) == 1  # asking changed nothing
    site.follow(site.css("form.confirm-delete button[type=submit]"))
    site.wait_text("main .notice-success", "Deleted “Trash me”.")
    assert fresh(select(func.count(Post.id))) == 0


def test_admin_sets_discussion_keys_and_moderates_from_the_dashboard(site, auth, ctx):
    post_id, _ = make_post(title="Busy", body="Body.")
    held = add_comment(post_id, "Cheap watches here.", name="Spammy", status=CommentStatus.PENDING)
    auth.create()
    site.login()
    site.open("/admin/settings")
    box = site.css("#COMMENT_DISALLOWED_KEYS")
    box.clear()
    box.send_keys("casino\ncheap pills")
    site.follow(site.css("form.narrow-form button[type=submit]"))
    site.wait_text("main .notice-success", "Settings saved.")
    assert site.value("#COMMENT_DISALLOWED_KEYS") == "casino\ncheap pills"
    site.open("/admin/")
    item = site.css(f"#pending-{held}")
    site.follow(item.find_element(By.CSS_SELECTOR, "button.action-spam"))
    site.wait_text("main .notice-success", "1 comment marked as spam.")
    assert site.path == "/admin/" and not site.all(f"#pending-{held}")
    assert fresh(select(Comment.status).where(Comment.id == held)) == "spam"


def test_admin_blocks_a_host_from_the_log_and_confirms_a_mailed_approval(site, auth, ctx):
    post_id, path = make_post(title="Pinged", body="Body.")
    db.session.add(LinkbackLog(protocol="pingback", source_url="http://spam.example/x", source_host="spam.example",
                               target_url="http://blog.test" + path, post_id=post_id, outcome="refused", fault_code=17))
    held = add_comment(post_id, "Please approve me.", name="Pat", status=CommentStatus.PENDING)
    db.session.commit()
    auth.create()
    site.login()
    site.open("/admin/linkbacks")
    site.follow(site.css("table.linkback-log form.block-row button"))
    site.wait_text("main .notice-success", "Linkbacks from spam.example and its subdomains are now refused.")
    assert not site.all("table.linkback-log form.block-row")  # blocked now: no button
    assert fresh(select(BlockedDomain.domain)) == "spam.example"
    # The page an admin's mail links to: it asks, and the button does it.
    site.open(f"/admin/notify/comments/{held}/approve")
    assert site.css("h1").text == "Approve this comment?"
    assert fresh(select(Comment.status).where(Comment.id == held)) == "pending"  # opening it changed nothing
    site.follow(site.css("form.notify-confirm button[type=submit]"))
    assert fresh(select(Comment.status).where(Comment.id == held)) == "approved"


# ------------------------------------------------------------------ small screens

def test_post_page_fits_a_phone(site, ctx, tmp_path):
    body = (
        "A post with the things that tend to break small screens.\n\n"
        "See https://example.org/a/very/long/address/that/does/not/break/anywhere/at/all/unless/the/css/allows/it\n\n"
        "```\nsome_code = call_with_a_long_line(argument_one, argument_two, argument_three, argument_four)\n```\n\n"
        "| Column one | Column two | Column three | Column four |\n|---|---|---|---|\n| a | b | c | d |\n"
    )
    post_id, path = make_post(title="Small Screens, Long Words: Pneumonoultramicroscopicsilicovolcanoconiosis", body=body)
    parent = add_comment(post_id, "Supercalifragilisticexpialidocious" * 3, name="Long Name " * 5)
    child = add_comment(post_id, "A reply.", name="Replier", parent_id=parent, minutes=1)
    add_comment(post_id, "A reply to the reply.", name="Deep", parent_id=child, minutes=2)

    site.driver.set_window_size(*PHONE)
    WebDriverWait(site.driver, WAIT).until(lambda d: d.execute_script("return window.innerWidth") <= PHONE[0])
    site.open(path)
    site.wait_for("form.comment-form")

    metrics = site.driver.execute_script(
        "const d = document.documentElement;"
        "return {scroll: d.scrollWidth, client: d.clientWidth, inner: window.innerWidth,"
        "        body: document.body.scrollWidth};"
    )
    site.driver.save_screenshot(str(tmp_path / "post-phone.png"))
    assert 300 <= metrics["inner"] <= PHONE[0], metrics
    assert metrics["scroll"] <= metrics["inner"], f"the page scrolls sideways on a phone: {metrics}"
    assert metrics["scroll"] <= metrics["client"], f"the page scrolls sideways on a phone: {metrics}"

    fields = "form.comment-form textarea[name=content], #author_name, #author_email, #author_url, form.comment-form button[type=submit]"
    boxes = site.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => {"
        "  const r = e.getBoundingClientRect(); return {id: e.id || e.tagName, left: r.left, right: r.right, width: r.width};"
        "});",
        fields,
    )
    assert len(boxes) == 5
    width = metrics["client"]
    for box in boxes:
        assert box["width"] > 0, box
        assert box["left"] >= 0 and box["right"] <= width, f"{box['id']} does not fit the {width}px viewport: {box}"
    assert (tmp_path / "post-phone.png").stat().st_size > 0
