"""Exports are kept for ``SIPAS_EXPORT_RETENTION_DAYS`` and then removed by housekeeping.

What counts as an export: the files directly in ``SIPAS_EXPORT_DIR`` that the service
writes there (``campaign-<id>-…`` workbooks and CSVs, sampling reports, ``qr-self-selected-…``
exports) and each period directory under ``weekly/`` and ``reports/`` (removed whole, by the
newest file time inside). Age is the file's modification time against ``now`` (passed in,
so tests move the clock); anything else in the directory is left alone.

Removing is idempotent (a file already gone is not an error), so two workers pruning at
once do no harm; housekeeping runs it under its cluster lock anyway. A completed
campaign whose final export was removed gets ``export_path`` cleared, so nothing points at
a missing file, and a ``job_runs`` row (:data:`campaigns.EXPORT_REMOVED`) that keeps
housekeeping from writing that final export again."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence.models import Campaign, JobRun
from .campaigns import EXPORT_REMOVED, export_removed_period

log = logging.getLogger(__name__)

PREFIXES = ("campaign-", "qr-self-selected-")
SUFFIXES = (".xlsx", ".csv", ".part")
PERIOD_PARENTS = ("weekly", "reports")


@dataclass
class Pruned:
    files: list[str] = field(default_factory=list)         # names relative to the export directory
    campaigns: list[int] = field(default_factory=list)     # whose export_path was cleared


def _newest(path: Path) -> float:
    newest = path.lstat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def prune_files(export_dir: str | Path, now: datetime, keep: timedelta) -> list[str]:
    """Remove the exports older than ``keep``; returns what was removed."""
    directory = Path(export_dir)
    if not directory.is_dir():
        return []
    cutoff = (now - keep).timestamp()
    removed: list[str] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_symlink() or not entry.is_file():
            continue
        if entry.name.startswith(PREFIXES) and entry.name.endswith(SUFFIXES) and entry.lstat().st_mtime < cutoff:
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    for parent in PERIOD_PARENTS:
        base = directory / parent
        if base.is_symlink() or not base.is_dir():
            continue
        for period in sorted(base.iterdir()):
            if period.is_symlink() or not period.is_dir():
                continue
            try:
                old = _newest(period) < cutoff
            except FileNotFoundError:   # another worker removed it meanwhile
                continue
            if old:
                shutil.rmtree(period, ignore_errors=True)
                removed.append(f"{parent}/{period.name}")
    return removed


def forget_missing(session: Session, now: datetime) -> list[int]:
    """Clear ``export_path`` of campaigns whose export file is gone, and note that their
    final export was written (so it is not written again)."""
    cleared = []
    for campaign in session.scalars(select(Campaign).where(Campaign.export_path.is_not(None))
                                    .order_by(Campaign.id)):
        assert campaign.export_path is not None
        if Path(campaign.export_path).exists():
            continue
        campaign.export_path = None
        key = (EXPORT_REMOVED, export_removed_period(campaign.id))
        if session.get(JobRun, key) is None:
            session.add(JobRun(name=key[0], period=key[1], started_at=now, finished_at=now))
        cleared.append(campaign.id)
    return cleared


def prune(session: Session, export_dir: str | Path, now: datetime, retention_days: int) -> Pruned:
    """One retention round (nothing with ``retention_days`` 0: exports are kept forever)."""
    if retention_days <= 0:
        return Pruned()
    result = Pruned(prune_files(export_dir, now, timedelta(days=retention_days)))
    if result.files:
        result.campaigns = forget_missing(session, now)
        log.info("removed %d export(s) older than %d days; cleared the export of campaign(s) %s",
                 len(result.files), retention_days, result.campaigns or "none")
    return result
