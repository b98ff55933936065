"""The settings form of a campaign: calling window, retries, pace, channel plan, dates,
target, spoken answers and the agency's line.

The form is read into the same values the API takes (``PATCH /api/v1/campaigns/<id>``)
and goes through the same code path (``web/steering.configure``: the service validates
the whole configuration, the audit entry records what changed). Values are passed on as
typed, numbers converted only where they read as numbers, so a wrong value gets the
service's own message, shown beside the field at fault (``ServiceError.field``, narrowed
to the control for the window's and retry policy's parts); on an error nothing is stored
and the form shows what was typed. Only groups whose values differ from what the form
showed are sent, so the audit entry names what was changed and an unchanged start date
does not trip the rule that it cannot change while running.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from ...core.access import Permission
from ...core.policy import Outcome, RetryPolicy
from ...persistence.models import Campaign, CampaignStatus
from ...services import campaigns
from ...services.errors import ServiceError
from .. import steering
from ..access import requires
from ..context import services
from ..errors import status_of
from . import bp, render

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))
PARTS = 3          # rows of day parts on the form
DELAYS = (("busy", _l("Busy")), ("no_answer", _l("No answer")), ("failed", _l("Provider or network failure")),
          ("machine", _l("Answering machine")), ("partial", _l("Partial interview")),
          ("break_off", _l("Break-off")), ("canceled", _l("Call cancelled")))
PLAN_STEPS = len(campaigns.PLAN_CHANNELS)
CHANNELS = {"voice": _l("Calls"), "sms": _l("SMS")}

# The form's controls by the setting they make up.
GROUPS: dict[str, tuple[str, ...]] = {
    "window": ("weekdays", *(f"part{i}_{end}" for i in range(1, PARTS + 1) for end in ("start", "end")),
               "closed_dates"),
    "retry": ("max_attempts", *(f"delay_{key}" for key, _ in DELAYS), "min_gap_s"),
    "calls_per_second": ("calls_per_second",),
    "channel_plan": (*(f"plan{i}_{part}" for i in range(1, PLAN_STEPS + 1) for part in ("channel", "attempts")),
                     "sms_mode", "sms_session_hours"),
    "starts_at": ("starts_at",),
    "ends_at": ("ends_at",),
    "target_completes": ("target_completes",),
    "speech_input": ("speech_input",),
    "hotline": ("hotline",),
}
# Where a service error about a whole setting points on the form, by its message.
_PARTS_OF = {"window": (("calling window: weekdays", "weekdays"), ("calling window: parts", "parts"),
                        ("calling window: closed_dates", "closed_dates")),
             "retry": (("retry policy: max_attempts", "max_attempts"), ("retry policy: delays", "delays"),
                       ("retry policy: min_gap", "min_gap_s"))}
_ALIASES = {"spread": "ends_at"}      # spread needs an end date: the field the operator changed


def _seconds(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _clock(value: time) -> str:
    return value.strftime("%H:%M" if not value.second and not value.microsecond else "%H:%M:%S")


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def shown(campaign: Campaign) -> dict[str, Any]:
    """The form's values for the campaign's settings (a list for the weekday boxes)."""
    window = campaign.calling_window()
    retry = RetryPolicy.from_dict(campaign.retry or {})
    values: dict[str, Any] = {"weekdays": [str(d) for d in sorted(window.weekdays)],
                              "closed_dates": "\n".join(sorted(d.isoformat() for d in window.closed_dates))}
    for i in range(1, PARTS + 1):
        part = window.parts[i - 1] if i <= len(window.parts) else None
        values[f"part{i}_start"] = _clock(part.start) if part else ""
        values[f"part{i}_end"] = _clock(part.end) if part else ""
    values["max_attempts"] = str(retry.max_attempts)
    for key, _ in DELAYS:
        delay = retry.delays.get(Outcome(key))
        values[f"delay_{key}"] = _seconds(delay.total_seconds()) if delay is not None else ""
    values["min_gap_s"] = _seconds(retry.min_gap.total_seconds())
    values["calls_per_second"] = _seconds(campaign.calls_per_second)
    plan = campaign.channel_plan or []
    values["sms_mode"], values["sms_session_hours"] = "link", ""
    for i in range(1, PLAN_STEPS + 1):
        step = plan[i - 1] if i <= len(plan) else {}
        values[f"plan{i}_channel"] = step.get("channel", "")
        values[f"plan{i}_attempts"] = str(step["max_attempts"]) if step else ""
        if step.get("channel") == "sms":
            values["sms_mode"] = step.get("mode", "link")
            values["sms_session_hours"] = str(step.get("session_hours") or "")
    values["starts_at"] = _local(campaign.starts_at, campaign.timezone)
    values["ends_at"] = _local(campaign.ends_at, campaign.timezone)
    values["target_completes"] = str(campaign.target_completes or "")
    values["speech_input"] = "on" if campaign.speech_input else ""
    values["hotline"] = campaign.hotline or ""
    return values


def typed(form: MultiDict[str, str]) -> dict[str, Any]:
    """What the operator sent, in the shape of :func:`shown`."""
    values: dict[str, Any] = {name: form.get(name, "").strip() for group in GROUPS.values() for name in group}
    values["weekdays"] = form.getlist("weekdays")
    values["closed_dates"] = form.get("closed_dates", "")
    return values


def _same(name: str, a: Any, b: Any) -> bool:
    if name == "weekdays":
        return sorted(a) == sorted(b)
    if name == "closed_dates":
        return _tokens(a) == _tokens(b)
    return bool(a == b)


def _tokens(text: str) -> list[str]:
    return [token for token in re.split(r"[\s,;]+", text) if token]


def _number(text: str) -> Any:
    """A number where the text reads as one; the text itself otherwise, for the service to
    refuse with its message."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _moment(text: str, tz: str) -> Any:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        return text


