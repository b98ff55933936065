"""What the console's live monitor of one campaign shows, read in a few cheap queries so
the page can be polled every few seconds whatever the campaign's size.

The counts by status and disposition, attempts per hour and the rates come from
``campaigns.progress`` (trigger-kept tallies and index range scans); this adds the
complete interviews per local day over the last 14 days with those of the last 24 hours
and 7 days, the provider errors of the last hour by code (a range scan of the last
hour's attempts), whether the calling window is open, and the pace and forecast of
``core.monitor``. A page that polls passes a ``buckets.Closed``: the hours and days that
have ended are then counted once, and each poll reads only the current hour and day. The
call length and cost figures (``call_costs``) read every connected call and are left to
the full page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..core import monitor as core
from ..persistence.models import Agency, Attempt, Campaign, CampaignStatus, Interview, InterviewStatus
from . import buckets
from .campaigns import Progress, closed_counts, get_campaign, possible_actions, progress

DAYS = 14
# The forecast speaks of campaigns that may still make attempts.
FORECAST_STATUSES = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
                               CampaignStatus.PAUSED})


@dataclass(frozen=True)
class ErrorCount:
    code: str
    attempts: int
    last: datetime


@dataclass(frozen=True)
class Monitor:
    campaign_id: int
    name: str
    agency: str
    status: str
    timezone: str
    target: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    actions: tuple[str, ...]        # the state changes the campaign's status allows
    progress: Progress
    completes: int
    completes_per_day: list[tuple[date, int]]     # the last 14 local days, oldest first
    completes_24h: int
    completes_7d: int
    errors: list[ErrorCount]        # provider errors of the attempts of the last hour, most first
    window: core.WindowNow
    forecast: core.Forecast | None  # None once the campaign is over
    now: datetime


def completes_by_day(session: Session, campaign: Campaign, now: datetime,
                     closed: buckets.Closed | None = None) -> tuple[list[tuple[date, int]], int, int]:
    """Complete interviews per local day of the last 14 days (oldest first), in the last 24
    hours, and in the last 7 days (today and the 6 days before, local time). With
    ``closed``, the days before today are read once a day (``services/buckets.py``)."""
    tz = campaign.timezone
    days = core.day_starts(now, tz, DAYS)
    starts = [core.midnight(day, tz) for day in days]
    completes = (Interview.campaign_id == campaign.id, Interview.status == InterviewStatus.COMPLETE)

    def per_period(periods: list[datetime]) -> list[int]:
        return closed_counts(session, Interview.ended_at, completes, periods)

    earlier = closed.counts(("completes_per_day", campaign.id, tz), starts, per_period) \
        if closed is not None else per_period(starts)
    day_ago = now - timedelta(hours=24)
    today, last_day = session.execute(
        select(func.sum(case((Interview.ended_at >= starts[-1], 1), else_=0)),
               func.sum(case((Interview.ended_at >= day_ago, 1), else_=0)))
        .where(*completes, Interview.ended_at >= min(starts[-1], day_ago), Interview.ended_at <= now)).one()
    per_day = list(zip(days, [*earlier, int(today or 0)], strict=True))
    return per_day, int(last_day or 0), sum(n for _, n in per_day[-7:])


def errors_last_hour(session: Session, campaign_id: int, now: datetime) -> list[ErrorCount]:
    """Error codes of the attempts made in the last hour (the provider's, or ``lost`` for a
    call the provider no longer knew), most frequent first."""
    rows = session.execute(
        select(Attempt.error_code, func.count(), func.max(Attempt.created_at))
        .where(Attempt.campaign_id == campaign_id, Attempt.created_at >= now - timedelta(hours=1),
               Attempt.error_code.is_not(None))
        .group_by(Attempt.error_code)).all()
    return sorted((ErrorCount(str(code), n, last) for code, n, last in rows), key=lambda e: (-e.attempts, e.code))


def monitor(session: Session, campaign_id: int, now: datetime, closed: buckets.Closed | None = None) -> Monitor:
    """Everything the monitor shows; ``closed``: the counts of past hours and days kept
    between polls (``services/buckets.py``)."""
    campaign = get_campaign(session, campaign_id)
    counts = progress(session, campaign_id, now, closed)
    per_day, in_day, in_week = completes_by_day(session, campaign, now, closed)
    completes = counts.by_disposition.get("1.1", 0)
    window = campaign.calling_window()
    found = None
    if campaign.status in FORECAST_STATUSES:
        observed = [core.Observed("24h", in_day, now - timedelta(hours=24)),
                    core.Observed("7d", in_week, core.midnight(per_day[-7][0], campaign.timezone))]
        found = core.forecast(window, now, completes, campaign.target_completes, campaign.ends_at,
                              core.pace(window, now, observed, campaign.started_at))
    agency = session.scalar(select(Agency.name).where(Agency.id == campaign.agency_id)) or ""
    return Monitor(
        campaign_id=campaign.id, name=campaign.name, agency=agency, status=campaign.status.value,
        timezone=campaign.timezone, target=campaign.target_completes, starts_at=campaign.starts_at,
        ends_at=campaign.ends_at, actions=possible_actions(campaign.status), progress=counts,
        completes=completes, completes_per_day=per_day, completes_24h=in_day, completes_7d=in_week,
        errors=errors_last_hour(session, campaign_id, now), window=core.window_now(window, now), forecast=found,
        now=now)
