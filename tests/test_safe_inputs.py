"""Inputs that cannot hurt (issue 11): spreadsheet cells that cannot run as formulas, names
that can be spoken and printed, JSON bodies that cannot crash the parser, frames parsed
before any transaction, a CallSid bound to another attempt, numbers out of range."""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from ivr_service import cli as cli_module
from ivr_service.cli import base as cli_base
from ivr_service.core.cells import FORMULA_STARTS, safe_cell, safe_frame
from ivr_service.core.names import check_code, check_name
from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import (
    Agency,
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    Interview,
    InterviewStatus,
)
from ivr_service.services import campaigns, dispatch, frames, results, sampling_report, voice, weekly
from ivr_service.services.errors import Conflict, InvalidInput, NotFound

API = "/api/v1"
HEADER = "Mã hồ sơ,Cơ quan,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày trả kết quả\n"
HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "=cmd|' /C calc'!A0"


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A frame of (agency, field, phone) rows."""
    lines = [f'HS-{i},"{agency.replace(chr(34), chr(34) * 2)}","{field.replace(chr(34), chr(34) * 2)}",'
             f"Nguyễn Văn {i},{phone},02/11/2026" for i, (agency, field, phone) in enumerate(rows, 1)]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- 1. formula injection

def test_safe_cell_quotes_text_a_spreadsheet_would_evaluate() -> None:
    for start in FORMULA_STARTS:
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell(HYPERLINK) == "'" + HYPERLINK
    assert safe_cell("Sở Tài nguyên") == "Sở Tài nguyên"
    assert safe_cell("a=b") == "a=b" and safe_cell("") == ""
    assert safe_cell(-3) == -3 and safe_cell(-2.5) == -2.5 and safe_cell(None) is None   # numbers stay numbers
    assert safe_cell("-3") == "'-3"                                                         # text does not
    frame = safe_frame(pd.DataFrame({"=k": ["=1", "x", None], "n": [-1, 2, 3]}))
    assert list(frame.columns) == ["'=k", "n"]
    assert frame["'=k"].tolist()[:2] == ["'=1", "x"]
    assert frame["n"].tolist() == [-1, 2, 3]


@pytest.fixture
def poisoned(app: Any, tmp_path: Path, clock: Any) -> int:
    """A running campaign whose agency, campaign and frame texts are formulas (names stored
    before names were checked, fields and agencies as the uploaded frame wrote them), with
    one complete interview."""
    svc = app.extensions["sipas"]
    now = clock()
    frame = write_csv(tmp_path / "frame.csv", [(DDE, HYPERLINK, "0912345678"), (DDE, "+1+1", "0987654321"),
                                              ("@SUM(A1)", "-2+3", "0352222333")])
    with svc.db.begin() as session:
        agency = Agency(code="EVIL", name=DDE, created_at=now)
        session.add(agency)
        session.flush()
        campaign = Campaign(agency_id=agency.id, name=HYPERLINK, questionnaire_key="sipas-2024",
                            window={"timezone": "Asia/Ho_Chi_Minh"}, retry={}, created_at=now)
        session.add(campaign)
        session.flush()
        frames.import_and_sample(session, campaign, frame, SampleRule("census"), 7, now)
        campaign.status = CampaignStatus.RUNNING
        contact = session.scalars(select(Contact).where(Contact.campaign_id == campaign.id,
                                                        Contact.field == HYPERLINK)).one()
        attempt = Attempt(contact_id=contact.id, campaign_id=campaign.id, number=1, provider="simulator",
                          status=AttemptStatus.COMPLETED, created_at=now)
        interview = Interview(contact_id=contact.id, campaign_id=campaign.id, questionnaire_key="sipas-2024",
                              status=InterviewStatus.COMPLETE, started_at=now)
        session.add_all([attempt, interview])
        session.flush()
        session.add(Answer(interview_id=interview.id, attempt_id=attempt.id, item_id="C01", value=4,
                           status="answered", digits="4", answered_at=now))
        return campaign.id


def assert_workbook_is_inert(path: Path) -> int:
    """No cell of any sheet is a formula, and no text cell starts like one; returns how many
    quoted cells there are."""
    workbook = openpyxl.load_workbook(path)
    quoted = 0
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{path.name}!{sheet.title}!{cell.coordinate}: {cell.value!r}"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_STARTS), (sheet.title, cell.coordinate, cell.value)
                    quoted += cell.value.startswith("'")
    return quoted


def assert_csv_is_inert(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    bad = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert not bad, f"{path.name}: {bad}"
    return sum(cell.startswith("'") for cell in cells)


def test_exports_neutralise_formulas_in_every_xlsx_and_csv(app: Any, poisoned: int, tmp_path: Path,
                                                           clock: Any) -> None:
    svc = app.extensions["sipas"]
    out = tmp_path / "out"
    with svc.db.begin() as session:
        workbook = results.write_export(session, svc.registry, poisoned, out, clock())
        campaign = session.get(Campaign, poisoned)
        report = sampling_report.write_sampling_report(session, campaign, out, clock())
    summary = openpyxl.load_workbook(workbook)["summary"]
    values = {row[0].value: row[1].value for row in summary.iter_rows(min_row=2)}
    assert values["campaign"] == "'" + HYPERLINK and values["agency"] == "'" + DDE
    assert values["respondents"] == 1                                                   # numbers stay numbers
    responses = openpyxl.load_workbook(workbook)["responses"]
    assert [c.value for c in responses[2]][1] == "'" + HYPERLINK
    assert assert_workbook_is_inert(workbook) >= 3
    assert assert_workbook_is_inert(report) >= 4                                       # agencies, fields, name
    for path in out.glob("*.csv"):
        assert_csv_is_inert(path)
    strata = openpyxl.load_workbook(report)["strata"]
    assert {"'" + DDE, "'@SUM(A1)"} <= {row[0].value for row in strata.iter_rows(min_row=2)}
    assert {"'" + HYPERLINK, "'+1+1", "'-2+3"} <= {row[1].value for row in strata.iter_rows(min_row=2)}

    weekly_dir = tmp_path / "weekly"
    weekly.export_week(svc.db, svc.registry, weekly_dir, clock(), clock())
    assert assert_csv_is_inert(weekly_dir / "summary.csv") == 2                        # agency and campaign
    for path in weekly_dir.glob("*.xlsx"):
        assert_workbook_is_inert(path)
    with (weekly_dir / "summary.csv").open(encoding="utf-8-sig", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["campaign"] == "'" + HYPERLINK and row["agency"] == "'" + DDE and row["respondents"] == "1"


def test_the_sampling_report_download_is_inert(client: Any, poisoned: int) -> None:
    response = client.get(f"{API}/campaigns/{poisoned}/sampling-report?format=xlsx")
    assert response.status_code == 200
    path = Path(client.application.extensions["sipas"].settings.export_dir)
    assert assert_workbook_is_inert(next(path.glob("*-sampling-*.xlsx"))) >= 4


# --------------------------------------------------------------------------- 2. names

GOOD_NAMES = [
    "Sở Tài nguyên và Môi trường tỉnh Bắc Kạn",
    "UBND xã Nậm Cắn (huyện Kỳ Sơn)",
    "Quý 4/2026",
    "Trung tâm Phục vụ hành chính công tỉnh Đắk Lắk – đợt 2",
    "Chi cục Thuế khu vực I; Bộ phận một cửa: \"Tiếp nhận\" & trả kết quả #3",
    "Sở Tư pháp — Phòng Hành chính tư pháp [2026]",
    "Văn phòng Đăng ký đất đai ‘chi nhánh’ Q.1, Q.3",
    "So Tu phap tinh Dong Thap",                                          # without diacritics
    unicodedata.normalize("NFD", "Sở Y tế"),                              # combining tone marks
    "Bộ Nội vụ",
    "x" * 200,
    "7",
]
BAD_NAMES = [
    (HYPERLINK, "'='"),
    (DDE, "'='"),
    ("Sở A\nSở B", "U+000A"),
    ("Sở A\x00", "U+0000"),
    ("Sở\tA", "U+0009"),
    ("Sở\u200bA", "ZERO WIDTH SPACE"),
    ("x" * 201, "at most 200 characters, got 201"),
    ("<<<", "'<'"),
    ("Sở <b>A</b>", "'<'"),
    ("Sở A 😀", "U+1F600"),
    ("Sở A | B", "'|'"),
    ("- - -", "at least one letter or digit"),
    ("   ", "required"),
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_of_vietnamese_agencies_pass(name: str) -> None:
    assert check_name(name) == unicodedata.normalize("NFC", name)
    assert check_name(f"  {name}\u00a0") == unicodedata.normalize("NFC", name)   # stripped, no-break space too


def test_decomposed_names_are_composed_and_other_spaces_become_plain() -> None:
    decomposed = unicodedata.normalize("NFD", "Sở Y tế")
    assert len(decomposed) > len("Sở Y tế") and check_name(decomposed) == "Sở Y tế"
    assert check_name("Sở\u00a0Y\u202ftế") == "Sở Y tế"


@pytest.mark.parametrize(("name", "words"), BAD_NAMES)
def test_names_that_cannot_be_spoken_or_printed_are_refused(name: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        check_name(name)


def test_agency_codes() -> None:
    for code in ("STNMT", "DEMO-STNMT-20261117020000000000", "so_tu.phap", "A" * 40, " H19 "):
        assert check_code(code) == code.strip()
    for code, words in (("", "required"), ("A" * 41, "at most 40"), ("SỞ", "'Ở'"), ("A B", "U+0020"),
                        ("=1", "'='"), ("A\nB", "U+000A")):
        with pytest.raises(ValueError, match=re.escape(words)):
            check_code(code)


@pytest.mark.parametrize(("name", "words"), BAD_NAMES[:6] + BAD_NAMES[7:11])
def test_the_api_refuses_bad_agency_and_campaign_names(client: Any, name: str, words: str) -> None:
    response = client.post(f"{API}/agencies", json={"code": "STP", "name": name})
    assert response.status_code == 400, response.json
    assert response.json["field"] == "name" and words in response.json["message"]
    good = client.post(f"{API}/agencies", json={"code": "STP", "name": GOOD_NAMES[1]})
    assert good.status_code == 201 and good.json["name"] == GOOD_NAMES[1]
    response = client.post(f"{API}/campaigns", json={"agency_id": good.json["id"], "name": name})
    assert response.status_code == 400 and response.json["field"] == "name", response.json
    assert words in response.json["message"]
    created = client.post(f"{API}/campaigns", json={"agency_id": good.json["id"], "name": GOOD_NAMES[0]})
    assert created.status_code == 201
    response = client.patch(f"{API}/campaigns/{created.json['id']}", json={"name": name})
    assert response.status_code == 400 and response.json["field"] == "name", response.json
    assert client.get(f"{API}/campaigns/{created.json['id']}").json["name"] == GOOD_NAMES[0]
    assert client.get(f"{API}/campaigns").json[-1]["name"] == GOOD_NAMES[0]
    assert len(client.get(f"{API}/agencies").json) == 1


def test_long_names_and_bad_codes_through_the_api(client: Any) -> None:
    response = client.post(f"{API}/agencies", json={"code": "STP", "name": "x" * 201})
    assert response.status_code in (400, 422) and response.json["field"] == "name"
    response = client.post(f"{API}/agencies", json={"code": "SỞ TƯ PHÁP", "name": "Sở Tư pháp"})
    assert response.status_code == 400 and response.json["field"] == "code"
    assert "'Ở'" in response.json["message"]
    agency = client.post(f"{API}/agencies", json={"code": "STP", "name": "Sở Tư pháp"}).json["id"]
    response = client.post(f"{API}/campaigns", json={"agency_id": agency, "name": "x" * 201})
    assert response.status_code in (400, 422) and response.json["field"] == "name"


def test_a_stored_name_that_is_no_longer_allowed_does_not_block_other_settings(app: Any, client: Any,
                                                                               clock: Any) -> None:
    """Names stored before the rule stay until renamed; changing another setting still works."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        agency = Agency(code="OLD", name="Sở <cũ>", created_at=clock())
        session.add(agency)
        session.flush()
        campaign = Campaign(agency_id=agency.id, name="Đợt <1>", questionnaire_key="sipas-2024",
                            window={"timezone": "Asia/Ho_Chi_Minh"}, retry={}, created_at=clock())
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    response = client.patch(f"{API}/campaigns/{campaign_id}", json={"calls_per_second": 2})
    assert response.status_code == 200 and response.json["name"] == "Đợt <1>"
    response = client.patch(f"{API}/campaigns/{campaign_id}", json={"name": "Đợt 1"})
    assert response.status_code == 200 and response.json["name"] == "Đợt 1"


