"""Queueing the sends: a ``linkback.send`` job per pending row and generation, and the job."""
from __future__ import annotations

from sqlalchemy import select

from .. import jobs
from ..extensions import db
from ..models import OutboundLink, OutboundState, Post, utcnow
from .sending import send_now, state_after

TASK = "linkback.send"


def dispatch() -> int:
    """Queue a job for each pending row that has none; returns how many rows are pending.

    Safe to call any time, from any process: the job key is per row and generation.
    """
    db.session.commit()
    rows = db.session.execute(
        select(OutboundLink.id, OutboundLink.generation, Post.published_at)
        .outerjoin(Post, Post.id == OutboundLink.post_id)
        .where(OutboundLink.state == OutboundState.PENDING.value)
    ).all()
    now = utcnow()
    for row_id, generation, published_at in rows:
        delay = (published_at - now).total_seconds() if published_at and published_at > now else 0.0
        jobs.enqueue(TASK, row_id, generation, key=f"{TASK}:{row_id}:{generation}", delay=delay)
    return len(rows)


def _give_up(row_id: int, generation: int) -> None:
    """The process sending it died on the job's last attempt: the row ends failed, to be sent
    again from the editor, rather than pending for ever."""
    row = db.session.get(OutboundLink, row_id)
    if row is not None and row.generation == generation and row.state == OutboundState.PENDING:
        row.state = OutboundState.FAILED.value
        row.message = "Not sent: the process sending it stopped, on every attempt."
        if row.post_id is None:
            db.session.delete(row)


@jobs.task(TASK, on_give_up=_give_up)
def send_job(row_id: int, generation: int) -> str:
    row = db.session.get(OutboundLink, row_id)
    if row is None or row.generation != generation or row.state != OutboundState.PENDING:
        return "nothing to do: the row changed since this job was queued"
    attempt = jobs.current_attempt()
    final = attempt is None or attempt.last
    outcome = send_now(row, final=final)
    if outcome is None:
        return row.state
    # The row is recorded and committed (or deleted, its post gone): its state, from the outcome.
    state = state_after(outcome, final=final)
    if state == OutboundState.PENDING:
        raise jobs.TransientJobError(outcome.message, status=outcome.code if outcome.code and outcome.code >= 400 else None)
    if state == OutboundState.FAILED:  # refused, or failing on every attempt: the job failed too
        raise jobs.JobFailed(outcome.message)
    return f"{outcome.outcome}: {outcome.message}"


def pending_rows(post: Post | None = None) -> list[OutboundLink]:
    query = select(OutboundLink).where(OutboundLink.state == OutboundState.PENDING.value).order_by(OutboundLink.id)
    if post is not None:
        query = query.where(OutboundLink.post_id == post.id)
    return list(db.session.scalars(query))
