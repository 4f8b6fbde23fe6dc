"""The unsubscribe token: a comment's id signed with SECRET_KEY under a salt of its own. No Flask views."""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "blogapp.notify.unsubscribe"
MAX_AGE = 2 * 365 * 24 * 3600  # seconds a link in an old mail still works


class BadToken(ValueError):
    """A token tampered with, made with another key, or too old; the message says which, for people."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def unsubscribe_token(comment_id: int) -> str:
    return _serializer().dumps({"c": int(comment_id)})


def comment_of(token: str) -> int:
    """The comment id a token names, or ``BadToken``."""
    try:
        payload = _serializer().loads(token, max_age=MAX_AGE)
    except SignatureExpired:
        raise BadToken("This unsubscribe link has expired.") from None
    except BadSignature:
        raise BadToken("This unsubscribe link is not valid: it may have been cut short or changed.") from None
    comment_id = payload.get("c") if isinstance(payload, dict) else None
    if not isinstance(comment_id, int) or isinstance(comment_id, bool):
        raise BadToken("This unsubscribe link is not valid.")
    return comment_id
