"""The monitor's arithmetic (core/monitor.py): local days, the open time of a calling
window, the pace of completes per open hour and the forecast of the target and the end
date. Pure functions with the clock passed in: examples for each rule, and Hypothesis
properties that open time adds up and that the forecast's walk is its inverse."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr_service.core.monitor import (
    Forecast,
    Observed,
    Pace,
    WindowNow,
    after_open_time,
    day_starts,
    forecast,
    midnight,
    open_time,
    pace,
    window_now,
)
from ivr_service.core.policy import CallingWindow, DayPart

HANOI = "Asia/Ho_Chi_Minh"
DEFAULT = CallingWindow()                        # Monday–Saturday 08:00–17:00, VN holidays
SPLIT = CallingWindow(weekdays=frozenset(range(5)), parts=(DayPart(time(8), time(11, 30)),
                                                           DayPart(time(13, 30), time(17))))


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A wall time in Hà Nội in 2026 as UTC (UTC+7 all year)."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def test_local_days_and_their_midnights() -> None:
    now = local(17, 6)                           # Tuesday 06:00 in Hà Nội is Monday 23:00 UTC
    assert day_starts(now, HANOI, 3) == [date(2026, 11, 15), date(2026, 11, 16), date(2026, 11, 17)]
    assert midnight(date(2026, 11, 17), HANOI) == datetime(2026, 11, 16, 17, tzinfo=UTC)
    assert midnight(date(2026, 11, 17), "Asia/Kolkata") == datetime(2026, 11, 16, 18, 30, tzinfo=UTC)


def test_open_time_counts_only_open_hours() -> None:
    # A week without holidays (Culture Day is 24 November): six days of nine hours.
    assert open_time(DEFAULT, local(16, 0), local(23, 0)) == timedelta(hours=54)
    assert open_time(DEFAULT, local(17, 9), local(17, 11)) == timedelta(hours=2)
    assert open_time(DEFAULT, local(17, 16), local(18, 9)) == timedelta(hours=2)      # 16–17 and 08–09
    assert open_time(DEFAULT, local(22, 8), local(22, 17)) == timedelta(0)            # a Sunday
    assert open_time(DEFAULT, local(24, 8), local(24, 17)) == timedelta(0)            # Culture Day
    assert open_time(SPLIT, local(17, 11), local(17, 14)) == timedelta(hours=1)       # 11–11:30, 13:30–14
    closed = CallingWindow(closed_dates=frozenset({date(2026, 11, 18)}))
    assert open_time(closed, local(17, 0), local(19, 0)) == timedelta(hours=9)
    assert open_time(DEFAULT, local(17, 12), local(17, 10)) == timedelta(0)           # an empty period


def test_after_open_time_walks_the_window_forward() -> None:
    limit = local(17, 0) + timedelta(days=366)
    assert after_open_time(DEFAULT, local(17, 11), timedelta(hours=4), limit) == local(17, 15)
    # Saturday 15:00 + 4 open hours: two on Saturday, Sunday closed, two on Monday.
    assert after_open_time(DEFAULT, local(21, 15), timedelta(hours=4), limit) == local(23, 10)
    # From a closed moment the walk starts at the next opening.
    assert after_open_time(SPLIT, local(17, 12), timedelta(minutes=30), limit) == local(17, 14)
    assert after_open_time(DEFAULT, local(17, 11), timedelta(hours=4), local(17, 14)) is None


WINDOWS = st.sampled_from([DEFAULT, SPLIT, CallingWindow.always_open(HANOI)])
MOMENTS = st.integers(0, 40 * 24 * 60).map(lambda minutes: local(1, 0) + timedelta(minutes=minutes))


@settings(max_examples=150, deadline=None)
@given(window=WINDOWS, a=MOMENTS, b=MOMENTS, c=MOMENTS)
def test_open_time_adds_up(window: CallingWindow, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert open_time(window, a, c) == open_time(window, a, b) + open_time(window, b, c)
    assert timedelta(0) <= open_time(window, a, c) <= c - a


@settings(max_examples=150, deadline=None)
@given(window=WINDOWS, start=MOMENTS, minutes=st.integers(1, 30 * 9 * 60))
def test_the_forecasts_walk_is_the_inverse_of_open_time(window: CallingWindow, start: datetime, minutes: int) -> None:
    needed = timedelta(minutes=minutes)
    found = after_open_time(window, start, needed, start + timedelta(days=366))
    assert found is not None
    assert open_time(window, start, found) == needed
    assert window.is_open(found - timedelta(microseconds=1))   # it ends inside an open stretch


def test_the_pace_prefers_a_steady_last_24_hours() -> None:
    now = local(18, 9)                           # Wednesday 09:00: 9 open hours in the last 24 h
    week = Observed("7d", 40, midnight(date(2026, 11, 12), HANOI))
    steady = pace(DEFAULT, now, [Observed("24h", 18, now - timedelta(hours=24)), week], None)
    assert steady == Pace("24h", 18, 9.0) and steady.per_open_hour == 2.0
    # Too few in the last 24 hours to be steady: the 7 days' (Thursday to Saturday, Monday,
    # Tuesday and an hour today: 9 × 5 + 1 hours).
    assert pace(DEFAULT, now, [Observed("24h", 3, now - timedelta(hours=24)), week], None) == Pace("7d", 40, 46.0)
    # The campaign started on Tuesday at 09:00: both periods start there.
    assert pace(DEFAULT, now, [Observed("24h", 3, now - timedelta(hours=24)), week], local(17, 9)) == \
        Pace("7d", 40, 9.0)


def test_no_pace_without_a_complete_or_an_open_hour() -> None:
    now = local(17, 9, 30)
    assert pace(DEFAULT, now, [Observed("24h", 0, now - timedelta(hours=24)),
                               Observed("7d", 0, now - timedelta(days=7))], None) is None
    # Started half an hour ago: one complete says nothing yet.
    assert pace(DEFAULT, now, [Observed("24h", 1, now - timedelta(hours=24)),
                               Observed("7d", 1, now - timedelta(days=7))], local(17, 9)) is None


def test_forecast_outcomes() -> None:
    now = local(17, 11)
    one = Pace("24h", 2, 2.0)                    # a complete an open hour
    assert forecast(DEFAULT, now, 10, 10, None, one) == Forecast("reached", one)
    assert forecast(DEFAULT, now, 2, 10, None, None) == Forecast("no_data", None)
    assert forecast(DEFAULT, now, 2, 6, None, one) == Forecast("target", one, at=local(17, 15))
    # With an end date: the target first (and the expected completes by the end), or the end.
    end = local(18, 12)                          # 6 open hours today, 4 tomorrow
    assert forecast(DEFAULT, now, 2, 6, end, one) == Forecast("target", one, at=local(17, 15), expected_at_end=12)
    assert forecast(DEFAULT, now, 2, 100, end, one) == Forecast("end_first", one, expected_at_end=12)
    assert forecast(DEFAULT, now, 2, None, end, one) == Forecast("by_end", one, expected_at_end=12)
    assert forecast(DEFAULT, now, 2, None, None, one) == Forecast("no_goal", one)
    # At a complete a year, the target is beyond the horizon.
    slow = Pace("7d", 1, 24 * 366.0)
    assert forecast(DEFAULT, now, 2, 1000, None, slow) == Forecast("beyond", slow)


def test_whether_the_window_is_open_now_and_when_it_opens_next() -> None:
    assert window_now(DEFAULT, local(17, 9)) == WindowNow(True, local(17, 17), local(18, 8))
    assert window_now(SPLIT, local(17, 9)) == WindowNow(True, local(17, 11, 30), local(17, 13, 30))
    assert window_now(DEFAULT, local(21, 18)) == WindowNow(False, None, local(23, 8))    # Saturday evening
    assert window_now(DEFAULT, local(23, 18)) == WindowNow(False, None, local(25, 8))    # Culture Day next
    never = CallingWindow(weekdays=frozenset({6}), public_holidays=None,
                          closed_dates=frozenset(date(2026, 11, 22) + timedelta(weeks=w) for w in range(60)))
    assert window_now(never, local(17, 9)) == WindowNow(False, None, None)
