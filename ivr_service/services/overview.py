"""The campaigns list of the console: one row per campaign with what an operator scans
for (status, progress against target, completes today, response rate, last activity),
in a handful of queries whatever the number of campaigns or contacts.

Counts come from the trigger-kept tallies (``persistence/tallies.py``); completes today
are counted from the local midnight of each campaign's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.dispositions import response_rates
from ..persistence.models import Agency, Attempt, Campaign, Interview, InterviewStatus, ProgressDelta


@dataclass(frozen=True)
class AgencyNode:
    id: int
    name: str
    depth: int          # 0 for a root of the caller's part of the tree


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    agency: AgencyNode
    status: str
    channels: tuple[str, ...]
    contacts: int
    done: int
    completes: int
    target: int | None
    completes_today: int
    response_rate: float | None      # AAPOR RR1 over the contacts settled so far
    last_activity: datetime | None


def agency_tree(session: Session, within: set[int] | None) -> list[AgencyNode]:
    """The agencies the caller may see, in tree order (each parent before its children),
    indented from the topmost visible node."""
    query = select(Agency.id, Agency.name, Agency.parent_id).order_by(Agency.name, Agency.id)
    rows = session.execute(query if within is None else query.where(Agency.id.in_(within))).all()
    visible = {row.id for row in rows}
    children: dict[int | None, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        parent = row.parent_id if row.parent_id in visible else None
        children[parent].append((row.id, row.name))
    ordered: list[AgencyNode] = []

    def walk(parent: int | None, depth: int) -> None:
        for agency_id, name in children.get(parent, []):
            ordered.append(AgencyNode(agency_id, name, depth))
            walk(agency_id, depth + 1)

    walk(None, 0)
    return ordered


def campaign_rows(session: Session, within: set[int] | None, now: datetime, *, status: str | None = None,
                  search: str | None = None) -> list[CampaignRow]:
    """The campaigns of the agencies in ``within`` (None: all), grouped in agency-tree
    order, newest first within an agency; ``status`` and ``search`` (in the name) filter."""
    tree = agency_tree(session, within)
    order = {node.id: i for i, node in enumerate(tree)}
    nodes = {node.id: node for node in tree}
    query = select(Campaign).where(Campaign.agency_id.in_(list(nodes)))
    if status:
        query = query.where(Campaign.status == status)
    if search and search.strip():
        query = query.where(func.lower(Campaign.name).contains(search.strip().lower(), autoescape=True))
    found = list(session.scalars(query))
    if not found:
        return []
    ids = [c.id for c in found]
    tallies: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for campaign_id, key, n in session.execute(
            select(ProgressDelta.campaign_id, ProgressDelta.key, func.sum(ProgressDelta.n))
            .where(ProgressDelta.campaign_id.in_(ids), ProgressDelta.kind == "contact")
            .group_by(ProgressDelta.campaign_id, ProgressDelta.key)).all():
        tallies[campaign_id][key] += int(n)
    last = dict(session.execute(select(Attempt.campaign_id, func.max(Attempt.created_at))
                                .where(Attempt.campaign_id.in_(ids)).group_by(Attempt.campaign_id)).all())
    today: dict[int, int] = {}
    by_zone: dict[str, list[int]] = defaultdict(list)
    for campaign in found:
        by_zone[campaign.timezone].append(campaign.id)
    for zone, members in by_zone.items():
        local = now.astimezone(ZoneInfo(zone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        today.update(session.execute(
            select(Interview.campaign_id, func.count()).where(
                Interview.campaign_id.in_(members), Interview.status == InterviewStatus.COMPLETE,
                Interview.ended_at >= midnight).group_by(Interview.campaign_id)).all())
    rows = []
    for campaign in found:
        counts = tallies[campaign.id]
        dispositions: dict[str, int] = defaultdict(int)
        contacts = done = 0
        for key, n in counts.items():
            contact_status, _, disposition = key.partition(":")
            if contact_status == "reserve":
                continue            # not released: not part of the sample being worked
            contacts += n
            if contact_status == "done":
                done += n
            if disposition and n:
                dispositions[disposition] += n
        rate = response_rates(dispositions).values.get("RR1") if dispositions else None
        plan = campaign.channel_plan or [{"channel": "voice"}]
        rows.append(CampaignRow(
            id=campaign.id, name=campaign.name, agency=nodes[campaign.agency_id], status=campaign.status.value,
            channels=tuple(step["channel"] for step in plan), contacts=contacts, done=done,
            completes=dispositions.get("1.1", 0), target=campaign.target_completes,
            completes_today=today.get(campaign.id, 0), response_rate=rate, last_activity=last.get(campaign.id)))
    rows.sort(key=lambda r: (order[r.agency.id], -r.id))
    return rows


def by_agency(tree: list[AgencyNode], rows: list[CampaignRow]) -> list[tuple[AgencyNode, list[CampaignRow]]]:
    """``rows`` under their agencies in tree order, with the agencies above them (for
    context) and without the branches that hold none of ``rows``."""
    own: dict[int, list[CampaignRow]] = defaultdict(list)
    for row in rows:
        own[row.agency.id].append(row)
    groups: list[tuple[AgencyNode, list[CampaignRow]]] = []
    # Walk the tree bottom-up to learn which nodes lead to a campaign.
    leads: set[int] = set()
    path: list[AgencyNode] = []
    for node in tree:
        del path[node.depth:]
        path.append(node)
        if own.get(node.id):
            leads.update(n.id for n in path)
    for node in tree:
        if node.id in leads:
            groups.append((node, own.get(node.id, [])))
    return groups