# --------------------------------------------------------------------------- 3. JSON bodies

def deep_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def send(client: Any, method: str, path: str, body: str | bytes) -> Any:
    return client.open(path, method=method, data=body, content_type="application/json")


@pytest.fixture
def campaign_id(client: Any) -> int:
    agency = client.post(f"{API}/agencies", json={"code": "STP", "name": "Sở Tư pháp"}).json["id"]
    return client.post(f"{API}/campaigns", json={"agency_id": agency, "name": "Quý 4"}).json["id"]


@pytest.mark.parametrize("body", [
    # Deep enough to crash Python's decoder (its recursion limit is 1,000), small enough to
    # pass SIPAS_MAX_JSON_KB (a larger body is refused with 413 before it is read).
    deep_array(5_000),
    '{"agency_id": 1, "name": "x", "window": ' + deep_object(5_000) + "}",
    '{"agency_id": 1, "name": "x", "window": ' + deep_object(40) + "}",
    '{"agency_id": 1, "name": "x", "channel_plan": ' + deep_array(33) + "}",
    '{"a": "' + "[" * 50 + '\\"' + "[" * 50 + '", ' * 1 + '"b": ' + deep_array(40) + "}",
])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_deeply_nested_json_is_refused(client: Any, campaign_id: int, method: str, body: str) -> None:
    path = f"{API}/campaigns" if method == "POST" else f"{API}/campaigns/{campaign_id}"
    response = send(client, method, path, body)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["message"] == "request body: JSON nested deeper than 32 levels"
    assert set(response.json) == {"message", "field", "detail"} and response.json["field"] is None


