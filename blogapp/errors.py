"""Every error gets a page of the theme; none shows a traceback."""
import logging

from flask import Flask, abort, current_app, redirect, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from . import legacy
from .endpoints.trackback import trackback_response
from .extensions import db
from .outages import Outage, database_unreachable

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30  # what a reader (or a crawler) is told to wait while the database is away

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Forbidden", "You are not allowed to do that."),
    404: ("Page not found", "There is nothing here. It may have moved, or the address may be mistyped."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    410: ("Gone", "This page has been removed."),
    413: ("Too large", "That request is larger than this site accepts."),
    429: ("Too many requests", "Please wait a moment and try again."),
    500: ("Something went wrong", "The error has been logged. Please try again in a moment."),
}


def render_error(code: int, message: str | None = None):
    title, default = MESSAGES.get(code, ("Error", "Something went wrong."))
    return render_template("error.html", code=code, title=title, message=message or default), code


def not_found(error):
    """A 404 may be an old address of an imported post or page: send the reader on (301)."""
    if request.method in ("GET", "HEAD") and "\x00" not in request.path:
        try:
            target = legacy.new_address(legacy.by_path(request.path))
        except SQLAlchemyError:
            db.session.rollback()
            target = None
        if target is not None:
            return redirect(target, 301)
    return render_error(404)


def refuse_nul_in_the_address():
    """A NUL (``%00``) in the path or the query is in no address of ours, and PostgreSQL cannot
    even compare text holding one: 404 for a path, 400 for a query, before any view looks it up."""
    if request.blueprint == "linkback":
        return  # pingback, trackback and Webmention answer it in their own protocol
    if "\x00" in request.path:
        abort(404)
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400)


def refuse_oversized_bodies():
    """The one request-size cap, ``MAX_CONTENT_LENGTH``, applied before anything reads a body.

    Werkzeug enforces ``request.max_content_length`` whenever a body is parsed; this makes the
    cap hold for a visitor who is not logged in before any view runs, so that no view (not even
    one that raises its own cap for admins, as the WXR upload does) reads a stranger's oversized body.
    """
    if request.blueprint == "linkback":
        return  # pingback, trackback, Webmention: each reads at most LINKBACK_BODY_LIMIT and answers in its protocol
    cap = request.max_content_length
    if cap is not None and (request.content_length or 0) > cap and not current_user.is_authenticated:
        raise RequestEntityTooLarge()


def too_large(error):
    """413, short: what was sent is never parsed, not even by the page's own forms."""
    request.form = request.files = ImmutableMultiDict()
    return render_error(413)


def database_away(error: SQLAlchemyError):
    """The database cannot be reached: a short 503 that needs nothing from it (not even the site's
    name), one line in the log per outage, and the app carries on (the pool reconnects when it
    is back). A database error of another kind is a bug: the 500 page, logged in full."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        pass  # its connection is gone too; the pool replaces it
    if not database_unreachable(error):
        current_app.logger.error("database error", exc_info=error)
        return render_error(500)
    current_app.extensions["database_outage"].down(error, "readers get 503 until it answers")
    if request.endpoint == "linkback.trackback":
        response = trackback_response("The blog cannot store trackbacks just now; try again later.")
    else:
        # Rendered without Flask's context processors: they read the site's settings from the database.
        body = current_app.jinja_env.get_template("unavailable.html").render()
        response = current_app.response_class(body, 503, content_type="text/html; charset=utf-8")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _watch_the_database(app: Flask) -> None:
    """One line when the database comes back: the first new connection after an outage says so."""
    outage = app.extensions["database_outage"] = Outage("the database", log)
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "connect", lambda *args: outage.up())


def init_app(app: Flask) -> None:
    _watch_the_database(app)
    app.register_error_handler(SQLAlchemyError, database_away)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_oversized_bodies)
    app.before_request_funcs[None].insert(0, refuse_nul_in_the_address)
    app.register_error_handler(413, too_large)
    for code in MESSAGES:
        if code not in (404, 413, 500):
            app.register_error_handler(code, lambda e, code=code: render_error(code))
    app.register_error_handler(404, not_found)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return render_error(400, "The form had expired or was sent from elsewhere. Go back, reload the page and try again.")

    @app.errorhandler(500)
    def internal_error(error):
        db.session.rollback()
        return render_error(500)
