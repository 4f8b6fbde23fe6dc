"""Build a small but varied site on the real WordPress peer, and export it as WXR.

Plain helpers (no pytest fixtures), for tests and for regenerating
``tests/fixtures/wordpress/wxr-export.xml``. They drive the peer in ``shared/peers/wordpress``
(its README describes it) through its own scripts, its XML-RPC API and its public comment form,
all on loopback. The peer must already be running (``up.sh``) and the scripts need root.

    site = build_site(peer_dir)             # ~8 s; returns ids, permalinks, slugs, the marker
    xml = export_site(peer_dir)             # bytes, exactly what ``wp.sh export`` wrote
    rows = list_comments(peer_dir, site["posts"]["classic"]["id"])

Every title and slug carries ``marker`` (random unless given), so repeated builds on the same
WordPress never collide.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xmlrpc.client
from pathlib import Path

SCRIPT_TIMEOUT = 120
ADMIN_USER = os.environ.get("WP_PEER_ADMIN_USER", "admin")
ADMIN_PASS = os.environ.get("WP_PEER_ADMIN_PASS", "admin-pass")


def peer_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('WP_PEER_PORT', '8090')}"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def run_script(peer_dir: Path, script: str, *args: str) -> bytes:
    """Run one of the peer's scripts; its stdout as bytes (raises with stderr on failure)."""
    result = subprocess.run(["bash", str(Path(peer_dir) / script), *args], capture_output=True,
                            timeout=SCRIPT_TIMEOUT, env=_env(), stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{script} {args!r} failed ({result.returncode}):\n"
                           f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}")
    return result.stdout


def _json(peer_dir: Path, script: str, *args: str) -> dict:
    return json.loads(run_script(peer_dir, script, *args))


def export_site(peer_dir: Path) -> bytes:
    """WordPress's own WXR export of the whole site (Tools > Export > All content), unchanged."""
    return run_script(peer_dir, "wp.sh", "export")


def list_comments(peer_dir: Path, post_id_or_url: int | str) -> list[dict]:
    """Every comment WordPress recorded on the post, any type and status (``list_comments.sh``)."""
    out = run_script(peer_dir, "list_comments.sh", str(post_id_or_url)).decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def publish(peer_dir: Path, title: str, body: str, *options: str) -> dict:
    """Publish a post as the admin, its pings sent now; ``publish_post.sh --json``'s answer."""
    return _json(peer_dir, "publish_post.sh", "--json", *options, title, body)


def post_info(peer_dir: Path, post_id_or_url: int | str) -> dict:
    return _json(peer_dir, "wp.sh", "post", str(post_id_or_url))


def add_comment(peer_dir: Path, post: int | str, author: str, text: str, *, parent: int = 0,
                status: str = "approve") -> int:
    """A reader's comment inserted by ``wp.sh comment`` (email = name-derived @example.org, no URL)."""
    args = ["comment", str(post), author, text, "--status", status]
    if parent:
        args += ["--parent", str(parent)]
    return int(_json(peer_dir, "wp.sh", *args)["comment_id"])


def xmlrpc_proxy() -> xmlrpc.client.ServerProxy:
    # xmlrpc.client connects directly (it does not read proxy variables).
    return xmlrpc.client.ServerProxy(peer_url() + "/xmlrpc.php", allow_none=True)


def xmlrpc_call(method: str, *args):
    """``method(blog_id=1, admin, password, *args)`` on WordPress's XML-RPC API."""
    return getattr(xmlrpc_proxy(), method)(1, ADMIN_USER, ADMIN_PASS, *args)