@pytest.mark.parametrize(("body", "words"), [
    ('{"agency_id": ', "not valid JSON"),
    ("  ", "not valid JSON"),
    (b'{"name": "\xff"}', "not UTF-8"),
    ('{"agency_id": ' + "9" * 5000 + ', "name": "x"}', "a number with too many digits"),
    ("[" * 32 + "1" + "]" * 31, "not valid JSON"),
])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unreadable_json_is_refused(client: Any, campaign_id: int, method: str, body: str | bytes,
                                    words: str) -> None:
    path = f"{API}/campaigns" if method == "POST" else f"{API}/campaigns/{campaign_id}"
    response = send(client, method, path, body)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["message"].startswith("request body: ") and words in response.json["message"]


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_fine(client: Any, campaign_id: int) -> None:
    # 32 levels: the body is read and the schema or the service answers about its content.
    agency = client.get(f"{API}/campaigns/{campaign_id}").json["agency_id"]
    body = f'{{"agency_id": {agency}, "name": "x", "window": ' + deep_object(31) + "}"
    response = send(client, "POST", f"{API}/campaigns", body)
    assert response.status_code == 400 and response.json["field"] == "window"
    name = "Quý 4 " + "[" * 20 + "{" * 20
    response = send(client, "PATCH", f"{API}/campaigns/{campaign_id}",
                    '{"name": "' + name + '\\\\", "calls_per_second": 2, "window": {"parts": [["08:00", "11:00"]]}}')
    assert response.status_code == 400 and response.json["field"] == "name" and "'{'" in response.json["message"]
    response = send(client, "PATCH", f"{API}/campaigns/{campaign_id}", '{"calls_per_second": 2}')
    assert response.status_code == 200 and response.json["calls_per_second"] == 2


