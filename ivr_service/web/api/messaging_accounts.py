"""Messaging accounts (an agency's brandname gateway, Zalo OA …): managed with
agencies:write, read with campaigns:read, on the account's agency (installation-wide
accounts: an installation-wide grant to manage). Credentials are write-only."""

from __future__ import annotations

from typing import Any

from ...core.access import Permission
from ...persistence.models import MessagingAccount
from ...services import access, audit, messaging_accounts
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import MessagingAccountIn, MessagingAccountOut, MessagingAccountPatchIn


def _out(account: MessagingAccount) -> dict[str, Any]:
    return {"id": account.id, "agency_id": account.agency_id, "kind": account.kind, "name": account.name,
            "sender": account.sender, "base_url": account.base_url,
            "credentials_set": messaging_accounts.credential_keys(account), "prices": account.prices,
            "trusted_delivery": account.trusted_delivery, "active": account.active,
            "created_at": account.created_at, "updated_at": account.updated_at}


@bp.get("/messaging-accounts")
@bp.output(MessagingAccountOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_messaging_accounts() -> list[dict[str, Any]]:
    with services().db.begin() as session:
        within = access.scope(session, principal(), Permission.CAMPAIGNS_READ)
        return [_out(a) for a in messaging_accounts.list_accounts(session, within)]


@bp.post("/messaging-accounts")
@bp.input(MessagingAccountIn, arg_name="data")
@bp.output(MessagingAccountOut, status_code=201)
@bp.doc(summary="Add a messaging account", responses={400: "Invalid input", 404: "Agency not found"})
@requires(Permission.AGENCIES_WRITE)
def create_messaging_account(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        access.check(session, principal(), Permission.AGENCIES_WRITE, data.get("agency_id"))
        account = messaging_accounts.create_account(session, now=now, **data)
        audit.record(session, actor(), "messaging_account_created", now, target=f"messaging_account:{account.id}",
                     agency_id=account.agency_id, kind=account.kind, name=account.name)
        return _out(account)


@bp.get("/messaging-accounts/<int:messaging_account_id>")
@bp.output(MessagingAccountOut)
@requires(Permission.CAMPAIGNS_READ, "messaging_account")
def get_messaging_account(messaging_account_id: int) -> dict[str, Any]:
    with services().db.begin() as session:
        return _out(messaging_accounts.get_account(session, messaging_account_id))


@bp.patch("/messaging-accounts/<int:messaging_account_id>")
@bp.input(MessagingAccountPatchIn, arg_name="data")
@bp.output(MessagingAccountOut)
@bp.doc(responses={400: "Invalid input", 409: "Deactivated"})
@requires(Permission.AGENCIES_WRITE, "messaging_account")
def update_messaging_account(messaging_account_id: int, data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        account = messaging_accounts.update_account(session, messaging_account_id, data, now)
        # The names of the fields changed, never their values (credentials).
        audit.record(session, actor(), "messaging_account_updated", now,
                     target=f"messaging_account:{messaging_account_id}", agency_id=account.agency_id,
                     changed=sorted(data))
        return _out(account)


@bp.post("/messaging-accounts/<int:messaging_account_id>/deactivate")
@bp.output(MessagingAccountOut)
@bp.doc(responses={409: "Already deactivated"})
@requires(Permission.AGENCIES_WRITE, "messaging_account")
def deactivate_messaging_account(messaging_account_id: int) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        account = messaging_accounts.deactivate_account(session, messaging_account_id, now)
        audit.record(session, actor(), "messaging_account_deactivated", now,
                     target=f"messaging_account:{messaging_account_id}", agency_id=account.agency_id)
        return _out(account)
