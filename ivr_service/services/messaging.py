"""Sending SMS invitations and reminders: claim, send, status callbacks, link expiry.

The same discipline as calls (see :mod:`services.dispatch`), correct with any number of
workers on one PostgreSQL database:

* **Claiming.** Due SMS contacts (``Contact.channel == "sms"``) of running campaigns whose
  window is open are locked ``FOR UPDATE SKIP LOCKED``; each becomes, in one transaction,
  an ``Attempt(channel="sms")``, its :class:`SurveyLink` and its invitation
  :class:`Message`, committed QUEUED with a lease *before* the provider is asked. The
  message token is the idempotency key.
* **Pacing.** One token bucket per sender, ``sender:sms:<provider>`` for the
  installation's provider and ``sender:sms:account:<id>`` per messaging account, refilled
  at ``SIPAS_MESSAGES_PER_SECOND`` and row-locked for the whole claim (in a fixed order:
  the installation's, then the accounts by id), so the pace holds for all workers
  together (and claimers are serialised on it).
* **Routing.** A programme's ``routing`` names messaging accounts; its messages go through
  the first (``Message.account_id``), the others through the installation's provider. A
  ZNS message to a number without Zalo is replaced by an SMS through the next account of
  the routing (:func:`fall_back_to_sms`), sent by the next round.
* **The 24 h cap.** At most :data:`DAILY_CAP` messages (not CANCELED) per number in any
  24 hours, across campaigns and channels: counted under a row lock on
  ``NumberMessages(phone)``. A contact over the cap waits until the oldest of those
  messages is 24 hours old (and the window is open again).
* **Legal hours.** Messages are claimed only while the campaign's window is open
  (07:00–22:00 for programmes); a message due outside it waits.
* **Reclaiming.** A QUEUED message whose lease expired was claimed by a worker that died
  or timed out before noting the provider's answer: if a status callback already named it,
  it is kept; otherwise it is sent again with the same token (the provider is asked for
  that token again, which the idempotency header makes one message).
* **Confirmations.** A refusal by SMS (:mod:`services.inbound`) gets one confirmation,
  written QUEUED with a lease that has already expired, so the next round's reclaim sends
  it, whatever the window, the cap or the do-not-contact list say (it is the reply the
  law asks for); it still counts towards the number's cap.

* **Delivery states and cost.** Status callbacks and send-time errors are read by
  :mod:`core.delivery` (one table per provider kind; forward-only states; raw status and
  code kept on the message). A message's price (segments × the carrier's price per
  segment: the messaging account's ``prices``, else :attr:`MessagePacing.prices`) is
  recorded when the provider accepts it.
  Summaries of delivery, reach and cost live in :mod:`services.message_reports`.

Who settles what: this module ends an SMS attempt on delivery failure and at link expiry;
the web form service ends it when the citizen finishes or refuses. All go through
:func:`contacts.settle_contact`, so the channel plan (voice → SMS, SMS → voice) and the
retry policy apply unchanged.

Campaigns without a programme (a phone campaign whose plan has an SMS step) invite with
the questionnaire's ``sms_invitation`` message: ``{agency}`` is the agency's name
unaccented, ``{link}`` the link, and it ends with the ``{stop}`` link (the questionnaire
loader refuses one that does not), so every message ends with how to refuse. Links then
point at ``SIPAS_SURVEY_BASE_URL`` (else ``SIPAS_PUBLIC_BASE_URL``),
last :data:`DEFAULT_LINK_DAYS` days, and get no reminder (reminders are a programme
setting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from .. import logs, metrics
from ..core import delivery, flow, twoway
from ..core.flow import AnswerStatus, Response
from ..core.messages import DAILY_CAP, encode, message_price, new_code, render, unaccent
from ..core.phones import normalise
from ..core.policy import Outcome
from ..core.questionnaire import Questionnaire, QuestionnaireRegistry
from ..persistence.db import Database, dialect_insert
from ..persistence.models import (
    FINAL_MESSAGE_STATUSES,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Interview,
    InterviewStatus,
    Message,
    MessageStatus,
    MessagingAccount,
    NumberMessages,
    Programme,
    SurveyLink,
)
from ..providers import Messengers, ProviderError
from ..providers.messaging import MessageRequest, MessagingProvider
from ..providers.zns import NO_ZALO_CODE
from ..settings import Settings
from . import phone_match
from .contacts import channel_plan, finish_contact, finish_with_answers, opt_out, settle_contact
from .dispatch import UNKNOWN_LEASE, _give_back, _not_after, _take_tokens, keep_lease
from .errors import Conflict, NotFound, invalid
from .message_reports import cost_summary as cost_summary
from .message_reports import delivery_summary as delivery_summary

log = logging.getLogger(__name__)

CAP_PERIOD = timedelta(hours=24)
DEFAULT_LINK_DAYS = 7
SMS = "sms"
CONFIRMATION = "confirmation"
QUESTION = "question"              # two-way: the next items asked, after a reply
THANKS = "thanks"                  # two-way: the end of a session

# Provider statuses and codes are read by core.delivery's tables (one per provider kind).
FAILED_MESSAGE_STATUSES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.EXPIRED})


@dataclass(frozen=True)
class MessagePacing:
    """The SMS sender's limits, shared by every worker."""

    sender: str                   # the messaging provider's name; bucket "sender:sms:<name>"
    per_second: float
    lease: timedelta = timedelta(seconds=60)
    prices: Mapping[str, float] | None = None     # VND per segment by carrier ("*": the others)

    @classmethod
    def from_settings(cls, settings: Settings, sender: str) -> MessagePacing:
        return cls(sender, settings.sender_messages_per_second, timedelta(seconds=settings.lease_seconds),
                   settings.sms_price_table)

    def price(self, phone: str, segments: int) -> float | None:
        """What a message of ``segments`` to ``phone`` costs with this sender (VND), by the
        number's carrier as core.phones knows it."""
        return message_price(dict(self.prices) if self.prices else None, normalise(phone).carrier, segments)

    @property
    def bucket(self) -> str:
        return f"sender:sms:{self.sender}"


