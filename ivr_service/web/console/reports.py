"""CCHC reports on request: an agency node's report for a period (``/reports``, the nodes
the caller sees with ``campaigns:read``), and a campaign's from its scores page. The same
service, permission, scope rule and audit entry as ``/api/v1/.../report``; the workbook is
generated in a temporary directory and sent as an attachment, and a wrong period or
language is shown beside its field (400) on the page that asked."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from flask import request, send_file
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ...core.access import Permission
from ...services import access, overview, period_reports
from ...services.errors import ServiceError, invalid
from ..access import actor, principal, requires
from ..context import services
from . import NAV, bp, render
from .forms import agency_choices, failed
from .scores import scores_page

NAV.append(("console.reports", _l("Reports"), Permission.CAMPAIGNS_READ.value))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LANGS = ("vi", "en")
MESSAGES: dict[str, Any] = {
    "period": _l("A month (2026-11), a quarter (2026-Q4) or a half-year (2026-H2), as in the examples."),
    "lang": _l("Choose Vietnamese or English."),
}


def _form() -> dict[str, str]:
    return {"agency_id": request.args.get("agency_id", "")[:40].strip(),
            "period": request.args.get("period", "")[:40].strip(),
            "lang": request.args.get("lang", "vi")[:10].strip().lower()}


def _errors(exc: ServiceError) -> tuple[dict[str, Any], int]:
    errors, status = failed(exc)
    if exc.field in MESSAGES:
        errors = {exc.field: MESSAGES[exc.field]}
    return errors, status


def _send(found: period_reports.Download) -> Response:
    return send_file(io.BytesIO(found.content), mimetype=XLSX, as_attachment=True, download_name=found.name)


def examples(now: datetime, timezone: str) -> dict[str, str]:
    """The last finished month, quarter and half-year: the periods most often asked for."""
    return {kind: period_reports.last_finished(kind, now, timezone).label for kind in ("month", "quarter", "half")}


def _page(form: dict[str, str] | None = None, errors: dict[str, Any] | None = None,
          status: int = 200) -> tuple[str, int]:
    svc = services()
    with svc.db.begin() as session:
        tree = overview.agency_tree(session, access.scope(session, principal(), Permission.CAMPAIGNS_READ))
    return render("console/reports.html", choices=agency_choices(tree, whole=False),
                  form=form or {"agency_id": "", "period": "", "lang": "vi"}, errors=errors or {},
                  examples=examples(svc.clock(), svc.settings.timezone)), status


@bp.get("/reports")
@requires(Permission.CAMPAIGNS_READ)
def reports() -> tuple[str, int]:
    return _page()


@bp.get("/reports/download")
@requires(Permission.CAMPAIGNS_READ)
def download_report() -> Response | tuple[str, int]:
    svc = services()
    form = _form()
    try:
        raw = form["agency_id"]
        if not (raw.isdigit() and 1 <= int(raw) <= 2**31 - 1):
            raise invalid("agency_id", "choose an agency")
        if not form["period"]:
            raise invalid("period", "an agency report covers a period")
        with svc.db.begin() as session:
            access.check(session, principal(), Permission.CAMPAIGNS_READ, int(raw))
            found = period_reports.download(session, svc.registry, svc.clock(), agency_id=int(raw),
                                            period=form["period"], lang=form["lang"],
                                            options=period_reports.ReportOptions.from_settings(svc.settings),
                                            actor=actor())
    except ServiceError as exc:
        errors, status = _errors(exc)
        return _page(form, errors, status)
    return _send(found)


@bp.get("/campaigns/<int:campaign_id>/report")
@requires(Permission.CAMPAIGNS_READ, target="campaign")
def campaign_report(campaign_id: int) -> Response | tuple[str, int]:
    svc = services()
    form = _form()
    try:
        with svc.db.begin() as session:
            found = period_reports.download(session, svc.registry, svc.clock(), campaign_id=campaign_id,
                                            period=form["period"] or None, lang=form["lang"],
                                            options=period_reports.ReportOptions.from_settings(svc.settings),
                                            actor=actor())
    except ServiceError as exc:
        errors, status = _errors(exc)
        return scores_page(campaign_id, {"period": form["period"], "lang": form["lang"]}, errors, status)
    return _send(found)
