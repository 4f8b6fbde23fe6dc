"""The jobs that verify received linkbacks: ``linkback.verify`` (a claimed pingback or trackback)
and ``webmention.verify`` (a queued Webmention).

Each is written in one commit with what it verifies (``SqlLinkbackStore.claim``,
``queue_webmention``). A pingback's job runs at once in the receiving process, with the sender
waiting (``run_claimed``), or later from the queue; a Webmention's always later. Queued ones are
paced by the process's CPU budget for verifications. A job run again after its process died
finds its linkback either still waiting (it verifies) or given its verdict (nothing to do).
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

from flask import current_app

from .. import jobs
from ..linkback.errors import GENERIC, LinkbackError, TryLater
from ..linkback.receive import BudgetSpent, Claim
from .store import VERIFY_TASK, WEBMENTION_TASK


def _receiver():
    return current_app.extensions["linkback_receiver"]


@contextmanager
def _within_budget(receiver):
    """Queued linkbacks are verified at the budgeted rate (the readers keep the CPU): not now,
    while the budget is spent."""
    try:
        with receiver.cpu.turn():
            yield
    except BudgetSpent as spent:
        raise jobs.Postpone(spent.seconds, "the verification CPU budget is spent") from None


def _give_up_claim(claim_data: dict) -> None:
    """The process verifying it died on the job's last attempt: the claim ends, refused, logged."""
    receiver = _receiver()
    claim = Claim.from_dict(claim_data)
    if receiver.store.is_claimed(claim):
        receiver.store.release(claim, LinkbackError(GENERIC, "The linkback could not be verified: the process "
                                                             "verifying it stopped, on every attempt."))


@jobs.task(VERIFY_TASK, on_give_up=_give_up_claim, lane=jobs.LINKBACKS)
def verify_linkback(claim_data: dict) -> dict:
    """The verdict, as JSON: ``{"status": ...}`` (stored), ``{"refused": code, "message": ...}``, or
    ``{"nothing": ...}`` when an earlier run gave it already."""
    receiver = _receiver()
    claim = Claim.from_dict(claim_data)
    if not receiver.store.is_claimed(claim):
        return {"nothing": "the linkback has its verdict already"}
    attempt = jobs.current_attempt()
    # Run here, the sender waiting: the budget was asked, and is metered, by ``Receiver.receive``.
    budget = nullcontext() if attempt is not None and attempt.here else _within_budget(receiver)
    try:
        with budget:
            return {"status": receiver.verify_claim(claim)}
    except LinkbackError as error:
        return {"refused": error.code, "message": error.message}


def _give_up_webmention(log_id: int) -> None:
    """The process verifying it died on the job's last attempt: the Webmention ends, refused."""
    store = _receiver().store
    if store.webmention_waiting(log_id) is not None:
        store.refuse_webmention(log_id, LinkbackError(GENERIC, "The Webmention could not be verified: the process "
                                                               "verifying it stopped, on every attempt."), remove=False)


@jobs.task(WEBMENTION_TASK, on_give_up=_give_up_webmention, lane=jobs.LINKBACKS)
def verify_webmention(log_id: int) -> str:
    """"verified", "refused", "error" or "nothing to do"; a source that failed for a moment is
    tried again (``TransientJobError``) while attempts are left, the Webmention still waiting."""
    receiver = _receiver()
    if receiver.store.webmention_waiting(log_id) is None:
        return "nothing to do"
    attempt = jobs.current_attempt()
    try:
        with _within_budget(receiver):
            return receiver.verify_webmention(log_id, may_retry=attempt is not None and not attempt.last)
    except TryLater as exc:
        raise jobs.TransientJobError(exc.message, status=exc.status) from None
