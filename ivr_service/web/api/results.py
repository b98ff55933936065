"""Questionnaires, scores and exports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...core.access import Permission
from ...services import audit, campaigns, results
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import ExportOut, QuestionnaireOut, ScoresOut, ScoresQuery


@bp.get("/questionnaires")
@bp.output(QuestionnaireOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_questionnaires() -> list[dict[str, Any]]:
    registry = services().registry
    return [{"key": q.key, "title": q.title.vi, "version": q.version, "rated_items": len(q.rated_items)}
            for q in (registry.get(k) for k in registry.keys())]


@bp.get("/campaigns/<int:campaign_id>/scores")
@bp.input(ScoresQuery, location="query", arg_name="query")
@bp.output(ScoresOut)
@requires(Permission.CAMPAIGNS_READ, "campaign")
def campaign_scores(campaign_id: int, query: dict[str, Any]) -> dict[str, Any]:
    """SIPAS indices per criterion, factor and overall; respondents are pseudonymous."""
    svc = services()
    with svc.db.begin() as session:
        return asdict(results.campaign_scores(session, svc.registry, campaign_id, query["aggregation"]))


@bp.post("/campaigns/<int:campaign_id>/exports")
@bp.output(ExportOut, status_code=201)
@requires(Permission.EXPORTS_WRITE, "campaign")
def campaign_export(campaign_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.begin() as session:
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock())
        audit.record(session, actor(), "export_written", svc.clock(), target=f"campaign:{campaign_id}",
                     agency_id=campaigns.get_campaign(session, campaign_id).agency_id, file=path.name)
    return {"path": str(path)}
