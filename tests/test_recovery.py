"""Recovery after a restart: calls left in progress are asked of the provider once they
are overdue (ring timeout + the campaign's longest complete call + a margin, not two hours)
and closed as it says; a call it does not know is closed as lost and its contact retried
by the policy; an attempt claimed but never placed is placed again with its own token,
once; a provider answering 5xx or timing out in bursts gets no duplicate placement.

The clock is injected: "recovery time" is simulated seconds from the restart until every
call left behind has a final status."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.core import estimate
from ivr_service.persistence.models import Answer, Attempt, AttemptStatus, Campaign, Contact, ContactStatus
from ivr_service.providers import CallPlaced, CallRequest, CallState, ProviderError
from ivr_service.services import dispatch
from ivr_service.settings import Settings
from ivr_service.worker import Worker

from .conftest import ROOT, Call, new_sid, phones

ALWAYS = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None}
RETRY = {"max_attempts": 3, "min_gap_s": 0, "delays": {"busy": 60, "no_answer": 60, "failed": 60, "machine": 60,
                                                       "partial": 60, "break_off": 60, "canceled": 60}}
ROUND_S = 5     # the worker's reconcile interval with the default SIPAS_DISPATCH_INTERVAL (max(5 × 1 s, 5 s))


@dataclass
class ProviderStub:
    """The provider boundary: records each placement request (by idempotency key) and
    answers ``fetch_call`` from ``known``; ``failures`` makes the next requests fail."""

    name: str = "twilio"
    requests: list[CallRequest] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)          # idempotency key -> call id
    known: dict[str, CallState] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    failures: list[ProviderError] = field(default_factory=list)

    def place_call(self, request: CallRequest) -> CallPlaced:
        self.requests.append(request)
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and failure.kind != "unknown":
            raise failure                       # a 5xx: nothing was created
        # As Twilio with an idempotency key: the same key is the same call.
        sid = self.calls.setdefault(request.idempotency_key or new_sid(), new_sid())
        self.known.setdefault(sid, CallState(sid, "queued"))
        if failure is not None:
            raise failure                       # a timeout: the call was created, the answer lost
        return CallPlaced(sid)

    def fetch_call(self, provider_id: str) -> CallState | None:
        self.asked.append(provider_id)
        return self.known.get(provider_id)

    def close(self) -> None:
        pass


def restart(settings: Settings, clock: Any, provider: ProviderStub) -> tuple[Any, Worker]:
    """A new web app and worker on the same database, as after a host restart."""
    application = create_app(settings, clock=clock)
    return application, Worker(application, provider=provider)


def statuses(app: Any) -> list[tuple[int, AttemptStatus, str | None]]:
    with app.extensions["sipas"].db.begin() as session:
        return [tuple(r) for r in session.execute(select(Attempt.id, Attempt.status, Attempt.error_code)
                                                  .order_by(Attempt.id))]  # type: ignore[misc]


def test_calls_left_in_progress_are_reconciled_within_the_computed_overdue_time(
        make_settings: Any, clock: Any, make_campaign: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings()
    assert settings.stale_call_seconds is None                  # no override: per campaign
    provider = ProviderStub()
    before, worker = restart(settings, clock, provider)
    campaign_id = make_campaign(phones(3), app=before, window=ALWAYS, retry=RETRY)
    assert worker.dispatch() == 3
    sids = [provider.calls[r.idempotency_key or ""] for r in provider.requests]
    # The first call is answered and two answers are recorded before everything stops.
    with before.extensions["sipas"].db.begin() as session:
        first = session.scalars(select(Attempt).order_by(Attempt.id)).first()
        assert first is not None
        token = first.token
    call = Call(before.test_client(), token, sids[0])
    call.answer()
    call.press("CONSENT", "1")
    call.press("C01", "4")
    worker.close()
    before.extensions["sipas"].db.dispose()                     # the host goes down

    # What the provider knows meanwhile: the first finished, the second is still talking,
    # the third it never heard of.
    provider.known[sids[0]] = CallState(sids[0], "completed", 95)
    provider.known[sids[1]] = CallState(sids[1], "in-progress")
    del provider.known[sids[2]]
    clock.advance(seconds=60)                                   # down for a minute
    after, worker = restart(settings, clock, provider)
    svc = after.extensions["sipas"]
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        overdue = worker.overdue.of(campaign, svc.registry)
        longest = estimate.estimate(svc.registry.get(campaign.questionnaire_key), campaign.language,
                                    agency=campaign.agency.name, pace=settings.call_pace).longest.call_seconds
    assert overdue == timedelta(seconds=settings.twilio_ring_timeout + min(settings.max_call_seconds, longest)
                                + dispatch.OVERDUE_MARGIN.total_seconds())
    assert overdue < timedelta(minutes=15)

    restarted = clock()
    closed_at = None
    while clock() - restarted < timedelta(hours=1):
        worker.reconcile()                                      # the first round at once, then every ROUND_S
        rows = statuses(after)
        if rows[0][1] is AttemptStatus.COMPLETED and rows[2][1] is AttemptStatus.FAILED:
            closed_at = clock()
            break
        clock.advance(seconds=ROUND_S)
    assert closed_at is not None, statuses(after)
    recovery = (closed_at - restarted).total_seconds()
    created = closed_at - restarted + timedelta(seconds=60)     # the attempts are this old now
    assert created - overdue < timedelta(seconds=ROUND_S), "asked within one round of being overdue"
    assert recovery < 7200 - 60
    with capsys.disabled():
        print(f"\nrecovery after a restart: calls overdue after {overdue.total_seconds():.0f} s "
              f"(ring {settings.twilio_ring_timeout} s + longest call {longest:.0f} s + margin "
              f"{dispatch.OVERDUE_MARGIN.total_seconds():.0f} s); down 60 s, every call left behind settled "
              f"{recovery:.0f} simulated seconds after the restart (was: 7200 s after the call started)")

    rows = statuses(after)
    assert rows[0][1] is AttemptStatus.COMPLETED and rows[2][1:] == (AttemptStatus.FAILED, "lost")
    assert rows[1][1] is AttemptStatus.INITIATED                # live on the provider's side: left alone
    with svc.db.begin() as session:
        answered = session.scalars(select(Attempt).order_by(Attempt.id)).first()
        assert answered is not None and answered.duration_s == 95
        recorded = set(session.scalars(select(Answer.item_id).where(Answer.attempt_id == answered.id)))
        assert recorded >= {"CONSENT", "C01"}                   # kept through the restart
        lost = session.scalars(select(Contact).order_by(Contact.id)).all()[2]
        # Retried by the policy (failed: 60 s later), as a new attempt with a new token.
        assert lost.status is ContactStatus.PENDING and lost.next_attempt_at == clock() + timedelta(seconds=60)

    # The second call ends later; the lost contact is retried once, with a new token.
    provider.known[sids[1]] = CallState(sids[1], "completed", 30)
    clock.advance(seconds=61)
    worker.reconcile()
    assert worker.dispatch() == 2                               # the lost one's retry and the break-off's
    keys = Counter(r.idempotency_key for r in provider.requests)
    assert set(keys.values()) == {1}, "no token placed twice"
    assert len(provider.requests) == 5
    worker.close()
    after.extensions["sipas"].db.dispose()


def test_after_an_outage_longer_than_the_overdue_time_the_first_round_settles_every_call(
        make_settings: Any, clock: Any, make_campaign: Any) -> None:
    settings = make_settings()
    provider = ProviderStub()
    before, worker = restart(settings, clock, provider)
    make_campaign(phones(2), app=before, window=ALWAYS, retry=RETRY)
    assert worker.dispatch() == 2
    worker.close()
    before.extensions["sipas"].db.dispose()
    first, second = (provider.calls[r.idempotency_key or ""] for r in provider.requests)
    provider.known[first] = CallState(first, "no-answer")
    del provider.known[second]
    clock.advance(minutes=30)                                   # down for half an hour
    after, worker = restart(settings, clock, provider)
    assert worker.reconcile() == 2                              # the round run at start: 0 s after the restart
    assert [s for _, s, _ in statuses(after)] == [AttemptStatus.NO_ANSWER, AttemptStatus.FAILED]
    worker.close()
    after.extensions["sipas"].db.dispose()


def test_an_override_keeps_the_fixed_wait(make_settings: Any, clock: Any, make_campaign: Any) -> None:
    settings = make_settings(stale_call_seconds=600)
    provider = ProviderStub()
    app, worker = restart(settings, clock, provider)
    make_campaign(phones(1), app=app, window=ALWAYS, retry=RETRY)
    worker.dispatch()
    sid = provider.calls[provider.requests[0].idempotency_key or ""]
    provider.known[sid] = CallState(sid, "completed", 40)
    clock.advance(seconds=599)
    assert worker.reconcile() == 0 and provider.asked == []
    clock.advance(seconds=2)
    assert worker.reconcile() == 1
    worker.close()
    app.extensions["sipas"].db.dispose()


def test_an_attempt_claimed_but_never_placed_is_placed_once_with_its_own_token(
        make_settings: Any, clock: Any, make_campaign: Any) -> None:
    settings = make_settings()
    provider = ProviderStub()
    app, worker = restart(settings, clock, provider)
    make_campaign(phones(2), app=app, window=ALWAYS, retry=RETRY)
    svc = app.extensions["sipas"]
    claimed = dispatch.claim_due(svc.db, worker.pacing, clock(), 10)   # then the worker dies before placing
    assert len(claimed) == 2 and provider.requests == []
    worker.close()
    app.extensions["sipas"].db.dispose()

    clock.advance(seconds=settings.lease_seconds + 1)
    app, worker = restart(settings, clock, provider)
    assert worker.dispatch() == 2
    assert sorted(r.idempotency_key or "" for r in provider.requests) == sorted(c.token for c in claimed)
    clock.advance(seconds=settings.lease_seconds + 1)
    assert worker.dispatch() == 0                               # placed: never again
    assert len(provider.requests) == 2
    worker.close()
    app.extensions["sipas"].db.dispose()


def test_provider_errors_in_bursts_back_off_and_never_place_a_call_twice(
        make_settings: Any, clock: Any, make_campaign: Any) -> None:
    settings = make_settings()
    provider = ProviderStub()
    app, worker = restart(settings, clock, provider)
    make_campaign(phones(4), app=app, window=ALWAYS, retry=RETRY)
    svc = app.extensions["sipas"]
    # A burst: two 5xx answers (transient) and two timeouts (unknown: the call may exist).
    provider.failures = [ProviderError("HTTP 503", kind="retryable", code="503"),
                         ProviderError("HTTP 502", kind="retryable", code="502"),
                         ProviderError("read timed out", kind="unknown", code="timeout"),
                         ProviderError("read timed out", kind="unknown", code="timeout")]
    assert worker.dispatch() == 4
    with svc.db.begin() as session:
        rows = session.execute(select(Attempt.status, Attempt.lease_until, Contact.next_attempt_at)
                               .join(Contact, Attempt.contact_id == Contact.id).order_by(Attempt.id)).all()
    # 5xx: the attempt failed and its contact waits the policy's delay (backoff), not the next round.
    assert [r[0] for r in rows[:2]] == [AttemptStatus.FAILED, AttemptStatus.FAILED]
    assert all(r[2] == clock() + timedelta(seconds=60) for r in rows[:2])
    # A timeout: still queued, left for the callbacks for UNKNOWN_LEASE before it is retried.
    assert [r[0] for r in rows[2:]] == [AttemptStatus.QUEUED, AttemptStatus.QUEUED]
    assert all(r[1] == clock() + dispatch.UNKNOWN_LEASE for r in rows[2:])

    clock.advance(seconds=30)
    assert worker.dispatch() == 0                               # nothing due yet: backing off
    clock.advance(seconds=31)
    assert worker.dispatch() == 2                               # the 5xx ones' retries, new attempts
    clock.advance(seconds=dispatch.UNKNOWN_LEASE.total_seconds())
    assert worker.dispatch() == 2                               # the timed-out ones, with the same tokens
    keys = Counter(r.idempotency_key for r in provider.requests)
    # Every attempt asked for with one key; the timed-out ones twice, and each is one call at
    # the provider (the key), which the attempt now names.
    assert sorted(keys.values()) == [1, 1, 1, 1, 2, 2]
    assert len(provider.calls) == 4
    with svc.db.begin() as session:
        named = dict(session.execute(select(Attempt.token, Attempt.provider_id)).all())
    assert all(named[key] == sid for key, sid in provider.calls.items())
    worker.close()
    app.extensions["sipas"].db.dispose()


def test_the_first_reconcile_round_runs_when_the_worker_starts(
        make_settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, worker = restart(make_settings(), clock, ProviderStub())
    ran: list[float] = []
    monkeypatch.setattr(worker, "reconcile", lambda: ran.append(time.monotonic()) or 0)
    scheduler = worker.scheduler(blocking=False)
    started = time.monotonic()
    scheduler.start()
    try:
        deadline = started + 3
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        worker.close()
        app.extensions["sipas"].db.dispose()
    assert ran and ran[0] - started < 3                          # the interval is 5 s


# ============================================================================ the web process killed mid-call

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_web(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """gunicorn in its own process group, so the master and its workers die together."""
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                            "--log-level", "warning", "ivr_service:create_app()"],
                           cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return web
        except requests.RequestException:
            time.sleep(0.1)
    os.killpg(web.pid, signal.SIGKILL)
    raise AssertionError("gunicorn did not start")


def test_the_web_process_killed_mid_call_keeps_the_answers_and_the_call_is_reconciled(
        make_settings: Any, clock: Any, make_campaign: Any, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(public_base_url=base, validate_signatures=False)
    env = {**os.environ, "SIPAS_DATABASE_URL": settings.database_url, "SIPAS_PUBLIC_BASE_URL": base,
           "SIPAS_VALIDATE_SIGNATURES": "false", "SIPAS_SECRET_KEY": "test", "SIPAS_LOG_LEVEL": "WARNING",
           "SIPAS_EXPORT_DIR": settings.export_dir}
    env.pop("TEST_DATABASE_URL", None)
    provider = ProviderStub()
    app, worker = restart(settings, clock, provider)
    svc = app.extensions["sipas"]
    web = start_web(env, port)
    try:
        make_campaign(phones(1), app=app, window=ALWAYS, retry=RETRY)
        assert worker.dispatch() == 1
        [request] = provider.requests
        token, sid = request.idempotency_key, provider.calls[request.idempotency_key or ""]

        def post(kind: str, query: str = "", **form: str) -> int:
            reply = requests.post(f"{base}/voice/{token}/{kind}{query}", timeout=10,
                                  data={"CallSid": sid, "CallStatus": "in-progress", **form})
            return reply.status_code

        assert post("answer") == 200
        assert post("gather", "?item=CONSENT", Digits="1") == 200
        assert post("gather", "?item=C01", Digits="5") == 200
        os.killpg(web.pid, signal.SIGKILL)                      # mid-call: master and workers
        web.wait(10)
        with pytest.raises(requests.ConnectionError):          # the next answer and the status callback are lost
            post("gather", "?item=C02", Digits="4")

        web = start_web(env, port)                              # a new web process on the same database
        provider.known[sid] = CallState(sid, "completed", 70)
        with svc.db.begin() as session:
            overdue = worker.overdue.of(session.get(Campaign, session.scalars(select(Campaign.id)).one()),
                                        svc.registry)
        clock.advance(seconds=overdue.total_seconds() - 1)
        assert worker.reconcile() == 0                          # not overdue yet
        clock.advance(seconds=2)
        assert worker.reconcile() == 1
        with svc.db.begin() as session:
            attempt = session.scalars(select(Attempt)).one()
            assert (attempt.status, attempt.duration_s) == (AttemptStatus.COMPLETED, 70)
            recorded = dict(session.execute(select(Answer.item_id, Answer.value)
                                            .where(Answer.attempt_id == attempt.id)).all())
            assert recorded == {"CONSENT": 1, "C01": 5}         # what was said before the kill is kept
            contact = session.scalars(select(Contact)).one()
            assert contact.status is ContactStatus.PENDING      # a break-off: resumed later by the policy
        # The provider's late callback to the new process changes nothing.
        assert requests.post(f"{base}/voice/{token}/status", timeout=10,
                             data={"CallSid": sid, "CallStatus": "completed", "CallDuration": "70"}).status_code == 204
        assert len(provider.requests) == 1
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(20)
        worker.close()
        app.extensions["sipas"].db.dispose()