@dataclass(frozen=True)
class ClaimedMessage:
    message_id: int
    attempt_id: int | None
    token: str
    to: str
    body: str
    sender: str | None
    kind: str
    lease_until: datetime | None = None     # the lease this worker holds (compare-and-set)
    not_after: datetime | None = None       # the window closes (or the campaign ends) then
    price: float | None = None              # recorded when the provider accepts it
    account_id: int | None = None           # the messaging account; None: the installation's provider


def account_bucket(account_id: int) -> str:
    return f"sender:sms:account:{account_id}"


class _Budgets:
    """The tokens this claim took, per sender (None: the installation's provider), and
    the batch size left. Unused tokens go back when the claim ends."""

    def __init__(self, session: Session, pacing: MessagePacing, now: datetime, batch: int,
                 accounts: list[int]) -> None:
        self.session, self.pacing = session, pacing
        self.total = batch
        self.left_by: dict[int | None, int] = {None: _take_tokens(session, pacing.bucket, pacing.per_second, now,
                                                                  batch)}
        for account_id in sorted(set(accounts)):   # one lock order for every worker
            self.left_by[account_id] = _take_tokens(session, account_bucket(account_id), pacing.per_second, now,
                                                    batch)
        rows = session.execute(select(MessagingAccount.id, MessagingAccount.kind, MessagingAccount.prices)
                               .where(MessagingAccount.id.in_(sorted(set(accounts))))).all()
        self.kinds: dict[int, str] = {account_id: kind for account_id, kind, _prices in rows}
        self.prices: dict[int, Mapping[str, float]] = {account_id: prices for account_id, _kind, prices in rows
                                                       if prices}

    def left(self, account_id: int | None) -> int:
        return max(0, min(self.total, self.left_by.get(account_id, 0)))

    def use(self, account_id: int | None, count: int = 1) -> None:
        self.left_by[account_id] = self.left_by.get(account_id, 0) - count
        self.total -= count

    def provider(self, account_id: int | None) -> str:
        return self.pacing.sender if account_id is None else self.kinds.get(account_id, "account")

    def price(self, account_id: int | None, phone: str, segments: int) -> float | None:
        """A message's price with its sender: the account's own price table, else the
        installation's (``SIPAS_SMS_PRICES``)."""
        prices = self.prices.get(account_id) if account_id is not None else None
        if prices:
            return message_price(dict(prices), normalise(phone).carrier, segments)
        return self.pacing.price(phone, segments)

    def give_back(self) -> None:
        for account_id, left in self.left_by.items():
            _give_back(self.session, self.pacing.bucket if account_id is None else account_bucket(account_id),
                       max(0, left))


def routed_account(programme: Programme | None) -> int | None:
    """The messaging account a programme's messages go through: the first of its routing
    (the fallback to the next one belongs to the delivery state machine, not here)."""
    if programme is None or not programme.routing:
        return None
    return int(programme.routing[0])


def _sender(programme: Programme | None, account_id: int | None) -> str | None:
    """A messaging account sends as its own sender (its registered brandname); the
    installation's provider as the programme's."""
    if account_id is not None or programme is None:
        return None
    return programme.sender


def _budgets(session: Session, pacing: MessagePacing, now: datetime, batch: int) -> _Budgets:
    """Lock and take the tokens of every sender this claim may use."""
    routings = session.scalars(select(Programme.routing).join(Campaign, Campaign.programme_id == Programme.id)
                               .where(Campaign.status == CampaignStatus.RUNNING)).all()
    accounts = [int(r[0]) for r in routings if r]
    accounts += [a for a in session.scalars(select(Message.account_id).distinct().where(
        Message.status == MessageStatus.QUEUED, Message.account_id.is_not(None), Message.lease_until < now))
        if a is not None]
    return _Budgets(session, pacing, now, batch, accounts)


# ============================================================================ claiming

def claim_messages(db: Database, pacing: MessagePacing, now: datetime, batch: int, *,
                   registry: QuestionnaireRegistry, default_host: str,
                   reminders: bool = True) -> list[ClaimedMessage]:
    """Turn due SMS contacts into committed QUEUED attempts + links + invitations, and due
    reminders into QUEUED reminders, within the sender's pace; messages whose lease
    expired are taken first (and count against the pace: they are sent again)."""
    claimed: list[ClaimedMessage] = []
    with db.begin() as session:
        budgets = _budgets(session, pacing, now, batch)
        claimed += _reclaim_expired(session, registry, pacing, now, budgets)
        for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)
                                        .order_by(Campaign.id)):
            if budgets.total <= 0:
                break
            claimed += _claim_invitations(session, registry, campaign, pacing, now, budgets, default_host)
        if reminders and budgets.total > 0:
            claimed += _claim_reminders(session, pacing, now, budgets)
        budgets.give_back()
    return claimed


def claim_reminders(db: Database, pacing: MessagePacing, now: datetime, batch: int) -> list[ClaimedMessage]:
    """Only the reminders due now (the worker's reminder job), within the same pace."""
    with db.begin() as session:
        budgets = _budgets(session, pacing, now, batch)
        claimed = _claim_reminders(session, pacing, now, budgets)
        budgets.give_back()
    return claimed


def _lock_number(session: Session, phone: str, now: datetime) -> None:
    """Row-lock the number's NumberMessages row (created on first use)."""
    table = NumberMessages.__table__
    session.execute(dialect_insert(session)(table).values(phone_e164=phone, last_message_at=now)
                    .on_conflict_do_nothing(index_elements=[table.c.phone_e164]))
    session.execute(select(NumberMessages.phone_e164).where(NumberMessages.phone_e164 == phone)
                    .with_for_update())


