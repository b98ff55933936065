"""Reports on request: the API (an XLSX attachment, the agency tree's scope, 400 naming the
period, an audit entry), the command line, and the console (the reports page and the form
on a campaign's scores page)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from flask import Flask

from ivr_service.cli import base as cli_base
from ivr_service.cli import cli
from ivr_service.core.access import Grant, Role
from ivr_service.services import access

from . import test_access, test_period_reports
from .conftest import api_token
from .test_access import audit_rows, signed_in

API = "/api/v1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Fixtures shared with the scheduled reports' tests and the access tests.
surveyed = test_period_reports.surveyed
cheap_hashing = test_access.cheap_hashing
pytestmark = pytest.mark.usefixtures("cheap_hashing")


def sheets(content: bytes) -> list[str]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def attachment(response: Any) -> str:
    """The file name of an XLSX attachment (and that it is one)."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == XLSX
    found = re.fullmatch(r"attachment; filename=([\w.-]+)", response.headers["Content-Disposition"])
    assert found is not None, response.headers["Content-Disposition"]
    wanted = {"Cover", "Indices"} if found.group(1).endswith("-en.xlsx") else {"Tổng quan", "Chỉ số"}
    assert wanted <= set(sheets(response.data))
    return found.group(1)


def token(app: Flask, scopes: list[str], agency: int | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(app, scopes, agency)}"}


def person(app: Flask, username: str, role: str, agency: int | None) -> Any:
    """A signed-in browser of a user with ``role`` on ``agency``."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        access.create_user(session, username, test_access.PASSWORD, svc.clock(), grants=[Grant(Role(role), agency)])
    return signed_in(app, username)


# ============================================================================ API

def test_the_api_sends_a_nodes_report_as_an_attachment_and_audits_it(app: Flask, client: Any,
                                                                       surveyed: dict[str, int]) -> None:
    province = token(app, ["campaigns:read"], surveyed["province"])
    response = client.get(f"{API}/agencies/{surveyed['north']}/report", query_string={"period": "2026-11"},
                          headers=province)
    assert attachment(response) == "sipas-report-DN-N-2026-11.xlsx"
    export_dir = app.extensions["sipas"].settings.export_dir
    assert not any(export_dir in value for _, value in response.headers)
    english = client.get(f"{API}/agencies/{surveyed['province']}/report",
                         query_string={"period": "2026-q4", "lang": "en"}, headers=province)
    assert attachment(english) == "sipas-report-DN-2026-Q4-en.xlsx"
    entries = audit_rows(app, "report_downloaded")
    assert [(e.target, e.agency_id, e.detail["period"], e.detail["lang"]) for e in entries] == [
        (f"agency:{surveyed['north']}", surveyed["north"], "2026-11", "vi"),
        (f"agency:{surveyed['province']}", surveyed["province"], "2026-Q4", "en")]
    assert entries[0].actor.startswith("token:")


def test_a_campaign_report_covers_the_whole_campaign_without_a_period(app: Flask, client: Any,
                                                                      surveyed: dict[str, int]) -> None:
    campaign = surveyed["campaign"]
    assert attachment(client.get(f"{API}/campaigns/{campaign}/report")) == f"sipas-report-campaign-{campaign}.xlsx"
    with_period = client.get(f"{API}/campaigns/{campaign}/report", query_string={"period": "2026-H2"})
    assert attachment(with_period) == f"sipas-report-campaign-{campaign}-2026-H2.xlsx"
    entry = audit_rows(app, "report_downloaded")[0]
    assert (entry.target, entry.agency_id, entry.detail["period"]) == (f"campaign:{campaign}", surveyed["north"],
                                                                       None)


def test_a_sibling_agencys_token_gets_nothing(app: Flask, client: Any, surveyed: dict[str, int]) -> None:
    sibling = token(app, ["campaigns:read"], surveyed["south"])
    for path in (f"{API}/agencies/{surveyed['north']}/report?period=2026-11",
                 f"{API}/agencies/{surveyed['province']}/report?period=2026-11",
                 f"{API}/campaigns/{surveyed['campaign']}/report"):
        response = client.get(path, headers=sibling)
        assert response.status_code == 404, path
        assert "Cư Jút" not in response.get_data(as_text=True)
    assert attachment(client.get(f"{API}/agencies/{surveyed['south']}/report?period=2026-11", headers=sibling))
    without_scope = token(app, ["exports:write"], surveyed["province"])
    refused = client.get(f"{API}/agencies/{surveyed['north']}/report?period=2026-11", headers=without_scope)
    assert refused.status_code == 403 and "campaigns:read" in refused.json["message"]
    assert audit_rows(app, "report_downloaded")[0].target == f"agency:{surveyed['south']}"


@pytest.mark.parametrize(("query", "field"), [({"period": "2026-13"}, "period"), ({}, "period"),
                                              ({"period": "2026-Q5"}, "period"),
                                              ({"period": "2026-11", "lang": "fr"}, "lang")])
def test_a_wrong_period_or_language_answers_400_naming_it(app: Flask, client: Any, surveyed: dict[str, int],
                                                          query: dict[str, str], field: str) -> None:
    response = client.get(f"{API}/agencies/{surveyed['north']}/report", query_string=query)
    assert response.status_code == 400
    assert response.json["field"] == field and response.json["message"].startswith(f"{field}: ")
    assert audit_rows(app, "report_downloaded") == []


def test_the_openapi_document_describes_the_report_routes(client: Any) -> None:
    paths = client.get(f"{API}/openapi.json").json["paths"]
    for path in ("/api/v1/agencies/{agency_id}/report", "/api/v1/campaigns/{campaign_id}/report"):
        operation = paths[path]["get"]
        assert XLSX in operation["responses"]["200"]["content"]
        assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"period", "lang"}
        assert {"400", "404"} <= set(operation["responses"])


# ============================================================================ command line

@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[Any]:
    """The command line in this process, against the tests' database."""
    built: list[Any] = []
    build = cli_base.build_app

    def app() -> Any:
        built.append(build())
        return built[-1]

    monkeypatch.setattr(cli_base, "build_app", app)
    env = {"SIPAS_DATABASE_URL": database_url, "SIPAS_EXPORT_DIR": str(tmp_path / "exports")}
    yield lambda *args: CliRunner().invoke(cli, [str(a) for a in args], env=env)
    for application in built:
        application.extensions["sipas"].db.dispose()


