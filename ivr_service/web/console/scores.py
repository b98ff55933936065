"""A campaign's scores: factor and criterion indices with n and 95 % intervals, the seed 003
flags (more than 25 % dissatisfied), filtered by field and by the dates interviews ended
(filters applied in the service's query), small cells greyed with a note, and the export
downloaded as a file. Respondents are counted, never named: no phone number or name
reaches this page."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask import Response, request, send_file
from flask_babel import get_locale
from flask_babel import gettext as _

from ...core import scoring
from ...core.access import Permission
from ...services import campaigns, results
from ...services.call_costs import Costing
from ...services.results import ScoreFilter
from ..access import actor, requires
from ..context import services
from . import bp, render

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AGGREGATIONS = ("mean_of_criteria", "pooled")


def _day(name: str, errors: dict[str, str]) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("Not a date (expected yyyy-mm-dd): %(value)s", value=raw[:40])
        return None


@bp.get("/campaigns/<int:campaign_id>/scores")
@requires(Permission.CAMPAIGNS_READ, target="campaign")
def scores(campaign_id: int) -> tuple[str, int]:
    return scores_page(campaign_id)


def scores_page(campaign_id: int, report_form: dict[str, str] | None = None,
                report_errors: dict[str, Any] | None = None, status: int = 400) -> tuple[str, int]:
    """The page, with the report form as typed and its errors (answered with ``status``)
    when a report download failed (``web/console/reports.py``)."""
    svc = services()
    errors: dict[str, str] = {}
    field = request.args.get("field", "")[:200]
    ended_from, ended_to = _day("from", errors), _day("to", errors)
    if ended_from and ended_to and ended_from > ended_to:
        errors["to"] = _("The period ends before it starts.")
        ended_from = ended_to = None
    aggregation = request.args.get("aggregation", "")
    aggregation = aggregation if aggregation in AGGREGATIONS else "mean_of_criteria"
    with svc.db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        fields = results.sample_fields(session, campaign_id)
        if field and field not in fields:
            errors["field"] = _("This campaign's sample has no such field.")
            field = ""
        report = results.campaign_scores(session, svc.registry, campaign_id, aggregation,  # type: ignore[arg-type]
                                         ScoreFilter(field or None, ended_from, ended_to))
        view = {"id": campaign.id, "name": campaign.name, "agency": campaign.agency.name,
                "status": campaign.status.value}
        q = svc.registry.get(campaign.questionnaire_key)
    lang = str(get_locale())
    texts = {item.id: item.text.get(lang) for item in q.rated_items}
    titles = {factor: q.factor_title(factor).get(lang) for factor in q.factors}
    flagged = {f.factor: sum(1 for c in report.criteria if c.factor == f.factor and c.dissatisfied_flag)
               for f in report.factors}
    return render("console/scores.html", campaign=view, tab="scores", report=report, texts=texts, titles=titles,
                  flagged=flagged, fields=fields, field=field, errors=errors, aggregation=aggregation,
                  ended_from=request.args.get("from", "")[:40], ended_to=request.args.get("to", "")[:40],
                  small=scoring.small_cell, small_n=scoring.SMALL_CELL,
                  flag_share=scoring.DISSATISFIED_FLAG_SHARE,
                  report_form=report_form or {"period": "", "lang": lang if lang in ("vi", "en") else "vi"},
                  report_errors=report_errors or {}), status if report_errors else 400 if errors else 200


@bp.post("/campaigns/<int:campaign_id>/scores/export")
@requires(Permission.EXPORTS_WRITE, target="campaign")
def export_scores(campaign_id: int) -> Response:
    """Write the campaign's export (the API's, with its audit entry) and send the workbook
    as an attachment: the server's path to it is never shown."""
    svc = services()
    with svc.db.begin() as session:
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock(),
                                    costing=Costing.from_settings(svc.settings), actor=actor())
    return send_file(io.BytesIO(path.read_bytes()), mimetype=XLSX, as_attachment=True, download_name=path.name)