def test_an_empty_body_is_left_to_the_route(client: Any, campaign_id: int) -> None:
    response = send(client, "POST", f"{API}/campaigns", "")             # the schema needs a body
    assert response.status_code == 422 and response.json["field"] == "agency_id"
    response = send(client, "POST", f"{API}/campaigns/{campaign_id}/exports", "")   # takes none
    assert response.status_code == 201


# --------------------------------------------------------------------------- 4. frames parsed outside transactions

FRAME_CSV = ("Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày trả kết quả\n"
             "HS-1,Đất đai,Nguyễn Văn A,0912345678,02/11/2026\n"
             "HS-2,Hộ tịch,Trần Thị B,0987654321,03/11/2026\n").encode()


class Probe:
    """Tries, from a connection of its own, to do what a webhook does while the file is
    being read: write (SQLite, no busy wait) or lock the campaign row (PostgreSQL, NOWAIT).
    Either fails at once if the import holds a transaction or the campaign's lock."""

    def __init__(self, database_url: str, campaign_id: int) -> None:
        self.url, self.campaign_id = database_url, campaign_id
        self.results: list[str] = []

    def __call__(self) -> None:
        url = make_url(self.url)
        try:
            if url.get_backend_name() == "sqlite":
                connection = sqlite3.connect(url.database or "", timeout=0, isolation_level=None)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute("UPDATE campaigns SET name = name WHERE id = ?", (self.campaign_id,))
                    connection.execute("COMMIT")
                finally:
                    connection.close()
            else:
                engine = make_engine(self.url)
                try:
                    with engine.begin() as conn:
                        conn.execute(text("SELECT id FROM campaigns WHERE id = :id FOR UPDATE NOWAIT"),
                                     {"id": self.campaign_id})
                finally:
                    engine.dispose()
            self.results.append("ok")
        except Exception as exc:   # what the webhook would have met
            self.results.append(f"blocked: {exc}")


