"""Questionnaires, scores and exports."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Any

from apiflask.schemas import FileSchema
from flask import Response, send_file, url_for

from ...core.access import Permission
from ...core.questionnaire import INSTRUCTION_MODES
from ...services import call_costs, results
from ...services.call_costs import Costing
from ...services.campaigns import get_campaign
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .reports import XLSX
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
@bp.doc(summary="Write the campaign's export", description=(
    "Writes the campaign's workbook (scores, criteria, factors, responses by pseudonym; no phone number or "
    "name) and returns its file name and the URL it is downloaded from; the server's paths are never shown. "
    "Exports are removed after SIPAS_EXPORT_RETENTION_DAYS."), responses={404: "Unknown campaign"})
@requires(Permission.EXPORTS_WRITE, "campaign")
def campaign_export(campaign_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.begin() as session:
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock(),
                                    costing=Costing.from_settings(svc.settings), actor=actor())
    return {"name": path.name,
            "url": url_for("api_v1.campaign_export_file", campaign_id=campaign_id, name=path.name)}


@bp.get("/campaigns/<int:campaign_id>/exports/<name>")
@bp.output(FileSchema(), content_type=XLSX, description="The export file (XLSX, or CSV for a `.csv` name)")
@bp.doc(summary="Download an export of the campaign", description=(
    "One file the campaign's export wrote, by the name `POST .../exports` returned (`campaign-<id>-…`); "
    "removed after SIPAS_EXPORT_RETENTION_DAYS."), responses={404: "No such export of this campaign"})
@requires(Permission.EXPORTS_WRITE, "campaign")
def campaign_export_file(campaign_id: int, name: str) -> Response:
    svc = services()
    with svc.db.begin() as session:
        get_campaign(session, campaign_id)   # 404 for an unknown campaign, before any file is looked at
    path = results.export_file(svc.settings.export_dir, campaign_id, name)
    mimetype = XLSX if path.suffix == ".xlsx" else "text/csv"
    # Read whole (a campaign's workbook is a few MB), as the console's downloads are: the
    # file is closed before the response leaves, whatever the client does with it.
    return send_file(io.BytesIO(path.read_bytes()), mimetype=mimetype, as_attachment=True, download_name=path.name,
                     max_age=0)
