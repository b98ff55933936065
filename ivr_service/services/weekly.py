"""Weekly exports for administrative-reform (CCHC) reporting.

Once a week (``SIPAS_WEEKLY_EXPORT``, default Monday 07:00 in ``SIPAS_TIMEZONE``) every
campaign that ran during the week is exported, as at that moment, into
``<export dir>/weekly/<ISO week>/``: the campaign workbook and CSVs of
:func:`results.write_export` (pseudonymous) and ``summary.csv`` with one line per campaign
(status, counts, response rates, indices), never a phone number or a name.

Every worker schedules the check; it runs once per week across the cluster: under a
PostgreSQL advisory lock, recorded in ``job_runs`` and done only when finished, so a crash
is retried at the next check and a worker that starts late catches up.
"""

from __future__ import annotations

import csv
import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select

from ..core.cells import safe_cell
from ..core.questionnaire import QuestionnaireRegistry
from ..core.schedule import WeeklySchedule
from ..persistence.db import Database
from ..persistence.files import private_dir, private_file
from ..persistence.models import Campaign, CampaignStatus, JobRun
from . import campaigns, results
from .call_costs import DEFAULT_COSTING, Costing

log = logging.getLogger(__name__)

JOB = "weekly-export"
SUMMARY_COLUMNS = ("campaign_id", "agency", "campaign", "status", "contacts", "completes", "attempts",
                   "RR1", "RR3", "COOP1", "REF1", "CON1", "service_index", "overall_satisfaction_index",
                   "respondents", "workbook")


def run_if_due(db: Database, registry: QuestionnaireRegistry, schedule: WeeklySchedule, export_dir: str | Path,
               now: datetime, costing: Costing = DEFAULT_COSTING) -> Path | None:
    """Write this week's export if its time has come and no worker has finished it yet;
    returns the week's directory when this call wrote it."""
    period, instant = schedule.last_run(now)
    with db.cluster_lock(JOB) as mine:
        if not mine:
            return None   # another worker is writing it
        with db.begin() as session:
            run = session.get(JobRun, (JOB, period))
            if run is not None and run.finished_at is not None:
                return None
            if run is None:
                session.add(JobRun(name=JOB, period=period, started_at=now))
            else:
                run.started_at = now   # an earlier attempt did not finish: write it again
        directory = Path(export_dir) / "weekly" / period
        written = export_week(db, registry, directory, instant, now, costing)
        with db.begin() as session:
            run = session.get(JobRun, (JOB, period))
            assert run is not None
            run.finished_at = now
            run.detail = {"directory": str(directory), "campaigns": written}
    log.info("weekly export %s: %d campaign(s) in %s", period, len(written), directory)
    return directory


def export_week(db: Database, registry: QuestionnaireRegistry, directory: Path, instant: datetime,
                now: datetime, costing: Costing = DEFAULT_COSTING) -> list[int]:
    """Export the campaigns running or paused at ``instant``, or ended in the week before it."""
    with db.begin() as session:
        ids = session.scalars(select(Campaign.id).where(or_(
            Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED]),
            Campaign.completed_at >= instant - timedelta(days=7))).order_by(Campaign.id)).all()
    private_dir(directory)
    rows = []
    for campaign_id in ids:
        with db.begin() as session:
            workbook, report = results.export_with_scores(session, registry, campaign_id, directory, now,
                                                          record=False, costing=costing)
            campaign = campaigns.get_campaign(session, campaign_id)
            progress = campaigns.progress(session, campaign_id, now)
            rows.append({
                "campaign_id": campaign_id, "agency": campaign.agency.name, "campaign": campaign.name,
                "status": campaign.status.value, "contacts": progress.contacts,
                "completes": progress.by_disposition.get("1.1", 0), "attempts": progress.attempts,
                **{k: progress.rates.get(k) for k in ("RR1", "RR3", "COOP1", "REF1", "CON1")},
                "service_index": report.service_index,
                "overall_satisfaction_index": report.overall.index if report.overall else None,
                "respondents": report.n_respondents, "workbook": workbook.name,
            })
    # Written last, through a temporary name: a summary present means the week is whole.
    partial = private_file(directory / "summary.csv.part")
    with partial.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in rows)
    partial.replace(directory / "summary.csv")
    return list(ids)
