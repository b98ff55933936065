"""What the console's forms share: a service error shown beside the field it names, in the
operator's language, and the choices of agency nodes within an admin's part of the tree.

Services raise English messages that name the field (``services/errors.py``); the console
maps each field it has a form for to a sentence in the catalog once, here, and falls back
to the service's own message for anything else (still naming the field)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from ...core.access import Role
from ...services.errors import Conflict, NotFound, ServiceError, invalid
from ...services.overview import AgencyNode
from ..context import services
from ..errors import status_of

WHOLE_INSTALLATION = "all"    # the agency choice meaning "every agency" (a grant or token with no node)

ROLE_LABELS = {Role.ADMIN.value: _l("Admin"), Role.MANAGER.value: _l("Manager"),
               Role.OPERATOR.value: _l("Operator"), Role.VIEWER.value: _l("Viewer")}

_INVALID: dict[str, Any] = {
    "phone": _l("Not a Vietnamese phone number: type it as 0912 345 678 or +84 912 345 678."),
    "reason": _l("Say who asked to be surveyed again, and how (for example, a call to the hotline)."),
    "username": _l("2 to 60 characters: lower-case letters a–z, digits, “.”, “_” or “-”, "
                   "starting with a letter or a digit."),
    "password": _l("10 to 1,000 characters."),
    "role": _l("Choose a role."),
    "agency_id": _l("Choose an agency."),
    "name": _l("A name of 1 to 200 characters."),
    "scopes": _l("Choose at least one permission."),
    "expires_at": _l("A date after today, or nothing for a token that does not expire."),
    "active": _l("Choose to deactivate or to reactivate."),
}


def field_errors(exc: ServiceError) -> dict[str, Any]:
    """``{field: message}`` for the form that caused ``exc`` (``"_"``: not one field's fault)."""
    if isinstance(exc, Conflict) and exc.field == "username":
        return {"username": _l("This username is already taken.")}
    if isinstance(exc, Conflict) and "last installation-wide admin" in exc.message:
        return {"_": _l("This is the last installation-wide admin: grant the role to someone else first.")}
    if isinstance(exc, NotFound):
        if exc.message.startswith("phone:"):
            return {"phone": _l("This number is not on the do-not-contact list.")}
        if exc.message.startswith(("agency", "not found")):       # a node outside the admin's part of the tree
            return {"agency_id": _l("Not an agency you manage.")}
        if " has no role on " in exc.message:
            return {"agency_id": _l("The user has no role there.")}
    if exc.field == "reason" and "at most" in exc.message:
        return {"reason": _l("At most 500 characters.")}
    if exc.field in _INVALID and not isinstance(exc, Conflict | NotFound):
        return {exc.field: _INVALID[exc.field]}
    return {exc.field or "_": exc.message}


def failed(exc: ServiceError) -> tuple[dict[str, Any], int]:
    """The errors to show and the status to answer with (as the API would: 400, 404, 409)."""
    return field_errors(exc), status_of(exc)


def agency_value(raw: str | None) -> int | None:
    """A submitted agency choice: an agency id, or ``all`` for the whole installation."""
    value = (raw or "").strip()
    if value == WHOLE_INSTALLATION:
        return None
    if value.isdigit() and 1 <= int(value) <= 2**31 - 1:
        return int(value)
    raise invalid("agency_id", f"expected an agency id or {WHOLE_INSTALLATION!r}")


def agency_choices(tree: list[AgencyNode], whole: bool) -> list[tuple[str, str]]:
    """(value, label) for a select: the nodes indented by depth; the whole installation
    first when the admin's part of the tree is all of it."""
    choices = [(WHOLE_INSTALLATION, str(_l("Whole installation")))] if whole else []
    return choices + [(str(node.id), "\u00a0\u00a0" * node.depth + node.name) for node in tree]


def zone() -> ZoneInfo:
    return ZoneInfo(services().settings.timezone)


def local_date(raw: str | None, field: str) -> date | None:
    """A date from an ``<input type="date">`` (``YYYY-MM-DD``); None when empty."""
    value = (raw or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field, f"expected a date as YYYY-MM-DD, got {value[:20]!r}") from None


def start_of(day: date) -> datetime:
    """The installation's local midnight starting ``day``, as an aware time."""
    return datetime.combine(day, time(), zone()).astimezone(UTC)


def end_of(day: date) -> datetime:
    """The local midnight ending ``day``."""
    return start_of(day + timedelta(days=1))
