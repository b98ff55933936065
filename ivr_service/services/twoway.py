"""Two-way SMS survey sessions: a citizen's replies answer the questions we text.

A campaign (or programme) whose channel plan's sms step says ``"mode": "two_way"`` invites
with the first questions instead of a link (:mod:`services.messaging`); the rest is here.

* **The session is the SMS attempt's link, never sent.** Its ``expires_at`` is the end of
  the session (``session_hours`` after the invitation), so link expiry
  (:func:`messaging.expire_links`) ends an unfinished session exactly as an unused link:
  answers kept, the contact settled as partial or break-off by ``flow.disposition``. A
  refusal word (:mod:`services.inbound`, checked before anything here) ends it as the
  stop page ends a link.
* **Answers are the web form's.** Each key goes through :func:`core.twoway.apply_reply`
  (``flow.step``) and is stored by :func:`webform.record`: one Answer per item in the
  contact's Interview, the last one finishing the session and settling the contact through
  ``contacts.settle_contact``. The invalid-reply counter lives on ``Interview.retries``.
* **Replies are messages like any other** (:func:`messaging.queue_reply`): the next
  questions (kind "question") or the thank-you (kind "thanks"), sent by the next message
  round when the window is open and the number under the 24 h cap, later otherwise.
* **Idempotent.** The caller stores the inbound message first, keyed by its MessageSid; a
  retried webhook never reaches this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import twoway
from ..core.flow import Response
from ..core.messages import unaccent
from ..core.questionnaire import Item, Questionnaire, QuestionnaireRegistry
from ..persistence.models import Attempt, AttemptStatus, Campaign, Contact, Interview, Message, SurveyLink
from . import messaging, webform

log = logging.getLogger(__name__)


def open_session(session: Session, phone: str, now: datetime) -> SurveyLink | None:
    """The number's live two-way session (the newest), locked; None if it has none."""
    links = session.scalars(
        select(SurveyLink).join(Attempt, Attempt.id == SurveyLink.attempt_id)
        .join(Contact, Contact.id == SurveyLink.contact_id)
        .where(Contact.phone_e164 == phone, Attempt.channel == messaging.SMS,
               Attempt.status.in_((AttemptStatus.QUEUED, AttemptStatus.IN_PROGRESS)),
               SurveyLink.finished_at.is_(None), SurveyLink.expires_at > now)
        .order_by(SurveyLink.created_at.desc(), SurveyLink.id.desc())).all()
    for link in links:
        campaign = session.get(Campaign, link.campaign_id)
        if campaign is not None and twoway.sms_mode(campaign.channel_plan).two_way:
            return session.scalars(select(SurveyLink).where(SurveyLink.id == link.id).with_for_update()).one()
    return None


def reply(session: Session, registry: QuestionnaireRegistry, link: SurveyLink, body: str, provider: str,
          now: datetime) -> Message:
    """Apply one reply to the session ``link`` and queue what we answer: the item asked
    again (invalid reply), the next questions, or the thank-you."""
    attempt = session.get(Attempt, link.attempt_id)
    assert attempt is not None
    campaign, contact = attempt.campaign, attempt.contact
    q = registry.get(campaign.questionnaire_key)
    interview = contact.interview
    responses = messaging.web_responses(q, interview)
    retries = interview.retries if interview is not None else 0
    repeats = interview.repeats if interview is not None else 0
    result = twoway.apply_reply(q, responses, retries, repeats, body)
    for item, response in result.recorded:
        webform.record(session, registry, link.code, item.id, _given(response), now)
    session.flush()
    interview = contact.interview
    if interview is None and (result.retries or result.repeats):
        # An invalid first reply: the interview that keeps the counter starts now.
        interview = Interview(contact_id=contact.id, campaign_id=campaign.id, channel=webform.CHANNEL,
                              questionnaire_key=campaign.questionnaire_key, started_at=now)
        session.add(interview)
        contact.interview = interview
    if interview is not None:
        interview.retries, interview.repeats = result.retries, result.repeats
    if result.finished:
        text = unaccent(q.messages["thanks"].get(campaign.language))
        kind = messaging.THANKS
    else:
        responses = messaging.web_responses(q, interview)
        prefix = unaccent(q.messages["invalid"].get(campaign.language)) if result.reasked else ""
        text = twoway.question_text(q, responses, campaign.language, prefix=prefix)
        kind = messaging.QUESTION
    # The session answers through the provider and account its invitation went through.
    invitation = session.scalars(select(Message).where(Message.attempt_id == attempt.id, Message.kind == "invitation")
                                 .order_by(Message.id.desc()).limit(1)).first()
    if invitation is not None:
        provider = invitation.provider
    message = messaging.queue_reply(session, campaign, attempt.id, contact.phone_e164, kind, text, provider, now,
                                    account_id=invitation.account_id if invitation is not None else None)
    log.info("two-way session %s: %d answer(s) recorded, %s queued", link.id, len(result.recorded), kind)
    return message


def _given(response: Response) -> Callable[[Questionnaire, Item], Response]:
    return lambda _q, _item: response