def _capped_until(session: Session, phone: str, now: datetime) -> datetime | None:
    """With the number locked: None when one more message fits the 24 h cap, else when
    the oldest of the messages in the last 24 h leaves the period."""
    recent = session.scalars(
        select(Message.created_at).where(Message.phone_e164 == phone, Message.status != MessageStatus.CANCELED,
                                         Message.created_at > now - CAP_PERIOD)
        .order_by(Message.created_at.desc()).limit(DAILY_CAP)).all()
    if len(recent) < DAILY_CAP:
        return None
    return min(recent) + CAP_PERIOD


def _note_message(session: Session, phone: str, now: datetime) -> None:
    session.execute(update(NumberMessages).where(NumberMessages.phone_e164 == phone)
                    .values(last_message_at=now))


def queue_confirmation(session: Session, phone: str, body: str, provider: str, now: datetime) -> Message:
    """Queue the one confirmation a refusal gets. Due at once (its lease has expired as it
    is written, so the next round's reclaim sends it); outside the 24 h cap, which it
    cannot wait for, but counted in it like any message. A number that refuses again
    within 24 h (a second STOP, a loop with an auto-reply) keeps the confirmation it has."""
    _lock_number(session, phone, now)
    recent = session.scalar(
        select(Message).where(Message.phone_e164 == phone, Message.kind == CONFIRMATION,
                              Message.created_at > now - CAP_PERIOD)
        .order_by(Message.id.desc()).limit(1))
    if recent is not None:
        return recent
    encoded = encode(body)
    message = Message(attempt_id=None, campaign_id=None, phone_e164=phone, kind=CONFIRMATION, body=body,
                      encoding=encoded.encoding, segments=encoded.segments, provider=provider,
                      created_at=now, lease_until=now, status=MessageStatus.QUEUED)
    session.add(message)
    _note_message(session, phone, now)
    session.flush()
    return message


def invitation_template(campaign: Campaign, programme: Programme | None, q: Questionnaire) -> str:
    """The invitation text before its links are filled in (see the module docstring)."""
    if programme is not None:
        return programme.template
    # The loader checked it: {link} once, ending with the {stop} link.
    return q.messages["sms_invitation"].get(campaign.language).replace("{agency}", unaccent(campaign.agency.name))


def two_way_intro(q: Questionnaire, campaign: Campaign) -> str:
    """The first words of a two-way invitation: the questionnaire's intro, unaccented."""
    return unaccent(q.messages["intro"].get(campaign.language).replace("{agency}", campaign.agency.name))


def queue_reply(session: Session, campaign: Campaign, attempt_id: int, phone: str, kind: str, body: str,
                provider: str, now: datetime, account_id: int | None = None) -> Message:
    """Queue a two-way session's answer to a citizen's reply (kind "question" or "thanks"),
    through the provider (and messaging account) of the session's invitation. Due at once
    when the window is open and the number under the 24 h cap (the next message round
    sends it); otherwise when both allow (its lease runs until then). Counted in the cap
    from now, like every message written."""
    _lock_number(session, phone, now)
    due = _capped_until(session, phone, now) or now
    opens = campaign.calling_window().next_open(due)
    encoded = encode(body)
    message = Message(attempt_id=attempt_id, campaign_id=campaign.id, phone_e164=phone, kind=kind, body=body,
                      encoding=encoded.encoding, segments=encoded.segments, provider=provider,
                      account_id=account_id, created_at=now, lease_until=opens or due, status=MessageStatus.QUEUED)
    session.add(message)
    _note_message(session, phone, now)
    session.flush()
    return message


def link_urls(host: str, code: str) -> dict[str, str]:
    base = host.rstrip("/")
    return {"link": f"{base}/s/{code}", "stop": f"{base}/s/{code}/stop"}


def _new_link(session: Session, attempt: Attempt, contact: Contact, now: datetime, lifetime: timedelta) -> SurveyLink:
    """A link with a fresh code; a code collision (about 1 in 10^12) draws another."""
    for _ in range(5):
        link = SurveyLink(code=new_code(), attempt_id=attempt.id, contact_id=contact.id,
                          campaign_id=attempt.campaign_id, created_at=now, expires_at=now + lifetime)
        try:
            with session.begin_nested():
                session.add(link)
                session.flush()
        except IntegrityError:
            continue  # the savepoint's rollback dropped the pending link
        return link
    raise RuntimeError("could not draw an unused link code")


def _message(session: Session, campaign: Campaign, phone: str, kind: str, body: str, attempt_id: int | None,
             pacing: MessagePacing, now: datetime, budgets: _Budgets, account_id: int | None) -> Message:
    encoded = encode(body)
    message = Message(attempt_id=attempt_id, campaign_id=campaign.id, phone_e164=phone, kind=kind, body=body,
                      encoding=encoded.encoding, segments=encoded.segments, provider=budgets.provider(account_id),
                      account_id=account_id, created_at=now, lease_until=now + pacing.lease,
                      status=MessageStatus.QUEUED)
    budgets.use(account_id)
    session.add(message)
    _note_message(session, phone, now)
    return message


