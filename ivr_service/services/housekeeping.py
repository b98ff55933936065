"""Housekeeping, every few seconds on some worker: fold progress tallies, move campaigns
along their lifecycle (scheduled start, closing), settle anonymous QR forms left idle,
write the final export of every completed campaign that has none yet, so a crash
between closing and exporting is repaired at the next round, and remove exports older than
``SIPAS_EXPORT_RETENTION_DAYS`` (services.export_retention). One worker at a time across the cluster (an advisory lock
on PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..core.questionnaire import QuestionnaireRegistry
from ..persistence import tallies
from ..persistence.db import Database
from . import campaigns, export_retention, qr, results
from .call_costs import DEFAULT_COSTING, Costing

log = logging.getLogger(__name__)


def run(db: Database, registry: QuestionnaireRegistry, export_dir: str | Path,
        clock: Callable[[], datetime], costing: Costing = DEFAULT_COSTING, retention_days: int = 0) -> list[int]:
    """One round; returns the campaigns it closed (none when another worker holds the lock)."""
    with db.cluster_lock("housekeeping") as mine:
        if not mine:
            return []
        with db.begin() as session:
            tallies.fold(session)
        with db.begin() as session:
            advanced = campaigns.advance(session, clock(), registry)
        for campaign_id in advanced.started:
            log.info("campaign %s: scheduled start reached", campaign_id)
        for campaign_id in advanced.closed:
            log.info("campaign %s completed", campaign_id)
        with db.begin() as session:
            qr.sweep(session, registry, clock())
        with db.begin() as session:
            pending = campaigns.unexported(session)
        for campaign_id in pending:
            with db.begin() as session:
                path = results.write_export(session, registry, campaign_id, export_dir, clock(), costing=costing)
            log.info("campaign %s exported to %s", campaign_id, path)
        with db.begin() as session:
            export_retention.prune(session, export_dir, clock(), retention_days)
        return advanced.closed
