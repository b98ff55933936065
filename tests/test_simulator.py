"""The simulated citizens: profile validation and a call driven through the real webhooks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from ivr_service.persistence.models import Answer, Attempt, Contact
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
