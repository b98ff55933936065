"""Every route has an access rule, checked once, before the view runs.

A view is marked either ``@public`` (signed webhooks, health, static files, the sign-in
page) or ``@requires(permission, target=...)``. The guard (``before_request``) finds the
caller (an API token in ``Authorization: Bearer``, else the session cookie), answers 401
when there is none, 403 when the caller holds the permission nowhere, and 404 when the
campaign or agency the route names is outside the caller's part of the agency tree, so
ids cannot be probed. A route with no rule is refused (and the route-matrix test fails),
so a new route cannot be reachable by accident. Cookie-authenticated writes must carry a
CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request, session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..core.access import Permission, Principal
from ..services import access, alerts, campaigns, messaging_accounts, programmes, qr
from ..services.audit import Actor
from ..services.errors import NotFound
from .context import services

F = TypeVar("F", bound=Callable[..., Any])
csrf = CSRFProtect()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Rule:
    permission: Permission | None     # None: any signed-in caller
    target: str | None = None         # "campaign", "agency", "programme", "qr_poster", "messaging_account", "alert"
    public: bool = False


def public(view: F) -> F:
    view._access = Rule(None, public=True)  # type: ignore[attr-defined]
    return view


def requires(permission: Permission | None, target: str | None = None) -> Callable[[F], F]:
    """The caller must hold ``permission``; with ``target`` ("campaign", "agency",
    "programme"), on the agency of the campaign, agency or programme the route names
    (``campaign_id`` / ``agency_id`` / ``programme_id``)."""
    def mark(view: F) -> F:
        view._access = Rule(permission, target)  # type: ignore[attr-defined]
        return view
    return mark


# Endpoints we do not write ourselves: the OpenAPI document and its viewer need a
# signed-in caller (the spec holds no data, but nothing answers anonymously except the
# webhooks, health and static files); static files are public.
BUILT_IN_RULES = {
    "static": Rule(None, public=True),
    "survey.static": Rule(None, public=True),
    "console.static": Rule(None, public=True),
    "openapi.spec": Rule(None),
    "openapi.docs": Rule(None),
    "openapi.swagger_ui_oauth_redirect": Rule(None),
}


class Unauthorized(Exception):
    """No valid credentials: 401."""


class Forbidden(Exception):
    """Valid credentials without the permission: 403."""


def rule_for(app: Flask, endpoint: str | None) -> Rule | None:
    if endpoint is None:
        return None
    view = app.view_functions.get(endpoint)
    rule = getattr(view, "_access", None)
    if rule is None:
        rule = BUILT_IN_RULES.get(endpoint)
    return rule


def principal() -> Principal:
    """The caller of the current request (after the guard ran)."""
    found: Principal = g.principal
    return found


def actor() -> Actor:
    return Actor.of(principal(), request.remote_addr)


def _authenticate(conn: Connection) -> tuple[Principal | None, bool]:
    """The caller and whether it came from the session cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            return None, False
        return access.token_principal(conn, presented.strip(), services().clock()), False
    # Flask-Login keeps "<user id>:<session version>" (see web/auth.py SessionUser); read
    # here with the guard's other reads rather than through its loader's own session.
    user_id, _, version = str(session.get("_user_id", "")).partition(":")
    if user_id.isdigit() and version.isdigit():
        with services().db.session(conn) as db_session:
            return access.user_principal(db_session, int(user_id), int(version)), True
    return None, False


def _target_agency(db_session: Session, rule: Rule) -> int | None:
    args = request.view_args or {}
    if rule.target == "campaign":
        return campaigns.get_campaign(db_session, int(args["campaign_id"])).agency_id
    if rule.target == "agency":
        return campaigns.get_agency(db_session, int(args["agency_id"])).id
    if rule.target == "qr_poster":
        return qr.get_poster(db_session, int(args["qr_poster_id"])).agency_id
    if rule.target == "programme":
        return programmes.get_programme(db_session, int(args["programme_id"])).agency_id
    if rule.target == "alert":
        return alerts.get_alert(db_session, int(args["alert_id"])).agency_id
    if rule.target == "messaging_account":   # None: installation-wide
        return messaging_accounts.get_account(db_session, int(args["messaging_account_id"])).agency_id
    raise ValueError(f"unknown access target {rule.target!r}")


def guard() -> None:
    """Authenticate and authorise the request."""
    rule = rule_for(current_app, request.endpoint)
    if request.endpoint is None:
        return    # no such route: 404 or 405 follows
    if rule is not None and rule.public:
        return
    # Reads, and at most one write of one statement (a token's last use): no transaction
    # around them (on PostgreSQL that spares the BEGIN and COMMIT round trips).
    with services().db.autocommit() as conn:
        found, from_cookie = _authenticate(conn)
        if found is None:
            raise Unauthorized("sign in or send an API token (Authorization: Bearer sipas_…)")
        g.principal = found
        if rule is None:
            raise Forbidden(f"no access rule for {request.endpoint}")
        if rule.permission is not None and not found.holds(rule.permission):
            raise Forbidden(f"this needs the {rule.permission.value} permission")
        if rule.permission is not None and rule.target is not None:
            try:
                with services().db.session(conn) as db_session:
                    access.check(db_session, found, rule.permission, _target_agency(db_session, rule))
            except NotFound:
                # Out of scope answers as if absent, naming what the route named.
                name = rule.target
                raise NotFound(f"{name} {(request.view_args or {})[f'{name}_id']} not found") from None
    if from_cookie and request.method not in SAFE_METHODS:
        csrf.protect()
