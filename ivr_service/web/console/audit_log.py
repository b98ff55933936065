"""The audit log, for admins: newest first, filtered by action, actor and a range of local
dates, a page at a time. Entries about agencies outside the admin's part of the tree are
left out, as ``/api/v1/audit`` leaves them out (the same service and permission).

The filters are a GET form, so a filtered page can be bookmarked and paged; "older
entries" keeps the filters and pages back by id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request

from ...core.access import Permission
from ...services import access, audit, overview
from ...services.errors import ServiceError
from ..access import principal, requires
from ..context import services
from . import bp, render
from .forms import end_of, failed, local_date, start_of

PAGE = 50


@bp.get("/admin/audit")
@requires(Permission.AUDIT_READ)
def audit_page() -> tuple[str, int]:
    filters = {key: request.args.get(key, "").strip()[:120] for key in ("action", "actor", "since", "until")}
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and 0 < int(before) < 2**63 else None
    errors: dict[str, Any] = {}
    bounds: dict[str, Any] = {}
    for key, edge in (("since", start_of), ("until", end_of)):
        try:
            day = local_date(filters[key], key)
        except ServiceError as exc:
            errors.update(failed(exc)[0])
            continue
        bounds[key] = edge(day) if day is not None else None
    with services().db.begin() as session:
        within = access.scope(session, principal(), Permission.AUDIT_READ)
        actions = audit.actions(session, within)
        found = audit.entries(session, PAGE + 1, before_id, filters["action"] or None, within,
                              actor=filters["actor"] or None, since=bounds.get("since"), until=bounds.get("until"))
        names = {node.id: node.name for node in overview.agency_tree(session, within)}
    rows = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target, "address": e.address,
             "agency": names.get(e.agency_id, f"#{e.agency_id}") if e.agency_id is not None else None,
             "detail": sorted((e.detail or {}).items())} for e in found[:PAGE]]
    older = None
    if len(found) > PAGE:
        older = "/admin/audit?" + urlencode({**{k: v for k, v in filters.items() if v}, "before": found[PAGE - 1].id})
    newest = "/admin/audit?" + urlencode({k: v for k, v in filters.items() if v}) if before_id is not None else None
    return render("console/audit.html", rows=rows, actions=actions, filters=filters, errors=errors,
                  older=older, newest=newest), 400 if errors else 200
