"""Typed SQLAlchemy 2 models. Times are stored in UTC (see :class:`UTCDateTime`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..core.policy import CallingWindow


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class CampaignStatus(StrEnum):
    DRAFT = "draft"            # being configured; nothing is dialled
    SCHEDULED = "scheduled"    # started by an operator; runs from starts_at
    RUNNING = "running"        # the worker dispatches due contacts
    PAUSED = "paused"          # no new attempts; calls in progress finish
    COMPLETED = "completed"    # every contact has a final disposition
    CANCELLED = "cancelled"    # stopped by an operator


class ContactStatus(StrEnum):
    RESERVE = "reserve"        # in the reserve pool; dialled only once its replicate is released
    PENDING = "pending"        # waiting for its next attempt (see next_attempt_at)
    ACTIVE = "active"          # an attempt is under way
    DONE = "done"              # final: see disposition


class AttemptStatus(StrEnum):
    QUEUED = "queued"          # row committed, provider not yet asked
    INITIATED = "initiated"    # provider accepted the call; provider_id set
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"  # answered; the IVR is running
    COMPLETED = "completed"    # the call ended after being answered
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"          # provider refused or the network failed; see error_*
    CANCELED = "canceled"


FINAL_ATTEMPT_STATUSES = frozenset({AttemptStatus.COMPLETED, AttemptStatus.BUSY,
                                    AttemptStatus.NO_ANSWER, AttemptStatus.FAILED,
                                    AttemptStatus.CANCELED})
# Claimed but not yet placed, or a call not yet ended.
LIVE_ATTEMPT_STATUSES = (AttemptStatus.QUEUED, AttemptStatus.INITIATED, AttemptStatus.RINGING,
                         AttemptStatus.IN_PROGRESS)


class InterviewStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"      # AAPOR 1.1
    PARTIAL = "partial"        # AAPOR 1.2
    BREAK_OFF = "break_off"    # AAPOR 2.12
    REFUSED = "refused"        # AAPOR 2.11


class Agency(Base):
    """An agency node: province → department or district → commune. Access, scores and
    reports follow this tree (see core/access.py)."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    # Sample-size rule (core.sampling.SampleRule fields); None means the seed-002 tiers.
    sample_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Days its closed campaigns keep citizens' personal data; None: SIPAS_RETENTION_DAYS.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaigns: Mapped[list[Campaign]] = relationship(back_populates="agency")


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("programme_id", "period_start", name="uq_campaigns_programme_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus, "campaign_status"),
                                                   default=CampaignStatus.DRAFT)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    language: Mapped[str] = mapped_column(String(5), default="vi")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    window: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    calls_per_second: Mapped[float] = mapped_column(Float, default=1.0)
    # When attempts may be made (None: from start / until every contact is final).
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    target_completes: Mapped[int | None] = mapped_column(Integer)   # stop once reached
    # Ordered steps, e.g. [{"channel": "voice", "max_attempts": 3}, {"channel": "sms", …}].
    channel_plan: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    spread: Mapped[bool] = mapped_column(default=False, server_default=false())   # spread attempts over remaining days
    # Calls accept spoken answers as well as keys (<Gather input="dtmf speech">).
    speech_input: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Said at the end of a call: where the citizen can say more (e.g. the 1022 line).
    hotline: Mapped[str | None] = mapped_column(String(20))
    rates: Mapped[dict[str, Any] | None] = mapped_column(JSON)      # AAPOR rates at closing
    resume_mode: Mapped[str] = mapped_column(String(10), default="resume")  # resume | restart
    sample_seed: Mapped[int | None] = mapped_column(Integer)
    frame_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    export_path: Mapped[str | None] = mapped_column(String(500))
    # When its personal data was purged (services/retention.py): names and codes gone,
    # numbers kept as keyed hashes.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A reporting period of a post-transaction programme (period_start..period_end); it
    # takes contacts until its period ends and closes once they are all settled.
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programmes.id"), index=True)

    agency: Mapped[Agency] = relationship(back_populates="campaigns")
    contacts: Mapped[list[Contact]] = relationship(back_populates="campaign")

    def calling_window(self) -> CallingWindow:
        return CallingWindow.of_campaign(self.window, self.timezone)