def test_the_report_command_writes_the_workbook_and_prints_its_path(app: Flask, run_cli: Any, tmp_path: Path,
                                                                    surveyed: dict[str, int]) -> None:
    out = tmp_path / "out"
    result = run_cli("report", "--agency", "DN", "--period", "2026-11", "--out", out)
    assert result.exit_code == 0, result.output
    written = Path(result.output.strip())
    assert written == out / "sipas-report-DN-2026-11.xlsx"
    assert {"Tổng quan", "Chỉ số"} <= set(sheets(written.read_bytes()))
    campaign = run_cli("report", "--campaign", surveyed["campaign"], "--lang", "en", "--out", out)
    assert campaign.exit_code == 0, campaign.output
    assert Path(campaign.output.strip()).name == f"sipas-report-campaign-{surveyed['campaign']}-en.xlsx"
    assert [e.actor.startswith("cli:") for e in audit_rows(app, "report_downloaded")] == [True, True]


def test_the_report_command_explains_what_is_wrong(app: Flask, run_cli: Any, tmp_path: Path,
                                                   surveyed: dict[str, int]) -> None:
    bad = run_cli("report", "--agency", "DN-N", "--period", "2026-13", "--out", tmp_path)
    assert bad.exit_code == 1
    assert "period: expected a month (2026-11), a quarter (2026-Q4) or a half-year (2026-H2)" in bad.output
    assert "Traceback" not in bad.output
    assert run_cli("report", "--agency", "DN-N", "--out", tmp_path).exit_code == 1      # a node needs a period
    neither = run_cli("report", "--period", "2026-11")
    assert neither.exit_code == 2 and "give --agency CODE or --campaign ID" in neither.output
    unknown = run_cli("report", "--agency", "NOPE", "--period", "2026-11")
    assert unknown.exit_code == 2 and "no agency with id or code 'NOPE'" in unknown.output
    assert list(tmp_path.glob("*.xlsx")) == []