def _claim_invitations(session: Session, registry: QuestionnaireRegistry, campaign: Campaign,
                       pacing: MessagePacing, now: datetime, budgets: _Budgets,
                       default_host: str) -> list[ClaimedMessage]:
    window = campaign.calling_window()
    not_after = _not_after(campaign, window, now)
    if not_after is None:
        return []
    programme = session.get(Programme, campaign.programme_id) if campaign.programme_id is not None else None
    account_id = routed_account(programme)
    budget = budgets.left(account_id)
    if budget <= 0:
        return []
    contacts = session.scalars(
        select(Contact)
        .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.PENDING,
               Contact.channel == SMS, Contact.next_attempt_at <= now)
        .order_by(Contact.next_attempt_at, Contact.id).limit(budget)
        .with_for_update(skip_locked=True)).all()
    if not contacts:
        return []
    q = registry.get(campaign.questionnaire_key)
    template = invitation_template(campaign, programme, q)
    host = programme.public_host if programme is not None else default_host
    days = programme.link_days if programme is not None else DEFAULT_LINK_DAYS
    sender = _sender(programme, account_id)
    mode = twoway.sms_mode(campaign.channel_plan)
    opted_out = phone_match.opted_out(session, [c.phone_e164 for c in contacts])
    pending: list[tuple[Contact, Attempt, Message]] = []
    for contact in contacts:
        phone = contact.phone_e164
        if phone in opted_out:
            finish_contact(session, contact, Outcome.REFUSED, now, code="2.11")
            continue
        if contact.phone_kind == "landline":
            _skip_landline(session, q, contact, campaign, now)
            continue
        _lock_number(session, phone, now)
        capped = _capped_until(session, phone, now)
        if capped is not None:
            later = window.next_open(capped)
            if later is None or (campaign.ends_at is not None and later >= campaign.ends_at):
                finish_with_answers(session, q, contact, _last_outcome(contact), now)
            else:
                contact.next_attempt_at = later
            continue
        contact.status = ContactStatus.ACTIVE
        contact.attempt_count += 1
        contact.channel_attempts += 1
        attempt = Attempt(contact_id=contact.id, campaign_id=campaign.id, channel=SMS, number=contact.attempt_count,
                          provider=budgets.provider(account_id), created_at=now, lease_until=now + pacing.lease)
        session.add(attempt)
        session.flush()
        if mode.two_way:
            # The session is a link never sent: its expiry, finish and refusal work as a link's.
            link = _new_link(session, attempt, contact, now, timedelta(hours=mode.session_hours))
            body = twoway.question_text(q, web_responses(q, contact.interview), campaign.language,
                                        intro=two_way_intro(q, campaign))
            if contact.interview is not None:
                contact.interview.retries = contact.interview.repeats = 0
        else:
            link = _new_link(session, attempt, contact, now, timedelta(days=days))
            body = render(template, **link_urls(host, link.code))
        message = _message(session, campaign, phone, "invitation", body, attempt.id, pacing, now, budgets,
                           account_id)
        pending.append((contact, attempt, message))
    session.flush()
    return [ClaimedMessage(m.id, a.id, m.token, c.phone_e164, m.body, sender, m.kind, m.lease_until, not_after,
                           budgets.price(account_id, c.phone_e164, m.segments), account_id) for c, a, m in pending]


def _last_outcome(contact: Contact) -> Outcome | None:
    outcomes = [a.outcome for a in contact.attempts if a.outcome]
    return Outcome(outcomes[-1]) if outcomes else None


def _skip_landline(session: Session, q: Questionnaire, contact: Contact, campaign: Campaign,
                   now: datetime) -> None:
    """A landline gets no SMS: on to the next non-SMS step of the plan; with none left, it
    ends by its earlier attempts (or as an invalid number for SMS when it had none)."""
    plan = channel_plan(campaign)
    step = next((i for i, s in enumerate(plan) if s["channel"] == contact.channel), 0)
    later = [s for s in plan[step + 1:] if s["channel"] != SMS]
    if later:
        contact.channel = later[0]["channel"]
        contact.channel_attempts = 0
        contact.next_attempt_at = now
        return
    previous = _last_outcome(contact)
    if previous is None:
        finish_contact(session, contact, Outcome.INVALID_NUMBER, now)
    else:
        finish_with_answers(session, q, contact, previous, now)


def _claim_reminders(session: Session, pacing: MessagePacing, now: datetime, budgets: _Budgets) -> list[ClaimedMessage]:
    """At most one reminder per link, only if it was never opened, ``reminder_hours``
    after the invitation, while the link is live and the window open, under the cap."""
    claimed: list[ClaimedMessage] = []
    rows = session.execute(
        select(Campaign, Programme).join(Programme, Programme.id == Campaign.programme_id)
        .where(Campaign.status == CampaignStatus.RUNNING, Programme.reminder_hours.is_not(None))
        .order_by(Campaign.id)).all()
    for campaign, programme in rows:
        if budgets.total <= 0:
            break
        if twoway.sms_mode(campaign.channel_plan).two_way:
            continue  # a session's reminder is its next question
        account_id = routed_account(programme)
        if budgets.left(account_id) <= 0:
            continue
        not_after = _not_after(campaign, campaign.calling_window(), now)
        if not_after is None:
            continue
        links = session.scalars(
            select(SurveyLink).join(Attempt, Attempt.id == SurveyLink.attempt_id)
            .where(SurveyLink.campaign_id == campaign.id, SurveyLink.opened_at.is_(None),
                   SurveyLink.finished_at.is_(None), SurveyLink.reminded_at.is_(None),
                   SurveyLink.expires_at > now,
                   SurveyLink.created_at <= now - timedelta(hours=programme.reminder_hours or 0),
                   Attempt.status == AttemptStatus.IN_PROGRESS)
            .order_by(SurveyLink.created_at, SurveyLink.id).limit(budgets.left(account_id))
            .with_for_update(of=SurveyLink, skip_locked=True)).all()
        if not links:
            continue
        contacts = {c.id: c for c in session.scalars(select(Contact).where(
            Contact.id.in_([link.contact_id for link in links])))}
        opted_out = phone_match.opted_out(session, [c.phone_e164 for c in contacts.values()])
        template = programme.reminder_template or programme.template
        for link in links:
            phone = contacts[link.contact_id].phone_e164
            if phone in opted_out:
                continue
            _lock_number(session, phone, now)
            if _capped_until(session, phone, now) is not None:
                continue  # tried again on a later round, while the link lives
            link.reminded_at = now
            body = render(template, **link_urls(programme.public_host, link.code))
            message = _message(session, campaign, phone, "reminder", body, link.attempt_id, pacing, now, budgets,
                               account_id)
            session.flush()
            claimed.append(ClaimedMessage(message.id, link.attempt_id, message.token, phone, body,
                                          _sender(programme, account_id), "reminder", message.lease_until, not_after,
                                          budgets.price(account_id, phone, message.segments), account_id))
    return claimed


