"""The transaction intake: a reported dossier accepted at once and decided moments later.

``POST /api/v1/transactions`` answers with the programme's decision, which costs the
lookups of a decision per request (the agency tree, stored codes, opt-outs, recent
invitations, the period's contacts, the yearly volume). A one-stop-shop system reporting
a burst (every dossier returned at a counter, as it is returned) can instead hand each
record to the intake (``POST /api/v1/transactions/intake``):

1. ``accept`` checks what needs no lookup (``transactions.screen``: fields, types,
   lengths, a mobile number, a readable time) and stores the record with its caller in one
   statement, committed before the answer: 202 with the record's intake id. A record that
   fails the checks is refused at once (422 naming the field), as on the direct route.
2. The worker decides what is queued in batches of up to ``BATCH`` (``drain``), through the
   same ``transactions.report`` as the direct route, with the caller's scope as it was at
   receipt, and with the receipt time (not the drain's) as the record's ``received_at``
   and as the bound a returned time may not pass. The outcome is written to the intake row
   in the same database transaction as the transaction and the contact it created, so a
   crash at any point leaves the row queued (decided again, whole) or decided (never
   twice). On PostgreSQL several workers drain side by side: ``FOR UPDATE SKIP LOCKED``
   gives each its own rows.
3. ``outcome`` answers ``GET /api/v1/transactions/intake/<id>`` for the caller that sent
   it: queued, or decided with the same result the direct route gives (created or
   duplicate with the decision, or an error naming the field).

Once decided, the record and its number are cleared from the intake row: the number
lives on only in ``transactions`` (and its contact), under their retention. Outcomes are
deleted ``KEEP`` after the decision. An erasure request decides the number's queued
records at once as refused (``erase``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from ..core.access import Permission, Principal
from ..persistence.db import Database
from ..persistence.models import TransactionIntake
from . import audit, transactions
from .transactions import RECORD_FIELDS, Record

log = logging.getLogger(__name__)

BATCH = 1000                    # records decided in one database transaction
KEEP = timedelta(days=7)        # how long an outcome can be read after the decision
ERASED = "erased at the citizen's request before it was decided"


@dataclass(frozen=True)
class Caller:
    """Who reported, and where it could report at that moment (its transactions:write
    nodes; None: everywhere)."""

    kind: str
    id: int
    name: str
    nodes: tuple[int | None, ...]
    address: str | None = None

    @classmethod
    def of(cls, principal: Principal, address: str | None) -> Caller:
        nodes = principal.nodes(Permission.TRANSACTIONS_WRITE)
        return cls(principal.kind, principal.id, principal.name,
                   tuple(sorted(nodes, key=lambda n: -1 if n is None else n)), address)

    def principal(self) -> Principal:
        held = frozenset({Permission.TRANSACTIONS_WRITE})
        return Principal(self.kind, self.id, self.name, tuple((held, node) for node in self.nodes))

    def actor(self) -> audit.Actor:
        return audit.Actor(f"{self.kind}:{self.id} {self.name}", self.address)


_T = cast(Table, TransactionIntake.__table__)
_ACCEPT = insert(_T).returning(_T.c.id)


def accept(conn: Connection, data: Any, caller: Caller, now: datetime) -> int:
    """Store one record for the worker to decide; returns its intake id. Raises
    ``transactions.InvalidRecord`` (nothing stored) when a check that needs no lookup fails."""
    record = Record.from_dict(data)
    phone = transactions.screen(record)
    values = {name: data.get(name) for name in RECORD_FIELDS if data.get(name) is not None}
    return int(conn.execute(_ACCEPT, {
        "received_at": now, "caller_kind": caller.kind, "caller_id": caller.id, "caller_name": caller.name,
        "caller_nodes": list(caller.nodes), "address": caller.address, "record": values,
        "phone_e164": phone}).scalar_one())


@dataclass(frozen=True)
class Outcome:
    id: int
    status: str                        # queued | decided
    received_at: datetime
    decided_at: datetime | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


_OUTCOME = select(_T.c.id, _T.c.received_at, _T.c.processed_at, _T.c.outcome).where(
    _T.c.id == bindparam("id"), _T.c.caller_kind == bindparam("kind"), _T.c.caller_id == bindparam("caller"))


def outcome(conn: Connection, intake_id: int, caller: Principal) -> Outcome | None:
    """The record's outcome, for the caller that sent it (anyone else: None, as if absent)."""
    row = conn.execute(_OUTCOME, {"id": intake_id, "kind": caller.kind, "caller": caller.id}).first()
    if row is None:
        return None
    if row.processed_at is None:
        return Outcome(row.id, "queued", row.received_at)
    return Outcome(row.id, "decided", row.received_at, row.processed_at, row.outcome)


