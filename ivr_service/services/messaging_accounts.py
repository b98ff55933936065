"""Messaging accounts: an agency's own account with a messaging provider (its brandname,
its keys), or the installation's (``agency_id`` None); and the check of a programme's
routing.

Credentials are write-only: they are stored, used to build the account's adapter
(:func:`configs` → ``providers.Messengers``) and never returned — :func:`credential_keys`
says which are set — nor logged or audited. ``callback_secret`` is drawn at creation; it
goes into the callback URL of providers whose delivery callbacks are unsigned (eSMS).
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import delivery
from ..core.names import check_name
from ..persistence.models import MessagingAccount
from ..providers.messaging import AccountConfig
from ..settings import LOOPBACK
from .campaigns import MAX_ID, get_agency
from .errors import Conflict, InvalidInput, NotFound, invalid

KINDS = ("twilio", "esms", "zns", "simulator")
BRANDNAME_KINDS = frozenset({"esms"})
# The credential keys each kind needs (others are refused, so a typo is not silently kept).
CREDENTIALS: dict[str, tuple[str, ...]] = {
    "esms": ("api_key", "secret_key"),
    "twilio": ("account_sid", "auth_token"),
    "zns": ("template_id",),
    "simulator": (),
}
# Keys a kind may have: a ZNS account's own Zalo app (else SIPAS_ZALO_APP_ID and
# SIPAS_ZALO_APP_SECRET) and the OA's first refresh token (services.zns_tokens).
OPTIONAL_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "zns": ("app_id", "secret_key", "refresh_token"),
}
FIELDS = ("name", "kind", "sender", "base_url", "credentials", "prices", "trusted_delivery")
_BRANDNAME = re.compile(r"^[A-Za-z0-9 .\-]{1,11}$")
_CARRIER = re.compile(r"^(\*|[a-z0-9_-]{1,30})$")
MAX_PRICE = 100_000


def _kind(value: Any) -> str:
    if value not in KINDS:
        raise invalid("kind", f"expected one of {', '.join(KINDS)}, got {value!r}")
    return str(value)


def _sender(kind: str, value: Any) -> str | None:
    if value is None:
        if kind in BRANDNAME_KINDS:
            raise invalid("sender", "required: the brandname registered with the carriers (at most 11 characters)")
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid("sender", f"expected text, got {value!r}")
    value = value.strip()
    if kind in BRANDNAME_KINDS and not _BRANDNAME.fullmatch(value):
        raise invalid("sender", f"a brandname is 1 to 11 letters, digits, spaces, dots or hyphens, got {value!r}")
    if len(value) > 40:
        raise invalid("sender", f"at most 40 characters, got {len(value)}")
    return value


def _base_url(value: Any) -> str | None:
    """None (the kind's setting) or an https URL (http only on this machine, for stand-ins)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid("base_url", f"expected an https URL, got {value!r}")
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise invalid("base_url", f"expected an https URL such as https://rest.esms.vn, got {value!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise invalid("base_url", f"must use https (http only for {', '.join(LOOPBACK)})")
    if len(value) > 200:
        raise invalid("base_url", f"at most 200 characters, got {len(value)}")
    return value


def _credentials(kind: str, value: Any) -> dict[str, str]:
    needed, optional = CREDENTIALS[kind], OPTIONAL_CREDENTIALS.get(kind, ())
    known = needed + optional
    if not isinstance(value, dict):
        raise invalid("credentials", f"expected an object with {', '.join(known) or 'no keys'}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise invalid("credentials", f"unknown key(s) {', '.join(map(str, unknown))} for kind {kind}; "
                                     f"expected {', '.join(known) or 'none'}")
    for key in (*needed, *(k for k in optional if k in value)):
        # Never echo the value: it is a secret.
        if not isinstance(value.get(key), str) or not value[key].strip() or len(value[key]) > 500:
            raise invalid("credentials", f"{key} is required for kind {kind} (text of 1 to 500 characters)")
    if kind == "zns" and ("app_id" in value) != ("secret_key" in value):
        raise invalid("credentials", "app_id and secret_key go together (neither: the installation's Zalo app)")
    return {key: value[key].strip() for key in known if key in value}


def _prices(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("prices", f'expected an object of carrier → VND per segment such as {{"*": 300}}, got {value!r}')
    result: dict[str, float] = {}
    for carrier, price in value.items():
        if not isinstance(carrier, str) or not _CARRIER.fullmatch(carrier):
            raise invalid("prices", f'carrier names are "*" or lower-case letters, digits, - and _; got {carrier!r}')
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) \
                or not 0 <= price <= MAX_PRICE:
            raise invalid("prices", f"{carrier}: expected a number from 0 to {MAX_PRICE}, got {price!r}")
        result[carrier] = price
    return result


def _trusted(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid("trusted_delivery", f"expected true or false, got {value!r}")
    return value


def _agency(session: Session, agency_id: Any) -> int | None:
    if agency_id is None:
        return None
    if isinstance(agency_id, bool) or not isinstance(agency_id, int) or not 1 <= agency_id <= MAX_ID:
        raise invalid("agency_id", f"expected a whole number from 1 to {MAX_ID} or null, got {agency_id!r}")
    return get_agency(session, agency_id).id


def create_account(session: Session, *, agency_id: int | None, name: str, kind: str, now: datetime,
                   credentials: dict[str, Any], sender: str | None = None, base_url: str | None = None,
                   prices: dict[str, Any] | None = None, trusted_delivery: bool | None = None) -> MessagingAccount:
    """A new active account. ``trusted_delivery`` left out takes the kind's default
    (``core.delivery.TRUSTED_DELIVERY``: Twilio's Vietnamese reports are not believed)."""
    kind = _kind(kind)
    if trusted_delivery is None:
        trusted_delivery = delivery.TRUSTED_DELIVERY[kind]
    try:
        name = check_name(name, 200)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None
    account = MessagingAccount(
        agency_id=_agency(session, agency_id), kind=kind, name=name, sender=_sender(kind, sender),
        base_url=_base_url(base_url), credentials=_credentials(kind, credentials), prices=_prices(prices),
        trusted_delivery=_trusted(trusted_delivery), callback_secret=secrets.token_hex(24), active=True,
        created_at=now, updated_at=now)
    session.add(account)
    session.flush()
    return account


def get_account(session: Session, account_id: int, lock: bool = False) -> MessagingAccount:
    found = session.get(MessagingAccount, account_id, with_for_update=lock) if 1 <= account_id <= MAX_ID else None
    if found is None:
        raise NotFound(f"messaging account {account_id} not found")
    return found


def list_accounts(session: Session, within: set[int] | None = None) -> list[MessagingAccount]:
    """Every account, or those of the agencies in ``within`` and the installation's."""
    query = select(MessagingAccount).order_by(MessagingAccount.id)
    if within is not None:
        query = query.where(MessagingAccount.agency_id.in_(within) | MessagingAccount.agency_id.is_(None))
    return list(session.scalars(query))


def update_account(session: Session, account_id: int, changes: dict[str, Any], now: datetime) -> MessagingAccount:
    """Change an account's settings; ``credentials`` replace the stored ones whole. Kind
    and agency are fixed (create another account). Returns the account."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}", field=unknown[0])
    account = get_account(session, account_id, lock=True)
    if not account.active:
        raise Conflict(f"messaging account {account_id} is deactivated; create a new one")
    if "kind" in changes and changes["kind"] != account.kind:
        raise invalid("kind", "cannot change; create another account")
    if "name" in changes:
        try:
            account.name = check_name(changes["name"], 200)
        except ValueError as exc:
            raise invalid("name", str(exc)) from None
    if "sender" in changes:
        account.sender = _sender(account.kind, changes["sender"])
    if "base_url" in changes:
        account.base_url = _base_url(changes["base_url"])
    if "credentials" in changes:
        account.credentials = _credentials(account.kind, changes["credentials"])
    if "prices" in changes:
        account.prices = _prices(changes["prices"])
    if "trusted_delivery" in changes:
        account.trusted_delivery = _trusted(changes["trusted_delivery"])
    account.updated_at = now
    return account


def deactivate_account(session: Session, account_id: int, now: datetime) -> MessagingAccount:
    """No more messages through it (a programme routed to it gets a configuration error
    until its routing changes); its delivery callbacks still count."""
    account = get_account(session, account_id, lock=True)
    if not account.active:
        raise Conflict(f"messaging account {account_id} is already deactivated")
    account.active = False
    account.updated_at = now
    return account


def credential_keys(account: MessagingAccount) -> list[str]:
    """Which credentials are set (never their values)."""
    return sorted(key for key, value in (account.credentials or {}).items() if value)


def configs(session: Session) -> list[AccountConfig]:
    """The active accounts, as the adapters need them."""
    return [AccountConfig(a.id, a.kind, a.sender, a.base_url, a.callback_secret, a.updated_at,
                          dict(a.credentials or {}))
            for a in session.scalars(select(MessagingAccount).where(MessagingAccount.active.is_(True))
                                     .order_by(MessagingAccount.id))]


def check_callback(session: Session, account_id: int, presented: str) -> bool:
    """Is ``presented`` the callback secret of messaging account ``account_id``? Compared
    in constant time; an unknown account compares against a dummy, so timing says nothing."""
    account = session.get(MessagingAccount, account_id) if 1 <= account_id <= MAX_ID else None
    expected = account.callback_secret if account is not None else secrets.token_hex(24)
    return hmac.compare_digest(expected.encode(), presented.encode()) and account is not None


def check_routing(session: Session, agency_id: int, routing: Any) -> list[int] | None:
    """A programme's routing: None, or distinct ids of active accounts of the programme's
    agency or the installation's, in the order tried."""
    if routing is None:
        return None
    if not isinstance(routing, list) or not routing or any(
            isinstance(i, bool) or not isinstance(i, int) for i in routing):
        raise invalid("routing", f"expected a non-empty list of messaging account ids or null, got {routing!r}")
    if len(set(routing)) != len(routing):
        raise invalid("routing", f"an account is listed twice: {routing!r}")
    for account_id in routing:
        account = session.get(MessagingAccount, account_id) if 1 <= account_id <= MAX_ID else None
        if account is None or account.agency_id not in (None, agency_id):
            raise invalid("routing", f"messaging account {account_id} not found for agency {agency_id}")
        if not account.active:
            raise invalid("routing", f"messaging account {account_id} is deactivated")
    return list(routing)
