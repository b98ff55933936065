"""What an admin does to users, roles and API tokens, within their part of the agency tree,
each change audited in the same transaction. The JSON API (``web/api/accounts.py``) and
the console (``web/console/users.py``, ``tokens.py``) both call these, so the two edges
cannot disagree on who may manage what.

The scope rules:

* An admin manages users whose *every* role lies inside the admin's part of the tree;
  anyone else's account answers as absent (``NotFound``), so ids cannot be probed. A user
  with no role at all lies in no part of the tree: only an installation-wide admin sees it.
* Granting needs the admin's permission on the node granted, and a manageable user: nobody
  can adopt an account from elsewhere (or one with no role yet) and then manage it.
* Tokens are seen and revoked by admins whose part of the tree holds the token's node; an
  installation-wide token only by an installation-wide admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from ..core.access import Permission, Principal
from ..persistence.models import ApiToken, User
from . import access, audit
from .access import IssuedToken
from .audit import Actor
from .campaigns import MAX_ID
from .errors import NotFound


def _inside(scope: set[int] | None, user: User) -> bool:
    return scope is None or (bool(user.grants) and all(g.agency_id in scope for g in user.grants))


def users(session: Session, principal: Principal) -> list[User]:
    """The users ``principal`` manages, oldest first, with their grants loaded."""
    scope = access.scope(session, principal, Permission.USERS_WRITE)
    return [u for u in access.list_users(session) if _inside(scope, u)]


def manageable_user(session: Session, principal: Principal, user_id: int) -> User:
    """The user, if ``principal`` manages it; else NotFound, as if it did not exist."""
    user = access.get_user(session, user_id)
    if not _inside(access.scope(session, principal, Permission.USERS_WRITE), user):
        raise NotFound(f"user {user.id} not found")
    return user


def create_user(session: Session, principal: Principal, actor: Actor, now: datetime, username: str, password: str,
                display_name: str | None = None, grants: Iterable[tuple[str, int | None]] = ()) -> User:
    """A new user with ``grants`` ((role, agency id or None) pairs), each on a node the
    admin may manage."""
    wanted = list(grants)
    for _role, agency_id in wanted:
        access.check(session, principal, Permission.USERS_WRITE, agency_id)
    user = access.create_user(session, username, password, now, display_name)
    audit.record(session, actor, "user_created", now, target=f"user:{user.id}", username=user.username)
    for role, agency_id in wanted:
        access.grant_role(session, user.id, role, agency_id, now)
        audit.record(session, actor, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id, role=role)
    session.refresh(user)
    return user


def set_password(session: Session, principal: Principal, actor: Actor, now: datetime, user_id: int,
                 password: str) -> User:
    """A new password; the user's sessions end."""
    user = manageable_user(session, principal, user_id)
    access.set_password(session, user, password)
    audit.record(session, actor, "password_set", now, target=f"user:{user.id}")
    return user


def set_active(session: Session, principal: Principal, actor: Actor, now: datetime, user_id: int,
               active: bool) -> User:
    """(De)activate; deactivating ends the user's sessions and is refused for the last
    installation-wide admin. Setting the state the user is already in changes nothing."""
    user = manageable_user(session, principal, user_id)
    if active != user.active:
        if not active:
            access.ensure_not_last_admin(session, user.id)
        access.set_active(session, user, active)
        audit.record(session, actor, "user_activated" if active else "user_deactivated", now,
                     target=f"user:{user.id}")
    return user


def grant_role(session: Session, principal: Principal, actor: Actor, now: datetime, user_id: int, role: str,
               agency_id: int | None) -> User:
    """``role`` on ``agency_id`` (None: the whole installation), replacing the user's
    role on that node."""
    access.check(session, principal, Permission.USERS_WRITE, agency_id)
    user = manageable_user(session, principal, user_id)
    access.grant_role(session, user.id, role, agency_id, now)
    audit.record(session, actor, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id, role=role)
    session.refresh(user)
    return user


def revoke_role(session: Session, principal: Principal, actor: Actor, now: datetime, user_id: int,
                agency_id: int | None) -> User:
    access.check(session, principal, Permission.USERS_WRITE, agency_id)
    user = manageable_user(session, principal, user_id)
    if agency_id is None:
        access.ensure_not_last_admin(session, user.id)
    access.revoke_role(session, user.id, agency_id)
    audit.record(session, actor, "role_revoked", now, target=f"user:{user.id}", agency_id=agency_id)
    session.flush()
    session.refresh(user)
    return user


# --- tokens ----------------------------------------------------------------------------

def _token_inside(scope: set[int] | None, token: ApiToken) -> bool:
    return scope is None or (token.agency_id is not None and token.agency_id in scope)


def tokens(session: Session, principal: Principal) -> list[ApiToken]:
    """The tokens ``principal`` manages, oldest first."""
    scope = access.scope(session, principal, Permission.TOKENS_WRITE)
    return [t for t in access.list_tokens(session) if _token_inside(scope, t)]


def create_token(session: Session, principal: Principal, actor: Actor, now: datetime, name: str,
                 scopes: Iterable[str], agency_id: int | None, expires_at: datetime | None = None) -> IssuedToken:
    """A token on a node the admin manages; its whole value is in the answer, once."""
    access.check(session, principal, Permission.TOKENS_WRITE, agency_id)
    issued = access.create_token(session, name, scopes, agency_id, now, expires_at=expires_at,
                                 created_by=principal.id if principal.kind == "user" else None)
    audit.record(session, actor, "token_created", now, target=f"token:{issued.token.id}", agency_id=agency_id,
                 prefix=issued.token.prefix, scopes=issued.token.scopes)
    return issued


def revoke_token(session: Session, principal: Principal, actor: Actor, now: datetime, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id) if 1 <= token_id <= MAX_ID else None
    if token is None or not _token_inside(access.scope(session, principal, Permission.TOKENS_WRITE), token):
        raise NotFound(f"token {token_id} not found")
    access.revoke_token(session, token.id, now)
    audit.record(session, actor, "token_revoked", now, target=f"token:{token.id}", agency_id=token.agency_id,
                 prefix=token.prefix)
    return token
