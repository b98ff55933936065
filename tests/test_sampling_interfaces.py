"""Sampling through the CLI and the API: preview, import, report (JSON and file), template."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from ivr_service.services.frame_reader import read_frame

from .conftest import ROOT

DEMO = ROOT / "config" / "demo" / "transactions.csv"


def test_template_is_an_importable_vietnamese_workbook(client: Any, tmp_path: Path) -> None:
    response = client.get("/api/v1/frames/template.xlsx")
    assert response.status_code == 200 and "mau-danh-sach-ho-so.xlsx" in response.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames == ["Danh sách hồ sơ", "Hướng dẫn"]
    path = tmp_path / "mau.xlsx"
    path.write_bytes(response.data)
    frame, report = read_frame(path)   # the template's own example row reads back
    assert report.header_row == 3 and frame["phone"].iloc[0] == "0912 345 678"
    assert {"phone", "field", "returned_on", "status", "agency"} <= set(report.columns)


def test_preview_and_sampling_report_over_the_api(client: Any) -> None:
    preview = client.post("/api/v1/frames/preview", data={"file": (io.BytesIO(DEMO.read_bytes()), "ds.csv")},
                          content_type="multipart/form-data")
    assert preview.status_code == 200 and preview.json["rows"] == 1000 and preview.json["drawn"] == 0
    agency = client.post("/api/v1/agencies", json={"code": "S", "name": "Sở Demo"}).json["id"]
    campaign = client.post("/api/v1/campaigns", json={"agency_id": agency, "name": "Q"}).json["id"]
    imported = client.post(f"/api/v1/campaigns/{campaign}/frame", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(DEMO.read_bytes()), "ds.csv"), "seed": "4", "reserve": "0.2",
                                 "replicates": "2"})
    assert imported.status_code == 201 and imported.json["rule"]["kind"] == "seed002"
    assert (imported.json["drawn"], imported.json["reserve"]) == (150, 30)
    assert imported.json["eligible"] == preview.json["eligible"]
    report = client.get(f"/api/v1/campaigns/{campaign}/sampling-report").json
    *strata, total = report["strata"]
    assert total["agency"] == "TỔNG / TOTAL" and total["drawn"] == 150 and total["reserve"] == 30
    assert total["eligible"] == sum(s["eligible"] for s in strata) == preview.json["eligible"]
    assert total["excluded_duplicate_phone"] == preview.json["excluded"]["duplicate_phone"]
    xlsx = client.get(f"/api/v1/campaigns/{campaign}/sampling-report?format=xlsx")
    assert xlsx.status_code == 200
    sheet = pd.read_excel(io.BytesIO(xlsx.data), sheet_name="strata", engine="openpyxl")
    assert int(sheet["drawn"].iloc[-1]) == 150
    waves = [client.post(f"/api/v1/campaigns/{campaign}/reserve/release").json["released"] for _ in range(2)]
    assert sum(waves) == 30 and waves[0] >= waves[1] > 0
    assert client.post(f"/api/v1/campaigns/{campaign}/reserve/release").status_code == 409


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr_service", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env})


def test_the_cli_covers_the_same_steps(tmp_path: Path) -> None:
    env = {"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    template = tmp_path / "mau.xlsx"
    assert run_cli("frame-template", str(template), env=env).returncode == 0 and template.exists()
    preview = run_cli("preview-frame", str(DEMO), env=env)
    assert preview.returncode == 0 and json.loads(preview.stdout)["rows"] == 1000
    assert "agency 1" in run_cli("create-agency", "S", "Sở Demo", env=env).stdout
    assert "campaign 1" in run_cli("create-campaign", "--agency-id", "1", "--name", "Q", env=env).stdout
    imported = run_cli("import-frame", "1", str(DEMO), "--rule", "slovin", "--seed", "3", env=env)
    assert imported.returncode == 0, imported.stderr
    eligible = json.loads(imported.stdout)["eligible"]
    assert json.loads(imported.stdout)["drawn"] == -(-eligible // (1 + eligible * 0.0025))
    report = run_cli("sampling-report", "1", "--out", str(tmp_path / "out"), env=env)
    assert report.returncode == 0 and "TỔNG / TOTAL" in report.stdout
    assert list((tmp_path / "out").glob("campaign-1-sampling-*.xlsx"))
    again = run_cli("import-frame", "1", str(DEMO), env=env)
    assert again.returncode != 0 and "already has a sample" in again.stderr
    bad = run_cli("import-frame", "1", str(template), "--encoding", "nope", env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_agency_rule_and_column_mapping_over_the_api(client: Any) -> None:
    bad = client.post("/api/v1/agencies", json={"code": "X", "name": "Sở X", "sample_rule": {"kind": "guess"}})
    assert bad.status_code == 400 and "sample_rule" in bad.json["message"]
    agency = client.post("/api/v1/agencies", json={"code": "S", "name": "Sở S",
                                                    "sample_rule": {"kind": "seed003"}}).json
    assert agency["sample_rule"] == {"kind": "seed003"}
    campaign = client.post("/api/v1/campaigns", json={"agency_id": agency["id"], "name": "Q"}).json["id"]
    content = "Lĩnh vực,ĐT di động,Trạng thái\n" + "".join(
        f"Đất đai,09123456{i:02d},Đã trả kết quả\n" for i in range(40))
    unmapped = client.post(f"/api/v1/campaigns/{campaign}/frame", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(content.encode()), "ds.csv")})
    assert unmapped.status_code == 400 and "phone" in unmapped.json["message"]
    mapped = client.post(f"/api/v1/campaigns/{campaign}/frame", content_type="multipart/form-data",
                         data={"file": (io.BytesIO(content.encode()), "ds.csv"),
                               "columns": json.dumps({"phone": "ĐT di động"}), "seed": "1"})
    assert mapped.status_code == 201, mapped.json
    assert mapped.json["rule"]["kind"] == "seed003" and mapped.json["drawn"] == 20   # 50 % of 40