# ============================================================================ console

def field_error(response: Any, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', response.get_data(as_text=True))
    return found.group(1) if found else None


def test_the_reports_page_downloads_a_nodes_report(app: Flask, surveyed: dict[str, int]) -> None:
    browser = person(app, "tinh", "viewer", surveyed["province"])
    page = browser.client.get("/reports")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Báo cáo</h1>" in body and 'href="/reports"' in body
    options = re.findall(r'<option value="(\d+)"', body)
    assert options == [str(surveyed[k]) for k in ("province", "north", "south")]
    assert "Ví dụ: 2026-10 (tháng), 2026-Q3 (quý) hoặc 2026-H1 (sáu tháng)." in body   # on 17 November
    response = browser.client.get("/reports/download", query_string={
        "agency_id": surveyed["north"], "period": "2026-11", "lang": "vi"})
    assert attachment(response) == "sipas-report-DN-N-2026-11.xlsx"
    entry = audit_rows(app, "report_downloaded")[0]
    assert entry.actor.startswith("user:") and entry.target == f"agency:{surveyed['north']}"


def test_the_reports_page_shows_the_period_error_beside_the_field(app: Flask, surveyed: dict[str, int]) -> None:
    browser = person(app, "tinh", "viewer", surveyed["province"])
    for period in ("2026-13", ""):
        response = browser.client.get("/reports/download", query_string={
            "agency_id": surveyed["north"], "period": period})
        assert response.status_code == 400
        assert field_error(response, "period") == (
            "Nhập một tháng (2026-11), một quý (2026-Q4) hoặc sáu tháng (2026-H2), như các ví dụ.")
        body = response.get_data(as_text=True)
        assert 'aria-invalid="true" aria-describedby="period-error"' in body
        assert f'<option value="{surveyed["north"]}" selected>' in body          # the choice is kept
    missing = browser.client.get("/reports/download", query_string={"period": "2026-11"})
    assert missing.status_code == 400 and field_error(missing, "agency_id") == "Chọn một cơ quan."
    assert audit_rows(app, "report_downloaded") == []


def test_the_reports_page_offers_only_the_users_part_of_the_tree(app: Flask, surveyed: dict[str, int]) -> None:
    browser = person(app, "nam", "viewer", surveyed["south"])
    body = browser.client.get("/reports").get_data(as_text=True)
    assert re.findall(r'<option value="(\d+)"', body) == [str(surveyed["south"])]
    assert "Cư Jút" not in body
    refused = browser.client.get("/reports/download", query_string={"agency_id": surveyed["north"],
                                                                     "period": "2026-11"})
    assert refused.status_code == 404 and field_error(refused, "agency_id") is not None
    assert refused.mimetype == "text/html"
    assert browser.client.get(f"/campaigns/{surveyed['campaign']}/report").status_code == 404


def test_the_scores_page_downloads_the_campaigns_report(app: Flask, surveyed: dict[str, int]) -> None:
    browser = person(app, "bac", "viewer", surveyed["north"])
    campaign = surveyed["campaign"]
    page = browser.client.get(f"/campaigns/{campaign}/scores").get_data(as_text=True)
    assert f'action="/campaigns/{campaign}/report"' in page and "Tải báo cáo (XLSX)" in page
    whole = browser.client.get(f"/campaigns/{campaign}/report", query_string={"period": "", "lang": "vi"})
    assert attachment(whole) == f"sipas-report-campaign-{campaign}.xlsx"
    english = browser.client.get(f"/campaigns/{campaign}/report", query_string={"period": "2026-11", "lang": "en"})
    assert attachment(english) == f"sipas-report-campaign-{campaign}-2026-11-en.xlsx"
    wrong = browser.client.get(f"/campaigns/{campaign}/report", query_string={"period": "2026-13", "lang": "en"})
    assert wrong.status_code == 400
    assert field_error(wrong, "report-period") == (
        "Nhập một tháng (2026-11), một quý (2026-Q4) hoặc sáu tháng (2026-H2), như các ví dụ.")
    body = wrong.get_data(as_text=True)
    assert 'value="2026-13"' in body and '<option value="en" selected>' in body
    assert len(audit_rows(app, "report_downloaded")) == 2
