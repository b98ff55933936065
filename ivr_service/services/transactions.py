"""The transaction feed: one-stop-shop systems report each dossier whose result was
returned; the agency's programme decides whether the citizen is invited.

Protocol, for one record or a batch (``report``):

1. Every record is validated first (agency in the caller's scope, code, phone that can
   receive SMS, returned time not in the future, text lengths). Invalid ones get an error
   naming the field; an agency outside the caller's scope gets the same error as an
   unknown one, so codes cannot be probed. With ``atomic`` nothing is stored when any
   record is invalid.
2. Each valid record gets a decision (``TransactionDecision``), in this order:
   no_programme (no active programme, or returned after its ``ends_on``) → opted_out (on
   the do-not-contact list) → recent (invited by any agency in the programme's
   ``recent_days``, or already a contact in that period's campaign) → not_sampled (outside
   the programme's share: ``core.programmes.draw``) → invited.
3. Transactions are inserted with ``INSERT … ON CONFLICT (agency, code) DO NOTHING``: the
   unique key, not a read before the write, decides which of two concurrent reports of the
   same dossier is stored, so a dossier is stored once and gets at most one contact.
   Reporting it again changes nothing and answers the stored decision ("duplicate").
4. An invited transaction becomes a Contact in its period's campaign
   (``programmes.period_campaign``), again with ``ON CONFLICT DO NOTHING`` on (campaign,
   phone): a number is a contact at most once per period; the loser is "recent".

Everything of a batch runs in the caller's database transaction, and the lookups are done
once per batch (agencies, programmes, stored codes, opt-outs, recent invitations, period
campaigns), so a batch of 1,000 costs a handful of queries (``scripts/bench/feed_intake.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import TextClause, and_, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from ..core.access import Permission, Principal, visible
from ..core.phones import normalise
from ..core.programmes import SEED003_TIERS, draw, invited_share
from ..persistence.db import dialect_insert
from ..persistence.models import (
    Agency,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Programme,
    Transaction,
    TransactionDecision,
    new_token,
)
from . import audit, phone_match
from .frame_reader import parse_dates, read_frame
from .programmes import period_campaign, period_for

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
MAX_BATCH = 1000
CODE_MAX = 80
TEXT_MAX = 200
AGENCY_MAX = 40
FUTURE_TOLERANCE = timedelta(minutes=5)
YEAR = timedelta(days=365)
SOURCES = ("api", "file")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 500          # rows per multi-row INSERT (well under both databases' parameter limits)


@dataclass(frozen=True)
class Record:
    """One reported dossier as received (values not yet checked)."""

    agency: Any
    code: Any
    phone: Any
    returned_at: Any                  # aware datetime or ISO 8601 text; naive: the programme's zone
    procedure: Any = None
    field: Any = None
    officer: Any = None
    problem: tuple[str, str] | None = None    # (field, message) found while reading it
    received_at: datetime | None = None       # when it reached the service, if before the call deciding it

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        """A record from a JSON object; anything else, or an unknown key, is an error."""
        if not isinstance(data, dict):
            return cls(None, None, None, None, problem=("record", f"expected an object with "
                                                                  f"{', '.join(RECORD_FIELDS)}"))
        unknown = sorted(str(k) for k in data if k not in RECORD_FIELDS)
        problem = (unknown[0], f"unknown field; expected {', '.join(RECORD_FIELDS)}") if unknown else None
        return cls(**{name: data.get(name) for name in RECORD_FIELDS}, problem=problem)


RECORD_FIELDS = ("agency", "code", "phone", "returned_at", "procedure", "field", "officer")


@dataclass(frozen=True)
class Result:
    """What happened to record ``index`` (0-based, in the order sent).

    ``status``: created | duplicate (already stored: nothing changed, the stored decision
    is given) | error (``field`` and ``message`` say why) | not_stored (valid, but an
    atomic batch held an invalid record)."""

    index: int
    status: str
    decision: str | None = None
    transaction_id: int | None = None
    field: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Reported:
    results: list[Result]
    counts: dict[str, int]                       # by status
    decisions: dict[str, int] = field(default_factory=dict)  # created ones, by decision

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "decisions": self.decisions, "results": [r.to_dict() for r in self.results]}


@dataclass
class _Valid:
    index: int
    agency_id: int
    code: str
    phone: str
    carrier: str | None
    returned_at: datetime
    procedure: str | None
    field: str | None
    officer: str | None
    programme: Programme | None = None
    received_at: datetime | None = None
    decision: str = ""
    share: float = 1.0
    campaign_id: int | None = None


class InvalidRecord(Exception):
    """A record that cannot be stored: ``field`` names what is wrong, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = f"{field}: {message}"


