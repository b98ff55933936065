"""CCHC period reports: written on schedule once a period is over, and on demand.

**On schedule.** For each kind in ``SIPAS_REPORT_PERIODS`` (month, quarter, half-year), the
first check after the local midnight that ends a period (``SIPAS_TIMEZONE``) writes one
Vietnamese report (:func:`reports.generate`) per agency node whose subtree has counted
interviews that ended in the period, into ``<export dir>/reports/<period label>/``. A
parent node gets its own report, rolled up from the units below it.

Every worker schedules the check; it runs once per period and kind across the cluster, as
the weekly export does (``services/weekly.py``): under a PostgreSQL advisory lock, recorded
in ``job_runs`` (``report-<kind>``, the period's label) and done only when finished, so a
crash is retried at the next check. Only the last finished period is due: a worker that
starts late writes that one, never the history before it. Each workbook is written in a
scratch directory and moved into place whole, so a file present is a file complete.

**On demand** (API, CLI, console): :func:`write` one report of any node or campaign for any
period, with an audit entry, or :func:`download` it as bytes from a temporary directory
(the server's paths never reach a response).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.programmes import Period, period_of, previous_period
from ..core.questionnaire import QuestionnaireRegistry
from ..core.scoring import SMALL_CELL
from ..persistence.db import Database
from ..persistence.files import private_dir
from ..persistence.models import Campaign, Interview, JobRun
from ..settings import Settings
from . import audit, reports
from .access import agency_parents
from .audit import Actor
from .campaigns import get_agency, get_campaign
from .errors import ServiceError

log = logging.getLogger(__name__)

JOB_PREFIX = "report-"      # job_runs.name: report-month, report-quarter, report-half


@dataclass(frozen=True)
class ReportOptions:
    """What every report takes from the settings: the time zone its periods are read in,
    the smallest group shown unsuppressed and the satisfaction target."""

    timezone: str = "Asia/Ho_Chi_Minh"
    min_n: int = SMALL_CELL
    target: float = reports.DEFAULT_TARGET

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportOptions:
        return cls(settings.timezone, settings.report_min_n, settings.satisfaction_target)

    def arguments(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "min_n": self.min_n, "target": self.target}


@dataclass(frozen=True)
class Download:
    name: str           # reports.file_name: no server path
    content: bytes


def last_finished(kind: str, now: datetime, timezone: str) -> Period:
    """The last period of ``kind`` that is over at ``now``: the one before the period
    holding today's local date."""
    return previous_period(kind, period_of(kind, now.astimezone(ZoneInfo(timezone)).date()))


def job_name(kind: str) -> str:
    return JOB_PREFIX + kind


def run_if_due(db: Database, registry: QuestionnaireRegistry, kinds: Sequence[str], export_dir: str | Path,
               now: datetime, options: ReportOptions = ReportOptions()) -> list[Path]:
    """Write the reports of each kind's last finished period that no worker has finished
    yet; returns the directories this call wrote."""
    written = []
    for kind in kinds:
        directory = run_period_if_due(db, registry, kind, export_dir, now, options)
        if directory is not None:
            written.append(directory)
    return written


def run_period_if_due(db: Database, registry: QuestionnaireRegistry, kind: str, export_dir: str | Path,
                      now: datetime, options: ReportOptions = ReportOptions()) -> Path | None:
    period = last_finished(kind, now, options.timezone)
    job = job_name(kind)
    with db.cluster_lock(job) as mine:
        if not mine:
            return None   # another worker is writing it
        with db.begin() as session:
            run = session.get(JobRun, (job, period.label))
            if run is not None and run.finished_at is not None:
                return None
            if run is None:
                session.add(JobRun(name=job, period=period.label, started_at=now))
            else:
                run.started_at = now   # an earlier attempt did not finish: write it again
        directory = Path(export_dir) / "reports" / period.label
        files, refused = write_period(db, registry, period, directory, now, options)
        with db.begin() as session:
            run = session.get(JobRun, (job, period.label))
            assert run is not None
            run.finished_at = now
            run.detail = {"directory": str(directory), "files": [path.name for path in files],
                          **({"refused": refused} if refused else {})}
    log.info("%s reports %s: %d file(s) in %s", kind, period.label, len(files), directory)
    return directory