def _reclaim_expired(session: Session, registry: QuestionnaireRegistry, pacing: MessagePacing, now: datetime,
                     budgets: _Budgets) -> list[ClaimedMessage]:
    if budgets.total <= 0:
        return []
    accounts = [a for a in budgets.left_by if a is not None]
    expired = session.scalars(
        select(Message).where(Message.status == MessageStatus.QUEUED, Message.lease_until <= now,
                              or_(and_(Message.account_id.is_(None), Message.provider == pacing.sender),
                                  Message.account_id.in_(accounts)))
        .order_by(Message.lease_until).limit(budgets.total).with_for_update(skip_locked=True)).all()
    result: list[ClaimedMessage] = []
    for message in expired:
        if budgets.left(message.account_id) <= 0:
            continue
        if message.provider_id is not None:
            # A status callback named it: it was sent; the worker died before noting it.
            message.status, message.lease_until = MessageStatus.ACCEPTED, None
            if message.price is None:
                message.price = budgets.price(message.account_id, message.phone_e164, message.segments)
            _accept_attempt(session, message)
            continue
        if message.kind == CONFIRMATION:
            # The answer to a refusal: no campaign, no window, and the number is opted out.
            message.lease_until = now + pacing.lease
            result.append(ClaimedMessage(message.id, None, message.token, message.phone_e164, message.body, None,
                                         message.kind, message.lease_until, None))
            continue
        attempt = session.get(Attempt, message.attempt_id) if message.attempt_id is not None else None
        campaign = session.get(Campaign, message.campaign_id) if message.campaign_id is not None else None
        if message.kind == QUESTION and _session_closed(session, message, now):
            message.status, message.lease_until, message.updated_at = MessageStatus.CANCELED, None, now
            continue
        opted = phone_match.is_opted_out(session, message.phone_e164)
        if opted or campaign is None or (campaign.ends_at is not None and now >= campaign.ends_at):
            # Never sent and never will be.
            message.status, message.lease_until, message.updated_at = MessageStatus.CANCELED, None, now
            if attempt is not None and message.kind == "invitation" and attempt.status is AttemptStatus.QUEUED:
                attempt.status, attempt.lease_until, attempt.ended_at = AttemptStatus.CANCELED, None, now
                if opted is not None:
                    attempt.outcome = Outcome.REFUSED.value
                    finish_contact(session, attempt.contact, Outcome.REFUSED, now, code="2.11")
                else:
                    attempt.outcome = Outcome.CANCELED.value
                    attempt.contact.status, attempt.contact.next_attempt_at = ContactStatus.PENDING, None
            continue
        if campaign.status is not CampaignStatus.RUNNING:
            message.lease_until = now + pacing.lease
            continue
        window = campaign.calling_window()
        not_after = _not_after(campaign, window, now)
        if not_after is None:
            reopen = window.next_open(now)
            message.lease_until = reopen if reopen is not None else now + pacing.lease
            continue
        log.info("message %s: lease expired before the provider took it; sending it again", message.id)
        budgets.use(message.account_id)
        message.lease_until = now + pacing.lease
        if attempt is not None and attempt.status is AttemptStatus.QUEUED:
            attempt.lease_until = message.lease_until
        programme = session.get(Programme, campaign.programme_id) if campaign.programme_id is not None else None
        result.append(ClaimedMessage(message.id, message.attempt_id, message.token, message.phone_e164, message.body,
                                     _sender(programme, message.account_id), message.kind, message.lease_until,
                                     not_after, budgets.price(message.account_id, message.phone_e164, message.segments),
                                     message.account_id))
    return result


def _session_closed(session: Session, message: Message, now: datetime) -> bool:
    """A two-way question waiting (for the window or the cap) whose session has ended."""
    link = session.scalar(select(SurveyLink).where(SurveyLink.attempt_id == message.attempt_id))
    return link is None or link.finished_at is not None or link.expires_at <= now


def _accept_attempt(session: Session, message: Message) -> None:
    """The provider has the invitation: its link is live (attempt IN_PROGRESS)."""
    if message.kind != "invitation" or message.attempt_id is None:
        return
    session.execute(update(Attempt).where(Attempt.id == message.attempt_id, Attempt.status == AttemptStatus.QUEUED)
                    .values(status=AttemptStatus.IN_PROGRESS, lease_until=None))


# ============================================================================ sending

# Built once (the hot path): one transaction of two Core statements per message sent. A
# status callback may already have named the message and moved it on, which this never undoes.
_RECORD_SENT = update(Message).where(Message.id == bindparam("p_message")).values(
    provider_id=func.coalesce(Message.provider_id, bindparam("p_sid", type_=Message.provider_id.type)),
    status=case((Message.status == MessageStatus.QUEUED, MessageStatus.ACCEPTED), else_=Message.status),
    # When its state was last known: services.message_receipts asks about it once overdue.
    updated_at=case((Message.status == MessageStatus.QUEUED, bindparam("p_now", type_=Message.updated_at.type)),
                    else_=Message.updated_at),
    sent_at=func.coalesce(Message.sent_at, bindparam("p_now", type_=Message.sent_at.type)),
    price=func.coalesce(Message.price, bindparam("p_price", type_=Message.price.type)),
    lease_until=None)
_RECORD_LIVE = update(Attempt).where(Attempt.id == bindparam("p_attempt"),
                                     Attempt.status == AttemptStatus.QUEUED).values(
    status=AttemptStatus.IN_PROGRESS, lease_until=None)