def report(session: Session, now: datetime, records: Sequence[Record], *, source: str,
           within: set[int] | None = None, caller: Principal | None = None, actor: audit.Actor | None = None,
           atomic: bool = False) -> Reported:
    """Validate, decide and store ``records`` (see the module docstring). The agencies the
    caller may report for are ``within`` (None: all), or, with ``caller``, those where it
    holds transactions:write (read with the named agencies: only their branch of the tree).
    Records the batch in the audit log (counts only: no numbers) when ``actor`` is given."""
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {SOURCES}, got {source!r}")
    results: dict[int, Result] = {}
    agencies, parents, programmes = _agencies(session, records)
    if caller is not None:
        allowed = visible(caller, Permission.TRANSACTIONS_WRITE, parents)
        within = allowed if within is None or allowed is None else within & allowed
    valid: list[_Valid] = []
    for index, record in enumerate(records):
        try:
            valid.append(_check(index, record, agencies, programmes, within, now))
        except InvalidRecord as exc:
            results[index] = Result(index, "error", field=exc.field, message=exc.message)
    if atomic and results:
        for item in valid:
            results[item.index] = Result(item.index, "not_stored",
                                         message="nothing stored: another record of this atomic batch is invalid")
        return _reported(results, len(records))
    # The first of several records with one (agency, code) counts; the others are duplicates.
    first: dict[tuple[int, str], _Valid] = {}
    repeats: list[tuple[_Valid, _Valid]] = []
    for item in valid:
        key = (item.agency_id, item.code)
        if key in first:
            repeats.append((item, first[key]))
        else:
            first[key] = item
    stored = _stored(session, list(first))
    new = [item for key, item in first.items() if key not in stored]
    for key, item in first.items():
        if key in stored:
            results[item.index] = Result(item.index, "duplicate", stored[key][1], stored[key][0])
    _decide(session, new, now)
    inserted = _insert_transactions(session, new, source, now)
    late = [item for item in new if (item.agency_id, item.code) not in inserted]
    if late:     # stored by a concurrent report since we looked
        stored.update(_stored(session, [(i.agency_id, i.code) for i in late]))
        for item in late:
            tx_id, decision = stored[(item.agency_id, item.code)]
            results[item.index] = Result(item.index, "duplicate", decision, tx_id)
    created = [item for item in new if (item.agency_id, item.code) in inserted]
    _invite(session, [item for item in created if item.decision == TransactionDecision.INVITED], inserted, now)
    for item in created:
        results[item.index] = Result(item.index, "created", item.decision, inserted[(item.agency_id, item.code)])
    for item, original in repeats:
        done = results[original.index]
        results[item.index] = Result(item.index, "duplicate", done.decision, done.transaction_id)
    reported = _reported(results, len(records))
    if actor is not None and (reported.counts["created"] or reported.counts["duplicate"]):
        touched = {item.agency_id for item in valid}
        audit.record_at_once(session, actor, "transactions_reported", now,
                             agency_id=next(iter(touched)) if len(touched) == 1 else None, source=source,
                             counts=reported.counts, decisions=reported.decisions)
    return reported


