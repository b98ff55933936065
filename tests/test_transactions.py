"""The transaction feed (services/transactions.py, POST /api/v1/transactions[/batch], the
import-transactions command): validation per record, idempotence, decisions, contacts."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from ivr_service.core.programmes import draw
from ivr_service.persistence.db import Database
from ivr_service.persistence.models import AuditEntry, Campaign, Contact, ContactStatus, Transaction
from ivr_service.services import contacts, transactions
from ivr_service.services.transactions import Record

from .conftest import api_token, count, row, scalars

RETURNED = "2026-11-17T08:00:00+07:00"          # an hour before the test clock (09:00 local)


def rec(code: str = "HS-1", phone: Any = "0912345678", agency: Any = "STNMT", returned_at: Any = RETURNED,
        **extra: Any) -> Record:
    return Record(agency=agency, code=code, phone=phone, returned_at=returned_at, **extra)


def feed(app: Any, *records: Record, within: set[int] | None = None, atomic: bool = False,
         source: str = "api") -> transactions.Reported:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        return transactions.report(session, svc.clock(), list(records), source=source, within=within,
                                   atomic=atomic)


def one(app: Any, record: Record, **options: Any) -> transactions.Result:
    return feed(app, record, **options).results[0]


@pytest.fixture
def everyone(make_programme: Callable[..., int]) -> int:
    """The STNMT agency's programme inviting every transaction (fixed share 1)."""
    return make_programme(share_mode="fixed", share=1.0)


# ============================================================================ validation

@pytest.mark.parametrize(("record", "field", "message"), [
    (rec(agency="NOPE"), "agency", "unknown agency code 'NOPE'"),
    (rec(agency=None), "agency", "agency: required"),
    (rec(code=" "), "code", "code: required"),
    (rec(code="H" * 81), "code", "at most 80 characters, got 81"),
    (rec(phone="abc"), "phone", "not a phone number"),
    (rec(phone=""), "phone", "phone: required"),
    (rec(phone="024 3825 3536"), "phone", "landline: cannot receive SMS"),
    (rec(returned_at=None), "returned_at", "returned_at: required"),
    (rec(returned_at="17/11/2026 hôm qua"), "returned_at", "expected ISO 8601"),
    (rec(returned_at="2026-11-17T09:06:00+07:00"), "returned_at", "in the future"),
    (rec(procedure="x" * 201), "procedure", "at most 200 characters"),
    (rec(field="x" * 201), "field", "at most 200 characters"),
    (rec(officer="x" * 201), "officer", "at most 200 characters"),
    (Record.from_dict({"agency": "STNMT", "code": "A", "phone": "0912345678", "returned_at": RETURNED,
                       "colour": "blue"}), "colour", "unknown field"),
    (Record.from_dict(["not", "an", "object"]), "record", "expected an object"),
])
def test_an_invalid_record_gets_an_error_naming_its_field_and_nothing_is_stored(
        app: Any, everyone: int, record: Record, field: str, message: str) -> None:
    result = one(app, record)
    assert result.status == "error" and result.field == field
    assert message in (result.message or "") and result.message.startswith(f"{field}: ")  # type: ignore[union-attr]
    assert count(app, Transaction) == 0 and count(app, Contact) == 0


def test_five_minutes_of_clock_skew_are_accepted(app: Any, everyone: int) -> None:
    assert one(app, rec(returned_at="2026-11-17T09:04:59+07:00")).status == "created"


def test_an_agency_outside_the_callers_scope_answers_like_an_unknown_one(
        app: Any, make_agency: Callable[..., int], make_programme: Callable[..., int]) -> None:
    mine, other = make_agency("MINE", "UBND xã A"), make_agency("OTHER", "UBND xã B")
    make_programme(other, share_mode="fixed", share=1.0)
    outside = one(app, rec(agency="OTHER"), within={mine})
    unknown = one(app, rec(agency="GHOST"), within={mine})
    assert outside.message == "agency: unknown agency code 'OTHER'"
    assert unknown.message == "agency: unknown agency code 'GHOST'"
    assert count(app, Transaction) == 0
    assert one(app, rec(agency="OTHER"), within={other}).status == "created"


def test_a_naive_returned_at_is_read_in_the_programme_zone(app: Any, everyone: int) -> None:
    one(app, rec(returned_at="2026-11-17T08:00:00"))
    assert row(app, Transaction).returned_at == datetime(2026, 11, 17, 1, 0, tzinfo=UTC)


