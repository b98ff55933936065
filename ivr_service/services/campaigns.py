"""Agencies and campaigns: create, configure, change state, report progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.dispositions import response_rates
from ..core.policy import CallingWindow, Outcome, RetryPolicy
from ..core.questionnaire import QuestionnaireRegistry
from ..core.sampling import SampleRule
from ..persistence.models import (Agency, Attempt, AttemptStatus, Campaign, CampaignStatus, Contact,
                                  ContactStatus)


class CampaignError(ValueError):
    """A campaign request that cannot be applied; the message says why.

    ``status`` is the HTTP status the API answers: 400 for bad input, 409 when the
    request conflicts with the current state.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotFound(LookupError):
    pass


def create_agency(session: Session, code: str, name: str, now: datetime,
                  sample_rule: dict[str, Any] | None = None) -> Agency:
    """``sample_rule``: the agency's sample-size rule (kind, n, margin); seed-002 tiers if None."""
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise CampaignError("agency: code and name are required")
    if sample_rule is not None:
        unknown = set(sample_rule) - {"kind", "n", "margin"}
        if unknown:
            raise CampaignError(f"sample_rule: unknown key(s) {sorted(unknown)}; use kind, n, margin")
        try:
            SampleRule(kind=sample_rule.get("kind", "seed002"), n=sample_rule.get("n"),
                       margin=sample_rule.get("margin", 0.05))
        except (ValueError, TypeError) as exc:
            raise CampaignError(f"sample_rule: {exc}") from None
    if session.scalar(select(Agency.id).where(Agency.code == code)) is not None:
        raise CampaignError(f"agency: code {code!r} is already used", status=409)
    agency = Agency(code=code, name=name, sample_rule=sample_rule, created_at=now)
    session.add(agency)
    session.flush()
    return agency


def get_agency(session: Session, agency_id: int) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"agency {agency_id} not found")
    return agency


