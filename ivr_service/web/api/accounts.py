"""Users and their roles, API tokens, and the audit log: admins only, each within their
part of the agency tree (an installation-wide admin sees everything)."""

from __future__ import annotations

from typing import Any

from flask import Response

from ...core.access import Permission
from ...persistence.models import ApiToken, User
from ...services import access, accounts, audit
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import AuditOut, AuditQuery, GrantIn, IssuedTokenOut, TokenIn, TokenOut, UserIn, UserOut, UserPatchIn


def _user_out(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "active": user.active,
            "created_at": user.created_at, "last_login_at": user.last_login_at,
            "grants": [{"role": g.role, "agency_id": g.agency_id} for g in user.grants]}


@bp.get("/users")
@bp.output(UserOut(many=True))
@requires(Permission.USERS_WRITE)
def list_users() -> list[dict[str, Any]]:
    svc = services()
    with svc.db.begin() as session:
        return [_user_out(u) for u in accounts.users(session, principal())]


@bp.post("/users")
@bp.input(UserIn, arg_name="data")
@bp.output(UserOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 409: "The username is taken"})
@requires(Permission.USERS_WRITE)
def create_user(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        user = accounts.create_user(session, principal(), actor(), now, data["username"], data["password"],
                                    data["display_name"], [(g["role"], g["agency_id"]) for g in data["grants"]])
        return _user_out(user)


@bp.patch("/users/<int:user_id>")
@bp.input(UserPatchIn, arg_name="data")
@bp.output(UserOut)
@requires(Permission.USERS_WRITE)
def change_user(user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Set a new password or (de)activate; either ends the user's sessions."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        user = accounts.manageable_user(session, principal(), user_id)
        if "password" in data:
            accounts.set_password(session, principal(), actor(), now, user_id, data["password"])
        if "active" in data:
            accounts.set_active(session, principal(), actor(), now, user_id, data["active"])
        return _user_out(user)


@bp.put("/users/<int:user_id>/grants")
@bp.input(GrantIn, arg_name="data")
@bp.output(UserOut)
@requires(Permission.USERS_WRITE)
def grant_role(user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Give the user a role on an agency node (replacing their role on that node). A
    subtree admin grants only to users wholly inside their part of the tree, so nobody can
    adopt an account from elsewhere (or one with no role yet) and then manage it."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        user = accounts.grant_role(session, principal(), actor(), now, user_id, data["role"], data["agency_id"])
        return _user_out(user)


@bp.delete("/users/<int:user_id>/grants")
@bp.input(GrantIn(only=["agency_id"]), location="query", arg_name="query")
@requires(Permission.USERS_WRITE)
def revoke_role(user_id: int, query: dict[str, Any]) -> Response:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        accounts.revoke_role(session, principal(), actor(), now, user_id, query["agency_id"])
    return Response(status=204)


def _token_out(token: ApiToken) -> dict[str, Any]:
    return {key: getattr(token, key) for key in ("id", "prefix", "name", "scopes", "agency_id", "created_at",
                                                  "expires_at", "last_used_at", "revoked_at")}


@bp.get("/tokens")
@bp.output(TokenOut(many=True))
@requires(Permission.TOKENS_WRITE)
def list_tokens() -> list[dict[str, Any]]:
    svc = services()
    with svc.db.begin() as session:
        return [_token_out(t) for t in accounts.tokens(session, principal())]


@bp.post("/tokens")
@bp.input(TokenIn, arg_name="data")
@bp.output(IssuedTokenOut, status_code=201)
@bp.doc(description="The whole token is in the answer once; store it now. Only its hash is kept.")
@requires(Permission.TOKENS_WRITE)
def create_token(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        issued = accounts.create_token(session, principal(), actor(), now, data["name"], data["scopes"],
                                       data["agency_id"], data["expires_at"])
        return {**_token_out(issued.token), "token": issued.secret}


@bp.delete("/tokens/<int:token_id>")
@bp.output(TokenOut)
@requires(Permission.TOKENS_WRITE)
def revoke_token(token_id: int) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        return _token_out(accounts.revoke_token(session, principal(), actor(), now, token_id))


@bp.get("/audit")
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditOut(many=True))
@requires(Permission.AUDIT_READ)
def audit_log(query: dict[str, Any]) -> list[Any]:
    """Newest first; page back with ``before_id``; ``actor`` matches part of the actor
    (``user:3 an``), ``since`` and ``until`` bound the time (``until`` excluded). Entries
    about agencies outside the caller's part of the tree are left out."""
    svc = services()
    with svc.db.begin() as session:
        scope = access.scope(session, principal(), Permission.AUDIT_READ)
        return audit.entries(session, query["limit"], query["before_id"], query["action"], scope,
                             actor=query["actor"], since=query["since"], until=query["until"])