# ============================================================================ decisions and contacts

def test_an_invited_transaction_becomes_a_contact_of_its_period_campaign(
        app: Any, make_programme: Callable[..., int]) -> None:
    programme = make_programme(share_mode="fixed", share=0.999999, delay_minutes=90)
    result = one(app, rec(code="HS-7", phone="+84 91 234 5678", procedure="Cấp giấy chứng nhận", field="Đất đai",
                          officer="Trần Thị B"))
    assert (result.status, result.decision) == ("created", "invited")
    tx, contact, campaign = row(app, Transaction), row(app, Contact), row(app, Campaign)
    assert (tx.id, tx.phone_e164, tx.programme_id, tx.contact_id, tx.source) == (
        result.transaction_id, "+84912345678", programme, contact.id, "api")
    assert tx.officer == "Trần Thị B" and tx.decided_at == app.extensions["sipas"].clock()
    assert (contact.campaign_id, contact.transaction_code, contact.field, contact.procedure) == (
        campaign.id, "HS-7", "Đất đai", "Cấp giấy chứng nhận")
    assert (contact.phone_kind, contact.channel, contact.status) == ("mobile", "sms", ContactStatus.PENDING)
    assert contact.returned_on == date(2026, 11, 17)
    assert contact.next_attempt_at == datetime(2026, 11, 17, 2, 30, tzinfo=UTC)   # returned 01:00Z + 90 min
    assert contact.stratum_weight == pytest.approx(1 / 0.999999)
    assert (campaign.programme_id, campaign.period_start, campaign.period_end) == (
        programme, date(2026, 10, 1), date(2026, 12, 31))


def test_reporting_a_transaction_again_changes_nothing_and_returns_its_decision(app: Any, everyone: int) -> None:
    first = one(app, rec())
    before = (count(app, Transaction), count(app, Contact))
    again = one(app, rec(phone="0987654321", field="Khác"))
    assert (again.status, again.decision, again.transaction_id) == ("duplicate", "invited", first.transaction_id)
    assert (count(app, Transaction), count(app, Contact)) == before == (1, 1)
    assert row(app, Transaction).phone_e164 == "+84912345678"


def test_without_an_active_programme_transactions_are_kept_but_nobody_is_invited(
        app: Any, make_agency: Callable[..., int]) -> None:
    make_agency()
    result = one(app, rec())
    assert (result.status, result.decision) == ("created", "no_programme")
    assert row(app, Transaction).programme_id is None and count(app, Contact) == 0


def test_after_ends_on_transactions_are_not_taken(app: Any, make_programme: Callable[..., int]) -> None:
    make_programme(share_mode="fixed", share=1.0, ends_on=date(2026, 11, 17))
    assert one(app, rec("A", returned_at="2026-11-17T08:00:00+07:00")).decision == "invited"
    app.extensions["sipas"].clock.advance(days=1)
    assert one(app, rec("B", "0912000001", returned_at="2026-11-18T08:00:00+07:00")).decision == "no_programme"


def test_opted_out_numbers_are_never_invited(app: Any, everyone: int) -> None:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contacts.opt_out(session, "+84912345678", "web", svc.clock())
    assert one(app, rec()).decision == "opted_out"
    assert count(app, Contact) == 0


def test_a_number_invited_recently_by_any_agency_is_not_invited_again(
        app: Any, make_agency: Callable[..., int], make_programme: Callable[..., int]) -> None:
    make_programme(make_agency("A1", "UBND xã A"), share_mode="fixed", share=1.0, recent_days=30)
    make_programme(make_agency("A2", "UBND xã B"), share_mode="fixed", share=1.0, recent_days=30)
    assert one(app, rec("X", agency="A1")).decision == "invited"
    clock = app.extensions["sipas"].clock
    clock.advance(days=29)
    assert one(app, rec("Y", agency="A2", returned_at=clock().isoformat())).decision == "recent"
    clock.advance(days=2)                     # 31 days after the invitation
    assert one(app, rec("Z", agency="A2", returned_at=clock().isoformat())).decision == "invited"


