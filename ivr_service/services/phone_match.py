"""Lookups of the number-keyed tables that must also match purged numbers.

The retention purge and citizens' erasures (``services/retention.py``) keep a number only
as its keyed hash (``core.pseudonym``). A refusal must still be honoured and the per-number
caps must still hold, so every check of ``opt_outs``, ``number_calls`` and past
invitations compares a row with the plain number *and* its hash. The key comes with the
session (``Database``); without one nothing was ever hashed, and only plain numbers match.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ..core.pseudonym import stored_forms
from ..persistence.models import NumberCall, OptOut

_CHUNK = 500   # numbers per IN list (each brings its hash: 1,000 parameters)
# Built once: the feed asks it for every report.
_OPTED_OUT = select(OptOut.phone_e164).where(OptOut.phone_e164.in_(bindparam("phones", expanding=True)))


def hash_key(session: Session) -> str | None:
    key = session.info.get("phone_hash_key")
    return key if isinstance(key, str) and key else None


def forms(session: Session, phones: Iterable[str]) -> dict[str, str]:
    """Stored form (plain or hashed) → plain number, for the numbers given."""
    return stored_forms(hash_key(session), phones)


def opted_out(session: Session, phones: Iterable[str]) -> set[str]:
    """The numbers among ``phones`` on the do-not-contact list, plain or hashed."""
    found: set[str] = set()
    phones = list(dict.fromkeys(phones))
    for start in range(0, len(phones), _CHUNK):
        mapping = forms(session, phones[start:start + _CHUNK])
        found |= {mapping[stored] for stored in session.connection().execute(_OPTED_OUT, {"phones": list(mapping)})
                  .scalars()}
    return found


def is_opted_out(session: Session, phone: str) -> bool:
    return bool(opted_out(session, [phone]))


def opt_out_entry(session: Session, phone: str) -> OptOut | None:
    """The list's entry for the number, plain or hashed (the plain one first)."""
    entries = session.scalars(select(OptOut).where(OptOut.phone_e164.in_(list(forms(session, [phone]))))).all()
    return min(entries, key=lambda e: e.phone_e164 != phone, default=None)


def last_calls(session: Session, phones: Iterable[str], since: datetime) -> dict[str, datetime]:
    """When each of ``phones`` last answered one of our calls, if after ``since``."""
    mapping = forms(session, phones)
    if not mapping:
        return {}
    found: dict[str, datetime] = {}
    rows = session.execute(select(NumberCall.phone_e164, func.max(NumberCall.last_call_at))
                           .where(NumberCall.phone_e164.in_(list(mapping)), NumberCall.last_call_at > since)
                           .group_by(NumberCall.phone_e164))
    for stored, moment in rows:
        plain = mapping[stored]
        found[plain] = max(found.get(plain, moment), moment)
    return found