class ProbingFile(io.BytesIO):
    """A frame file whose reading runs the probe first."""

    name = "frame.csv"

    def __init__(self, content: bytes, probe: Probe) -> None:
        super().__init__(content)
        self.probe = probe

    def read(self, size: int | None = -1) -> bytes:
        self.probe()
        return super().read(size)


@pytest.fixture
def draft(app: Any, clock: Any) -> int:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "STP", "Sở Tư pháp", clock())
        return campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="Quý 4",
                                         questionnaire="sipas-2024", now=clock()).id


@pytest.fixture
def probe(database_url: str, draft: int) -> Probe:
    return Probe(database_url, draft)


@pytest.fixture
def probing_reader(monkeypatch: pytest.MonkeyPatch, probe: Probe) -> Probe:
    """``frames.read_frame`` runs the probe before it reads, whoever calls it."""
    read_frame = frames.read_frame

    def probing(*args: Any, **kwargs: Any) -> Any:
        probe()
        return read_frame(*args, **kwargs)

    monkeypatch.setattr(frames, "read_frame", probing)
    return probe


def test_import_file_reads_the_file_with_no_transaction_open(app: Any, draft: int, probe: Probe,
                                                             clock: Any) -> None:
    svc = app.extensions["sipas"]
    report = frames.import_file(svc.db, draft, ProbingFile(FRAME_CSV, probe), SampleRule("census"), 7, clock())
    assert probe.results == ["ok"]
    assert report.drawn == 2 and report.seed == 7
    with svc.db.begin() as session:
        assert session.get(Campaign, draft).sample_seed == 7


def test_import_file_checks_the_campaign_before_reading(app: Any, draft: int, probe: Probe, clock: Any) -> None:
    svc = app.extensions["sipas"]
    frames.import_file(svc.db, draft, io.BytesIO(FRAME_CSV), SampleRule("census"), 7, clock())
    source = ProbingFile(FRAME_CSV, probe)
    with pytest.raises(Conflict, match="already has a sample"):
        frames.import_file(svc.db, draft, source, SampleRule("census"), 7, clock())
    with pytest.raises(NotFound, match="campaign 999 not found"):
        frames.import_file(svc.db, 999, source, SampleRule("census"), 7, clock())
    with pytest.raises(InvalidInput, match="seed"):
        frames.import_file(svc.db, draft, source, SampleRule("census"), -1, clock())
    assert probe.results == []                                                 # never read