def test_recent_days_zero_still_allows_one_contact_per_number_per_period(
        app: Any, make_programme: Callable[..., int]) -> None:
    make_programme(share_mode="fixed", share=1.0, recent_days=0)
    assert one(app, rec("A")).decision == "invited"
    assert one(app, rec("B")).decision == "recent"              # already a contact this quarter
    clock = app.extensions["sipas"].clock
    clock.current = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)
    assert one(app, rec("C", returned_at=clock().isoformat())).decision == "invited"   # next quarter
    assert count(app, Campaign) == 2


def test_a_fixed_share_invites_that_share_by_a_reproducible_draw(app: Any, make_programme: Callable[..., int],
                                                                 make_agency: Callable[..., int]) -> None:
    agency = make_agency()
    make_programme(agency, share_mode="fixed", share=0.3, seed=11, recent_days=0)
    records = [rec(f"HS-{i}", f"091{i:07d}") for i in range(1000)]
    reported = feed(app, *records)
    expected = {f"HS-{i}" for i in range(1000) if draw(11, agency, f"HS-{i}", 0.3)}
    invited = set(scalars(app, select(Transaction.code).where(Transaction.decision == "invited")))
    assert invited == expected and 240 <= len(invited) <= 360
    assert reported.decisions == {"invited": len(expected), "not_sampled": 1000 - len(expected)}
    weights = scalars(app, select(Contact.stratum_weight))
    assert len(weights) == len(expected) and weights == pytest.approx([1 / 0.3] * len(expected))


def test_seed003_share_follows_the_agencys_yearly_volume(app: Any, make_programme: Callable[..., int],
                                                         make_agency: Callable[..., int]) -> None:
    """Under 100 a year: 50 % / 0.5 expected response = everyone. From 1,000: 10 % / 0.5 = 20 %."""
    agency = make_agency()
    make_programme(agency, expected_response=0.5, recent_days=0)
    first = feed(app, *[rec(f"A-{i}", f"091{i:07d}") for i in range(50)])
    assert first.decisions == {"invited": 50}
    feed(app, *[rec(f"B-{i}", f"092{i:07d}") for i in range(1000)])   # volume now ≥ 1,000
    third = feed(app, *[rec(f"C-{i}", f"093{i:07d}") for i in range(1000)])
    expected = sum(draw(0, agency, f"C-{i}", 0.2) for i in range(1000))
    assert third.decisions["invited"] == expected and 150 <= expected <= 250
    weights = scalars(app, select(Contact.stratum_weight).where(Contact.transaction_code.like("C-%")))
    assert weights == pytest.approx([5.0] * expected)


def test_a_batch_stores_the_valid_records_and_reports_each(app: Any, everyone: int) -> None:
    reported = feed(app, rec("A", "0912000001"), rec("B", phone="nope"), rec("A", "0912000001"),
                    rec("C", "0912000001"), rec("D", "0912000002", agency="NOPE"))
    statuses = [(r.status, r.decision, r.field) for r in reported.results]
    assert statuses == [("created", "invited", None), ("error", None, "phone"), ("duplicate", "invited", None),
                        ("created", "recent", None), ("error", None, "agency")]
    assert reported.counts == {"created": 2, "duplicate": 1, "error": 2, "not_stored": 0}
    assert reported.results[2].transaction_id == reported.results[0].transaction_id
    assert sorted(scalars(app, select(Transaction.code))) == ["A", "C"] and count(app, Contact) == 1


def test_an_atomic_batch_with_an_invalid_record_stores_nothing(app: Any, everyone: int) -> None:
    reported = feed(app, rec("A"), rec("B", phone="nope"), atomic=True)
    assert [r.status for r in reported.results] == ["not_stored", "error"]
    assert count(app, Transaction) == 0 and count(app, Campaign) == 0
    assert [r.status for r in feed(app, rec("A"), rec("B", "0912000009"), atomic=True).results] == ["created"] * 2


# ============================================================================ concurrency (PostgreSQL)

def _report_in_process(url: str, codes: list[str], now: datetime) -> list[str]:
    db = Database(url)
    try:
        with db.begin() as session:
            reported = transactions.report(session, now, [rec(code, f"091{int(code[3:]):07d}") for code in codes],
                                           source="api")
        return [r.status for r in reported.results]
    finally:
        db.dispose()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="concurrent writers need PostgreSQL (SQLite serialises writers with BEGIN IMMEDIATE)")