class Stratum(Base):
    """One agency × field stratum of a campaign's frame: sizes and the weight used in scoring."""

    __tablename__ = "strata"
    __table_args__ = (UniqueConstraint("campaign_id", "agency", "field", name="uq_strata_campaign_agency_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    agency: Mapped[str] = mapped_column(String(200), default="")
    field: Mapped[str] = mapped_column(String(200), default="")
    frame_rows: Mapped[int] = mapped_column(Integer)           # usable-phone rows read for the stratum
    eligible: Mapped[int] = mapped_column(Integer)             # N_h after exclusions
    excluded: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # reason -> count
    drawn: Mapped[int] = mapped_column(Integer)                # n_h, main sample plus released reserve
    reserve: Mapped[int] = mapped_column(Integer, default=0)   # reserve rows not yet released
    weight: Mapped[float | None] = mapped_column(Float)        # N_h / n_h


class Contact(Base):
    """A sampled citizen in one campaign. ``respondent_id`` is the pseudonym in results."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164", name="uq_contacts_campaign_phone"),
        Index("ix_contacts_due", "status", "next_attempt_at"),
        # A number across campaigns: refusals and opt-outs, inbound SMS, erasure requests.
        Index("ix_contacts_phone", "phone_e164"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    respondent_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_kind: Mapped[str] = mapped_column(String(10), default="mobile")  # mobile | landline (no SMS)
    carrier: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    transaction_code: Mapped[str | None] = mapped_column(String(80))
    field: Mapped[str | None] = mapped_column(String(200))       # lĩnh vực
    procedure: Mapped[str | None] = mapped_column(String(200))   # thủ tục (post-transaction surveys)
    stratum_id: Mapped[int | None] = mapped_column(ForeignKey("strata.id"), index=True)
    stratum_weight: Mapped[float] = mapped_column(Float, default=1.0)  # N_h / n_h
    replicate: Mapped[int] = mapped_column(Integer, default=0)  # 0 = main sample, 1.. = reserve wave
    returned_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[ContactStatus] = mapped_column(_enum(ContactStatus, "contact_status"),
                                                  default=ContactStatus.PENDING)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(10), default="voice", server_default="voice")  # plan step
    channel_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # on that step
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[str | None] = mapped_column(String(8))   # AAPOR code when done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="contacts")
    attempts: Mapped[list[Attempt]] = relationship(back_populates="contact", order_by="Attempt.number")
    interview: Mapped[Interview | None] = relationship(back_populates="contact")


class Attempt(Base):
    """One call (or message) to a contact. Written and committed before the provider is asked."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("contact_id", "channel", "number", name="uq_attempts_contact_channel_number"),
        Index("ix_attempts_campaign_status", "campaign_id", "status"),
        Index("ix_attempts_campaign_created", "campaign_id", "created_at"),
        Index("ix_attempts_status_lease", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)  # in webhook URLs
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="voice")
    number: Mapped[int] = mapped_column(Integer)                 # 1 for the first attempt
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus, "attempt_status"),
                                                  default=AttemptStatus.QUEUED)
    outcome: Mapped[str | None] = mapped_column(String(20))      # core.policy.Outcome when final
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    # A QUEUED attempt belongs to the worker that claimed it until then; afterwards any
    # worker reconciles it (placed: kept; not placed: placed again with the same token).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship(back_populates="attempts")
    campaign: Mapped[Campaign] = relationship()


