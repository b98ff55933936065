"""Files the service writes are private to its user (0o700 directories, 0o600 files)
whatever the caller's umask; exports are downloaded by name, never shown as server paths;
exports older than SIPAS_EXPORT_RETENTION_DAYS are removed and nothing points at them."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr_service.core.schedule import WeeklySchedule
from ivr_service.persistence import files
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Campaign, CampaignStatus
from ivr_service.services import campaigns, export_retention, results, weekly
from ivr_service.services.frame_uploads import UploadStore
from ivr_service.settings import Settings

from .conftest import api_token, phones

API = "/api/v1"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A caller with the common 0o022 umask: what the service writes must still be private."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def assert_private(root: Path) -> list[Path]:
    found = [root, *root.rglob("*")]
    wrong = [(str(p), oct(mode(p))) for p in found
             if mode(p) != (files.DIR_MODE if p.is_dir() else files.FILE_MODE)]
    assert wrong == []
    return found


# ============================================================================ modes

def test_exports_weekly_exports_and_sampling_reports_are_private_whatever_the_umask(
        app: Any, make_campaign: Any, claim: Any, tmp_path: Path, clock: Any, loose_umask: None) -> None:
    svc = app.extensions["sipas"]
    campaign_id = make_campaign(phones(4))
    claim()
    out = tmp_path / "private" / "exports"           # neither directory exists yet
    with svc.db.begin() as session:
        xlsx = results.write_export(session, svc.registry, campaign_id, out, clock())
    weekly.run_if_due(svc.db, svc.registry, WeeklySchedule(0, clock().time(), "UTC"), out, clock())
    from ivr_service.services.sampling_report import write_sampling_report
    with svc.db.begin() as session:
        sampling = write_sampling_report(session, session.get(Campaign, campaign_id), out, clock())
    written = assert_private(tmp_path / "private")
    assert xlsx in written and sampling in written
    assert {p.suffix for p in written if p.is_file()} == {".xlsx", ".csv"}
    assert any(p.name == "summary.csv" for p in written)            # the weekly directory's


def test_the_sqlite_database_and_frame_uploads_are_private(tmp_path: Path, loose_umask: None) -> None:
    database = tmp_path / "instance" / "sipas.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    try:
        assert_private(tmp_path / "instance")                       # the WAL and its index too
        assert {p.name for p in (tmp_path / "instance").iterdir()} >= {"sipas.db"}
    finally:
        engine.dispose()
    uploads = UploadStore(tmp_path / "uploads" / "frames")
    upload = uploads.put(io.BytesIO(b"a,b\n"), campaign_id=1, owner="tester", file_name="frame.csv",
                         now=datetime(2026, 11, 17, tzinfo=UTC))
    assert uploads.path(upload).exists()
    assert_private(tmp_path / "uploads" / "frames")


def test_the_app_narrows_the_process_umask(make_settings: Any, clock: Any, loose_umask: None) -> None:
    from ivr_service import create_app
    application = create_app(make_settings(), clock=clock)
    try:
        current = os.umask(0o077)
        os.umask(current)
        assert current & 0o077 == 0o077
    finally:
        application.extensions["sipas"].db.dispose()


# ============================================================================ downloads

def test_an_export_is_downloaded_by_name_and_no_response_shows_a_server_path(
        app: Any, client: Any, make_campaign: Any, make_agency: Any, claim: Any, tmp_path: Path) -> None:
    campaign_id = make_campaign(phones(3))
    claim()
    created = client.post(f"{API}/campaigns/{campaign_id}/exports")
    assert created.status_code == 201
    assert str(tmp_path) not in created.get_data(as_text=True) and "/" not in created.json["name"]
    name = created.json["name"]
    assert name.startswith(f"campaign-{campaign_id}-") and name.endswith(".xlsx")
    export_dir = Path(app.extensions["sipas"].settings.export_dir)
    download = client.get(created.json["url"])
    assert download.status_code == 200 and download.data == (export_dir / name).read_bytes()
    assert download.mimetype.endswith("spreadsheetml.sheet")
    csv_name = name.replace(".xlsx", "-criteria.csv")
    assert client.get(f"{API}/campaigns/{campaign_id}/exports/{csv_name}").mimetype == "text/csv"

    # Names that are not this campaign's export files are all "not found", and say nothing of paths.
    other = make_campaign(phones(2, base=40), name="Khác")
    (export_dir / f"campaign-{other}-20261117T020000Z.xlsx").write_bytes(b"other")
    outside = tmp_path / "secret.xlsx"
    outside.write_bytes(b"secret")
    (export_dir / f"campaign-{campaign_id}-link.xlsx").symlink_to(outside)
    for bad in (f"campaign-{other}-20261117T020000Z.xlsx",          # another campaign's, under this one
                f"campaign-{campaign_id}-missing.xlsx", "..", f"campaign-{campaign_id}-..xlsx",
                f"campaign-{campaign_id}-link.xlsx", f"campaign-{campaign_id}-x.txt",
                f"..%2Fcampaign-{campaign_id}-x.xlsx", "secret.xlsx", f"campaign-{campaign_id}-%2e%2e.xlsx"):
        response = client.get(f"{API}/campaigns/{campaign_id}/exports/{bad}")
        assert response.status_code == 404, (bad, response.status_code)
        assert str(tmp_path) not in response.get_data(as_text=True)
    assert client.get(f"{API}/campaigns/999/exports/campaign-999-x.xlsx").status_code == 404

    # A caller without access to the campaign does not get its file.
    elsewhere = make_agency("UBND", "Ủy ban nhân dân xã")
    token = api_token(app, ["exports:write"], agency_id=elsewhere)
    refused = client.get(created.json["url"], headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code in (403, 404) and refused.data != download.data


def test_the_openapi_document_describes_the_download_and_no_path_field(client: Any) -> None:
    spec = client.get(f"{API}/openapi.json").json
    assert "get" in spec["paths"][f"{API}/campaigns/{{campaign_id}}/exports/{{name}}"]
    assert set(spec["components"]["schemas"]["ExportOut"]["properties"]) == {"name", "url"}


# ============================================================================ retention

def age(path: Path, now: Any, days: float) -> None:
    moment = (now - timedelta(days=days)).timestamp()
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (moment, moment), follow_symlinks=False)


def test_exports_older_than_the_retention_are_removed_and_nothing_points_at_them(
        app: Any, make_campaign: Any, claim: Any, clock: Any) -> None:
    svc = app.extensions["sipas"]
    out = Path(svc.settings.export_dir)
    finished = make_campaign(phones(2))
    recent = make_campaign(phones(2, base=30), name="Mới")
    claim()
    with svc.db.begin() as session:
        old_export = results.write_export(session, svc.registry, finished, out, clock())
        new_export = results.write_export(session, svc.registry, recent, out, clock())
        session.get(Campaign, finished).status = CampaignStatus.COMPLETED
    week = weekly.run_if_due(svc.db, svc.registry, WeeklySchedule(0, clock().time(), "UTC"), out, clock())
    assert week is not None
    report = out / "reports" / "2026-10"
    report.mkdir(parents=True)
    (report / "bao-cao.xlsx").write_bytes(b"x")
    keep = out / "README.txt"                      # not an export: never touched
    keep.write_text("operator's note")
    now = clock()
    for path in (*out.glob(f"{old_export.stem}*"), week, report, keep):
        age(path, now, 91)
    age(new_export, now, 89)

    with svc.db.begin() as session:
        assert export_retention.prune(session, out, now, 0).files == []           # 0: kept forever
        pruned = export_retention.prune(session, out, now, 90)
    assert sorted(pruned.files) == sorted([old_export.name, f"{old_export.stem}-criteria.csv",
                                           f"{old_export.stem}-factors.csv", f"{old_export.stem}-responses.csv",
                                           f"weekly/{week.name}", "reports/2026-10"])
    assert pruned.campaigns == [finished]
    assert not old_export.exists() and not week.exists() and not report.exists()
    assert new_export.exists() and keep.exists()
    with svc.db.begin() as session:
        assert session.get(Campaign, finished).export_path is None
        assert session.get(Campaign, recent).export_path == str(new_export)
        # The final export was written once; it is not written again.
        assert campaigns.unexported(session) == []
        again = export_retention.prune(session, out, now, 90)                   # idempotent
    assert again.files == [] and again.campaigns == []


def test_housekeeping_prunes_with_the_setting_and_does_not_export_a_pruned_campaign_again(
        make_settings: Any, clock: Any, make_campaign: Any, claim: Any) -> None:
    from ivr_service import create_app
    settings: Settings = make_settings(export_retention_days=30)
    application = create_app(settings, clock=clock)
    try:
        svc = application.extensions["sipas"]
        campaign_id = make_campaign(phones(2), app=application)
        with svc.db.begin() as session:
            session.get(Campaign, campaign_id).status = CampaignStatus.COMPLETED
        from ivr_service.worker import Worker
        worker = Worker(application)
        try:
            worker.housekeeping()                                   # writes the final export
            with svc.db.begin() as session:
                path = Path(session.get(Campaign, campaign_id).export_path or "")
            assert path.is_file() and mode(path) == files.FILE_MODE
            for written in Path(settings.export_dir).glob(f"campaign-{campaign_id}-*"):
                age(written, clock(), 31)                           # file time against the clock passed in
            worker.housekeeping()
            worker.housekeeping()
            with svc.db.begin() as session:
                assert session.get(Campaign, campaign_id).export_path is None
                assert campaigns.unexported(session) == []
            assert list(Path(settings.export_dir).glob(f"campaign-{campaign_id}-*")) == []
        finally:
            worker.close()
    finally:
        application.extensions["sipas"].db.dispose()


def test_the_retention_setting_is_validated() -> None:
    from ivr_service.settings import SettingsError
    with pytest.raises(SettingsError, match=r"SIPAS_EXPORT_RETENTION_DAYS: expected a whole number of days "
                                            r"from 0 to 36500, got -1"):
        Settings.from_env({"SIPAS_EXPORT_RETENTION_DAYS": "-1"})
    assert Settings.from_env({}).export_retention_days == 90
