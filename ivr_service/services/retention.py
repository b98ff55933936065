"""Personal data lifecycle (issue 17): the retention purge and citizens' requests.

What is personal: a citizen's phone number, name and dossier code (``contacts``,
``transactions``, ``messages``, ``inbound_messages``) and the number-keyed tables of the
do-not-contact list and the per-number caps (``opt_outs``, ``number_calls``,
``number_messages``). Answers are keyed by the pseudonymous ``respondent_id`` and stay.

**The purge.** A campaign's personal data is purged once it is closed, its final export
written (a completed campaign; a cancelled one gets none) and its agency's retention
(``agencies.retention_days``, else ``SIPAS_RETENTION_DAYS``) has passed since it closed
(``core.pseudonym.purge_due``): names and dossier codes are deleted, numbers replaced by
their keyed hash, inbound message texts emptied, and ``campaigns.purged_at`` set.
``transactions.code`` cannot be NULL (it keeps a re-reported dossier from counting twice),
so it is hashed as well. Transactions that never became a contact are purged by the same
retention counted from their decision. Opt-outs are hashed a year after they were made and
never deleted; cap rows once they no longer limit anything (``core.pseudonym``). Lookups
match plain and hashed rows alike (``services/phone_match.py``).

Every worker schedules it; it runs once per hour across the cluster (advisory lock and a
``job_runs`` row, like ``services/weekly.py``), records its counts (never a number) in the
run's detail and the audit log, and changes nothing when run again. Without
``SIPAS_PHONE_HASH_KEY`` it refuses, logs why and touches nothing.

**Citizens' requests** (PDPL 91/2025/QH15): :func:`holdings` answers "what do you hold
about this number?", :func:`erase` deletes it as the purge does, at once, in every
campaign; a refusal on the list stays, by hash, so it is still honoured. Both are audited
with the number masked and hashed, never in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from ..core.access import mask_phone
from ..core.dispositions import OPTED_OUT
from ..core.pseudonym import CAP_CLEAR, OPT_OUT_CLEAR_DAYS, is_hashed, phone_hash, purge_due, retention_days
from ..persistence.db import Database
from ..persistence.models import (
    FINAL_MESSAGE_STATUSES,
    Agency,
    Attempt,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    InboundMessage,
    JobRun,
    Message,
    MessageStatus,
    NumberCall,
    NumberMessages,
    OptOut,
    Transaction,
    TransactionIntake,
)
from . import audit, intake
from .audit import Actor
from .campaigns import EXPORT_REMOVED, export_removed_period
from .contacts import phone_number
from .errors import Conflict, invalid

log = logging.getLogger(__name__)

JOB = "retention"
KEY_SETTING = "SIPAS_PHONE_HASH_KEY"
MAX_REASON = 500
SYSTEM = Actor("system:retention")


@dataclass
class Counts:
    """Rows changed, by kind; what the run's detail and the audit log keep."""

    campaigns: int = 0
    contacts: int = 0
    transactions: int = 0
    messages: int = 0
    inbound_messages: int = 0
    opt_outs: int = 0
    number_calls: int = 0
    number_messages: int = 0

    def add(self, other: Counts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def total(self) -> int:
        return sum(asdict(self).values())


# --- the purge -------------------------------------------------------------------------------

def run_if_due(db: Database, now: datetime, default_days: int, key: str | None) -> Counts | None:
    """Purge what is due, once per hour across the cluster; the counts when this call ran
    it, None when it refused (no key) or another worker ran or is running it."""
    if not key:
        # Said only when something is due, so a laptop without the key is not nagged.
        due = due_campaigns(db, now, default_days)
        if due:
            log.error("retention purge not run: %s is not set; %d campaign(s) past their retention keep their "
                      "personal data until it is (set it once, to a long random secret, and never change it)",
                      KEY_SETTING, len(due))
        return None
    period = now.strftime("%Y-%m-%dT%H")
    with db.cluster_lock(JOB) as mine:
        if not mine:
            return None
        with db.begin() as session:
            run = session.get(JobRun, (JOB, period))
            if run is not None and run.finished_at is not None:
                return None
            if run is None:
                session.add(JobRun(name=JOB, period=period, started_at=now))
            else:
                run.started_at = now
        counts = purge(db, now, default_days, key)
        with db.begin() as session:
            run = session.get(JobRun, (JOB, period))
            assert run is not None
            run.finished_at = now
            run.detail = asdict(counts)
            audit.record(session, SYSTEM, "retention_purge", now, **asdict(counts))
    log.info("retention purge %s: %s", period, asdict(counts))
    return counts


def purge(db: Database, now: datetime, default_days: int, key: str) -> Counts:
    """Purge every campaign due (one transaction each), then the transactions that never
    became contacts, the old opt-outs and the cap rows no longer needed."""
    counts = Counts()
    for campaign_id in due_campaigns(db, now, default_days):
        with db.begin() as session:
            counts.add(purge_campaign(session, key, campaign_id, now))
    with db.begin() as session:
        counts.transactions += _purge_lone_transactions(session, key, now, default_days)
        counts.opt_outs += _hash_keyed(session, key, OptOut, OptOut.created_at,
                                       now - timedelta(days=OPT_OUT_CLEAR_DAYS))
        counts.number_calls += _hash_keyed(session, key, NumberCall, NumberCall.last_call_at, now - CAP_CLEAR)
        counts.number_messages += _hash_keyed(session, key, NumberMessages, NumberMessages.last_message_at,
                                              now - CAP_CLEAR)
    return counts


def due_campaigns(db: Database, now: datetime, default_days: int) -> list[int]:
    with db.begin() as session:
        rows = session.execute(
            select(Campaign.id, Campaign.status, Campaign.completed_at, Campaign.export_path, Agency.retention_days)
            .join(Agency, Agency.id == Campaign.agency_id)
            .where(Campaign.purged_at.is_(None),
                   Campaign.status.in_([CampaignStatus.COMPLETED, CampaignStatus.CANCELLED]))
            .order_by(Campaign.id)).all()
        # A final export removed by SIPAS_EXPORT_RETENTION_DAYS (its path cleared) was written.
        removed = set(session.scalars(select(JobRun.period).where(JobRun.name == EXPORT_REMOVED)))
    return [cid for cid, status, closed, export, days in rows
            if purge_due(status.value, closed, export or ("removed" if export_removed_period(cid) in removed
                                                          else None),
                         retention_days(days, default_days), now)]


def purge_campaign(session: Session, key: str, campaign_id: int, now: datetime) -> Counts:
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    contact_ids = select(Contact.id).where(Contact.campaign_id == campaign_id)
    counts = Counts(campaigns=1)
    phones = [p for p in session.scalars(select(Contact.phone_e164).where(Contact.campaign_id == campaign_id))
              if not is_hashed(p)]
    # What the campaign's citizens sent us (refusals, answers by SMS) while it ran.
    for start in range(0, len(phones), 500):
        counts.inbound_messages += _hash_phones(
            session, key, InboundMessage, InboundMessage.phone_e164.in_(phones[start:start + 500])
            & (InboundMessage.received_at <= (campaign.completed_at or now)))
    counts.contacts = _clear_contacts(session, key, Contact.campaign_id == campaign_id)
    counts.transactions = _clear_transactions(session, key, Transaction.contact_id.in_(contact_ids))
    attempt_ids = select(Attempt.id).where(Attempt.campaign_id == campaign_id)
    counts.messages = _hash_phones(session, key, Message, or_(Message.campaign_id == campaign_id,
                                                             Message.attempt_id.in_(attempt_ids)))
    campaign.purged_at = now
    return counts


def _clear_contacts(session: Session, key: str, where: Any) -> int:
    rows = session.execute(select(Contact.id, Contact.phone_e164, Contact.name, Contact.transaction_code)
                           .where(where)).all()
    changes = [{"id": cid, "phone_e164": phone if is_hashed(phone) else phone_hash(key, phone),
                "name": None, "transaction_code": None}
               for cid, phone, name, code in rows if not is_hashed(phone) or name is not None or code is not None]
    if changes:
        session.execute(update(Contact), changes)
    return len(changes)


def _clear_transactions(session: Session, key: str, where: Any) -> int:
    rows = session.execute(select(Transaction.id, Transaction.phone_e164, Transaction.code).where(where)).all()
    changes = [{"id": tid, "phone_e164": _hashed(key, phone), "code": _hashed(key, code)}
               for tid, phone, code in rows if not (is_hashed(phone) and is_hashed(code))]
    if changes:
        session.execute(update(Transaction), changes)
    return len(changes)


def _purge_lone_transactions(session: Session, key: str, now: datetime, default_days: int) -> int:
    """Transactions that never became a contact (not sampled, opted out, recent): purged
    by their agency's retention counted from when they were decided."""
    changed = 0
    for agency_id, days in session.execute(select(Agency.id, Agency.retention_days)).all():
        cutoff = now - timedelta(days=retention_days(days, default_days))
        changed += _clear_transactions(session, key, (Transaction.agency_id == agency_id)
                                       & Transaction.contact_id.is_(None) & (Transaction.decided_at <= cutoff))
    return changed


def _hashed(key: str, value: str) -> str:
    return value if is_hashed(value) else phone_hash(key, value)


def _hash_phones(session: Session, key: str, model: type[Message] | type[InboundMessage], where: Any) -> int:
    """Hash the numbers of messages (and empty the texts citizens sent us)."""
    rows = session.execute(select(model.id, model.phone_e164).where(where)).all()
    inbound = model is InboundMessage
    changes: list[dict[str, Any]] = [
        {"id": mid, "phone_e164": phone_hash(key, phone), **({"body": ""} if inbound else {})}
        for mid, phone in rows if phone is not None and not is_hashed(phone)]
    if changes:
        session.execute(update(model), changes)
    return len(changes)


def _hash_keyed(session: Session, key: str, model: Any, moment: Any, before: datetime | None,
                phones: Iterable[str] | None = None) -> int:
    """Hash the number of rows of a table keyed by number (opt-outs, cap rows) made or
    last touched before ``before`` (or those of ``phones``). When the hash is already
    there (a number erased, then seen again), the two rows become one: the hashed row
    keeps the earlier opt-out or the later call."""
    query: Select[Any] = select(model).where(~model.phone_e164.startswith("h:"))
    if before is not None:
        query = query.where(moment <= before)
    if phones is not None:
        query = query.where(model.phone_e164.in_(list(phones)))
    changed = 0
    for row in session.scalars(query).all():
        hashed = phone_hash(key, row.phone_e164)
        twin = session.scalar(select(model).where(model.phone_e164 == hashed))
        if twin is None:
            row.phone_e164 = hashed
        else:
            if model is OptOut:
                twin.created_at = min(twin.created_at, row.created_at)
            else:
                name = moment.key
                setattr(twin, name, max(getattr(twin, name), getattr(row, name)))
            session.delete(row)
        changed += 1
        session.flush()
    return changed


# --- citizens' requests ------------------------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """One campaign's contact for the number."""

    campaign_id: int
    campaign: str
    agency_id: int
    status: str
    disposition: str | None
    attempts: int
    stored: str                  # "plain" or "hashed"
    has_name: bool
    has_code: bool


@dataclass(frozen=True)
class Holdings:
    phone: str                   # masked
    opted_out: bool
    opt_out_since: datetime | None
    contacts: list[Held] = field(default_factory=list)
    transactions: int = 0
    messages: int = 0
    inbound_messages: int = 0
    last_call_at: datetime | None = None


def _forms(phone: str, key: str | None) -> list[str]:
    return [phone, phone_hash(key, phone)] if key else [phone]


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise invalid("reason", "required: who asked, how and when (e.g. 'letter of 02/12/2026 to the Department')")
    if len(reason) > MAX_REASON:
        raise invalid("reason", f"at most {MAX_REASON} characters")
    return reason


def _audited_phone(phone: str, key: str | None) -> dict[str, Any]:
    return {"phone": mask_phone(phone), **({"phone_hash": phone_hash(key, phone)} if key else {})}


def holdings(session: Session, actor: Actor, phone: str, reason: str | None, now: datetime,
             key: str | None) -> Holdings:
    """What the service holds about the number, by the plain number and by its hash."""
    e164 = phone_number(phone)
    reason = _reason(reason)
    forms = _forms(e164, key)
    rows = session.execute(
        select(Contact, Campaign.name, Campaign.agency_id).join(Campaign, Campaign.id == Contact.campaign_id)
        .where(Contact.phone_e164.in_(forms)).order_by(Contact.campaign_id)).all()
    held = [Held(c.campaign_id, name, agency_id, c.status.value, c.disposition, c.attempt_count,
                 "hashed" if is_hashed(c.phone_e164) else "plain", c.name is not None, c.transaction_code is not None)
            for c, name, agency_id in rows]
    opt_outs = session.scalars(select(OptOut.created_at).where(OptOut.phone_e164.in_(forms))).all()

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(model.phone_e164.in_(forms))) or 0

    last_call = session.scalar(select(func.max(NumberCall.last_call_at)).where(NumberCall.phone_e164.in_(forms)))
    # Transactions stored, and reports of the number still queued in the intake.
    result = Holdings(mask_phone(e164), bool(opt_outs), min(opt_outs, default=None), held,
                      count(Transaction) + count(TransactionIntake),
                      count(Message), count(InboundMessage), last_call)
    audit.record(session, actor, "citizen_shown", now, reason=reason, contacts=len(held), **_audited_phone(e164, key))
    return result