def get_campaign(session: Session, campaign_id: int, lock: bool = False) -> Campaign:
    campaign = session.get(Campaign, campaign_id, with_for_update=lock)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def create_campaign(session: Session, registry: QuestionnaireRegistry, *, agency_id: int, name: str,
                    questionnaire: str, now: datetime, timezone: str = "Asia/Ho_Chi_Minh",
                    window: dict[str, Any] | None = None, retry: dict[str, Any] | None = None,
                    calls_per_second: float = 1.0, language: str = "vi", resume_mode: str = "resume",
                    period_start: date | None = None, period_end: date | None = None,
                    starts_at: datetime | None = None, ends_at: datetime | None = None,
                    target_completes: int | None = None, channel_plan: list[dict[str, Any]] | None = None,
                    spread: bool = False) -> Campaign:
    get_agency(session, agency_id)
    if not name.strip():
        raise CampaignError("name: required")
    if questionnaire not in registry.keys():
        raise CampaignError(f"questionnaire: unknown key {questionnaire!r}; available: {', '.join(registry.keys())}")
    registry.get(questionnaire)  # fails here, not mid-call, if the file is broken
    window = {"timezone": timezone, **(window or {})}
    try:
        CallingWindow.from_dict(window)
        RetryPolicy.from_dict(retry or {})
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    if not 0 < calls_per_second <= 1000:
        raise CampaignError(f"calls_per_second: expected more than 0 and at most 1000, got {calls_per_second}")
    if language not in ("vi", "en"):
        raise CampaignError(f"language: expected vi or en, got {language!r}")
    if resume_mode not in ("resume", "restart"):
        raise CampaignError(f"resume_mode: expected resume or restart, got {resume_mode!r}")
    for label, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment is not None and moment.tzinfo is None:
            raise CampaignError(f"{label}: expected a date-time with a time zone, got {moment.isoformat()}")
    if starts_at and ends_at and not starts_at < ends_at:
        raise CampaignError("ends_at: must be after starts_at")
    if target_completes is not None and not 1 <= target_completes <= 10_000_000:
        raise CampaignError(f"target_completes: expected a positive whole number, got {target_completes}")
    if spread and ends_at is None:
        raise CampaignError("spread: needs ends_at (attempts are spread over the open days left)")
    plan = validate_channel_plan(channel_plan) if channel_plan is not None else []
    campaign = Campaign(agency_id=agency_id, name=name.strip(), questionnaire_key=questionnaire,
                        timezone=timezone, window=window, retry=retry or {},
                        calls_per_second=calls_per_second, language=language, resume_mode=resume_mode,
                        period_start=period_start, period_end=period_end, starts_at=starts_at,
                        ends_at=ends_at, target_completes=target_completes, channel_plan=plan,
                        spread=spread, created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


CHANNELS = ("voice", "sms")


def validate_channel_plan(plan: Any) -> list[dict[str, Any]]:
    """``[{"channel": "voice", "max_attempts": 3}, {"channel": "sms", "max_attempts": 1}]``:
    the channels in the order they are tried, each at most once."""
    if not isinstance(plan, list) or not plan:
        raise CampaignError("channel_plan: expected a non-empty list of steps such as "
                            '[{"channel": "voice", "max_attempts": 3}]')
    steps, seen = [], set()
    for number, step in enumerate(plan, start=1):
        if not isinstance(step, dict) or set(step) - {"channel", "max_attempts"}:
            raise CampaignError(f"channel_plan step {number}: expected keys channel and max_attempts, got {step!r}")
        channel, attempts = step.get("channel"), step.get("max_attempts", 1)
        if channel not in CHANNELS:
            raise CampaignError(f"channel_plan step {number}: channel must be one of {', '.join(CHANNELS)}, "
                                f"got {channel!r}")
        if channel in seen:
            raise CampaignError(f"channel_plan step {number}: channel {channel!r} appears twice")
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
            raise CampaignError(f"channel_plan step {number}: max_attempts must be 1 to 20, got {attempts!r}")
        seen.add(channel)
        steps.append({"channel": channel, "max_attempts": attempts})
    return steps


_TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING, CampaignStatus.SCHEDULED}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "cancel": ({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED},
               CampaignStatus.CANCELLED),
}


def transition(session: Session, campaign_id: int, action: str, now: datetime,
               registry: QuestionnaireRegistry | None = None) -> Campaign:
    """Change a campaign's state. Cancelling closes it: waiting contacts get their final
    disposition (pass ``registry`` so partial interviews are classified by their answers);
    calls in progress finish and their contacts are closed when they end."""
    if action not in _TRANSITIONS:
        raise CampaignError(f"action: expected one of {', '.join(_TRANSITIONS)}, got {action!r}")
    campaign = get_campaign(session, campaign_id, lock=True)
    allowed, target = _TRANSITIONS[action]
    if campaign.status not in allowed:
        raise CampaignError(f"cannot {action} campaign {campaign_id}: it is {campaign.status.value}", status=409)
    if action == "start":
        contacts = session.scalar(select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id))
        if not contacts:
            raise CampaignError(f"cannot start campaign {campaign_id}: it has no sampled contacts yet", status=409)
        campaign.started_at = now
        if campaign.starts_at is not None and campaign.starts_at > now:
            target = CampaignStatus.SCHEDULED
    if action == "resume" and campaign.starts_at is not None and campaign.starts_at > now:
        target = CampaignStatus.SCHEDULED
    if target is CampaignStatus.CANCELLED:
        close(session, campaign, now, CampaignStatus.CANCELLED, registry)
        return campaign
    campaign.status = target
    return campaign


def completes(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Contact).where(
        Contact.campaign_id == campaign_id, Contact.disposition == "1.1")) or 0


