"""Citizens' requests about their personal data (PDPL 91/2025/QH15): what the service holds
about a number, and erasing it. Installation-wide admins only; the number travels in the
body of a POST, never in a URL, and the audit log keeps it masked and hashed
(``services/retention.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from apiflask import abort

from ...core.access import Permission, mask_phone
from ...services import retention
from ...services.contacts import phone_number
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import CitizenRequestIn, ErasedOut, HoldingsOut


def _installation_wide() -> None:
    if None not in principal().nodes(Permission.CITIZENS):
        abort(403, "a citizen's request covers every agency: it needs an installation-wide admin")


@bp.post("/citizens/show")
@bp.input(CitizenRequestIn, arg_name="data")
@bp.output(HoldingsOut)
@bp.doc(responses={400: "Not a phone number, or no reason"})
@requires(Permission.CITIZENS)
def show_citizen(data: dict[str, Any]) -> dict[str, Any]:
    """What is held about this number: its contacts in each campaign (plain or hashed),
    whether it is on the do-not-contact list, its transactions and messages."""
    _installation_wide()
    svc = services()
    with svc.db.begin() as session:
        held = retention.holdings(session, actor(), data["phone"], data["reason"], svc.clock(),
                                  svc.settings.phone_hash_key)
    return asdict(held)


@bp.post("/citizens/erase")
@bp.input(CitizenRequestIn, arg_name="data")
@bp.output(ErasedOut)
@bp.doc(responses={400: "Not a phone number, or no reason", 409: "SIPAS_PHONE_HASH_KEY is not set"})
@requires(Permission.CITIZENS)
def erase_citizen(data: dict[str, Any]) -> dict[str, Any]:
    """Erase this number's personal data everywhere (names, codes, numbers kept only as
    hashes); a refusal stays honoured; answers stay under their pseudonym."""
    _installation_wide()
    svc = services()
    with svc.db.begin() as session:
        counts = retention.erase(session, actor(), data["phone"], data["reason"], svc.clock(),
                                 svc.settings.phone_hash_key)
    result = asdict(counts)
    result.pop("campaigns")
    return {"phone": mask_phone(phone_number(data["phone"])), **result}
