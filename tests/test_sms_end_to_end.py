"""End to end through the web form (needs web/survey/form.py, built on another branch):
the SMS simulator's citizens get invitations, open the link, answer through the form
protocol (GET the link, read the hidden ``item`` and the radio values, POST, follow the
303s) or refuse on the stop page; status callbacks are signed; link expiry settles the
rest and the campaign closes by itself.

Runs once the form is merged (the lead runs it after merging H-FORM)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from ivr_service.persistence.models import Campaign, CampaignStatus, Contact, ContactStatus, Interview, OptOut
from ivr_service.providers.simulator import WsgiTransport
from ivr_service.providers.sms_simulator import MessageProfile, SmsSimulatorProvider, WsgiBrowser, items_of
from ivr_service.services import campaigns, messaging
from ivr_service.worker import Worker

from .conftest import count, scalars
from .sms_helpers import sms_campaign


def world(app: Any, **profile: Any) -> tuple[Worker, SmsSimulatorProvider]:
    svc = app.extensions["sipas"]
    provider = SmsSimulatorProvider.from_settings(svc.settings, WsgiTransport(app), WsgiBrowser(app),
                                                  MessageProfile(**profile), item_for=items_of(svc.registry),
                                                  max_workers=2)
    worker = Worker(app, messenger=provider)
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    return worker, provider


def test_citizens_answer_refuse_or_ignore_and_the_campaign_closes(app: Any, make_campaign: Any, clock: Any) -> None:
    worker, provider = world(app, delivery_failure_rate=0, complete_rate=0.5, partial_rate=0.2,
                             refusal_rate=0.1, partial_items=(2, 3), seed=7)
    numbers = [f"091{i:07d}" for i in range(20)]
    campaign_id = sms_campaign(app, make_campaign, numbers, link_days=7, reminder_hours=None)
    assert worker.messages() == 20
    provider.wait_idle()
    assert all(not m.errors for m in provider.messages.values()), [m.errors for m in provider.messages.values()]
    behaviour = {m.request.to: m.behaviour for m in provider.messages.values()}
    assert {"complete", "partial", "refused", "ignored"} <= set(behaviour.values())

    clock.advance(days=7)
    worker.expire_links()
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaigns.close_if_done(session, campaign, clock(), svc.registry)
    worker.close()
    dispositions = {c.phone_e164: c.disposition for c in scalars(app, select(Contact))}
    for phone, kind in behaviour.items():
        expected = {"complete": {"1.1"}, "partial": {"1.2", "2.12"}, "refused": {"2.11"}, "ignored": {"3.13"}}[kind]
        assert dispositions[phone] in expected, (phone, kind, dispositions[phone])
    refused = {p for p, k in behaviour.items() if k == "refused"}
    assert set(scalars(app, select(OptOut.phone_e164))) == refused
    assert {c.status for c in scalars(app, select(Contact))} == {ContactStatus.DONE}
    assert set(scalars(app, select(Interview.channel))) <= {"web"}
    assert count(app, Interview) >= len([k for k in behaviour.values() if k in ("complete", "partial")])
    assert scalars(app, select(Campaign.status).where(Campaign.id == campaign_id)) == [CampaignStatus.COMPLETED]
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 0