def test_concurrent_duplicate_reports_store_one_transaction_and_one_contact(
        app: Any, everyone: int, database_url: str) -> None:
    codes = [f"HS-{i}" for i in range(200)]
    now = app.extensions["sipas"].clock()
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        runs = pool.starmap(_report_in_process, [(database_url, codes if n % 2 else codes[::-1], now)
                                                 for n in range(6)])
    created = sum(status == "created" for statuses in runs for status in statuses)
    assert created == 200 and all(s in ("created", "duplicate") for statuses in runs for s in statuses)
    assert count(app, Transaction) == 200 and count(app, Contact) == 200 and count(app, Campaign) == 1
    linked = scalars(app, select(func.count(func.distinct(Transaction.contact_id))))
    assert linked == [200]


# ============================================================================ API

API = "/api/v1"


def test_api_reports_one_transaction(app: Any, client: Any, everyone: int) -> None:
    body = {"agency": "STNMT", "code": "HS-1", "phone": "0912345678", "returned_at": RETURNED,
            "procedure": "Đăng ký đất đai", "field": "Đất đai"}
    created = client.post(f"{API}/transactions", json=body)
    assert created.status_code == 201, created.json
    assert created.json["status"] == "created" and created.json["decision"] == "invited"
    again = client.post(f"{API}/transactions", json=body)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert again.json["transaction_id"] == created.json["transaction_id"]
    bad = client.post(f"{API}/transactions", json={**body, "code": "HS-2", "phone": "0243 825 3536"})
    assert bad.status_code == 422
    assert bad.json == {"message": "phone: landline: cannot receive SMS", "field": "phone", "detail": {}}
    entry = scalars(app, select(AuditEntry).where(AuditEntry.action == "transactions_reported"))
    assert len(entry) == 2 and "0912345678" not in str(entry[0].detail)


def test_api_batch_reports_counts_and_per_record_results(app: Any, client: Any, everyone: int) -> None:
    records = [{"agency": "STNMT", "code": f"HS-{i}", "phone": f"091{i:07d}", "returned_at": RETURNED}
               for i in range(3)] + [{"agency": "STNMT", "code": "HS-X", "phone": "x", "returned_at": RETURNED}]
    response = client.post(f"{API}/transactions/batch", json={"transactions": records})
    assert response.status_code == 200, response.json
    assert response.json["counts"] == {"created": 3, "duplicate": 0, "error": 1, "not_stored": 0}
    assert response.json["results"][3] == {"index": 3, "status": "error", "field": "phone",
                                           "message": "phone: not a phone number: 'x'"}
    atomic = client.post(f"{API}/transactions/batch", json={"transactions": records, "atomic": True})
    assert atomic.json["counts"] == {"created": 0, "duplicate": 0, "error": 1, "not_stored": 3}
    too_many = client.post(f"{API}/transactions/batch", json={"transactions": [records[0]] * 1001})
    assert too_many.status_code == 422 and too_many.json["field"] == "transactions"


