"""What the console's live monitor of one campaign shows, read in a few cheap queries so
the page can be polled every few seconds whatever the campaign's size.

The counts by status and disposition, attempts per hour and the rates come from
``campaigns.progress`` (trigger-kept tallies and one index range scan); this adds the
complete interviews per local day over the last 14 days (the days before today counted
once a day, see :class:`PastDays`) with those of the last 24 hours and 7 days, the
provider errors of the last hour by code (a range scan of the last hour's attempts),
whether the calling window is open, and the pace and forecast of ``core.monitor``. The
call length and cost figures (``call_costs``) read every connected call and are left to
the full page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..core import monitor as core
from ..core.policy import CallingWindow
from ..persistence.models import Agency, Attempt, Campaign, CampaignStatus, Interview, InterviewStatus
from .campaigns import Progress, get_campaign, possible_actions, progress

DAYS = 14
# The forecast speaks of campaigns that may still make attempts.
FORECAST_STATUSES = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
                               CampaignStatus.PAUSED})


@dataclass(frozen=True)
class WindowNow:
    open: bool
    until: datetime | None          # when the open stretch ends (open now)
    next_open: datetime | None      # when it opens next (after the current stretch when open)


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
    window: WindowNow
    forecast: core.Forecast | None  # None once the campaign is over
    now: datetime


def window_now(window: CallingWindow, now: datetime) -> WindowNow:
    if window.is_open(now):
        until = window.open_until(now)
        assert until is not None
        return WindowNow(True, until, window.next_open(until))
    return WindowNow(False, None, window.next_open(now))


class PastDays:
    """Complete interviews per local day before today, per campaign, kept between polls.

    An interview ends at the moment it is recorded, so a day's completes no longer change
    once the day is over: they are counted once a day (per web process), and each poll
    counts only today's and the last 24 hours' (an index range over a day of completes,
    ``ix_interviews_campaign_complete_ended``) instead of 14 days of them."""

    def __init__(self) -> None:
        self._found: dict[int, tuple[str, date, dict[date, int]]] = {}
        self._lock = threading.Lock()

    def get(self, campaign_id: int, tz: str, today: date) -> dict[date, int] | None:
        with self._lock:
            found = self._found.get(campaign_id)
        return found[2] if found is not None and found[:2] == (tz, today) else None

    def keep(self, campaign_id: int, tz: str, today: date, counts: dict[date, int]) -> None:
        with self._lock:
            self._found[campaign_id] = (tz, today, counts)


def completes_by_day(session: Session, campaign: Campaign, now: datetime,
                     past: PastDays | None = None) -> tuple[list[tuple[date, int]], int, int]:
    """Complete interviews per local day of the last 14 days (oldest first), in the last 24
    hours, and in the last 7 days (today and the 6 days before, local time)."""
    tz = campaign.timezone
    days = core.day_starts(now, tz, DAYS)
    today = days[-1]
    starts = [core.midnight(day, tz) for day in days]
    completes = (Interview.campaign_id == campaign.id, Interview.status == InterviewStatus.COMPLETE)
    before = past.get(campaign.id, tz, today) if past is not None else None
    if before is None:
        # One range of the index, bucketed by a CASE over the days' starts (as progress does).
        bucket = case(*[(Interview.ended_at >= start, i) for i, start in reversed(list(enumerate(starts[:-1])))],
                      else_=-1)
        counted: dict[int, int] = dict(session.execute(
            select(bucket, func.count()).where(*completes, Interview.ended_at >= starts[0],
                                               Interview.ended_at < starts[-1]).group_by(bucket)).all())
        before = {day: counted.get(i, 0) for i, day in enumerate(days[:-1])}
        if past is not None:
            past.keep(campaign.id, tz, today, before)
    since_24h = now - timedelta(hours=24)
    in_today, in_day = session.execute(
        select(func.sum(case((Interview.ended_at >= starts[-1], 1), else_=0)),
               func.sum(case((Interview.ended_at >= since_24h, 1), else_=0)))
        .where(*completes, Interview.ended_at >= min(starts[-1], since_24h), Interview.ended_at <= now)).one()
    per_day = [(day, before[day]) for day in days[:-1]] + [(today, int(in_today or 0))]
    return per_day, int(in_day or 0), sum(n for _, n in per_day[-7:])


def errors_last_hour(session: Session, campaign_id: int, now: datetime) -> list[ErrorCount]:
    """Error codes of the attempts made in the last hour (the provider's, or ``lost`` for a
    call the provider no longer knew), most frequent first."""
    rows = session.execute(
        select(Attempt.error_code, func.count(), func.max(Attempt.created_at))
        .where(Attempt.campaign_id == campaign_id, Attempt.created_at >= now - timedelta(hours=1),
               Attempt.error_code.is_not(None))
        .group_by(Attempt.error_code)).all()
    return sorted((ErrorCount(str(code), n, last) for code, n, last in rows), key=lambda e: (-e.attempts, e.code))


def monitor(session: Session, campaign_id: int, now: datetime, past: PastDays | None = None) -> Monitor:
    """Everything the monitor shows; ``past``: the per-day counts kept between polls."""
    campaign = get_campaign(session, campaign_id)
    counts = progress(session, campaign_id, now)
    per_day, in_day, in_week = completes_by_day(session, campaign, now, past)
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
        errors=errors_last_hour(session, campaign_id, now), window=window_now(window, now), forecast=found,
        now=now)