class Interview(Base):
    """The questionnaire state of one contact, carried across attempts."""

    __tablename__ = "interviews"
    __table_args__ = (
        # Completes per day and in the last 24 hours (services/monitor.py): a range of a
        # campaign's completes by the time they ended, not all of its interviews.
        Index("ix_interviews_campaign_complete_ended", "campaign_id", "ended_at",
              postgresql_where=text("status = 'complete'"), sqlite_where=text("status = 'complete'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    questionnaire_key: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(10), default="voice", server_default="voice")  # voice | web
    status: Mapped[InterviewStatus] = mapped_column(_enum(InterviewStatus, "interview_status"),
                                                    default=InterviewStatus.IN_PROGRESS)
    current_item: Mapped[str | None] = mapped_column(String(40))
    retries: Mapped[int] = mapped_column(Integer, default=0)
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    # I-Twilio-Idempotency-Token of the last key press applied: a retried request with the
    # same token is answered again but applied only once.
    last_request_key: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship(back_populates="interview")
    answers: Mapped[list[Answer]] = relationship(back_populates="interview", order_by="Answer.id")


class Answer(Base):
    """One response to one item on one call. A resumed or restarted interview may answer an
    item again on a later call; every row is kept and the latest counts."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("attempt_id", "item_id", name="uq_answers_attempt_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    item_id: Mapped[str] = mapped_column(String(40))
    value: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))             # core.flow.AnswerStatus
    digits: Mapped[str] = mapped_column(String(8), default="")
    # A spoken answer: what the recogniser heard and how sure it was (for audit).
    heard: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    interview: Mapped[Interview] = relationship(back_populates="answers")


class OptOut(Base):
    """Do-not-contact list, across every campaign and channel (Decree 91: keep ≥ 1 year)."""

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(20))              # ivr | sms | operator | api
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PacingBucket(Base):
    """A token bucket shared by every worker (row-locked while claiming): one per sender
    (``sender:<provider>``) and one per campaign (``campaign:<id>``)."""

    __tablename__ = "pacing_buckets"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NumberCall(Base):
    """When each number last answered one of our calls, across campaigns (Decree 91 cap)."""

    __tablename__ = "number_calls"

    phone_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_call_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProgressDelta(Base):
    """Running counts behind campaign progress, kept by database triggers (see
    ``persistence.tallies``): every change of a contact's status or disposition, or of an
    attempt's status, adds signed rows here in the same transaction; housekeeping folds
    them into one row per key. Progress then sums a few rows instead of counting millions.

    No foreign key: rows are written by triggers while contacts and attempts are deleted.
    """

    __tablename__ = "progress_deltas"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(10))     # contact | attempt
    key: Mapped[str] = mapped_column(String(40))      # contact: "status:disposition"; attempt: status
    n: Mapped[int] = mapped_column(Integer)


class JobRun(Base):
    """A periodic job that must run once per period across the cluster (weekly export):
    taken under an advisory lock, finished when ``finished_at`` is set, so a crash mid-run
    is retried and a second worker finds the period done."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(20), primary_key=True)   # e.g. 2026-W48
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class User(Base):
    """A person who signs in to the console or the API. Passwords are argon2id hashes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)    # stored lower-case
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Changes whenever the password changes: sessions signed with an older value end.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="user", cascade="all, delete-orphan")


class RoleGrant(Base):
    """``role`` on ``agency_id`` and its subtree; no agency means the whole installation."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "agency_id", name="uq_role_grants_user_agency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants")


class ApiToken(Base):
    """A token for a system (a one-stop-shop, a script): shown once, stored as a SHA-256
    hash of its secret (the secret is 256 random bits, so a fast hash is enough), looked up
    by its visible prefix."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when, from where. Append-only: the application never updates a row,
    and a database trigger refuses updates."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(120))        # "user:3 an", "token:5 mot-cua", "cli:root"
    action: Mapped[str] = mapped_column(String(60), index=True)
    target: Mapped[str | None] = mapped_column(String(120))  # "campaign:7", "user:4"
    agency_id: Mapped[int | None] = mapped_column(Integer, index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# --- Post-transaction surveys: the feed, programmes, messages, links, QR posters --------


class Programme(Base):
    """An agency's continuous post-transaction survey: which reported transactions become
    invitations, when, and by which message. Its results fall into reporting periods: one
    campaign per period (``Campaign.programme_id``), created when the period's first
    transaction arrives, so scores, response rates and exports are those of campaigns."""

    __tablename__ = "programmes"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire_key: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Sampling: "seed003" (the seed-003 share for the agency's yearly volume, divided by the
    # expected response rate) or "fixed" (``share`` of every transaction).
    share_mode: Mapped[str] = mapped_column(String(10), default="seed003")
    share: Mapped[float | None] = mapped_column(Float)
    expected_response: Mapped[float] = mapped_column(Float, default=0.5)
    seed: Mapped[int] = mapped_column(Integer, default=0)          # salt of the per-transaction draw
    delay_minutes: Mapped[int] = mapped_column(Integer, default=120)   # after the result is returned
    recent_days: Mapped[int] = mapped_column(Integer, default=90)  # not invited in the last N days
    period: Mapped[str] = mapped_column(String(10), default="quarter")  # month | quarter | half
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    window: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # when messages may go (07–22)
    ends_on: Mapped[date | None] = mapped_column(Date)             # last day transactions are taken
    # The invitation: sent byte for byte but for its placeholders ({link}, {stop}).
    template: Mapped[str] = mapped_column(Text)
    reminder_template: Mapped[str | None] = mapped_column(Text)
    max_segments: Mapped[int] = mapped_column(Integer, default=1)
    sender: Mapped[str | None] = mapped_column(String(20))         # brandname / sender id
    public_host: Mapped[str] = mapped_column(String(200))          # https://host the links point at
    link_days: Mapped[int] = mapped_column(Integer, default=7)
    reminder_hours: Mapped[int | None] = mapped_column(Integer, default=72)  # None: no reminder
    channel_plan: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Messaging account ids in the order tried; None: the installation's provider.
    routing: Mapped[list[int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TransactionDecision(StrEnum):
    INVITED = "invited"              # a contact was made; the invitation follows the delay
    NOT_SAMPLED = "not_sampled"      # outside the programme's share
    OPTED_OUT = "opted_out"          # on the do-not-contact list
    RECENT = "recent"                # invited less than recent_days ago, or already this period
    NO_PROGRAMME = "no_programme"    # no active programme for the agency (or it has ended)


class Transaction(Base):
    """A dossier whose result was returned, as a one-stop-shop system reported it. One row
    per (agency, code): reporting it again changes nothing."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("agency_id", "code", name="uq_transactions_agency_code"),
        Index("ix_transactions_phone_decided", "phone_e164", "decided_at"),
        Index("ix_transactions_agency_returned", "agency_id", "returned_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    code: Mapped[str] = mapped_column(String(80))                  # mã hồ sơ
    procedure: Mapped[str | None] = mapped_column(String(200))     # thủ tục
    field: Mapped[str | None] = mapped_column(String(200))         # lĩnh vực
    phone_e164: Mapped[str] = mapped_column(String(20))
    officer: Mapped[str | None] = mapped_column(String(200))       # handling officer, optional
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(20))                # api | file
    decision: Mapped[str] = mapped_column(String(20))              # TransactionDecision
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programmes.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))


class TransactionIntake(Base):
    """A reported dossier accepted for a decision moments later (``services/intake.py``):
    the record as sent, who sent it with the agencies it could report for at that moment,
    and once the worker decided it the outcome. The record and its number are cleared
    then; the outcome stays ``intake.KEEP`` for the reporter to read."""

    __tablename__ = "transaction_intake"
    __table_args__ = (
        # The queue: the worker reads the oldest undecided rows.
        Index("ix_transaction_intake_queued", "id", postgresql_where=text("processed_at IS NULL"),
              sqlite_where=text("processed_at IS NULL")),
        Index("ix_transaction_intake_processed", "processed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    caller_kind: Mapped[str] = mapped_column(String(10))              # user | token
    caller_id: Mapped[int] = mapped_column(Integer)
    caller_name: Mapped[str] = mapped_column(String(200))
    caller_nodes: Mapped[list[int | None]] = mapped_column(JSON)      # where it held transactions:write
    address: Mapped[str | None] = mapped_column(String(64))
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)       # as sent; None once decided
    phone_e164: Mapped[str | None] = mapped_column(String(20), index=True)   # for erasure; None once decided
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)      # transactions.Result, without its index


class MessageStatus(StrEnum):
    QUEUED = "queued"              # row committed, provider not yet asked
    ACCEPTED = "accepted"          # the provider took it (Twilio: queued/sending)
    SENT = "sent"                  # handed to the carrier
    DELIVERED = "delivered"        # the handset got it (as far as the provider knows)
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"            # its validity period ran out undelivered
    CANCELED = "canceled"          # never sent (opted out, cap, campaign closed)


# From ACCEPTED on, the states of core.delivery.State (same values).
FINAL_MESSAGE_STATUSES = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED,
                                    MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELED})


