"""Contact lifecycle, for every channel: what happens after an attempt's final outcome
(the next attempt, the next channel of the plan, or a final AAPOR disposition) and the
do-not-contact list."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..core import flow
from ..core.dispositions import CODES, OPTED_OUT
from ..core.flow import AnswerStatus, Response
from ..core.phones import normalise
from ..core.policy import FINAL_OUTCOMES, Outcome, RetryPolicy
from ..core.questionnaire import Questionnaire
from ..persistence.models import Campaign, CampaignStatus, Contact, ContactStatus, InterviewStatus, OptOut
from . import phone_match
from .errors import invalid

# Keyed by Outcome | None: a contact closed before any attempt has no outcome.
_INTERVIEW_STATUS: dict[Outcome | None, InterviewStatus] = {
    Outcome.COMPLETED: InterviewStatus.COMPLETE,
    Outcome.PARTIAL: InterviewStatus.PARTIAL,
    Outcome.BREAK_OFF: InterviewStatus.BREAK_OFF,
    Outcome.REFUSED: InterviewStatus.REFUSED,
}


def finish_contact(session: Session, contact: Contact, outcome: Outcome | None, now: datetime,
                   code: str | None = None) -> None:
    """Give a contact its final AAPOR disposition; it is never attempted again."""
    contact.status = ContactStatus.DONE
    contact.next_attempt_at = None
    contact.disposition = code or CODES[outcome]
    interview = contact.interview
    if interview is not None and interview.status is InterviewStatus.IN_PROGRESS:
        # A dropped interview with no attempts left: partial or break-off by its answers.
        interview.status = _INTERVIEW_STATUS.get(outcome, InterviewStatus.BREAK_OFF)
        interview.ended_at = now


def opt_out(session: Session, phone_e164: str, source: str, now: datetime,
            campaign_id: int | None = None) -> None:
    """Add a number to the do-not-contact list and stop every pending contact for it."""
    if not phone_match.is_opted_out(session, phone_e164):
        session.add(OptOut(phone_e164=phone_e164, source=source, campaign_id=campaign_id, created_at=now))
    session.execute(
        update(Contact)
        .where(Contact.phone_e164 == phone_e164, Contact.status == ContactStatus.PENDING)
        .values(status=ContactStatus.DONE, next_attempt_at=None, disposition=OPTED_OUT)
    )


def settle_contact(session: Session, q: Questionnaire, contact: Contact, campaign: Campaign,
                   outcome: Outcome, now: datetime, previous_start: datetime | None = None) -> None:
    """After an attempt's final outcome: schedule the next attempt, move the contact to the
    next step of the channel plan, or finish it.

    A contact who answered part of the questionnaire on an earlier call and is not reached
    again ends as a partial or break-off by those answers, not as "no answer".
    """
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        finish_with_answers(session, q, contact, outcome, now)
        return
    window = campaign.calling_window()
    policy = RetryPolicy.from_dict(campaign.retry or {})
    plan = channel_plan(campaign, policy)
    step = next((i for i, s in enumerate(plan) if s["channel"] == contact.channel), 0)
    policy = replace(policy, max_attempts=int(plan[step]["max_attempts"]))
    retry_at = policy.next_attempt(outcome, contact.channel_attempts, now, window, previous_start=previous_start)
    if retry_at is not None and (campaign.ends_at is None or retry_at < campaign.ends_at):
        contact.status = ContactStatus.PENDING
        contact.next_attempt_at = retry_at
        return
    if outcome not in FINAL_OUTCOMES and step + 1 < len(plan):
        # Next channel of the plan (e.g. an SMS invitation after the calls).
        next_at = window.next_open(now)
        if next_at is not None and (campaign.ends_at is None or next_at < campaign.ends_at):
            contact.channel = plan[step + 1]["channel"]
            contact.channel_attempts = 0
            contact.status = ContactStatus.PENDING
            contact.next_attempt_at = next_at
            return
    finish_with_answers(session, q, contact, outcome, now)


def channel_plan(campaign: Campaign, policy: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """The campaign's channel plan; by default voice only, up to the policy's attempts."""
    if campaign.channel_plan:
        return list(campaign.channel_plan)
    policy = policy or RetryPolicy.from_dict(campaign.retry or {})
    return [{"channel": "voice", "max_attempts": policy.max_attempts}]


def finish_with_answers(session: Session, q: Questionnaire, contact: Contact, outcome: Outcome | None,
                        now: datetime) -> None:
    """Finish a contact; earlier answers make a non-final outcome a partial or break-off."""
    interview = contact.interview
    if outcome not in FINAL_OUTCOMES and interview is not None and interview.answers:
        responses = {a.item_id: Response(a.value, AnswerStatus(a.status), a.digits)
                     for a in interview.answers if q.has_item(a.item_id) and q.item(a.item_id).kind != "consent"}
        if responses:
            outcome = (Outcome.PARTIAL if flow.disposition(q, responses, interview.channel) is flow.Disposition.PARTIAL
                       else Outcome.BREAK_OFF)
    finish_contact(session, contact, outcome, now)


def phone_number(raw: str) -> str:
    """The E.164 form of a number an operator typed, or InvalidInput naming the field."""
    phone = normalise(raw)
    if phone.e164 is None:
        raise invalid("phone", phone.reason or "not a phone number")
    return phone.e164

