"""Issue 17 fault test: voice webhooks delivered twice and out of order, under load.

Sixty calls run at once against the app served by gunicorn (3 workers x 8 threads) on
PostgreSQL, each from its own thread, over signed HTTP requests as Twilio sends them. Every
call's traffic is faulty on purpose:

* each key press is delivered twice with the same I-Twilio-Idempotency-Token, either at
  the same moment (two threads released by a barrier) or one after the other;
* some presses are retried with a new token, as Twilio does after a timeout;
* the "completed" status callback is duplicated, and on a quarter of the calls it comes
  before the last key press has been applied;
* "ringing" and "in-progress" callbacks arrive after "completed";
* status callbacks name an unknown call attempt (404) and an unknown CallSid (409).

Afterwards the database must show each answer once per (attempt, item) with the key
pressed, the interview states and contact dispositions the keys imply, no attempt
reopened, and progress counts equal to the raw rows. Nothing waits on a timer: requests
are ordered, or released together by barriers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import requests
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from ivr_service import create_app
from ivr_service.persistence.models import Answer, Attempt, Contact, Interview, OptOut
from ivr_service.services import campaigns, voice
from ivr_service.settings import Settings

from .conftest import ROOT, answers, count, hangs_up, new_sid, row, snapshot
from .test_multi_worker import free_port, short_questionnaire, wait_for_web

on_postgresql = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="concurrent webhooks in several gunicorn processes need PostgreSQL's row locks; SQLite "
           "serialises writers with one file lock (the same faults one request at a time are in "
           "test_voice_webhooks.py and at the end of this module)")

CALLS = 60
ITEMS = ("CONSENT", "C01", "C02", "C03", "OVERALL")
KINDS = ("together", "one_after_other", "completed_first", "refused", "hung_up")


@pytest.fixture
def server(clean_db: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    questionnaires = tmp_path / "questionnaires"
    short_questionnaire(questionnaires)
    port = free_port()
    env = {**os.environ, "SIPAS_DATABASE_URL": clean_db, "SIPAS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "SIPAS_QUESTIONNAIRE_DIR": str(questionnaires), "SIPAS_LOG_LEVEL": "ERROR",
           "SIPAS_EXPORT_DIR": str(tmp_path / "exports")}
    env.pop("TEST_DATABASE_URL", None)
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "3", "--threads", "8",
                            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "ivr_service:create_app()"],
                           cwd=ROOT, env=env)
    app = create_app(Settings.from_env(env))
    try:
        yield {"app": app, "base": f"http://127.0.0.1:{port}", "port": port}
    finally:
        app.extensions["sipas"].db.dispose()
        web.terminate()
        try:
            web.wait(15)
        except subprocess.TimeoutExpired:
            web.kill()


@dataclass
class Wire:
    """Signed webhook requests over HTTP; every response is kept for the final checks."""

    base: str
    secret: str  # the simulator's development token: this app signs and checks with it
    results: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> requests.Response:
        url = self.base + path
        signature = RequestValidator(self.secret).compute_signature(url, form)
        with requests.Session() as http:  # one connection per request: threads never share one
            response = http.post(url, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})},
                                 timeout=60)
        kind = path.split("/")[3].split("?")[0]
        with self.lock:
            self.results.append((kind, response.status_code))
        return response

    def together(self, *sends: Callable[[], requests.Response]) -> list[requests.Response]:
        """Send several requests at the same moment (released together by a barrier)."""
        barrier = threading.Barrier(len(sends))

        def go(send: Callable[[], requests.Response]) -> requests.Response:
            barrier.wait()
            return send()
        with ThreadPoolExecutor(len(sends)) as pool:
            return list(pool.map(go, sends))


def asked(response: requests.Response) -> str | None:
    assert response.status_code == 200, response.text
    gather = ElementTree.fromstring(response.content).find("./Gather")
    return None if gather is None else parse_qs(urlsplit(gather.get("action", "")).query)["item"][0]


@dataclass
class Script:
    """One call's keys and faults; ``kind`` is one of KINDS."""

    token: str
    kind: str
    keys: dict[str, str]
    sid: str = field(default_factory=new_sid)

    def run(self, wire: Wire, all_started: threading.Barrier) -> None:
        answer = {"CallSid": self.sid, "CallStatus": "in-progress"}
        status = f"/voice/{self.token}/status"
        wire.post(status, {"CallSid": self.sid, "CallStatus": "ringing"})
        all_started.wait()  # every call is live before any is answered: the load comes at once
        first = wire.together(lambda: wire.post(f"/voice/{self.token}/answer", answer),
                              lambda: wire.post(f"/voice/{self.token}/answer", answer))
        assert {asked(r) for r in first} == {"CONSENT"}
        for number, item in enumerate(self.keys):
            form = {**answer, "Digits": self.keys[item]}
            path = f"/voice/{self.token}/gather?item={item}"
            key = {"I-Twilio-Idempotency-Token": uuid.uuid4().hex}
            last = number == len(self.keys) - 1
            if last and self.kind == "completed_first":
                # The caller hung up on the last key: the call's end is reported first.
                wire.together(lambda: self.end(wire), lambda: self.end(wire))
            send = partial(wire.post, path, form, key)
            replies = wire.together(send, send) if self.kind in ("together", "completed_first") else [send(), send()]
            if item == "C02":  # the same key retried with a new token, as after a timeout
                replies.append(wire.post(path, form, {"I-Twilio-Idempotency-Token": uuid.uuid4().hex}))
            assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        if self.kind != "completed_first":
            wire.together(lambda: self.end(wire), lambda: self.end(wire))
        for late in ("ringing", "in-progress"):
            response = wire.post(status, {"CallSid": self.sid, "CallStatus": late})
            assert response.status_code == 204, response.text
        unknown = wire.post(status, {"CallSid": new_sid(), "CallStatus": "completed", "CallDuration": "1"})
        assert unknown.status_code == 409 and "CallSid" in unknown.text

    def end(self, wire: Wire) -> requests.Response:
        response = wire.post(f"/voice/{self.token}/status",
                             {"CallSid": self.sid, "CallStatus": "completed", "CallDuration": "60"})
        assert response.status_code == 204, response.text
        return response