def erase(session: Session, actor: Actor, phone: str, reason: str | None, now: datetime, key: str | None) -> Counts:
    """Erase what the service holds about the number, in every campaign, as the purge
    does: its pending contacts stop, messages not yet sent are cancelled, names and codes
    go, the number stays only as its hash (a refusal on the list included, so it is still
    honoured); answers stay under their pseudonym."""
    if not key:
        raise Conflict(f"{KEY_SETTING}: required to erase a number (it keeps the number's refusal as a hash); "
                       "set it, then ask again")
    e164 = phone_number(phone)
    reason = _reason(reason)
    session.execute(update(Contact).where(Contact.phone_e164 == e164,
                                          Contact.status.in_([ContactStatus.PENDING, ContactStatus.RESERVE]))
                    .values(status=ContactStatus.DONE, next_attempt_at=None, disposition=OPTED_OUT))
    session.execute(update(Message).where(Message.phone_e164 == e164,
                                          Message.status.not_in(list(FINAL_MESSAGE_STATUSES)))
                    .values(status=MessageStatus.CANCELED, lease_until=None, updated_at=now))
    counts = Counts()
    counts.contacts = _clear_contacts(session, key, Contact.phone_e164 == e164)
    # Reports still queued in the intake are decided as refused: never stored.
    counts.transactions = (_clear_transactions(session, key, Transaction.phone_e164 == e164)
                           + intake.erase(session, e164, now))
    counts.messages = _hash_phones(session, key, Message, Message.phone_e164 == e164)
    counts.inbound_messages = _hash_phones(session, key, InboundMessage, InboundMessage.phone_e164 == e164)
    counts.opt_outs = _hash_keyed(session, key, OptOut, OptOut.created_at, None, [e164])
    counts.number_calls = _hash_keyed(session, key, NumberCall, NumberCall.last_call_at, None, [e164])
    counts.number_messages = _hash_keyed(session, key, NumberMessages, NumberMessages.last_message_at, None, [e164])
    audit.record(session, actor, "citizen_erased", now, reason=reason, **_audited_phone(e164, key),
                 **{k: v for k, v in asdict(counts).items() if k != "campaigns"})
    return counts
