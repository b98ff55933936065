"""The transaction intake (services/intake.py, POST /api/v1/transactions/intake and GET
…/intake/<id>): a record accepted at once, decided by the worker in batches exactly as
the direct route decides it, and readable by its sender."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from ivr_service.persistence.db import Database
from ivr_service.persistence.models import AuditEntry, Contact, Transaction, TransactionIntake
from ivr_service.services import intake, retention
from ivr_service.services.audit import Actor
from ivr_service.worker import Worker

from .conftest import api_token, count, scalars

API = "/api/v1/transactions"
RETURNED = "2026-11-17T08:00:00+07:00"          # an hour before the test clock (09:00 local)
BODY = {"agency": "STNMT", "code": "HS-1", "phone": "0912345678", "returned_at": RETURNED,
        "procedure": "Đăng ký đất đai", "field": "Đất đai"}


@pytest.fixture
def everyone(make_programme: Callable[..., int]) -> int:
    """The STNMT agency's programme inviting every transaction (fixed share 1)."""
    return make_programme(share_mode="fixed", share=1.0)


def drain(app: Any) -> int:
    svc = app.extensions["sipas"]
    return intake.drain(svc.db, svc.clock)


def hand_in(client: Any, body: Any, **kwargs: Any) -> int:
    response = client.post(f"{API}/intake", json=body, **kwargs)
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    assert response.headers["Location"] == f"{API}/intake/{response.json['id']}"
    return int(response.json["id"])


def outcome(client: Any, intake_id: int, **kwargs: Any) -> Any:
    response = client.get(f"{API}/intake/{intake_id}", **kwargs)
    assert response.status_code == 200, response.json
    return response.json


# ============================================================================ accepted, then decided

def test_a_record_handed_in_is_stored_at_once_and_decided_by_the_worker_as_the_direct_route_decides(
        app: Any, client: Any, everyone: int, clock: Any) -> None:
    received = clock()
    first = hand_in(client, BODY)
    queued = outcome(client, first)
    assert queued["status"] == "queued" and "result" not in queued
    assert datetime.fromisoformat(queued["received_at"]) == received
    assert count(app, Transaction) == 0 and count(app, TransactionIntake) == 1

    clock.advance(seconds=2)
    assert Worker(app).intake() == 1          # the worker's job
    decided = outcome(client, first)
    assert decided["status"] == "decided" and datetime.fromisoformat(decided["decided_at"]) == clock()
    assert decided["result"]["status"] == "created" and decided["result"]["decision"] == "invited"
    stored = scalars(app, select(Transaction))[0]
    assert stored.id == decided["result"]["transaction_id"] and stored.source == "api"
    assert stored.received_at == received and stored.decided_at == clock()    # receipt, then decision
    assert stored.contact_id is not None and count(app, Contact) == 1
    # Decided: the record and its number are gone from the intake; the outcome stays.
    row = scalars(app, select(TransactionIntake))[0]
    assert row.record is None and row.phone_e164 is None and row.outcome == decided["result"]

    # The same dossier again: a duplicate with the stored decision, as on the direct route.
    again = hand_in(client, BODY)
    assert drain(app) == 1
    assert outcome(client, again)["result"] == {"status": "duplicate", "decision": "invited",
                                               "transaction_id": stored.id}
    direct = client.post(API, json=BODY)
    assert direct.status_code == 200 and direct.json["transaction_id"] == stored.id
    assert count(app, Transaction) == 1 and count(app, Contact) == 1
    # Audited as the caller, by counts: no number.
    entries = scalars(app, select(AuditEntry).where(AuditEntry.action == "transactions_reported"))
    assert len(entries) == 3 and entries[0].actor.startswith("token:") and entries[0].actor.endswith(" tests")
    assert {e.actor for e in entries} == {entries[0].actor} and entries[0].address == "127.0.0.1"
    assert all("0912345678" not in str(e.detail) for e in entries)


def test_many_records_from_several_callers_are_decided_in_batches_in_the_order_received(
        app: Any, client: Any, make_agency: Callable[..., int], make_programme: Callable[..., int]) -> None:
    mine, other = make_agency("MINE", "UBND xã A"), make_agency("OTHER", "UBND xã B")
    for agency in (mine, other):
        make_programme(agency, share_mode="fixed", share=1.0)
    tokens = {code: {"Authorization": f"Bearer {api_token(app, ['transactions:write'], agency)}"}
              for code, agency in (("MINE", mine), ("OTHER", other))}
    ids = []
    for i in range(25):
        agency = "MINE" if i % 3 else "OTHER"
        ids.append(hand_in(client, {**BODY, "agency": agency, "code": f"HS-{i}", "phone": f"091{i:07d}"},
                           headers=tokens[agency]))
    svc = app.extensions["sipas"]
    assert intake.drain(svc.db, svc.clock, batch=10) == 25       # three rounds: 10, 10, 5
    results = [outcome(client, i, headers=tokens["MINE" if n % 3 else "OTHER"])["result"]
               for n, i in enumerate(ids)]
    assert [r["status"] for r in results] == ["created"] * 25
    assert count(app, Transaction, Transaction.agency_id == mine) == 16
    assert count(app, Transaction, Transaction.agency_id == other) == 9
    assert drain(app) == 0