def send(db: Database, registry: QuestionnaireRegistry, provider: MessagingProvider | Messengers,
         claimed: ClaimedMessage,
         status_url: Callable[[str], str], now: Callable[[], datetime],
         lease: timedelta = timedelta(seconds=60), conn: Connection | None = None,
         fallback_sender: str | None = None) -> None:
    """Ask the provider to send one claimed message and record its answer.

    As :func:`dispatch.place`: sent only while this worker holds the lease (renewed by
    compare-and-set when less than half is left). Provider errors: ``permanent`` ends the
    attempt (INVALID_NUMBER, or REFUSED + opt-out for 21610); ``retryable`` and
    ``configuration`` end it as FAILED (the retry policy decides); ``unknown`` keeps the
    message QUEUED with a longer lease: a status callback meanwhile proves it was sent,
    otherwise it is sent again with the same token. A ZNS "no Zalo account" (−118) becomes
    an SMS instead (:func:`fall_back_to_sms`): through the next account of the programme's
    routing (:func:`next_account`), else, when given, through ``fallback_sender`` (the
    installation's SMS provider's name)."""
    if claimed.not_after is not None and now() >= claimed.not_after:
        log.info("message %s: the window closed before it was sent", claimed.message_id)
        return
    if not keep_lease(db, Message, claimed.message_id, claimed.lease_until, lease, now()):
        log.info("message %s: lease lost before sending; another worker has it", claimed.message_id)
        return
    request = MessageRequest(to=claimed.to, body=claimed.body, sender=claimed.sender,
                             status_url=status_url(claimed.token), idempotency_key=claimed.token)
    try:
        messenger = provider.for_account(claimed.account_id) if isinstance(provider, Messengers) else provider
        sent = messenger.send_message(request)
    except ProviderError as exc:
        _refused(db, registry, claimed, exc, now, fallback_sender)
        return
    values = {"p_message": claimed.message_id, "p_sid": sent.provider_id, "p_now": now(), "p_price": claimed.price,
              "p_attempt": claimed.attempt_id if claimed.kind == "invitation" else None}
    if conn is None:
        with db.engine.begin() as own:
            _record(own, values)
    else:
        with conn.begin():
            _record(conn, values)


def _record(conn: Connection, values: dict[str, object]) -> None:
    conn.execute(_RECORD_SENT, values)
    if values["p_attempt"] is not None:
        conn.execute(_RECORD_LIVE, values)


def _refused(db: Database, registry: QuestionnaireRegistry, claimed: ClaimedMessage, exc: ProviderError,
             now: Callable[[], datetime], fallback_sender: str | None = None) -> None:
    if exc.kind == "configuration":
        log.error("message %s: provider configuration error %s: %s", claimed.message_id, exc.code, exc)
    else:
        log.warning("message %s: provider refused it (%s, %s)", claimed.message_id, exc.kind, exc.code)
    with db.begin() as session:
        message = session.get(Message, claimed.message_id, with_for_update=True)
        assert message is not None
        metrics.provider_error(message.provider, exc.kind, exc.code)
        if message.status is not MessageStatus.QUEUED:
            return  # a status callback got there first: the message exists
        message.error_code = exc.code
        message.error_message = str(exc)[:500]
        if exc.kind == "unknown":
            message.lease_until = now() + UNKNOWN_LEASE
            if message.attempt_id is not None and message.kind == "invitation":
                session.execute(update(Attempt).where(Attempt.id == message.attempt_id,
                                                      Attempt.status == AttemptStatus.QUEUED)
                                .values(lease_until=message.lease_until))
            return
        message.status, message.lease_until, message.updated_at = MessageStatus.FAILED, None, now()
        metrics.MESSAGES.labels(status=MessageStatus.FAILED.value).inc()
        if exc.code == NO_ZALO_CODE:
            after = next_account(session, message)
            if after is not None:
                replaced = fall_back_to_sms(session, message, now(), sender=after.kind, account_id=after.id)
            elif fallback_sender is not None:
                replaced = fall_back_to_sms(session, message, now(), sender=fallback_sender)
            else:
                replaced = None
            if replaced is not None:
                return
        if exc.kind == "permanent":
            # The number cannot get it: opted out (REFUSED) or, whatever the reason, INVALID_NUMBER.
            refused = exc.reason == "opted_out" or delivery.failure_of(message.provider, exc.code).reason == "opted_out"
            outcome = Outcome.REFUSED if refused else Outcome.INVALID_NUMBER
        else:
            outcome = Outcome.FAILED
        _message_failed(session, registry, message, outcome, exc.code, now())


def _message_failed(session: Session, registry: QuestionnaireRegistry, message: Message, outcome: Outcome,
                    code: str | None, now: datetime) -> None:
    """A message will never reach the citizen. An invitation's failure ends its attempt
    and settles the contact; a reminder's changes nothing else, except an opt-out (21610),
    which is the citizen's answer for every message."""
    if outcome is Outcome.REFUSED:
        opt_out(session, message.phone_e164, source="sms", now=now, campaign_id=message.campaign_id)
    if message.attempt_id is None or (message.kind != "invitation" and outcome is not Outcome.REFUSED):
        return
    attempt = session.scalars(select(Attempt).where(Attempt.id == message.attempt_id).with_for_update(of=Attempt)
                              .options(joinedload(Attempt.campaign), joinedload(Attempt.contact)
                                       .joinedload(Contact.interview).joinedload(Interview.answers))).unique().one()
    if attempt.status not in (AttemptStatus.QUEUED, AttemptStatus.IN_PROGRESS):
        return
    link = session.scalar(select(SurveyLink).where(SurveyLink.attempt_id == attempt.id))
    if outcome is not Outcome.REFUSED and link is not None and link.opened_at is not None:
        return  # the citizen opened the link: the delivery report was wrong
    attempt.status = AttemptStatus.FAILED
    attempt.outcome = outcome.value
    metrics.ATTEMPTS.labels(channel=attempt.channel, outcome=outcome.value).inc()
    attempt.error_code = code
    attempt.ended_at = now
    attempt.lease_until = None
    if link is not None and outcome is Outcome.REFUSED:
        link.expires_at = min(link.expires_at, now)
    campaign = attempt.campaign
    settle_contact(session, registry.get(campaign.questionnaire_key), attempt.contact, campaign, outcome, now)


def send_round(db: Database, registry: QuestionnaireRegistry, provider: MessagingProvider | Messengers,
               status_url: Callable[[str], str], now: Callable[[], datetime], pacing: MessagePacing,
               default_host: str, batch: int = 50, reminders: bool = True,
               fallback_sender: str | None = None) -> int:
    """One round: claim due messages and send them; returns how many were handed over."""
    with metrics.DISPATCH_SECONDS.labels(channel="message").time():
        claimed = claim_messages(db, pacing, now(), batch, registry=registry, default_host=default_host,
                                 reminders=reminders)
        metrics.CLAIMS.labels(channel="message").inc(len(claimed))
        if claimed:
            with db.engine.connect() as conn:
                for item in claimed:
                    send(db, registry, provider, item, status_url, now, pacing.lease, conn=conn,
                         fallback_sender=fallback_sender)
    return len(claimed)


