"""The CCHC report of a province and of a campaign: what it counts, how units roll up and
rank, suppression, the previous period, QR answers kept apart, and the workbook itself
(sheets, native charts, formats, print set-up, no personal data). Every figure is also
recomputed independently in tests/test_report_recomputed.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from ivr_service.persistence.models import Contact, Interview, InterviewStatus
from ivr_service.services import reports
from ivr_service.services.errors import NotFound, ServiceError

from .report_data import PERIOD, seed_province

NOW = datetime(2026, 10, 2, 1, 0, tzinfo=UTC)
SHEETS_VI = ["Tổng quan", "Chỉ số", "Cảnh báo", "Đơn vị", "Lĩnh vực", "Thủ tục", "Bộ phận", "Công chức", "Nhu cầu",
             "So sánh", "Chiến dịch", "Tầng mẫu", "Phương pháp", "QR tự chọn"]


@pytest.fixture
def province(app: Any) -> Any:
    svc = app.extensions["sipas"]
    return seed_province(svc.db, svc.registry.get("sipas-2024"))


def build(app: Any, **scope: Any) -> reports.Report:
    svc = app.extensions["sipas"]
    if "period" in scope:
        kind, period, previous = reports.period_of_label(scope.pop("period"))
        scope.update(period=period, kind=kind, previous=previous)
    with svc.db.begin() as session:
        return reports.build(session, svc.registry, NOW, **scope)


def generate(app: Any, directory: Path, **scope: Any) -> Path:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        return reports.generate(session, svc.registry, NOW, directory, **scope)


def test_a_province_report_counts_the_interviews_that_ended_in_its_quarter(app: Any, province: Any) -> None:
    report = build(app, agency_id=province.agencies["PROV"], period=PERIOD)
    start, end = reports.bounds(report.period, "Asia/Ho_Chi_Minh")
    assert (start, end) == (datetime(2026, 6, 30, 17, 0, tzinfo=UTC), datetime(2026, 9, 30, 17, 0, tzinfo=UTC))
    with app.extensions["sipas"].db.begin() as session:
        expected = session.scalar(select(func.count()).select_from(Interview).where(
            Interview.status.in_([InterviewStatus.COMPLETE, InterviewStatus.PARTIAL]),
            Interview.ended_at >= start, Interview.ended_at < end))
    assert report.scores.n_respondents == expected
    assert {c.id for c in report.campaigns} == set(province.campaigns.values())
    assert report.agency_path == ("Tỉnh Mẫu",)
    assert report.previous is not None and report.previous.label == "2026-Q2"
    assert report.previous_scores is not None and report.previous_scores.n_respondents > 0
    assert {c.kind for c in report.changes} == {"service", "factor", "criterion", "overall"}


def test_units_roll_up_by_eligible_population_and_small_units_are_not_ranked(app: Any, province: Any) -> None:
    report = build(app, agency_id=province.agencies["PROV"], period=PERIOD)
    units = {(u.code, u.own): u for u in report.units}
    assert set(units) == {("PROV", True), ("SO1", False), ("SO2", False), ("XA1", False)}
    small = units[("SO2", False)]
    assert small.respondents < report.min_n and small.suppressed and small.rank is None
    assert sorted(u.rank for u in report.units if u.rank is not None) == [1, 2, 3]
    # The node is exactly its units weighted by their N, whatever their size.
    total = sum(u.eligible for u in report.units)
    assert report.rollup.service_index == pytest.approx(
        sum(u.eligible * u.figures.service_index for u in report.units if u.figures.service_index is not None)
        / total)
    # SO1's figures include the office below it (PH11), weighted by their own N.
    department = build(app, agency_id=province.agencies["SO1"], period=PERIOD)
    assert department.rollup.service_index == pytest.approx(units[("SO1", False)].figures.service_index)
    assert {u.code for u in department.units} == {"SO1", "PH11"}


def test_breakdowns_suppress_small_groups_and_follow_the_frame(app: Any, province: Any) -> None:
    report = build(app, agency_id=province.agencies["PROV"], period=PERIOD, min_n=40)
    fields = {g.value: g for g in report.breakdowns["field"]}
    assert set(fields) == {"Hộ tịch", "Đất đai", "Xây dựng"}
    assert sum(g.respondents for g in fields.values()) == report.scores.n_respondents
    assert fields["Xây dựng"].suppressed and not fields["Hộ tịch"].suppressed
    officers = {g.value for g in report.breakdowns["officer"]}
    assert officers == {"Cán bộ A", "Cán bộ B"}
    assert all(g.respondents >= 1 for g in report.breakdowns["procedure"])
    assert all(u.suppressed == (u.respondents < 40) for u in report.units)


def test_self_selected_qr_answers_stay_on_their_own(app: Any, province: Any) -> None:
    with_qr = build(app, agency_id=province.agencies["PROV"], period=PERIOD)
    assert len(with_qr.qr) == 1 and with_qr.qr[0].scores.n_respondents > 0
    assert sum(with_qr.qr[0].statuses.values()) == 25
    with app.extensions["sipas"].db.begin() as session:
        sampled = session.scalar(select(func.count()).select_from(Interview))
    assert with_qr.scores.n_respondents <= sampled   # QR forms are not interviews


def test_the_workbook_has_every_sheet_native_charts_formats_and_print_set_up(app: Any, province: Any,
                                                                             tmp_path: Path) -> None:
    path = generate(app, tmp_path, agency_id=province.agencies["PROV"], period=PERIOD)
    assert path.name == "sipas-report-PROV-2026-Q3.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == SHEETS_VI
    indices = book["Chỉ số"]
    assert len(indices._charts) == 1 + 5   # the factors, then one per factor
    assert indices.freeze_panes == "A5"
    assert indices.page_setup.paperSize == 9 and indices.page_setup.orientation == "landscape"
    assert indices["A4"].value == "Mã" and indices["I4"].value == "Chỉ số"
    assert indices["A5"].value == "SIPAS" and indices["I5"].number_format == "0.0%"
    assert 0 < indices["I5"].value < 1
    cover = {row[0]: row[1] for row in book["Tổng quan"].iter_rows(min_row=5, values_only=True)}
    assert cover["Quy tắc cỡ mẫu"] == "seed002"   # no agency of the seeded province configures another
    assert {row[11] for row in book["Chiến dịch"].iter_rows(min_row=5, values_only=True)} == {"seed002"}
    flagged = [row for row in book["Cảnh báo"].iter_rows(min_row=5, values_only=True) if row[0]]
    report = build(app, agency_id=province.agencies["PROV"], period=PERIOD)
    assert [r[1] for r in flagged if r[0] == "Toàn bộ"] == list(report.flagged)
    assert all(r[5] > 0.25 for r in flagged)
    # No phone number and no name anywhere.
    with app.extensions["sipas"].db.begin() as session:
        phones = set(session.scalars(select(Contact.phone_e164)))
    cells = {str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}
    assert not any(p in cell or "0" + p[3:] in cell for p in phones for cell in cells)


def test_english_on_request_and_a_campaign_report_without_a_period(app: Any, province: Any, tmp_path: Path) -> None:
    path = generate(app, tmp_path, campaign_id=province.campaigns["XA1"], lang="en")
    assert path.name == f"sipas-report-campaign-{province.campaigns['XA1']}-en.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[:3] == ["Cover", "Indices", "Flagged"]
    assert "Units" not in book.sheetnames and "Change" not in book.sheetnames
    cover = {row[0]: row[1] for row in book["Cover"].iter_rows(min_row=5, values_only=True)}
    assert cover["Period"] == "The whole campaign"
    report = build(app, campaign_id=province.campaigns["XA1"])
    assert cover["Responses counted"] == report.scores.n_respondents > 0
    assert book["Method"]["A5"].value == "Responses counted"


def test_a_period_without_interviews_still_gives_a_report(app: Any, province: Any, tmp_path: Path) -> None:
    path = generate(app, tmp_path, agency_id=province.agencies["SO2"], period="2025-H1")
    cover = {row[0]: row[1] for row in openpyxl.load_workbook(path)["Tổng quan"].iter_rows(min_row=5,
                                                                                           values_only=True)}
    assert cover["Số phiếu được tính"] == 0 and cover["Thời gian khảo sát"] == "Không có phiếu trong kỳ"


@pytest.mark.parametrize(("scope", "field"), [
    ({"period": "2026-13"}, "period"), ({"period": None}, "period"), ({"lang": "fr", "period": PERIOD}, "lang"),
])
def test_bad_requests_name_the_field(app: Any, province: Any, tmp_path: Path, scope: dict[str, Any],
                                     field: str) -> None:
    with pytest.raises(ServiceError) as raised:
        generate(app, tmp_path, agency_id=province.agencies["PROV"], **scope)
    assert raised.value.field == field
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_agency_is_not_found(app: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        generate(app, tmp_path, agency_id=999, period=PERIOD)
