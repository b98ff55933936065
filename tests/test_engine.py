"""The campaign engine with an injected clock: pacing, leases and reconciliation, the
per-number cap, opt-outs, the channel plan, scheduling, end dates, targets and closing."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ivr_service.persistence.models import (
    Attempt,
    AttemptStatus,
    Campaign,
    Contact,
    ContactStatus,
    OptOut,
    PacingBucket,
)
from ivr_service.providers import CallState
from ivr_service.services import campaigns, dispatch
from ivr_service.services.dispatch import Pacing
from ivr_service.services.errors import InvalidInput

from .conftest import fetch, fetch_one, new_sid, phones, scalars

ALWAYS = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None}
FAST = {"max_attempts": 3, "min_gap_s": 0, "delays": {"busy": 60, "no_answer": 60, "failed": 60, "machine": 60,
                                                      "partial": 60, "break_off": 60, "canceled": 60}}


def advance(svc: Any) -> list[int]:
    """One lifecycle round, as housekeeping runs it; returns the campaigns closed."""
    with svc.db.begin() as session:
        return campaigns.advance(session, svc.clock(), svc.registry).closed


@pytest.fixture
def new_campaign(make_campaign: Any) -> Any:
    """make_campaign with the engine tests' defaults: always open, quick retries."""
    def make(numbers: list[str], **options: Any) -> int:
        return make_campaign(numbers, **{"window": ALWAYS, "retry": FAST, **options})
    return make


# -- pacing -------------------------------------------------------------------------------


def test_sender_pace_is_a_token_bucket_shared_by_every_claim(new_campaign: Any, claim: Any, clock: Any) -> None:
    new_campaign(phones(10))
    pacing = Pacing("twilio", 2.0, 1000)
    assert len(claim(pacing)) == 2               # a full bucket: one second's worth
    assert len(claim(pacing)) == 0               # another worker, same instant: nothing left
    clock.advance(seconds=0.5)
    assert len(claim(pacing)) == 1
    clock.advance(seconds=10)
    assert len(claim(pacing)) == 2               # the burst never exceeds the capacity


def test_campaign_pace_and_concurrent_calls_are_capped(new_campaign: Any, claim: Any, clock: Any) -> None:
    new_campaign(phones(10), calls_per_second=1)
    assert len(claim()) == 1
    clock.advance(seconds=1)
    assert len(claim()) == 1
    other = new_campaign(phones(10, 100))
    limited = Pacing("twilio", 1000.0, 4)       # 2 calls already live for this sender
    clock.advance(seconds=1)
    claimed = claim(limited)
    assert len(claimed) == 2 and {c.to[:6] for c in claimed} <= {"+84910", "+84911"}
    assert other


# -- leases, reconciliation -------------------------------------------------------------------


def test_an_expired_lease_is_taken_over_and_the_old_owner_does_not_call(
        app: Any, new_campaign: Any, claim: Any, provider: Any, place_calls: Any, clock: Any) -> None:
    new_campaign(phones(1))
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    [first] = claim(pacing)
    clock.advance(seconds=61)                     # worker A stalled past its lease
    [taken] = claim(pacing)                       # worker B reclaims the same attempt
    assert taken.attempt_id == first.attempt_id and taken.token == first.token
    place_calls(provider, [first])                # A wakes up: its lease is gone
    assert provider.placed == []
    place_calls(provider, [taken])
    assert [r.idempotency_key for r in provider.placed] == [first.token]
    attempt = fetch_one(app, select(Attempt.status, Attempt.lease_until, Attempt.number))
    assert attempt == (AttemptStatus.INITIATED, None, 1)


def test_unplaced_attempts_past_their_lease_do_not_fill_the_concurrent_cap(
        app: Any, new_campaign: Any, claim: Any, provider: Any, place_calls: Any, clock: Any) -> None:
    """Workers that lose their database connection mid-round leave claimed attempts queued;
    when there are more of them than calls allowed at once, they are still placed (they
    were never calls), and live calls still count."""
    new_campaign(phones(8))
    pacing = Pacing("twilio", 1000.0, 3, lease=timedelta(seconds=60))
    stranded = claim(pacing)                      # the round dies before placing any of them
    assert len(stranded) == 3 and claim(pacing) == []   # within their lease they may be calls
    clock.advance(seconds=61)
    retaken = claim(pacing)
    assert sorted(c.attempt_id for c in retaken) == sorted(c.attempt_id for c in stranded)
    place_calls(provider, retaken)
    assert sorted(r.idempotency_key for r in provider.placed) == sorted(c.token for c in stranded)
    assert claim(pacing) == []                    # three live calls: the cap holds
    assert fetch_one(app, select(func.count()).select_from(Attempt)) == (3,)


