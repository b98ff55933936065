"""The campaigns list: every campaign the operator may see, by agency (tree order)."""

from __future__ import annotations

from flask import redirect, request
from werkzeug.wrappers import Response

from ...core.access import Permission
from ...persistence.models import CampaignStatus
from ...services import access, overview
from ..access import principal, requires
from ..context import services
from . import bp, render

STATUSES = [s.value for s in CampaignStatus]


@bp.get("/")
@requires(None)
def home() -> Response:
    return redirect("/campaigns")


@bp.get("/campaigns")
@requires(Permission.CAMPAIGNS_READ)
def campaigns() -> str:
    svc = services()
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    search = request.args.get("q", "")[:100]
    with svc.db.begin() as session:
        within = access.scope(session, principal(), Permission.CAMPAIGNS_READ)
        rows = overview.campaign_rows(session, within, svc.clock(), status=status or None, search=search)
        tree = overview.agency_tree(session, within)
    template = "console/_campaign_rows.html" if request.headers.get("HX-Request") else "console/campaigns.html"
    return render(template, groups=overview.by_agency(tree, rows), statuses=STATUSES, status=status,
                  search=search)
