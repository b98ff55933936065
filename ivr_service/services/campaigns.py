"""Agencies and campaigns: create, configure, change state, report progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.dispositions import response_rates
from ..core.policy import CallingWindow, RetryPolicy
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
                    period_start: date | None = None, period_end: date | None = None) -> Campaign:
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
    campaign = Campaign(agency_id=agency_id, name=name.strip(), questionnaire_key=questionnaire,
                        timezone=timezone, window=window, retry=retry or {},
                        calls_per_second=calls_per_second, language=language, resume_mode=resume_mode,
                        period_start=period_start, period_end=period_end, created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


_TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "cancel": ({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED}, CampaignStatus.CANCELLED),
}


def transition(session: Session, campaign_id: int, action: str, now: datetime) -> Campaign:
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
    campaign.status = target
    if target is CampaignStatus.CANCELLED:
        campaign.completed_at = now
    return campaign


def close_if_done(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Mark a running campaign completed once every contact has a final disposition."""
    if campaign.status is not CampaignStatus.RUNNING:
        return False
    open_contacts = session.scalar(
        select(func.count()).select_from(Contact)
        .where(Contact.campaign_id == campaign.id, Contact.status != ContactStatus.DONE))
    if open_contacts:
        return False
    campaign.status = CampaignStatus.COMPLETED
    campaign.completed_at = now
    return True


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