def reminder_round(db: Database, registry: QuestionnaireRegistry, provider: MessagingProvider | Messengers,
                   status_url: Callable[[str], str], now: Callable[[], datetime], pacing: MessagePacing,
                   batch: int = 50) -> int:
    claimed = claim_reminders(db, pacing, now(), batch)
    for item in claimed:
        send(db, registry, provider, item, status_url, now, pacing.lease)
    return len(claimed)


# ============================================================================ ZNS → SMS fallback

def next_account(session: Session, message: Message) -> MessagingAccount | None:
    """The active messaging account after ``message``'s in its programme's routing (None:
    the message went through no account, or through the last one)."""
    if message.account_id is None or message.campaign_id is None:
        return None
    campaign = session.get(Campaign, message.campaign_id)
    programme = session.get(Programme, campaign.programme_id) \
        if campaign is not None and campaign.programme_id is not None else None
    routing = [int(a) for a in (programme.routing or [])] if programme is not None else []
    if message.account_id not in routing:
        return None
    for account_id in routing[routing.index(message.account_id) + 1:]:
        account = session.get(MessagingAccount, account_id)
        if account is not None and account.active:
            return account
    return None


def fall_back_to_sms(session: Session, message: Message, now: datetime, *, sender: str,
                     account_id: int | None = None) -> Message | None:
    """The ZNS ``message`` cannot reach its number (no Zalo account, −118): it ends FAILED
    with the code and the reason kept, and an SMS of the same kind, for the same attempt and
    link, takes its place (``fallback_of_id``), QUEUED for ``sender`` (the SMS provider's
    name; with ``account_id``, the kind of that messaging account, which sends it) and due
    at once: the next message round of that sender sends it, within the
    campaign's window, as a message whose lease expired (see :func:`_reclaim_expired`).
    The 24 h cap holds: a number at its cap gets the SMS when the oldest message leaves the
    period. Its text is the programme's SMS template rendered with the attempt's link, as
    the normal path renders it. Idempotent; None when the number opted out meanwhile.
    ``message`` must be locked by the caller."""
    existing = session.scalar(select(Message).where(Message.fallback_of_id == message.id))
    if message.status not in FINAL_MESSAGE_STATUSES:
        message.status, message.lease_until, message.updated_at = MessageStatus.FAILED, None, now
    message.error_code = message.error_code or NO_ZALO_CODE
    if existing is not None:
        return existing
    if phone_match.is_opted_out(session, message.phone_e164):
        return None
    body = _sms_body(session, message)
    _lock_number(session, message.phone_e164, now)
    due = _capped_until(session, message.phone_e164, now) or now
    encoded = encode(body)
    sms = Message(attempt_id=message.attempt_id, campaign_id=message.campaign_id, phone_e164=message.phone_e164,
                  kind=message.kind, body=body, encoding=encoded.encoding, segments=encoded.segments,
                  provider=sender, account_id=account_id, created_at=now, lease_until=due,
                  status=MessageStatus.QUEUED, fallback_of_id=message.id)
    session.add(sms)
    _note_message(session, message.phone_e164, now)
    session.flush()
    message.error_message = f"no Zalo account: replaced by SMS message {sms.id}"
    if message.attempt_id is not None and message.kind == "invitation":
        session.execute(update(Attempt).where(Attempt.id == message.attempt_id, Attempt.status == AttemptStatus.QUEUED)
                        .values(lease_until=due))
    log.info("message %s: no Zalo account; SMS message %s takes its place", message.id, sms.id)
    return sms


def _sms_body(session: Session, message: Message) -> str:
    link = session.scalar(select(SurveyLink).where(SurveyLink.attempt_id == message.attempt_id)) \
        if message.attempt_id is not None else None
    campaign = session.get(Campaign, message.campaign_id) if message.campaign_id is not None else None
    if link is None or campaign is None:
        return message.body
    programme = session.get(Programme, campaign.programme_id) if campaign.programme_id is not None else None
    if programme is not None:
        template = programme.reminder_template or programme.template if message.kind == "reminder" \
            else programme.template
        return render(template, **link_urls(programme.public_host, link.code))
    # No programme: the claim rendered the questionnaire's sms_invitation into this very text.
    return message.body


# ============================================================================ status callbacks

def read_status(kind: str, status: str, error_code: str | None) -> delivery.Delivery:
    """A provider's status report in our terms (core.delivery); an unknown status is bad
    input naming the field."""
    try:
        return delivery.read(kind, status, error_code)
    except delivery.UnknownStatus as exc:
        raise invalid("MessageStatus", str(exc)) from None


