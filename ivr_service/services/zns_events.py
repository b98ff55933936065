"""ZNS delivery events (Zalo's OA webhook), applied to our messages.

An event names our message by ``tracking_id`` (the message token we sent) and/or by
``msg_id`` (Zalo's id, our ``provider_id``). Delivery events go through
:func:`messaging.apply_status`, so they are idempotent and never move a message backwards;
events that are not about our ZNS messages (a user's chat message, a follow, a template
review) and events for messages we do not know are acknowledged and ignored, so Zalo does
not retry them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..core.delivery import ZNS_EVENTS
from ..core.questionnaire import QuestionnaireRegistry
from ..persistence.models import Message
from . import messaging
from .errors import invalid

log = logging.getLogger(__name__)


def apply_event(session: Session, registry: QuestionnaireRegistry, event: dict[str, Any],
                now: datetime) -> Message | None:
    """Apply one event; returns the message it concerned (None: ignored)."""
    name = event.get("event_name")
    if not isinstance(name, str):
        raise invalid("event_name", "expected the event's name")
    if name not in ZNS_EVENTS or name in ("sent", "failed"):   # delivery events only
        log.info("ZNS event %s ignored: not a delivery event", name[:40])
        return None
    details = event.get("message")
    if not isinstance(details, dict):
        raise invalid("message", "expected an object with msg_id and tracking_id")
    msg_id, tracking_id = details.get("msg_id"), details.get("tracking_id")
    msg_id = msg_id if isinstance(msg_id, str) and msg_id else None
    tracking_id = tracking_id if isinstance(tracking_id, str) and tracking_id else None
    if msg_id is None and tracking_id is None:
        raise invalid("message.msg_id", "expected msg_id or tracking_id")
    keys = []
    if tracking_id is not None:
        keys.append(Message.token == tracking_id[:40])
    if msg_id is not None:
        keys.append(Message.provider_id == msg_id[:64])
    token = session.scalar(select(Message.token).where(or_(*keys), Message.provider == "zns")
                           .order_by(Message.id).limit(1))
    if token is None:
        log.info("ZNS event %s for an unknown message ignored", name)
        return None
    # core.delivery's ZNS table reads the event name, like every provider's status.
    return messaging.apply_status(session, registry, token, msg_id, name, None, now)
