"""Messages whose delivery report is overdue: asked of the provider, as calls are.

A message the provider took (accepted or sent) normally gets its final status by callback
within minutes. One that has heard nothing for :data:`RECEIPT_OVERDUE` — the callback was
lost while the web processes were down, or never sent — is asked of the provider that sent
it (``fetch_message``: Twilio and the simulator; eSMS and ZNS report by callback only and
are left to it). What the provider says is applied exactly as its callback would be
(``messaging.apply_status``: idempotent, never backwards). A message the provider has no
record of will never arrive: it is closed as failed, which ends its invitation's attempt
and lets the retry policy decide. A message still under way is asked again only after
another :data:`RECEIPT_OVERDUE` (its ``updated_at`` is when its state was last known).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..core.questionnaire import QuestionnaireRegistry
from ..persistence.db import Database
from ..persistence.models import Message, MessageStatus
from ..providers import Messengers, ProviderError
from ..providers.messaging import MessageLookup, MessagingProvider
from . import messaging
from .errors import ServiceError

log = logging.getLogger(__name__)

RECEIPT_OVERDUE = timedelta(minutes=30)   # delivery reports normally come within a few minutes
UNDER_WAY = frozenset({"accepted", "queued", "sending", "sent", "scheduled"})


def reconcile_stale(db: Database, registry: QuestionnaireRegistry, provider: MessagingProvider | Messengers,
                    now: datetime, overdue: timedelta = RECEIPT_OVERDUE, limit: int = 100) -> int:
    """Ask about up to ``limit`` messages overdue at ``now``; returns how many were settled."""
    with db.begin() as session:
        stale = session.execute(
            select(Message.id, Message.token, Message.provider_id, Message.account_id)
            .where(Message.status.in_([MessageStatus.ACCEPTED, MessageStatus.SENT]),
                   Message.provider_id.is_not(None), Message.updated_at < now - overdue)
            .order_by(Message.updated_at).limit(limit)).all()
    settled = 0
    for message_id, token, provider_id, account_id in stale:
        assert provider_id is not None   # selected so
        try:
            adapter = provider.for_account(account_id) if isinstance(provider, Messengers) else provider
        except ProviderError as exc:     # a deactivated account: nobody to ask
            log.warning("message %s: cannot ask its provider (%s)", message_id, exc)
            continue
        if not isinstance(adapter, MessageLookup):
            continue
        try:
            state = adapter.fetch_message(provider_id)
        except ProviderError as exc:
            log.warning("message %s: could not ask the provider (%s)", message_id, exc.code)
            continue
        try:
            with db.begin() as session:
                if state is not None and state.status.lower() in UNDER_WAY:
                    session.execute(update(Message).where(Message.id == message_id).values(updated_at=now))
                    continue
                status, code = ("failed", None) if state is None else (state.status, state.error_code)
                messaging.apply_status(session, registry, token, provider_id, status, code, now)
        except ServiceError as exc:
            log.warning("message %s: the provider reports %s", message_id, exc)
            continue
        log.info("message %s: reconciled as %s", message_id, status if state else "lost (unknown to the provider)")
        settled += 1
    return settled
