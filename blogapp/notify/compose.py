"""The messages: plain text, UTF-8, one line per header whatever names and titles hold.

Built in a job, in a request context at SITE_URL (url_for works; links are absolute on SITE_URL).
"""
from __future__ import annotations

import re
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app, url_for
from ..models import Comment, CommentKind, utcnow
from ..moderation import comment_counts
from ..templating import absolute_url, permalink
from .tokens import unsubscribe_token

# Headers are not folded below this (RFC 5322's limit), so a long link in List-Unsubscribe stays whole.
POLICY = default_policy.clone(max_line_length=998)
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
QUOTE_LIMIT = 300  # characters of the parent comment quoted in a reply mail

KIND_NAMES = {CommentKind.COMMENT: "comment", CommentKind.PINGBACK: "pingback",
              CommentKind.TRACKBACK: "trackback", CommentKind.WEBMENTION: "webmention"}


def one_line(text: str | None, limit: int = 200) -> str:
    """``text`` as one header-safe line: CR, LF and other controls become spaces, runs of them one."""
    line = " ".join(CONTROL.sub(" ", text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _host() -> str:
    return urlsplit(current_app.config["SITE_URL"]).hostname or "localhost"


def sender() -> Address | str:
    configured = current_app.config.get("MAIL_DEFAULT_SENDER")
    title = one_line(current_app.config.get("SITE_TITLE") or "", 100)
    if configured:
        name, address = parseaddr(configured)
        return _mailbox(name or title, address) or address
    return Address(display_name=title, username="noreply", domain=_host())


def _mailbox(name: str, address: str) -> Address | None:
    """``Name <address>``, or None if ``address`` is not one the email package can write."""
    try:
        return Address(display_name=one_line(name, 100), addr_spec=address.strip())
    except (ValueError, IndexError, TypeError):
        return None


def new_message(to, subject: str) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender()
    msg["To"] = to
    msg["Subject"] = one_line(subject, 250)
    msg["Date"] = format_datetime(utcnow().replace(tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain=_host())  # (a domain given: no DNS lookup of our own name)
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _site_title(settings: dict) -> str:
    return one_line(settings.get("SITE_TITLE") or current_app.config.get("SITE_TITLE") or "", 100)


def comment_link(comment: Comment) -> str:
    return permalink(comment.post) + f"#comment-{comment.id}"


def action_link(comment: Comment, action: str) -> str:
    return absolute_url(url_for("notify.confirm", comment_id=comment.id, action=action))


def _who(comment: Comment) -> list[str]:
    if comment.kind == CommentKind.COMMENT:
        return [f"Author: {one_line(comment.author_name)}",
                f"Email: {one_line(comment.author_email)}",
                f"URL: {one_line(comment.author_url, 2000)}",
                "Comment:"]
    return [f"Website: {one_line(comment.author_name)}",
            f"URL: {one_line(comment.source_url or comment.author_url, 2000)}",
            "Excerpt:"]


def _text(comment: Comment) -> str:
    """What was said, as plain text (a comment's source is Markdown, a linkback's an excerpt)."""
    return (comment.content or "").replace("\r\n", "\n").strip()


def admin_message(comment: Comment, event: str, settings: dict, to: str) -> EmailMessage:
    """The admin's mail about a new comment or linkback: held for moderation, or published."""
    post, kind = comment.post, KIND_NAMES.get(CommentKind(comment.kind), "comment")
    title = one_line(post.title)
    if event == "held":
        subject = f'[{_site_title(settings)}] Please moderate: "{title}"'
        lines = [f'A new {kind} on the post "{title}" is waiting for your approval', permalink(post), ""]
    else:
        subject = f'[{_site_title(settings)}] {kind.capitalize()}: "{title}"'
        lines = [f'New {kind} on your post "{title}"', permalink(post), ""]
    lines += _who(comment)
    lines += [_text(comment), ""]
    if event == "held":
        lines += [f"Approve it: {action_link(comment, 'approve')}"]
    else:
        lines += ["You can see all comments on this post here:", permalink(post) + "#comments", ""]
    lines += [f"Spam it: {action_link(comment, 'spam')}",
              f"Trash it: {action_link(comment, 'trash')}"]
    if event == "held":
        waiting = comment_counts()["pending"]  # as the moderation panel counts them
        lines += ["", f"Currently {waiting} comment{'s are' if waiting != 1 else ' is'} waiting for approval. "
                      "Please visit the moderation panel:", absolute_url(url_for("admin.comments"))]
    msg = new_message(to, subject)
    if comment.kind == CommentKind.COMMENT and comment.author_email:
        reply_to = _mailbox(comment.author_name, comment.author_email)
        if reply_to is not None:
            msg["Reply-To"] = reply_to
    msg.set_content("\n".join(lines) + "\n", charset="utf-8")
    return msg


def reply_message(reply: Comment, settings: dict) -> EmailMessage:
    """The mail to a commenter about a reply to their comment, with its one-click unsubscribe."""
    parent, post = reply.parent, reply.post
    title, name = one_line(post.title), one_line(reply.author_name) or "Someone"
    unsubscribe = absolute_url(url_for("notify.unsubscribe", token=unsubscribe_token(parent.id)))
    quoted = _text(parent)
    if len(quoted) > QUOTE_LIMIT:
        quoted = quoted[: QUOTE_LIMIT - 1] + "\u2026"
    lines = [f"Hello {one_line(parent.author_name)},", "",
             f'{name} replied to your comment on "{title}" at {_site_title(settings)}.', "",
             "Your comment:", *("> " + line for line in quoted.splitlines()), "",
             f"{name} wrote:", _text(reply), "",
             "Read it and reply:", comment_link(reply), "",
             "--",
             "You get this mail because you ticked \u201cNotify me of replies\u201d under your comment.",
             "To get no more mails about replies to this comment (this comment only), open:",
             unsubscribe]
    to = _mailbox(parent.author_name, parent.author_email) or parent.author_email.strip()
    msg = new_message(to, f'[{_site_title(settings)}] {name} replied to your comment on "{title}"')
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("\n".join(lines) + "\n", charset="utf-8")
    return msg
