"""Contact lifecycle, for every channel: what happens after an attempt's final outcome
(the next attempt, the next channel of the plan, or a final AAPOR disposition) and the
do-not-contact list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..core import flow
from ..core.dispositions import CODES, OPTED_OUT
from ..core.flow import AnswerStatus, Response
from ..core.phones import normalise
from ..core.policy import FINAL_OUTCOMES, CallingWindow, Outcome, RetryPolicy
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


class Scheduled(Protocol):
    """What a contact's next step needs of its campaign (a :class:`Campaign`, or the
    columns a status callback reads of one)."""

    @property
    def status(self) -> CampaignStatus: ...
    @property
    def retry(self) -> dict[str, Any]: ...
    @property
    def channel_plan(self) -> list[dict[str, Any]]: ...
    @property
    def ends_at(self) -> datetime | None: ...
    def calling_window(self) -> CallingWindow: ...


class Answered(Protocol):
    """An answer as stored (an :class:`Answer`, or a row of one)."""

    @property
    def item_id(self) -> str: ...
    @property
    def value(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def digits(self) -> str: ...


class Interviewed(Protocol):
    """What a contact's next step needs of its interview (an :class:`Interview`, or its row)."""

    @property
    def status(self) -> InterviewStatus: ...
    @property
    def channel(self) -> str: ...
    @property
    def answers(self) -> Sequence[Answered]: ...


@dataclass(frozen=True)
class Step:
    """A contact's next step: the columns to write on it, and on its interview when one
    in progress ends with it (``interview_status``, ended now)."""

    status: ContactStatus
    next_attempt_at: datetime | None
    channel: str
    channel_attempts: int
    disposition: str | None
    interview_status: InterviewStatus | None = None

    def columns(self) -> dict[str, Any]:
        """The contact's columns to write (its disposition only when one is given)."""
        written: dict[str, Any] = {"status": self.status, "next_attempt_at": self.next_attempt_at,
                                   "channel": self.channel, "channel_attempts": self.channel_attempts}
        if self.disposition is not None:
            written["disposition"] = self.disposition
        return written


def finished(interview: Interviewed | None, channel: str, channel_attempts: int, outcome: Outcome | None,
             code: str | None = None) -> Step:
    """The final AAPOR disposition: the contact is never attempted again. A dropped
    interview with no attempts left becomes partial or break-off by its answers."""
    ending = None
    if interview is not None and interview.status is InterviewStatus.IN_PROGRESS:
        ending = _INTERVIEW_STATUS.get(outcome, InterviewStatus.BREAK_OFF)
    return Step(ContactStatus.DONE, None, channel, channel_attempts, code or CODES[outcome], ending)


def finished_with_answers(q: Questionnaire, interview: Interviewed | None, channel: str, channel_attempts: int,
                          outcome: Outcome | None) -> Step:
    """:func:`finished`; earlier answers make a non-final outcome a partial or break-off."""
    if outcome not in FINAL_OUTCOMES and interview is not None and interview.answers:
        responses = {a.item_id: Response(a.value, AnswerStatus(a.status), a.digits)
                     for a in interview.answers if q.has_item(a.item_id) and q.item(a.item_id).kind != "consent"}
        if responses:
            outcome = (Outcome.PARTIAL if flow.disposition(q, responses, interview.channel) is flow.Disposition.PARTIAL
                       else Outcome.BREAK_OFF)
    return finished(interview, channel, channel_attempts, outcome)


def next_step(q: Questionnaire, campaign: Scheduled, interview: Interviewed | None, channel: str,
              channel_attempts: int, outcome: Outcome, now: datetime,
              previous_start: datetime | None = None) -> Step:
    """After an attempt's final outcome: the next attempt, the next step of the channel
    plan, or the end.

    A contact who answered part of the questionnaire on an earlier call and is not reached
    again ends as a partial or break-off by those answers, not as "no answer".
    """
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        return finished_with_answers(q, interview, channel, channel_attempts, outcome)
    window = campaign.calling_window()
    policy = RetryPolicy.from_dict(campaign.retry or {})
    plan = channel_plan(campaign, policy)
    step = next((i for i, s in enumerate(plan) if s["channel"] == channel), 0)
    policy = replace(policy, max_attempts=int(plan[step]["max_attempts"]))
    retry_at = policy.next_attempt(outcome, channel_attempts, now, window, previous_start=previous_start)
    if retry_at is not None and (campaign.ends_at is None or retry_at < campaign.ends_at):
        return Step(ContactStatus.PENDING, retry_at, channel, channel_attempts, None)
    if outcome not in FINAL_OUTCOMES and step + 1 < len(plan):
        # Next channel of the plan (e.g. an SMS invitation after the calls).
        next_at = window.next_open(now)
        if next_at is not None and (campaign.ends_at is None or next_at < campaign.ends_at):
            return Step(ContactStatus.PENDING, next_at, plan[step + 1]["channel"], 0, None)
    return finished_with_answers(q, interview, channel, channel_attempts, outcome)


def _apply(contact: Contact, step: Step, now: datetime) -> None:
    for column, value in step.columns().items():
        setattr(contact, column, value)
    if step.interview_status is not None and contact.interview is not None:
        contact.interview.status = step.interview_status
        contact.interview.ended_at = now


def finish_contact(session: Session, contact: Contact, outcome: Outcome | None, now: datetime,
                   code: str | None = None) -> None:
    """Give a contact its final AAPOR disposition (:func:`finished`)."""
    _apply(contact, finished(contact.interview, contact.channel, contact.channel_attempts, outcome, code), now)


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
    """After an attempt's final outcome: :func:`next_step`, applied to the contact."""
    _apply(contact, next_step(q, campaign, contact.interview, contact.channel, contact.channel_attempts, outcome,
                              now, previous_start), now)


def channel_plan(campaign: Scheduled, policy: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """The campaign's channel plan; by default voice only, up to the policy's attempts."""
    if campaign.channel_plan:
        return list(campaign.channel_plan)
    policy = policy or RetryPolicy.from_dict(campaign.retry or {})
    return [{"channel": "voice", "max_attempts": policy.max_attempts}]


def finish_with_answers(session: Session, q: Questionnaire, contact: Contact, outcome: Outcome | None,
                        now: datetime) -> None:
    """Finish a contact (:func:`finished_with_answers`)."""
    _apply(contact, finished_with_answers(q, contact.interview, contact.channel, contact.channel_attempts, outcome),
           now)


def phone_number(raw: str) -> str:
    """The E.164 form of a number an operator typed, or InvalidInput naming the field."""
    phone = normalise(raw)
    if phone.e164 is None:
        raise invalid("phone", phone.reason or "not a phone number")
    return phone.e164

