"""Agencies and campaigns: create, configure, change state, watch progress."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...persistence.models import Agency, Campaign
from ...services import campaigns
from ..context import services
from .blueprint import bp
from .schemas import ActionIn, AgencyIn, AgencyOut, CampaignIn, CampaignOut, CampaignPatchIn, ProgressOut


@bp.get("/agencies")
@bp.output(AgencyOut(many=True))
def list_agencies() -> list[Agency]:
    with services().db.begin() as session:
        return campaigns.list_agencies(session)


@bp.post("/agencies")
@bp.input(AgencyIn, arg_name="data")
@bp.output(AgencyOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 409: "The code is already used"})
def create_agency(data: dict[str, Any]) -> Agency:
    svc = services()
    with svc.db.begin() as session:
        return campaigns.create_agency(session, data["code"], data["name"], svc.clock(),
                                       sample_rule=data["sample_rule"])


@bp.get("/campaigns")
@bp.output(CampaignOut(many=True))
def list_campaigns() -> list[Campaign]:
    with services().db.begin() as session:
        return campaigns.list_campaigns(session)


@bp.post("/campaigns")
@bp.input(CampaignIn, arg_name="data")
@bp.output(CampaignOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 404: "Agency not found"})
def create_campaign(data: dict[str, Any]) -> Campaign:
    svc = services()
    with svc.db.begin() as session:
        return campaigns.create_campaign(session, svc.registry, now=svc.clock(), **data)


@bp.patch("/campaigns/<int:campaign_id>")
@bp.input(CampaignPatchIn, arg_name="data")
@bp.output(CampaignOut)
@bp.doc(summary="Configure a campaign", description=(
    "Changes the settings sent. A running campaign applies them at its next dispatch round; "
    "questionnaire and timezone change only in draft, starts_at not while running (pause first); "
    "a completed or cancelled campaign answers 409."), responses={400: "Invalid input", 409: "Not in this state"})
def configure_campaign(campaign_id: int, data: dict[str, Any]) -> Campaign:
    svc = services()
    with svc.db.begin() as session:
        return campaigns.configure_campaign(session, svc.registry, campaign_id, data)


@bp.get("/campaigns/<int:campaign_id>")
@bp.output(CampaignOut)
def get_campaign(campaign_id: int) -> Campaign:
    with services().db.begin() as session:
        return campaigns.get_campaign(session, campaign_id)


@bp.post("/campaigns/<int:campaign_id>/actions")
@bp.input(ActionIn, arg_name="data")
@bp.output(CampaignOut)
@bp.doc(responses={409: "The action is not possible in the campaign's state"})
def campaign_action(campaign_id: int, data: dict[str, Any]) -> Campaign:
    """Start, pause, resume or cancel a campaign."""
    svc = services()
    with svc.db.begin() as session:
        return campaigns.transition(session, campaign_id, data["action"], svc.clock(), svc.registry)


@bp.get("/campaigns/<int:campaign_id>/progress")
@bp.output(ProgressOut)
def campaign_progress(campaign_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.begin() as session:
        return asdict(campaigns.progress(session, campaign_id, svc.clock()))
