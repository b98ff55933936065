"""Accounts, role grants, API tokens, and who a request is: the stored side of
``core/access.py``.

Passwords are argon2id hashes (argon2-cffi's defaults, rehashed at login when they
change). An API token is ``sipas_<prefix>_<secret>``: the prefix is stored in clear so a
token can be found and shown ("sipas_3kq9x2ab…"), the secret only as its SHA-256 (it is
256 random bits, so a slow hash would add nothing but latency to every API call).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session, selectinload

from ..core.access import TOKEN_SCOPES, Grant, Permission, Principal, Role, allowed, visible
from ..persistence.models import Agency, ApiToken, RoleGrant, User
from .campaigns import MAX_ID
from .errors import Conflict, NotFound, invalid

HASHER = PasswordHasher()     # argon2id, the library's current recommended parameters
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,59}$")
MIN_PASSWORD = 10
TOKEN = re.compile(r"^sipas_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
# Writing last_used_at on every request would make every API read a write; once a minute
# is enough to see which tokens are in use.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A hash to verify against when the username is unknown, so the answer takes as long as
# for a wrong password and does not reveal which usernames exist.
_DUMMY_HASH = HASHER.hash("not a password of anyone")


def agency_parents(session: Session) -> dict[int, int | None]:
    """The agency tree as child → parent (small: one row per agency)."""
    return {agency_id: parent for agency_id, parent in session.execute(select(Agency.id, Agency.parent_id))}


# --- users -----------------------------------------------------------------------------

def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise invalid("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > 1000:
        raise invalid("password", "at most 1000 characters")


def create_user(session: Session, username: str, password: str, now: datetime, display_name: str | None = None,
                grants: Iterable[Grant] = ()) -> User:
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise invalid("username", "2 to 60 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username: {username!r} is already used", field="username")
    user = User(username=username, display_name=(display_name or username).strip()[:200],
                password_hash=HASHER.hash(password), created_at=now)
    session.add(user)
    session.flush()
    for grant in grants:
        grant_role(session, user.id, grant.role, grant.agency_id, now)
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).options(selectinload(User.grants)).order_by(User.id)))


def set_password(session: Session, user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = HASHER.hash(password)
    user.session_version += 1     # every session signed in with the old password ends


def set_active(session: Session, user: User, active: bool) -> None:
    user.active = active
    user.session_version += 1


def authenticate(session: Session, username: str, password: str, now: datetime) -> User | None:
    """The active user with this username and password, or None. Rehashes the password
    when the hashing parameters changed since it was stored."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    try:
        HASHER.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    user.last_login_at = now
    return user


def grant_role(session: Session, user_id: int, role: str, agency_id: int | None, now: datetime) -> RoleGrant:
    """Give ``role`` on ``agency_id`` (None: the whole installation); replaces the user's
    earlier role on that node."""
    try:
        parsed = Role(role)
    except ValueError:
        raise invalid("role", f"expected one of {', '.join(r.value for r in Role)}, got {role!r}") from None
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise NotFound(f"agency {agency_id} not found")
    get_user(session, user_id)
    existing = session.scalar(select(RoleGrant).where(RoleGrant.user_id == user_id,
                                                      RoleGrant.agency_id.is_(None) if agency_id is None
                                                      else RoleGrant.agency_id == agency_id))
    if existing is not None:
        existing.role = parsed.value
        return existing
    grant = RoleGrant(user_id=user_id, agency_id=agency_id, role=parsed.value, created_at=now)
    session.add(grant)
    session.flush()
    return grant


def revoke_role(session: Session, user_id: int, agency_id: int | None) -> None:
    grant = session.scalar(select(RoleGrant).where(RoleGrant.user_id == user_id,
                                                   RoleGrant.agency_id.is_(None) if agency_id is None
                                                   else RoleGrant.agency_id == agency_id))
    if grant is None:
        raise NotFound(f"user {user_id} has no role on {'the installation' if agency_id is None else agency_id}")
    session.delete(grant)


