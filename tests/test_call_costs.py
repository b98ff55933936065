"""What a campaign's calls cost (services/call_costs.py): connected calls billed per started
minute at their carrier's price, cost per complete, the mean length of completing calls and
the expected figures; shown by the progress API and CLI, the estimate API and CLI, and the
export's summary sheet (without a phone number)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from ivr_service import create_app
from ivr_service.cli import base as cli_base
from ivr_service.cli import cli
from ivr_service.core.estimate import Pace
from ivr_service.core.phones import normalise
from ivr_service.services import call_costs, weekly
from ivr_service.services.call_costs import Costing
from ivr_service.settings import Settings, SettingsError

from .conftest import api_token

API = "/api/v1"
PRICES = '{"*": 1000, "Viettel": 900}'
# Who is called, how the call goes and how long it lasts (s): (phone, keys, duration).
CALLS = {
    "0961234567": ({"SCREEN_FEEDBACK": "1"}, 185),    # Viettel, complete (longest path): 4 started minutes
    "0971234567": ({"SCREEN_FEEDBACK": "2"}, 150),    # Viettel, complete: 3
    "0901234567": ({"SCREEN_FEEDBACK": "2"}, 170),    # Mobifone, complete: 3
    "0912345678": ({"CONSENT": "9"}, 20),             # Vinaphone, refuses: 1
    "02613822123": (None, 40),                        # a landline (no carrier), hangs up at the first item: 1
    "0921234567": (None, None),                       # Vietnamobile, busy: not billed
}
PHONES = list(CALLS)


@pytest.fixture
def app(make_settings: Callable[..., Any], clock: Any) -> Iterator[Any]:
    """The app with a call price table: 900 VND a started minute on Viettel, 1,000 elsewhere."""
    application = create_app(make_settings(voice_prices=PRICES), clock=clock)
    api_token(application)
    yield application
    application.extensions["sipas"].db.dispose()


@pytest.fixture
def called(app: Any, make_campaign: Any, claim: Any, make_call: Any) -> int:
    """A campaign whose six calls went as CALLS says; returns its id."""
    campaign_id = make_campaign([("Đất đai", f"Nguyễn Văn {i}", phone) for i, phone in enumerate(PHONES)])
    calls = {c.to: make_call(c) for c in claim()}
    assert len(calls) == len(CALLS)
    for phone, (keys, duration) in CALLS.items():
        call = calls["+84" + phone[1:]]
        if keys is not None:
            call.survey({"CONSENT": "1", **keys})
        elif duration is not None:
            call.survey({"CONSENT": "1"}, stop_before="C01")
        if duration is None:
            call.status("busy")
        else:
            call.status("completed", CallDuration=str(duration))
    return int(campaign_id)


def costs(app: Any, campaign_id: int, prices: str | None = PRICES) -> call_costs.CallCosts:
    svc = app.extensions["sipas"]
    table = json.loads(prices) if prices is not None else None
    with svc.db.begin() as session:
        return call_costs.campaign_costs(session, svc.registry, campaign_id,
                                         Costing(svc.settings.call_pace, {k.lower(): v for k, v in table.items()}
                                                 if table else None))


# ============================================================================ the figures

EXPECTED_CALLS = {
    "currency": "VND", "calls": 5, "billed_minutes": 12, "mean_call_seconds": 113.0,   # (185+150+170+20+40) / 5
    "complete_calls": 3, "mean_complete_seconds": 168.3, "completes": 3,               # (185+150+170) / 3
    "cost": 11300.0,                     # Viettel (4 + 3) × 900, Mobifone 3, Vinaphone 1, landline 1 × 1,000
    "cost_per_complete": 3766.7, "unpriced_calls": 0,
    # sipas-2024 in Vietnamese for this agency: 194.6 s (4 started minutes) and 167.2 s (3).
    "expected": {"longest_seconds": 194.6, "shortest_seconds": 167.2, "longest_minutes": 4, "shortest_minutes": 3,
                 "longest_cost": 4000.0, "shortest_cost": 3000.0},
}


def test_calls_are_billed_per_started_minute_at_their_carriers_price(app: Any, called: int) -> None:
    assert asdict(costs(app, called)) == EXPECTED_CALLS


def test_without_a_price_for_a_carrier_its_calls_are_unpriced(app: Any, called: int) -> None:
    viettel_only = costs(app, called, '{"viettel": 900}')
    assert (viettel_only.cost, viettel_only.unpriced_calls, viettel_only.cost_per_complete) == (6300.0, 3, 2100.0)
    assert (viettel_only.expected.longest_cost, viettel_only.expected.shortest_cost) == (None, None)
    one_price = costs(app, called, '{"*": 1000}')          # every carrier alike: the numbers are not read
    assert (one_price.cost, one_price.unpriced_calls, one_price.cost_per_complete) == (12000.0, 0, 4000.0)
    assert asdict(one_price) == {**EXPECTED_CALLS, "cost": 12000.0, "cost_per_complete": 4000.0}
    unpriced = costs(app, called, None)
    assert (unpriced.cost, unpriced.cost_per_complete, unpriced.unpriced_calls) == (None, None, 5)
    assert (unpriced.calls, unpriced.billed_minutes, unpriced.completes) == (5, 12, 3)
    assert unpriced.expected.longest_seconds == 194.6


def test_a_campaign_without_calls_costs_nothing_yet(app: Any, make_campaign: Any) -> None:
    campaign_id = make_campaign(["0961234567"])
    found = costs(app, campaign_id)
    assert (found.calls, found.billed_minutes, found.cost, found.cost_per_complete) == (0, 0, 0.0, None)
    assert (found.mean_call_seconds, found.mean_complete_seconds, found.completes) == (None, None, 0)


def test_the_expected_figures_follow_the_campaign_and_the_pace(app: Any, make_campaign: Any) -> None:
    campaign_id = make_campaign(["0961234567"], language="en", speech_input=True, hotline="1022")
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        found = call_costs.campaign_estimate(session, svc.registry, campaign_id)
        slow = call_costs.campaign_costs(session, svc.registry, campaign_id, Costing(Pace(6.5, 3), None))
    assert (found.language, found.speech, found.hotline) == ("en", True, "1022")
    assert found.longest.says[-2].endswith("1 0 2 2.")
    assert slow.expected.longest_seconds == round(found.longest.characters / 6.5 + 3 * 19, 1)


def test_a_numbers_first_five_characters_and_length_name_its_carrier() -> None:
    """What the cost query groups by: every number of a group has the carrier of any other."""
    carriers: dict[tuple[str, int], set[str | None]] = {}
    for prefix in range(10, 100):
        for rest in ("0000000", "5550123", "9999999", "12345678", "1234567890"):
            phone = normalise(f"0{prefix}{rest}")
            if phone.e164 is not None:
                carriers.setdefault((phone.e164[:5], len(phone.e164)), set()).add(phone.carrier)
    assert len(carriers) > 40 and all(len(found) == 1 for found in carriers.values())
    assert carriers[("+8496", 12)] == {"Viettel"} and carriers[("+8426", 13)] == {None}


def test_the_price_table_is_checked_at_start_up() -> None:
    assert Settings.from_env({"SIPAS_VOICE_PRICES": PRICES}).voice_price_table == {"*": 1000, "viettel": 900}
    with pytest.raises(SettingsError, match="SIPAS_VOICE_PRICES: price of '\\*': expected VND per minute"):
        Settings.from_env({"SIPAS_VOICE_PRICES": '{"*": -5}'})


# ============================================================================ progress

def test_progress_gives_the_calls_length_and_cost(client: Any, called: int) -> None:
    progress = client.get(f"{API}/campaigns/{called}/progress").json
    assert progress["calls"] == EXPECTED_CALLS
    assert progress["by_disposition"]["1.1"] == progress["calls"]["completes"] == 3
    counts_only = client.get(f"{API}/campaigns/{called}/progress", query_string={"calls": "false"}).json
    assert counts_only == {**progress, "calls": None}
    schema = client.get(f"{API}/openapi.json").json["components"]["schemas"]
    assert "calls" in schema["ProgressOut"]["properties"]
    assert "cost_per_complete" in schema["CallCostsOut"]["properties"]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A command run in this process against the tests' database, with the price table."""
    built: list[Any] = []
    build = cli_base.build_app

    def app() -> Any:
        built.append(build())
        return built[-1]

    monkeypatch.setattr(cli_base, "build_app", app)
    env = {"SIPAS_DATABASE_URL": database_url, "SIPAS_EXPORT_DIR": str(tmp_path / "out"), "SIPAS_VOICE_PRICES": PRICES}
    yield lambda *args: CliRunner().invoke(cli, [str(a) for a in args], env=env)
    for application in built:
        application.extensions["sipas"].db.dispose()


