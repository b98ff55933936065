"""Post-transaction programmes: managed with campaigns:write, read with campaigns:read.
A programme's reporting periods are campaigns; ``/periods`` sums them up."""

from __future__ import annotations

from typing import Any

from ...core.access import Permission
from ...persistence.models import Programme
from ...services import access, audit, messaging, programmes
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import CostsOut, PeriodOut, ProgrammeIn, ProgrammeOut, ProgrammePatchIn


def _default_host() -> str:
    settings = services().settings
    return settings.survey_base_url or settings.public_base_url


@bp.get("/programmes")
@bp.output(ProgrammeOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_programmes() -> list[Programme]:
    with services().db.begin() as session:
        return programmes.list_programmes(session, access.scope(session, principal(), Permission.CAMPAIGNS_READ))


@bp.post("/programmes")
@bp.input(ProgrammeIn, arg_name="data")
@bp.output(ProgrammeOut, status_code=201)
@bp.doc(summary="Create an agency's post-transaction programme", description=(
    "One active programme per agency (409 otherwise). Templates are unaccented unless accented is true, "
    "and refused when the message with its links needs more than max_segments SMS segments."),
    responses={400: "Invalid input", 404: "Agency not found", 409: "The agency has an active programme"})
@requires(Permission.CAMPAIGNS_WRITE)
def create_programme(data: dict[str, Any]) -> Programme:
    svc = services()
    now = svc.clock()
    data = dict(data)
    agency_id, name = data.pop("agency_id"), data.pop("name")
    with svc.db.begin() as session:
        access.check(session, principal(), Permission.CAMPAIGNS_WRITE, agency_id)
        programme = programmes.create_programme(session, svc.registry, agency_id=agency_id, name=name, now=now,
                                                default_host=_default_host(), **data)
        audit.record(session, actor(), "programme_created", now, target=f"programme:{programme.id}",
                     agency_id=agency_id, name=programme.name)
        return programme


@bp.get("/programmes/<int:programme_id>")
@bp.output(ProgrammeOut)
@requires(Permission.CAMPAIGNS_READ, "programme")
def get_programme(programme_id: int) -> Programme:
    with services().db.begin() as session:
        return programmes.get_programme(session, programme_id)


@bp.patch("/programmes/<int:programme_id>")
@bp.input(ProgrammePatchIn, arg_name="data")
@bp.output(ProgrammeOut)
@bp.doc(responses={400: "Invalid input", 409: "Deactivated, or period/timezone after a period began"})
@requires(Permission.CAMPAIGNS_WRITE, "programme")
def configure_programme(programme_id: int, data: dict[str, Any]) -> Programme:
    svc = services()
    now = svc.clock()
    data = dict(data)
    accented = data.pop("accented", False)
    with svc.db.begin() as session:
        programme = programmes.configure_programme(session, svc.registry, programme_id, data, now, accented)
        audit.record(session, actor(), "programme_configured", now, target=f"programme:{programme_id}",
                     agency_id=programme.agency_id, changed=sorted(data))
        return programme


@bp.post("/programmes/<int:programme_id>/deactivate")
@bp.output(ProgrammeOut)
@bp.doc(responses={409: "Already deactivated"})
@requires(Permission.CAMPAIGNS_WRITE, "programme")
def deactivate_programme(programme_id: int) -> Programme:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        programme = programmes.deactivate_programme(session, programme_id)
        audit.record(session, actor(), "programme_deactivated", now, target=f"programme:{programme_id}",
                     agency_id=programme.agency_id)
        return programme


@bp.get("/programmes/<int:programme_id>/periods")
@bp.output(PeriodOut(many=True))
@requires(Permission.CAMPAIGNS_READ, "programme")
def programme_periods(programme_id: int) -> list[dict[str, Any]]:
    svc = services()
    with svc.db.begin() as session:
        return programmes.period_summaries(session, svc.registry, programme_id, svc.clock())


@bp.get("/programmes/<int:programme_id>/costs")
@bp.output(CostsOut)
@bp.doc(summary="What a programme's messages cost", description=(
    "VND spent on messages the provider accepted (segments × the carrier's price per segment, recorded "
    "when sent), by reporting period, and the forecast for the rest of the current period at the current "
    "daily rate: spent / days elapsed × days left."))
@requires(Permission.CAMPAIGNS_READ, "programme")
def programme_costs(programme_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.begin() as session:
        return messaging.cost_summary(session, programme_id=programme_id, now=svc.clock())
