"""Command-line tools: ``flask --app blogapp COMMAND``. Errors exit non-zero with one line."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask_migrate import upgrade
from sqlalchemy import func, inspect, select

from . import outbound
from .extensions import db
from .models import Comment, JobRecord, JobStatus, Post, PostStatus, User, utcnow
from .posts import PostError, save_post, split_terms
from .service_errors import explain, summary
from .templating import permalink, site_request_context

OPEN_CLOSED = click.Choice(["open", "closed"])
# The editor's fields, as edit-post's options name them in its error line.
EDIT_OPTIONS = {"title": "--title", "body": "--body-file", "categories": "--category", "tags": "--tag"}


def migrate_database() -> None:
    """Bring the schema to the newest migration (creating it on an empty database)."""
    upgrade(directory=current_app.extensions["migrate"].directory)


def _post_by_slug(slug: str) -> Post:
    post = db.session.scalar(select(Post).where(Post.slug == slug))
    if post is None:
        raise click.ClickException(f"no post with slug {slug!r}")
    return post


def init_app(app: Flask) -> None:
    original_command = app.cli.command

    def command(*args, **kwargs):
        """Like ``app.cli.command``, with ``url_for`` working as it does in a request, and a database
        or Redis out of reach (or without tables) told in one line, not a traceback."""
        def decorator(fn):
            @functools.wraps(fn)
            def wrapper(*a, **kw):
                this_app = current_app._get_current_object()
                try:
                    with site_request_context(this_app):
                        return fn(*a, **kw)
                except click.ClickException:
                    raise
                except Exception as exc:
                    line = explain(exc, this_app)
                    if line is None:
                        raise
                    raise click.ClickException(line) from None

            return original_command(*args, **kwargs)(wrapper)

        return decorator

    @command("init-db")
    def init_db():
        """Create or migrate the database to the newest schema; keeps existing data."""
        migrate_database()
        click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")

    @command("check")
    def check():
        """Check the configuration (settings, database, migrations, Redis): one line per problem."""
        from .checks import count_line, run_checks

        findings = run_checks(current_app._get_current_object())
        for finding in findings:
            click.echo(finding.line())
        click.echo(count_line(findings))
        if any(finding.severity == "error" for finding in findings):
            raise click.exceptions.Exit(1)

    @command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) if there are posts already.")
    def seed_demo(if_empty: bool):
        """Fill an empty database with the demo blog."""
        from .demo import seed

        if not inspect(db.engine).has_table("post"):
            raise click.ClickException("the database has no tables yet: run 'flask --app blogapp init-db' first")
        if db.session.scalar(select(func.count(Post.id))):
            if if_empty:
                click.echo("The database has posts already; demo content not added.")
                return
            raise click.ClickException("the database has posts already; the demo is only seeded into an empty blog")
        count = seed()
        click.echo(f"Demo blog seeded: {count} posts.")

    @command("create-admin")
    @click.argument("username")
    @click.option("--password", help="Give the password here instead of at the prompt.")
    @click.option("--display-name", default="", help="The name shown on posts and replies.")
    def create_admin(username: str, password: str | None, display_name: str):
        """Create an admin account that can log in at /admin."""
        username = username.strip()
        if not username or len(username) > 80:
            raise click.ClickException("the username must be 1 to 80 characters")
        if db.session.scalar(select(User).where(User.username == username)):
            raise click.ClickException(f"user {username!r} already exists")
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(password) < 8:
            raise click.ClickException("the password must have at least 8 characters")
        user = User(username=username, display_name=display_name.strip())
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        click.echo(f"Admin {username!r} created. Log in at {current_app.config['SITE_URL']}/admin/login")

    @command("create-post")
    @click.option("--title", required=True)
    @click.option("--body", help="The post's Markdown text.")
    @click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), help="Read the Markdown from this file ('-' for standard input).")
    @click.option("--slug", default="")
    @click.option("--category", "categories", multiple=True)
    @click.option("--tag", "tags", multiple=True)
    @click.option("--draft", is_flag=True, help="Save as a draft instead of publishing now.")
    @click.option("--comments", type=OPEN_CLOSED, default="open", show_default=True)
    @click.option("--pings", type=OPEN_CLOSED, default="open", show_default=True)
    @click.option("--send/--no-send", default=True, show_default=True,
                  help="Tell the pages the post links to (Webmention, pingback, trackback).")
    def create_post(title, body, body_file, slug, categories, tags, draft, comments, pings, send):
        """Create a post and print its permalink on the last line."""
        if (body is None) == (body_file is None):
            raise click.ClickException("give exactly one of --body and --body-file")
        if body_file is not None:
            body = _read_body(body_file)
        try:
            post = save_post(
                None,
                title=title,
                body=body,
                slug=slug,
                categories=list(categories),
                tags=list(tags),
                publish=not draft,
                comments_open=comments == "open",
                pings_open=pings == "open",
                send_linkbacks=send,
            )
            db.session.commit()
        except PostError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        click.echo(f"{'Draft saved' if draft else 'Published'}: {post.title}")
        not_queued = _send_or_queue(post)
        click.echo(permalink(post))
        if not_queued:
            raise click.ClickException(not_queued)

    @command("edit-post")
    @click.argument("slug")
    @click.option("--title", help="The new title.")
    @click.option("--body-file", type=click.Path(path_type=Path),
                  help="Replace the Markdown with this file's ('-' for standard input).")
    @click.option("--category", "categories", multiple=True,
                  help="Replaces the post's categories: repeat for more; a comma separates names, as in the editor.")
    @click.option("--no-categories", is_flag=True, help="Take the post out of every category.")
    @click.option("--tag", "tags", multiple=True,
                  help="Replaces the post's tags: repeat for more; a comma separates names, as in the editor.")
    @click.option("--no-tags", is_flag=True, help="Remove every tag.")
    @click.option("--comments", type=OPEN_CLOSED)
    @click.option("--pings", type=OPEN_CLOSED)
    @click.option("--draft", is_flag=True, help="Unpublish: the post becomes a draft.")
    @click.option("--publish", is_flag=True, help="Publish a draft (now, unless it has a date already).")
    def edit_post(slug, title, body_file, categories, no_categories, tags, no_tags, comments, pings, draft, publish):
        """Change a post as saving it in the editor does, send its linkbacks again, and print its
        permalink on the last line. Options not given leave the post as it is."""
        if draft and publish:
            raise click.UsageError("give --draft or --publish, not both")
        if categories and no_categories:
            raise click.UsageError("give --category or --no-categories, not both")
        if tags and no_tags:
            raise click.UsageError("give --tag or --no-tags, not both")
        post = db.session.scalar(select(Post).where(Post.slug == slug))
        if post is None:
            raise click.ClickException(f'no post with the slug "{slug}"')
        body = _read_body(body_file) if body_file is not None else post.body
        if draft:
            status = PostStatus.DRAFT.value
        elif publish:
            status = PostStatus.PUBLISHED.value
        else:
            status = post.status
        fields = {
            "title": post.title if title is None else title,
            "body": body,
            # As in the editor's fields: names separated by commas, blanks and repeats dropped.
            "categories": "" if no_categories else ", ".join(categories) if categories else ", ".join(
                c.name for c in post.categories),
            "tags": "" if no_tags else ", ".join(tags) if tags else ", ".join(t.name for t in post.tags),
            "status": status,
            "comments_open": post.comments_open if comments is None else comments == "open",
            "pings_open": post.pings_open if pings is None else pings == "open",
            "send_linkbacks": post.send_linkbacks,
        }
        refused = _editor_refuses(fields)
        if refused:
            raise click.ClickException(refused)
        try:
            # What the editor's Save does: its fields, the post's date, slug and excerpt kept.
            post = save_post(
                post,
                title=fields["title"],
                body=fields["body"],
                categories=split_terms(fields["categories"]),
                tags=split_terms(fields["tags"]),
                publish=status == PostStatus.PUBLISHED,
                private=status == PostStatus.PRIVATE,
                published_at=post.published_at,
                comments_open=fields["comments_open"],
                pings_open=fields["pings_open"],
            )
            db.session.commit()
        except PostError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        state = "scheduled" if post.is_scheduled else "published" if post.is_published else post.status
        click.echo(f"Updated ({state}): {post.title}")
        not_queued = _send_or_queue(post)
        click.echo(permalink(post))
        if not_queued:
            raise click.ClickException(not_queued)

    def _read_body(body_file: Path) -> str:
        """A post's Markdown from a UTF-8 file, or standard input for '-'; one line if it cannot be read."""
        stdin = str(body_file) == "-"
        source = "standard input" if stdin else body_file
        try:
            return sys.stdin.buffer.read().decode("utf-8") if stdin else body_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"cannot read {source}: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise click.ClickException(f"cannot read {source}: {exc.strerror or exc}") from None

    def _editor_refuses(fields: dict) -> str | None:
        """The editor's form, given ``fields`` as if typed there: its messages in one line, or None."""
        from werkzeug.datastructures import MultiDict

        from .admin.forms import PostForm

        typed = MultiDict({name: value for name, value in fields.items() if not isinstance(value, bool)})
        typed.update({name: "y" for name, value in fields.items() if value is True})  # a ticked box
        form = PostForm(formdata=typed, meta={"csrf": False})
        if form.validate():
            return None
        return " ".join(f"{EDIT_OPTIONS.get(name, name)}: {message}"
                         for name, messages in form.errors.items() for message in messages)

    @command("send-pings")
    @click.argument("slug", required=False)
    @click.option("--retry-failed", is_flag=True, help="Also try again the pages that failed or offered no endpoint.")
    def send_pings(slug, retry_failed):
        """Send pending linkbacks now (of one post, or of all), with a progress bar.

        Links of published posts that were never planned (imported posts, posts from before
        sending existed) are found first.
        """
        posts = [_post_by_slug(slug)] if slug else db.session.scalars(select(Post).where(Post.visible())).all()
        for post in posts:
            if post.is_published or post.is_scheduled:
                outbound.plan_after_save(post, was_public=post.is_published, changed=False, retry_failed=retry_failed)
        db.session.commit()
        rows = outbound.pending_rows(posts[0] if slug else None)
        if not rows:
            click.echo("Nothing to send.")
            return
        _send_rows(rows)

    def _send_rows(rows) -> None:
        outcomes = []
        with click.progressbar(rows, label="Sending linkbacks", show_pos=True,
                               item_show_func=lambda row: row.target_url[:60] if row is not None else None) as bar:
            for row in bar:
                target = row.target_url
                outcome = outbound.send_now(row)
                outcomes.append((target, outcome))
        for target, outcome in outcomes:
            if outcome is None:
                click.echo(f"waiting     {target} (the post is scheduled)")
            else:
                click.echo(f"{outcome.outcome:<11} {outcome.protocol or '-':<10} {target}: {outcome.message}")
        sent = sum(1 for _, outcome in outcomes if outcome is not None and outcome.ok)
        click.echo(f"{sent} of {len(outcomes)} sent.")

    def _send_or_queue(post: Post) -> str | None:
        """A CLI process ends soon: with jobs in-process, send now; with RQ, leave it to the worker.
        Returns why the post's linkbacks could not be queued (Redis down), or None."""
        from . import jobs

        runner = jobs.backend()
        if isinstance(runner, jobs.RQBackend):
            keys = [f"{outbound.TASK}:{row.id}:{row.generation}" for row in outbound.pending_rows(post)]
            since = utcnow()
            if outbound.dispatch():
                reason = _not_queued(runner, keys, since)
                if reason:
                    return (f"the post's linkbacks could not be queued for the worker ({reason}); they wait: "
                            f"send them with `flask --app blogapp send-pings {post.slug}`")
                click.echo("Linkbacks queued for the worker.")
            return None
        rows = outbound.pending_rows(post)
        if rows and not post.is_scheduled:
            _send_rows(rows)
        return None

    def _not_queued(runner, keys: list[str], since) -> str | None:
        """Why the jobs of ``keys`` (made since ``since``) are not in Redis, or None: a job the back
        end refused is recorded failed, and one it could not hand to an unreachable Redis waits in
        the database, so Redis is asked once more."""
        refused = db.session.scalars(
            select(JobRecord).where(JobRecord.key.in_(keys), JobRecord.created_at >= since,
                                    JobRecord.status == JobStatus.FAILED.value)
        ).first() if keys else None
        if refused is not None:
            return (refused.last_error or "refused").removeprefix("could not be queued: ")
        try:
            runner.connection.ping()
        except Exception as exc:
            return f"Redis cannot be reached: {summary(exc)}"
        return None

    @command("set-discussion")
    @click.argument("slug")
    @click.option("--comments", type=OPEN_CLOSED)
    @click.option("--pings", type=OPEN_CLOSED)
    def set_discussion(slug, comments, pings):
        """Open or close a post's comments and pings."""
        if comments is None and pings is None:
            raise click.ClickException("give --comments and/or --pings")
        post = _post_by_slug(slug)
        if comments:
            post.comments_open = comments == "open"
        if pings:
            post.pings_open = pings == "open"
        db.session.commit()
        click.echo(
            f"{post.slug}: comments {'open' if post.comments_open else 'closed'}, pings {'open' if post.pings_open else 'closed'}"
        )

    @command("worker")
    @click.option("--burst", is_flag=True, help="Run the jobs that are due now, then exit.")
    @click.option("--name", default=None, help="The worker's name in Redis (default: a random one).")
    def worker(burst: bool, name: str | None):
        """Run background jobs from Redis (RQ, with its scheduler for retries)."""
        from . import jobs

        runner = jobs.backend()
        if not isinstance(runner, jobs.RQBackend):
            click.echo("Jobs run inside the web process (JOBS_BACKEND is thread): there is nothing to run here.")
            return
        click.echo(f"Working on RQ queue {runner.queue.name!r} (then {runner.queues[jobs.LINKBACKS].name!r}, "
                   "the verification of linkbacks)" + (" until they are empty." if burst else "; Ctrl+C stops."))
        # The jobs of processes that died (their leases expired) run again: now, and, while this
        # worker runs, at every sweep (JOBS_SWEEP_SECONDS).
        if burst:
            jobs.sweep(current_app._get_current_object())
        else:
            jobs.start()
        try:
            runner.work(name=name, burst=burst)  # through Redis outages, waiting for it (a burst does not wait)
        except jobs.RedisUnavailable as exc:
            raise click.ClickException(str(exc)) from None

    @command("import-wxr")
    @click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
    @click.option("--default-author", metavar="USER",
                  help="The user who gets the posts of authors in the file who are not users here.")
    @click.option("--dry-run", is_flag=True, help="Report what would be imported, and write nothing.")
    @click.option("--json", "as_json", is_flag=True, help="End with the counts as one JSON object.")
    def import_wxr(file: Path, default_author: str | None, dry_run: bool, as_json: bool):
        """Import a WordPress export (Tools > Export > All content): posts, pages, comments, linkbacks.

        Nothing is sent to the pages the posts link to. Importing the same file again adds nothing.
        """
        from .wxr.importer import ImportFailed, WxrImporter, summary_json

        author = None
        if default_author:
            author = db.session.scalar(select(User).where(User.username == default_author))
            if author is None:
                raise click.ClickException(f"--default-author: no user {default_author!r} (create it with create-admin)")
        if not inspect(db.engine).has_table("imported_item"):
            raise click.ClickException("the database is not up to date: run 'flask --app blogapp init-db' first")
        try:
            stream = file.open("rb") if str(file) != "-" else sys.stdin.buffer
            size = file.stat().st_size if str(file) != "-" else 0
        except OSError as exc:
            raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
        stderr = sys.stderr
        # A bar on a terminal only: a log or a pipe gets the summary line alone.
        bar = click.progressbar(length=max(size, 1), label="Importing", file=stderr, show_percent=True,
                                show_eta=True) if size and stderr.isatty() else None
        done = 0

        def progress(bytes_read: int) -> None:
            nonlocal done
            step = max(0, min(bytes_read, size) - done)
            done += step
            bar.update(step)

        try:
            with stream:
                if bar is not None:
                    with bar:
                        summary = WxrImporter(default_author=author, dry_run=dry_run, progress=progress).run(stream)
                else:
                    summary = WxrImporter(default_author=author, dry_run=dry_run).run(stream)
        except ImportFailed as exc:
            raise click.ClickException(exc.message) from None
        except OSError as exc:
            raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
        click.echo(summary.line())
        if as_json:
            click.echo(summary_json(summary))

    @command("export-wxr")
    @click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
    def export_wxr(file: Path | None):
        """Export the whole blog as a WordPress export file (WXR 1.2); no FILE or '-': standard output."""
        from .wxr.exporter import WxrExporter

        exporter = WxrExporter()
        if file is None or str(file) == "-":
            out = sys.stdout
            for chunk in exporter.chunks():
                out.write(chunk)
            out.flush()
            click.echo(_export_line(exporter.counts), err=True)
            return
        partial = file.with_name(file.name + ".part")
        try:
            with partial.open("w", encoding="utf-8") as out:
                for chunk in exporter.chunks():
                    out.write(chunk)
            partial.replace(file)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise click.ClickException(f"cannot write {file}: {exc.strerror or exc}") from None
        click.echo(_export_line(exporter.counts) + f" to {file}")

    def _export_line(counts: dict) -> str:
        return "Exported " + ", ".join(f"{n} {key if n != 1 else key.rstrip('s')}" for key, n in counts.items())

    @command("list-comments")
    @click.argument("slug")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    def list_comments(slug, as_json):
        """List a post's comments and linkbacks, whatever their status."""
        post = _post_by_slug(slug)
        rows = db.session.scalars(
            select(Comment).where(Comment.post_id == post.id).order_by(Comment.created_at, Comment.id)
        ).all()
        for c in rows:
            if as_json:
                click.echo(json.dumps(c.as_json(), ensure_ascii=False))
            else:
                click.echo(f"{c.id:>6}  {c.kind:<10} {c.status:<9} {c.author_name[:40]:<40} {c.created_at:%Y-%m-%d %H:%M}")