def test_the_progress_command_gives_the_calls_length_and_cost(run_cli: Any, called: int) -> None:
    result = run_cli("progress", called)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["calls"] == EXPECTED_CALLS


# ============================================================================ the estimate

def test_the_estimate_api_gives_both_paths_with_their_cost(client: Any) -> None:
    response = client.get(f"{API}/questionnaires/sipas-2024/estimate")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["questionnaire"], body["language"], body["instructions"], body["speech"], body["hotline"]) == (
        "sipas-2024", "vi", "first", False, None)
    assert (body["speaking_rate"], body["answer_seconds"], body["voice_items"], body["currency"]) == (13, 3, 19, "VND")
    longest, shortest = body["longest"], body["shortest"]
    assert (longest["characters"], longest["call_seconds"], longest["minutes"], longest["cost"]) == (
        1789, 194.6, 4, 4000)
    assert (shortest["characters"], shortest["call_seconds"], shortest["minutes"], shortest["cost"]) == (
        1549, 167.2, 3, 3000)
    assert longest["choices"] == {"SCREEN_FEEDBACK": "1"} and "C14" in longest["items"]
    assert sum(map(len, longest["says"])) == longest["characters"]

    always = client.get(f"{API}/questionnaires/sipas-2024/estimate",
                        query_string={"instructions": "always", "language": "en", "speech": "true",
                                      "hotline": "1022", "agency": "UBND xã Nam Dong"}).json
    assert (always["instructions"], always["language"], always["speech"], always["hotline"]) == (
        "always", "en", True, "1022")
    assert always["longest"]["call_seconds"] > longest["call_seconds"]
    assert "UBND xã Nam Dong" in always["longest"]["says"][0]
    assert f"{API}/questionnaires/{{key}}/estimate" in client.get(f"{API}/openapi.json").json["paths"]


