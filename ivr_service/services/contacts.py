"""Contact lifecycle: final dispositions and the do-not-contact list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core.dispositions import CODES, OPTED_OUT
from ..core.policy import Outcome
from ..persistence.models import Contact, ContactStatus, InterviewStatus, OptOut

_INTERVIEW_STATUS = {
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
        interview.status = _INTERVIEW_STATUS.get(outcome, InterviewStatus.BREAK_OFF)  # type: ignore[arg-type]
        interview.ended_at = now


def opt_out(session: Session, phone_e164: str, source: str, now: datetime,
            campaign_id: int | None = None) -> None:
    """Add a number to the do-not-contact list and stop every pending contact for it."""
    exists = session.scalar(select(OptOut.id).where(OptOut.phone_e164 == phone_e164))
    if exists is None:
        session.add(OptOut(phone_e164=phone_e164, source=source, campaign_id=campaign_id, created_at=now))
    session.execute(
        update(Contact)
        .where(Contact.phone_e164 == phone_e164, Contact.status == ContactStatus.PENDING)
        .values(status=ContactStatus.DONE, next_attempt_at=None, disposition=OPTED_OUT)
    )
