"""Tools: import a WordPress export (WXR) in the background, and download the blog as one.

``POST /admin/tools/import`` saves the upload under a random name and queues the job
``wxr.import`` (``blogapp/wxr/import_job.py``); ``/admin/tools/import/<job id>`` shows its progress
and then its outcome. ``/admin/tools/export`` streams ``WxrExporter``'s file as a download.
"""
from __future__ import annotations

import json

from flask import Response, abort, current_app, redirect, render_template, request, stream_with_context, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectField

from ..errors import render_error
from ..extensions import csrf, db
from ..models import ACTIVE_JOB_STATUSES, JobRecord, JobStatus, User, utcnow
from ..templating import local_time, site_settings
from ..text import slugify
from ..wxr import import_job
from ..wxr.exporter import WxrExporter
from . import bp

_ACTIVE = {s.value for s in ACTIVE_JOB_STATUSES}
# The rows of the counts table: ImportSummary.as_dict() key -> label.
COUNT_ROWS = [("posts", "Posts"), ("pages", "Pages"), ("comments", "Comments"), ("pingbacks", "Pingbacks"),
              ("trackbacks", "Trackbacks"), ("webmentions", "Webmentions"), ("skipped", "Skipped")]


class ImportForm(FlaskForm):
    file = FileField("WordPress export file (.xml)", validators=[FileRequired("Choose a WordPress export file.")])
    default_author = SelectField(
        "Assign posts of unknown authors to", choices=[], validate_choice=True,
        description="For authors in the file who are not users here. With nobody chosen, the import stops "
                    "at the first such author and imports nothing.",
    )
    dry_run = BooleanField("Dry run: report what would be imported, and write nothing")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = db.session.scalars(select(User).order_by(User.username)).all()
        self.default_author.choices = [("", "Nobody (stop)")] + [
            (str(u.id), u.username if u.name == u.username else f"{u.name} ({u.username})") for u in users]

    @property
    def default_author_id(self) -> int | None:
        return int(self.default_author.data) if self.default_author.data else None


def _upload_cap() -> int:
    return int(current_app.config["WXR_UPLOAD_MAX_BYTES"])


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def _tools_page(form: ImportForm, status: int = 200):
    return render_template("admin/tools.html", form=form, upload_cap=_megabytes(_upload_cap())), status


@bp.route("/tools")
def tools():
    return _tools_page(ImportForm())


@bp.route("/tools/import", methods=["POST"])
@csrf.exempt  # checked below, once this view's upload cap is set: the global check would read the body first
def import_upload():
    """Save the upload as ``instance/imports/<token>.xml``, queue its import, 303 to its status page."""
    cap = _upload_cap()
    request.max_content_length = cap
    try:
        csrf.protect()
        form = ImportForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:
        # The body stays unread: the page's own forms (the log-out button) must not try to parse it again.
        request.form = request.files = ImmutableMultiDict()
        return render_error(413, f"That file is larger than the {_megabytes(cap)} this site accepts for an import "
                                 "(the setting WXR_UPLOAD_MAX_BYTES).")
    if not valid:
        return _tools_page(form, 400)
    token, path = import_job.new_upload()
    try:
        form.file.data.save(path)
        record = import_job.start_import(token, default_author_id=form.default_author_id, dry_run=form.dry_run.data)
    except BaseException:
        import_job.discard(token)
        raise
    if record.status == JobStatus.FAILED.value:  # the back end refused it (Redis down): its page says so
        import_job.discard(token)
    return redirect(url_for("admin.import_status", job_id=record.id), 303)


@bp.route("/tools/import/<int:job_id>")
def import_status(job_id: int):
    """Progress while the job waits or runs (the page reloads itself every 2 s), then its outcome."""
    record = db.session.get(JobRecord, job_id)
    token = import_job.token_of(record) if record is not None else None
    if token is None:
        abort(404)
    running = record.status in _ACTIVE
    result = json.loads(record.result) if record.result else {}
    progress = import_job.read_progress(token) if running else None
    counts = result.get("counts") or {}
    rows = [(label, counts[key]) for key, label in COUNT_ROWS if key in counts]
    return render_template(
        "admin/tools_import.html", record=record, running=running, waiting=record.status != JobStatus.RUNNING.value,
        progress=progress, result=result, rows=rows, skipped_why=counts.get("skipped_why") or {},
        already_here=counts.get("already_here") or {}, dry_run=import_job.is_dry_run(record),
    )


@bp.route("/tools/export")
def export_download():
    """The whole blog as a WXR file, streamed as a download (what WordPress's Tools > Export gives)."""
    exporter = WxrExporter()
    name = slugify(site_settings()["SITE_TITLE"]) or "blog"
    filename = f"{name}.wordpress.{local_time(utcnow()):%Y-%m-%d}.xml"
    response = Response(stream_with_context(exporter.chunks()), mimetype="application/xml")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
