"""The do-not-contact list: operators add a number a citizen asked not to be called at,
or take it off again when the citizen asks to be surveyed again (with the reason). Every
change is audited with the number masked (``services/opt_outs.py``)."""

from __future__ import annotations

from typing import Any

from ...core.access import Permission, mask_phone
from ...services import opt_outs
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import OptOutIn, OptOutOut, OptOutRemoveIn


@bp.post("/opt-outs")
@bp.input(OptOutIn, arg_name="data")
@bp.output(OptOutOut, status_code=201)
@bp.doc(responses={400: "Not a phone number"})
@requires(Permission.OPTOUTS_WRITE)
def add_opt_out(data: dict[str, Any]) -> dict[str, Any]:
    """Stop every pending contact with this number, in every campaign, now and later."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        phone = opt_outs.add(session, actor(), data["phone"], now)
    return {"phone": mask_phone(phone), "opted_out": True}


@bp.post("/opt-outs/remove")
@bp.input(OptOutRemoveIn, arg_name="data")
@bp.output(OptOutOut)
@bp.doc(responses={400: "Not a phone number, or no reason", 404: "Not on the list"})
@requires(Permission.OPTOUTS_WRITE)
def remove_opt_out(data: dict[str, Any]) -> dict[str, Any]:
    """The citizen asked to be surveyed again (a POST: the number stays out of URLs and
    logs). The reason is kept in the audit log with when and how the number was added."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        phone = opt_outs.remove(session, actor(), data["phone"], data["reason"], now)
    return {"phone": mask_phone(phone), "opted_out": False}
