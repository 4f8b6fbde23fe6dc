from urllib.parse import urlsplit

from flask import current_app, request
from flask_wtf import FlaskForm
from flask_wtf.csrf import validate_csrf
from wtforms import BooleanField, EmailField, HiddenField, StringField, TextAreaField, URLField, ValidationError
from wtforms.validators import URL, DataRequired, Email, Length, Optional

from ..validation import RefusesNul


class EchoCapped:
    """A field that shows back at most its own limit of what was sent.

    The form is re-shown with what was typed after an error; a field's ``Length`` limit (else
    ``echo_limit``) bounds that echo, so a huge value costs no more than a valid one to re-render.
    """

    echo_limit: int | None = None

    def _value(self):
        value = super()._value()
        limit = next((v.max for v in self.validators if isinstance(v, Length) and v.max >= 0), self.echo_limit)
        return value if limit is None else value[:limit]


class CappedStringField(EchoCapped, StringField):
    pass


class CappedEmailField(EchoCapped, EmailField):
    pass


class CappedURLField(EchoCapped, URLField):
    pass


class CappedTextAreaField(EchoCapped, TextAreaField):
    pass


class CappedHiddenField(EchoCapped, HiddenField):
    echo_limit = 20  # a comment id


class CommentForm(RefusesNul, FlaskForm):
    # Anonymous and shown on cacheable pages: a session-bound CSRF token would add nothing.
    # A logged-in author's comment is vouched for by sent_from_this_site instead.
    class Meta:
        csrf = False

    author_name = CappedStringField("Name", validators=[DataRequired("Please give your name."), Length(max=245)])
    author_email = CappedEmailField(
        "Email",
        description="Not published.",
        validators=[
            DataRequired("Please give your email address."),
            Email("That email address does not look right.", check_deliverability=False),
            Length(max=254),
        ],
    )
    author_url = CappedURLField(
        "Website",
        validators=[Optional(), URL(message="Give a full web address, starting with http:// or https://."), Length(max=2000)],
    )
    content = CappedTextAreaField(
        "Comment",
        validators=[DataRequired("Please write a comment."), Length(max=10000, message="Comments are limited to 10,000 characters.")],
    )
    # Mail me the replies to this comment once approved (blogapp/notify/); each mail can stop them.
    notify_replies = BooleanField("Notify me of replies by email")
    parent_id = CappedHiddenField()
    # Honeypot: hidden from people by CSS; bots that fill every field give themselves away.
    homepage = CappedStringField("Leave this field empty", validators=[Length(max=255)])

    def validate_author_url(self, field):
        if field.data and not field.data.lower().startswith(("http://", "https://")):
            raise ValidationError("Give a full web address, starting with http:// or https://.")


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def sent_from_this_site() -> bool:
    """Whether this POST is vouched for as coming from our own pages, not from another site.

    Either it carries the session's valid CSRF token (form field ``csrf_token`` or the
    ``X-CSRFToken`` header), or its ``Origin`` (else, if none is sent, its ``Referer``) is
    ``SITE_URL`` or one of ``SITE_ALIASES``. ``Origin: null`` vouches for nothing.
    """
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    if token:
        try:
            validate_csrf(token)
            return True
        except ValidationError:
            pass
    sender = request.headers.get("Origin")
    if sender is None:
        sender = request.headers.get("Referer")
    if not sender:
        return False
    ours = {_origin(u) for u in [current_app.config["SITE_URL"], *current_app.config["SITE_ALIASES"]]}
    origin = _origin(sender)
    return origin is not None and origin in ours