def test_api_needs_the_transactions_scope_and_checks_the_agency_per_record(
        app: Any, client: Any, make_agency: Callable[..., int], make_programme: Callable[..., int]) -> None:
    mine, other = make_agency("MINE", "UBND xã A"), make_agency("OTHER", "UBND xã B")
    make_programme(mine, share_mode="fixed", share=1.0)
    reader = api_token(app, ["campaigns:read"])
    body = {"agency": "MINE", "code": "HS-1", "phone": "0912345678", "returned_at": RETURNED}
    refused = client.post(f"{API}/transactions", json=body, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    feeder = {"Authorization": f"Bearer {api_token(app, ['transactions:write'], mine)}"}
    assert client.post(f"{API}/transactions", json=body, headers=feeder).status_code == 201
    outside = client.post(f"{API}/transactions", json={**body, "agency": "OTHER"}, headers=feeder)
    assert outside.status_code == 422 and outside.json["message"] == "agency: unknown agency code 'OTHER'"
    assert count(app, Transaction, Transaction.agency_id == other) == 0


def test_a_token_of_a_department_reports_for_the_agencies_below_it_and_not_beside_it(
        app: Any, client: Any, make_agency: Callable[..., int], make_programme: Callable[..., int]) -> None:
    province = make_agency("TINH", "UBND tỉnh")
    department = make_agency("SO-A", "Sở A", parent_id=province)
    commune = make_agency("XA-A", "UBND xã A", parent_id=make_agency("HUYEN-A", "UBND huyện A",
                                                                       parent_id=department))
    beside = make_agency("SO-B", "Sở B", parent_id=province)
    for agency in (commune, beside):
        make_programme(agency, share_mode="fixed", share=1.0)
    feeder = {"Authorization": f"Bearer {api_token(app, ['transactions:write'], department)}"}
    body = {"code": "HS-1", "phone": "0912345678", "returned_at": RETURNED}
    below = client.post(f"{API}/transactions", json={**body, "agency": "XA-A"}, headers=feeder)
    assert below.status_code == 201, below.json
    batch = client.post(f"{API}/transactions/batch", headers=feeder, json={"transactions": [
        {**body, "code": "HS-2", "agency": "XA-A"}, {**body, "code": "HS-3", "agency": "SO-B"},
        {**body, "code": "HS-4", "agency": "TINH"}]})
    assert [r["status"] for r in batch.json["results"]] == ["created", "error", "error"]
    assert batch.json["results"][1]["message"] == "agency: unknown agency code 'SO-B'"
    assert count(app, Transaction, Transaction.agency_id == commune) == 2
    assert count(app, Transaction, Transaction.agency_id.in_([beside, province])) == 0


# ============================================================================ CLI

def test_import_transactions_reads_vietnamese_headers_and_reports_rows(
        app: Any, everyone: int, tmp_path: Path, run_cli: Callable[..., Any], clean_db: str) -> None:
    path = tmp_path / "tra-ket-qua.csv"
    path.write_text("BÁO CÁO HỒ SƠ ĐÃ TRẢ KẾT QUẢ,,,,,\n"
                    "Mã hồ sơ,Mã đơn vị,Thủ tục,Lĩnh vực,Số điện thoại,Ngày trả kết quả\n"
                    "HS-1,STNMT,Cấp sổ đỏ,Đất đai,0912 345 678,17/11/2026 08:00\n"
                    "HS-2,STNMT,Cấp sổ đỏ,Đất đai,không có,17/11/2026 08:00\n"
                    "HS-3,STNMT,Cấp sổ đỏ,Đất đai,912345679,2026-11-17T08:30:00+07:00\n", encoding="utf-8")
    env = {"SIPAS_DATABASE_URL": clean_db, "SIPAS_SECRET_KEY": "x" * 40}
    done = run_cli("import-transactions", str(path), env=env)
    assert done.returncode == 1, done.stderr
    assert "row 4: phone: not a phone number" in done.stdout
    assert "2 created, 0 duplicate, 1 error" in done.stdout
    assert sorted(scalars(app, select(Transaction.code))) == ["HS-1", "HS-3"]
    assert set(scalars(app, select(Transaction.source))) == {"file"}
    assert row(app, Transaction, code="HS-1").returned_at == datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
    again = run_cli("import-transactions", str(path), "--atomic", env=env)
    assert "nothing stored" in again.stdout and count(app, Transaction) == 2


def test_import_transactions_reads_xlsx_with_english_headers(
        app: Any, everyone: int, tmp_path: Path, run_cli: Callable[..., Any], clean_db: str) -> None:
    path = tmp_path / "returned.xlsx"
    pd.DataFrame({"code": ["E-1", "E-2"], "agency": ["STNMT", "STNMT"], "phone": [912345678, 987654321],
                  "returned_at": [datetime(2026, 11, 17, 8, 0), datetime(2026, 11, 16, 15, 0)],
                  "officer": ["An", None]}).to_excel(path, index=False)
    done = run_cli("import-transactions", str(path), env={"SIPAS_DATABASE_URL": clean_db,
                                                          "SIPAS_SECRET_KEY": "x" * 40})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 created" in done.stdout
    assert sorted(scalars(app, select(Transaction.phone_e164))) == ["+84912345678", "+84987654321"]
    assert row(app, Transaction, code="E-2").returned_at == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def test_transactions_decided_now_are_stored_in_utc(app: Any, everyone: int) -> None:
    one(app, rec(returned_at=datetime(2026, 11, 17, 1, 0, tzinfo=UTC) - timedelta(hours=1)))
    assert row(app, Transaction).returned_at == datetime(2026, 11, 17, 0, 0, tzinfo=UTC)
