"""JSON API /api/v1 through the Flask test client: OpenAPI document, agencies, campaigns,
frame upload and sampling report, lifecycle actions, progress, scores and exports."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select

from ivr_service.persistence.models import AttemptStatus, Campaign, Contact, Stratum

from .conftest import ROOT, count, scalars

DEMO_FRAME = ROOT / "config" / "demo" / "transactions.csv"
CRITERIA_I_IV = [f"C{i:02d}" for i in range(1, 14)]
API = "/api/v1"


# --------------------------------------------------------------------------- helpers

def upload(client: Any, campaign_id: int, content: bytes, filename: str = "danh-sach.csv", **form: str) -> Any:
    data = {"file": (io.BytesIO(content), filename), **form}
    return client.post(f"{API}/campaigns/{campaign_id}/frame", data=data, content_type="multipart/form-data")


def act(client: Any, campaign_id: int, action: str) -> Any:
    reason = {"reason": "kiểm thử / a test"} if action in ("pause", "cancel") else {}
    return client.post(f"{API}/campaigns/{campaign_id}/actions", json={"action": action, **reason})


def campaign_phones(app: Any, campaign_id: int) -> set[str]:
    return set(scalars(app, select(Contact.phone_e164).where(Contact.campaign_id == campaign_id)))


# ============================================================================ OpenAPI

def test_openapi_document_lists_the_api_paths_and_no_webhooks(client: Any) -> None:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.json
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "SIPAS survey service"
    paths = spec["paths"]
    expected = {
        f"{API}/agencies": {"get", "post"},
        f"{API}/campaigns": {"get", "post"},
        f"{API}/campaigns/{{campaign_id}}": {"get", "patch"},
        f"{API}/campaigns/{{campaign_id}}/progress": {"get"},
        f"{API}/campaigns/{{campaign_id}}/scores": {"get"},
        f"{API}/campaigns/{{campaign_id}}/frame": {"post"},
        f"{API}/campaigns/{{campaign_id}}/actions": {"post"},
        f"{API}/campaigns/{{campaign_id}}/exports": {"post"},
        f"{API}/campaigns/{{campaign_id}}/exports/{{name}}": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert all(path.startswith(API + "/") for path in paths)
    assert not [p for p in paths if "/voice" in p or "healthz" in p]
    frame_body = paths[f"{API}/campaigns/{{campaign_id}}/frame"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in frame_body
    action_schema = spec["components"]["schemas"]["ActionIn"]["properties"]["action"]
    assert set(action_schema["enum"]) == {"start", "pause", "resume", "cancel"}
    scores_params = {p["name"]: p for p in paths[f"{API}/campaigns/{{campaign_id}}/scores"]["get"]["parameters"]}
    assert set(scores_params["aggregation"]["schema"]["enum"]) == {"mean_of_criteria", "pooled"}


# ============================================================================ agencies

def test_create_and_list_agencies(client: Any, clock: Any) -> None:
    assert client.get(f"{API}/agencies").json == []
    first = client.post(f"{API}/agencies", json={"code": "STNMT", "name": "Sở Tài nguyên và Môi trường"})
    assert first.status_code == 201
    assert first.json["code"] == "STNMT" and first.json["name"] == "Sở Tài nguyên và Môi trường"
    assert datetime.fromisoformat(first.json["created_at"]) == clock()
    second = client.post(f"{API}/agencies", json={"code": "SNV", "name": "Sở Nội vụ",
                                                  "sample_rule": {"kind": "fixed", "n": 40}})
    assert second.status_code == 201 and second.json["sample_rule"] == {"kind": "fixed", "n": 40}
    listed = client.get(f"{API}/agencies").json
    assert [(a["id"], a["code"]) for a in listed] == [(first.json["id"], "STNMT"), (second.json["id"], "SNV")]


def test_agency_validation_names_the_problem(client: Any, make_agency: Any) -> None:
    make_agency("STNMT")
    for code in ("STNMT", "  STNMT "):                  # codes are compared after trimming
        duplicate = client.post(f"{API}/agencies", json={"code": code, "name": "Khác"})
        assert duplicate.status_code == 409 and "'STNMT'" in duplicate.json["message"]
    blank = client.post(f"{API}/agencies", json={"code": "   ", "name": "Sở"})
    assert blank.status_code == 400 and "code" in blank.json["message"]
    missing = client.post(f"{API}/agencies", json={"code": "X"})
    assert missing.status_code == 422 and "name" in missing.json["detail"]["json"]
    bad_rule = client.post(f"{API}/agencies", json={"code": "X", "name": "Sở", "sample_rule": {"kind": "guess"}})
    assert bad_rule.status_code == 400 and "sample_rule" in bad_rule.json["message"]
    unknown_key = client.post(f"{API}/agencies", json={"code": "X", "name": "Sở", "sample_rule": {"size": 3}})
    assert unknown_key.status_code == 400 and "size" in unknown_key.json["message"]
    assert [a["code"] for a in client.get(f"{API}/agencies").json] == ["STNMT"]


# ============================================================================ campaigns

def test_create_campaign_with_defaults_and_read_it_back(client: Any, clock: Any, make_agency: Any) -> None:
    agency_id = make_agency()
    response = client.post(f"{API}/campaigns", json={"agency_id": agency_id, "name": " Quý 4 "})
    assert response.status_code == 201
    body = response.json
    assert body["name"] == "Quý 4" and body["status"] == "draft" and body["questionnaire_key"] == "sipas-2024"
    assert body["window"] == {"timezone": "Asia/Ho_Chi_Minh"} and body["language"] == "vi"
    assert body["sample_seed"] is None and body["started_at"] is None
    assert datetime.fromisoformat(body["created_at"]) == clock()
    assert client.get(f"{API}/campaigns/{body['id']}").json == body
    assert client.get(f"{API}/campaigns").json == [body]
    missing = client.get(f"{API}/campaigns/999")
    assert missing.status_code == 404 and "999" in missing.json["message"]


@pytest.mark.parametrize("extra, status, words", [
    ({"agency_id": 999}, 404, "agency 999"),
    ({"questionnaire": "sipas-1999"}, 400, "sipas-1999"),
    ({"window": {"parts": [["17:00", "08:00"]]}}, 400, "calling window"),
    ({"window": {"parts": [["08:00", "25:00"]]}}, 400, "calling window"),
    ({"window": {"weekdays": ["monday"]}}, 400, "calling window"),
    ({"window": {"closed_dates": ["30/04/2026"]}}, 400, "calling window"),
    ({"timezone": "Asia/Hanoi_Typo"}, 400, "Asia/Hanoi_Typo"),
    ({"retry": {"max_attempts": 0}}, 400, "max_attempts"),
    ({"retry": {"delays": {"sleeping": 60}}}, 400, "sleeping"),
    ({"window": {"public_holidays": "XX"}}, 400, "public_holidays"),
    ({"starts_at": "2026-12-01T08:00:00"}, 400, "starts_at: expected a date-time with a time zone"),
    ({"starts_at": "2026-12-02T08:00:00+07:00", "ends_at": "2026-12-01T08:00:00+07:00"}, 400, "ends_at"),
    ({"spread": True}, 400, "spread: needs ends_at"),
    ({"target_completes": 0}, 422, "target_completes"),
    ({"channel_plan": [{"channel": "fax", "max_attempts": 1}]}, 400, "channel_plan step 1"),
])
def test_campaign_validation_names_the_problem_and_stores_nothing(client: Any, make_agency: Any,
                                                                  extra: dict[str, Any], status: int,
                                                                  words: str) -> None:
    agency_id = make_agency()
    response = client.post(f"{API}/campaigns", json={"agency_id": agency_id, "name": "Quý 4", **extra})
    assert response.status_code == status, response.json
    assert words in (response.json["message"] if status != 422 else str(response.json["detail"]))
    assert client.get(f"{API}/campaigns").json == []


def test_campaign_engine_settings_are_stored_and_configurable(client: Any, make_agency: Any) -> None:
    plan = [{"channel": "voice", "max_attempts": 3}, {"channel": "sms", "max_attempts": 1}]
    created = client.post(f"{API}/campaigns", json={
        "agency_id": make_agency(), "name": "Quý 4/2026", "starts_at": "2026-12-01T08:00:00+07:00",
        "ends_at": "2026-12-20T17:00:00+07:00", "target_completes": 400, "channel_plan": plan, "spread": True,
        "window": {"closed_dates": ["2026-12-24"], "public_holidays": "VN"}})
    assert created.status_code == 201, created.json
    campaign_id = created.json["id"]
    body = client.get(f"{API}/campaigns/{campaign_id}").json
    assert datetime.fromisoformat(body["starts_at"]) == datetime(2026, 12, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(body["ends_at"]) == datetime(2026, 12, 20, 10, tzinfo=UTC)
    assert (body["target_completes"], body["channel_plan"], body["spread"]) == (400, plan, True)
    assert body["window"]["closed_dates"] == ["2026-12-24"]

    def patch(**changes: Any) -> Any:
        return client.patch(f"{API}/campaigns/{campaign_id}", json=changes)

    changed = patch(target_completes=300, calls_per_second=2, retry={"max_attempts": 4}, name="Quý 4 (sửa)")
    assert changed.status_code == 200, changed.json
    assert (changed.json["target_completes"], changed.json["calls_per_second"]) == (300, 2.0)
    assert changed.json["retry"] == {"max_attempts": 4} and changed.json["name"] == "Quý 4 (sửa)"
    assert changed.json["starts_at"] == body["starts_at"]            # what was not sent stays
    cleared = patch(ends_at=None, spread=False, channel_plan=None)
    assert cleared.status_code == 200, cleared.json
    assert (cleared.json["ends_at"], cleared.json["spread"], cleared.json["channel_plan"]) == (None, False, [])

    # A bad change names the problem and leaves the stored campaign as it was.
    before = client.get(f"{API}/campaigns/{campaign_id}").json
    for changes, status, words in (({"spread": True}, 400, "spread: needs ends_at"),
                                   ({"window": {"parts": [["18:00", "08:00"]]}}, 400, "calling window"),
                                   ({"ends_at": "2026-11-30T00:00:00+07:00"}, 400, "ends_at: must be after"),
                                   ({"calls_per_second": 0}, 422, "calls_per_second"),
                                   ({"colour": "red"}, 422, "colour")):
        response = patch(**changes)
        assert response.status_code == status, (changes, response.json)
        assert words in (response.json["message"] if status != 422 else str(response.json["detail"]))
    assert client.get(f"{API}/campaigns/{campaign_id}").json == before
    assert client.patch(f"{API}/campaigns/999", json={"name": "x"}).status_code == 404


def test_what_may_change_depends_on_the_campaign_state(client: Any, make_campaign: Any, make_frame: Any) -> None:
    campaign_id = make_campaign()
    content = make_frame([("Đất đai", "Lê Văn A", "0912345678")]).read_bytes()
    assert upload(client, campaign_id, content, rule="census", seed="1").status_code == 201
    assert client.patch(f"{API}/campaigns/{campaign_id}",
                        json={"questionnaire": "sipas-2level-2024", "timezone": "Asia/Bangkok"}).status_code == 200
    assert client.get(f"{API}/campaigns/{campaign_id}").json["window"]["timezone"] == "Asia/Bangkok"
    act(client, campaign_id, "start")
    for changes, words in (({"questionnaire": "sipas-2024"}, "only while the campaign is a draft"),
                           ({"timezone": "Asia/Ho_Chi_Minh"}, "only while the campaign is a draft"),
                           ({"starts_at": "2026-12-01T08:00:00+07:00"}, "pause the campaign first")):
        response = client.patch(f"{API}/campaigns/{campaign_id}", json=changes)
        assert response.status_code == 409 and words in response.json["message"], response.json
    # Pacing and targets change while running; the dispatcher reads them each round.
    assert client.patch(f"{API}/campaigns/{campaign_id}", json={"calls_per_second": 5}).json["calls_per_second"] == 5
    act(client, campaign_id, "pause")
    assert client.patch(f"{API}/campaigns/{campaign_id}",
                        json={"starts_at": "2026-12-01T08:00:00+07:00"}).status_code == 200
    act(client, campaign_id, "cancel")
    final = client.patch(f"{API}/campaigns/{campaign_id}", json={"name": "x"})
    assert final.status_code == 409 and "cancelled" in final.json["message"]


def test_unknown_questionnaire_message_lists_the_available_ones(client: Any, make_agency: Any) -> None:
    response = client.post(f"{API}/campaigns", json={"agency_id": make_agency(), "name": "Q",
                                                     "questionnaire": "nope"})
    assert response.status_code == 400
    assert "sipas-2024" in response.json["message"] and "sipas-2level-2024" in response.json["message"]


# ============================================================================ frame upload

def demo_lines() -> list[list[str]]:
    with DEMO_FRAME.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_demo_frame_upload_draws_a_reported_stratified_sample(app: Any, client: Any, make_campaign: Any) -> None:
    campaign_id = make_campaign()
    response = upload(client, campaign_id, DEMO_FRAME.read_bytes(), rule="fixed", n="50", seed="1")
    assert response.status_code == 201, response.json
    report = response.json
    assert report["drawn"] == 50 and report["reserve"] == 0
    assert report["rows"] == 1000 and report["header_row"] == 1 and report["seed"] == 1
    assert report["rule"] == {"kind": "fixed", "n": 50, "margin": 0.05}
    assert report["columns"]["phone"] == "Số điện thoại"

    # Rejected rows name the spreadsheet row, the column, the value and the reason; check
    # every one against the file itself.
    lines = demo_lines()
    header = lines[0]
    assert report["rejected"]
    for rejected in report["rejected"]:
        assert set(rejected) == {"row", "column", "value", "reason"}
        assert isinstance(rejected["row"], int) and rejected["row"] >= 2
        assert rejected["reason"].strip()
        cell = lines[rejected["row"] - 1][header.index(rejected["column"])]
        assert cell.strip() == rejected["value"], rejected
    assert len({r["row"] for r in report["rejected"]}) == len(report["rejected"])
    assert report["excluded"]["duplicate_phone"] > 0 and report["excluded"]["not_returned"] > 0
    # Every data row is accounted for: eligible, excluded by reason, or rejected.
    assert report["rows"] == report["eligible"] + sum(report["excluded"].values()) + len(report["rejected"])

    # Strata: one per field, with frame rows, eligible N, drawn n and weight N/n.
    fields = Counter(line[header.index("Lĩnh vực")] for line in lines[1:])
    strata = {s["field"]: s for s in report["strata"]}
    assert set(strata) == set(fields)
    for field, stratum in strata.items():
        assert stratum["frame_rows"] == fields[field]
        assert 1 <= stratum["drawn"] <= stratum["eligible"] <= stratum["frame_rows"]
        assert stratum["weight"] == pytest.approx(stratum["eligible"] / stratum["drawn"])
    assert all(s["drawn"] >= 1 and s["weight"] == s["eligible"] / s["drawn"] for s in report["strata"])
    assert sum(s["frame_rows"] for s in report["strata"]) == report["rows"]
    assert sum(s["drawn"] for s in strata.values()) == 50
    assert sum(s["eligible"] for s in strata.values()) == report["eligible"]
    # Proportional allocation: no stratum is more than one draw off its share.
    for stratum in strata.values():
        assert abs(stratum["drawn"] - 50 * stratum["eligible"] / report["eligible"]) < 1 + 1e-9

    # What was stored agrees with the report.
    with app.extensions["sipas"].db.begin() as session:
        contacts = session.scalars(select(Contact).where(Contact.campaign_id == campaign_id)).all()
        stored = {s.field: s for s in session.scalars(select(Stratum).where(Stratum.campaign_id == campaign_id))}
        campaign = session.get(Campaign, campaign_id)
        assert (campaign.sample_seed, campaign.frame_size) == (1, report["eligible"])
    assert len(contacts) == 50 and len({c.phone_e164 for c in contacts}) == 50
    assert all(c.status.value == "pending" and c.phone_e164.startswith("+84") for c in contacts)
    per_field = Counter(c.field for c in contacts)
    for field, stratum in strata.items():
        assert per_field[field] == stratum["drawn"] == stored[field].drawn
        assert all(c.stratum_weight == pytest.approx(stratum["weight"]) for c in contacts if c.field == field)


def test_same_seed_gives_the_same_sample_in_another_campaign(app: Any, client: Any, make_campaign: Any) -> None:
    first, second, third = (make_campaign() for _ in range(3))
    content = DEMO_FRAME.read_bytes()
    reports = [upload(client, c, content, rule="fixed", n="50", seed=seed).json
               for c, seed in ((first, "1"), (second, "1"), (third, "2"))]
    assert [r["drawn"] for r in reports] == [50, 50, 50]
    assert reports[0]["strata"] == reports[1]["strata"]
    phones = [campaign_phones(app, c) for c in (first, second, third)]
    assert len(phones[0]) == 50 and phones[0] == phones[1]
    assert phones[2] != phones[0]                       # the seed matters


def test_frame_without_a_phone_column_is_rejected_and_nothing_is_stored(app: Any, client: Any, make_campaign: Any,
                                                                        make_frame: Any) -> None:
    campaign_id = make_campaign()
    content = "Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Ngày trả kết quả\nHS-1,Đất đai,Lê Văn A,02/11/2026\n".encode()
    response = upload(client, campaign_id, content)
    assert response.status_code == 400
    message = response.json["message"]
    assert "phone" in message and "Mã hồ sơ" in message and "danh-sach.csv" in message
    assert count(app, Contact) == 0
    assert count(app, Stratum) == 0
    campaign = client.get(f"{API}/campaigns/{campaign_id}").json
    assert (campaign["sample_seed"], campaign["frame_size"], campaign["status"]) == (None, None, "draft")
    # The campaign still takes a good frame afterwards.
    good = upload(client, campaign_id, make_frame([("Đất đai", "Lê Văn A", "0912345678")]).read_bytes(),
                  rule="census", seed="5")
    assert good.status_code == 201 and good.json["drawn"] == 1


def test_frame_upload_conflicts_and_bad_parameters(app: Any, client: Any, make_campaign: Any, make_frame: Any) -> None:
    campaign_id = make_campaign()
    content = make_frame([("Đất đai", "Lê Văn A", "0912345678"), ("Đất đai", "Lê Văn B", "0987654321")]).read_bytes()
    no_file = client.post(f"{API}/campaigns/{campaign_id}/frame", data={"rule": "census"},
                          content_type="multipart/form-data")
    assert no_file.status_code == 422 and "file" in str(no_file.json["detail"])
    bad_rule = upload(client, campaign_id, content, rule="guess")
    assert bad_rule.status_code == 422 and "rule" in str(bad_rule.json["detail"])
    fixed_without_n = upload(client, campaign_id, content, rule="fixed")
    assert fixed_without_n.status_code == 400 and "positive n" in fixed_without_n.json["message"]
    assert upload(client, 999, content, rule="census").status_code == 404
    assert count(app, Contact) == 0

    assert upload(client, campaign_id, content, rule="census", seed="1").status_code == 201
    again = upload(client, campaign_id, content, rule="census", seed="1")
    assert again.status_code == 409 and "already has a sample" in again.json["message"]
    assert act(client, campaign_id, "start").status_code == 200
    running = upload(client, campaign_id, content, rule="census", seed="1")
    assert running.status_code == 409 and "running" in running.json["message"]
    assert count(app, Contact) == 2


# ============================================================================ lifecycle

def test_lifecycle_actions_and_illegal_transitions(client: Any, clock: Any, make_campaign: Any, make_frame: Any,
                                                   claim: Any) -> None:
    campaign_id = make_campaign(calls_per_second=10)

    def conflict(action: str, state: str) -> None:
        response = act(client, campaign_id, action)
        assert response.status_code == 409, (action, response.json)
        assert state in response.json["message"] and action in response.json["message"]

    conflict("pause", "draft")
    conflict("resume", "draft")
    empty = act(client, campaign_id, "start")
    assert empty.status_code == 409 and "no sampled contacts" in empty.json["message"]
    assert client.get(f"{API}/campaigns/{campaign_id}").json["status"] == "draft"

    content = make_frame([("Đất đai", "Lê Văn A", "0912345678"), ("Môi trường", "Lê Văn B", "0987654321")]).read_bytes()
    assert upload(client, campaign_id, content, rule="census", seed="1").status_code == 201
    assert claim() == []                                      # draft: nothing is dialled

    started = act(client, campaign_id, "start")
    assert started.status_code == 200 and started.json["status"] == "running"
    assert datetime.fromisoformat(started.json["started_at"]) == clock()
    conflict("start", "running")
    conflict("resume", "running")

    assert act(client, campaign_id, "pause").json["status"] == "paused"
    conflict("pause", "paused")
    conflict("start", "paused")
    assert claim() == []                                      # paused: nothing is dialled

    assert act(client, campaign_id, "resume").json["status"] == "running"
    assert len(claim()) == 2

    clock.advance(minutes=5)
    cancelled = act(client, campaign_id, "cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert datetime.fromisoformat(cancelled.json["completed_at"]) == clock()
    for action in ("start", "pause", "resume", "cancel"):
        conflict(action, "cancelled")

    unknown = act(client, campaign_id, "explode")
    assert unknown.status_code == 422 and "action" in str(unknown.json["detail"])
    missing = act(client, 999, "start")
    assert missing.status_code == 404 and "999" in missing.json["message"]


def test_cancel_a_draft_campaign(client: Any, make_campaign: Any) -> None:
    campaign_id = make_campaign()
    assert act(client, campaign_id, "cancel").json["status"] == "cancelled"
    assert act(client, campaign_id, "start").status_code == 409


# ============================================================================ progress

def test_progress_counts_contacts_attempts_and_dispositions(client: Any, clock: Any, make_campaign: Any,
                                                            make_frame: Any, claim: Any, make_call: Any) -> None:
    campaign_id = make_campaign(calls_per_second=10)
    phones = ["0912345678", "0987654321", "0352222333", "0868111222"]
    content = make_frame([("Đất đai", f"Người {i}", p) for i, p in enumerate(phones)]).read_bytes()
    assert upload(client, campaign_id, content, rule="census", seed="1").json["drawn"] == 4
    act(client, campaign_id, "start")

    before = client.get(f"{API}/campaigns/{campaign_id}/progress").json
    per_hour = before.pop("attempts_per_hour")
    assert before == {"campaign_id": campaign_id, "status": "running", "contacts": 4,
                      "by_status": {"reserve": 0, "pending": 4, "active": 0, "done": 0},
                      "by_disposition": {}, "attempts": 0,
                      "attempts_by_status": {s.value: 0 for s in AttemptStatus}, "attempts_last_hour": 0,
                      "calls_in_progress": 0, "rates": {},
                      # No call yet, and no price table: the expected length only (test_call_costs.py).
                      "calls": {"currency": "VND", "calls": 0, "billed_minutes": 0, "mean_call_seconds": None,
                                "complete_calls": 0, "mean_complete_seconds": None, "completes": 0, "cost": None,
                                "cost_per_complete": None, "unpriced_calls": 0,
                                "expected": {"longest_seconds": 194.6, "shortest_seconds": 167.2,
                                             "longest_minutes": 4, "shortest_minutes": 3,
                                             "longest_cost": None, "shortest_cost": None}}}
    # The clock reads 09:00 in Hanoi: the last 24 local clock hours, this one last.
    assert [h["hour"] for h in per_hour[:2]] == ["2026-11-16T10:00:00+07:00", "2026-11-16T11:00:00+07:00"]
    assert per_hour[-1] == {"hour": "2026-11-17T09:00:00+07:00", "attempts": 0} and len(per_hour) == 24

    calls = {c.to: make_call(c) for c in claim()}
    assert len(calls) == 4
    complete, refuse, busy, talking = (calls[f"+84{p[1:]}"] for p in phones)
    complete.survey({"CONSENT": "1", **{c: "4" for c in CRITERIA_I_IV}, "SCREEN_FEEDBACK": "2", "OVERALL": "5"},
                    default=None)
    complete.status("completed", CallDuration="80")
    refuse.survey({"CONSENT": "9"}, default=None)
    refuse.status("completed", CallDuration="10")
    busy.status("busy")
    talking.answer()                                           # still on the line

    progress = client.get(f"{API}/campaigns/{campaign_id}/progress").json
    assert progress["contacts"] == 4
    assert progress["by_status"] == {"reserve": 0, "pending": 1, "active": 1, "done": 2}
    assert progress["by_disposition"] == {"1.1": 1, "2.11": 1}
    assert (progress["attempts"], progress["attempts_last_hour"], progress["calls_in_progress"]) == (4, 4, 1)
    assert {k: v for k, v in progress["attempts_by_status"].items() if v} == {
        "completed": 2, "busy": 1, "in_progress": 1}
    assert [h["attempts"] for h in progress["attempts_per_hour"]] == [0] * 23 + [4]
    # Hand computation over the two final codes: I = 1, R = 1, nothing else.
    assert progress["rates"]["RR1"] == 0.5 and progress["rates"]["REF1"] == 0.5
    assert progress["rates"]["COOP1"] == 0.5 and progress["rates"]["CON1"] == 1.0

    clock.advance(hours=1, seconds=1)
    later = client.get(f"{API}/campaigns/{campaign_id}/progress").json
    assert later["attempts_last_hour"] == 0
    assert later["attempts_per_hour"][-2:] == [{"hour": "2026-11-17T09:00:00+07:00", "attempts": 4},
                                               {"hour": "2026-11-17T10:00:00+07:00", "attempts": 0}]
    clock.advance(hours=23)
    assert sum(h["attempts"] for h in client.get(f"{API}/campaigns/{campaign_id}/progress")
               .json["attempts_per_hour"]) == 0
    assert client.get(f"{API}/campaigns/999/progress").status_code == 404


# ============================================================================ scores and export

# Answers sent per respondent (weights come from the sample: see the test).
M_KEYS = {"CONSENT": "1", "C01": "5", "C02": "4", "C03": "1", "C04": "0",
          **{c: "4" for c in CRITERIA_I_IV[4:]}, "SCREEN_FEEDBACK": "1",
          "C14": "5", "C15": "2", "C16": "0", "OVERALL": "5"}
D1_KEYS = {"CONSENT": "1", "C01": "1", "C02": "2", "C03": "3", "C04": "4",
           **{c: "5" for c in CRITERIA_I_IV[4:]}, "SCREEN_FEEDBACK": "2", "OVERALL": "3"}
D2_KEYS = {"CONSENT": "1", "C01": "4", "C02": ["7", "7", "7"], "C03": "5", "C04": "2",
           **{c: "3" for c in CRITERIA_I_IV[4:]}, "SCREEN_FEEDBACK": "1",
           "C14": "4", "C15": "4", "C16": "1", "OVERALL": "4"}
D3_KEYS = {"CONSENT": "1", **{c: "5" for c in CRITERIA_I_IV[:6]}, "C07": "1"}   # hangs up at C08
D4_KEYS = {"CONSENT": "9"}                                                      # refuses

# Hand computation. Weights: M (Môi trường, 1 of 2 drawn) 2.0; D1-D4 (Đất đai, 4 of 6) 1.5.
# item: (n, satisfied, dissatisfied, no opinion, unanswered, index, mean, weighted index, flag)
EXPECTED = {
    "C01": (4, 3, 1, 0, 0, 75.0, 15 / 4, 100 * 5 / 6.5, False),     # 5 1 4 5
    "C02": (3, 2, 1, 0, 1, 200 / 3, 11 / 3, 100 * 3.5 / 5, True),   # 4 2 - 5
    "C03": (4, 2, 1, 0, 0, 50.0, 14 / 4, 100 * 3 / 6.5, False),     # 1 3 5 5
    "C04": (3, 2, 1, 1, 0, 200 / 3, 11 / 3, 100 * 3 / 4.5, True),   # 0 4 2 5
    "C05": (4, 3, 0, 0, 0, 75.0, 17 / 4, 100 * 5 / 6.5, False),     # 4 5 3 5
    "C06": (4, 3, 0, 0, 0, 75.0, 17 / 4, 100 * 5 / 6.5, False),     # 4 5 3 5
    "C07": (4, 2, 1, 0, 0, 50.0, 13 / 4, 100 * 3.5 / 6.5, False),   # 4 5 3 1
    **{c: (3, 2, 0, 0, 0, 200 / 3, 4.0, 70.0, False) for c in CRITERIA_I_IV[7:]},   # 4 5 3
    "C14": (2, 2, 0, 0, 0, 100.0, 4.5, 100.0, False),               # 5 - 4
    "C15": (2, 1, 1, 0, 0, 50.0, 3.0, 100 * 1.5 / 3.5, True),       # 2 - 4
    "C16": (1, 0, 1, 1, 0, 0.0, 1.0, 0.0, True),                    # 0 - 1
}
EXPECTED_OVERALL = (3, 2, 0, 0, 0, 200 / 3, 4.0, 70.0, False)        # 5 3 4
EXPECTED_FACTORS = {
    "I": (75 + 200 / 3 + 50) / 3,
    "II": (200 / 3 + 75 + 75 + 50) / 4,
    "III": 200 / 3,
    "IV": 200 / 3,
    "V": (100 + 50 + 0) / 3,
}
EXPECTED_POOLED = {"I": 100 * 7 / 11, "II": 100 * 10 / 15, "III": 100 * 6 / 9, "IV": 100 * 6 / 9, "V": 100 * 3 / 5}


def criterion_tuple(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["n"], c["n_satisfied"], c["n_dissatisfied"], c["n_no_opinion"], c["n_unanswered"],
            pytest.approx(c["index"]), pytest.approx(c["mean"]), pytest.approx(c["weighted_index"]),
            c["dissatisfied_flag"])


@pytest.fixture
def surveyed(app: Any, client: Any, make_campaign: Any, make_frame: Any, claim: Any, make_call: Any) -> dict[str, Any]:
    """A campaign whose five contacts were called through the webhooks with the keys above."""
    campaign_id = make_campaign(calls_per_second=10, retry={"max_attempts": 1})
    rows = [("Đất đai", f"Trần Văn {i}", f"09123456{i:02d}") for i in range(6)]
    rows += [("Môi trường", f"Lê Thị {i}", f"09876543{i:02d}") for i in range(2)]
    report = upload(client, campaign_id, make_frame(rows).read_bytes(), rule="fixed", n="5", seed="11").json
    assert {s["field"]: (s["eligible"], s["drawn"], s["weight"]) for s in report["strata"]} == {
        "Đất đai": (6, 4, 1.5), "Môi trường": (2, 1, 2.0)}
    assert act(client, campaign_id, "start").status_code == 200
    with app.extensions["sipas"].db.begin() as session:
        field_of = {phone: field for phone, field in session.execute(select(Contact.phone_e164, Contact.field))}
    claimed = claim()
    assert len(claimed) == 5
    land = [c for c in claimed if field_of[c.to] == "Đất đai"]
    env = [c for c in claimed if field_of[c.to] == "Môi trường"]
    assert (len(land), len(env)) == (4, 1)
    plan = [(env[0], M_KEYS, None), (land[0], D1_KEYS, None), (land[1], D2_KEYS, None),
            (land[2], D3_KEYS, "C08"), (land[3], D4_KEYS, None)]
    for claimed_call, keys, stop in plan:
        call = make_call(claimed_call)
        call.survey(keys, default=None, stop_before=stop)
        call.status("completed", CallDuration="60")
    progress = client.get(f"{API}/campaigns/{campaign_id}/progress").json
    assert progress["by_disposition"] == {"1.1": 3, "1.2": 1, "2.11": 1}
    return {"campaign_id": campaign_id, "rows": rows}


def test_scores_equal_a_hand_computation_of_the_answers_sent(client: Any, surveyed: dict[str, Any]) -> None:
    campaign_id = surveyed["campaign_id"]
    response = client.get(f"{API}/campaigns/{campaign_id}/scores")
    assert response.status_code == 200
    scores = response.json
    assert scores["questionnaire"] == "sipas-2024" and scores["aggregation"] == "mean_of_criteria"
    assert scores["n_respondents"] == 4                        # 3 complete + 1 partial; the refusal is out
    criteria = {c["item_id"]: c for c in scores["criteria"]}
    assert list(criteria) == [*CRITERIA_I_IV, "C14", "C15", "C16"]
    for item, expected in EXPECTED.items():
        assert criterion_tuple(criteria[item]) == expected, item
        c = criteria[item]
        assert c["ci_low"] <= c["index"] <= c["ci_high"]
    assert criterion_tuple(scores["overall"]) == EXPECTED_OVERALL
    factors = {f["factor"]: f for f in scores["factors"]}
    assert {k: f["index"] for k, f in factors.items()} == pytest.approx(EXPECTED_FACTORS)
    assert factors["I"]["n"] == 4 + 3 + 4 and factors["V"]["n_criteria"] == 3
    assert scores["service_index"] == pytest.approx(sum(EXPECTED_FACTORS.values()) / 5)

    pooled = client.get(f"{API}/campaigns/{campaign_id}/scores?aggregation=pooled").json
    assert pooled["aggregation"] == "pooled"
    assert {f["factor"]: f["index"] for f in pooled["factors"]} == pytest.approx(EXPECTED_POOLED)
    assert pooled["service_index"] == pytest.approx(sum(EXPECTED_POOLED.values()) / 5)

    bad = client.get(f"{API}/campaigns/{campaign_id}/scores?aggregation=median")
    assert bad.status_code == 422
    assert client.get(f"{API}/campaigns/999/scores").status_code == 404


def all_cells(path: Path) -> list[str]:
    workbook = openpyxl.load_workbook(path)
    try:
        return [str(cell) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)
                for cell in row if cell is not None]
    finally:
        workbook.close()


def test_export_writes_an_xlsx_without_phone_numbers_or_names(app: Any, client: Any, surveyed: dict[str, Any],
                                                             tmp_path: Path) -> None:
    campaign_id = surveyed["campaign_id"]
    response = client.post(f"{API}/campaigns/{campaign_id}/exports")
    assert response.status_code == 201
    # A file name and a download URL; never a server path.
    assert set(response.json) == {"name", "url"}
    assert str(tmp_path) not in response.get_data(as_text=True)
    name = response.json["name"]
    assert response.json["url"] == f"{API}/campaigns/{campaign_id}/exports/{name}"
    path = Path(app.extensions["sipas"].settings.export_dir) / name
    assert path.is_file() and path.suffix == ".xlsx"
    download = client.get(response.json["url"])
    assert download.status_code == 200 and download.data == path.read_bytes()
    assert f"filename={name}" in download.headers["Content-Disposition"]
    assert client.get(f"{API}/campaigns/{campaign_id}").status_code == 200
    with app.extensions["sipas"].db.begin() as session:
        assert session.get(Campaign, campaign_id).export_path == str(path)
        pseudonyms = set(session.scalars(select(Contact.respondent_id).join(Contact.interview)
                                         .where(Contact.disposition.in_(["1.1", "1.2"]))))

    cells = all_cells(path)
    assert cells, "the export is empty"
    personal = set()
    for _field, name, phone in surveyed["rows"]:
        personal |= {name, phone, phone[1:], "+84" + phone[1:], "84" + phone[1:]}
    leaks = [cell for cell in cells for value in personal if value in cell]
    assert leaks == []
    for sibling in path.parent.glob(f"{path.stem}*.csv"):
        content = sibling.read_text(encoding="utf-8-sig")
        assert not [value for value in personal if value in content], sibling.name

    # The responses sheet holds the four counted respondents by pseudonym, with their answers.
    workbook = openpyxl.load_workbook(path)
    try:
        rows = list(workbook["responses"].iter_rows(values_only=True))
        summary = dict(workbook["summary"].iter_rows(min_row=2, values_only=True))
    finally:
        workbook.close()
    header, data = rows[0], rows[1:]
    assert header[:4] == ("respondent", "field", "channel", "weight")
    assert {row[header.index("channel")] for row in data} == {"voice"}
    assert {row[0] for row in data} == pseudonyms and len(data) == 4
    assert sorted(row[header.index("C01")] for row in data) == [1, 4, 5, 5]
    assert sorted(row[header.index("C02")] or 0 for row in data) == [0, 2, 4, 5]   # unanswered: empty
    scores = client.get(f"{API}/campaigns/{campaign_id}/scores").json
    assert summary["respondents"] == 4
    assert summary["service_index"] == pytest.approx(scores["service_index"])


def test_export_of_an_unknown_campaign_is_404(client: Any, tmp_path: Path) -> None:
    response = client.post(f"{API}/campaigns/999/exports")
    assert response.status_code == 404 and "999" in response.json["message"]


ITEMS_WITHOUT_FACTOR_V = ["CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", "OVERALL"]


def test_progress_scores_and_export_when_everyone_completes(app: Any, client: Any, make_campaign: Any,
                                                            make_frame: Any, claim: Any, make_call: Any) -> None:
    campaign_id = make_campaign(calls_per_second=10)
    frame = make_frame([("Đất đai", "Lê Văn A", "0912345678"), ("Đất đai", "Lê Văn B", "0987654321"),
                        ("Môi trường", "Lê Thị C", "0352222333")])
    assert upload(client, campaign_id, frame.read_bytes(), rule="census").json["drawn"] == 3
    act(client, campaign_id, "start")
    calls = [make_call(c) for c in claim(batch=10)]
    # C01: 5, 4, 1 -> 2 of 3 satisfied; C02: 0 (no opinion), 3, 4 -> 1 of 2 valid.
    for call, keys in zip(calls, (["1", "5", "0"] + ["4"] * 11 + ["2", "5"],
                                  ["1", "4", "3"] + ["4"] * 11 + ["2", "4"],
                                  ["1", "1", "4"] + ["2"] * 11 + ["2", "1"]), strict=True):
        call.answer()
        for item, key in zip(ITEMS_WITHOUT_FACTOR_V, keys, strict=True):
            call.press(item, key)
        call.status("completed", CallDuration="80")

    progress = client.get(f"{API}/campaigns/{campaign_id}/progress").json
    assert progress["contacts"] == 3 and progress["by_disposition"] == {"1.1": 3}
    assert progress["rates"]["RR1"] == 1.0 and progress["calls_in_progress"] == 0

    scores = client.get(f"{API}/campaigns/{campaign_id}/scores").json
    criteria = {c["item_id"]: c for c in scores["criteria"]}
    assert criteria["C01"]["index"] == 200 / 3 and criteria["C01"]["mean"] == 10 / 3
    assert (criteria["C02"]["n"], criteria["C02"]["n_no_opinion"], criteria["C02"]["index"]) == (2, 1, 50.0)
    assert criteria["C03"]["index"] == 200 / 3 and criteria["C03"]["dissatisfied_flag"] is True
    assert scores["overall"]["index"] == 200 / 3 and scores["n_respondents"] == 3
    factor_i = next(f for f in scores["factors"] if f["factor"] == "I")
    assert factor_i["index"] == (200 / 3 + 50 + 200 / 3) / 3

    export = client.post(f"{API}/campaigns/{campaign_id}/exports")
    assert export.status_code == 201
    path = Path(app.extensions["sipas"].settings.export_dir) / export.json["name"]
    sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
    with app.extensions["sipas"].db.begin() as session:
        personal = {v for c in session.scalars(select(Contact)) for v in (c.phone_e164, c.name, c.phone_e164[3:])}
    for sheet in sheets.values():
        cells = {str(cell) for cell in sheet.stack()}
        assert not any(p and p in cell for p in personal for cell in cells)
    assert client.get(f"{API}/campaigns/999/scores").status_code == 404