def test_no_call_starts_after_the_window_closes_even_when_claimed_before(
        app: Any, new_campaign: Any, claim: Any, provider: Any, place_calls: Any, clock: Any) -> None:
    """Claimed at 16:59:59 but placed at 17:00:01; or a worker dies at 16:59 and its lease
    runs out after 17:00: the call waits for the next morning instead of starting late."""
    new_campaign(phones(2), window={"public_holidays": None})                  # Mon–Sat 08–17
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    clock.advance(hours=7, minutes=59, seconds=59)                               # Tue 16:59:59 local
    late, stalled = claim(pacing)
    clock.advance(seconds=2)                                                     # 17:00:01
    place_calls(provider, [late])
    assert provider.placed == []
    clock.advance(seconds=60)                                                    # both leases ran out
    assert claim(pacing) == []
    leases = {lease for (lease,) in fetch(app, select(Attempt.lease_until))}
    assert leases == {clock().replace(day=18, hour=1, minute=0, second=0)}       # Wed 08:00 local
    clock.advance(hours=14, minutes=59)                                          # Wed 08:00:00
    retaken = claim(pacing)
    assert sorted(c.token for c in retaken) == sorted([late.token, stalled.token])
    place_calls(provider, [stalled])                                             # the stalled worker wakes:
    assert provider.placed == []                                                 # its lease is gone
    place_calls(provider, retaken)
    assert sorted(r.idempotency_key for r in provider.placed) == sorted([late.token, stalled.token])
    assert {n for (n,) in fetch(app, select(Attempt.number))} == {1}             # no second attempt


def test_an_opt_out_stops_a_queued_attempt_whose_worker_died(
        app: Any, new_campaign: Any, claim: Any, clock: Any) -> None:
    new_campaign(["0912345678"])
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    [item] = claim(pacing)                                                       # then the worker dies
    with app.extensions["sipas"].db.begin() as session:
        session.add(OptOut(phone_e164="+84912345678", source="operator", created_at=clock()))
    clock.advance(seconds=61)
    assert claim(pacing) == []
    assert fetch_one(app, select(Attempt.status, Attempt.outcome)) == (AttemptStatus.CANCELED, "refused")
    assert fetch_one(app, select(Contact.status, Contact.disposition)) == (ContactStatus.DONE, "2.11")


def test_a_queued_attempt_past_the_campaign_end_is_dropped_and_the_campaign_closes(
        app: Any, new_campaign: Any, claim: Any, clock: Any) -> None:
    campaign_id = new_campaign(["0912345678"], ends_at=clock() + timedelta(seconds=30))
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    claim(pacing)                                                                # then the worker dies
    clock.advance(seconds=61)
    assert claim(pacing) == []
    assert fetch_one(app, select(Attempt.status)) == (AttemptStatus.CANCELED,)
    svc = app.extensions["sipas"]
    assert advance(svc) == [campaign_id]
    assert fetch_one(app, select(Contact.status)) == (ContactStatus.DONE,)


