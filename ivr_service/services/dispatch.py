"""Dispatch: claim due contacts, write the attempt, commit, then ask the provider.

Correct with any number of workers on one PostgreSQL database:

* **Claiming.** Due contacts are locked with ``FOR UPDATE SKIP LOCKED``; each becomes an
  attempt row committed as QUEUED with a lease (``lease_until``) *before* the provider is
  called. The attempt's token is the idempotency key of the call.
* **Recording.** A round records the calls it placed a few at a time, in one statement:
  at most :data:`RECORD_BATCH`, none kept back longer than :data:`RECORD_WAIT` after the
  provider was asked, and all of them before a provider request that could outlast one of
  their leases. A worker that dies with calls placed but not yet recorded leaves them as
  if it had died just after asking the provider: a status callback names each call, or
  it is placed again with the same token once its lease expires.
* **Pacing.** Token buckets in ``pacing_buckets``, one per sender (the provider account)
  and one per campaign, are row-locked while claiming, so calls per second hold for all
  workers together; calls in progress are capped per sender.
* **Reconciling.** A QUEUED attempt whose lease expired belonged to a worker that died
  or timed out between claim and call: if a status callback already named the call it is
  kept, otherwise it is placed again with the same token. A call with no final status
  once it is overdue (:class:`Overdue`: the ring timeout, the campaign's longest complete
  call by :mod:`core.estimate` and a margin; ``SIPAS_STALE_CALL_SECONDS`` when set) is
  asked of the provider; one the provider does not know is closed as lost (and its
  contact retried by the policy, as a new attempt with a new token: the lost one is
  never placed again).
* **Legal limits.** Calls start only inside the campaign's window; a number that answered
  one of our calls less than ``min_gap`` ago (24 h, Decree 91) is postponed; opted-out
  numbers are never dialled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, Table, and_, bindparam, case, column, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import logs, metrics
from ..core.estimate import DEFAULT_PACE, Pace, estimate
from ..core.policy import CallingWindow, Outcome, RetryPolicy
from ..core.questionnaire import QuestionnaireError, QuestionnaireRegistry
from ..persistence.db import Database, among, dialect_insert
from ..persistence.models import (
    LIVE_ATTEMPT_STATUSES,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Message,
    MessageStatus,
    PacingBucket,
    new_token,
)
from ..providers import CallRequest, ProviderError, VoiceProvider
from ..settings import Settings
from . import campaigns, phone_match, voice
from .contacts import finish_contact, settle_contact
from .errors import InvalidInput

log = logging.getLogger(__name__)

UNKNOWN_LEASE = timedelta(minutes=5)   # after an ambiguous provider error: time for callbacks
# Every query here concerns calls only: SMS attempts (services.messaging) are never touched.
VOICE = "voice"


@dataclass(frozen=True)
class Pacing:
    """Sender limits, shared by every worker."""

    sender: str                   # bucket key, e.g. "twilio"
    calls_per_second: float
    max_concurrent: int
    lease: timedelta = timedelta(seconds=60)

    @classmethod
    def from_settings(cls, settings: Settings, sender: str) -> Pacing:
        return cls(sender, settings.sender_calls_per_second, settings.max_concurrent_calls,
                   timedelta(seconds=settings.lease_seconds))


# Time a call may outlast its expected length (a repeat asked for, a slow answer, the
# status callback on its way) before the provider is asked; asking early costs one API
# request, since a call the provider reports live is left alone and asked again later.
OVERDUE_MARGIN = timedelta(seconds=120)


@dataclass(frozen=True)
class Overdue:
    """When a call with no final status is asked of the provider: after it could have rung
    out and run its longest complete call (:func:`core.estimate.estimate` of the campaign's
    questionnaire, language, speech hint, line and agency, capped at
    ``SIPAS_MAX_CALL_SECONDS``), plus :data:`OVERDUE_MARGIN`. ``override``
    (``SIPAS_STALE_CALL_SECONDS``) replaces the computation when set."""

    ring_timeout: timedelta
    max_call: timedelta | None = None         # None: no cap (SIPAS_MAX_CALL_SECONDS 0)
    pace: Pace = DEFAULT_PACE
    margin: timedelta = OVERDUE_MARGIN
    override: timedelta | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Overdue:
        return cls(timedelta(seconds=settings.twilio_ring_timeout),
                   timedelta(seconds=settings.max_call_seconds) if settings.max_call_seconds else None,
                   settings.call_pace,
                   override=None if settings.stale_call_seconds is None
                   else timedelta(seconds=settings.stale_call_seconds))

    def of(self, campaign: Campaign, registry: QuestionnaireRegistry) -> timedelta:
        """How long after its attempt was created a call of ``campaign`` is overdue."""
        if self.override is not None:
            return self.override
        try:
            found = estimate(registry.get(campaign.questionnaire_key), campaign.language,
                             speech=campaign.speech_input, hotline=campaign.hotline, agency=campaign.agency.name,
                             pace=self.pace)
            longest: timedelta | None = timedelta(seconds=found.longest.call_seconds)
        except (KeyError, ValueError, QuestionnaireError) as exc:
            # A questionnaire no longer installed: its calls are still reconciled, by the cap.
            log.warning("campaign %s: no call-length estimate (%s); using the longest allowed call", campaign.id, exc)
            longest = None
        candidates = [d for d in (longest, self.max_call) if d is not None]
        interview = min(candidates) if candidates else STALE_FALLBACK
        return self.ring_timeout + interview + self.margin


# With neither an estimate nor SIPAS_MAX_CALL_SECONDS: the old fixed wait.
STALE_FALLBACK = timedelta(hours=2)


@dataclass(frozen=True)
class Claimed:
    attempt_id: int
    token: str
    to: str
    questionnaire: str
    lease_until: datetime | None = None   # the lease this worker holds (compare-and-set)
    # The call must start before this instant: the window's day part or the campaign ends.
    not_after: datetime | None = None
    campaign_id: int | None = None        # for the logs' context


def _locked_bucket(session: Session, key: str, rate: float, now: datetime) -> PacingBucket:
    """The bucket row ``key``, locked for the rest of the transaction (which serialises
    claimers across workers) and refilled at ``rate``/s up to 1 s worth; a new bucket
    starts full."""
    capacity = max(1.0, rate)
    bucket = session.get(PacingBucket, key, with_for_update=True)
    if bucket is None:
        # Workers starting together may all find no bucket: one insert wins, the others
        # do nothing and then wait for the winner's row lock.
        table = PacingBucket.__table__
        session.execute(dialect_insert(session)(table).values(key=key, tokens=capacity, updated_at=now)
                        .on_conflict_do_nothing(index_elements=[table.c.key]))
        bucket = session.get(PacingBucket, key, with_for_update=True, populate_existing=True)
        assert bucket is not None
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
    bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
    bucket.updated_at = max(now, bucket.updated_at)
    return bucket


def _take_tokens(session: Session, key: str, rate: float, now: datetime, wanted: int) -> int:
    """Take up to ``wanted`` tokens from the bucket ``key`` (see :func:`_locked_bucket`)."""
    bucket = _locked_bucket(session, key, rate, now)
    taken = max(0, min(wanted, math.floor(bucket.tokens + 1e-9)))
    if taken < wanted:
        metrics.PACING_WAITS.labels(bucket=metrics.bucket_kind(key)).inc()
    bucket.tokens -= taken
    return taken


def _give_back(session: Session, key: str, count: int) -> None:
    if count:
        session.execute(update(PacingBucket).where(PacingBucket.key == key)
                        .values(tokens=PacingBucket.tokens + count))


def _min_gap(campaign: Campaign) -> timedelta:
    return RetryPolicy.from_dict(campaign.retry or {}).min_gap


def _plan_max_attempts(campaign: Campaign, channel: str) -> int | None:
    for step in campaign.channel_plan or ():
        if step.get("channel") == channel:
            return int(step["max_attempts"])
    return None


def _spread_cap(session: Session, campaign: Campaign, window: CallingWindow, now: datetime) -> int | None:
    """With ``spread``: the most first attempts allowed today so that the contacts never
    attempted are spread evenly over the open days left before ``ends_at``."""
    if not campaign.spread or campaign.ends_at is None:
        return None
    days, cursor = 0, now
    while cursor is not None and cursor < campaign.ends_at and days < 366:
        opened = window.next_open(cursor)
        if opened is None or opened >= campaign.ends_at:
            break
        days += 1
        local = opened.astimezone(ZoneInfo(window.timezone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        cursor = (midnight + timedelta(days=1)).astimezone(opened.tzinfo)
    untouched = session.scalar(select(func.count()).select_from(Contact).where(
        Contact.campaign_id == campaign.id, Contact.status == ContactStatus.PENDING, Contact.attempt_count == 0))
    local_midnight = now.astimezone(ZoneInfo(window.timezone)).replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id == campaign.id, Attempt.number == 1, Attempt.created_at >= local_midnight))
    if not days:
        return 0
    return max(0, math.ceil(((untouched or 0) + (today or 0)) / days) - (today or 0))


def claim_due(db: Database, pacing: Pacing, now: datetime, batch: int) -> list[Claimed]:
    """Turn due contacts of running campaigns into committed QUEUED attempts, within the
    sender's and each campaign's pace; attempts whose lease expired are claimed first."""
    claimed: list[Claimed] = []
    sender = f"sender:{pacing.sender}"
    with db.begin() as session:
        # The sender's bucket is locked first, so the calls in flight are counted after the
        # previous claimer committed: two workers never both use the same headroom.
        _locked_bucket(session, sender, pacing.calls_per_second, now)
        headroom = max(0, pacing.max_concurrent - _in_flight(session, pacing.sender, now))
        claimed += _reclaim_expired(session, pacing, now, min(batch, headroom))
        budget = _take_tokens(session, sender, pacing.calls_per_second, now, min(batch, headroom) - len(claimed))
        unused = budget
        for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)
                                        .order_by(Campaign.id)):
            if unused <= 0:
                break
            new = _claim_campaign(session, campaign, pacing, now, unused)
            claimed += new
            unused -= len(new)
        _give_back(session, sender, unused)
    return claimed


def _in_flight(session: Session, sender: str, now: datetime) -> int:
    """The sender's calls that may be live: every live attempt except those queued whose
    lease ran out. Those were never placed (their worker died or lost its database
    connection before the call) and are reclaimed within the headroom; counting them
    would let them fill it and never be placed again."""
    never_placed = and_(Attempt.status == AttemptStatus.QUEUED, Attempt.lease_until < now)
    return session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.channel == VOICE, Attempt.provider == sender, Attempt.status.in_(LIVE_ATTEMPT_STATUSES),
        ~never_placed)) or 0


def _reclaim_expired(session: Session, pacing: Pacing, now: datetime, limit: int) -> list[Claimed]:
    if limit <= 0:
        return []
    expired = session.scalars(
        select(Attempt).where(Attempt.channel == VOICE, Attempt.status == AttemptStatus.QUEUED,
                              Attempt.provider == pacing.sender, Attempt.lease_until < now)
        .order_by(Attempt.lease_until).limit(limit).with_for_update(skip_locked=True)).all()
    result = []
    opted_out = phone_match.opted_out(session, [a.contact.phone_e164 for a in expired]) if expired else set()
    for attempt in expired:
        if attempt.provider_id is not None:
            # A callback named the call: it was placed; the worker died before noting it.
            attempt.status = AttemptStatus.INITIATED
            attempt.lease_until = None
            continue
        campaign, contact = attempt.campaign, attempt.contact
        if contact.phone_e164 in opted_out:
            # Opted out while the attempt waited: it is never placed.
            attempt.status, attempt.lease_until, attempt.ended_at = AttemptStatus.CANCELED, None, now
            attempt.outcome = Outcome.REFUSED.value
            finish_contact(session, contact, Outcome.REFUSED, now, code="2.11")
            continue
        if campaign.status is not CampaignStatus.RUNNING:
            attempt.lease_until = now + pacing.lease
            continue
        if campaign.ends_at is not None and now >= campaign.ends_at:
            # Never placed and never will be: the contact waits for the campaign's closing.
            attempt.status, attempt.lease_until, attempt.ended_at = AttemptStatus.CANCELED, None, now
            attempt.outcome = Outcome.CANCELED.value
            contact.status, contact.next_attempt_at = ContactStatus.PENDING, None
            continue
        window = campaign.calling_window()
        not_after = _not_after(campaign, window, now)
        if not_after is None:
            # The window closed (or the campaign ended) before it was placed: keep it
            # queued, out of every worker's way, until the window opens again.
            reopen = window.next_open(now)
            attempt.lease_until = reopen if reopen is not None else now + pacing.lease
            continue
        log.info("attempt %s: lease expired before the call was placed; placing it again", attempt.id)
        attempt.lease_until = now + pacing.lease
        result.append(Claimed(attempt.id, attempt.token, contact.phone_e164, campaign.questionnaire_key,
                              attempt.lease_until, not_after, campaign.id))
    return result


def _not_after(campaign: Campaign, window: CallingWindow, now: datetime) -> datetime | None:
    """Until when a call of this campaign may start, from ``now``; None if not now."""
    until = window.open_until(now)
    if until is None or (campaign.ends_at is not None and now >= campaign.ends_at):
        return None
    return min(until, campaign.ends_at) if campaign.ends_at is not None else until


def _claim_campaign(session: Session, campaign: Campaign, pacing: Pacing, now: datetime,
                    budget: int) -> list[Claimed]:
    window = campaign.calling_window()
    not_after = _not_after(campaign, window, now)
    if not_after is None:
        return []
    if campaign.target_completes is not None and campaigns.completes(session, campaign.id) >= \
            campaign.target_completes:
        return []
    spread = _spread_cap(session, campaign, window, now)
    wanted = budget if spread is None else min(budget, spread)
    wanted = _take_tokens(session, f"campaign:{campaign.id}", campaign.calls_per_second, now, wanted)
    if wanted <= 0:
        return []
    due = session.execute(
        select(Contact.id, Contact.phone_e164, Contact.attempt_count)
        .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.PENDING,
               Contact.channel == VOICE, Contact.next_attempt_at <= now)
        .order_by(Contact.next_attempt_at, Contact.id)
        .limit(wanted)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        _give_back(session, f"campaign:{campaign.id}", wanted)
        return []
    phones = [row.phone_e164 for row in due]
    opted_out = phone_match.opted_out(session, phones)
    gap = _min_gap(campaign)
    recent = phone_match.last_calls(session, phones, now - gap) if gap else {}
    # Numbers on a call now, whichever campaign: read from the live attempts (as many as
    # calls in flight, SIPAS_MAX_CONCURRENT_CALLS, and claims not yet placed) rather than
    # by looking the batch's numbers up in contacts, which has no index on the number alone
    # and would be read whole at every round.
    busy_numbers = set(session.scalars(
        select(Contact.phone_e164).join(Attempt, Attempt.contact_id == Contact.id)
        .where(Attempt.channel == VOICE, Attempt.status.in_(LIVE_ATTEMPT_STATUSES)))).intersection(phones)
    chosen: list[tuple[int, str, int]] = []   # contact id, number, attempt number
    held_back: list[int] = []
    seen: set[str] = set()
    for contact_id, phone, attempt_count in due:
        if phone in opted_out or phone in recent:
            held_back.append(contact_id)
            continue
        if phone in seen or phone in busy_numbers:
            continue  # on a call right now (another campaign, or twice in this batch)
        seen.add(phone)
        chosen.append((contact_id, phone, attempt_count + 1))
    if held_back:
        _hold_back(session, held_back, opted_out, recent, gap, window, now)
    claimed = _new_attempts(session, campaign, chosen, pacing, now, not_after)
    _give_back(session, f"campaign:{campaign.id}", wanted - len(claimed))
    return claimed


def _hold_back(session: Session, contact_ids: list[int], opted_out: set[str], recent: dict[str, datetime],
               gap: timedelta, window: CallingWindow, now: datetime) -> None:
    """Due contacts not called now: an opted-out number is finished as a refusal; one
    answered less than ``gap`` ago is postponed to when the window is open after it."""
    for contact in session.scalars(select(Contact).where(Contact.id.in_(contact_ids))):
        phone = contact.phone_e164
        if phone in opted_out:
            finish_contact(session, contact, Outcome.REFUSED, now, code="2.11")
            continue
        later = window.next_open(recent[phone] + gap)
        contact.next_attempt_at = later
        if later is None:
            finish_contact(session, contact, None, now)


def _new_attempts(session: Session, campaign: Campaign, chosen: list[tuple[int, str, int]], pacing: Pacing,
                  now: datetime, not_after: datetime) -> list[Claimed]:
    """Queued attempts for the contacts ``chosen`` (id, number, attempt number), which
    become active: two statements for the whole batch."""
    if not chosen:
        return []
    ids = [contact_id for contact_id, _, _ in chosen]
    session.execute(update(_CONTACTS).where(among(session, _CONTACTS.c.id, ids)).values(
        status=ContactStatus.ACTIVE, attempt_count=_CONTACTS.c.attempt_count + 1,
        channel_attempts=_CONTACTS.c.channel_attempts + 1))
    lease_until = now + pacing.lease
    tokens = {contact_id: new_token() for contact_id in ids}
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_INSERT_ATTEMPTS, {
            "p_tokens": list(tokens.values()), "p_contacts": ids, "p_numbers": [n for _, _, n in chosen],
            "p_campaign": campaign.id, "p_provider": pacing.sender, "p_now": now, "p_lease": lease_until})
    else:
        rows = session.execute(insert(_ATTEMPTS).returning(_ATTEMPTS.c.id, _ATTEMPTS.c.contact_id), [
            {"token": tokens[contact_id], "contact_id": contact_id, "number": number, "campaign_id": campaign.id,
             "channel": VOICE, "status": AttemptStatus.QUEUED, "provider": pacing.sender, "created_at": now,
             "lease_until": lease_until} for contact_id, _, number in chosen])
    attempt_of = {contact_id: attempt_id for attempt_id, contact_id in rows}
    return [Claimed(attempt_of[contact_id], tokens[contact_id], phone, campaign.questionnaire_key, lease_until,
                    not_after, campaign.id) for contact_id, phone, _ in chosen]


_CONTACTS, _ATTEMPTS = cast(Table, Contact.__table__), cast(Table, Attempt.__table__)
# PostgreSQL: a batch of new attempts as one array per varying column, so the statement
# is the same short text for any batch (psycopg parses the text of each new statement).
_NEW = func.unnest(bindparam("p_tokens", type_=ARRAY(String)), bindparam("p_contacts", type_=ARRAY(Integer)),
                   bindparam("p_numbers", type_=ARRAY(Integer))) \
    .table_valued(column("token", String), column("contact_id", Integer), column("number", Integer)) \
    .render_derived(name="new")
_INSERT_ATTEMPTS = insert(_ATTEMPTS).from_select(
    ["token", "contact_id", "number", "campaign_id", "channel", "status", "provider", "created_at", "lease_until"],
    select(_NEW.c.token, _NEW.c.contact_id, _NEW.c.number, bindparam("p_campaign", type_=Integer), literal(VOICE),
           literal(AttemptStatus.QUEUED.value), bindparam("p_provider", type_=String),
           bindparam("p_now", type_=_ATTEMPTS.c.created_at.type),
           bindparam("p_lease", type_=_ATTEMPTS.c.lease_until.type))
).returning(_ATTEMPTS.c.id, _ATTEMPTS.c.contact_id)


def keep_lease(db: Database, table: type[Attempt] | type[Message], row_id: int, held: datetime | None,
               lease: timedelta, now: datetime) -> bool:
    """Whether this worker still holds the lease it wrote (``held``) on a claimed, not yet
    sent attempt or message (see :func:`renew_lease`)."""
    return held is None or renew_lease(db, table, row_id, held, lease, now) is not None


def renew_lease(db: Database, table: type[Attempt] | type[Message], row_id: int, held: datetime,
                lease: timedelta, now: datetime) -> datetime | None:
    """The lease this worker holds on a claimed, not yet sent attempt or message: ``held``
    (the one it wrote) while half of it is left; otherwise renewed by compare-and-set on
    ``held``. None when it ran out and another worker took the row over: the update then
    matches nothing and this worker must leave the row alone."""
    if held - now >= lease / 2:
        return held
    queued = AttemptStatus.QUEUED if table is Attempt else MessageStatus.QUEUED
    with db.begin() as session:
        renewed = session.execute(
            update(table).where(table.id == row_id, table.status == queued, table.provider_id.is_(None),
                                table.lease_until == held)
            .values(lease_until=now + lease).returning(table.id)).first()
    return now + lease if renewed is not None else None


@dataclass(frozen=True)
class _Placed:
    """A call the provider accepted, not yet recorded on its attempt."""

    attempt_id: int
    call_id: str
    asked_at: datetime                # when the provider was asked
    lease_until: datetime | None      # the lease held when it was asked


def place(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider, claimed: Claimed,
          url_for: Callable[[str, str], str], now: Callable[[], datetime],
          lease: timedelta = timedelta(seconds=60)) -> None:
    """Ask the provider for one call and record it on the attempt at once (a dispatch
    round records its calls a few at a time, see :class:`_Unrecorded`).

    A worker places only while it holds the attempt's lease. When less than half of the
    lease is left, it is renewed first by compare-and-set on the value this worker wrote:
    if it expired and another worker took the attempt over, this worker leaves it alone;
    otherwise the call starts with at least half a lease to go (a provider request is
    always shorter, see ``SIPAS_LEASE_SECONDS``), so no other worker can place it meanwhile."""
    placed = _call(db, registry, provider, claimed, url_for, now, lease)
    if placed is not None:
        with db.engine.connect() as conn:
            _record(conn, [placed])


def _call(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider, claimed: Claimed,
          url_for: Callable[[str, str], str], now: Callable[[], datetime], lease: timedelta) -> _Placed | None:
    """Ask the provider for the call of ``claimed`` (see :func:`place`); the call it placed,
    for the caller to record."""
    with logs.bound(campaign=claimed.campaign_id, attempt=claimed.attempt_id):
        asked_at = now()
        if claimed.not_after is not None and asked_at >= claimed.not_after:
            # The window closed between the claim and now: the attempt stays queued; when its
            # lease expires it is kept back until the window opens again.
            log.info("attempt %s: the calling window closed before it was placed", claimed.attempt_id)
            return None
        held = claimed.lease_until
        if held is not None:
            held = renew_lease(db, Attempt, claimed.attempt_id, held, lease, asked_at)
            if held is None:
                log.info("attempt %s: lease lost before placing; another worker has it", claimed.attempt_id)
                return None
        request = CallRequest(to=claimed.to, from_=None,
                              answer_url=url_for("answer", claimed.token) + f"?q={claimed.questionnaire}",
                              status_url=url_for("status", claimed.token), idempotency_key=claimed.token)
        try:
            placed = provider.place_call(request)
        except ProviderError as exc:
            _refused(db, registry, claimed, exc, now, provider.name)
            return None
        log.info("attempt %s: call placed", claimed.attempt_id)
        return _Placed(claimed.attempt_id, placed.provider_id, asked_at, held)


# A dispatch round records the calls it placed a few at a time: at most this many, and
# none kept back longer than RECORD_WAIT after the provider was asked for it. A provider
# slower than that per request (Twilio: a few hundred ms) has each call recorded as soon
# as it is placed, as before; a fast one (the simulator) has one UPDATE for many calls.
RECORD_BATCH = 100
RECORD_WAIT = timedelta(milliseconds=100)


class _Unrecorded:
    """The calls a dispatch round placed and has not yet recorded, on one connection."""

    def __init__(self, conn: Connection, now: Callable[[], datetime], lease: timedelta) -> None:
        self.conn, self.now, self.lease = conn, now, lease
        self.calls: list[_Placed] = []

    def add(self, placed: _Placed) -> None:
        self.calls.append(placed)
        if len(self.calls) >= RECORD_BATCH or self.now() - self.calls[0].asked_at >= RECORD_WAIT:
            self.flush()

    def before_request(self) -> None:
        """Record every call whose lease could run out during the next provider request
        (which takes less than half a lease, see ``SIPAS_LEASE_SECONDS``): once a lease
        expires, another worker would place its call again."""
        at = self.now()
        if any(c.lease_until is not None and c.lease_until - at < self.lease / 2 for c in self.calls):
            self.flush()

    def flush(self) -> None:
        if self.calls:
            _record(self.conn, self.calls)
            self.calls = []


def _record(conn: Connection, calls: list[_Placed]) -> None:
    """Record placed calls in one transaction: QUEUED becomes INITIATED with the
    provider's call id. A status callback may already have named a call and moved it on,
    which this never undoes."""
    with conn.begin():
        if conn.dialect.name == "postgresql":
            # One statement for all of them: one trigger run for the progress tallies.
            conn.execute(_RECORD_PLACED_MANY, {"p_attempts": [c.attempt_id for c in calls],
                                               "p_calls": [c.call_id for c in calls]})
        else:
            conn.execute(_RECORD_PLACED, [{"p_attempt": c.attempt_id, "p_call": c.call_id} for c in calls])


# Built once: the statement's cache key is computed for every execution, and a statement
# with bound parameters keeps that cheap on the hot path.
_RECORD_PLACED = update(Attempt).where(Attempt.id == bindparam("p_attempt")).values(
    provider_id=func.coalesce(Attempt.provider_id, bindparam("p_call", type_=Attempt.provider_id.type)),
    status=case((Attempt.status == AttemptStatus.QUEUED, AttemptStatus.INITIATED), else_=Attempt.status),
    lease_until=None)
# PostgreSQL: the ids as two arrays, so the statement is the same whatever their number.
_PLACED = func.unnest(bindparam("p_attempts", type_=ARRAY(Integer)), bindparam("p_calls", type_=ARRAY(String))) \
    .table_valued(column("attempt_id", Integer), column("call_id", String)).render_derived(name="placed")
_RECORD_PLACED_MANY = update(Attempt).where(Attempt.id == _PLACED.c.attempt_id).values(
    provider_id=func.coalesce(Attempt.provider_id, _PLACED.c.call_id),
    status=case((Attempt.status == AttemptStatus.QUEUED, AttemptStatus.INITIATED), else_=Attempt.status),
    lease_until=None)


def _refused(db: Database, registry: QuestionnaireRegistry, claimed: Claimed, exc: ProviderError,
             now: Callable[[], datetime], provider: str) -> None:
    """Record a provider error on the attempt and settle the contact by its kind."""
    metrics.provider_error(provider, exc.kind, exc.code)
    if exc.kind == "configuration":
        log.error("attempt %s: provider configuration error %s: %s", claimed.attempt_id, exc.code, exc)
    else:
        # Not the provider's text: Twilio's repeats the number ("The 'To' number +84… is not valid");
        # it is kept on the attempt (error_message) for whoever may see it.
        log.warning("attempt %s: provider refused the call (%s, %s)", claimed.attempt_id, exc.kind, exc.code)
    with db.begin() as session:
        attempt = session.get(Attempt, claimed.attempt_id, with_for_update=True)
        assert attempt is not None
        if attempt.status is not AttemptStatus.QUEUED:
            return  # a webhook got there first: the call exists
        attempt.error_code = exc.code
        attempt.error_message = str(exc)[:500]
        if exc.kind == "unknown":
            # The call may exist: wait for its callbacks before reconciling.
            attempt.lease_until = now() + UNKNOWN_LEASE
            return
        attempt.status = AttemptStatus.FAILED
        attempt.ended_at = now()
        attempt.lease_until = None
        outcome = Outcome.INVALID_NUMBER if exc.kind == "permanent" else Outcome.FAILED
        attempt.outcome = outcome.value
        metrics.ATTEMPTS.labels(channel=VOICE, outcome=outcome.value).inc()
        campaign = attempt.campaign
        settle_contact(session, registry.get(campaign.questionnaire_key), attempt.contact, campaign,
                       outcome, now())


def dispatch_once(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider,
                  url_for: Callable[[str, str], str], now: Callable[[], datetime], pacing: Pacing,
                  batch: int = 50) -> int:
    """One dispatch round; returns how many calls were handed to the provider."""
    with metrics.DISPATCH_SECONDS.labels(channel=VOICE).time():
        claimed = claim_due(db, pacing, now(), batch)
        metrics.CLAIMS.labels(channel=VOICE).inc(len(claimed))
        if claimed:
            with db.engine.connect() as conn:
                unrecorded = _Unrecorded(conn, now, pacing.lease)
                try:
                    for item in claimed:
                        unrecorded.before_request()
                        placed = _call(db, registry, provider, item, url_for, now, pacing.lease)
                        if placed is not None:
                            unrecorded.add(placed)
                finally:
                    # Calls placed are recorded even when the round stops on an error.
                    unrecorded.flush()
    return len(claimed)


def reconcile_stale(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider,
                    now: datetime, stale_after: timedelta | Overdue, limit: int = 100) -> int:
    """Ask the provider about calls with no final status once they are overdue (after
    ``stale_after``, or per campaign by :class:`Overdue`); apply what it says as a status
    callback would, or close the call as lost when it does not know it."""
    live = [AttemptStatus.INITIATED, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS]
    with db.begin() as session:
        of_provider = (Attempt.channel == VOICE, Attempt.provider == provider.name, Attempt.status.in_(live))
        if isinstance(stale_after, timedelta):
            overdue = Attempt.created_at < now - stale_after
        else:
            ids = session.scalars(select(Attempt.campaign_id).where(*of_provider).distinct()).all()
            waits = {campaign.id: stale_after.of(campaign, registry)
                     for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(ids)))}
            if not waits:
                return 0
            overdue = or_(*(and_(Attempt.campaign_id == campaign_id, Attempt.created_at < now - wait)
                            for campaign_id, wait in waits.items()))
        stale = session.execute(
            select(Attempt.id, Attempt.provider_id).where(*of_provider, overdue)
            .order_by(Attempt.created_at).limit(limit)).all()
    fixed = 0
    for attempt_id, provider_id in stale:
        state = None
        if provider_id is not None:
            try:
                state = provider.fetch_call(provider_id)
            except ProviderError as exc:
                log.warning("attempt %s: could not ask the provider (%s)", attempt_id, exc)
                continue
        try:
            with db.begin() as session:
                closed = voice.reconcile_call(session, registry, attempt_id, state.status if state else None,
                                              state.duration_s if state else None, now)
        except InvalidInput as exc:
            log.warning("attempt %s: the provider reports %s", attempt_id, exc)
            continue
        if closed:
            log.info("attempt %s: reconciled as %s", attempt_id,
                     state.status if state is not None else "lost (unknown to the provider)")
            fixed += 1
    return fixed
