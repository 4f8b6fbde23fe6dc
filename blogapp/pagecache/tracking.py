"""Every change readers could see bumps the parts it touches, in its own transaction.

SQLAlchemy session events, for every session of every app: after a flush, the parts its objects
touch (``scopes.touched_by``); for ``update()``/``delete()`` statements, which bypass the flush,
the coarse part of their table (``scopes.BY_TABLE``), unless the statement is executed with
``execution_options(unseen_by_readers=True)``.
"""
from __future__ import annotations

from itertools import chain

from sqlalchemy import event
from sqlalchemy.orm import Session

from .listener import tell_listeners_here
from .scopes import BY_TABLE, touched_by
from .versions import bump


@event.listens_for(Session, "after_flush")
def _bump_after_flush(session, flush_context):
    # (Still the flush's own view here: the objects' histories, and ids given to new rows.)
    touched = set()
    for obj in chain(session.new, session.deleted):
        touched |= touched_by(obj, new=obj in session.new, deleted=obj in session.deleted)
    for obj in session.dirty:
        if session.is_modified(obj):  # (dirty also holds objects given back the values they had)
            touched |= touched_by(obj)
    if touched:
        bump(session, touched)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_bulk_change(state):
    if not (state.is_update or state.is_delete) or state.execution_options.get("unseen_by_readers"):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in BY_TABLE:
        bump(state.session, BY_TABLE[table.name])


# Both fire for savepoints too: only the outermost transaction's end counts.
@event.listens_for(Session, "after_commit")
def _tell_listeners(session):
    if not session.in_nested_transaction() and session.info.pop("version_bumped", False):
        tell_listeners_here()


@event.listens_for(Session, "after_rollback")
def _forget_bump(session):
    if not session.in_nested_transaction():
        session.info.pop("version_bumped", None)
