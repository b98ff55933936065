"""The audit log: who did what, when, from where. Entries are written in the same
transaction as the action they record, so an action and its entry commit together or not
at all; failed sign-ins are recorded in their own transaction. Phone numbers never go into
an entry (opt-outs are recorded by a masked number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from ..core.access import Principal
from ..persistence.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who acts: a principal from the web edge, or the command line's operating-system user."""

    label: str                      # "user:3 an", "token:5 mot-cua", "cli:root", "anonymous"
    address: str | None = None      # the client's address, for web requests

    @classmethod
    def of(cls, principal: Principal, address: str | None) -> Actor:
        return cls(f"{principal.kind}:{principal.id} {principal.name}", address)


def record(session: Session, actor: Actor, action: str, now: datetime, target: str | None = None,
           agency_id: int | None = None, **detail: Any) -> None:
    """Add an entry to the session: it is flushed with the action's own changes."""
    session.add(AuditEntry(**_values(actor, action, now, target, agency_id, detail)))


def record_at_once(session: Session, actor: Actor, action: str, now: datetime, target: str | None = None,
                   agency_id: int | None = None, **detail: Any) -> None:
    """Insert an entry now with one Core statement, in the session's transaction: no
    unit-of-work flush, for hot paths whose entry refers to nothing still pending."""
    session.connection().execute(_INSERT, _values(actor, action, now, target, agency_id, detail))


def _values(actor: Actor, action: str, now: datetime, target: str | None, agency_id: int | None,
            detail: dict[str, Any]) -> dict[str, Any]:
    return {"at": now, "actor": actor.label[:120], "action": action, "target": target, "agency_id": agency_id,
            "address": actor.address, "detail": detail or None}


_INSERT = insert(AuditEntry)


def entries(session: Session, limit: int = 100, before_id: int | None = None, action: str | None = None,
            agencies: set[int] | None = None, *, actor: str | None = None, since: datetime | None = None,
            until: datetime | None = None) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages back; ``agencies`` limits to entries about those
    agencies (None: all); ``actor`` matches part of the actor's label, in any case;
    ``since`` (included) and ``until`` (excluded) bound the time."""
    query = _filtered(select(AuditEntry), agencies, action=action, actor=actor, since=since, until=until)
    query = query.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))


def actions(session: Session, agencies: set[int] | None = None) -> list[str]:
    """The actions recorded about ``agencies`` (None: all), in alphabetical order."""
    query = _filtered(select(AuditEntry.action).distinct(), agencies)
    return sorted(session.scalars(query))


def _filtered(query: Select[Any], agencies: set[int] | None, *, action: str | None = None,
              actor: str | None = None, since: datetime | None = None, until: datetime | None = None) -> Select[Any]:
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if agencies is not None:
        query = query.where(AuditEntry.agency_id.in_(agencies))
    if actor:
        query = query.where(func.lower(AuditEntry.actor).contains(actor.strip().lower(), autoescape=True))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return query