def test_the_estimate_api_names_what_it_cannot_use(client: Any) -> None:
    unknown = client.get(f"{API}/questionnaires/sipas-1999/estimate")
    assert unknown.status_code == 404 and "sipas-2024" in unknown.json["message"]
    hotline = client.get(f"{API}/questionnaires/sipas-2024/estimate", query_string={"hotline": "call us"})
    assert hotline.status_code == 400 and hotline.json["field"] == "hotline"
    agency = client.get(f"{API}/questionnaires/sipas-2024/estimate", query_string={"agency": "<script>"})
    assert agency.status_code == 400 and agency.json["field"] == "agency"
    language = client.get(f"{API}/questionnaires/sipas-2024/estimate", query_string={"language": "fr"})
    assert language.status_code == 422 and "language" in language.json["detail"]["query"]
    assert client.get(f"{API}/questionnaires/sipas-2024/estimate", auth=False).status_code == 401


def test_the_estimate_command_prints_every_questionnaire_and_language(run_cli: Any) -> None:
    result = run_cli("estimate")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("13 characters a second, 3 s to answer an item;") and "1,000 VND a started" in lines[0]
    assert ("sipas-2024 (vi), longest path (SCREEN_FEEDBACK=1): 19 items, 1,789 characters, 137.6 s spoken + "
            "19 × 3 s answering = 194.6 s [instructions first]; 4 started minutes, 4,000 VND") in lines
    assert "sipas-qr-2024 (en): web only, no call" in lines
    # Each voice questionnaire in each language: its longest and shortest path.
    assert len(lines) == 1 + 3 * 2 * 2 + 2
    assert {line.split(",")[0].split(":")[0] for line in lines[1:]} == {
        f"{key} ({lang})" for key in ("sipas-2024", "sipas-2level-2024", "sipas-qr-2024", "sipas-sms-short")
        for lang in ("vi", "en")}

    always = run_cli("estimate", "sipas-2024", "--language", "vi", "--instructions", "always", "--json")
    assert always.exit_code == 0, always.output
    [figures] = json.loads(always.output)
    assert figures["instructions"] == "always" and figures["longest"]["characters"] == 2989
    unknown = run_cli("estimate", "sipas-1999")
    assert unknown.exit_code == 1 and "questionnaire 'sipas-1999' not found" in unknown.output