def script_for(i: int, token: str) -> Script:
    kind = KINDS[i % len(KINDS)]
    keys = {item: str(1 + (i + n) % 5) for n, item in enumerate(ITEMS)}
    keys["CONSENT"] = "9" if kind == "refused" else "1"
    if kind == "refused":
        keys = {"CONSENT": "9"}
    elif kind == "hung_up":
        keys = {k: keys[k] for k in ("CONSENT", "C01", "C02")}
    return Script(token, kind, keys)


@on_postgresql
def test_webhooks_twice_and_out_of_order_under_load_record_each_answer_once(
        server: dict[str, Any], make_campaign: Any, claim: Any) -> None:
    app = server["app"]
    svc = app.extensions["sipas"]
    campaign_id = make_campaign(
        [f"091{i:07d}" for i in range(CALLS)], app=app, questionnaire="sipas-short",
        window={"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None},
        retry={"max_attempts": 3, "min_gap_s": 0, "delays": {k: 3600 for k in (
            "busy", "no_answer", "failed", "machine", "partial", "break_off", "canceled")}})
    claimed = claim(app=app)
    assert len(claimed) == CALLS
    scripts = [script_for(i, c.token) for i, c in enumerate(claimed)]
    attempt_of = {c.token: c.attempt_id for c in claimed}
    wait_for_web(server["port"])

    wire = Wire(server["base"], svc.settings.webhook_auth_token)
    started = datetime.now(UTC)
    all_started = threading.Barrier(CALLS, timeout=120)  # a call that fails early must not hang the rest
    with ThreadPoolExecutor(CALLS) as pool:
        for future in [pool.submit(s.run, wire, all_started) for s in scripts]:
            future.result()
    elapsed = (datetime.now(UTC) - started).total_seconds()
    stray = wire.post(f"/voice/{uuid.uuid4().hex}/status", {"CallSid": new_sid(), "CallStatus": "completed"})
    assert stray.status_code == 404 and "unknown call attempt" in stray.text

    codes = Counter(code for _kind, code in wire.results)
    print(f"\n{CALLS} calls, {len(wire.results)} webhook requests in {elapsed:.1f} s: "
          f"{dict(Counter(kind for kind, _code in wire.results))}, status codes {dict(codes)}")
    # 2xx everywhere but the documented answers for a stranger's CallSid (409) and attempt (404).
    assert codes[409] == CALLS and codes[404] == 1
    assert set(codes) <= {200, 204, 404, 409}

    with svc.db.begin() as session:
        stored = session.execute(select(Answer.attempt_id, Answer.item_id, Answer.digits, Answer.value,
                                        Answer.status)).all()
        per_key = Counter((a, item) for a, item, *_ in stored)
        assert [k for k, n in per_key.items() if n > 1] == [], "an answer was stored twice"
        got = {(a, item): (digits, value, status) for a, item, digits, value, status in stored}
        expected = {}
        for s in scripts:
            for item, key in s.keys.items():
                value = (0 if key == "9" else 1) if item == "CONSENT" else int(key)
                expected[(attempt_of[s.token], item)] = (key, value, "answered")
        assert got == expected

        attempts = {a.token: a for a in session.scalars(select(Attempt))}
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        interviews = {i.contact_id: i for i in session.scalars(select(Interview))}
        outcomes = {"together": ("completed", "complete", "done", "1.1"),
                    "one_after_other": ("completed", "complete", "done", "1.1"),
                    "completed_first": ("completed", "complete", "done", "1.1"),
                    "refused": ("refused", "refused", "done", "2.11"),
                    "hung_up": ("partial", "in_progress", "pending", None)}  # 2 of 4 items
        for s in scripts:
            attempt = attempts[s.token]
            contact = contacts[attempt.contact_id]
            seen = (attempt.outcome, interviews[contact.id].status.value, contact.status.value, contact.disposition)
            assert seen == outcomes[s.kind], (s.kind, s.keys)
            # Never reopened by the late ringing / in-progress callbacks.
            assert (attempt.status.value, attempt.duration_s, attempt.provider_id) == ("completed", 60, s.sid)
            assert attempt.ended_at is not None and contact.attempt_count == 1
        opted_out = set(session.scalars(select(OptOut.phone_e164)))
        assert opted_out == {contacts[attempts[s.token].contact_id].phone_e164
                             for s in scripts if s.kind == "refused"}

        progress = campaigns.progress(session, campaign_id, datetime.now(UTC))
        raw_status = Counter(c.status.value for c in contacts.values())
        raw_disposition = Counter(c.disposition for c in contacts.values() if c.disposition)
        raw_attempts = Counter(a.status.value for a in attempts.values())
        assert {k: v for k, v in progress.by_status.items() if v} == dict(raw_status)
        assert progress.by_disposition == dict(raw_disposition)
        assert {k: v for k, v in progress.attempts_by_status.items() if v} == dict(raw_attempts)
        assert progress.contacts == CALLS and progress.attempts == CALLS
        assert progress.calls_in_progress == 0
        assert session.scalar(select(func.count()).select_from(Interview)) == CALLS


# ============================================================================ regressions, one request at a time

def blocked_on_a_lock(app: Any) -> bool:
    """Whether another connection is waiting for a row lock (the duplicate request)."""
    with app.extensions["sipas"].db.engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND datname = current_database()")))


def first_holds_the_lock_while_second_waits(app: Any, first: Callable[[Any], object],
                                            second: Callable[[Any], object]) -> object:
    """Run ``first`` in a transaction, start ``second`` in another while the first still
    holds the attempt's row lock, commit the first once the second is blocked behind it,
    and return what the second returned (or raised)."""
    svc = app.extensions["sipas"]
    outcome: list[object] = []

    def duplicate() -> None:
        try:
            with svc.db.begin() as session:
                outcome.append(second(session))
        except Exception as exc:  # reported to the test below
            outcome.append(exc)

    with svc.db.begin() as session:
        first(session)
        thread = threading.Thread(target=duplicate)
        thread.start()
        while not blocked_on_a_lock(app):   # the duplicate's statement has started and waits
            assert thread.is_alive(), outcome
    thread.join(30)
    assert not thread.is_alive() and len(outcome) == 1
    return outcome[0]


@on_postgresql
@pytest.mark.parametrize("webhook", ["answer", "gather"])
def test_a_duplicate_waiting_for_the_lock_sees_what_the_first_request_stored(app: Any, call: Any,
                                                                             webhook: str) -> None:
    """Regression: the duplicate read the interview and answers as they were before the lock
    wait, so it created a second interview or stored the key again (a unique violation, 500)."""
    svc = app.extensions["sipas"]
    if webhook == "answer":
        def send(session: Any) -> object:
            return voice.answer_call(session, svc.registry, call.token, call.sid, None, svc.clock())
    else:
        call.answer()
        call.press("CONSENT", "1")

        def send(session: Any) -> object:
            return voice.gather(session, svc.registry, call.token, call.sid, "C01", "4", svc.clock(),
                                request_key="same-delivery")
    second = first_holds_the_lock_while_second_waits(app, send, send)
    assert isinstance(second, voice.VoiceReply), second
    assert second.item is not None and second.item.id == ("CONSENT" if webhook == "answer" else "C02")
    assert count(app, Interview) == 1
    assert answers(app) == ({} if webhook == "answer" else {"CONSENT": (1, "answered", "1"),
                                                              "C01": (4, "answered", "4")})


def test_the_last_key_applied_after_the_call_ended_still_completes_the_interview(app: Any, call: Any) -> None:
    """Regression: the press after "completed" was ignored, losing the last answer."""
    call.survey({"CONSENT": "1"}, stop_before="OVERALL")
    call.status("completed", CallDuration="80")
    assert row(app, Attempt).outcome == "partial" and row(app, Contact).status.value == "pending"
    reply = call.press("OVERALL", "5")
    assert hangs_up(reply)
    assert answers(app)["OVERALL"] == (5, "answered", "5")
    attempt, contact = row(app, Attempt), row(app, Contact)
    assert (attempt.status.value, attempt.outcome, attempt.duration_s) == ("completed", "completed", 80)
    assert (contact.status.value, contact.disposition, contact.next_attempt_at) == ("done", "1.1", None)
    assert row(app, Interview).status.value == "complete"
    before = snapshot(app)
    call.press("OVERALL", "5")                      # delivered again
    call.status("completed", CallDuration="80")
    call.status("ringing")
    assert snapshot(app) == before


def test_silence_or_an_invalid_key_after_the_call_ended_changes_nothing(app: Any, call: Any) -> None:
    call.survey({"CONSENT": "1"}, stop_before="C02")
    call.status("completed", CallDuration="20")
    before = snapshot(app)
    call.press("C02", None)
    call.press("C02", "7")
    assert snapshot(app) == before


def test_a_late_key_does_not_count_once_the_contact_is_called_again(app: Any, call: Any, clock: Any,
                                                                   claim: Any) -> None:
    call.survey({"CONSENT": "1"}, stop_before="C02")
    call.status("completed", CallDuration="20")
    clock.advance(days=1)
    assert len(claim()) == 1                        # the second attempt is under way
    before = snapshot(app)
    call.press("C02", "4")
    assert snapshot(app) == before


def test_a_late_key_after_a_call_that_failed_does_not_count(app: Any, call: Any) -> None:
    call.answer()
    call.press("CONSENT", "1")
    call.status("failed", ErrorCode="31005")
    before = snapshot(app)
    call.press("C01", "4")
    assert snapshot(app) == before
