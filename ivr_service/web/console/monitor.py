"""The live monitor of one campaign, and steering it.

``/campaigns/<id>`` is the whole page; the part that changes (``/live``) refreshes itself
with htmx polling every few seconds while the tab is visible. Without JavaScript the page
is complete as served and a reload updates it. The call length and cost figures read
every connected call (``services/call_costs.py``), so they are not polled: the page loads
them once (``/calls``, a link without JavaScript).

Start, pause, resume and cancel go through a confirmation page (``/steer?action=…``, a
form without JavaScript) that asks for the reason pausing and cancelling need, then the
same code path as the API (``web/steering.py``: checks, transition, audit entry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import current_app, flash, redirect, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...core.access import Permission, allowed
from ...persistence.models import CampaignStatus
from ...services import access, buckets, call_costs, campaigns, monitor
from ...services.call_costs import Costing
from ...services.errors import ServiceError
from .. import steering
from ..access import Forbidden, principal, requires
from ..context import services
from ..errors import status_of
from . import bp, render

POLL_SECONDS = 5          # app.config["CONSOLE_POLL_SECONDS"] overrides it (tests)
STOP_POLLING = 286        # htmx's status for "swap this, then stop polling"
OVER = frozenset({CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value})

CONTACT_LABELS = {"reserve": _l("In reserve"), "pending": _l("Waiting for an attempt"),
                  "active": _l("Attempt under way"), "done": _l("Settled")}
DISPOSITION_LABELS = {
    "1.1": _l("Complete"), "1.2": _l("Partial"), "2.11": _l("Refusal"), "2.12": _l("Break-off"),
    "2.20": _l("Non-contact"), "2.30": _l("Other"), "3.11": _l("Not attempted"), "3.12": _l("Always busy"),
    "3.13": _l("No answer"), "3.14": _l("Answering machine"), "3.16": _l("Technical problems"),
    "4.10": _l("Out of sample"), "4.20": _l("Fax or data line"), "4.30": _l("Non-working number"),
}
RATES = (("RR1", _l("Response rate: completes of all eligible and unknown cases")),
         ("RR2", _l("Response rate counting partial interviews")),
         ("COOP1", _l("Cooperation rate: completes of the people reached")),
         ("REF1", _l("Refusal rate")),
         ("CON1", _l("Contact rate: people reached of all cases")))
ACTION_LABELS = {"start": _l("Start"), "pause": _l("Pause"), "resume": _l("Resume"), "cancel": _l("Cancel campaign")}
ACTION_DONE = {"start": _l("The campaign was started."), "pause": _l("The campaign was paused."),
               "resume": _l("The campaign was resumed."), "cancel": _l("The campaign was cancelled.")}


@dataclass(frozen=True)
class Bar:
    label: str          # under the bar when ``tick``
    title: str          # the bar's period in words, for the table
    value: int
    x: float
    y: float
    height: float
    tick: bool


@dataclass(frozen=True)
class Chart:
    """A bar chart drawn by the template as inline SVG (``_bar_chart.html``)."""

    bars: list[Bar]
    top: int             # the value of a full-height bar
    total: int
    width: int = 480
    height: int = 140
    bar_width: float = 0.0
    base: int = 120      # the y of the axis; labels below it


def bar_chart(points: list[tuple[str, str, int]], every: int = 1) -> Chart:
    """``points``: (label, title, value) in order; every ``every``-th label is shown."""
    top = max([value for _, _, value in points] + [1])
    width, base, left = 480, 120, 4
    slot = (width - left) / max(len(points), 1)
    bars = []
    for i, (label, title, value) in enumerate(points):
        height = 100 * value / top
        bars.append(Bar(label, title, value, left + i * slot + slot * 0.1, base - height, height,
                        tick=(len(points) - 1 - i) % every == 0))
    return Chart(bars, top, sum(value for _, _, value in points), width=width, bar_width=slot * 0.8, base=base)


@bp.app_template_filter("local")
def local_time(value: datetime | None, tz: str, fmt: str = "dd/MM/yyyy HH:mm") -> str:
    """A UTC instant on the wall clock of ``tz`` (a campaign's zone), in the page's language."""
    if value is None:
        return "–"
    return format_datetime(value, fmt, tzinfo=ZoneInfo(tz), locale=str(get_locale()))


def poll_seconds() -> int:
    return int(current_app.config.get("CONSOLE_POLL_SECONDS", POLL_SECONDS))


def _live(session: Session, campaign_id: int) -> dict[str, Any]:
    closed = current_app.extensions.setdefault("sipas_closed_buckets", buckets.Closed())
    found = monitor.monitor(session, campaign_id, services().clock(), closed)
    hours = [(point["hour"][11:13], point["hour"][11:16], point["attempts"])
             for point in found.progress.attempts_per_hour]
    days = [(day.strftime("%d/%m"), day.strftime("%d/%m/%Y"), n) for day, n in found.completes_per_day]
    return {"m": found, "hours": bar_chart(hours, every=3), "days": bar_chart(days, every=2),
            "contact_labels": CONTACT_LABELS, "disposition_labels": DISPOSITION_LABELS, "rates": RATES}


@bp.get("/campaigns/<int:campaign_id>")
@requires(Permission.CAMPAIGNS_READ, target="campaign")
def campaign_monitor(campaign_id: int) -> str:
    with services().db.begin() as session:
        live = _live(session, campaign_id)
        agency_id = campaigns.get_campaign(session, campaign_id).agency_id
        parents = access.agency_parents(session)
        may_steer = steering.permitted(session, agency_id, parents)
        may_configure = allowed(principal(), Permission.CAMPAIGNS_WRITE, agency_id, parents)
    found: monitor.Monitor = live["m"]
    buttons = [action for action in found.actions if action in may_steer]
    over = found.status in OVER
    return render("console/monitor.html", campaign={"id": campaign_id, "name": found.name}, tab="monitor",
                  buttons=buttons, action_labels=ACTION_LABELS, editable=may_configure and not over,
                  poll=None if over else poll_seconds(), **live)


@bp.get("/campaigns/<int:campaign_id>/live")
@requires(Permission.CAMPAIGNS_READ, target="campaign")
def campaign_live(campaign_id: int) -> tuple[str, int]:
    """The part of the monitor that changes, without the layout (what the page polls). Once
    the campaign is over nothing changes any more: 286 tells htmx to stop polling."""
    with services().db.begin() as session:
        live = _live(session, campaign_id)
    return render("console/_monitor_live.html", **live), STOP_POLLING if live["m"].status in OVER else 200


@bp.get("/campaigns/<int:campaign_id>/calls")
@requires(Permission.CAMPAIGNS_READ, target="campaign")
def campaign_calls(campaign_id: int) -> str:
    """Call length and cost: a fragment for the monitor page, a page of its own without htmx."""
    svc = services()
    with svc.db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        name = campaign.name
        costs = call_costs.campaign_costs(session, svc.registry, campaign_id, Costing.from_settings(svc.settings))
    template = "console/_monitor_calls.html" if request.headers.get("HX-Request") else "console/monitor_calls.html"
    return render(template, campaign={"id": campaign_id, "name": name}, tab="monitor", costs=asdict(costs))


def _steer_page(campaign_id: int, action: str, reason: str = "", error: ServiceError | None = None,
                status: int = 200) -> tuple[str, int]:
    with services().db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        name = campaign.name
    return render("console/steer.html", campaign={"id": campaign_id, "name": name}, tab="monitor",
                  action=action, action_label=ACTION_LABELS[action], reason=reason,
                  reason_needed=action in steering.REASON_NEEDED, max_reason=steering.MAX_REASON,
                  error=error), status


@bp.get("/campaigns/<int:campaign_id>/steer")
@requires(Permission.CAMPAIGNS_STEER, target="campaign")
def steer_confirm(campaign_id: int) -> Response | tuple[str, int]:
    """The confirmation step of a button on the monitor: what the action does, the reason."""
    action = request.args.get("action", "")
    if action not in steering.ACTIONS:
        return redirect(f"/campaigns/{campaign_id}")
    with services().db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        if action not in steering.permitted(session, campaign.agency_id):
            raise Forbidden(f"{action} needs the {Permission.CAMPAIGNS_WRITE.value} permission")
        possible = campaigns.possible_actions(campaign.status)
    if action not in possible:
        flash(_l("This campaign's state no longer allows that."), "error")
        return redirect(f"/campaigns/{campaign_id}")
    return _steer_page(campaign_id, action)


@bp.post("/campaigns/<int:campaign_id>/steer")
@requires(Permission.CAMPAIGNS_STEER, target="campaign")
def steer(campaign_id: int) -> Response | tuple[str, int]:
    action = request.form.get("action", "")
    reason = request.form.get("reason", "")
    if action not in steering.ACTIONS:
        flash(_l("Choose what to do with the buttons of the monitor."), "error")
        return redirect(f"/campaigns/{campaign_id}", code=303)
    try:
        steering.steer(campaign_id, action, reason)
    except ServiceError as exc:
        return _steer_page(campaign_id, action, reason, exc, status_of(exc))
    flash(ACTION_DONE[action], "success")
    return redirect(f"/campaigns/{campaign_id}", code=303)