class Message(Base):
    """One outgoing SMS: an invitation or its reminder. Written and committed (with its
    encoding and segment count) before the provider is asked; ``token`` is the idempotency
    key and the status-callback address."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_phone_created", "phone_e164", "created_at"),
        Index("ix_messages_status_lease", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))                  # invitation | reminder | confirmation
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))               # GSM-7 | UCS-2
    segments: Mapped[int] = mapped_column(Integer)
    status: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus, "message_status"),
                                                  default=MessageStatus.QUEUED)
    provider: Mapped[str] = mapped_column(String(20))
    # The account it went through (a programme's routing); None: the installation's provider.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("messaging_accounts.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))     # the provider's raw code
    raw_status: Mapped[str | None] = mapped_column(String(40))     # the provider's status, as reported
    error_message: Mapped[str | None] = mapped_column(Text)
    price: Mapped[float | None] = mapped_column(Float)            # VND, recorded when the provider accepts it
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the provider accepted it
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The message this one replaces (an SMS sent because the ZNS message could not reach
    # a number without a Zalo account, error -118).
    fallback_of_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)


class ZnsToken(Base):
    """The Zalo OA tokens of one ZNS account: the access token and the single-use refresh
    token that replaces it, row-locked while it is refreshed so workers never race it.
    Never logged."""

    __tablename__ = "zns_tokens"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundMessage(Base):
    """One SMS a citizen sent us. ``provider_id`` (Twilio's MessageSid) makes a retried
    webhook a no-op. The body and number are personal data: stored, never logged."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(64), unique=True)
    phone_e164: Mapped[str | None] = mapped_column(String(20), index=True)   # None: unparseable sender
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(20))                           # opt_out | ignored
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class MessagingAccount(Base):
    """An agency's account with a messaging provider (its own brandname, its own keys), or
    the installation's (``agency_id`` None). ``credentials`` are never returned or logged;
    ``callback_secret`` goes into the callback URLs of providers whose callbacks are unsigned."""

    __tablename__ = "messaging_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))                  # twilio | esms | zns | simulator
    name: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str | None] = mapped_column(String(40))          # brandname / Zalo OA id
    base_url: Mapped[str | None] = mapped_column(String(200))       # None: the kind's setting
    credentials: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    callback_secret: Mapped[str] = mapped_column(String(64), default=new_token)
    prices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # carrier (or "*") → VND per segment
    trusted_delivery: Mapped[bool] = mapped_column(default=False, server_default=false())
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NumberMessages(Base):
    """One row per number that was messaged, row-locked while a message to it is claimed,
    so the 3-per-24-hours cap (Decree 91) holds across workers."""

    __tablename__ = "number_messages"

    phone_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SurveyLink(Base):
    """The short link of one SMS invitation. Opening it never uses it up; only the last
    answer finishes it. ``code`` is 8–10 characters of a carrier-safe alphabet."""

    __tablename__ = "survey_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # first open by a person
    opens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QrPoster(Base):
    """A QR code at a counter leading to the anonymous form. Its answers are self-selected:
    kept, scored and exported apart from the probability sample."""

    __tablename__ = "qr_posters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))               # the counter, e.g. "Quầy 3"
    questionnaire_key: Mapped[str] = mapped_column(String(80))
    public_host: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QrResponse(Base):
    """One anonymous form filled at a QR poster. ``answers`` maps item id to
    ``{"value": int | None, "status": AnswerStatus}``; ``status`` is an InterviewStatus."""

    __tablename__ = "qr_responses"
    __table_args__ = (Index("ix_qr_responses_poster_started", "poster_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)
    poster_id: Mapped[int] = mapped_column(ForeignKey("qr_posters.id"))
    field: Mapped[str | None] = mapped_column(String(200))
    procedure: Mapped[str | None] = mapped_column(String(200))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="in_progress")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Alert(Base):
    """A unit's dissatisfied share on one criterion crossed the seed-003 threshold in one
    reporting period (services/alerts.py). The unique key is what makes it once: only the
    process whose insert succeeds sends it; a failed delivery is retried on later rounds
    (``attempts``, ``next_attempt_at``) and a channel once sent is never sent again."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("agency_id", "item_id", "period", name="uq_alerts_agency_item_period"),
                      Index("ix_alerts_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(20))                 # 2026-11, 2026-Q4, 2026-H2
    questionnaire_key: Mapped[str] = mapped_column(String(80))
    n: Mapped[int] = mapped_column(Integer)                         # valid answers
    n_dissatisfied: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)                     # n_dissatisfied / n, 0..1
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_error: Mapped[str | None] = mapped_column(String(500))
    webhook_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")   # delivery rounds claimed
    # When a delivery still owed may next be tried (claimed rounds push it forward).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agency: Mapped[Agency] = relationship()
