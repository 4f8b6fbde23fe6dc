"""``/webmention``: the W3C Webmention receiver, a thin view over ``Receiver.queue_webmention``.

The request is checked at once for what is local and cheap, answered ``201 Created`` with a
status page, and verified later by the job ``webmention.verify`` (``verification.py``).
"""
from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Response, current_app, jsonify, render_template, request

from ..extensions import csrf
from ..linkback.errors import ACCESS_DENIED, UPSTREAM_ERROR, LinkbackError
from ..linkback.receive import Mention
from ..templating import absolute_url
from . import BodyTooLarge, bp, linkback_log, read_capped_body

# A refusal's HTTP status: a busy or blocked sender may try later; our storage failing is ours.
STATUS_OF = {ACCESS_DENIED: 429, UPSTREAM_ERROR: 503}


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _read_form() -> dict[str, str]:
    """The form fields, first value of each name; raises ValueError with the reason."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ValueError("The request body must be application/x-www-form-urlencoded.")
    try:
        pairs = parse_qsl(read_capped_body().decode("utf-8"), keep_blank_values=True)
    except BodyTooLarge as exc:
        raise ValueError(str(exc)) from None
    except UnicodeDecodeError:
        raise ValueError("The request body is not valid UTF-8.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value.strip())
    return fields


@bp.route("/webmention", methods=["POST"])
@csrf.exempt
def webmention_endpoint():
    if not current_app.config["WEBMENTION_ENABLED"]:
        return _text("This site does not accept Webmentions.", 404)
    try:
        fields = _read_form()
    except ValueError as exc:
        return _text(str(exc), 400)
    source, target = fields.get("source", ""), fields.get("target", "")
    for value, name in ((source, "source"), (target, "target")):
        if not value:
            return _text(f"The {name} parameter is missing.", 400)
    mention = Mention(protocol="webmention", source=source, target=target,
                      client_ip=request.remote_addr or "", user_agent=request.user_agent.string or "")
    try:
        token = current_app.extensions["linkback_receiver"].queue_webmention(mention)
    except LinkbackError as error:
        return _text(error.message, STATUS_OF.get(error.code, 400))
    location = absolute_url(f"/webmention/{token}")
    response = _text(f"Webmention from {source} to {target} queued for verification; status at {location}", 201)
    response.headers["Location"] = location
    return response


@bp.route("/webmention/<token>", methods=["GET"])
def webmention_status(token: str):
    entry = linkback_log.by_token(token)
    if entry is None:
        return _text("There is no Webmention with this token.", 404)
    data = linkback_log.status_of(entry)
    accept = request.accept_mimetypes
    if (accept.best_match(["text/html", "application/json"]) == "application/json"
            and accept["application/json"] > accept["text/html"]):
        return jsonify(data)
    return render_template("blog/webmention_status.html", wm=data)
