"""Scheduled CCHC period reports: which period is due when, what is written where, and
that each period's reports are written once across workers (job_runs under an advisory
lock), retried after a crash, and only the last finished period by a worker that starts
late."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.persistence.models import JobRun
from ivr_service.services import period_reports, reports
from ivr_service.services.errors import invalid
from ivr_service.settings import Settings, SettingsError, report_kinds
from ivr_service.worker import Worker

from .conftest import Call, phones

MIDNIGHT_DEC_1 = datetime(2026, 11, 30, 17, tzinfo=UTC)      # 00:00 on 1 December in Hà Nội
MIDNIGHT_JAN_1 = datetime(2026, 12, 31, 17, tzinfo=UTC)


@pytest.fixture
def surveyed(app: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int], claim: Any,
             ) -> dict[str, int]:
    """A province with two districts; three complete interviews in the northern district on
    Tuesday 17 November 2026 (the clock's day)."""
    province = make_agency("DN", "Tỉnh Đắk Nông")
    north = make_agency("DN-N", "Huyện Cư Jút", parent_id=province)
    south = make_agency("DN-S", "Huyện Krông Nô", parent_id=province)
    campaign = make_campaign(phones(3), agency=north, name="Quý 4 Cư Jút")
    complete(app, claim())
    return {"province": province, "north": north, "south": south, "campaign": campaign}


def complete(app: Any, claimed: list[Any]) -> None:
    """Play each claimed call through to a complete interview."""
    for item in claimed:
        call = Call(app.test_client(), item)
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
        call.status("completed", CallDuration="120")


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def sheets(path: Path) -> list[str]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def runs(app: Any) -> list[tuple[str, str, bool]]:
    with app.extensions["sipas"].db.begin() as session:
        return [(r.name, r.period, r.finished_at is not None)
                for r in session.scalars(select(JobRun).order_by(JobRun.name, JobRun.period))]


def test_the_due_period_is_the_last_one_over_in_local_time() -> None:
    zone = "Asia/Ho_Chi_Minh"
    just_before = datetime(2026, 11, 30, 16, 59, tzinfo=UTC)                # 23:59 on 30 November
    assert period_reports.last_finished("month", just_before, zone).label == "2026-10"
    assert period_reports.last_finished("month", MIDNIGHT_DEC_1, zone).label == "2026-11"
    assert period_reports.last_finished("quarter", MIDNIGHT_DEC_1, zone).label == "2026-Q3"
    assert period_reports.last_finished("half", MIDNIGHT_DEC_1, zone).label == "2026-H1"
    assert period_reports.last_finished("quarter", MIDNIGHT_JAN_1, zone).label == "2026-Q4"
    assert period_reports.last_finished("half", MIDNIGHT_JAN_1, zone).label == "2026-H2"
    assert period_reports.last_finished("month", MIDNIGHT_DEC_1, "UTC").label == "2026-10"   # 17:00 in London


def test_the_report_periods_setting() -> None:
    assert Settings().report_period_kinds == ("month", "quarter", "half")
    assert Settings.from_env({"SIPAS_REPORT_PERIODS": " Quarter,month,quarter "}).report_period_kinds == (
        "quarter", "month")
    assert Settings.from_env({"SIPAS_REPORT_PERIODS": "off"}).report_period_kinds == ()
    assert Settings(report_periods="").report_period_kinds == ()
    assert report_kinds("half") == ("half",)
    with pytest.raises(SettingsError, match=r"^SIPAS_REPORT_PERIODS: expected .*month, quarter, half.*'week'"):
        Settings.from_env({"SIPAS_REPORT_PERIODS": "month,week"})
    with pytest.raises(SettingsError, match="SIPAS_REPORT_MIN_N"):
        Settings.from_env({"SIPAS_REPORT_MIN_N": "0"})
    with pytest.raises(SettingsError, match="SIPAS_SATISFACTION_TARGET"):
        Settings.from_env({"SIPAS_SATISFACTION_TARGET": "101"})


def test_each_period_is_written_once_across_two_workers_when_it_is_over(
        app: Any, surveyed: dict[str, int], make_settings: Callable[..., Settings], make_campaign: Callable[..., int],
        claim: Any, provider: Any, clock: Any) -> None:
    other = create_app(make_settings(report_periods="month,quarter", report_min_n=5), clock=clock)
    try:
        first, second = Worker(app, provider=provider), Worker(other, provider=provider)
        reports_dir = Path(app.extensions["sipas"].settings.export_dir) / "reports"

        # 17 November: October (no interviews) is the last month over; November is not over.
        assert first.period_reports() == [reports_dir / "2026-10", reports_dir / "2026-Q3", reports_dir / "2026-H1"]
        assert second.period_reports() == []
        assert files(reports_dir / "2026-10") == []
        clock.current = datetime(2026, 11, 30, 16, 59, tzinfo=UTC)          # 23:59 local on the last day
        assert first.period_reports() == second.period_reports() == []
        assert not (reports_dir / "2026-11").exists()

        clock.current = MIDNIGHT_DEC_1                                      # the first check after midnight
        assert second.period_reports() == [reports_dir / "2026-11"]
        written = files(reports_dir / "2026-11")
        # One report per node with interviews below it: the district and its province.
        assert written == ["sipas-report-DN-2026-11.xlsx", "sipas-report-DN-N-2026-11.xlsx"]
        stamps = {name: (reports_dir / "2026-11" / name).stat().st_mtime_ns for name in written}
        clock.advance(minutes=1)
        assert first.period_reports() == second.period_reports() == []
        assert {n: (reports_dir / "2026-11" / n).stat().st_mtime_ns for n in written} == stamps
        for name in written:
            assert {"Tổng quan", "Chỉ số"} <= set(sheets(reports_dir / "2026-11" / name))
        assert ("report-month", "2026-11", True) in runs(app)

        # December: the other district answers; the month and the quarter are over on 1 January.
        clock.current = datetime(2026, 12, 10, 2, tzinfo=UTC)               # Thursday, 09:00 local
        make_campaign(phones(2, base=10), agency=surveyed["south"], name="Tháng 12 Krông Nô")
        complete(app, claim())
        clock.current = MIDNIGHT_JAN_1
        assert first.period_reports() == [reports_dir / "2026-12", reports_dir / "2026-Q4", reports_dir / "2026-H2"]
        assert second.period_reports() == []
        assert files(reports_dir / "2026-12") == ["sipas-report-DN-2026-12.xlsx", "sipas-report-DN-S-2026-12.xlsx"]
        assert files(reports_dir / "2026-Q4") == ["sipas-report-DN-2026-Q4.xlsx", "sipas-report-DN-N-2026-Q4.xlsx",
                                                  "sipas-report-DN-S-2026-Q4.xlsx"]
        assert files(reports_dir / "2026-H2") == ["sipas-report-DN-2026-H2.xlsx", "sipas-report-DN-N-2026-H2.xlsx",
                                                  "sipas-report-DN-S-2026-H2.xlsx"]
        assert [r for r in runs(app) if not r[2]] == []
        assert not [p for p in reports_dir.iterdir() if p.name.startswith(".")]   # no scratch left behind
    finally:
        other.extensions["sipas"].db.dispose()


def test_an_unfinished_period_is_written_again(app: Any, surveyed: dict[str, int], clock: Any) -> None:
    """A worker that died mid-way left a started, unfinished run: the next check redoes it."""
    svc = app.extensions["sipas"]
    clock.current = MIDNIGHT_DEC_1
    with svc.db.begin() as session:
        session.add(JobRun(name="report-month", period="2026-11", started_at=clock()))
    out = Path(svc.settings.export_dir)
    (out / "reports" / "2026-11").mkdir(parents=True)
    (out / "reports" / "2026-11" / "sipas-report-DN-N-2026-11.xlsx").write_bytes(b"half a workbook")
    directory = period_reports.run_period_if_due(svc.db, svc.registry, "month", out, clock())
    assert directory == out / "reports" / "2026-11"
    assert files(directory) == ["sipas-report-DN-2026-11.xlsx", "sipas-report-DN-N-2026-11.xlsx"]
    assert "Chỉ số" in sheets(directory / "sipas-report-DN-N-2026-11.xlsx")
    assert ("report-month", "2026-11", True) in runs(app)
    assert period_reports.run_period_if_due(svc.db, svc.registry, "month", out, clock()) is None


def test_a_late_worker_writes_only_the_last_finished_period(app: Any, surveyed: dict[str, int], clock: Any) -> None:
    svc = app.extensions["sipas"]
    clock.current = datetime(2027, 2, 15, 3, tzinfo=UTC)
    out = Path(svc.settings.export_dir)
    written = period_reports.run_if_due(svc.db, svc.registry, ("month", "quarter"), out, clock())
    assert written == [out / "reports" / "2027-01", out / "reports" / "2026-Q4"]
    assert not (out / "reports" / "2026-11").exists() and not (out / "reports" / "2026-12").exists()
    assert files(out / "reports" / "2027-01") == []
    assert len(files(out / "reports" / "2026-Q4")) == 2
    assert runs(app) == [("report-month", "2027-01", True), ("report-quarter", "2026-Q4", True)]


def test_reports_take_the_settings_and_off_writes_none(make_settings: Callable[..., Settings], clock: Any,
                                                       provider: Any) -> None:
    quiet = create_app(make_settings(report_periods="off", report_min_n=12, satisfaction_target=90.0), clock=clock)
    try:
        assert Worker(quiet, provider=provider).period_reports() == []
        assert runs(quiet) == []
        options = period_reports.ReportOptions.from_settings(quiet.extensions["sipas"].settings)
        assert options.arguments() == {"timezone": "Asia/Ho_Chi_Minh", "min_n": 12, "target": 90.0}
    finally:
        quiet.extensions["sipas"].db.dispose()


def test_a_second_worker_waits_for_the_lock_holder(app: Any, surveyed: dict[str, int], clock: Any) -> None:
    svc = app.extensions["sipas"]
    if svc.db.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's (SQLite runs one worker)")
    clock.current = MIDNIGHT_DEC_1
    out = Path(svc.settings.export_dir)
    with svc.db.cluster_lock("report-month") as held:                      # another worker is writing
        assert held
        assert period_reports.run_period_if_due(svc.db, svc.registry, "month", out, clock()) is None
    assert runs(app) == []
    assert period_reports.run_period_if_due(svc.db, svc.registry, "month", out, clock()) == out / "reports" / "2026-11"


def test_a_refused_report_does_not_hold_back_the_others(app: Any, surveyed: dict[str, int], clock: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    svc = app.extensions["sipas"]
    generate = reports.generate

    def refusing(session: Any, *args: Any, agency_id: int | None = None, **kwargs: Any) -> Path:
        if agency_id == surveyed["north"]:
            raise invalid("questionnaire", "no such questionnaire 'gone'")
        return generate(session, *args, agency_id=agency_id, **kwargs)

    monkeypatch.setattr(reports, "generate", refusing)
    clock.current = MIDNIGHT_DEC_1
    out = Path(svc.settings.export_dir)
    directory = period_reports.run_period_if_due(svc.db, svc.registry, "month", out, clock())
    assert directory is not None and files(directory) == ["sipas-report-DN-2026-11.xlsx"]
    with svc.db.begin() as session:
        run = session.get(JobRun, ("report-month", "2026-11"))
        assert run.finished_at == clock()
        assert run.detail["refused"] == {str(surveyed["north"]): "questionnaire: no such questionnaire 'gone'"}
