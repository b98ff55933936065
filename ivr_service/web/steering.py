"""Changing a campaign from the web: one code path for the JSON API
(``POST /api/v1/campaigns/<id>/actions``, ``PATCH /api/v1/campaigns/<id>``) and the
console's buttons and settings form. Each checks what the caller may do, calls the
service and records the audit entry in the same transaction, so an action and its entry
commit together or not at all.

Operators pause and resume (``campaigns:steer``); starting and cancelling also need a
manager's ``campaigns:write`` on the campaign's agency. Pausing and cancelling need a
reason, kept in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ..core.access import Permission, allowed
from ..persistence.models import Campaign
from ..services import access, audit, campaigns
from ..services.errors import invalid
from .access import Forbidden, actor, principal
from .context import services

ACTIONS = ("start", "pause", "resume", "cancel")
REASON_NEEDED = frozenset({"pause", "cancel"})
MANAGER_ACTIONS = frozenset({"start", "cancel"})
MAX_REASON = 500


def permitted(session: Session, agency_id: int, parents: Mapping[int, int | None] | None = None) -> frozenset[str]:
    """The actions the caller may take on a campaign of ``agency_id`` (whatever its state);
    ``parents``: the agency tree when the caller has read it already."""
    parents = parents if parents is not None else access.agency_parents(session)
    if not allowed(principal(), Permission.CAMPAIGNS_STEER, agency_id, parents):
        return frozenset()
    if allowed(principal(), Permission.CAMPAIGNS_WRITE, agency_id, parents):
        return frozenset(ACTIONS)
    return frozenset(ACTIONS) - MANAGER_ACTIONS


def steer(campaign_id: int, action: str, reason: str | None) -> Campaign:
    """Start, pause, resume or cancel a campaign (``services.campaigns.transition``)."""
    reason = (reason or "").strip() or None
    if action in REASON_NEEDED and reason is None:
        raise invalid("reason", f"required to {action} a campaign")
    if reason is not None and len(reason) > MAX_REASON:
        raise invalid("reason", f"at most {MAX_REASON} characters, got {len(reason)}")
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        agency_id = campaigns.get_campaign(session, campaign_id).agency_id
        if action in MANAGER_ACTIONS and action not in permitted(session, agency_id):
            raise Forbidden(f"{action} needs the {Permission.CAMPAIGNS_WRITE.value} permission")
        campaign = campaigns.transition(session, campaign_id, action, now, svc.registry)
        audit.record(session, actor(), f"campaign_{action}", now, target=f"campaign:{campaign_id}",
                     agency_id=agency_id, **({"reason": reason} if reason else {}))
        return campaign


def configure(campaign_id: int, changes: dict[str, Any]) -> Campaign:
    """Change the settings in ``changes`` (``services.campaigns.configure_campaign``)."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        campaign = campaigns.configure_campaign(session, svc.registry, campaign_id, changes)
        audit.record(session, actor(), "campaign_configured", now, target=f"campaign:{campaign_id}",
                     agency_id=campaign.agency_id, changed=sorted(changes))
        return campaign
