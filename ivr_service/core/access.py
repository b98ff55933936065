"""Who may do what, where: roles, permissions and the agency-tree rule, as pure functions.

A person holds *grants*: a role on an agency node (or on the whole installation), inherited
by every agency below that node. A system holds an API token: a set of permissions (its
scopes) on one agency node and its subtree. Both come down to the same question, asked by
one decorator at the web edge and by the CLI: may this principal use this permission on
this agency? And for lists: which agencies may it see with that permission?

Permissions double as token scopes, so there is one vocabulary for people and systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    AGENCIES_READ = "agencies:read"          # see agencies and the tree
    AGENCIES_WRITE = "agencies:write"        # create and change agencies below one's node
    USERS_WRITE = "users:write"              # create users, grant and revoke roles
    TOKENS_WRITE = "tokens:write"            # create and revoke API tokens
    AUDIT_READ = "audit:read"                # read the audit log
    CAMPAIGNS_READ = "campaigns:read"        # campaigns, progress and scores
    CAMPAIGNS_WRITE = "campaigns:write"      # create, configure, start and cancel campaigns
    CAMPAIGNS_STEER = "campaigns:steer"      # pause and resume
    FRAMES_WRITE = "frames:write"            # import and preview frames, release reserves, sampling reports
    EXPORTS_WRITE = "exports:write"          # write and download exports
    OPTOUTS_WRITE = "optouts:write"          # add and remove do-not-contact numbers
    CONTACTS_READ = "contacts:read"          # see citizens' phone numbers unmasked
    TRANSACTIONS_WRITE = "transactions:write"  # report returned dossiers (the one-stop-shop feed)
    CITIZENS = "citizens:requests"           # what is held about a number, and erase it (admins only)
    METRICS_READ = "metrics:read"            # scrape /metrics (installation-wide totals: no agency node)


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OPERATOR = "operator"
    VIEWER = "viewer"


_VIEWER = frozenset({Permission.AGENCIES_READ, Permission.CAMPAIGNS_READ})
_OPERATOR = _VIEWER | {Permission.CAMPAIGNS_STEER, Permission.OPTOUTS_WRITE, Permission.CONTACTS_READ,
                       Permission.TRANSACTIONS_WRITE}
_MANAGER = _OPERATOR | {Permission.CAMPAIGNS_WRITE, Permission.FRAMES_WRITE, Permission.EXPORTS_WRITE}

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(Permission),
}

# Scopes a token may carry: everything a system needs, never user or token management
# (a leaked token must not be able to mint others or create accounts).
# Nor a citizen's erasure, which only an installation-wide admin asks for.
TOKEN_SCOPES = frozenset(Permission) - {Permission.USERS_WRITE, Permission.TOKENS_WRITE, Permission.CITIZENS}


@dataclass(frozen=True)
class Grant:
    """``role`` on ``agency_id`` and its subtree; ``agency_id`` None is the whole installation."""

    role: Role
    agency_id: int | None


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user (``kind="user"``) or an API token (``kind="token"``).

    ``grants`` are (permissions, node) pairs: a user's roles expanded to permissions, or a
    token's scopes on its agency node.
    """

    kind: str
    id: int
    name: str
    grants: tuple[tuple[frozenset[Permission], int | None], ...] = field(default=())

    @classmethod
    def user(cls, user_id: int, name: str, grants: Iterable[Grant]) -> Principal:
        return cls("user", user_id, name, tuple((ROLE_PERMISSIONS[g.role], g.agency_id) for g in grants))

    @classmethod
    def token(cls, token_id: int, name: str, scopes: Iterable[str], agency_id: int | None) -> Principal:
        return cls("token", token_id, name, ((frozenset(Permission(s) for s in scopes), agency_id),))

    def nodes(self, permission: Permission) -> set[int | None]:
        """The nodes where this principal holds ``permission`` (None: everywhere)."""
        return {node for permissions, node in self.grants if permission in permissions}

    def holds(self, permission: Permission) -> bool:
        """Whether the principal holds ``permission`` anywhere at all."""
        return bool(self.nodes(permission))


def ancestors(agency_id: int, parents: Mapping[int, int | None]) -> list[int]:
    """``agency_id`` and the agencies above it, nearest first. A cycle (which the service
    never stores) ends the walk instead of looping."""
    path, seen = [], set()
    current: int | None = agency_id
    while current is not None and current not in seen:
        path.append(current)
        seen.add(current)
        current = parents.get(current)
    return path


def allowed(principal: Principal, permission: Permission, agency_id: int | None,
            parents: Mapping[int, int | None]) -> bool:
    """May ``principal`` use ``permission`` on ``agency_id``? A grant on a node covers its
    whole subtree; ``agency_id`` None (installation-wide things such as a root agency or the
    audit log) needs an installation-wide grant."""
    nodes = principal.nodes(permission)
    if None in nodes:
        return True
    if agency_id is None:
        return False
    return any(node in nodes for node in ancestors(agency_id, parents))


def visible(principal: Principal, permission: Permission, parents: Mapping[int, int | None]) -> set[int] | None:
    """The agencies ``principal`` may use ``permission`` on: None means all of them."""
    nodes = principal.nodes(permission)
    if None in nodes:
        return None
    return {agency for agency in parents if any(node in nodes for node in ancestors(agency, parents))}


def mask_phone(phone_e164: str) -> str:
    """A phone number for someone who may not see it: country code and last three digits."""
    if len(phone_e164) <= 6:
        return "*" * len(phone_e164)
    return phone_e164[:3] + "*" * (len(phone_e164) - 6) + phone_e164[-3:]
