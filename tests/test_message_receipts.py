"""Messages whose delivery report never came back (the web processes were down, the
callback was lost) are asked of the provider once overdue, and settled as it says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from ivr_service.persistence.models import Attempt, AttemptStatus, Message, MessageStatus
from ivr_service.providers.simulator import WsgiTransport
from ivr_service.providers.sms_simulator import MessageProfile, SmsSimulatorProvider, WsgiBrowser, items_of
from ivr_service.services import message_receipts
from ivr_service.worker import Worker

from .conftest import scalars
from .sms_helpers import sms_campaign


class LostCallbacks:
    """The network as seen from the app: every delivery-status callback is lost."""

    def __init__(self, app: Any) -> None:
        self.inner = WsgiTransport(app)
        self.lost = 0

    def post(self, url: str, params: Any, headers: Any = None) -> tuple[int, str]:
        if url.endswith("/status"):
            self.lost += 1
            return 503, "unreachable"
        return self.inner.post(url, params, headers)


def world(app: Any) -> tuple[Worker, SmsSimulatorProvider, LostCallbacks]:
    svc = app.extensions["sipas"]
    transport = LostCallbacks(app)
    provider = SmsSimulatorProvider.from_settings(
        svc.settings, transport, WsgiBrowser(app),
        MessageProfile(delivery_failure_rate=0.4, undelivered_share=0.5, complete_rate=0, partial_rate=0,
                       refusal_rate=0, seed=11),
        item_for=items_of(svc.registry), max_workers=2)
    worker = Worker(app, messenger=provider)
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    return worker, provider, transport


def statuses(app: Any) -> dict[str, MessageStatus]:
    return {m.provider_id: m.status for m in scalars(app, select(Message)) if m.provider_id}


def test_overdue_messages_are_asked_and_settled_as_the_provider_says(app: Any, make_campaign: Any,
                                                                     clock: Any) -> None:
    worker, provider, transport = world(app)
    sms_campaign(app, make_campaign, [f"091{i:07d}" for i in range(12)], link_days=7, reminder_hours=None)
    assert worker.messages() == 12
    provider.wait_idle()
    assert transport.lost >= 12 * 2                         # queued/sent/final: none arrived
    assert set(statuses(app).values()) == {MessageStatus.ACCEPTED}

    assert worker.reconcile() == 0                          # not overdue yet: nobody is asked
    still = next(iter(provider.messages.values()))
    still.delivery = "pending"                              # this one is still on its way
    clock.advance(minutes=31)
    assert worker.reconcile() == 11
    found = statuses(app)
    for sid, message in provider.messages.items():
        expected = {"delivered": MessageStatus.DELIVERED, "undelivered": MessageStatus.UNDELIVERED,
                    "failed": MessageStatus.FAILED, "pending": MessageStatus.ACCEPTED}[message.delivery]
        assert found[sid] == expected, (sid, message.delivery)
    assert {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED} <= set(found.values())
    failed_attempts = {a.id for a in scalars(app, select(Attempt).where(Attempt.status == AttemptStatus.FAILED))}
    assert len(failed_attempts) == sum(1 for m in provider.messages.values()
                                       if m.delivery in ("undelivered", "failed"))
    # The one still under way is asked again only after another overdue period.
    assert worker.reconcile() == 0
    still.delivery = "delivered"
    clock.advance(minutes=31)
    assert worker.reconcile() == 1 and statuses(app)[still.sid] == MessageStatus.DELIVERED
    worker.close()


def test_a_message_the_provider_never_heard_of_fails_and_its_attempt_ends(app: Any, make_campaign: Any,
                                                                          clock: Any) -> None:
    worker, provider, _transport = world(app)
    sms_campaign(app, make_campaign, ["0912345678"], link_days=7, reminder_hours=None)
    assert worker.messages() == 1
    provider.wait_idle()
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        session.execute(update(Message).values(provider_id="SM" + "0" * 32))   # an id the provider never issued
    clock.advance(minutes=31)
    assert message_receipts.reconcile_stale(svc.db, svc.registry, provider, clock()) == 1
    [message] = scalars(app, select(Message))
    assert message.status is MessageStatus.FAILED
    [attempt] = scalars(app, select(Attempt))
    assert attempt.status is AttemptStatus.FAILED
    assert message_receipts.reconcile_stale(svc.db, svc.registry, provider, clock() + timedelta(hours=1)) == 0
    worker.close()
