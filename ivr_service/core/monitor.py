"""The arithmetic of a campaign's live monitor: local days, the open time of a calling
window, the pace of complete interviews and when it reaches the target or the end date.

Completes only happen while the calling window is open, so the pace is measured per
*open* hour and projected over the open hours ahead: a forecast made on Saturday
afternoon does not count Sunday, and one with a morning and an afternoon part skips the
lunch break. The pace is that of the last 24 hours when they hold enough completes to be
steady, else that of the last 7 days (the caller says where each period starts: the
monitor counts today and the six days before from local midnight; both from the
campaign's start at the earliest); with no complete, or less than an open hour observed,
there is no forecast ("not enough data"). A campaign paused during the period looks
slower than it runs.

Every function takes ``now``; none reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .policy import CallingWindow

# The shorter period's pace is used once it rests on this many completes; below, the longer's.
STEADY_COMPLETES = 10
# Less open time than this observed says nothing about the pace yet.
MIN_OPEN = timedelta(hours=1)
# How far ahead a forecast looks: beyond, "not within a year at this pace".
HORIZON = timedelta(days=366)


def day_starts(now: datetime, tz: str, days: int) -> list[date]:
    """The last ``days`` local dates in ``tz``, oldest first, the last one holding ``now``."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return [today - timedelta(days=d) for d in range(days - 1, -1, -1)]


def midnight(day: date, tz: str) -> datetime:
    """The instant (UTC) ``day`` begins in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


@dataclass(frozen=True)
class WindowNow:
    open: bool
    until: datetime | None          # when the open stretch ends (open now)
    next_open: datetime | None      # when it opens next (after the current stretch when open)


def window_now(window: CallingWindow, now: datetime) -> WindowNow:
    """Whether ``window`` is open at ``now``, until when, and when it opens next."""
    if window.is_open(now):
        until = window.open_until(now)
        assert until is not None
        return WindowNow(True, until, window.next_open(until))
    return WindowNow(False, None, window.next_open(now))


def open_time(window: CallingWindow, start: datetime, end: datetime) -> timedelta:
    """How long ``window`` is open between ``start`` and ``end``."""
    total = timedelta(0)
    moment = start
    while moment < end:
        opened = window.next_open(moment)
        if opened is None or opened >= end:
            break
        until = window.open_until(opened)
        assert until is not None
        total += min(until, end) - opened
        moment = max(until, opened + timedelta(microseconds=1))
    return total


def after_open_time(window: CallingWindow, start: datetime, needed: timedelta,
                    limit: datetime) -> datetime | None:
    """The instant by which ``window`` has been open for ``needed`` after ``start``; None
    when that is later than ``limit``."""
    moment = start
    while moment <= limit:
        opened = window.next_open(moment)
        if opened is None or opened > limit:
            return None
        until = window.open_until(opened)
        assert until is not None
        if opened + needed <= until:
            found = opened + needed
            return found if found <= limit else None
        needed -= until - opened
        moment = max(until, opened + timedelta(microseconds=1))
    return None


@dataclass(frozen=True)
class Observed:
    """Completes counted from ``since`` to now: ``period`` "24h" (the last 24 hours) or
    "7d" (the last 7 days, from a local midnight)."""

    period: str
    completes: int
    since: datetime


@dataclass(frozen=True)
class Pace:
    period: str                 # "24h" or "7d": which period the pace was measured over
    completes: int              # in that period
    open_hours: float           # the window's open time in that period

    @property
    def per_open_hour(self) -> float:
        return self.completes / self.open_hours


def pace(window: CallingWindow, now: datetime, observed: list[Observed],
         started_at: datetime | None) -> Pace | None:
    """The pace of completes over the shortest period of ``observed`` that is steady (holds
    STEADY_COMPLETES), else over the longest with a complete and an open hour; None when
    none has (see the module docstring). Periods start at the campaign's start at the
    earliest."""
    found: list[Pace] = []
    for period in sorted(observed, key=lambda o: o.since, reverse=True):     # the shortest first
        since = max(period.since, started_at) if started_at is not None else period.since
        hours = open_time(window, since, now)
        if period.completes and hours >= MIN_OPEN:
            found.append(Pace(period.period, period.completes, hours.total_seconds() / 3600))
    for candidate in found:
        if candidate.completes >= STEADY_COMPLETES:
            return candidate
    return found[-1] if found else None


@dataclass(frozen=True)
class Forecast:
    """What the pace says of the campaign's target and end date.

    ``outcome``: "reached" (the target is in), "no_data" (no pace), "target" (the target is
    reached at ``at``, before any end date), "end_first" (the end date comes first, with
    about ``expected_at_end`` completes by then), "by_end" (no target: about
    ``expected_at_end`` by the end date), "beyond" (neither within a year), "no_goal" (no
    target and no end date: only the pace to show).
    """

    outcome: str
    pace: Pace | None
    at: datetime | None = None
    expected_at_end: int | None = None


def forecast(window: CallingWindow, now: datetime, completes: int, target: int | None,
             ends_at: datetime | None, found: Pace | None) -> Forecast:
    if target is not None and completes >= target:
        return Forecast("reached", found)
    if found is None:
        return Forecast("no_data", None)
    rate = found.per_open_hour
    expected = None
    if ends_at is not None and ends_at <= now + HORIZON:
        expected = completes + int(rate * open_time(window, now, ends_at).total_seconds() / 3600)
    if target is None:
        return Forecast("by_end", found, expected_at_end=expected) if ends_at is not None else \
            Forecast("no_goal", found)
    needed = timedelta(hours=(target - completes) / rate)
    limit = min(ends_at, now + HORIZON) if ends_at is not None else now + HORIZON
    at = after_open_time(window, now, needed, limit)
    if at is not None:
        return Forecast("target", found, at=at, expected_at_end=expected)
    if ends_at is not None and ends_at <= now + HORIZON:
        return Forecast("end_first", found, expected_at_end=expected)
    return Forecast("beyond", found)
