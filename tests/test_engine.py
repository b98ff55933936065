"""The campaign engine with an injected clock: pacing, leases and reconciliation, the
per-number cap, opt-outs, the channel plan, scheduling, end dates, targets and closing."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import (Attempt, AttemptStatus, Campaign, Contact, ContactStatus, OptOut,
                                             PacingBucket)
from ivr_service.providers import CallPlaced, CallRequest, CallState
from ivr_service.services import campaigns, dispatch, frames
from ivr_service.services.dispatch import Pacing
from ivr_service.services.errors import InvalidInput

ALWAYS = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None}
FAST = {"max_attempts": 3, "min_gap_s": 0, "delays": {"busy": 60, "no_answer": 60, "failed": 60, "machine": 60,
                                                      "partial": 60, "break_off": 60, "canceled": 60}}


@dataclass
class RecordingProvider:
    """The provider boundary: records every call it is asked to place."""

    name: str = "twilio"
    placed: list[CallRequest] = field(default_factory=list)
    known: dict[str, CallState] = field(default_factory=dict)

    def place_call(self, request: CallRequest) -> CallPlaced:
        self.placed.append(request)
        return CallPlaced("CA" + uuid.uuid4().hex)

    def fetch_call(self, provider_id: str) -> CallState | None:
        return self.known.get(provider_id)

    def close(self) -> None:
        pass


def advance(svc: Any) -> list[int]:
    """One lifecycle round, as housekeeping runs it; returns the campaigns closed."""
    with svc.db.begin() as session:
        return campaigns.advance(session, svc.clock(), svc.registry).closed


def url_for(kind: str, token: str) -> str:
    return f"http://sipas.test/voice/{token}/{kind}"


def new_campaign(app: Any, tmp_path: Path, phones: list[str], start: bool = True, **options: Any) -> int:
    frame = tmp_path / f"frame-{uuid.uuid4().hex[:8]}.csv"
    frame.write_text("Mã hồ sơ,Lĩnh vực,Số điện thoại,Ngày trả kết quả\n" + "".join(
        f"HS-{i},Đất đai,{phone},02/11/2026\n" for i, phone in enumerate(phones)), encoding="utf-8")
    svc = app.extensions["sipas"]
    now = svc.clock()
    options = {"window": ALWAYS, "retry": FAST, "calls_per_second": 1000, **options}
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, f"E{uuid.uuid4().hex[:8]}", "Sở Thử nghiệm", now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="engine",
                                             questionnaire="sipas-2024", now=now, **options)
        frames.import_and_sample(session, campaign, frame, SampleRule("census"), 1, now)
        if start:
            campaigns.transition(session, campaign.id, "start", now, svc.registry)
        return campaign.id


def phones(n: int, base: int = 0) -> list[str]:
    return [f"091{base + i:07d}" for i in range(n)]


def claim(app: Any, pacing: Pacing | None = None, batch: int = 100) -> list[dispatch.Claimed]:
    svc = app.extensions["sipas"]
    return dispatch.claim_due(svc.db, pacing or Pacing("twilio", 1000.0, 1000), svc.clock(), batch)


def place_all(app: Any, provider: RecordingProvider, claimed: list[dispatch.Claimed]) -> None:
    svc = app.extensions["sipas"]
    for item in claimed:
        dispatch.place(svc.db, svc.registry, provider, item, url_for, svc.clock)


def status(app: Any, token: str, sid: str, call_status: str, **form: str) -> None:
    response = app.test_client().post(f"/voice/{token}/status", data={"CallSid": sid, "CallStatus": call_status, **form})
    assert response.status_code == 204, response.get_data(as_text=True)


def one(app: Any, statement: Any) -> Any:
    with app.extensions["sipas"].db.begin() as session:
        return session.execute(statement).one()


def scalars(app: Any, statement: Any) -> list[Any]:
    with app.extensions["sipas"].db.begin() as session:
        return list(session.scalars(statement))


# -- pacing -------------------------------------------------------------------------------


def test_sender_pace_is_a_token_bucket_shared_by_every_claim(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(10))
    pacing = Pacing("twilio", 2.0, 1000)
    assert len(claim(app, pacing)) == 2          # a full bucket: one second's worth
    assert len(claim(app, pacing)) == 0          # another worker, same instant: nothing left
    clock.advance(seconds=0.5)
    assert len(claim(app, pacing)) == 1
    clock.advance(seconds=10)
    assert len(claim(app, pacing)) == 2          # the burst never exceeds the capacity


def test_campaign_pace_and_concurrent_calls_are_capped(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(10), calls_per_second=1)
    assert len(claim(app)) == 1
    clock.advance(seconds=1)
    assert len(claim(app)) == 1
    other = new_campaign(app, tmp_path, phones(10, 100))
    limited = Pacing("twilio", 1000.0, 4)       # 2 calls already live for this sender
    clock.advance(seconds=1)
    claimed = claim(app, limited)
    assert len(claimed) == 2 and {c.to[:6] for c in claimed} <= {"+84910", "+84911"}
    assert other


# -- leases, reconciliation -------------------------------------------------------------------


def test_an_expired_lease_is_taken_over_and_the_old_owner_does_not_call(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(1))
    provider = RecordingProvider()
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    [first] = claim(app, pacing)
    clock.advance(seconds=61)                     # worker A stalled past its lease
    [taken] = claim(app, pacing)                  # worker B reclaims the same attempt
    assert taken.attempt_id == first.attempt_id and taken.token == first.token
    place_all(app, provider, [first])             # A wakes up: its lease is gone
    assert provider.placed == []
    place_all(app, provider, [taken])
    assert [r.idempotency_key for r in provider.placed] == [first.token]
    attempt = one(app, select(Attempt.status, Attempt.lease_until, Attempt.number))
    assert attempt == (AttemptStatus.INITIATED, None, 1)


def test_no_call_starts_after_the_window_closes_even_when_claimed_before(app: Any, tmp_path: Path,
                                                                          clock: Any) -> None:
    """Claimed at 16:59:59 but placed at 17:00:01; or a worker dies at 16:59 and its lease
    runs out after 17:00: the call waits for the next morning instead of starting late."""
    new_campaign(app, tmp_path, phones(2), window={"public_holidays": None})   # Mon–Sat 08–17
    provider = RecordingProvider()
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    clock.advance(hours=7, minutes=59, seconds=59)                               # Tue 16:59:59 local
    late, stalled = claim(app, pacing)
    clock.advance(seconds=2)                                                     # 17:00:01
    place_all(app, provider, [late])
    assert provider.placed == []
    clock.advance(seconds=60)                                                    # both leases ran out
    assert claim(app, pacing) == []
    leases = {lease for (lease,) in one_all(app, select(Attempt.lease_until))}
    assert leases == {clock().replace(day=18, hour=1, minute=0, second=0)}       # Wed 08:00 local
    clock.advance(hours=14, minutes=59)                                          # Wed 08:00:00
    retaken = claim(app, pacing)
    assert sorted(c.token for c in retaken) == sorted([late.token, stalled.token])
    place_all(app, provider, [stalled])                                          # the stalled worker wakes:
    assert provider.placed == []                                                 # its lease is gone
    place_all(app, provider, retaken)
    assert sorted(r.idempotency_key for r in provider.placed) == sorted([late.token, stalled.token])
    assert {n for (n,) in one_all(app, select(Attempt.number))} == {1}           # no second attempt


def test_an_opt_out_stops_a_queued_attempt_whose_worker_died(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, ["0912345678"])
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    [item] = claim(app, pacing)                                                  # then the worker dies
    with app.extensions["sipas"].db.begin() as session:
        session.add(OptOut(phone_e164="+84912345678", source="operator", created_at=clock()))
    clock.advance(seconds=61)
    assert claim(app, pacing) == []
    assert one(app, select(Attempt.status, Attempt.outcome)) == (AttemptStatus.CANCELED, "refused")
    assert one(app, select(Contact.status, Contact.disposition)) == (ContactStatus.DONE, "2.11")


def test_a_queued_attempt_past_the_campaign_end_is_dropped_and_the_campaign_closes(app: Any, tmp_path: Path,
                                                                                    clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, ["0912345678"], ends_at=clock() + timedelta(seconds=30))
    pacing = Pacing("twilio", 1000.0, 1000, lease=timedelta(seconds=60))
    claim(app, pacing)                                                           # then the worker dies
    clock.advance(seconds=61)
    assert claim(app, pacing) == []
    assert one(app, select(Attempt.status)) == (AttemptStatus.CANCELED,)
    svc = app.extensions["sipas"]
    assert advance(svc) == [campaign_id]
    assert one(app, select(Contact.status)) == (ContactStatus.DONE,)


def test_a_queued_attempt_named_by_a_callback_is_not_placed_again(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(1))
    [item] = claim(app)                           # the worker dies after the provider created the call
    sid = "CA" + uuid.uuid4().hex
    status(app, item.token, sid, "initiated")
    clock.advance(minutes=5)
    assert claim(app) == []
    assert one(app, select(Attempt.status, Attempt.provider_id)) == (AttemptStatus.INITIATED, sid)


def test_stale_calls_are_asked_of_the_provider(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(2))
    provider = RecordingProvider()
    claimed = claim(app)
    place_all(app, provider, claimed)
    sids = scalars(app, select(Attempt.provider_id).order_by(Attempt.id))
    provider.known[sids[0]] = CallState(sids[0], "completed", 95)    # the second: unknown (lost)
    svc = app.extensions["sipas"]
    assert dispatch.reconcile_stale(svc.db, svc.registry, provider, clock(), timedelta(hours=2)) == 0
    clock.advance(hours=3)
    assert dispatch.reconcile_stale(svc.db, svc.registry, provider, clock(), timedelta(hours=2)) == 2
    rows = [tuple(r) for r in one_all(app, select(Attempt.status, Attempt.duration_s, Attempt.error_code)
                                      .order_by(Attempt.id))]
    assert rows == [(AttemptStatus.COMPLETED, 95, None), (AttemptStatus.FAILED, None, "lost")]
    contact_states = scalars(app, select(Contact.status).order_by(Contact.id))
    assert contact_states == [ContactStatus.PENDING, ContactStatus.PENDING]   # both retried by the policy


def one_all(app: Any, statement: Any) -> list[Any]:
    with app.extensions["sipas"].db.begin() as session:
        return list(session.execute(statement).all())


# -- who may be called ------------------------------------------------------------------------


def test_a_number_that_answered_is_not_called_again_within_24_hours(app: Any, client: Any, tmp_path: Path,
                                                                    clock: Any) -> None:
    capped = {**FAST, "min_gap_s": 86400}
    new_campaign(app, tmp_path, ["0912345678"], retry=capped)
    [item] = claim(app)
    sid = "CA" + uuid.uuid4().hex
    assert client.post(f"/voice/{item.token}/answer", data={"CallSid": sid, "CallStatus": "in-progress"}).status_code == 200
    status(app, item.token, sid, "completed", CallDuration="30")   # hung up: a break-off, retried in 60 s
    second = new_campaign(app, tmp_path, ["0912345678", "0987654321"], retry=capped)
    clock.advance(hours=1)
    claimed = claim(app)
    assert [c.to for c in claimed] == ["+84987654321"]             # the other number only
    waiting = one_all(app, select(Contact.next_attempt_at).where(Contact.phone_e164 == "+84912345678"))
    answered_at = clock() - timedelta(hours=1)
    assert all(at >= answered_at + timedelta(hours=24) for (at,) in waiting)
    assert second


def test_busy_signals_do_not_count_against_the_daily_cap(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, ["0912345678"], retry={**FAST, "min_gap_s": 86400})
    [item] = claim(app)
    status(app, item.token, "CA" + uuid.uuid4().hex, "busy", CallDuration="0")
    clock.advance(seconds=61)
    assert len(claim(app)) == 1


def test_an_opt_out_stops_attempts_already_due_in_every_campaign(app: Any, tmp_path: Path, clock: Any) -> None:
    provider = RecordingProvider()
    new_campaign(app, tmp_path, ["0912345678"])
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:   # refused elsewhere (another campaign, SMS, an operator)
        session.add(OptOut(phone_e164="+84912345678", source="operator", created_at=clock()))
    place_all(app, provider, claim(app))
    assert provider.placed == []
    assert one(app, select(Contact.status, Contact.disposition)) == (ContactStatus.DONE, "2.11")


# -- channel plan, schedule, closing ----------------------------------------------------------


def test_after_the_voice_attempts_the_plan_moves_to_sms(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, ["0912345678"],
                 channel_plan=[{"channel": "voice", "max_attempts": 2}, {"channel": "sms", "max_attempts": 1}])
    for _ in range(2):
        [item] = claim(app)
        status(app, item.token, "CA" + uuid.uuid4().hex, "no-answer", CallDuration="0")
        clock.advance(minutes=2)
    contact = one(app, select(Contact.status, Contact.channel, Contact.channel_attempts, Contact.attempt_count))
    assert contact == (ContactStatus.PENDING, "sms", 0, 2)
    assert claim(app) == []                       # the voice dispatcher leaves SMS steps alone


def test_channel_plans_are_validated(app: Any) -> None:
    svc = app.extensions["sipas"]
    for plan, words in (([], "non-empty"), ([{"channel": "fax"}], "channel"),
                        ([{"channel": "voice", "max_attempts": 0}], "max_attempts"),
                        ([{"channel": "voice"}, {"channel": "voice"}], "twice"),
                        ([{"channel": "voice", "tries": 2}], "keys")):
        with svc.db.begin() as session, pytest.raises(InvalidInput, match=words):
            agency = campaigns.create_agency(session, uuid.uuid4().hex[:8], "Sở", svc.clock())
            campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="x",
                                      questionnaire="sipas-2024", now=svc.clock(), channel_plan=plan)


def test_a_campaign_with_a_future_start_is_scheduled_then_runs(app: Any, tmp_path: Path, clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, phones(2), starts_at=clock() + timedelta(days=1))
    assert one(app, select(Campaign.status))[0].value == "scheduled"
    assert claim(app) == []
    svc = app.extensions["sipas"]
    advance(svc)
    assert one(app, select(Campaign.status))[0].value == "scheduled"
    clock.advance(days=1)
    advance(svc)
    assert one(app, select(Campaign.status).where(Campaign.id == campaign_id))[0].value == "running"
    assert len(claim(app)) == 2


def test_pause_stops_new_attempts_and_calls_in_progress_finish(app: Any, tmp_path: Path, clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, phones(3), calls_per_second=1)
    [live] = claim(app)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaigns.transition(session, campaign_id, "pause", clock(), svc.registry)
    clock.advance(seconds=5)
    assert claim(app) == []
    status(app, live.token, "CA" + uuid.uuid4().hex, "busy", CallDuration="0")   # the live call still ends
    assert one(app, select(Attempt.outcome))[0] == "busy"


def test_past_its_end_a_campaign_closes_with_a_disposition_for_everyone(app: Any, tmp_path: Path,
                                                                        clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, phones(3), ends_at=clock() + timedelta(hours=1))
    claimed = claim(app)
    status(app, claimed[0].token, "CA" + uuid.uuid4().hex, "no-answer", CallDuration="0")
    status(app, claimed[1].token, "CA" + uuid.uuid4().hex, "busy", CallDuration="0")
    svc = app.extensions["sipas"]
    assert advance(svc) == []          # a call is in progress
    status(app, claimed[2].token, "CA" + uuid.uuid4().hex, "failed", ErrorCode="31005")
    clock.advance(hours=1)
    assert claim(app) == []                                                      # past the end: no calls
    assert advance(svc) == [campaign_id]
    codes = sorted(scalars(app, select(Contact.disposition)))
    assert codes == ["3.12", "3.13", "3.16"]
    rates = one(app, select(Campaign.rates))[0]
    assert rates["counts"]["UH"] == 3 and rates["values"]["RR1"] == 0.0
    assert set(rates["values"]) >= {"RR1", "RR6", "COOP1", "COOP4", "REF1", "REF3", "CON1", "CON3"}


def test_reaching_the_target_of_completes_stops_the_campaign(app: Any, client: Any, tmp_path: Path,
                                                             clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, phones(5), target_completes=1, calls_per_second=1)
    [item] = claim(app)
    sid = "CA" + uuid.uuid4().hex
    twiml = client.post(f"/voice/{item.token}/answer", data={"CallSid": sid}).get_data(as_text=True)
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "1"}
    while 'item=' in twiml:
        current = twiml.split("item=", 1)[1].split('"', 1)[0]
        twiml = client.post(f"/voice/{item.token}/gather?item={current}",
                            data={"CallSid": sid, "Digits": keys.get(current, "4")}).get_data(as_text=True)
    status(app, item.token, sid, "completed", CallDuration="120")
    clock.advance(seconds=5)
    assert claim(app) == []                                    # target reached: nobody else is called
    svc = app.extensions["sipas"]
    assert advance(svc) == [campaign_id]
    codes = sorted(scalars(app, select(Contact.disposition)))
    assert codes == ["1.1", "3.11", "3.11", "3.11", "3.11"]


def test_cancel_closes_the_campaign_and_records_rates(app: Any, client: Any, tmp_path: Path, clock: Any) -> None:
    campaign_id = new_campaign(app, tmp_path, phones(2))
    response = client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "cancel"})
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert sorted(scalars(app, select(Contact.disposition))) == ["3.11", "3.11"]
    assert one(app, select(Campaign.rates))[0]["counts"]["UH"] == 2


def test_spread_caps_first_attempts_per_day_over_the_days_left(app: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, tmp_path, phones(10), spread=True, ends_at=clock() + timedelta(days=5))
    assert len(claim(app)) == 2                   # 10 contacts over 5 open days
    assert claim(app) == []


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
            for _ in range(500):
                waiting = watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%pacing_buckets%'")).scalar()
                if waiting:
                    break
                thread.join(0.01)
            assert waiting == 1
    thread.join(10)
    assert "error" not in result, result.get("error")
    assert result["taken"] == 6
    with db.begin() as session:
        assert session.scalar(select(PacingBucket.tokens).where(PacingBucket.key == "sender:race")) == 0