# ============================================================================ refused at once, or at the decision

@pytest.mark.parametrize(("body", "field", "message"), [
    ({**BODY, "phone": "0243 825 3536"}, "phone", "phone: landline: cannot receive SMS"),
    ({**BODY, "phone": None}, "phone", "phone: required"),
    ({**BODY, "code": "H" * 81}, "code", "code: at most 80 characters, got 81"),
    ({**BODY, "code": "HS\u00001"}, "code", "code: control character U+0000 at position 3"),
    ({**BODY, "returned_at": "hôm qua"}, "returned_at", "returned_at: expected ISO 8601"),
    ({**BODY, "agency": " "}, "agency", "agency: required"),
    ({**BODY, "officer": "x" * 201}, "officer", "officer: at most 200 characters, got 201"),
    ({**BODY, "colour": "blue"}, "colour", "colour: unknown field"),
    ({**BODY, "phone": 912345678.5}, "phone", "phone: expected text, got float"),
    (["not", "an", "object"], "record", "record: expected an object"),
])
def test_a_record_failing_a_check_that_needs_no_lookup_is_refused_at_once_and_nothing_is_queued(
        app: Any, client: Any, everyone: int, body: Any, field: str, message: str) -> None:
    response = client.post(f"{API}/intake", json=body)
    assert response.status_code == 422
    assert response.json["field"] == field and response.json["message"].startswith(message)
    assert count(app, TransactionIntake) == 0


def test_the_agency_scope_and_a_future_return_are_checked_at_the_decision_against_the_receipt(
        app: Any, client: Any, make_agency: Callable[..., int], make_programme: Callable[..., int],
        clock: Any) -> None:
    department = make_agency("SO-A", "Sở A")
    below = make_agency("XA-A", "UBND xã A", parent_id=department)
    beside = make_agency("SO-B", "Sở B")
    for agency in (below, beside):
        make_programme(agency, share_mode="fixed", share=1.0)
    feeder = {"Authorization": f"Bearer {api_token(app, ['transactions:write'], department)}"}
    received = clock()
    mine = hand_in(client, {**BODY, "agency": "XA-A"}, headers=feeder)
    outside = hand_in(client, {**BODY, "agency": "SO-B", "code": "HS-2"}, headers=feeder)
    # 09:04 local is within the five minutes' skew of the receipt, 09:06 is not; decided
    # half an hour later, both would be in the past.
    skewed = hand_in(client, {**BODY, "agency": "XA-A", "code": "HS-3", "phone": "0912000003",
                              "returned_at": "2026-11-17T09:04:00+07:00"}, headers=feeder)
    future = hand_in(client, {**BODY, "agency": "XA-A", "code": "HS-4", "phone": "0912000004",
                              "returned_at": "2026-11-17T09:06:00+07:00"}, headers=feeder)
    clock.advance(minutes=30)
    assert drain(app) == 4
    assert outcome(client, mine, headers=feeder)["result"]["status"] == "created"
    assert outcome(client, outside, headers=feeder)["result"] == {
        "status": "error", "field": "agency", "message": "agency: unknown agency code 'SO-B'"}
    assert outcome(client, skewed, headers=feeder)["result"]["status"] == "created"
    refused = outcome(client, future, headers=feeder)["result"]
    assert refused["status"] == "error" and refused["field"] == "returned_at"
    assert f"is after its receipt ({received.astimezone(UTC).isoformat()})" in refused["message"]
    assert count(app, Transaction, Transaction.agency_id == beside) == 0 and count(app, Transaction) == 2


def test_only_the_sender_reads_an_outcome_and_it_is_kept_seven_days(
        app: Any, client: Any, everyone: int, clock: Any) -> None:
    sent = hand_in(client, BODY)
    stranger = {"Authorization": f"Bearer {api_token(app, ['transactions:write'])}"}
    for intake_id, headers in ((sent, stranger), (sent + 1, {})):
        missing = client.get(f"{API}/intake/{intake_id}", headers=headers)
        assert missing.status_code == 404 and missing.json["message"] == f"intake record {intake_id} not found"
    reader = {"Authorization": f"Bearer {api_token(app, ['campaigns:read'])}"}
    assert client.get(f"{API}/intake/{sent}", headers=reader).status_code == 403
    assert client.post(f"{API}/intake", json=BODY, headers=reader).status_code == 403
    assert client.post(f"{API}/intake", json=BODY, auth=False).status_code == 401

    drain(app)
    clock.advance(days=7)
    drain(app)
    assert outcome(client, sent)["status"] == "decided"
    clock.advance(seconds=1)
    drain(app)
    assert client.get(f"{API}/intake/{sent}").status_code == 404
    assert count(app, TransactionIntake) == 0 and count(app, Transaction) == 1


# ============================================================================ privacy and failures