def post_comment_form(post_id: int, author: str, email: str, url: str, text: str, parent: int = 0) -> int:
    """Post a comment through the public form (``wp-comments-post.php``), as a browser would.

    WordPress answers with a redirect to ``…#comment-N``; returns N. A first-time commenter is
    held for moderation (``comment_previously_approved``)."""
    data = urllib.parse.urlencode({
        "comment": text, "author": author, "email": email, "url": url, "submit": "Post Comment",
        "comment_post_ID": str(post_id), "comment_parent": str(parent),
    }).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    req = urllib.request.Request(peer_url() + "/wp-comments-post.php", data=data,
                                 headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) wordpress_site.py"})
    try:
        with opener.open(req, timeout=30) as resp:
            body = resp.read().decode(errors="replace")
            raise RuntimeError(f"comment form answered {resp.status} without a redirect: {body[:500]}")
    except urllib.error.HTTPError as exc:
        if exc.code not in (301, 302, 303):
            raise RuntimeError(f"comment form answered {exc.code}: {exc.read()[:500]!r}") from exc
        location = exc.headers.get("Location", "")
    m = re.search(r"#comment-(\d+)$", location)
    if not m:
        raise RuntimeError(f"no comment id in the redirect {location!r}")
    return int(m.group(1))


def _wait_for_comment(peer_dir: Path, post_id: int, kind: str, author_url: str, timeout: float = 15.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        rows = [r for r in list_comments(peer_dir, post_id) if r["type"] == kind and r["author_url"] == author_url]
        if rows:
            return rows[0]
        if time.monotonic() > end:
            raise RuntimeError(f"no {kind} from {author_url} on post {post_id}")
        time.sleep(0.3)


def build_site(peer_dir: Path, marker: str | None = None) -> dict:
    """Build the site on the running peer; returns what it made.

    The result: ``{"marker", "base_url", "posts": {key: {id, title, slug, permalink, ...}},
    "comments": {name: comment_id}}``. Keys of ``posts``: ``classic`` (paragraphs without <p>, a
    [caption], a threaded discussion 4 levels deep, two received pingbacks), ``shortcodes`` (an
    unknown [myplugin] shortcode, a link to ``classic``, held/spam/trash comments, a received
    trackback), ``blocks`` (block-editor markup, links to ``classic``, sends the trackback),
    ``closed`` (comments and pings closed), ``renamed`` (slug changed after publishing, so
    WordPress keeps ``_wp_old_slug``), ``draft`` (a draft), ``about`` (a page) and ``deferred``
    (published with stock, deferred pings that are never sent, so it keeps ``_pingme`` and
    ``_encloseme``). Spam comments are made too, but WordPress's export leaves them out.
    """
    peer_dir = Path(peer_dir)
    m = marker or secrets.token_hex(3)
    posts: dict[str, dict] = {}
    comments: dict[str, int] = {}

    def remember(key: str, info: dict, **extra) -> dict:
        slug = info["permalink"].rstrip("/").rsplit("/", 1)[-1] if "permalink" in info else None
        posts[key] = {"id": info["id"], "title": info.get("title"), "slug": slug,
                      "permalink": info.get("permalink"), "trackback_url": info.get("trackback_url"), **extra}
        return posts[key]

    # 1. Classic-editor text: paragraphs separated by blank lines, no <p>, a lone newline inside a
    #    paragraph (wpautop turns it into <br />), inline HTML and a [caption] shortcode.
    classic_title = f"Classic paragraphs {m}"
    classic_body = (
        f"This is the first paragraph of the classic post {m}. It has <strong>bold</strong> and "
        "<em>emphasis</em> and an <a href=\"http://127.0.0.1:9/elsewhere\">outside link</a>.\n"
        "This line follows a single newline inside the same paragraph.\n\n"
        "The second paragraph comes after a blank line.\n\n"
        "[caption id=\"attachment_1\" align=\"alignnone\" width=\"300\"]"
        "<img src=\"http://127.0.0.1:8090/wp-content/uploads/x.jpg\" alt=\"x\" width=\"300\" height=\"200\" />"
        " A caption text[/caption]\n\n"
        "<ul>\n<li>a list item</li>\n<li>another item</li>\n</ul>\n\n"
        "The last paragraph &amp; an entity, a quote &#8220;like this&#8221;."
    )
    info = publish(peer_dir, classic_title, classic_body, "--no-pings")
    remember("classic", info)

    # 2. An unknown shortcode; links to the classic post, so WordPress pings itself (self-pingback).
    sc_title = f"Shortcodes and links {m}"
    sc_body = (
        f"A post with a plugin shortcode ({m}).\n\n"
        "[myplugin foo=\"bar\"]\n\n"
        f"It links to <a href=\"{posts['classic']['permalink']}\">the classic post</a>, "
        "which makes WordPress send a pingback to itself.\n\n"
        "[gallery ids=\"1,2\"]"
    )
    info = publish(peer_dir, sc_title, sc_body)
    remember("shortcodes", info, pinged=info["pinged"])

    # 3. Block-editor markup; links to the classic post (a second pingback there) and sends a
    #    trackback to the shortcode post (not linked, so the trackback is not refused as a duplicate).
    blocks_title = f"Block editor post {m}"
    blocks_body = (
        "<!-- wp:paragraph -->\n"
        f"<p>A paragraph written in the block editor ({m}).</p>\n"
        "<!-- /wp:paragraph -->\n\n"
        "<!-- wp:heading -->\n<h2>A heading block</h2>\n<!-- /wp:heading -->\n\n"
        "<!-- wp:paragraph -->\n"
        f"<p>It links to <a href=\"{posts['classic']['permalink']}\">the classic post</a> too.</p>\n"
        "<!-- /wp:paragraph -->\n\n"
        "<!-- wp:list -->\n<ul><li>one</li><li>two</li></ul>\n<!-- /wp:list -->\n\n"
        "<!-- wp:image {\"id\":1,\"sizeSlug\":\"large\"} -->\n"
        "<figure class=\"wp-block-image size-large\"><img src=\"http://127.0.0.1:8090/wp-content/uploads/x.jpg\" "
        "alt=\"\" class=\"wp-image-1\"/></figure>\n<!-- /wp:image -->"
    )
    info = publish(peer_dir, blocks_title, blocks_body, "--trackback", posts["shortcodes"]["trackback_url"])
    remember("blocks", info, pinged=info["pinged"])

    # 4. Comments (and pings) closed.
    closed_title = f"Comments closed {m}"
    closed_body = f"Nobody can comment on this post ({m}).\n\nIts comments and pings are closed."
    info = publish(peer_dir, closed_title, closed_body, "--closed", "--no-pings")
    remember("closed", info)

    # 5. Published, then its slug is changed: WordPress keeps the old one in _wp_old_slug.
    renamed_title = f"Renamed post {m}"
    info = publish(peer_dir, renamed_title, f"This post's slug was changed after publishing ({m}).", "--no-pings")
    old_slug = info["permalink"].rstrip("/").rsplit("/", 1)[-1]
    xmlrpc_call("wp.editPost", info["id"], {"post_name": f"renamed-post-{m}-new-slug"})
    remember("renamed", post_info(peer_dir, info["id"]), old_slug=old_slug, old_permalink=info["permalink"])

    # Closing comments: no script does it; the XML-RPC API does (wp_update_post).
    xmlrpc_call("wp.editPost", posts["closed"]["id"], {"comment_status": "closed"})
    # Categories, tags and an excerpt, as an author would add them.
    xmlrpc_call("wp.editPost", posts["classic"]["id"], {
        "terms_names": {"category": [f"Practice {m}"], "post_tag": ["wxr", f"import {m}"]},
        "post_excerpt": "A hand-written excerpt.",
    })
    xmlrpc_call("wp.editPost", posts["blocks"]["id"], {"terms_names": {"post_tag": ["wxr"]}})

    # 6. A draft and a page, over XML-RPC.
    draft_id = int(xmlrpc_call("wp.newPost", {
        "post_type": "post", "post_status": "draft", "post_title": f"Unfinished draft {m}",
        "post_content": f"Not published yet ({m}).\n\nSecond paragraph of the draft.",
    }))
    posts["draft"] = {"id": draft_id, "title": f"Unfinished draft {m}", "slug": "", "permalink": None}
    about_id = int(xmlrpc_call("wp.newPost", {
        "post_type": "page", "post_status": "publish", "post_title": f"About {m}", "post_name": f"about-{m}",
        "post_content": f"This blog is a test site ({m}).\n\nIt is a page, not a post.",
    }))
    info = post_info(peer_dir, about_id)
    remember("about", info)

    # 7. Stock (deferred) pings, never sent: the post keeps its _pingme/_encloseme meta. Published
    #    last, because every synchronous publish above runs do_all_pings() for the whole site.
    deferred_title = f"Pings still pending {m}"
    info = publish(peer_dir, deferred_title,
                   f"Its pings wait for wp-cron ({m}).\n\n"
                   f"It links to <a href=\"{posts['classic']['permalink']}\">the classic post</a>.", "--defer")
    remember("deferred", info, pending_meta=info["pending_meta"])

    # 8. Threaded discussion on the classic post, 4 levels deep.
    classic_id = posts["classic"]["id"]
    comments["top"] = add_comment(peer_dir, classic_id, "Ada Reader",
                                  "A first reader comment.\n\nIt has two paragraphs.")
    comments["reply"] = post_comment_form(classic_id, "Bob Visitor", "bob@example.net", "http://127.0.0.1:9/bob",
                                          "A reply from the comment form, with a <em>website</em>.",
                                          parent=comments["top"])
    run_script(peer_dir, "wp.sh", "approve", str(comments["reply"]))  # a first-time commenter is held
    comments["reply2"] = add_comment(peer_dir, classic_id, "Carol Third", "A reply to the reply.",
                                     parent=comments["reply"])
    comments["reply3"] = add_comment(peer_dir, classic_id, "Dan Fourth", "The fourth level.",
                                     parent=comments["reply2"])
    comments["author_reply"] = int(xmlrpc_call("wp.newComment", classic_id, {
        "content": "The author answers (logged in).", "comment_parent": comments["top"]}))
    comments["second_top"] = add_comment(peer_dir, classic_id, "Eve Second", "Another top-level comment.")

    # 9. Moderation states on the shortcode post.
    sc_id = posts["shortcodes"]["id"]
    comments["approved"] = add_comment(peer_dir, sc_id, "Frank Approved", "An approved comment.")
    comments["held"] = add_comment(peer_dir, sc_id, "Grace Held", "Waiting for moderation.", status="hold")
    comments["spam"] = add_comment(peer_dir, sc_id, "Cheap Pills", "Buy now http://127.0.0.1:9/spam", status="spam")
    comments["trash"] = add_comment(peer_dir, sc_id, "Henry Trash", "This one was trashed.", status="trash")
    # Trashed the way wp-admin does it (wp_trash_comment keeps _wp_trash_meta_* comment meta).
    comments["trashed_via_api"] = add_comment(peer_dir, sc_id, "Ivy Trashed", "Trashed through the API.")
    xmlrpc_call("wp.deleteComment", comments["trashed_via_api"])

    # 10. Linkbacks: two self-pingbacks on the classic post (one approved, one left held), a trackback
    #    on the shortcode post (left held).
    pb1 = _wait_for_comment(peer_dir, classic_id, "pingback", posts["shortcodes"]["permalink"])
    pb2 = _wait_for_comment(peer_dir, classic_id, "pingback", posts["blocks"]["permalink"])
    tb = _wait_for_comment(peer_dir, sc_id, "trackback", posts["blocks"]["permalink"])
    run_script(peer_dir, "wp.sh", "approve", str(pb1["comment_id"]))
    comments.update(pingback_approved=pb1["comment_id"], pingback_held=pb2["comment_id"],
                    trackback_held=tb["comment_id"])

    return {"marker": m, "base_url": peer_url(), "posts": posts, "comments": comments}


if __name__ == "__main__":  # python tests/wordpress_site.py [PEER_DIR [MARKER]]
    import sys

    default = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "wordpress"
    peer = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("WP_PEER_DIR_SCRIPTS") or default)
    started = time.monotonic()
    site = build_site(peer, sys.argv[2] if len(sys.argv) > 2 else None)
    site["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(site, indent=2))