_BACKLOG = select(func.count(), func.min(_T.c.received_at)).where(_T.c.processed_at.is_(None))


def backlog(conn: Connection, now: datetime) -> tuple[int, float]:
    """Records queued, and the seconds the oldest has waited (0 with none)."""
    queued, oldest = conn.execute(_BACKLOG).one()
    return int(queued), max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


# --- the worker's side -----------------------------------------------------------------------

_QUEUED = (select(_T.c.id, _T.c.received_at, _T.c.caller_kind, _T.c.caller_id, _T.c.caller_name,
                  _T.c.caller_nodes, _T.c.address, _T.c.record)
           .where(_T.c.processed_at.is_(None)).order_by(_T.c.id))
_DECIDED = (update(_T).where(_T.c.id == bindparam("row_id"))
            .values(processed_at=bindparam("now"), outcome=bindparam("result"), record=None, phone_e164=None))


def drain(db: Database, clock: Callable[[], datetime], batch: int = BATCH) -> int:
    """Decide the queued records, oldest first, ``batch`` per database transaction, until
    none is left; returns how many were decided. Then deletes the outcomes older than
    ``KEEP``."""
    decided = 0
    while True:
        with db.begin() as session:
            rows = session.execute(_QUEUED.limit(batch).with_for_update(skip_locked=True)).all()
            if rows:
                _decide(session, rows, clock())
        decided += len(rows)
        if len(rows) < batch:
            break
    with db.begin() as session:
        session.execute(delete(TransactionIntake).where(TransactionIntake.processed_at < clock() - KEEP))
    return decided


# The database unreachable, a deadlock, a lock or statement timeout: the round gives up and
# its records stay queued for the next one.
_TRANSIENT = (OperationalError, InterfaceError)
FAILED = "record: could not be stored (the database refused it); the operators have the log"


def _decide(session: Session, rows: Sequence[Any], now: datetime) -> None:
    """Decide ``rows`` in the session's transaction: one ``report`` per caller. When a
    caller's records fail for any reason but a transient one (a value or a constraint the
    database refuses, a bug met), they are decided one by one, each in its own savepoint, and
    one that fails alone gets an error outcome instead of blocking the queue."""
    outcomes: dict[int, dict[str, Any]] = {}
    by_caller: dict[Caller, list[Any]] = {}
    for row in rows:
        caller = Caller(row.caller_kind, row.caller_id, row.caller_name, tuple(row.caller_nodes), row.address)
        by_caller.setdefault(caller, []).append(row)
    for caller, group in by_caller.items():
        together = _in_savepoint(session, caller, group, now)
        if not isinstance(together, Exception):
            outcomes.update(together)
            continue
        log.warning("intake: %d records of %s:%d failed together (%s); deciding them one by one",
                    len(group), caller.kind, caller.id, _named(together))
        for row in group:
            alone = _in_savepoint(session, caller, [row], now)
            if isinstance(alone, Exception):
                log.error("intake: record %d could not be decided (%s)", row.id, _named(alone))
                outcomes[row.id] = {"status": "error", "field": "record", "message": FAILED}
            else:
                outcomes.update(alone)
    session.execute(_DECIDED, [{"row_id": row_id, "now": now, "result": result}
                               for row_id, result in outcomes.items()])


def _in_savepoint(session: Session, caller: Caller, rows: Sequence[Any],
                  now: datetime) -> dict[int, dict[str, Any]] | Exception:
    """``_report`` in a savepoint: the outcomes, or the error that rolled it back. A
    transient error is raised: the round gives up."""
    try:
        with session.begin_nested():
            return _report(session, caller, rows, now)
    except _TRANSIENT:
        raise
    except Exception as exc:
        return exc


def _named(exc: Exception) -> str:
    """An error by its type and SQLSTATE: never its text, which may quote the record."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return f"{type(exc).__name__}{f' {state}' if state else ''}"


def _report(session: Session, caller: Caller, rows: Sequence[Any], now: datetime) -> dict[int, dict[str, Any]]:
    records = [replace(Record.from_dict(row.record or {}), received_at=row.received_at) for row in rows]
    reported = transactions.report(session, now, records, source="api", caller=caller.principal(),
                                   actor=caller.actor())
    return {row.id: {k: v for k, v in result.to_dict().items() if k != "index"}
            for row, result in zip(rows, reported.results, strict=True)}


def erase(session: Session, phone_e164: str, now: datetime) -> int:
    """Decide the number's queued records as refused (an erasure request); returns how many."""
    result = {"status": "error", "field": "phone", "message": f"phone: {ERASED}"}
    done = session.execute(
        update(TransactionIntake).where(TransactionIntake.phone_e164 == phone_e164,
                                        TransactionIntake.processed_at.is_(None))
        .values(processed_at=now, outcome=result, record=None, phone_e164=None))
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
