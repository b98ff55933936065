"""Users and their roles, for admins: the users of the admin's part of the agency tree,
a new user with a first role, granting and revoking roles on the nodes the admin manages,
a new password, deactivation. Each action calls the same service as ``/api/v1/users``
(``services/accounts.py``): same permission, same scope rule (a user outside the admin's
part of the tree answers 404), same audit entries.

Forms post and redirect (303) on success; on an error the page is rendered again with the
message beside the field, what was typed kept (never the password), and the API's status.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...core.access import Permission, Role
from ...persistence.models import User
from ...services import access, accounts, overview
from ...services.errors import ServiceError, invalid
from ..access import actor, principal, requires
from ..context import services
from . import NAV, bp, render
from .forms import ROLE_LABELS, WHOLE_INSTALLATION, agency_choices, agency_value, failed

NAV.append(("console.users", _l("Users"), Permission.USERS_WRITE.value))

ROLES = [role.value for role in Role]


def _tree(session: Session) -> tuple[list[tuple[str, str]], dict[int | None, str]]:
    """The agency choices of the caller's part of the tree, and every node's name."""
    within = access.scope(session, principal(), Permission.USERS_WRITE)
    tree = overview.agency_tree(session, within)
    names: dict[int | None, str] = {node.id: node.name for node in tree}     # in tree order
    names[None] = _("Whole installation")
    return agency_choices(tree, whole=within is None), names


def _grants(user: User, names: dict[int | None, str]) -> list[dict[str, Any]]:
    order: dict[int | None, int] = {agency_id: i for i, agency_id in enumerate(names) if agency_id is not None}
    order[None] = -1                                    # the whole installation first, then tree order
    return [{"role": ROLE_LABELS.get(g.role, g.role), "agency": names.get(g.agency_id, "–"),
             "agency_value": WHOLE_INSTALLATION if g.agency_id is None else str(g.agency_id)}
            for g in sorted(user.grants, key=lambda g: order.get(g.agency_id, len(order)))]


def _row(user: User, names: dict[int | None, str]) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "active": user.active,
            "last_login_at": user.last_login_at, "grants": _grants(user, names)}


def _list_page(form: dict[str, str] | None = None, errors: dict[str, Any] | None = None,
               status: int = 200) -> tuple[str, int]:
    with services().db.begin() as session:
        choices, names = _tree(session)
        rows = [_row(u, names) for u in accounts.users(session, principal())]
    return render("console/users.html", rows=rows, choices=choices, roles=ROLES, role_labels=ROLE_LABELS,
                  form=form or {}, errors=errors or {}), status


@bp.get("/admin/users")
@requires(Permission.USERS_WRITE)
def users() -> tuple[str, int]:
    return _list_page()


@bp.post("/admin/users")
@requires(Permission.USERS_WRITE)
def create_user() -> Response | tuple[str, int]:
    svc = services()
    form = {key: request.form.get(key, "")[:200] for key in ("username", "display_name", "role", "agency_id")}
    now = svc.clock()
    try:
        if form["role"] not in ROLES:
            raise invalid("role", f"expected one of {', '.join(ROLES)}")
        agency_id = agency_value(form["agency_id"])
        with svc.db.begin() as session:
            user = accounts.create_user(session, principal(), actor(), now, form["username"],
                                        request.form.get("password", "")[:1001], form["display_name"] or None,
                                        [(form["role"], agency_id)])
            user_id, username = user.id, user.username
    except ServiceError as exc:
        errors, status = failed(exc)
        return _list_page(form, errors, status)
    flash(_("User %(username)s created.", username=username))
    return redirect(f"/admin/users/{user_id}", 303)


def _user_page(user_id: int, form: dict[str, str] | None = None, errors: dict[str, Any] | None = None,
               status: int = 200) -> tuple[str, int]:
    with services().db.begin() as session:
        user = accounts.manageable_user(session, principal(), user_id)
        choices, names = _tree(session)
        row = _row(user, names)
    return render("console/user.html", user=row, choices=choices, roles=ROLES, role_labels=ROLE_LABELS,
                  form=form or {}, errors=errors or {}), status


@bp.get("/admin/users/<int:user_id>")
@requires(Permission.USERS_WRITE)
def user(user_id: int) -> tuple[str, int]:
    return _user_page(user_id)


def _change(user_id: int, change: Any, done: str, form: dict[str, str] | None = None) -> Response | tuple[str, int]:
    """Run ``change(session, now)`` on a manageable user; a 404 for anyone else's user
    before anything is read from the form."""
    svc = services()
    with svc.db.begin() as session:
        accounts.manageable_user(session, principal(), user_id)
    try:
        with svc.db.begin() as session:
            change(session, svc.clock())
    except ServiceError as exc:
        errors, status = failed(exc)
        return _user_page(user_id, form, errors, status)
    flash(done)
    return redirect(f"/admin/users/{user_id}", 303)


@bp.post("/admin/users/<int:user_id>/grants")
@requires(Permission.USERS_WRITE)
def grant(user_id: int) -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "")[:40] for key in ("role", "agency_id")}

    def change(session: Session, now: Any) -> None:
        if form["role"] not in ROLES:
            raise invalid("role", f"expected one of {', '.join(ROLES)}")
        accounts.grant_role(session, principal(), actor(), now, user_id, form["role"], agency_value(form["agency_id"]))
    return _change(user_id, change, _("Role granted."), form)


@bp.post("/admin/users/<int:user_id>/grants/revoke")
@requires(Permission.USERS_WRITE)
def revoke(user_id: int) -> Response | tuple[str, int]:
    def change(session: Session, now: Any) -> None:
        accounts.revoke_role(session, principal(), actor(), now, user_id, agency_value(request.form.get("agency_id")))
    return _change(user_id, change, _("Role revoked."))


@bp.post("/admin/users/<int:user_id>/password")
@requires(Permission.USERS_WRITE)
def password(user_id: int) -> Response | tuple[str, int]:
    def change(session: Session, now: Any) -> None:
        accounts.set_password(session, principal(), actor(), now, user_id, request.form.get("password", "")[:1001])
    return _change(user_id, change, _("Password set; the user's sessions have ended."))


@bp.post("/admin/users/<int:user_id>/active")
@requires(Permission.USERS_WRITE)
def active(user_id: int) -> Response | tuple[str, int]:
    wanted = request.form.get("active", "")

    def change(session: Session, now: Any) -> None:
        if wanted not in ("0", "1"):
            raise invalid("active", "expected 0 (deactivate) or 1 (reactivate)")
        accounts.set_active(session, principal(), actor(), now, user_id, wanted == "1")
    return _change(user_id, change, _("User reactivated.") if wanted == "1" else
                   _("User deactivated; their sessions have ended."))
