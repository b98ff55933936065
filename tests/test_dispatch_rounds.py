"""A dispatch round as a worker runs it: claimed in a few statements, and the calls placed
recorded a few at a time: many in one statement from a fast provider, each at once from a
slow one, always before a lease could run out, and even when the round fails midway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ivr_service.persistence import tallies
from ivr_service.persistence.models import Attempt, AttemptStatus, Contact, ContactStatus
from ivr_service.providers import CallPlaced, CallRequest
from ivr_service.services import dispatch
from ivr_service.services.dispatch import Pacing

from .conftest import fetch, new_sid, phones

ALWAYS = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None}
PACING = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))


def dispatch_round(app: Any, provider: Any, batch: int = 500) -> int:
    svc = app.extensions["sipas"]
    return dispatch.dispatch_once(svc.db, svc.registry, provider, lambda kind, token: f"http://sipas.test/{token}/{kind}",
                                  svc.clock, PACING, batch=batch)


@pytest.fixture
def statements(app: Any) -> Iterator[list[str]]:
    """The SQL statements the app sends, one per cursor call (an executemany is one)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = app.extensions["sipas"].db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def recorded(app: Any) -> dict[str, str | None]:
    """Each attempt's token → the provider's call id recorded on it (None: not yet)."""
    return {token: call for token, call in fetch(app, select(Attempt.token, Attempt.provider_id))}


class Provider:
    """Accepts every call; ``on_call(request, index)`` runs inside the request (it may
    move the clock, look at the database or fail)."""

    name = "twilio"

    def __init__(self, on_call: Any = None) -> None:
        self.placed: list[tuple[str, str]] = []   # (token, call id)
        self.on_call = on_call

    def place_call(self, request: CallRequest) -> CallPlaced:
        if self.on_call is not None:
            self.on_call(request, len(self.placed))
        sid = new_sid()
        self.placed.append((request.idempotency_key, sid))
        return CallPlaced(sid)

    def fetch_call(self, provider_id: str) -> None:
        return None

    def close(self) -> None:
        pass


def test_a_fast_provider_has_its_calls_recorded_a_hundred_per_statement(
        app: Any, make_campaign: Any, statements: list[str]) -> None:
    campaign = make_campaign(phones(205), window=ALWAYS)
    provider = Provider()                            # the clock does not move: no call takes time
    statements.clear()
    assert dispatch_round(app, provider) == 205
    assert recorded(app) == dict(provider.placed)    # every call, under its own token
    assert {s for (s,) in fetch(app, select(Attempt.status))} == {AttemptStatus.INITIATED}
    assert {row for row in fetch(app, select(Contact.status, Contact.attempt_count, Contact.channel_attempts))} \
        == {(ContactStatus.ACTIVE, 1, 1)}
    assert {n for (n,) in fetch(app, select(Attempt.number))} == {1}
    inserts = [s for s in statements if s.startswith("INSERT INTO attempts")]
    records = [s for s in statements if s.startswith("UPDATE attempts") and "provider_id" in s]
    assert len(inserts) == 1 and len(records) == 3  # 100 + 100 + 5
    with app.extensions["sipas"].db.begin() as session:
        counted = dict(session.execute(select(Attempt.status, func.count()).group_by(Attempt.status)).all())
        assert tallies.tallies(session, campaign)["attempt"] == {str(k): v for k, v in counted.items()}
        assert tallies.tallies(session, campaign)["contact"] == {"active:": 205}


def test_a_slow_provider_has_each_call_recorded_before_the_next_is_asked(
        app: Any, make_campaign: Any, clock: Any) -> None:
    make_campaign(phones(4), window=ALWAYS)

    def slow(request: CallRequest, index: int) -> None:
        stored = recorded(app)
        assert all(stored[token] == call for token, call in provider.placed)   # every call before this one
        clock.advance(seconds=dispatch.RECORD_WAIT.total_seconds())

    provider = Provider(slow)
    assert dispatch_round(app, provider) == 4
    assert recorded(app) == dict(provider.placed)


def test_a_call_is_recorded_before_a_request_that_could_outlast_its_lease(
        app: Any, make_campaign: Any, clock: Any, monkeypatch: Any) -> None:
    """Even were calls kept back longer (RECORD_WAIT), one whose lease has less than half
    left is recorded before the next provider request, which may take that long: once
    its lease ran out, another worker would place it again."""
    monkeypatch.setattr(dispatch, "RECORD_WAIT", timedelta(hours=1))
    make_campaign(phones(3), window=ALWAYS)
    seen: list[dict[str, str | None]] = []

    def stalls(request: CallRequest, index: int) -> None:
        seen.append(recorded(app))
        clock.advance(seconds=[29, 2, 0][index])    # 60 s leases: 31 s left, then 29 s

    provider = Provider(stalls)
    assert dispatch_round(app, provider) == 3
    first, second, _ = (token for token, _ in provider.placed)
    assert seen[1][first] is None                   # 31 s left: more than any request takes
    assert seen[2][first] is not None and seen[2][second] is not None
    assert recorded(app) == dict(provider.placed)


def test_calls_placed_before_a_round_fails_are_recorded(app: Any, make_campaign: Any) -> None:
    make_campaign(phones(5), window=ALWAYS)

    def breaks(request: CallRequest, index: int) -> None:
        if index == 3:
            raise RuntimeError("the worker breaks down mid-round")

    provider = Provider(breaks)
    with pytest.raises(RuntimeError):
        dispatch_round(app, provider)
    assert len(provider.placed) == 3
    stored = recorded(app)
    assert {token: stored[token] for token, _ in provider.placed} == dict(provider.placed)
    assert sum(call is None for call in stored.values()) == 2    # claimed, never placed: reclaimed later


def test_a_number_on_a_call_for_one_campaign_waits_in_the_others(app: Any, make_campaign: Any) -> None:
    make_campaign(["0912345678", "0987654321"], window=ALWAYS, name="Quý 4")
    make_campaign(["0912345678"], window=ALWAYS, name="Khảo sát riêng")
    assert dispatch_round(app, Provider()) == 2                  # one call per number
    called = fetch(app, select(Contact.phone_e164).join(Attempt, Attempt.contact_id == Contact.id))
    assert sorted(phone for (phone,) in called) == ["+84912345678", "+84987654321"]
    assert len(fetch(app, select(Contact.id).where(Contact.status == ContactStatus.PENDING))) == 1