# ============================================================================ exports

def summary_of(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The summary sheet as key → value, and every cell of the workbook as text."""
    workbook = openpyxl.load_workbook(path)
    try:
        summary = dict(workbook["summary"].iter_rows(min_row=2, values_only=True))
        cells = [str(cell) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)
                 for cell in row if cell is not None]
    finally:
        workbook.close()
    return summary, cells


def assert_call_figures(summary: dict[str, Any]) -> None:
    assert (summary["calls_connected"], summary["calls_billed_minutes"], summary["completes"]) == (5, 12, 3)
    assert (summary["calls_cost_vnd"], summary["cost_per_complete_vnd"]) == (11300, pytest.approx(3766.7))
    assert summary["calls_mean_complete_seconds"] == pytest.approx(168.3)
    assert (summary["expected_call_longest_seconds"], summary["expected_call_shortest_seconds"]) == (
        pytest.approx(194.6), pytest.approx(167.2))
    assert (summary["expected_cost_per_complete_longest_vnd"],
            summary["expected_cost_per_complete_shortest_vnd"]) == (4000, 3000)
    assert (summary["estimate_speaking_rate_characters_per_second"], summary["estimate_answer_seconds"]) == (13, 3)


def assert_no_phone_numbers(cells: list[str]) -> None:
    numbers = {form for phone in PHONES for form in (phone, phone[1:], "+84" + phone[1:])}
    assert [cell for cell in cells for number in numbers if number in cell] == []


def test_the_export_summary_holds_the_call_figures_and_no_phone_number(app: Any, client: Any, called: int) -> None:
    response = client.post(f"{API}/campaigns/{called}/exports")
    assert response.status_code == 201, response.json
    summary, cells = summary_of(Path(app.extensions["sipas"].settings.export_dir) / response.json["name"])
    assert_call_figures(summary)
    assert_no_phone_numbers(cells)


def test_the_export_command_and_the_weekly_export_hold_them_too(app: Any, run_cli: Any, called: int,
                                                                tmp_path: Path) -> None:
    result = run_cli("export", called)
    assert result.exit_code == 0, result.output
    summary, cells = summary_of(Path(result.output.strip()))
    assert_call_figures(summary)
    assert_no_phone_numbers(cells)
    svc = app.extensions["sipas"]
    directory = tmp_path / "weekly"
    weekly.export_week(svc.db, svc.registry, directory, svc.clock(), svc.clock(), Costing.from_settings(svc.settings))
    [workbook] = directory.glob("campaign-*.xlsx")
    summary, cells = summary_of(workbook)
    assert_call_figures(summary)
    assert_no_phone_numbers(cells)
