"""CCHC reports of an agency node or a campaign, as XLSX attachments generated on request
(``services/period_reports.py``); the scheduled ones are written by the worker."""

from __future__ import annotations

import io
from typing import Any

from apiflask.schemas import FileSchema
from flask import Response, send_file

from ...core.access import Permission
from ...services import period_reports
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import ReportQuery

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RESPONSES = {400: "Invalid period or language", 404: "Not found, or outside the token's part of the tree"}
DESCRIPTION = (
    "The report a CCHC officer files, as an XLSX attachment (Content-Disposition names the file): indices with "
    "their intervals, the rollup along the agency tree, breakdowns, needs and the change against the previous "
    "period; no phone number or name. Groups with fewer than SIPAS_REPORT_MIN_N responses are suppressed; "
    "indices are compared with SIPAS_SATISFACTION_TARGET. Each download is recorded in the audit log.")


def _download(query: dict[str, Any], **scope: int) -> Response:
    """Generate the report of ``scope`` (agency_id or campaign_id) and send it as a file."""
    svc = services()
    with svc.db.begin() as session:
        found = period_reports.download(session, svc.registry, svc.clock(), period=query["period"],
                                        lang=query["lang"],
                                        options=period_reports.ReportOptions.from_settings(svc.settings),
                                        actor=actor(), **scope)
    return send_file(io.BytesIO(found.content), mimetype=XLSX, as_attachment=True, download_name=found.name)


@bp.get("/agencies/<int:agency_id>/report")
@bp.input(ReportQuery, location="query", arg_name="query")
@bp.output(FileSchema(), content_type=XLSX, description="The report workbook")
@bp.doc(summary="Report of an agency node for a period", description=DESCRIPTION + (
    " The node's report covers everything below it, each unit rolled up."), responses=RESPONSES)
@requires(Permission.CAMPAIGNS_READ, "agency")
def agency_report(agency_id: int, query: dict[str, Any]) -> Response:
    return _download(query, agency_id=agency_id)


@bp.get("/campaigns/<int:campaign_id>/report")
@bp.input(ReportQuery, location="query", arg_name="query")
@bp.output(FileSchema(), content_type=XLSX, description="The report workbook")
@bp.doc(summary="Report of a campaign", description=DESCRIPTION + (
    " Without a period the whole campaign is reported."), responses=RESPONSES)
@requires(Permission.CAMPAIGNS_READ, "campaign")
def campaign_report(campaign_id: int, query: dict[str, Any]) -> Response:
    return _download(query, campaign_id=campaign_id)