def changes(campaign: Campaign, values: dict[str, Any]) -> dict[str, Any]:
    """The settings the form changes, as the API takes them."""
    before = shown(campaign)
    edited = {key for key, names in GROUPS.items() if not all(_same(n, values[n], before[n]) for n in names)}
    result: dict[str, Any] = {}
    if "window" in edited:
        parts = [[values[f"part{i}_start"], values[f"part{i}_end"]] for i in range(1, PARTS + 1)
                 if values[f"part{i}_start"] or values[f"part{i}_end"]]
        result["window"] = {**(campaign.window or {}), "weekdays": [_number(d) for d in values["weekdays"]],
                            "parts": parts, "closed_dates": _tokens(values["closed_dates"])}
    if "retry" in edited:
        retry: dict[str, Any] = {"delays": {key: _number(values[f"delay_{key}"]) for key, _ in DELAYS
                                            if values[f"delay_{key}"]}}
        for name in ("max_attempts", "min_gap_s"):
            if values[name]:
                retry[name] = _number(values[name])
        result["retry"] = retry
    if "calls_per_second" in edited:
        result["calls_per_second"] = _number(values["calls_per_second"])
    if "channel_plan" in edited:
        steps = []
        for i in range(1, PLAN_STEPS + 1):
            channel = values[f"plan{i}_channel"]
            if not channel:
                continue
            step: dict[str, Any] = {"channel": channel}
            if values[f"plan{i}_attempts"]:
                step["max_attempts"] = _number(values[f"plan{i}_attempts"])
            if channel == "sms":
                if values["sms_mode"] and values["sms_mode"] != "link":
                    step["mode"] = values["sms_mode"]
                if values["sms_session_hours"]:
                    step["session_hours"] = _number(values["sms_session_hours"])
            steps.append(step)
        result["channel_plan"] = steps or None
    for name in ("starts_at", "ends_at"):
        if name in edited:
            result[name] = _moment(values[name], campaign.timezone)
    if "target_completes" in edited:
        result["target_completes"] = _number(values["target_completes"]) if values["target_completes"] else None
    if "speech_input" in edited:
        result["speech_input"] = bool(values["speech_input"])
    if "hotline" in edited:
        result["hotline"] = values["hotline"] or None
    return result


def control(error: ServiceError) -> str | None:
    """The form control (or group) a service error is about; None when it is not one of the
    form's (shown above the form only)."""
    field = _ALIASES.get(error.field or "", error.field)
    for prefix, name in _PARTS_OF.get(field or "", ()):
        if error.message.startswith(prefix):
            return name
    known = set(GROUPS) | {"weekdays", "parts", "closed_dates", "max_attempts", "delays", "min_gap_s"}
    return field if field in known else None


def _page(campaign: Campaign, values: dict[str, Any], error: ServiceError | None = None,
          status: int = 200) -> tuple[str, int]:
    at = control(error) if error is not None else None
    return render("console/settings.html", campaign={"id": campaign.id, "name": campaign.name}, tab="monitor",
                  values=values, error=error, at=at, errors={at: error.message} if error and at else {},
                  timezone=campaign.timezone, weekdays=WEEKDAYS, parts=PARTS, delays=DELAYS,
                  plan_steps=PLAN_STEPS, channels=CHANNELS,
                  closed=campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)), status


@bp.get("/campaigns/<int:campaign_id>/settings")
@requires(Permission.CAMPAIGNS_WRITE, target="campaign")
def campaign_settings(campaign_id: int) -> tuple[str, int]:
    with services().db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
    # Rendered after the transaction: the template's context (Flask-Login) reads the database.
    return _page(campaign, shown(campaign))


@bp.post("/campaigns/<int:campaign_id>/settings")
@requires(Permission.CAMPAIGNS_WRITE, target="campaign")
def save_settings(campaign_id: int) -> Response | tuple[str, int]:
    values = typed(request.form)
    with services().db.begin() as session:
        wanted = changes(campaigns.get_campaign(session, campaign_id), values)
    if not wanted:
        flash(_l("Nothing was changed."), "success")
        return redirect(f"/campaigns/{campaign_id}", code=303)
    try:
        steering.configure(campaign_id, wanted)
    except ServiceError as exc:
        with services().db.begin() as session:
            campaign = campaigns.get_campaign(session, campaign_id)
        return _page(campaign, values, exc, status_of(exc))
    flash(_l("The settings were saved."), "success")
    return redirect(f"/campaigns/{campaign_id}", code=303)
