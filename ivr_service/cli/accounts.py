"""Users, role grants, API tokens and the audit log."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import click

from ..container import Services
from ..core.access import TOKEN_SCOPES, Grant, Role
from ..services import access, audit
from .base import (
    CLI_ACTOR,
    _agency_option,
    cli,
    pass_services,
)

# --- users, tokens, audit --------------------------------------------------------------------


@cli.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--agency", default=None, help="Agency id or code the role applies to (with its subtree); "
                                             "omit for the whole installation")
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt")
@pass_services
def create_user(svc: Services, username: str, role: str, agency: str | None, display_name: str | None,
                password_stdin: bool) -> None:
    """Create a user (on a fresh install: the first admin, with no --agency)."""
    agency_id = _agency_option(agency, svc)
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else str(click.prompt("password", hide_input=True, confirmation_prompt=True)))
    now = svc.clock()
    with svc.db.begin() as session:
        user = access.create_user(session, username, password, now, display_name,
                                  grants=[Grant(Role(role), agency_id)])
        audit.record(session, CLI_ACTOR, "user_created", now, target=f"user:{user.id}", username=user.username)
        audit.record(session, CLI_ACTOR, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id,
                     role=role)
    click.echo(f"user {user.id} {user.username}: {role} on {agency or 'the whole installation'}")


@cli.command("grant")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--agency", default=None, help="Agency id or code; omit for the whole installation")
@pass_services
def grant(svc: Services, username: str, role: str, agency: str | None) -> None:
    """Give a user a role on an agency node (replacing their role there)."""
    agency_id = _agency_option(agency, svc)
    now = svc.clock()
    with svc.db.begin() as session:
        user = _user_named(session, username)
        access.grant_role(session, user.id, role, agency_id, now)
        audit.record(session, CLI_ACTOR, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id,
                     role=role)
    click.echo(f"{username}: {role} on {agency or 'the whole installation'}")


def _user_named(session: Any, username: str) -> Any:
    user = access.find_user(session, username)
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    return user


@cli.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(sorted(TOKEN_SCOPES)),
              help="A permission the token holds; repeat for several")
@click.option("--agency", default=None, help="Agency id or code (with its subtree); omit for all agencies")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after N days")
@pass_services
def create_token(svc: Services, name: str, scopes: tuple[str, ...], agency: str | None,
                 expires_days: int | None) -> None:
    """Issue an API token for a system (a one-stop-shop, a script). Printed once."""
    agency_id = _agency_option(agency, svc)
    now = svc.clock()
    expires = now + timedelta(days=expires_days) if expires_days else None
    with svc.db.begin() as session:
        issued = access.create_token(session, name, scopes, agency_id, now, expires_at=expires)
        audit.record(session, CLI_ACTOR, "token_created", now, target=f"token:{issued.token.id}",
                     agency_id=agency_id, prefix=issued.token.prefix, scopes=issued.token.scopes)
    click.echo(f"token {issued.token.id} ({issued.token.prefix}); store it now, it is not shown again:")
    click.echo(issued.secret)


@cli.command("revoke-token")
@click.argument("token_id", type=int)
@pass_services
def revoke_token(svc: Services, token_id: int) -> None:
    now = svc.clock()
    with svc.db.begin() as session:
        token = access.revoke_token(session, token_id, now)
        audit.record(session, CLI_ACTOR, "token_revoked", now, target=f"token:{token.id}",
                     agency_id=token.agency_id, prefix=token.prefix)
    click.echo(f"token {token_id} revoked")


@cli.command("audit")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--action", default=None, help="Only this action, e.g. campaign_pause")
@pass_services
def audit_log(svc: Services, limit: int, action: str | None) -> None:
    """The audit log, newest first, one JSON object per line."""
    with svc.db.begin() as session:
        for entry in audit.entries(session, limit, action=action):
            click.echo(json.dumps({"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
                                   "action": entry.action, "target": entry.target, "agency_id": entry.agency_id,
                                   "address": entry.address, "detail": entry.detail}, ensure_ascii=False))
