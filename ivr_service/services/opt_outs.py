"""The do-not-contact list as operators see and change it: look a number up, list the
newest entries, add a number (a citizen who refused on the hotline), take one off again.
Citizens' own refusals (the 9 key, a refusal SMS, the web form's link, the carrier's
21610) go straight through ``contacts.opt_out``.

Decree 91/2020: a refusal is honoured at once and kept at least a year. Nothing in the
service removes an entry by itself; an operator takes one off only when the citizen asks
to be surveyed again, and must say so: the reason, with when and how the number was put
on the list, goes into the audit log (by the masked number; the log never holds a phone
number), since the entry itself is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ..core.access import mask_phone
from ..persistence.models import Campaign, OptOut
from . import audit, phone_match
from .audit import Actor
from .contacts import opt_out, phone_number
from .errors import NotFound, invalid

# Where an entry came from: the key pressed on a call, an SMS (a refusal word or the
# carrier's 21610), the web form's refusal link, or an operator (console or API).
SOURCES = ("ivr", "sms", "web", "operator")
MAX_REASON = 500


@dataclass(frozen=True)
class Entry:
    id: int
    phone_e164: str
    source: str
    created_at: datetime
    campaign_id: int | None
    campaign_name: str | None
    campaign_agency_id: int | None


def _entries(session: Session, *where: ColumnElement[bool], limit: int | None = None) -> list[Entry]:
    query = (select(OptOut, Campaign.name, Campaign.agency_id)
             .outerjoin(Campaign, Campaign.id == OptOut.campaign_id)
             .where(*where).order_by(OptOut.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return [Entry(o.id, o.phone_e164, o.source, o.created_at, o.campaign_id, name, agency_id)
            for o, name, agency_id in session.execute(query)]


def lookup(session: Session, phone: str) -> tuple[str, Entry | None]:
    """The number as typed (``09…``, ``+84…``, spaces and dots) in E.164, and its entry if
    it is on the list; InvalidInput naming ``phone`` if it is not a number."""
    e164 = phone_number(phone)
    found = _entries(session, OptOut.phone_e164.in_(list(phone_match.forms(session, [e164]))))
    return e164, (found[0] if found else None)


def newest(session: Session, limit: int = 50, before_id: int | None = None) -> list[Entry]:
    """The newest entries first; ``before_id`` pages back."""
    where: list[ColumnElement[bool]] = [] if before_id is None else [OptOut.id < before_id]
    return _entries(session, *where, limit=max(1, min(limit, 1000)))


def add(session: Session, actor: Actor, phone: str, now: datetime) -> str:
    """Put the number on the list (if it is not yet) and stop every pending contact with
    it, in every campaign; returns it in E.164."""
    e164 = phone_number(phone)
    opt_out(session, e164, source="operator", now=now)
    audit.record(session, actor, "opt_out_added", now, phone=mask_phone(e164))
    return e164


def remove(session: Session, actor: Actor, phone: str, reason: str | None, now: datetime) -> str:
    """Take the number off the list because the citizen asked to be surveyed again.
    Contacts the opt-out stopped stay stopped: only future samples may include it."""
    e164 = phone_number(phone)
    reason = (reason or "").strip()
    if not reason:
        raise invalid("reason", "required to take a number off the do-not-contact list (who asked, and how)")
    if len(reason) > MAX_REASON:
        raise invalid("reason", f"at most {MAX_REASON} characters")
    entry = phone_match.opt_out_entry(session, e164)
    if entry is None:
        raise NotFound("phone: not on the do-not-contact list")
    audit.record(session, actor, "opt_out_removed", now, phone=mask_phone(e164), reason=reason,
                 since=entry.created_at.isoformat(), source=entry.source)
    session.delete(entry)
    return e164