def close_if_done(session: Session, campaign: Campaign, now: datetime,
                  registry: QuestionnaireRegistry | None = None) -> bool:
    """Complete a running or paused campaign when every contact is final, or when its
    target of completes is reached or its end has passed; then every contact still waiting
    gets its final disposition and the response rates are recorded."""
    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        return False
    counts = dict(session.execute(select(Contact.status, func.count()).where(
        Contact.campaign_id == campaign.id, Contact.status.in_([ContactStatus.PENDING, ContactStatus.ACTIVE]))
        .group_by(Contact.status)).all())
    pending, active = counts.get(ContactStatus.PENDING, 0), counts.get(ContactStatus.ACTIVE, 0)
    if pending or active:
        if campaign.status is CampaignStatus.PAUSED:
            return False
        ended = campaign.ends_at is not None and now >= campaign.ends_at
        reached = campaign.target_completes is not None and completes(session, campaign.id) >= campaign.target_completes
        if not (ended or reached):
            return False
        if active:
            return False  # calls in progress finish first; nothing new is dialled meanwhile
    close(session, campaign, now, CampaignStatus.COMPLETED, registry)
    return True


def close(session: Session, campaign: Campaign, now: datetime, status: CampaignStatus,
          registry: QuestionnaireRegistry | None = None) -> None:
    """Give every waiting contact its final disposition (by its last attempt and any
    answers), record the AAPOR rates and set ``status``."""
    from .contacts import finish_contact
    from .voice import finish_with_answers

    q = registry.get(campaign.questionnaire_key) if registry is not None else None
    waiting = session.scalars(select(Contact).where(Contact.campaign_id == campaign.id,
                                                    Contact.status == ContactStatus.PENDING)).all()
    last = dict(session.execute(
        select(Attempt.contact_id, Attempt.outcome).where(Attempt.campaign_id == campaign.id)
        .order_by(Attempt.id)).all()) if waiting else {}
    for contact in waiting:
        outcome = Outcome(last[contact.id]) if last.get(contact.id) else None
        if q is not None:
            finish_with_answers(session, q, contact, outcome, now)
        else:
            finish_contact(session, contact, outcome, now)
    codes = session.scalars(select(Contact.disposition).where(
        Contact.campaign_id == campaign.id, Contact.disposition.is_not(None))).all()
    rates = response_rates(codes)
    campaign.rates = {"counts": dict(rates.counts), "e": rates.e, "values": dict(rates.values)}
    campaign.status = status
    campaign.completed_at = now


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    status: str
    contacts: int
    by_status: dict[str, int]
    by_disposition: dict[str, int]
    attempts: int
    attempts_last_hour: int
    calls_in_progress: int
    rates: dict[str, float | None]


def progress(session: Session, campaign_id: int, now: datetime) -> Progress:
    campaign = get_campaign(session, campaign_id)
    by_status = dict(session.execute(
        select(Contact.status, func.count()).where(Contact.campaign_id == campaign_id).group_by(Contact.status)
    ).all())
    by_disposition = dict(session.execute(
        select(Contact.disposition, func.count())
        .where(Contact.campaign_id == campaign_id, Contact.disposition.is_not(None))
        .group_by(Contact.disposition)
    ).all())
    attempts = session.scalar(select(func.count()).select_from(Attempt).where(Attempt.campaign_id == campaign_id))
    last_hour = session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id == campaign_id, Attempt.created_at >= now - timedelta(hours=1)))
    live = session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id == campaign_id,
        Attempt.status.in_([AttemptStatus.QUEUED, AttemptStatus.INITIATED, AttemptStatus.RINGING,
                            AttemptStatus.IN_PROGRESS])))
    codes = [code for code, count in by_disposition.items() for _ in range(count)]
    rates = response_rates(codes).values if codes else {}
    return Progress(
        campaign_id=campaign_id, status=campaign.status.value,
        contacts=sum(by_status.values()),
        by_status={s.value: by_status.get(s, 0) for s in ContactStatus},
        by_disposition=dict(sorted(by_disposition.items())), attempts=attempts or 0,
        attempts_last_hour=last_hour or 0, calls_in_progress=live or 0, rates=dict(rates),
    )
