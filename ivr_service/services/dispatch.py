"""Dispatch due contacts: claim, write the attempt, commit, then ask the provider.

The attempt row is committed before the provider is called, so a crash between the two
leaves a QUEUED attempt (never a call without a row). On PostgreSQL several workers claim
disjoint contacts with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select

from ..core.policy import CallingWindow, Outcome
from ..core.questionnaire import QuestionnaireRegistry
from ..persistence.db import Database
from ..persistence.models import (Attempt, AttemptStatus, Campaign, CampaignStatus, Contact, ContactStatus,
                                  OptOut)
from ..providers import CallRequest, ProviderError, VoiceProvider
from .campaigns import close_if_done
from .contacts import finish_contact
from .voice import settle_contact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    attempt_id: int
    token: str
    to: str
    questionnaire: str


def claim_due(db: Database, provider_name: str, now: datetime, batch: int, interval_s: float) -> list[Claimed]:
    """Turn due contacts of running campaigns into committed QUEUED attempts."""
    claimed: list[Claimed] = []
    with db.begin() as session:
        campaigns = session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)).all()
        for campaign in campaigns:
            window = CallingWindow.from_dict(campaign.window or {"timezone": campaign.timezone})
            if not window.is_open(now):
                continue
            limit = min(batch, max(1, int(campaign.calls_per_second * interval_s)))
            contacts = session.scalars(
                select(Contact)
                .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.PENDING,
                       Contact.next_attempt_at <= now)
                .order_by(Contact.next_attempt_at, Contact.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for contact in contacts:
                if session.scalar(select(exists().where(OptOut.phone_e164 == contact.phone_e164))):
                    finish_contact(session, contact, Outcome.REFUSED, now)
                    continue
                contact.status = ContactStatus.ACTIVE
                contact.attempt_count += 1
                attempt = Attempt(contact_id=contact.id, campaign_id=campaign.id, channel="voice",
                                  number=contact.attempt_count, provider=provider_name, created_at=now)
                session.add(attempt)
                session.flush()
                claimed.append(Claimed(attempt.id, attempt.token, contact.phone_e164, campaign.questionnaire_key))
    return claimed


def place(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider, claimed: Claimed,
          url_for: Callable[[str, str], str], now: Callable[[], datetime]) -> None:
    """Ask the provider for one call and record the result on the attempt."""
    request = CallRequest(to=claimed.to, from_=None, answer_url=url_for("answer", claimed.token) + f"?q={claimed.questionnaire}",
                          status_url=url_for("status", claimed.token), idempotency_key=claimed.token)
    try:
        placed = provider.place_call(request)
    except ProviderError as exc:
        _refused(db, registry, claimed, exc, now)
        return
    with db.begin() as session:
        attempt = session.get(Attempt, claimed.attempt_id, with_for_update=True)
        assert attempt is not None
        if attempt.provider_id is None:
            attempt.provider_id = placed.provider_id
        if attempt.status is AttemptStatus.QUEUED:
            attempt.status = AttemptStatus.INITIATED


def _refused(db: Database, registry: QuestionnaireRegistry, claimed: Claimed, exc: ProviderError,
             now: Callable[[], datetime]) -> None:
    """Record a provider error on the attempt and settle the contact by its kind."""
    if exc.kind == "configuration":
        log.error("attempt %s: provider configuration error %s: %s", claimed.attempt_id, exc.code, exc)
    else:
        log.warning("attempt %s: provider refused the call (%s, %s): %s", claimed.attempt_id, exc.kind,
                    exc.code, exc)
    with db.begin() as session:
        attempt = session.get(Attempt, claimed.attempt_id, with_for_update=True)
        assert attempt is not None
        if attempt.status is not AttemptStatus.QUEUED:
            return  # a webhook got there first: the call exists
        attempt.error_code = exc.code
        attempt.error_message = str(exc)[:500]
        if exc.kind == "unknown":
            return  # the call may exist: reconciliation asks the provider, never places it again
        attempt.status = AttemptStatus.FAILED
        attempt.ended_at = now()
        outcome = Outcome.INVALID_NUMBER if exc.kind == "permanent" else Outcome.FAILED
        attempt.outcome = outcome.value
        campaign = attempt.campaign
        settle_contact(session, registry.get(campaign.questionnaire_key), attempt.contact, campaign,
                       outcome, now())


def dispatch_once(db: Database, registry: QuestionnaireRegistry, provider: VoiceProvider,
                  url_for: Callable[[str, str], str], now: Callable[[], datetime], batch: int = 50,
                  interval_s: float = 1.0) -> int:
    """One dispatch round; returns how many calls were placed."""
    claimed = claim_due(db, provider.name, now(), batch, interval_s)
    for item in claimed:
        place(db, registry, provider, item, url_for, now)
    return len(claimed)


def close_finished(db: Database, now: datetime) -> list[int]:
    """Complete running campaigns whose contacts all have a final disposition."""
    closed = []
    with db.begin() as session:
        for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)
                                        .with_for_update(skip_locked=True)):
            if close_if_done(session, campaign, now):
                closed.append(campaign.id)
    return closed