def agencies_with_interviews(session: Session, period: Period, timezone: str) -> list[int]:
    """The agency nodes whose subtree has counted interviews that ended in ``period``:
    the agencies of those campaigns and every node above them."""
    start, end = reports.bounds(period, timezone)
    own = set(session.scalars(select(Campaign.agency_id).distinct()
                              .join(Interview, Interview.campaign_id == Campaign.id)
                              .where(Interview.status.in_(reports.COUNTED), Interview.ended_at >= start,
                                     Interview.ended_at < end)))
    parents = agency_parents(session)
    found: set[int] = set()
    for agency in own:
        current: int | None = agency
        while current is not None and current not in found:
            found.add(current)
            current = parents.get(current)
    return sorted(found)


def write_period(db: Database, registry: QuestionnaireRegistry, period: Period, directory: Path, now: datetime,
                 options: ReportOptions = ReportOptions()) -> tuple[list[Path], dict[str, str]]:
    """One Vietnamese report per agency node with counted interviews in ``period``; the
    directory is made even when there are none, to show the period was looked at.

    Returns the files written and, by agency id, the nodes whose report the service
    refused (logged; e.g. a questionnaire no longer installed): one node's bad data must
    not hold back the others' reports, nor have them all rewritten every minute."""
    with db.begin() as session:
        agencies = agencies_with_interviews(session, period, options.timezone)
    private_dir(directory)
    files: list[Path] = []
    refused: dict[str, str] = {}
    if not agencies:
        return files, refused
    # A scratch directory beside the period's: a crash leaves no half-written workbook
    # under a report's name, and os.replace stays on one file system.
    with tempfile.TemporaryDirectory(prefix=f".{period.label}-", dir=directory.parent) as scratch:
        for agency_id in agencies:
            try:
                with db.begin() as session:
                    path = reports.generate(session, registry, now, scratch, agency_id=agency_id,
                                            period=period.label, lang="vi", **options.arguments())
            except ServiceError as exc:
                log.error("report of agency %s for %s refused: %s", agency_id, period.label, exc.message)
                refused[str(agency_id)] = exc.message
                continue
            os.replace(path, directory / path.name)
            files.append(directory / path.name)
    return files, refused


def write(session: Session, registry: QuestionnaireRegistry, now: datetime, directory: str | Path, *,
          agency_id: int | None = None, campaign_id: int | None = None, period: str | None = None,
          lang: str = "vi", options: ReportOptions = ReportOptions(), actor: Actor | None = None) -> Path:
    """One report of a node (a period is needed) or a campaign (the whole campaign without
    one), written into ``directory``; with ``actor``, recorded in the audit log."""
    lang = (lang or "vi").strip().lower()
    period = (period or "").strip() or None
    path = reports.generate(session, registry, now, directory, agency_id=agency_id, campaign_id=campaign_id,
                            period=period, lang=lang, **options.arguments())
    if actor is not None:
        if campaign_id is not None:
            target, agency = f"campaign:{campaign_id}", get_campaign(session, campaign_id).agency_id
        else:
            assert agency_id is not None    # generate refused a report of neither
            target, agency = f"agency:{agency_id}", get_agency(session, agency_id).id
        label = reports.period_of_label(period)[1].label if period else None
        audit.record(session, actor, "report_downloaded", now, target=target, agency_id=agency, period=label,
                     lang=lang, file=path.name)
    return path


def download(session: Session, registry: QuestionnaireRegistry, now: datetime, *, agency_id: int | None = None,
             campaign_id: int | None = None, period: str | None = None, lang: str = "vi",
             options: ReportOptions = ReportOptions(), actor: Actor | None = None) -> Download:
    """:func:`write` into a temporary directory, removed before this returns."""
    with tempfile.TemporaryDirectory(prefix="sipas-report-") as scratch:
        path = write(session, registry, now, scratch, agency_id=agency_id, campaign_id=campaign_id, period=period,
                     lang=lang, options=options, actor=actor)
        return Download(path.name, path.read_bytes())
