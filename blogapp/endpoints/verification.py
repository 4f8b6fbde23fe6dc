"""The job ``linkback.verify``: the verification of one claimed pingback or trackback.

The claim and this job are written in one commit (``SqlLinkbackStore.claim``). The job runs at
once in the receiving process, with the sender waiting (``run_claimed``), or later from the
queue, paced by the process's CPU budget for verifications. A job run again after its process
died finds its claim either still waiting (it verifies) or given its verdict (nothing to do).
"""
from __future__ import annotations

from flask import current_app

from .. import jobs
from ..linkback.errors import GENERIC, LinkbackError
from ..linkback.receive import Claim
from .store import VERIFY_TASK


def _give_up(claim_data: dict) -> None:
    """The process verifying it died on the job's last attempt: the claim ends, refused, logged."""
    receiver = current_app.extensions["linkback_receiver"]
    claim = Claim.from_dict(claim_data)
    if receiver.store.is_claimed(claim):
        receiver.store.release(claim, LinkbackError(GENERIC, "The linkback could not be verified: the process "
                                                             "verifying it stopped, on every attempt."))


@jobs.task(VERIFY_TASK, on_give_up=_give_up, lane=jobs.LINKBACKS)
def verify_linkback(claim_data: dict) -> dict:
    """The verdict, as JSON: ``{"status": ...}`` (stored), ``{"refused": code, "message": ...}``, or
    ``{"nothing": ...}`` when an earlier run gave it already."""
    receiver = current_app.extensions["linkback_receiver"]
    claim = Claim.from_dict(claim_data)
    if not receiver.store.is_claimed(claim):
        return {"nothing": "the linkback has its verdict already"}
    attempt = jobs.current_attempt()
    if (attempt is None or not attempt.here) and receiver.cpu.exhausted():
        # Queued linkbacks are verified at the budgeted rate: the readers keep the CPU.
        raise jobs.Postpone(max(0.5, receiver.cpu.seconds_until_room()), "the verification CPU budget is spent")
    try:
        return {"status": receiver.verify_claim(claim)}
    except LinkbackError as error:
        return {"refused": error.code, "message": error.message}
