"""The simulated citizens: profile validation and a call driven through the real webhooks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from ivr_service.persistence.models import Answer, Attempt, AttemptStatus, Contact, ContactStatus
from ivr_service.providers.simulator import CitizenProfile, SimulatorProvider, WsgiTransport
from ivr_service.worker import Worker

from .conftest import ROOT


def test_example_profile_loads() -> None:
    profile = CitizenProfile.from_file(ROOT / "config" / "simulator.example.yaml")
    assert profile.think_ms == (300, 2500) and profile.rating_weights[3] == 0.45


@pytest.mark.parametrize("data, message", [
    ({"answer_rate": 1.5}, "answer_rate"),
    ({"answer_rat": 0.5}, "answer_rat"),
    ({"answer_rate": 0.9, "busy_rate": 0.2}, "exceeds 1"),
    ({"rating_weights": [1, 1, 1]}, "rating_weights"),
])
def test_bad_profiles_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CitizenProfile.from_mapping(data)


def test_cooperative_citizens_complete_every_item(app: Any, make_campaign: Any) -> None:
    profile = CitizenProfile(answer_rate=1, busy_rate=0, failed_rate=0, refusal_rate=0, hangup_rate=0,
                             invalid_rate=0, silence_rate=0, repeat_rate=0, no_opinion_rate=0, feedback_rate=1)
    services = app.extensions["sipas"]
    provider = SimulatorProvider.from_settings(services.settings, WsgiTransport(app), profile,
                                              services.registry.get, max_workers=2)
    worker = Worker(app, provider=provider)
    make_campaign(["0912345678", "0987654321", "0352222333"])
    assert worker.dispatch() == 3
    provider.wait_idle()
    worker.close()
    db = app.extensions["sipas"].db
    with db.begin() as session:
        # consent + 13 criteria + screening + 3 factor-V criteria + overall, per person
        assert session.scalar(select(func.count()).select_from(Answer)) == 3 * 19
        assert set(session.scalars(select(Contact.disposition))) == {"1.1"}
        assert set(session.scalars(select(Attempt.outcome))) == {"completed"}
    assert all(not call.errors for call in provider.calls.values())


class FlakyTransport:
    """The app, except that the first key press of every call never gets an answer (a
    timeout or a reset connection, as under heavy load)."""

    def __init__(self, app: Any) -> None:
        self.inner = WsgiTransport(app)
        self.failed: list[str] = []

    def post(self, url: str, params: Any, headers: Any = None) -> tuple[int, str]:
        if "Digits" in params and not any(params["CallSid"] in f for f in self.failed):
            self.failed.append(params["CallSid"] + " " + url)
            raise TimeoutError("timed out")
        return self.inner.post(url, params, headers)


def test_an_unreachable_webhook_ends_the_call_and_reconciliation_settles_it(app: Any, make_campaign: Any,
                                                                          clock: Any) -> None:
    """A call whose webhook times out is over (as Twilio hangs up on an application error):
    the simulator reports it completed, and the attempt does not stay in progress."""
    profile = CitizenProfile(answer_rate=1, busy_rate=0, failed_rate=0, machine_rate=0, refusal_rate=0,
                             hangup_rate=0, invalid_rate=0, silence_rate=0, repeat_rate=0)
    services = app.extensions["sipas"]
    transport = FlakyTransport(app)
    provider = SimulatorProvider.from_settings(services.settings, transport, profile, services.registry.get,
                                              max_workers=2)
    worker = Worker(app, provider=provider)
    make_campaign(["0912345678", "0987654321"])
    assert worker.dispatch() == 2
    provider.wait_idle()
    assert len(transport.failed) == 2
    for call in provider.calls.values():
        assert call.outcome == "completed" and any("TimeoutError" in e for e in call.errors)
        state = provider.fetch_call(call.sid)
        assert state is not None and state.status == "completed"
    with services.db.begin() as session:
        assert set(session.scalars(select(Attempt.status))) == {AttemptStatus.COMPLETED}
        assert session.scalar(select(func.count()).select_from(Answer).where(Answer.item_id != "CONSENT")) == 0
        assert {c.status for c in session.scalars(select(Contact))} != {ContactStatus.ACTIVE}
    worker.close()
