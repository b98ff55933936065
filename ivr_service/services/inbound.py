"""SMS that citizens send us (``POST /sms/inbound``): opt-out keywords, for now.

* **Idempotent.** Each message is stored once, keyed by the provider's id (Twilio's
  MessageSid): a retried webhook finds its row and changes nothing, so it never opts out
  twice nor sends a second confirmation.
* **Refusal first.** A text that is only a refusal word (:mod:`core.optout`, the words of
  ``SIPAS_OPT_OUT_WORDS``) puts the number on the do-not-contact list at once, for every
  campaign and channel; its live SMS links end as refused (2.11) exactly as the link's own
  stop page ends them (:func:`webform.stop`); and one confirmation is queued for the next
  message round (:func:`messaging.queue_confirmation`). Anything else from a number with
  an open two-way session answers it (:mod:`services.twoway`, action ``answer``); the
  rest is stored as ``ignored``.
* **Privacy.** The number and the text are personal data: stored, never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core import optout
from ..core.phones import normalise
from ..core.questionnaire import QuestionnaireRegistry
from ..persistence.db import dialect_insert
from ..persistence.models import Attempt, AttemptStatus, Contact, InboundMessage, SurveyLink
from . import messaging, twoway, webform
from .contacts import opt_out

log = logging.getLogger(__name__)

OPT_OUT = "opt_out"
IGNORED = "ignored"
ANSWER = "answer"               # a reply to an open two-way session (services.twoway)
SOURCE = "sms"
# Unaccented: one GSM-7 segment, readable on every phone.
CONFIRMATION = "Ban da tu choi nhan tin khao sat. Chung toi se khong lien lac lai. Cam on Ong/Ba."


@dataclass(frozen=True)
class Received:
    inbound_id: int
    action: str
    reply_message_id: int | None
    duplicate: bool            # a retried webhook: nothing was done this time


def receive(session: Session, registry: QuestionnaireRegistry, provider: str, provider_id: str, from_raw: str,
            body: str, now: datetime, words: Iterable[str] = optout.DEFAULT_OPT_OUT_WORDS) -> Received:
    """Store one inbound message and act on it (see the module docstring). ``provider``
    is the messaging provider's name: the confirmation goes out through it."""
    table = InboundMessage.__table__
    phone = normalise(from_raw).e164
    refusal = phone is not None and optout.is_refusal(body, words)
    inserted = session.execute(
        dialect_insert(session)(table)
        .values(provider=provider, provider_id=provider_id, phone_e164=phone, body=body, received_at=now,
                action=OPT_OUT if refusal else IGNORED)
        .on_conflict_do_nothing(index_elements=[table.c.provider_id])
        .returning(table.c.id)).scalar()
    if inserted is None:
        existing = session.scalars(select(InboundMessage).where(InboundMessage.provider_id == provider_id)).one()
        log.info("inbound message %s: already received (retried webhook)", existing.id)
        return Received(existing.id, existing.action, existing.reply_message_id, duplicate=True)
    if not refusal:
        link = twoway.open_session(session, phone, now) if phone is not None else None
        if link is None:
            log.info("inbound message %s: not a refusal word; ignored", inserted)
            return Received(inserted, IGNORED, None, duplicate=False)
        answered = twoway.reply(session, registry, link, body, provider, now).id
        session.execute(update(InboundMessage).where(InboundMessage.id == inserted)
                        .values(action=ANSWER, reply_message_id=answered))
        return Received(inserted, ANSWER, answered, duplicate=False)
    assert phone is not None
    opt_out(session, phone, SOURCE, now)
    for code in _live_links(session, phone):
        webform.stop(session, registry, code, now)
    reply = messaging.queue_confirmation(session, phone, CONFIRMATION, provider, now).id
    session.execute(update(InboundMessage).where(InboundMessage.id == inserted).values(reply_message_id=reply))
    log.info("inbound message %s: refusal word; number opted out, confirmation %s", inserted, reply)
    return Received(inserted, OPT_OUT, reply, duplicate=False)


def _live_links(session: Session, phone: str) -> list[str]:
    """The codes of this number's SMS links whose attempt is still running."""
    return list(session.scalars(
        select(SurveyLink.code).join(Attempt, Attempt.id == SurveyLink.attempt_id)
        .join(Contact, Contact.id == SurveyLink.contact_id)
        .where(Contact.phone_e164 == phone, Attempt.channel == messaging.SMS,
               Attempt.status.in_((AttemptStatus.QUEUED, AttemptStatus.IN_PROGRESS)),
               SurveyLink.finished_at.is_(None))
        .order_by(SurveyLink.id)))