def _reported(results: dict[int, Result], total: int) -> Reported:
    ordered = [results[i] for i in range(total)]
    counts = {status: 0 for status in ("created", "duplicate", "error", "not_stored")}
    decisions: dict[str, int] = {}
    for result in ordered:
        counts[result.status] += 1
        if result.status == "created" and result.decision:
            decisions[result.decision] = decisions.get(result.decision, 0) + 1
    return Reported(ordered, counts, decisions)


# --- validation ------------------------------------------------------------------------------

# The lookups, built once with expanding IN lists and run on the session's connection (a
# single report is mostly these: built, cache-keyed and compiled afresh, or run through the
# ORM's execution path, they cost more than the database's work).
# The named agencies and the agencies above them (what the caller's scope is decided on),
# each with its active programme, in one statement.
_CHAIN = (select(Agency.id, Agency.parent_id, Agency.code)
          .where(Agency.code.in_(bindparam("codes", expanding=True))).cte("chain", recursive=True))
_CHAIN = _CHAIN.union(select(Agency.id, Agency.parent_id, Agency.code).join(_CHAIN, Agency.id == _CHAIN.c.parent_id))
_AGENCIES = (select(_CHAIN.c.id, _CHAIN.c.parent_id, _CHAIN.c.code, Programme)
             .outerjoin(Programme, and_(Programme.agency_id == _CHAIN.c.id, Programme.active.is_(True))))
_STORED = (select(Transaction.id, Transaction.agency_id, Transaction.code, Transaction.decision)
           .where(Transaction.agency_id.in_(bindparam("agencies", expanding=True)),
                  Transaction.code.in_(bindparam("codes", expanding=True))))
_LAST_INVITED = (select(Transaction.phone_e164, func.max(Transaction.decided_at))
                 .where(Transaction.phone_e164.in_(bindparam("phones", expanding=True)),
                        Transaction.decision == TransactionDecision.INVITED,
                        Transaction.decided_at >= bindparam("since"))
                 .group_by(Transaction.phone_e164))
_IN_PERIOD = (select(Campaign.programme_id, Campaign.period_start, Contact.phone_e164)
              .join(Contact, Contact.campaign_id == Campaign.id)
              .where(Campaign.programme_id.in_(bindparam("programmes", expanding=True)),
                     Contact.phone_e164.in_(bindparam("phones", expanding=True))))
# The seed-003 tiers only tell volumes apart below their highest bound, so the yearly
# count stops there: it costs the same at 1,000 transactions a year as at a million.
_TIER_CAP = max(bound for bound, _share in SEED003_TIERS if bound is not None)
_YEARLY = select(func.count()).select_from(
    select(Transaction.id).where(Transaction.agency_id == bindparam("agency"),
                                 Transaction.returned_at >= bindparam("since")).limit(_TIER_CAP).subquery())


def _agencies(session: Session, records: Sequence[Record]) -> tuple[
        dict[str, tuple[int, str]], dict[int, int | None], dict[int, Programme]]:
    """code → (id, code) of the named agencies that exist; the tree above them (child →
    parent); each one's active programme."""
    codes = {r.agency.strip() for r in records if isinstance(r.agency, str) and r.agency.strip()}
    named: dict[str, tuple[int, str]] = {}
    parents: dict[int, int | None] = {}
    programmes: dict[int, Programme] = {}
    if codes:
        for agency_id, parent_id, code, programme in session.execute(_AGENCIES, {"codes": sorted(codes)}):
            parents[agency_id] = parent_id
            if code in codes:
                named[code] = (agency_id, code)
            if programme is not None:
                programmes[agency_id] = programme
    return named, parents, programmes


