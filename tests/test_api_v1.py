"""JSON API /api/v1: OpenAPI document, agencies, campaigns, frames, progress, scores, exports."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from ivr_service.persistence.models import Contact

from .conftest import ROOT

DEMO_FRAME = ROOT / "config" / "demo" / "transactions.csv"


def agency(client: Any, code: str = "STNMT") -> int:
    response = client.post("/api/v1/agencies", json={"code": code, "name": "Sở Tài nguyên và Môi trường"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def campaign(client: Any, agency_id: int, **extra: Any) -> Any:
    return client.post("/api/v1/campaigns", json={"agency_id": agency_id, "name": "Quý 4", **extra})


def upload(client: Any, campaign_id: int, content: bytes, name: str = "ds.csv", **form: str) -> Any:
    data = {"file": (io.BytesIO(content), name), **form}
    return client.post(f"/api/v1/campaigns/{campaign_id}/frame", data=data, content_type="multipart/form-data")


def test_openapi_document_covers_the_api_and_hides_webhooks(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    for path in ("/api/v1/agencies", "/api/v1/campaigns", "/api/v1/campaigns/{campaign_id}/progress",
                 "/api/v1/campaigns/{campaign_id}/scores", "/api/v1/campaigns/{campaign_id}/frame",
                 "/api/v1/campaigns/{campaign_id}/actions", "/api/v1/campaigns/{campaign_id}/exports"):
        assert path in paths
    assert not [p for p in paths if p.startswith("/voice")]


def test_agencies_and_duplicate_codes(client: Any) -> None:
    agency(client)
    duplicate = client.post("/api/v1/agencies", json={"code": "STNMT", "name": "Khác"})
    assert duplicate.status_code == 409 and "STNMT" in duplicate.json["message"]
    missing = client.post("/api/v1/agencies", json={"code": "X"})
    assert missing.status_code == 422 and "name" in str(missing.json["detail"])
    assert [a["code"] for a in client.get("/api/v1/agencies").json] == ["STNMT"]


def test_campaign_validation_names_the_field(client: Any) -> None:
    agency_id = agency(client)
    assert campaign(client, 999).status_code == 404
    bad_q = campaign(client, agency_id, questionnaire="sipas-1999")
    assert bad_q.status_code == 400 and "sipas-1999" in bad_q.json["message"]
    bad_window = campaign(client, agency_id, window={"parts": [["17:00", "08:00"]]})
    assert bad_window.status_code == 400 and "calling window" in bad_window.json["message"]
    assert client.get("/api/v1/campaigns").json == []


def test_frame_upload_samples_reproducibly_and_reports_rejections(app: Any, client: Any) -> None:
    agency_id = agency(client)
    first, second = (campaign(client, agency_id).json["id"] for _ in range(2))
    content = DEMO_FRAME.read_bytes()
    report = upload(client, first, content, rule="fixed", n="50", seed="1")
    assert report.status_code == 201, report.json
    body = report.json
    assert body["drawn"] == 50 and body["rows"] == 1000 and body["seed"] == 1
    assert body["rejected"] and all({"row", "column", "value", "reason"} <= set(r) for r in body["rejected"])
    assert body["excluded"]["duplicate_phone"] > 0 and body["excluded"]["not_returned"] > 0
    assert sum(s["drawn"] for s in body["strata"]) == 50
    assert all(s["drawn"] >= 1 and s["weight"] == s["eligible"] / s["drawn"] for s in body["strata"])
    assert sum(s["frame_rows"] for s in body["strata"]) == body["rows"]
    assert upload(client, second, content, rule="fixed", n="50", seed="1").status_code == 201
    with app.extensions["sipas"].db.begin() as session:
        phones = [set(session.scalars(select(Contact.phone_e164).where(Contact.campaign_id == c))) for c in (first, second)]
    assert phones[0] == phones[1] and len(phones[0]) == 50


def test_frame_without_phone_column_changes_nothing(app: Any, client: Any) -> None:
    campaign_id = campaign(client, agency(client)).json["id"]
    response = upload(client, campaign_id, "Mã hồ sơ,Lĩnh vực\nHS-1,Đất đai\n".encode())
    assert response.status_code == 400
    assert "phone" in response.json["message"] and "Mã hồ sơ" in response.json["message"]
    with app.extensions["sipas"].db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_lifecycle_actions_and_illegal_transitions(client: Any) -> None:
    campaign_id = campaign(client, agency(client)).json["id"]
    empty = client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "start"})
    assert empty.status_code == 409 and "no sampled contacts" in empty.json["message"]
    assert upload(client, campaign_id, DEMO_FRAME.read_bytes(), rule="fixed", n="20", seed="3").status_code == 201
    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        response = client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": action})
        assert response.status_code == 200 and response.json["status"] == status
    again = client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "resume"})
    assert again.status_code == 409 and "cancelled" in again.json["message"]


def interview(client: Any, token: str, keys: list[str]) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    client.post(f"/voice/{token}/answer", data={"CallSid": call_sid})
    items = ["CONSENT"] + [f"C{i:02d}" for i in range(1, 14)] + ["SCREEN_FEEDBACK", "OVERALL"]
    for item, key in zip(items, keys, strict=True):
        assert client.post(f"/voice/{token}/gather?item={item}", data={"CallSid": call_sid, "Digits": key}).status_code == 200
    client.post(f"/voice/{token}/status", data={"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "80"})


def test_progress_scores_and_export(app: Any, client: Any, tmp_path: Path) -> None:
    from ivr_service.services.dispatch import Pacing, claim_due

    campaign_id = campaign(client, agency(client), calls_per_second=10).json["id"]
    frame = ("Số hồ sơ,Lĩnh vực,Người nộp,SĐT,Ngày trả kết quả\n"
             "A-1,Đất đai,Lê Văn A,0912345678,01/11/2026\nA-2,Đất đai,Lê Văn B,0987654321,02/11/2026\n"
             "A-3,Môi trường,Lê Thị C,0352222333,03/11/2026\n")
    assert upload(client, campaign_id, frame.encode(), rule="census").json["drawn"] == 3
    client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "start"})
    svc = app.extensions["sipas"]
    tokens = [c.token for c in claim_due(svc.db, Pacing("simulator", 1000.0, 1000), svc.clock(), 10)]
    # C01: 5, 4, 1 -> 2 of 3 satisfied; C02: 0 (no opinion), 3, 4 -> 1 of 2 valid.
    interview(client, tokens[0], ["1", "5", "0"] + ["4"] * 11 + ["2", "5"])
    interview(client, tokens[1], ["1", "4", "3"] + ["4"] * 11 + ["2", "4"])
    interview(client, tokens[2], ["1", "1", "4"] + ["2"] * 11 + ["2", "1"])

    progress = client.get(f"/api/v1/campaigns/{campaign_id}/progress").json
    assert progress["contacts"] == 3 and progress["by_disposition"] == {"1.1": 3}
    assert progress["rates"]["RR1"] == 1.0 and progress["calls_in_progress"] == 0

    scores = client.get(f"/api/v1/campaigns/{campaign_id}/scores").json
    criteria = {c["item_id"]: c for c in scores["criteria"]}
    assert criteria["C01"]["index"] == 200 / 3 and criteria["C01"]["mean"] == 10 / 3
    assert (criteria["C02"]["n"], criteria["C02"]["n_no_opinion"], criteria["C02"]["index"]) == (2, 1, 50.0)
    assert criteria["C03"]["index"] == 200 / 3 and criteria["C03"]["dissatisfied_flag"] is True
    assert scores["overall"]["index"] == 200 / 3 and scores["n_respondents"] == 3
    factor_i = next(f for f in scores["factors"] if f["factor"] == "I")
    assert factor_i["index"] == (200 / 3 + 50 + 200 / 3) / 3

    export = client.post(f"/api/v1/campaigns/{campaign_id}/exports")
    assert export.status_code == 201
    path = Path(export.json["path"])
    sheets = pd.read_excel(path, sheet_name=None, dtype=str)
    with svc.db.begin() as session:
        personal = {v for c in session.scalars(select(Contact)) for v in (c.phone_e164, c.name, c.phone_e164[3:])}
    for frame in sheets.values():
        cells = {str(cell) for cell in frame.stack()}
        assert not any(p and p in cell for p in personal for cell in cells)
    assert client.get("/api/v1/campaigns/999/scores").status_code == 404
