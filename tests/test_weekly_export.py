"""The weekly CCHC export: when it is due, what it writes, and that it runs once per week
across workers (job_runs under an advisory lock), catching up after a crash."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr_service.core.schedule import WeeklySchedule
from ivr_service.persistence.models import Campaign, JobRun
from ivr_service.services import weekly
from ivr_service.worker import Worker

from .conftest import phones

MONDAY_7 = WeeklySchedule(0, time(7), "Asia/Ho_Chi_Minh")


def test_the_week_runs_from_its_scheduled_local_instant() -> None:
    tuesday = datetime(2026, 11, 17, 2, tzinfo=UTC)                         # 09:00 in Hanoi
    assert MONDAY_7.last_run(tuesday) == ("2026-W47", datetime(2026, 11, 16, 0, tzinfo=UTC))
    just_before = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)                # Mon 23 Nov 06:59 local
    assert MONDAY_7.last_run(just_before)[0] == "2026-W47"
    assert MONDAY_7.last_run(datetime(2026, 11, 23, 0, tzinfo=UTC))[0] == "2026-W48"   # 07:00 local
    assert MONDAY_7.last_run(datetime(2027, 1, 4, 0, tzinfo=UTC))[0] == "2027-W01"
    friday = WeeklySchedule.parse("fri 16:30", "Asia/Ho_Chi_Minh")
    assert friday == WeeklySchedule(4, time(16, 30), "Asia/Ho_Chi_Minh")
    assert friday.last_run(tuesday) == ("2026-W46", datetime(2026, 11, 13, 9, 30, tzinfo=UTC))
    assert WeeklySchedule.parse("off", "UTC") is None
    for bad in ("monday 07:00", "mon", "mon 25:00"):
        with pytest.raises(ValueError, match="mon 07:00"):
            WeeklySchedule.parse(bad, "UTC")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_export_is_written_once_per_week_without_personal_data(app: Any, make_campaign: Any, claim: Any,
                                                                   tmp_path: Path, clock: Any) -> None:
    svc = app.extensions["sipas"]
    numbers = phones(6)
    running = make_campaign(numbers)
    draft = make_campaign(phones(2, base=50), start=False)
    claim()
    out = tmp_path / "exports"

    directory = weekly.run_if_due(svc.db, svc.registry, MONDAY_7, out, clock())
    assert directory == out / "weekly" / "2026-W47"
    summary = rows(directory / "summary.csv")
    assert [int(r["campaign_id"]) for r in summary] == [running]                # drafts have nothing to report
    assert summary[0]["contacts"] == "6" and summary[0]["attempts"] == "6" and summary[0]["status"] == "running"
    workbook = directory / summary[0]["workbook"]
    assert workbook.exists()
    written = sorted(p.name for p in directory.iterdir())
    text = "".join(p.read_text(encoding="utf-8-sig") for p in directory.glob("*.csv"))
    assert not any(n[1:] in text or ("84" + n[1:]) in text for n in numbers)
    with svc.db.begin() as session:
        assert session.get(Campaign, running).export_path is None              # the final export is still to come
        run = session.get(JobRun, ("weekly-export", "2026-W47"))
        assert run.finished_at == clock() and run.detail["campaigns"] == [running]
        assert session.get(Campaign, draft).status.value == "draft"

    clock.advance(days=1)                                                       # same week: done already
    assert weekly.run_if_due(svc.db, svc.registry, MONDAY_7, out, clock()) is None
    assert sorted(p.name for p in directory.iterdir()) == written
    clock.advance(days=6)                                                       # Tue 24 Nov: next week's is due
    assert weekly.run_if_due(svc.db, svc.registry, MONDAY_7, out, clock()) == out / "weekly" / "2026-W48"


def test_an_unfinished_week_is_written_again(app: Any, make_campaign: Any, tmp_path: Path, clock: Any) -> None:
    """A worker that died mid-export left a started, unfinished run: the next check redoes it."""
    svc = app.extensions["sipas"]
    make_campaign(phones(2))
    with svc.db.begin() as session:
        session.add(JobRun(name="weekly-export", period="2026-W47", started_at=clock()))
    directory = weekly.run_if_due(svc.db, svc.registry, MONDAY_7, tmp_path, clock())
    assert directory is not None and (directory / "summary.csv").exists()
    assert not list(directory.glob("*.part"))


def test_a_second_worker_waits_for_the_lock_holder(app: Any, make_campaign: Any, tmp_path: Path, clock: Any) -> None:
    svc = app.extensions["sipas"]
    if svc.db.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's (SQLite runs one worker)")
    make_campaign(phones(2))
    with svc.db.cluster_lock("weekly-export") as held:                         # another worker is writing
        assert held
        assert weekly.run_if_due(svc.db, svc.registry, MONDAY_7, tmp_path, clock()) is None
    with svc.db.begin() as session:
        assert session.scalars(select(JobRun)).all() == []
    assert weekly.run_if_due(svc.db, svc.registry, MONDAY_7, tmp_path, clock()) is not None


def test_every_worker_schedules_the_jobs_with_stable_ids(app: Any, provider: Any) -> None:
    scheduler = Worker(app, provider=provider).scheduler(blocking=False)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"dispatch", "housekeeping", "reconcile", "weekly-export", "messages", "reminders",
                         "expire-links", "alerts", "period-reports", "retention", "intake"}
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
