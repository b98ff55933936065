"""The simulated message recipients: profile validation, the form reader, and delivery
status callbacks driven through the app's real (signed) SMS webhook."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from ivr_service.persistence.models import Attempt, AttemptStatus, Contact, ContactStatus, Message, MessageStatus
from ivr_service.providers.simulator import CitizenProfile, WsgiTransport
from ivr_service.providers.sms_simulator import MessageProfile, SmsSimulatorProvider, WsgiBrowser, read_form
from ivr_service.worker import Worker

from .conftest import scalars
from .sms_helpers import sms_campaign


@pytest.mark.parametrize("data, message", [
    ({"complete_rate": 1.5}, "complete_rate"),
    ({"complete_rat": 0.5}, "complete_rat"),
    ({"complete_rate": 0.8, "partial_rate": 0.3}, "exceeds 1"),
    ({"partial_items": [3, 1]}, "partial_items"),
    ({"rating_weights": [1, 1]}, "rating_weights"),
])
def test_bad_profiles_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MessageProfile.from_mapping(data)


def test_the_sms_section_of_the_simulator_file(tmp_path: Any) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("answer_rate: 0.5\nsms:\n  complete_rate: 0.8\n  partial_items: [2, 3]\n")
    assert MessageProfile.from_file(path).complete_rate == 0.8
    assert MessageProfile.from_file(path).partial_items == (2, 3)
    assert CitizenProfile.from_file(path).answer_rate == 0.5


def test_the_form_reader_finds_item_answers_and_hidden_fields() -> None:
    html = """<main><form method="get" action="/x"><input name="q"></form>
      <form method="post" action="/s/ACDEFGHJK"><input type="hidden" name="item" value="C1">
      <input type="hidden" name="lang" value="vi"><label><input type="radio" name="answer" value="1"> 1</label>
      <input type="radio" name="answer" value="5"><input type="radio" name="answer" value="0">
      <button type="submit" name="go" value="next">Tiếp</button></form></main>"""
    form = read_form(html)
    assert form is not None and form.action == "/s/ACDEFGHJK"
    assert form.hidden == {"item": "C1", "lang": "vi"} and form.answers == ["1", "5", "0"]
    assert form.submits == [("go", "next")]
    assert read_form("<p>Cảm ơn</p>") is None


def simulator(app: Any, **profile: Any) -> SmsSimulatorProvider:
    svc = app.extensions["sipas"]
    return SmsSimulatorProvider.from_settings(svc.settings, WsgiTransport(app), WsgiBrowser(app),
                                              MessageProfile(**profile), max_workers=2)


def fast(worker: Worker) -> Worker:
    """SIPAS_MESSAGES_PER_SECOND is 1 by default: one round sends every due message here."""
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    return worker


def test_delivery_failures_reach_the_app_as_signed_callbacks(app: Any, make_campaign: Any) -> None:
    provider = simulator(app, delivery_failure_rate=1, undelivered_share=0.5)
    worker = fast(Worker(app, messenger=provider))
    numbers = [f"091{i:07d}" for i in range(12)]
    sms_campaign(app, make_campaign, numbers)
    assert worker.messages() == 12
    provider.wait_idle()
    worker.close()
    assert all(not m.errors for m in provider.messages.values())
    kinds = {m.delivery for m in provider.messages.values()}
    assert kinds == {"undelivered", "failed"}
    by_token = {m.token: m for m in scalars(app, select(Message))}
    outcomes = {}
    for simulated in provider.messages.values():
        stored = by_token[simulated.request.idempotency_key]
        assert stored.provider_id == simulated.sid
        assert stored.status.value == simulated.delivery
        assert stored.error_code == ("30003" if simulated.delivery == "undelivered" else "30006")
        outcomes[simulated.delivery] = stored.attempt_id
    attempts = {a.id: a for a in scalars(app, select(Attempt))}
    assert attempts[outcomes["undelivered"]].outcome == "failed"
    assert attempts[outcomes["failed"]].outcome == "invalid_number"
    assert {a.status for a in attempts.values()} == {AttemptStatus.FAILED}
    assert {c.status for c in scalars(app, select(Contact))} == {ContactStatus.DONE}


def test_citizens_who_ignore_the_message_leave_the_link_live(app: Any, make_campaign: Any) -> None:
    provider = simulator(app, delivery_failure_rate=0, complete_rate=0, partial_rate=0, refusal_rate=0)
    worker = fast(Worker(app, messenger=provider))
    sms_campaign(app, make_campaign, ["0912345678", "0987654321"])
    assert worker.messages() == 2
    provider.wait_idle()
    assert worker.messages() == 0
    worker.close()
    assert {m.behaviour for m in provider.messages.values()} == {"ignored"}
    assert {m.status for m in scalars(app, select(Message))} == {MessageStatus.DELIVERED}
    assert {a.status for a in scalars(app, select(Attempt))} == {AttemptStatus.IN_PROGRESS}
    assert len(provider.requests) == 2


def test_the_worker_builds_the_simulator_by_the_factory(app: Any) -> None:
    worker = Worker(app)
    assert isinstance(worker.messenger, SmsSimulatorProvider)
    assert worker.message_pacing.bucket == "sender:sms:simulator"
    worker.close()
