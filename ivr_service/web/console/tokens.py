"""API tokens, for admins: the tokens of the admin's part of the tree (prefix, scopes,
agency, expiry, last use, revocation), a new token, revoking one. The same services,
permission, scope rule and audit entries as ``/api/v1/tokens``.

A new token's whole value is on the page that answers the form, once: it is not
redirected to (a redirect would have to carry the secret), the page is marked
``no-store``, and only the token's hash is kept, so no later page can show it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, make_response, redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ...core.access import TOKEN_SCOPES, Permission
from ...persistence.models import ApiToken
from ...services import access, accounts, overview
from ...services.errors import ServiceError
from ..access import actor, principal, requires
from ..context import services
from . import bp, render
from .forms import agency_choices, agency_value, end_of, failed, local_date

SCOPES = sorted(TOKEN_SCOPES)
SCOPE_LABELS = {
    Permission.AGENCIES_READ: _l("See agencies and the tree"),
    Permission.AGENCIES_WRITE: _l("Create and change agencies"),
    Permission.AUDIT_READ: _l("Read the audit log"),
    Permission.CAMPAIGNS_READ: _l("See campaigns, progress and scores"),
    Permission.CAMPAIGNS_WRITE: _l("Create, configure, start and cancel campaigns"),
    Permission.CAMPAIGNS_STEER: _l("Pause and resume campaigns"),
    Permission.FRAMES_WRITE: _l("Import frames and draw samples"),
    Permission.EXPORTS_WRITE: _l("Write and download exports"),
    Permission.OPTOUTS_WRITE: _l("Add and remove opt-outs"),
    Permission.CONTACTS_READ: _l("See phone numbers"),
    Permission.TRANSACTIONS_WRITE: _l("Report returned dossiers"),
    Permission.METRICS_READ: _l("Scrape the service's metrics (installation-wide tokens only)"),
}


def _row(token: ApiToken, names: dict[int | None, str], now: datetime) -> dict[str, Any]:
    expired = token.expires_at is not None and token.expires_at <= now
    state = "revoked" if token.revoked_at is not None else "expired" if expired else "active"
    return {"id": token.id, "prefix": token.prefix, "name": token.name, "scopes": token.scopes,
            "agency": names.get(token.agency_id, "–"), "created_at": token.created_at,
            "expires_at": token.expires_at, "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
            "state": state}


def _page(form: dict[str, Any] | None = None, errors: dict[str, Any] | None = None,
          status: int = 200) -> tuple[str, int]:
    svc = services()
    with svc.db.begin() as session:
        within = access.scope(session, principal(), Permission.TOKENS_WRITE)
        tree = overview.agency_tree(session, within)
        names: dict[int | None, str] = {node.id: node.name for node in tree}
        names[None] = _("Whole installation")
        rows = [_row(t, names, svc.clock()) for t in reversed(accounts.tokens(session, principal()))]
    return render("console/tokens.html", rows=rows, choices=agency_choices(tree, whole=within is None),
                  scopes=SCOPES, scope_labels=SCOPE_LABELS, form=form or {"scopes": []}, errors=errors or {}), status


@bp.get("/admin/tokens")
@requires(Permission.TOKENS_WRITE)
def tokens() -> tuple[str, int]:
    return _page()


@bp.post("/admin/tokens")
@requires(Permission.TOKENS_WRITE)
def create_token() -> Response | tuple[str, int]:
    svc = services()
    now = svc.clock()
    form: dict[str, Any] = {"name": request.form.get("name", "")[:200],
                            "agency_id": request.form.get("agency_id", "")[:40],
                            "expires_at": request.form.get("expires_at", "")[:20],
                            "scopes": [s for s in request.form.getlist("scopes") if s in SCOPES]}
    try:
        agency_id = agency_value(form["agency_id"])
        day = local_date(form["expires_at"], "expires_at")
        with svc.db.begin() as session:
            issued = accounts.create_token(session, principal(), actor(), now, form["name"], form["scopes"],
                                           agency_id, end_of(day) if day is not None else None)
            names: dict[int | None, str] = {None: _("Whole installation")}
            if agency_id is not None:
                names[agency_id] = overview.agency_tree(session, {agency_id})[0].name
            row = _row(issued.token, names, now)
            secret = issued.secret
    except ServiceError as exc:
        errors, status = failed(exc)
        return _page(form, errors, status)
    response = make_response(render("console/token_issued.html", token=row, secret=secret,
                                    scope_labels=SCOPE_LABELS), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/tokens/<int:token_id>/revoke")
@requires(Permission.TOKENS_WRITE)
def revoke_token(token_id: int) -> Response:
    svc = services()
    with svc.db.begin() as session:
        token = accounts.revoke_token(session, principal(), actor(), svc.clock(), token_id)
        label = f"{token.name} (sipas_{token.prefix}_…)"
    flash(_("Token %(token)s revoked: it is refused from now on.", token=label))
    return redirect("/admin/tokens", 303)