def test_an_erasure_request_decides_the_numbers_queued_records_as_refused(
        app: Any, client: Any, everyone: int) -> None:
    queued = hand_in(client, BODY)
    other = hand_in(client, {**BODY, "code": "HS-2", "phone": "0912000002"})
    svc = app.extensions["sipas"]
    key = "k" * 32
    with svc.db.begin() as session:
        held = retention.holdings(session, Actor("cli:test"), "0912 345 678", "asked", svc.clock(), key)
        assert held.transactions == 1
        erased = retention.erase(session, Actor("cli:test"), "0912 345 678", "asked", svc.clock(), key)
    assert erased.transactions == 1
    assert outcome(client, queued)["result"] == {"status": "error", "field": "phone",
                                                "message": f"phone: {intake.ERASED}"}
    assert drain(app) == 1                                     # the other number's record only
    assert outcome(client, other)["result"]["status"] == "created"
    assert scalars(app, select(Transaction.phone_e164)) == ["+84912000002"]


def test_a_record_the_database_refuses_gets_an_error_outcome_and_the_others_are_decided(
        app: Any, client: Any, everyone: int, caplog: Any) -> None:
    svc = app.extensions["sipas"]
    with svc.db.engine.begin() as conn:     # a check the service does not know of (a DBA's constraint)
        if conn.dialect.name == "postgresql":
            conn.execute(text("CREATE OR REPLACE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                              "IF NEW.code = 'POISON' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END "
                              "$$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON transactions FOR EACH ROW "
                              "EXECUTE FUNCTION poison()"))
        else:
            conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON transactions WHEN NEW.code = 'POISON' "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    try:
        good = [hand_in(client, {**BODY, "code": f"HS-{i}", "phone": f"091200000{i}"}) for i in range(3)]
        bad = hand_in(client, {**BODY, "code": "POISON", "phone": "0912000009"})
        assert drain(app) == 4
        assert [outcome(client, i)["result"]["status"] for i in good] == ["created"] * 3
        assert outcome(client, bad)["result"] == {"status": "error", "field": "record", "message": intake.FAILED}
        assert count(app, Transaction) == 3 and count(app, Contact) == 3
        assert f"record {bad} could not be decided" in caplog.text and "0912000009" not in caplog.text
        assert drain(app) == 0                                 # nothing left to block the queue
    finally:
        with svc.db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER poison" + (" ON transactions" if conn.dialect.name == "postgresql"
                                                       else "")))


# ============================================================================ several workers (PostgreSQL)

def _drain_in_process(url: str, now: datetime, start: Any) -> int:
    db = Database(url)
    try:
        start.wait()           # all at once
        return intake.drain(db, lambda: now, batch=40)
    finally:
        db.dispose()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="concurrent workers need PostgreSQL (SQLite runs one worker)")
def test_workers_draining_side_by_side_decide_each_record_once(
        app: Any, everyone: int, database_url: str) -> None:
    svc = app.extensions["sipas"]
    caller = intake.Caller("token", 1, "tests", (None,))
    now = svc.clock()
    with svc.db.begin() as session:
        # 300 records, 60 of them the same dossiers again.
        for i in range(300):
            code = i % 240
            intake.accept(session, {**BODY, "code": f"HS-{code}", "phone": f"091{code:07d}"}, caller, now)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(4) as pool:
        start = manager.Barrier(4)
        decided = pool.starmap(_drain_in_process, [(database_url, now + timedelta(seconds=1), start)] * 4)
    assert sum(decided) == 300          # each record decided by one worker only
    outcomes = scalars(app, select(TransactionIntake.outcome).order_by(TransactionIntake.id))
    assert len(outcomes) == 300 and all(o is not None for o in outcomes)
    assert sorted(o["status"] for o in outcomes).count("created") == 240
    assert count(app, Transaction) == 240 and count(app, Contact) == 240
    by_code = {o["transaction_id"] for o in outcomes}
    assert len(by_code) == 240


# ============================================================================ the backlog, for operators

def test_the_metrics_show_the_backlog_and_how_long_its_oldest_record_waited(
        app: Any, client: Any, everyone: int, clock: Any) -> None:
    def scraped() -> dict[str, float]:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {app.config['TEST_API_TOKEN']}"})
        assert response.status_code == 200
        return {s.name: s.value for f in text_string_to_metric_families(response.get_data(as_text=True))
                for s in f.samples if s.name.startswith("sipas_transaction_intake")}

    assert scraped() == {"sipas_transaction_intake_queued": 0.0, "sipas_transaction_intake_oldest_seconds": 0.0}
    hand_in(client, BODY)
    clock.advance(seconds=30)
    hand_in(client, {**BODY, "code": "HS-2", "phone": "0912000002"})
    clock.advance(seconds=15)
    assert scraped() == {"sipas_transaction_intake_queued": 2.0, "sipas_transaction_intake_oldest_seconds": 45.0}
    drain(app)
    assert scraped() == {"sipas_transaction_intake_queued": 0.0, "sipas_transaction_intake_oldest_seconds": 0.0}