def user_principal(session: Session, user_id: int, session_version: int | None = None) -> Principal | None:
    """The principal of an active user (and, for a cookie session, the session still
    current: signed in after the last password change)."""
    user = session.get(User, user_id, options=[selectinload(User.grants)])
    if user is None or not user.active or (session_version is not None and session_version != user.session_version):
        return None
    return Principal.user(user.id, user.username, [Grant(Role(g.role), g.agency_id) for g in user.grants])


# --- tokens ----------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str          # the whole token, shown once


def create_token(session: Session, name: str, scopes: Iterable[str], agency_id: int | None, now: datetime,
                 expires_at: datetime | None = None, created_by: int | None = None) -> IssuedToken:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise invalid("name", "1 to 200 characters")
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in TOKEN_SCOPES]
    if unknown or not wanted:
        raise invalid("scopes", f"expected some of {', '.join(sorted(TOKEN_SCOPES))}; "
                                f"got {', '.join(wanted) or 'none'}")
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise NotFound(f"agency {agency_id} not found")
    if expires_at is not None and expires_at <= now:
        raise invalid("expires_at", "must be in the future")
    prefix = secrets.token_hex(4)
    while session.scalar(select(ApiToken.id).where(ApiToken.prefix == prefix)) is not None:
        prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = ApiToken(prefix=prefix, secret_hash=_digest(secret), name=name, scopes=wanted, agency_id=agency_id,
                     created_by=created_by, created_at=now, expires_at=expires_at)
    session.add(token)
    session.flush()
    return IssuedToken(token, f"sipas_{prefix}_{secret}")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Built once: every API request reads its token (Core, not an ORM object: no identity map
# work for a row that is only checked).
_TOKEN = select(ApiToken.id, ApiToken.secret_hash, ApiToken.name, ApiToken.scopes, ApiToken.agency_id,
                ApiToken.expires_at, ApiToken.last_used_at, ApiToken.revoked_at).where(
    ApiToken.prefix == bindparam("prefix"))
_TOKEN_USED = update(ApiToken).where(ApiToken.id == bindparam("token_id")).values(last_used_at=bindparam("now"))


def token_principal(conn: Connection, presented: str, now: datetime) -> Principal | None:
    """The principal of a valid, unexpired, unrevoked token, or None."""
    match = TOKEN.fullmatch(presented)
    if match is None:
        return None
    token = conn.execute(_TOKEN, {"prefix": match.group(1)}).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(match.group(2))):
        return None
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        conn.execute(_TOKEN_USED, {"token_id": token.id, "now": now})
    return Principal.token(token.id, token.name, token.scopes, token.agency_id)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id) if 1 <= token_id <= MAX_ID else None
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


# --- decisions that need the tree --------------------------------------------------------

def check(session: Session, principal: Principal, permission: Permission, agency_id: int | None) -> None:
    """Raise NotFound unless ``principal`` may use ``permission`` on ``agency_id``: out of
    scope looks exactly like absent, so ids cannot be probed."""
    if not allowed(principal, permission, agency_id, agency_parents(session)):
        raise NotFound("not found" if agency_id is None else f"agency {agency_id} not found")


def scope(session: Session, principal: Principal, permission: Permission) -> set[int] | None:
    """The agencies ``principal`` may use ``permission`` on (None: all)."""
    return visible(principal, permission, agency_parents(session))


def ensure_not_last_admin(session: Session, user_id: int) -> None:
    """Refuse to remove the last installation-wide admin (nobody could manage users)."""
    admins = set(session.scalars(select(RoleGrant.user_id).join(User).where(
        RoleGrant.agency_id.is_(None), RoleGrant.role == Role.ADMIN.value, User.active.is_(True))))
    if admins == {user_id}:
        raise Conflict("this is the last installation-wide admin; grant the role to someone else first")

