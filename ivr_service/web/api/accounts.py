"""Users and their roles, API tokens, and the audit log: admins only, each within their
part of the agency tree (an installation-wide admin sees everything)."""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy.orm import Session

from ...core.access import Permission
from ...persistence.models import ApiToken, User
from ...services import access, audit
from ...services.errors import NotFound
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import AuditOut, AuditQuery, GrantIn, IssuedTokenOut, TokenIn, TokenOut, UserIn, UserOut, UserPatchIn


def _user_out(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "active": user.active,
            "created_at": user.created_at, "last_login_at": user.last_login_at,
            "grants": [{"role": g.role, "agency_id": g.agency_id} for g in user.grants]}


def _manageable(session: Session, user: User) -> None:
    """An admin manages users whose every role lies inside the admin's part of the tree;
    anyone else's account is answered as absent. A user with no role at all lies in no
    part of the tree: only an installation-wide admin manages it (as ``list_users`` shows)."""
    scope = access.scope(session, principal(), Permission.USERS_WRITE)
    if scope is not None and (not user.grants or any(g.agency_id is None or g.agency_id not in scope
                                                      for g in user.grants)):
        raise NotFound(f"user {user.id} not found")


@bp.get("/users")
@bp.output(UserOut(many=True))
@requires(Permission.USERS_WRITE)
def list_users() -> list[dict[str, Any]]:
    svc = services()
    with svc.db.begin() as session:
        scope = access.scope(session, principal(), Permission.USERS_WRITE)
        return [_user_out(u) for u in access.list_users(session)
                if scope is None or (u.grants and all(g.agency_id in scope for g in u.grants))]


@bp.post("/users")
@bp.input(UserIn, arg_name="data")
@bp.output(UserOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 409: "The username is taken"})
@requires(Permission.USERS_WRITE)
def create_user(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        for grant in data["grants"]:
            access.check(session, principal(), Permission.USERS_WRITE, grant["agency_id"])
        user = access.create_user(session, data["username"], data["password"], now, data["display_name"])
        audit.record(session, actor(), "user_created", now, target=f"user:{user.id}", username=user.username)
        for grant in data["grants"]:
            access.grant_role(session, user.id, grant["role"], grant["agency_id"], now)
            audit.record(session, actor(), "role_granted", now, target=f"user:{user.id}",
                         agency_id=grant["agency_id"], role=grant["role"])
        session.refresh(user)
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
        user = access.get_user(session, user_id)
        _manageable(session, user)
        if "password" in data:
            access.set_password(session, user, data["password"])
            audit.record(session, actor(), "password_set", now, target=f"user:{user.id}")
        if "active" in data and data["active"] != user.active:
            if not data["active"]:
                access.ensure_not_last_admin(session, user.id)
            access.set_active(session, user, data["active"])
            audit.record(session, actor(), "user_activated" if data["active"] else "user_deactivated", now,
                         target=f"user:{user.id}")
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
        access.check(session, principal(), Permission.USERS_WRITE, data["agency_id"])
        user = access.get_user(session, user_id)
        _manageable(session, user)
        access.grant_role(session, user.id, data["role"], data["agency_id"], now)
        audit.record(session, actor(), "role_granted", now, target=f"user:{user.id}", agency_id=data["agency_id"],
                     role=data["role"])
        session.refresh(user)
        return _user_out(user)


@bp.delete("/users/<int:user_id>/grants")
@bp.input(GrantIn(only=["agency_id"]), location="query", arg_name="query")
@requires(Permission.USERS_WRITE)
def revoke_role(user_id: int, query: dict[str, Any]) -> Response:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        access.check(session, principal(), Permission.USERS_WRITE, query["agency_id"])
        user = access.get_user(session, user_id)
        _manageable(session, user)
        if query["agency_id"] is None:
            access.ensure_not_last_admin(session, user.id)
        access.revoke_role(session, user.id, query["agency_id"])
        audit.record(session, actor(), "role_revoked", now, target=f"user:{user.id}", agency_id=query["agency_id"])
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
        scope = access.scope(session, principal(), Permission.TOKENS_WRITE)
        return [_token_out(t) for t in access.list_tokens(session)
                if scope is None or (t.agency_id is not None and t.agency_id in scope)]


@bp.post("/tokens")
@bp.input(TokenIn, arg_name="data")
@bp.output(IssuedTokenOut, status_code=201)
@bp.doc(description="The whole token is in the answer once; store it now. Only its hash is kept.")
@requires(Permission.TOKENS_WRITE)
def create_token(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    caller = principal()
    with svc.db.begin() as session:
        access.check(session, caller, Permission.TOKENS_WRITE, data["agency_id"])
        issued = access.create_token(session, data["name"], data["scopes"], data["agency_id"], now,
                                     expires_at=data["expires_at"],
                                     created_by=caller.id if caller.kind == "user" else None)
        audit.record(session, actor(), "token_created", now, target=f"token:{issued.token.id}",
                     agency_id=data["agency_id"], prefix=issued.token.prefix, scopes=issued.token.scopes)
        return {**_token_out(issued.token), "token": issued.secret}


@bp.delete("/tokens/<int:token_id>")
@bp.output(TokenOut)
@requires(Permission.TOKENS_WRITE)
def revoke_token(token_id: int) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        scope = access.scope(session, principal(), Permission.TOKENS_WRITE)
        token = access.revoke_token(session, token_id, now)
        if scope is not None and (token.agency_id is None or token.agency_id not in scope):
            raise NotFound(f"token {token_id} not found")      # rolls the revocation back
        audit.record(session, actor(), "token_revoked", now, target=f"token:{token.id}", agency_id=token.agency_id,
                     prefix=token.prefix)
        return _token_out(token)


@bp.get("/audit")
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditOut(many=True))
@requires(Permission.AUDIT_READ)
def audit_log(query: dict[str, Any]) -> list[Any]:
    """Newest first; page back with ``before_id``. Entries about agencies outside the
    caller's part of the tree are left out."""
    svc = services()
    with svc.db.begin() as session:
        scope = access.scope(session, principal(), Permission.AUDIT_READ)
        return audit.entries(session, query["limit"], query["before_id"], query["action"], scope)