def _text(name: str, value: Any, limit: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRecord(name, "required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRecord(name, f"expected text, got {type(value).__name__}")
    text = " ".join(str(value).split())
    if len(text) > limit:
        raise InvalidRecord(name, f"at most {limit} characters, got {len(text)}")
    control = _CONTROL.search(text)
    if control is not None:   # PostgreSQL refuses U+0000 in text; none belongs in a code or a name
        raise InvalidRecord(name, f"control character U+{ord(control.group()):04X} at position {control.start() + 1}")
    return text


def parse_moment(value: Any, timezone: str) -> datetime:
    """An aware datetime from a datetime or ISO 8601 text; a value without an offset is
    read in ``timezone``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidRecord("returned_at", f"expected ISO 8601 such as 2026-11-17T09:30:00+07:00, got {value!r}") \
                from None
    elif value is None or isinstance(value, str):
        raise InvalidRecord("returned_at", "required")
    else:
        raise InvalidRecord("returned_at", f"expected ISO 8601 text, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRecord("returned_at", f"out of range: {value!r}") from None


def screen(record: Record) -> str:
    """The checks a record passes before anything is looked up: the fields present, of the
    right types and lengths, a mobile number, a readable returned time. Returns the
    number in E.164; raises :class:`InvalidRecord` naming the field. The agency, the
    caller's scope and whether the time lies in the future are checked when the record is
    decided (``report``)."""
    if record.problem is not None:
        raise InvalidRecord(*record.problem)
    _text("agency", record.agency, AGENCY_MAX, required=True)
    _text("code", record.code, CODE_MAX, required=True)
    e164, _carrier = _phone(record.phone)
    parse_moment(record.returned_at, DEFAULT_TIMEZONE)
    for name in ("procedure", "field", "officer"):
        _text(name, getattr(record, name), TEXT_MAX)
    return e164


def _phone(value: Any) -> tuple[str, str | None]:
    """A mobile number that can receive SMS: (E.164, carrier)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRecord("phone", "required")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRecord("phone", f"expected text, got {type(value).__name__}")
    phone = normalise(str(value))
    if phone.e164 is None:
        raise InvalidRecord("phone", phone.reason or "not a phone number")
    if not phone.can_sms:
        raise InvalidRecord("phone", "landline: cannot receive SMS")
    return phone.e164, phone.carrier


def _check(index: int, record: Record, agencies: dict[str, tuple[int, str]], programmes: dict[int, Programme],
           within: set[int] | None, now: datetime) -> _Valid:
    if record.problem is not None:
        raise InvalidRecord(*record.problem)
    agency = _text("agency", record.agency, AGENCY_MAX, required=True)
    assert agency is not None
    found = agencies.get(agency)
    if found is None or (within is not None and found[0] not in within):
        raise InvalidRecord("agency", f"unknown agency code {agency!r}")
    agency_id = found[0]
    code = _text("code", record.code, CODE_MAX, required=True)
    assert code is not None
    phone, carrier = _phone(record.phone)
    programme = programmes.get(agency_id)
    returned_at = parse_moment(record.returned_at, programme.timezone if programme else DEFAULT_TIMEZONE)
    received = record.received_at or now
    if returned_at > received + FUTURE_TOLERANCE:
        raise InvalidRecord("returned_at", f"in the future: {returned_at.isoformat()} is after "
                                           f"{'its receipt' if record.received_at else 'now'} "
                                           f"({received.astimezone(UTC).isoformat()})")
    return _Valid(index, agency_id, code, phone, carrier, returned_at,
                  _text("procedure", record.procedure, TEXT_MAX), _text("field", record.field, TEXT_MAX),
                  _text("officer", record.officer, TEXT_MAX), programme, record.received_at)


# --- decisions ---------------------------------------------------------------------------------

def _stored(session: Session, keys: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, str]]:
    """(agency, code) → (transaction id, decision) of those already stored."""
    wanted = set(keys)
    found: dict[tuple[int, str], tuple[int, str]] = {}
    agency_ids = sorted({agency_id for agency_id, _ in wanted})
    codes = sorted({code for _, code in wanted})
    conn = session.connection()
    for start in range(0, len(codes), _CHUNK):
        for tx_id, agency_id, code, decision in conn.execute(
                _STORED, {"agencies": agency_ids, "codes": codes[start:start + _CHUNK]}):
            if (agency_id, code) in wanted:
                found[(agency_id, code)] = (tx_id, decision)
    return found


def _decide(session: Session, items: list[_Valid], now: datetime) -> None:
    taking = []
    for item in items:
        programme = item.programme
        if programme is None or (programme.ends_on is not None and
                                 item.returned_at.astimezone(ZoneInfo(programme.timezone)).date() > programme.ends_on):
            item.decision = TransactionDecision.NO_PROGRAMME
        else:
            taking.append(item)
    if not taking:
        return
    conn = session.connection()
    phones = sorted({item.phone for item in taking})
    opted_out = phone_match.opted_out(session, phones)
    longest = max(item.programme.recent_days for item in taking if item.programme is not None)
    last_invited: dict[str, datetime] = {}
    if longest:
        # Half a chunk of numbers at a time: each brings its hash (a purged invitation).
        for start in range(0, len(phones), _CHUNK // 2):
            mapping = phone_match.forms(session, phones[start:start + _CHUNK // 2])
            for stored, moment in conn.execute(
                    _LAST_INVITED, {"phones": list(mapping), "since": now - timedelta(days=longest)}):
                if moment is not None:
                    phone = mapping[stored]
                    last_invited[phone] = max(last_invited.get(phone, moment), moment)
    programme_ids = sorted({item.programme.id for item in taking if item.programme is not None})
    in_period: set[tuple[Any, Any, str]] = set()       # (programme, period start, phone)
    for start in range(0, len(phones), _CHUNK):
        for programme_id, period_start, phone in conn.execute(
                _IN_PERIOD, {"programmes": programme_ids, "phones": phones[start:start + _CHUNK]}):
            in_period.add((programme_id, period_start, phone))
    yearly = _yearly(session, {item.programme.agency_id for item in taking
                               if item.programme is not None and item.programme.share_mode == "seed003"}, now)
    invited_now: set[str] = set()
    for item in taking:
        programme = item.programme
        assert programme is not None
        period_start = period_for(programme, item.returned_at).start
        latest = last_invited.get(item.phone)
        if item.phone in opted_out:
            item.decision = TransactionDecision.OPTED_OUT
        elif (item.phone in invited_now or (programme.id, period_start, item.phone) in in_period
              or (programme.recent_days and latest is not None
                  and latest >= now - timedelta(days=programme.recent_days))):
            item.decision = TransactionDecision.RECENT
        else:
            item.share = invited_share(programme.share_mode, programme.share, programme.expected_response,
                                       yearly.get(programme.agency_id, 0))
            if draw(programme.seed, item.agency_id, item.code, item.share):
                item.decision = TransactionDecision.INVITED
                invited_now.add(item.phone)
            else:
                item.decision = TransactionDecision.NOT_SAMPLED


def _yearly(session: Session, agency_ids: set[int], now: datetime) -> dict[int, int]:
    """Transactions each agency reported as returned in the last 365 days, up to the highest
    seed-003 tier bound: the volume the share tiers are read from."""
    conn = session.connection()
    return {agency_id: conn.execute(_YEARLY, {"agency": agency_id, "since": now - YEAR}).scalar_one()
            for agency_id in sorted(agency_ids)}


# --- storing -----------------------------------------------------------------------------------

def _insert_transactions(session: Session, items: list[_Valid], source: str,
                         now: datetime) -> dict[tuple[int, str], int]:
    """Insert; returns (agency, code) → id of the rows this call stored."""
    stored: dict[tuple[int, str], int] = {}
    rows = [{"agency_id": i.agency_id, "code": i.code, "procedure": i.procedure, "field": i.field,
             "phone_e164": i.phone, "officer": i.officer, "returned_at": i.returned_at,
             "received_at": i.received_at or now,
             "source": source, "decision": str(i.decision), "decided_at": now,
             "programme_id": i.programme.id if i.programme is not None else None, "contact_id": None}
            for i in items]
    for tx_id, agency_id, code in _insert_new(session, Transaction.__table__, rows, ("agency_id", "code"),
                                              ("id", "agency_id", "code")):
        stored[(agency_id, code)] = tx_id
    return stored


# PostgreSQL array types of the columns the feed inserts, for INSERT … SELECT unnest(…).
_PG_ARRAYS = {"INTEGER": "integer[]", "FLOAT": "float8[]", "DATE": "date[]", "TEXT": "text[]"}


def _insert_new(session: Session, table: Any, rows: list[dict[str, Any]], unique: tuple[str, ...],
                returning: tuple[str, ...]) -> list[Any]:
    """``INSERT … ON CONFLICT (unique) DO NOTHING RETURNING …`` of ``rows``: the rows this
    call stored. On PostgreSQL one statement whose parameters are one array per column
    (``unnest``), so a batch of 1,000 costs one short statement instead of 13,000 bound
    values; elsewhere an executemany that SQLAlchemy batches into multi-row INSERTs."""
    if not rows:
        return []
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        statement = (dialect_insert(session)(table).on_conflict_do_nothing(index_elements=list(unique))
                     .returning(*(table.c[name] for name in returning)))
        return list(conn.execute(statement, rows))
    columns = tuple(rows[0])
    values = {name: [_plain(row[name]) for row in rows] for name in columns}
    return list(conn.execute(_unnest_insert(table, columns, unique, returning), values))


@lru_cache(maxsize=16)
def _unnest_insert(table: Any, columns: tuple[str, ...], unique: tuple[str, ...],
                   returning: tuple[str, ...]) -> TextClause:
    """``INSERT … SELECT * FROM unnest(one array per column) ON CONFLICT DO NOTHING``,
    built once per table and column list."""
    arrays = []
    for name in columns:
        kind = table.c[name].type
        impl = getattr(kind, "impl", kind)
        sql_type = ("timestamptz[]" if getattr(impl, "timezone", False)
                    else _PG_ARRAYS.get(type(impl).__name__.upper().replace("VARCHAR", "TEXT")
                                        .replace("STRING", "TEXT").replace("ENUM", "TEXT"), "text[]"))
        arrays.append(f"CAST(:{name} AS {sql_type})")
    return text(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)}) "
                f"ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {', '.join(returning)}")


def _plain(value: Any) -> Any:
    """A value as a PostgreSQL array element: enums by value, times in UTC."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _invite(session: Session, items: list[_Valid], inserted: dict[tuple[int, str], int], now: datetime) -> None:
    """Contacts for the invited transactions; a number already a contact of the period's
    campaign (a concurrent report) leaves its transaction "recent" instead."""
    if not items:
        return
    campaigns: dict[tuple[int, date], Campaign] = {}
    rows = []
    for item in items:
        programme = item.programme
        assert programme is not None
        period = period_for(programme, item.returned_at)
        campaign = campaigns.get((programme.id, period.start))
        if campaign is None:
            campaign = campaigns[(programme.id, period.start)] = period_campaign(session, programme,
                                                                                item.returned_at, now)
            session.flush()
        if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
            item.decision = TransactionDecision.NO_PROGRAMME     # that period is closed
            continue
        item.campaign_id = campaign.id
        plan = campaign.channel_plan or [{"channel": "sms"}]
        rows.append({
            "campaign_id": campaign.id, "respondent_id": new_token(), "phone_e164": item.phone,
            "phone_kind": "mobile", "carrier": item.carrier, "name": None, "transaction_code": item.code,
            "field": item.field, "procedure": item.procedure, "stratum_id": None,
            "stratum_weight": 1.0 / item.share, "replicate": 0,
            "returned_on": item.returned_at.astimezone(ZoneInfo(programme.timezone)).date(),
            "status": ContactStatus.PENDING, "attempt_count": 0, "channel": plan[0]["channel"],
            "channel_attempts": 0, "next_attempt_at": item.returned_at + timedelta(minutes=programme.delay_minutes),
            "disposition": None, "created_at": now})
    contacts: dict[tuple[int, str], int] = {}
    for contact_id, campaign_id, phone in _insert_new(session, Contact.__table__, rows, ("campaign_id", "phone_e164"),
                                                      ("id", "campaign_id", "phone_e164")):
        contacts[(campaign_id, phone)] = contact_id
    changes: list[dict[str, Any]] = []
    for item in items:
        tx_id = inserted[(item.agency_id, item.code)]
        contact_id = contacts.get((item.campaign_id, item.phone)) if item.campaign_id is not None else None
        if contact_id is not None:
            changes.append({"id": tx_id, "contact_id": contact_id})
        else:
            if item.decision == TransactionDecision.INVITED:
                item.decision = TransactionDecision.RECENT
            changes.append({"id": tx_id, "decision": str(item.decision)})
    for kind in ("contact_id", "decision"):
        batch = [c for c in changes if kind in c]
        if batch:
            session.execute(update(Transaction), batch)


# --- files (systems that can only export) ------------------------------------------------------

# Canonical record field → accepted headers, folded (frame_reader.fold: no diacritics, lower case).
FILE_HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("ma ho so", "so ho so", "ma so ho so", "code", "transaction code", "dossier code", "dossier no"),
    "agency": ("ma don vi", "ma co quan", "don vi", "co quan", "agency", "agency code", "unit"),
    "procedure": ("thu tuc", "ten thu tuc", "ten thu tuc hanh chinh", "procedure", "procedure name"),
    "field": ("linh vuc", "ten linh vuc", "field", "sector"),
    "phone": ("so dien thoai", "sdt", "dien thoai", "so dt", "dien thoai lien he", "phone", "phone number",
              "mobile"),
    "returned_at": ("ngay tra ket qua", "thoi gian tra ket qua", "ngay tra", "ngay tra kq", "returned at",
                    "returned", "return date"),
    "officer": ("can bo", "can bo xu ly", "can bo tra ket qua", "officer", "handling officer"),
}
FILE_REQUIRED = ("code", "agency", "phone", "returned_at")


def read_file(source: Any, encoding: str | None = None,
              column_map: dict[str, str] | None = None) -> tuple[list[int], list[Record], Any]:
    """The records of a CSV or XLSX export, with their spreadsheet row numbers and the
    reader's report (header row, ignored title, blank and totals rows). Dates may be ISO
    8601, dd/mm/yyyy [hh:mm[:ss]] or Excel date cells; without an offset they are local
    time in the programme's zone."""
    body, read = read_frame(source, encoding, column_map, headers=FILE_HEADERS, required=FILE_REQUIRED)
    parsed: dict[Any, Any] = dict(zip(body.index, parse_dates(body["returned_at"]), strict=True))
    rows, records = [], []
    for number, values in body.iterrows():
        cells = {name: _cell(values.get(name)) for name in RECORD_FIELDS if name in body.columns}
        raw = values.get("returned_at")
        moment: Any = cells.get("returned_at")
        if isinstance(raw, datetime):
            moment = raw.to_pydatetime() if isinstance(raw, pd.Timestamp) else raw
        elif isinstance(moment, str):
            try:
                moment = datetime.fromisoformat(moment)
            except ValueError:
                found = parsed.get(number)
                if found is not None and not pd.isna(found):
                    moment = found.to_pydatetime()
        cells["returned_at"] = moment
        rows.append(int(str(number)))
        records.append(Record(**cells))
    return rows, records, read


def _cell(value: Any) -> Any:
    """A spreadsheet cell as text: numbers Excel stored for codes and phones lose their ".0"."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | str):
        return str(value).strip() or None
    return value
