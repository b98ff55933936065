"""The do-not-contact list: operators add a number a citizen asked not to be called at,
or take it off again. Every change is audited with the number masked."""

from __future__ import annotations

from typing import Any

from ...core.access import Permission, mask_phone
from ...services import audit, contacts
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import OptOutIn, OptOutOut


@bp.post("/opt-outs")
@bp.input(OptOutIn, arg_name="data")
@bp.output(OptOutOut, status_code=201)
@bp.doc(responses={400: "Not a phone number"})
@requires(Permission.OPTOUTS_WRITE)
def add_opt_out(data: dict[str, Any]) -> dict[str, Any]:
    """Stop every pending contact with this number, in every campaign, now and later."""
    svc = services()
    now = svc.clock()
    phone = contacts.phone_number(data["phone"])
    with svc.db.begin() as session:
        contacts.opt_out(session, phone, source="operator", now=now)
        audit.record(session, actor(), "opt_out_added", now, phone=mask_phone(phone))
    return {"phone": mask_phone(phone), "opted_out": True}


@bp.post("/opt-outs/remove")
@bp.input(OptOutIn, arg_name="data")
@bp.output(OptOutOut)
@bp.doc(responses={400: "Not a phone number", 404: "Not on the list"})
@requires(Permission.OPTOUTS_WRITE)
def remove_opt_out(data: dict[str, Any]) -> dict[str, Any]:
    """The citizen agreed to be surveyed again (a POST: the number stays out of URLs and logs)."""
    svc = services()
    now = svc.clock()
    phone = contacts.phone_number(data["phone"])
    with svc.db.begin() as session:
        contacts.remove_opt_out(session, phone)
        audit.record(session, actor(), "opt_out_removed", now, phone=mask_phone(phone))
    return {"phone": mask_phone(phone), "opted_out": False}
