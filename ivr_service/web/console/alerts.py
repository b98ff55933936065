"""Alerts: the criteria on which a unit's citizens were more than 25 % dissatisfied in a
period (``services/alerts.py`` records and sends them), newest first, and one alert with
its figures, where it was sent and the campaigns whose scores it counted.

Everyone who sees campaigns sees the alerts of the agencies they see them in; an alert of
another part of the tree answers 404 like a campaign there."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ...core import alerts as rules
from ...core.access import Permission
from ...persistence.models import Alert
from ...services import access, alerts
from ..access import principal, requires
from ..context import services
from . import NAV, bp, render

NAV.append(("console.alerts", _l("Alerts"), Permission.CAMPAIGNS_READ.value))

PAGE = 50
DELIVERY_LABELS = {"sent": _l("Sent"), "retrying": _l("Failed, will retry"), "failed": _l("Failed"),
                   "pending": _l("Waiting"), "off": _l("Not configured")}


def _row(alert: Alert, config: alerts.AlertConfig, lang: str) -> dict[str, Any]:
    registry = services().registry
    q = registry.get(alert.questionnaire_key)
    text = q.item(alert.item_id).text.get(lang) if q.has_item(alert.item_id) else alert.item_id
    period = rules.period_from_label(alert.period)
    return {"id": alert.id, "agency": alert.agency.name, "agency_code": alert.agency.code, "item_id": alert.item_id,
            "text": text, "period": alert.period, "period_text": rules.period_text(alert.period, lang),
            "from": period.start.isoformat(), "to": period.end.isoformat(),
            "n": alert.n, "n_dissatisfied": alert.n_dissatisfied, "share": alert.share, "created_at": alert.created_at,
            "attempts": alert.attempts,
            "email": DELIVERY_LABELS[alerts.delivery(alert, "email", config)], "email_sent_at": alert.email_sent_at,
            "email_error": alert.email_error,
            "webhook": DELIVERY_LABELS[alerts.delivery(alert, "webhook", config)],
            "webhook_sent_at": alert.webhook_sent_at, "webhook_error": alert.webhook_error}


@bp.get("/alerts", endpoint="alerts")
@requires(Permission.CAMPAIGNS_READ)
def alerts_page() -> tuple[str, int]:
    svc = services()
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and 0 < int(before) < 2**63 else None
    config = alerts.AlertConfig.from_settings(svc.settings)
    lang = str(get_locale())
    with svc.db.begin() as session:
        within = access.scope(session, principal(), Permission.CAMPAIGNS_READ)
        found = alerts.newest(session, within, PAGE + 1, before_id)
        rows = [_row(alert, config, lang) for alert in found[:PAGE]]
    older = found[PAGE - 1].id if len(found) > PAGE else None
    return render("console/alerts.html", rows=rows, older=older, paged=before_id is not None,
                  min_answers=config.min_answers, threshold=rules.DISSATISFIED_FLAG_SHARE), 200


@bp.get("/alerts/<int:alert_id>")
@requires(Permission.CAMPAIGNS_READ, target="alert")
def alert_page(alert_id: int) -> tuple[str, int]:
    svc = services()
    config = alerts.AlertConfig.from_settings(svc.settings)
    with svc.db.begin() as session:
        alert = alerts.get_alert(session, alert_id)
        row = _row(alert, config, str(get_locale()))
        counted = alerts.campaigns_of(session, alert, config.timezone)
    return render("console/alert.html", alert=row, campaigns=counted, min_answers=config.min_answers,
                  threshold=rules.DISSATISFIED_FLAG_SHARE), 200