def test_a_queued_attempt_named_by_a_callback_is_not_placed_again(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    new_campaign(phones(1))
    [item] = claim()                              # the worker dies after the provider created the call
    sid = new_sid()
    make_call(item, sid=sid).status("initiated")
    clock.advance(minutes=5)
    assert claim() == []
    assert fetch_one(app, select(Attempt.status, Attempt.provider_id)) == (AttemptStatus.INITIATED, sid)


def test_stale_calls_are_asked_of_the_provider(
        app: Any, new_campaign: Any, claim: Any, provider: Any, place_calls: Any, clock: Any) -> None:
    new_campaign(phones(2))
    claimed = claim()
    place_calls(provider, claimed)
    sids = scalars(app, select(Attempt.provider_id).order_by(Attempt.id))
    provider.known[sids[0]] = CallState(sids[0], "completed", 95)    # the second: unknown (lost)
    svc = app.extensions["sipas"]
    assert dispatch.reconcile_stale(svc.db, svc.registry, provider, clock(), timedelta(hours=2)) == 0
    clock.advance(hours=3)
    assert dispatch.reconcile_stale(svc.db, svc.registry, provider, clock(), timedelta(hours=2)) == 2
    rows = [tuple(r) for r in fetch(app, select(Attempt.status, Attempt.duration_s, Attempt.error_code)
                                      .order_by(Attempt.id))]
    assert rows == [(AttemptStatus.COMPLETED, 95, None), (AttemptStatus.FAILED, None, "lost")]
    assert scalars(app, select(Attempt.provider_id).order_by(Attempt.id)) == sids   # no call id invented
    contact_states = scalars(app, select(Contact.status).order_by(Contact.id))
    assert contact_states == [ContactStatus.PENDING, ContactStatus.PENDING]   # both retried by the policy


# -- who may be called ------------------------------------------------------------------------


def test_a_number_that_answered_is_not_called_again_within_24_hours(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    capped = {**FAST, "min_gap_s": 86400}
    new_campaign(["0912345678"], retry=capped)
    [item] = claim()
    call = make_call(item)
    call.answer()
    call.status("completed", CallDuration="30")                    # hung up: a break-off, retried in 60 s
    second = new_campaign(["0912345678", "0987654321"], retry=capped)
    clock.advance(hours=1)
    claimed = claim()
    assert [c.to for c in claimed] == ["+84987654321"]             # the other number only
    waiting = fetch(app, select(Contact.next_attempt_at).where(Contact.phone_e164 == "+84912345678"))
    answered_at = clock() - timedelta(hours=1)
    assert all(at >= answered_at + timedelta(hours=24) for (at,) in waiting)
    assert second


def test_busy_signals_do_not_count_against_the_daily_cap(
        new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    new_campaign(["0912345678"], retry={**FAST, "min_gap_s": 86400})
    [item] = claim()
    make_call(item).status("busy", CallDuration="0")
    clock.advance(seconds=61)
    assert len(claim()) == 1


def test_an_opt_out_stops_attempts_already_due_in_every_campaign(
        app: Any, new_campaign: Any, claim: Any, provider: Any, place_calls: Any, clock: Any) -> None:
    new_campaign(["0912345678"])
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:   # refused elsewhere (another campaign, SMS, an operator)
        session.add(OptOut(phone_e164="+84912345678", source="operator", created_at=clock()))
    place_calls(provider, claim())
    assert provider.placed == []
    assert fetch_one(app, select(Contact.status, Contact.disposition)) == (ContactStatus.DONE, "2.11")


# -- channel plan, schedule, closing ----------------------------------------------------------


def test_after_the_voice_attempts_the_plan_moves_to_sms(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    new_campaign(["0912345678"],
                 channel_plan=[{"channel": "voice", "max_attempts": 2}, {"channel": "sms", "max_attempts": 1}])
    for _ in range(2):
        [item] = claim()
        make_call(item).status("no-answer", CallDuration="0")
        clock.advance(minutes=2)
    contact = fetch_one(app, select(Contact.status, Contact.channel, Contact.channel_attempts, Contact.attempt_count))
    assert contact == (ContactStatus.PENDING, "sms", 0, 2)
    assert claim() == []                          # the voice dispatcher leaves SMS steps alone


def test_channel_plans_are_validated(app: Any, make_agency: Any) -> None:
    svc = app.extensions["sipas"]
    agency_id = make_agency()
    for plan, words in (([], "non-empty"), ([{"channel": "fax"}], "channel"),
                        ([{"channel": "voice", "max_attempts": 0}], "max_attempts"),
                        ([{"channel": "voice"}, {"channel": "voice"}], "twice"),
                        ([{"channel": "voice", "tries": 2}], "keys")):
        with svc.db.begin() as session, pytest.raises(InvalidInput, match=words):
            campaigns.create_campaign(session, svc.registry, agency_id=agency_id, name="x",
                                      questionnaire="sipas-2024", now=svc.clock(), channel_plan=plan)


def test_a_campaign_with_a_future_start_is_scheduled_then_runs(
        app: Any, new_campaign: Any, claim: Any, clock: Any) -> None:
    campaign_id = new_campaign(phones(2), starts_at=clock() + timedelta(days=1))
    assert fetch_one(app, select(Campaign.status))[0].value == "scheduled"
    assert claim() == []
    svc = app.extensions["sipas"]
    advance(svc)
    assert fetch_one(app, select(Campaign.status))[0].value == "scheduled"
    clock.advance(days=1)
    advance(svc)
    assert fetch_one(app, select(Campaign.status).where(Campaign.id == campaign_id))[0].value == "running"
    assert len(claim()) == 2


def test_pause_stops_new_attempts_and_calls_in_progress_finish(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    campaign_id = new_campaign(phones(3), calls_per_second=1)
    [live] = claim()
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaigns.transition(session, campaign_id, "pause", clock(), svc.registry)
    clock.advance(seconds=5)
    assert claim() == []
    make_call(live).status("busy", CallDuration="0")                             # the live call still ends
    assert fetch_one(app, select(Attempt.outcome))[0] == "busy"


def test_past_its_end_a_campaign_closes_with_a_disposition_for_everyone(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    campaign_id = new_campaign(phones(3), ends_at=clock() + timedelta(hours=1))
    claimed = claim()
    make_call(claimed[0]).status("no-answer", CallDuration="0")
    make_call(claimed[1]).status("busy", CallDuration="0")
    svc = app.extensions["sipas"]
    assert advance(svc) == []          # a call is in progress
    make_call(claimed[2]).status("failed", ErrorCode="31005")
    clock.advance(hours=1)
    assert claim() == []                                                         # past the end: no calls
    assert advance(svc) == [campaign_id]
    codes = sorted(scalars(app, select(Contact.disposition)))
    assert codes == ["3.12", "3.13", "3.16"]
    rates = fetch_one(app, select(Campaign.rates))[0]
    assert rates["counts"]["UH"] == 3 and rates["values"]["RR1"] == 0.0
    assert set(rates["values"]) >= {"RR1", "RR6", "COOP1", "COOP4", "REF1", "REF3", "CON1", "CON3"}


def test_reaching_the_target_of_completes_stops_the_campaign(
        app: Any, new_campaign: Any, claim: Any, make_call: Any, clock: Any) -> None:
    campaign_id = new_campaign(phones(5), target_completes=1, calls_per_second=1)
    [item] = claim()
    call = make_call(item)
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1"})
    call.status("completed", CallDuration="120")
    clock.advance(seconds=5)
    assert claim() == []                                       # target reached: nobody else is called
    svc = app.extensions["sipas"]
    assert advance(svc) == [campaign_id]
    codes = sorted(scalars(app, select(Contact.disposition)))
    assert codes == ["1.1", "3.11", "3.11", "3.11", "3.11"]


def test_cancel_closes_the_campaign_and_records_rates(app: Any, client: Any, new_campaign: Any) -> None:
    campaign_id = new_campaign(phones(2))
    response = client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "cancel", "reason": "kiểm thử"})
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert sorted(scalars(app, select(Contact.disposition))) == ["3.11", "3.11"]
    assert fetch_one(app, select(Campaign.rates))[0]["counts"]["UH"] == 2


def test_spread_caps_first_attempts_per_day_over_the_days_left(new_campaign: Any, claim: Any, clock: Any) -> None:
    new_campaign(phones(10), spread=True, ends_at=clock() + timedelta(days=5))
    assert len(claim()) == 2                      # 10 contacts over 5 open days
    assert claim() == []


def test_cluster_lock_is_exclusive_on_postgresql(app: Any) -> None:
    db = app.extensions["sipas"].db
    with db.cluster_lock("export") as first:
        assert first
        with db.cluster_lock("export") as second:
            expected = db.engine.dialect.name != "postgresql"   # SQLite runs one worker: always granted
            assert second is expected
    with db.cluster_lock("export") as again:
        assert again
    with db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0


def test_workers_creating_the_same_pacing_bucket_at_once_share_it(app: Any, clock: Any) -> None:
    """Two workers start together and both find no bucket for their sender: one creates it,
    the other waits for that row and takes what is left, instead of failing its round."""
    db = app.extensions["sipas"].db
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL (SQLite runs one worker)")
    now = clock()
    result: dict[str, Any] = {}

    with db.begin() as first:
        assert dispatch._take_tokens(first, "sender:race", 10.0, now, 4) == 4   # created, row locked

        def second_worker() -> None:
            try:
                with db.begin() as second:
                    result["taken"] = dispatch._take_tokens(second, "sender:race", 10.0, now, 10)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                result["error"] = exc

        thread = threading.Thread(target=second_worker)
        thread.start()
        with db.engine.connect() as watcher:   # wait until the second worker blocks on the new row
            # A loaded machine may take seconds to start the thread and connect: wait for the
            # condition (or the thread's end, which would mean it never blocked), not a time.
            deadline = time.monotonic() + 60
            waiting = 0
            while thread.is_alive() and time.monotonic() < deadline:
                waiting = watcher.execute(text(
                    # This database only: another suite on the same server must not count.
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND query LIKE '%pacing_buckets%'")).scalar()
                if waiting:
                    break
                # pg_stat_activity is read once per transaction: end it, or every later poll
                # sees the snapshot taken before the second worker blocked (it failed that way).
                watcher.rollback()
                thread.join(0.01)
            assert waiting == 1
    thread.join(10)
    assert "error" not in result, result.get("error")
    assert result["taken"] == 6
    with db.begin() as session:
        assert session.scalar(select(PacingBucket.tokens).where(PacingBucket.key == "sender:race")) == 0