def test_the_upload_route_parses_before_its_transaction(client: Any, draft: int, probing_reader: Probe) -> None:
    response = client.post(f"{API}/campaigns/{draft}/frame",
                           data={"file": (io.BytesIO(FRAME_CSV), "ds.csv"), "rule": "census", "seed": "7"})
    assert response.status_code == 201, response.json
    assert probing_reader.results == ["ok"] and response.json["drawn"] == 2


def test_the_preview_route_parses_before_its_transaction(client: Any, probing_reader: Probe) -> None:
    response = client.post(f"{API}/frames/preview", data={"file": (io.BytesIO(FRAME_CSV), "ds.csv")})
    assert response.status_code == 200, response.json
    assert probing_reader.results == ["ok"] and response.json["eligible"] == 2


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Runs a command in this process (so monkeypatches apply); disposes the engines of the
    apps the commands built."""
    built: list[Any] = []
    build = cli_base.build_app

    def app() -> Any:
        built.append(build())
        return built[-1]

    monkeypatch.setattr(cli_base, "build_app", app)   # every command builds its app through it
    env = {"SIPAS_DATABASE_URL": database_url, "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    yield lambda *args: CliRunner().invoke(cli_module.cli, [str(a) for a in args], env=env)
    for application in built:
        application.extensions["sipas"].db.dispose()


def test_the_cli_parses_before_its_transaction(run_cli: Any, draft: int, probing_reader: Probe,
                                               tmp_path: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_bytes(FRAME_CSV)
    previewed = run_cli("preview-frame", path)
    assert previewed.exit_code == 0, previewed.output
    imported = run_cli("import-frame", draft, path, "--rule", "census", "--seed", "7")
    assert imported.exit_code == 0, imported.output
    assert probing_reader.results == ["ok", "ok"] and '"drawn": 2' in imported.output


# --------------------------------------------------------------------------- 5. a CallSid bound to another attempt

@pytest.fixture
def two_calls(app: Any, clock: Any, tmp_path: Path) -> list[Any]:
    """A running campaign of two contacts, both claimed: two attempts waiting for callbacks."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "STP", "Sở Tư pháp", clock())
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="Quý 4",
                                             questionnaire="sipas-2024", now=clock(), calls_per_second=50.0)
        frames.import_and_sample(session, campaign, io.BytesIO(FRAME_CSV), SampleRule("census"), 7, clock())
        campaigns.transition(session, campaign.id, "start", clock())
    claimed = dispatch.claim_due(svc.db, dispatch.Pacing("simulator", 1000.0, 1000), clock(), 50)
    assert len(claimed) == 2
    return claimed


