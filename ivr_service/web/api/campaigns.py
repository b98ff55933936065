"""Agencies and campaigns: create, configure, change state, watch progress."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...core.access import Permission
from ...persistence.models import Agency, Campaign
from ...services import access, audit, call_costs, campaigns
from ...services.call_costs import Costing
from .. import steering
from ..access import actor, principal, requires
from ..context import services
from .blueprint import bp
from .schemas import (
    ActionIn,
    AgencyIn,
    AgencyOut,
    AgencyPatchIn,
    CampaignIn,
    CampaignOut,
    CampaignPatchIn,
    ProgressOut,
    ProgressQuery,
)


@bp.get("/agencies")
@bp.output(AgencyOut(many=True))
@requires(Permission.AGENCIES_READ)
def list_agencies() -> list[Agency]:
    with services().db.begin() as session:
        return campaigns.list_agencies(session, access.scope(session, principal(), Permission.AGENCIES_READ))


@bp.post("/agencies")
@bp.input(AgencyIn, arg_name="data")
@bp.output(AgencyOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 409: "The code is already used"})
@requires(Permission.AGENCIES_WRITE)
def create_agency(data: dict[str, Any]) -> Agency:
    """A root agency needs an installation-wide admin; one below needs an admin of its parent."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        access.check(session, principal(), Permission.AGENCIES_WRITE, data["parent_id"])
        agency = campaigns.create_agency(session, data["code"], data["name"], now,
                                         sample_rule=data["sample_rule"], parent_id=data["parent_id"],
                                         retention_days=data["retention_days"])
        audit.record(session, actor(), "agency_created", now, target=f"agency:{agency.id}", agency_id=agency.id,
                     code=agency.code, parent_id=agency.parent_id)
        return agency


@bp.patch("/agencies/<int:agency_id>")
@bp.input(AgencyPatchIn, arg_name="data")
@bp.output(AgencyOut)
@bp.doc(summary="Change an agency's retention", responses={400: "Invalid input", 404: "Agency not found"})
@requires(Permission.AGENCIES_WRITE, "agency")
def change_agency(agency_id: int, data: dict[str, Any]) -> Agency:
    """How long its closed campaigns keep personal data (null: the installation's setting)."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        before = campaigns.get_agency(session, agency_id).retention_days
        agency = campaigns.set_retention(session, agency_id, data["retention_days"])
        audit.record(session, actor(), "agency_retention_changed", now, target=f"agency:{agency.id}",
                     agency_id=agency.id, before=before, after=agency.retention_days)
        return agency


@bp.get("/campaigns")
@bp.output(CampaignOut(many=True))
@requires(Permission.CAMPAIGNS_READ)
def list_campaigns() -> list[Campaign]:
    with services().db.begin() as session:
        return campaigns.list_campaigns(session, access.scope(session, principal(), Permission.CAMPAIGNS_READ))


@bp.post("/campaigns")
@bp.input(CampaignIn, arg_name="data")
@bp.output(CampaignOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 404: "Agency not found"})
@requires(Permission.CAMPAIGNS_WRITE)
def create_campaign(data: dict[str, Any]) -> Campaign:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        access.check(session, principal(), Permission.CAMPAIGNS_WRITE, data["agency_id"])
        campaign = campaigns.create_campaign(session, svc.registry, now=now, **data)
        audit.record(session, actor(), "campaign_created", now, target=f"campaign:{campaign.id}",
                     agency_id=campaign.agency_id, name=campaign.name)
        return campaign


@bp.patch("/campaigns/<int:campaign_id>")
@bp.input(CampaignPatchIn, arg_name="data")
@bp.output(CampaignOut)
@bp.doc(summary="Configure a campaign", description=(
    "Changes the settings sent. A running campaign applies them at its next dispatch round; "
    "questionnaire and timezone change only in draft, starts_at not while running (pause first); "
    "a completed or cancelled campaign answers 409."), responses={400: "Invalid input", 409: "Not in this state"})
@requires(Permission.CAMPAIGNS_WRITE, "campaign")
def configure_campaign(campaign_id: int, data: dict[str, Any]) -> Campaign:
    return steering.configure(campaign_id, data)


@bp.get("/campaigns/<int:campaign_id>")
@bp.output(CampaignOut)
@requires(Permission.CAMPAIGNS_READ, "campaign")
def get_campaign(campaign_id: int) -> Campaign:
    with services().db.begin() as session:
        return campaigns.get_campaign(session, campaign_id)


@bp.post("/campaigns/<int:campaign_id>/actions")
@bp.input(ActionIn, arg_name="data")
@bp.output(CampaignOut)
@bp.doc(responses={409: "The action is not possible in the campaign's state"})
@requires(Permission.CAMPAIGNS_STEER, "campaign")
def campaign_action(campaign_id: int, data: dict[str, Any]) -> Campaign:
    """Start, pause, resume or cancel a campaign. Operators pause and resume; starting and
    cancelling need a manager. Pausing and cancelling need a reason, kept in the audit log."""
    return steering.steer(campaign_id, data["action"], data["reason"])


@bp.get("/campaigns/<int:campaign_id>/progress")
@bp.input(ProgressQuery, location="query", arg_name="query")
@bp.output(ProgressOut)
@requires(Permission.CAMPAIGNS_READ, "campaign")
def campaign_progress(campaign_id: int, query: dict[str, Any]) -> dict[str, Any]:
    """Counts, rates, and the calls' length and cost (observed, and expected from the
    call estimate; costs in VND with ``SIPAS_VOICE_PRICES``). The counts cost the same
    whatever the campaign's size; the call figures read every connected call, so a
    dashboard that polls a very large campaign may leave them out (``calls=false``)."""
    svc = services()
    with svc.db.begin() as session:
        progress = campaigns.progress(session, campaign_id, svc.clock())
        calls = call_costs.campaign_costs(session, svc.registry, campaign_id, Costing.from_settings(svc.settings)) \
            if query["calls"] else None
        return {**asdict(progress), "calls": asdict(calls) if calls else None}