def apply_status(session: Session, registry: QuestionnaireRegistry, token: str, provider_id: str | None,
                 status: str, error_code: str | None, now: datetime, *, prices: Mapping[str, float] | None = None,
                 account_id: int | None = None, id_field: str = "MessageSid") -> Message:
    """Apply one delivery status callback, read by the message's provider's table in
    core.delivery. Idempotent; never moves a message backwards or out of a final state
    (:func:`delivery.advance`). The raw status (and, when final, the raw code) is kept on
    the message. An invitation that ends undelivered, failed or expired ends its attempt
    (retryable reasons: FAILED, retried by the policy; not a mobile: INVALID_NUMBER; opted
    out: REFUSED and the number opted out) and settles the contact. A callback that is the
    first sign the provider took the message records its price (the message's account's
    prices, else ``prices`` when given; otherwise the sending worker records it). With
    ``account_id`` (callbacks authenticated by an account's secret), the message must have
    gone through that account, else NotFound; ``id_field`` names the provider's id parameter in errors."""
    message = session.scalar(select(Message).where(Message.token == token).with_for_update())
    if message is None or (account_id is not None and message.account_id != account_id):
        raise NotFound(f"unknown message {token[:40]!r}")
    logs.bind(campaign=message.campaign_id, attempt=message.attempt_id)
    report = read_status(message.provider, status, error_code)
    if provider_id is not None:
        if message.provider_id is None:
            other = session.scalar(select(Message.id).where(Message.provider_id == provider_id))
            if other is not None:
                raise Conflict(f"{id_field} {provider_id!r} belongs to another message", field=id_field)
            message.provider_id = provider_id
        elif message.provider_id != provider_id:
            raise Conflict(f"{id_field} {provider_id!r} does not belong to this message", field=id_field)
    if message.status in FINAL_MESSAGE_STATUSES:
        return message
    was_queued = message.status is MessageStatus.QUEUED
    message.lease_until = None
    current = None if was_queued else delivery.State(message.status.value)
    state = delivery.advance(current, report.state)
    if state is report.state:
        message.raw_status = (report.raw_status or "")[:40] or None
        if state is not current:
            message.status, message.updated_at = MessageStatus(state.value), now
            if message.status in FINAL_MESSAGE_STATUSES:
                metrics.MESSAGES.labels(status=message.status.value).inc()
        if report.final and report.raw_code:
            message.error_code = report.raw_code[:20]
    if was_queued:
        message.sent_at = message.sent_at or now
        if message.price is None and message.account_id is not None:
            account = session.get(MessagingAccount, message.account_id)
            prices = (account.prices if account is not None else None) or prices
        if message.price is None and prices:
            message.price = message_price(dict(prices), normalise(message.phone_e164).carrier, message.segments)
        _accept_attempt(session, message)
    if report.failed:
        _message_failed(session, registry, message, outcome_of(report), report.raw_code, now)
    return message


def outcome_of(report: delivery.Delivery | delivery.Failure) -> Outcome:
    """The attempt outcome of a message that will not reach the citizen, by its reason:
    opted out → REFUSED, not a mobile → INVALID_NUMBER; anything else (unreachable,
    filtered, expired, unknown …) → FAILED, which the retry policy may try again."""
    if report.reason == "opted_out":
        return Outcome.REFUSED
    if report.reason == "not_mobile":
        return Outcome.INVALID_NUMBER
    return Outcome.FAILED


def delivery_outcome(error_code: str | None, kind: str = "twilio") -> Outcome:
    """The attempt outcome of an undelivered or failed message of provider ``kind``, by its error code."""
    return outcome_of(delivery.failure_of(kind, error_code))


# ============================================================================ link expiry

def web_responses(q: Questionnaire, interview: Interview | None) -> dict[str, Response]:
    """The latest answer per item (consent excluded), as the web form stored them."""
    result: dict[str, Response] = {}
    if interview is None:
        return result
    for answer in interview.answers:
        if q.has_item(answer.item_id) and q.item(answer.item_id).kind != "consent":
            result[answer.item_id] = Response(answer.value, AnswerStatus(answer.status), answer.digits)
    return result


_EXPIRED_OUTCOME = {
    flow.Disposition.COMPLETE: Outcome.COMPLETED,
    flow.Disposition.PARTIAL: Outcome.PARTIAL,
    flow.Disposition.BREAK_OFF: Outcome.BREAK_OFF,
    flow.Disposition.REFUSED: Outcome.REFUSED,
}


def expire_links(db: Database, registry: QuestionnaireRegistry, now: datetime, limit: int = 200) -> int:
    """End the SMS attempts whose link expired unfinished: never answered → NO_ANSWER;
    some answers → PARTIAL or BREAK_OFF by ``flow.disposition(q, responses, "web")`` (the
    attempt COMPLETED: the link was used). Then the contact is settled: the next channel
    of the plan, a retry, or its final disposition (which also closes its interview; an
    interview that goes on by another channel stays open to resume). Returns how many."""
    with db.begin() as session:
        return expire_links_in(session, registry, now, limit)


def expire_links_in(session: Session, registry: QuestionnaireRegistry, now: datetime, limit: int = 200) -> int:
    attempts = session.scalars(
        select(Attempt).join(SurveyLink, SurveyLink.attempt_id == Attempt.id)
        .where(Attempt.channel == SMS, Attempt.status == AttemptStatus.IN_PROGRESS,
               SurveyLink.expires_at <= now, SurveyLink.finished_at.is_(None))
        .order_by(SurveyLink.expires_at).limit(limit)
        # The link row first, as the form does: an answer being saved right now holds it,
        # and this link is left for the next round instead of racing it.
        .with_for_update(of=(SurveyLink, Attempt), skip_locked=True)
        .options(joinedload(Attempt.campaign), joinedload(Attempt.contact).joinedload(Contact.interview)
                 .joinedload(Interview.answers))).unique().all()
    for attempt in attempts:
        campaign, contact = attempt.campaign, attempt.contact
        q = registry.get(campaign.questionnaire_key)
        responses = web_responses(q, contact.interview)
        if responses:
            outcome = _EXPIRED_OUTCOME[flow.disposition(q, responses, "web")]
            attempt.status = AttemptStatus.COMPLETED
        else:
            outcome = Outcome.NO_ANSWER
            attempt.status = AttemptStatus.NO_ANSWER
        attempt.outcome = outcome.value
        metrics.ATTEMPTS.labels(channel=attempt.channel, outcome=outcome.value).inc()
        attempt.ended_at = now
        attempt.lease_until = None
        if outcome is Outcome.COMPLETED:
            finish_contact(session, contact, outcome, now)
        else:
            settle_contact(session, q, contact, campaign, outcome, now, previous_start=attempt.created_at)
        interview = contact.interview
        if interview is not None and contact.status is ContactStatus.DONE \
                and interview.status is InterviewStatus.IN_PROGRESS:
            interview.status = InterviewStatus(flow.disposition(q, responses, "web").value) \
                if responses else InterviewStatus.BREAK_OFF
            interview.ended_at = now
    return len(attempts)