def test_a_callsid_already_bound_to_another_attempt_is_a_conflict(app: Any, client: Any, two_calls: list[Any],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    first, second = two_calls
    sid = "CA" + uuid.uuid4().hex
    assert client.post(f"/voice/{first.token}/answer", data={"CallSid": sid}).status_code == 200
    caplog.set_level(logging.WARNING)
    for kind, form in (("status", {"CallStatus": "ringing"}), ("status", {"CallStatus": "completed"}),
                       ("answer", {})):
        response = client.post(f"/voice/{second.token}/{kind}", data={"CallSid": sid, **form})
        assert response.status_code == 409, response.get_data(as_text=True)
        assert "CallSid" in response.get_data(as_text=True)
    assert any(sid in record.getMessage() and "another" in record.getMessage() for record in caplog.records)
    with app.extensions["sipas"].db.begin() as session:
        attempt = session.get(Attempt, second.attempt_id)
        assert attempt.provider_id is None and attempt.status is AttemptStatus.QUEUED   # nothing stored
        assert session.get(Attempt, first.attempt_id).provider_id == sid
    # The second attempt's own call still goes through.
    own = "CA" + uuid.uuid4().hex
    response = client.post(f"/voice/{second.token}/status", data={"CallSid": own, "CallStatus": "ringing"})
    assert response.status_code == 204
    response = client.post(f"/voice/{first.token}/status", data={"CallSid": sid, "CallStatus": "ringing"})
    assert response.status_code == 204


def test_the_service_refuses_a_callsid_of_another_attempt(app: Any, two_calls: list[Any], clock: Any) -> None:
    svc = app.extensions["sipas"]
    first, second = two_calls
    sid = "CA" + "1" * 32
    with svc.db.begin() as session:
        voice.call_status(session, svc.registry, first.token, sid, "ringing", None, None, None, clock())
    with pytest.raises(Conflict) as caught, svc.db.begin() as session:
        voice.call_status(session, svc.registry, second.token, sid, "no-answer", None, None, None, clock())
    assert caught.value.field == "CallSid"


# --------------------------------------------------------------------------- 6. numbers out of range

BIG = 2**31          # one past the INTEGER columns
HUGE = 10**30


@pytest.mark.parametrize(("body", "field"), [
    ({"agency_id": BIG}, "agency_id"),
    ({"agency_id": HUGE}, "agency_id"),
    ({"agency_id": 0}, "agency_id"),
    ({"agency_id": -1}, "agency_id"),
    ('{"agency_id": 1e400}', "agency_id"),
    ({"target_completes": HUGE}, "target_completes"),
    ({"target_completes": BIG}, "target_completes"),
    ('{"calls_per_second": 1e400}', "calls_per_second"),
    ('{"calls_per_second": NaN}', "calls_per_second"),
    ('{"calls_per_second": -Infinity}', "calls_per_second"),
    ({"calls_per_second": HUGE}, "calls_per_second"),
    ({"starts_at": "9999-12-31T23:59:59-14:00"}, "starts_at"),
    ({"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at"),
    ({"ends_at": "9999-12-31T23:00:00-01:00"}, "ends_at"),
    ({"retry": {"delays": {"busy": HUGE}}}, "retry"),
    ('{"retry": {"delays": {"busy": 1e400}}}', "retry"),
    ('{"retry": {"min_gap_s": NaN}}', "retry"),
    ('{"retry": {"max_attempts": 1e400}}', "retry"),
    ({"window": {"weekdays": [HUGE]}}, "window"),
    ({"channel_plan": [{"channel": "voice", "max_attempts": HUGE}]}, "channel_plan"),
])
def test_numbers_out_of_range_in_a_new_campaign_name_their_field(client: Any, body: dict[str, Any] | str,
                                                                  field: str) -> None:
    agency = client.post(f"{API}/agencies", json={"code": "STP", "name": "Sở Tư pháp"}).json["id"]
    if isinstance(body, str):
        text_body = body.replace("{", f'{{"agency_id": {agency}, "name": "Q", ', 1).replace(", }", "}")
        if '"agency_id": 1e400' in body:
            text_body = '{"name": "Q", ' + body[1:]
        response = send(client, "POST", f"{API}/campaigns", text_body)
    else:
        response = client.post(f"{API}/campaigns", json={"agency_id": agency, "name": "Q", **body})
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert response.json["field"] == field, response.json
    assert client.get(f"{API}/campaigns").json == []


@pytest.mark.parametrize(("body", "field"), [
    ({"target_completes": HUGE}, "target_completes"),
    ('{"calls_per_second": NaN}', "calls_per_second"),
    ('{"calls_per_second": 1e400}', "calls_per_second"),
    ({"ends_at": "0001-01-01T00:00:00+01:00"}, "ends_at"),
    ({"starts_at": "9999-12-31T23:59:59-14:00"}, "starts_at"),
    ({"name": "x" * 201}, "name"),
])
def test_numbers_out_of_range_in_a_change_name_their_field(client: Any, campaign_id: int,
                                                           body: dict[str, Any] | str, field: str) -> None:
    path = f"{API}/campaigns/{campaign_id}"
    response = send(client, "PATCH", path, body) if isinstance(body, str) else client.patch(path, json=body)
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert response.json["field"] == field, response.json


@pytest.mark.parametrize(("rule", "field"), [
    ({"kind": "fixed", "n": HUGE}, "sample_rule"),
    ({"kind": "fixed", "n": 2.5}, "sample_rule"),
    ({"kind": "fixed", "n": True}, "sample_rule"),
    ('{"kind": "fixed", "n": 1e400}', "sample_rule"),
    ('{"kind": "slovin", "margin": NaN}', "sample_rule"),
    ('{"kind": "slovin", "margin": -Infinity}', "sample_rule"),
    ({"kind": "slovin", "margin": True}, "sample_rule"),
])
def test_sample_rules_out_of_range_are_refused(client: Any, rule: dict[str, Any] | str, field: str) -> None:
    if isinstance(rule, str):
        response = send(client, "POST", f"{API}/agencies", '{"code": "X", "name": "Sở X", "sample_rule": ' + rule + "}")
    else:
        response = client.post(f"{API}/agencies", json={"code": "X", "name": "Sở X", "sample_rule": rule})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["field"] == field
    assert client.get(f"{API}/agencies").json == []


@pytest.mark.parametrize(("form", "field"), [
    ({"rule": "fixed", "n": str(HUGE)}, "n"),
    ({"rule": "fixed", "n": str(BIG)}, "n"),
    ({"rule": "fixed", "n": "0"}, "n"),
    ({"rule": "slovin", "margin": "nan"}, "margin"),
    ({"rule": "slovin", "margin": "inf"}, "margin"),
    ({"rule": "slovin", "margin": "1e400"}, "margin"),
    ({"seed": str(HUGE)}, "seed"),
    ({"reserve": "nan"}, "reserve"),
    ({"replicates": str(HUGE)}, "replicates"),
    ({"recent_days": str(HUGE)}, "recent_days"),
])
def test_frame_parameters_out_of_range_name_their_field(client: Any, campaign_id: int, form: dict[str, str],
                                                        field: str) -> None:
    response = client.post(f"{API}/campaigns/{campaign_id}/frame",
                           data={"file": (io.BytesIO(FRAME_CSV), "ds.csv"), **form})
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert response.json["field"] == field, response.json
    assert client.get(f"{API}/campaigns/{campaign_id}").json["sample_seed"] is None


def test_the_cli_names_the_field_of_a_number_out_of_range(app: Any, run_cli: Any, draft: int, tmp_path: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_bytes(FRAME_CSV)
    with app.extensions["sipas"].db.begin() as session:
        agency = session.get(Campaign, draft).agency_id
    for args, words in (
        (("create-campaign", "--agency-id", BIG, "--name", "Q"), "agency_id: "),
        (("create-campaign", "--agency-id", -5, "--name", "Q"), "agency_id: "),
        (("create-campaign", "--agency-id", agency, "--name", "Q", "--calls-per-second", "inf"), "calls_per_second: "),
        (("create-campaign", "--agency-id", agency, "--name", "Q", "--calls-per-second", "nan"), "calls_per_second: "),
        (("create-campaign", "--agency-id", agency, "--name", "Q", "--target-completes", HUGE), "target_completes: "),
        (("configure-campaign", draft, "--starts-at", "9999-12-31T23:59:59-14:00"), "starts_at: "),
        (("configure-campaign", draft, "--calls-per-second", "-inf"), "calls_per_second: "),
        (("import-frame", draft, path, "--rule", "fixed", "--n", HUGE), "n: "),
        (("import-frame", draft, path, "--rule", "fixed", "--n", 0), "n: "),
        (("import-frame", draft, path, "--rule", "slovin", "--margin", "nan"), "margin: "),
        (("import-frame", draft, path, "--rule", "cochran", "--margin", "inf"), "margin: "),
        (("import-frame", draft, path, "--reserve", "nan"), "reserve: "),
        (("import-frame", draft, path, "--seed", HUGE), "seed: "),
        (("create-agency", "X", "Sở X", "--rule", "fixed", "--n", HUGE), "sample_rule: "),
        (("create-agency", "X", "Sở X", "--rule", "slovin", "--margin", "nan"), "sample_rule: "),
        (("campaign", "start", HUGE), "not found"),
    ):
        result = run_cli(*args)
        assert result.exit_code == 1 and words in result.output, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
