"""Alerts (a unit's dissatisfied share above 25 % on a criterion in a period): read only,
for the agencies the caller sees campaigns in."""

from __future__ import annotations

from typing import Any

from ...core.access import Permission
from ...services import access, alerts
from ..access import principal, requires
from ..context import services
from .blueprint import bp
from .schemas import AlertOut, AlertsQuery


@bp.get("/alerts")
@bp.input(AlertsQuery, location="query", arg_name="query")
@bp.output(AlertOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_alerts(query: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first; page back with ``before_id``. Alerts carry counts only, never a
    citizen's number or name."""
    svc = services()
    config = alerts.AlertConfig.from_settings(svc.settings)
    with svc.db.begin() as session:
        within = access.scope(session, principal(), Permission.CAMPAIGNS_READ)
        found = alerts.newest(session, within, query["limit"], query["before_id"])
        out = []
        for alert in found:
            told = alerts.facts(session, svc.registry, alert, config)
            out.append({"id": alert.id, "agency_id": alert.agency_id, "agency_code": told.agency_code,
                        "agency_name": told.agency_name, "item_id": alert.item_id, "text_vi": told.text_vi,
                        "text_en": told.text_en, "questionnaire": alert.questionnaire_key, "period": alert.period,
                        "n": alert.n, "n_dissatisfied": alert.n_dissatisfied, "share": alert.share,
                        "created_at": alert.created_at, "email": alerts.delivery(alert, "email", config),
                        "email_sent_at": alert.email_sent_at, "webhook": alerts.delivery(alert, "webhook", config),
                        "webhook_sent_at": alert.webhook_sent_at, "attempts": alert.attempts, "url": told.url})
    return out
