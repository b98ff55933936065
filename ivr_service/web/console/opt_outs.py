"""The do-not-contact list: look a number up, add one (a citizen who called the hotline to
refuse), take one off with a reason, and the newest entries.

Looking up is a POST, as the API's removal is: the number stays out of URLs, browser
history and access logs. Everyone who sees campaigns may look up (a viewer sees numbers
masked, as the API shows them); adding and removing need ``optouts:write``, the API's
permission. Campaign names are shown only for campaigns the caller may see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import flash, redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ...core.access import Permission, Principal, mask_phone
from ...services import access, opt_outs
from ...services.errors import ServiceError
from ..access import actor, principal, requires
from ..context import services
from . import NAV, bp, render
from .forms import failed

NAV.append(("console.opt_outs", _l("Opt-outs"), Permission.CAMPAIGNS_READ.value))

PAGE = 50
RETENTION = timedelta(days=365)        # Decree 91/2020: a refusal is kept at least a year
SOURCE_LABELS = {"ivr": _l("Key 9 on a call"), "sms": _l("SMS refusal, or blocked with the carrier"),
                 "web": _l("Refusal link of the web form"), "operator": _l("Operator (console or API)")}


def shown(caller: Principal) -> Any:
    """How numbers are shown to ``caller``: whole with ``contacts:read``, else masked as
    the API masks them."""
    return (lambda phone: phone) if caller.holds(Permission.CONTACTS_READ) else mask_phone


def _campaign_label(entry: opt_outs.Entry, within: set[int] | None) -> str | None:
    if entry.campaign_id is None:
        return None
    if within is None or entry.campaign_agency_id in within:
        return entry.campaign_name
    return _("a campaign of another agency")


def _page(*, phone: str = "", result: dict[str, Any] | None = None, errors: dict[str, Any] | None = None,
          reason: str = "", status: int = 200) -> tuple[str, int]:
    svc = services()
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and 0 < int(before) < 2**63 else None
    caller = principal()
    with svc.db.begin() as session:
        within = access.scope(session, caller, Permission.CAMPAIGNS_READ)
        entries = opt_outs.newest(session, PAGE + 1, before_id)
    show = shown(caller)
    rows = [{"phone": show(e.phone_e164), "since": e.created_at, "source": SOURCE_LABELS.get(e.source, e.source),
             "campaign": _campaign_label(e, within)} for e in entries[:PAGE]]
    older = entries[PAGE - 1].id if len(entries) > PAGE else None
    return render("console/opt_outs.html", phone=phone, result=result, errors=errors or {}, reason=reason,
                  rows=rows, older=older, paged=before_id is not None), status


def _result(e164: str, entry: opt_outs.Entry | None, now: datetime) -> dict[str, Any]:
    caller = principal()
    with services().db.begin() as session:
        within = access.scope(session, caller, Permission.CAMPAIGNS_READ)
    result: dict[str, Any] = {"e164": e164, "shown": shown(caller)(e164), "listed": entry is not None}
    if entry is not None:
        result.update(since=entry.created_at, source=SOURCE_LABELS.get(entry.source, entry.source),
                      campaign=_campaign_label(entry, within), recent=now - entry.created_at < RETENTION)
    return result


@bp.get("/opt-outs", endpoint="opt_outs")
@requires(Permission.CAMPAIGNS_READ)
def opt_outs_page() -> tuple[str, int]:
    return _page()


@bp.post("/opt-outs/search")
@requires(Permission.CAMPAIGNS_READ)
def search() -> tuple[str, int]:
    svc = services()
    typed = request.form.get("phone", "")[:40]
    try:
        with svc.db.begin() as session:
            e164, entry = opt_outs.lookup(session, typed)
    except ServiceError as exc:
        errors, status = failed(exc)
        return _page(phone=typed, errors=errors, status=status)
    return _page(phone=typed, result=_result(e164, entry, svc.clock()))


@bp.post("/opt-outs")
@requires(Permission.OPTOUTS_WRITE)
def add() -> Response | tuple[str, int]:
    svc = services()
    typed = request.form.get("phone", "")[:40]
    try:
        with svc.db.begin() as session:
            e164 = opt_outs.add(session, actor(), typed, svc.clock())
    except ServiceError as exc:
        errors, status = failed(exc)
        return _page(phone=typed, errors=errors, status=status)
    flash(_("%(phone)s is on the do-not-contact list: no campaign will call or message it.",
            phone=shown(principal())(e164)))
    return redirect("/opt-outs", 303)


@bp.post("/opt-outs/remove")
@requires(Permission.OPTOUTS_WRITE)
def remove() -> Response | tuple[str, int]:
    svc = services()
    typed = request.form.get("phone", "")[:40]
    reason = request.form.get("reason", "")[:opt_outs.MAX_REASON + 1]
    now = svc.clock()
    try:
        with svc.db.begin() as session:
            e164 = opt_outs.remove(session, actor(), typed, reason, now)
    except ServiceError as exc:
        errors, status = failed(exc)
        result = None
        if "phone" not in errors:       # show the entry again, the reason kept, the error beside it
            with svc.db.begin() as session:
                e164, entry = opt_outs.lookup(session, typed)
            result = _result(e164, entry, now)
        return _page(phone=typed, result=result, errors=errors, reason=reason, status=status)
    flash(_("%(phone)s is off the do-not-contact list; the reason is kept in the audit log.",
            phone=shown(principal())(e164)))
    return redirect("/opt-outs", 303)
