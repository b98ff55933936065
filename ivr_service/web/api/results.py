"""Questionnaires, scores and exports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...core.access import Permission
from ...core.questionnaire import INSTRUCTION_MODES
from ...services import call_costs, results
from ...services.call_costs import Costing
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import EstimateOut, EstimateQuery, ExportOut, QuestionnaireOut, ScoresOut, ScoresQuery


@bp.get("/questionnaires")
@bp.output(QuestionnaireOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_questionnaires() -> list[dict[str, Any]]:
    registry = services().registry
    return [{"key": q.key, "title": q.title.vi, "version": q.version, "rated_items": len(q.rated_items)}
            for q in (registry.get(k) for k in registry.keys())]


@bp.get("/questionnaires/<key>/estimate")
@bp.input(EstimateQuery, location="query", arg_name="query")
@bp.output(EstimateOut)
@bp.doc(summary="Length and cost of a complete call", description=(
    "The longest and shortest complete call of the questionnaire, walked through the survey flow with valid "
    "answers: every text said (intro with the agency's name, speech hint, prompts, instructions or cue by "
    "the questionnaire's instruction mode, the agency's line, thanks), characters ÷ SIPAS_SPEAKING_RATE plus "
    "recordings (audio_seconds), plus SIPAS_ANSWER_SECONDS per item; cost in started minutes at the \"*\" "
    "price of SIPAS_VOICE_PRICES (null without one). Instruction modes: " + ", ".join(INSTRUCTION_MODES) + "."),
    responses={400: "Invalid option", 404: "Unknown questionnaire"})
@requires(Permission.CAMPAIGNS_READ)
def questionnaire_estimate(key: str, query: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    found = call_costs.questionnaire_estimate(svc.registry, key, query["language"], speech=query["speech"],
                                              hotline=query["hotline"], agency=query["agency"],
                                              instructions=query["instructions"], pace=svc.settings.call_pace)
    return call_costs.figures(found, svc.settings.voice_price_table)


@bp.get("/campaigns/<int:campaign_id>/scores")
@bp.input(ScoresQuery, location="query", arg_name="query")
@bp.output(ScoresOut)
@requires(Permission.CAMPAIGNS_READ, "campaign")
def campaign_scores(campaign_id: int, query: dict[str, Any]) -> dict[str, Any]:
    """SIPAS indices per criterion, factor and overall, with 95 % intervals; respondents are
    pseudonymous. ``field``, ``from`` and ``to`` count only some interviews (as the console's
    scores page does)."""
    svc = services()
    filters = results.ScoreFilter(query["field"], query["ended_from"], query["ended_to"])
    with svc.db.begin() as session:
        return asdict(results.campaign_scores(session, svc.registry, campaign_id, query["aggregation"], filters))


@bp.post("/campaigns/<int:campaign_id>/exports")
@bp.output(ExportOut, status_code=201)
@requires(Permission.EXPORTS_WRITE, "campaign")
def campaign_export(campaign_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.begin() as session:
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock(),
                                    costing=Costing.from_settings(svc.settings), actor=actor())
    return {"path": str(path)}
