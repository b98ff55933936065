"""Calling windows (Asia/Ho_Chi_Minh is UTC+07:00 all year) and the retry policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ivr_service.core.policy import (
    FINAL_OUTCOMES,
    CallingWindow,
    DayPart,
    Outcome,
    RetryPolicy,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
# These tests are about weekdays and hours, on dates around Tuesday 2026-11-24, which is
# Vietnam Culture Day (a public holiday from 2026): holidays are off here and tested in
# test_policy_windows.py.
WINDOW = CallingWindow(public_holidays=None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 2026-11-24 is a Tuesday, 2026-11-28 a Saturday, 2026-11-29 a Sunday, 2026-11-30 a Monday.
@pytest.mark.parametrize("instant, is_open", [
    (utc(2026, 11, 24, 0, 59, 59), False),   # Tue 07:59:59 local
    (utc(2026, 11, 24, 1, 0), True),         # Tue 08:00 local: the window opens
    (utc(2026, 11, 24, 5, 30), True),        # Tue 12:30 local
    (utc(2026, 11, 24, 9, 59, 59), True),    # Tue 16:59:59 local
    (utc(2026, 11, 24, 10, 0), False),       # Tue 17:00 local: closed
    (utc(2026, 11, 24, 16, 0), False),       # Tue 23:00 local
    (utc(2026, 11, 24, 20, 0), False),       # Wed 03:00 local
    (utc(2026, 11, 28, 3, 0), True),         # Sat 10:00 local
    (utc(2026, 11, 29, 3, 0), False),        # Sun 10:00 local
    (utc(2026, 11, 28, 18, 0), False),       # Sun 01:00 local, still Saturday in UTC
    (utc(2026, 11, 29, 23, 30), False),      # Mon 06:30 local, still Sunday in UTC
    (utc(2026, 11, 30, 1, 30), True),        # Mon 08:30 local
])
def test_default_window_is_monday_to_saturday_8_to_17_in_hanoi(instant: datetime, is_open: bool) -> None:
    assert WINDOW.timezone == "Asia/Ho_Chi_Minh"
    assert WINDOW.weekdays == frozenset(range(6))
    assert WINDOW.is_open(instant) is is_open


def test_is_open_accepts_any_aware_time_and_rejects_naive() -> None:
    assert WINDOW.is_open(datetime(2026, 11, 24, 8, 0, tzinfo=HCM))
    assert not WINDOW.is_open(datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=-5))))  # 20:00 local
    with pytest.raises(ValueError, match="timezone-aware"):
        WINDOW.is_open(datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        WINDOW.next_open(datetime(2026, 11, 24, 9, 0))


def test_closed_dates() -> None:
    holiday = CallingWindow(closed_dates=frozenset({date(2026, 11, 24)}), public_holidays=None)
    assert not holiday.is_open(utc(2026, 11, 24, 3, 0))
    assert holiday.is_open(utc(2026, 11, 25, 3, 0))
    assert holiday.next_open(utc(2026, 11, 24, 3, 0)) == utc(2026, 11, 25, 1, 0)   # Wed 08:00 local


@pytest.mark.parametrize("now, expected", [
    (utc(2026, 11, 24, 3, 0), utc(2026, 11, 24, 3, 0)),           # open: now itself
    (utc(2026, 11, 23, 23, 0), utc(2026, 11, 24, 1, 0)),          # Tue 06:00 local → 08:00
    (utc(2026, 11, 24, 11, 0), utc(2026, 11, 25, 1, 0)),          # Tue 18:00 local → Wed 08:00
    (utc(2026, 11, 24, 10, 0), utc(2026, 11, 25, 1, 0)),          # Tue 17:00 sharp → Wed 08:00
    (utc(2026, 11, 24, 16, 59), utc(2026, 11, 25, 1, 0)),         # Tue 23:59 local
    (utc(2026, 11, 24, 17, 0), utc(2026, 11, 25, 1, 0)),          # Wed 00:00 local
    (utc(2026, 11, 28, 11, 0), utc(2026, 11, 30, 1, 0)),          # Sat 18:00 local → Mon 08:00
    (utc(2026, 11, 29, 3, 0), utc(2026, 11, 30, 1, 0)),           # Sun 10:00 local → Mon 08:00
    (utc(2026, 11, 29, 23, 0), utc(2026, 11, 30, 1, 0)),          # Mon 06:00 local (Sunday in UTC)
])
def test_next_open(now: datetime, expected: datetime) -> None:
    result = WINDOW.next_open(now)
    assert result == expected
    assert result.utcoffset() == timedelta(0)
    assert WINDOW.is_open(result)


def test_next_open_of_a_local_time_is_returned_in_utc() -> None:
    result = WINDOW.next_open(datetime(2026, 11, 24, 18, 0, tzinfo=HCM))
    assert result == utc(2026, 11, 25, 1, 0) and result.tzinfo == UTC
    inside = WINDOW.next_open(datetime(2026, 11, 24, 9, 0, tzinfo=HCM))
    assert inside.tzinfo == UTC and inside == utc(2026, 11, 24, 2, 0)


def test_two_day_parts_with_a_lunch_break() -> None:
    window = CallingWindow(parts=(DayPart(time(13, 30), time(17)), DayPart(time(8), time(11, 30))),
                           public_holidays=None)
    assert window.is_open(utc(2026, 11, 24, 4, 0))           # 11:00 local
    assert not window.is_open(utc(2026, 11, 24, 5, 0))       # 12:00 local
    assert window.next_open(utc(2026, 11, 24, 5, 0)) == utc(2026, 11, 24, 6, 30)    # → 13:30 local
    assert window.next_open(utc(2026, 11, 23, 22, 0)) == utc(2026, 11, 24, 1, 0)    # 05:00 → 08:00, parts unsorted


def test_window_in_another_time_zone() -> None:
    paris = CallingWindow(timezone="Europe/Paris")
    # Summer (UTC+2) and winter (UTC+1): 08:00 local is 06:00 and 07:00 UTC.
    assert paris.next_open(utc(2026, 7, 1, 4, 0)) == utc(2026, 7, 1, 6, 0)
    assert paris.next_open(utc(2026, 12, 1, 4, 0)) == utc(2026, 12, 1, 7, 0)


def test_next_open_skips_day_parts_lost_to_a_daylight_saving_gap() -> None:
    # Europe/London jumps from 01:00 to 02:00 on Sunday 2026-03-29: 01:15–01:45 does not exist.
    london = CallingWindow(timezone="Europe/London", weekdays=frozenset(range(7)),
                           parts=(DayPart(time(1, 15), time(1, 45)),))
    result = london.next_open(utc(2026, 3, 29, 0, 30))
    assert result == utc(2026, 3, 30, 0, 15)          # Monday 01:15 BST
    assert london.is_open(result)
    # New York jumps from 02:00 to 03:00 on 2026-03-08: the part's start is lost, not all of it.
    new_york = CallingWindow(timezone="America/New_York", weekdays=frozenset(range(7)),
                             parts=(DayPart(time(2, 30), time(3, 15)),))
    now = utc(2026, 3, 8, 5, 0)
    result = new_york.next_open(now)
    assert result is not None and result >= now and new_york.is_open(result)


def test_no_open_day_within_a_year_never_opens() -> None:
    with pytest.raises(ValueError, match="weekdays"):
        CallingWindow(weekdays=frozenset())
    mondays = frozenset(date(2026, 11, 23) + timedelta(weeks=n) for n in range(60))
    never = CallingWindow(weekdays=frozenset({0}), closed_dates=mondays)
    assert not never.is_open(utc(2026, 11, 23, 3, 0))
    assert never.next_open(utc(2026, 11, 23, 3, 0)) is None


def test_always_open() -> None:
    window = CallingWindow.always_open()
    assert window.weekdays == frozenset(range(7))
    for instant in (utc(2026, 11, 29, 3, 0), utc(2026, 11, 24, 17, 0), utc(2026, 11, 24, 16, 59, 59)):
        assert window.is_open(instant)
        assert window.next_open(instant) == instant
    assert CallingWindow.always_open("UTC").timezone == "UTC"


def test_day_part_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError, match="start must be before end"):
        DayPart(time(17), time(8))
    with pytest.raises(ValueError, match="start must be before end"):
        DayPart(time(8), time(8))


def test_window_round_trips_through_a_dict() -> None:
    window = CallingWindow(timezone="Asia/Bangkok", weekdays=frozenset({0, 2, 4}),
                           parts=(DayPart(time(8), time(11, 30)), DayPart(time(13, 30), time(16, 45))),
                           closed_dates=frozenset({date(2026, 9, 2), date(2026, 4, 30)}))
    data = window.to_dict()
    assert data == {"timezone": "Asia/Bangkok", "weekdays": [0, 2, 4],
                    "parts": [["08:00:00", "11:30:00"], ["13:30:00", "16:45:00"]],
                    "closed_dates": ["2026-04-30", "2026-09-02"], "public_holidays": "VN"}
    assert CallingWindow.from_dict(data) == window
    assert CallingWindow.from_dict(CallingWindow().to_dict()) == CallingWindow()


def test_window_from_an_empty_dict_is_the_default() -> None:
    assert CallingWindow.from_dict({}) == CallingWindow()
    assert CallingWindow.from_dict({"timezone": "UTC"}) == CallingWindow(timezone="UTC")


@pytest.mark.parametrize("data, words", [
    ({"timezone": "Asia/Hanoi_Typo"}, ("unknown time zone", "Asia/Hanoi_Typo")),
    ({"timezone": None}, ("unknown time zone",)),
    ({"timezone": 7}, ("unknown time zone",)),
    ({"parts": [["17:00", "08:00"]]}, ("calling window", "start must be before end")),
    ({"parts": [["08:00", "25:00"]]}, ("calling window",)),
    ({"parts": [["08:00"]]}, ("calling window",)),
    ({"parts": "08:00-17:00"}, ("calling window",)),
    ({"weekdays": ["monday"]}, ("calling window",)),
    ({"weekdays": 5}, ("calling window",)),
    ({"closed_dates": ["30/04/2026"]}, ("calling window",)),
    ({"closed_dates": [20260430]}, ("calling window",)),
])
def test_window_from_dict_errors(data: dict[str, object], words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as error:
        CallingWindow.from_dict(data)
    for word in words:
        assert word in str(error.value)


# --- retry policy -----------------------------------------------------------------------------

POLICY = RetryPolicy()
TUE_0900 = utc(2026, 11, 24, 2, 0)       # Tue 09:00 local


@pytest.mark.parametrize("outcome", sorted(FINAL_OUTCOMES))
def test_final_outcomes_are_never_retried(outcome: Outcome) -> None:
    assert POLICY.next_attempt(outcome, 1, TUE_0900, WINDOW) is None


def test_final_outcomes_are_completed_refused_invalid_number() -> None:
    assert FINAL_OUTCOMES == {Outcome.COMPLETED, Outcome.REFUSED, Outcome.INVALID_NUMBER}


@pytest.mark.parametrize("outcome", [Outcome.BUSY, Outcome.NO_ANSWER, Outcome.MACHINE, Outcome.FAILED])
def test_max_attempts_reached_stops(outcome: Outcome) -> None:
    assert POLICY.max_attempts == 3
    assert POLICY.next_attempt(outcome, 2, TUE_0900, WINDOW) is not None
    assert POLICY.next_attempt(outcome, 3, TUE_0900, WINDOW) is None
    assert POLICY.next_attempt(outcome, 4, TUE_0900, WINDOW) is None


@pytest.mark.parametrize("outcome, now, expected", [
    (Outcome.BUSY, TUE_0900, utc(2026, 11, 24, 2, 15)),                  # +15 min, inside
    (Outcome.BUSY, utc(2026, 11, 24, 9, 50), utc(2026, 11, 25, 1, 0)),   # 16:50 + 15 min = 17:05 → Wed 08:00
    (Outcome.BUSY, utc(2026, 11, 28, 9, 50), utc(2026, 11, 30, 1, 0)),   # Saturday 16:50 → Monday 08:00
    (Outcome.BUSY, utc(2026, 11, 24, 0, 50), utc(2026, 11, 24, 1, 5)),   # 07:50 (closed) + 15 min = 08:05
    (Outcome.NO_ANSWER, TUE_0900, utc(2026, 11, 24, 4, 0)),              # +2 h
    (Outcome.NO_ANSWER, utc(2026, 11, 24, 8, 0), utc(2026, 11, 25, 1, 0)),  # 15:00 + 2 h = 17:00 → Wed 08:00
    (Outcome.FAILED, TUE_0900, utc(2026, 11, 24, 2, 30)),
    (Outcome.CANCELED, TUE_0900, utc(2026, 11, 24, 2, 30)),
    (Outcome.MACHINE, TUE_0900, utc(2026, 11, 24, 5, 0)),
    (Outcome.PARTIAL, TUE_0900, utc(2026, 11, 25, 2, 0)),                # +1 day
    (Outcome.BREAK_OFF, utc(2026, 11, 28, 2, 0), utc(2026, 11, 30, 1, 0)),  # Sat + 1 day = Sunday → Monday
])
def test_retry_delay_adjusted_into_the_window(outcome: Outcome, now: datetime, expected: datetime) -> None:
    result = POLICY.next_attempt(outcome, 1, now, WINDOW)
    assert result == expected
    assert WINDOW.is_open(result)


def test_outcome_without_a_delay_is_not_retried() -> None:
    policy = RetryPolicy(delays={Outcome.BUSY: timedelta(minutes=5)})
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, TUE_0900, WINDOW) is None
    assert policy.next_attempt(Outcome.BUSY, 1, TUE_0900, WINDOW) == TUE_0900 + timedelta(minutes=5)


def test_retry_policy_round_trips_through_a_dict() -> None:
    policy = RetryPolicy.from_dict({"max_attempts": 5, "delays": {"busy": 60, "no_answer": "7200"}})
    assert policy.max_attempts == 5
    assert policy.delays[Outcome.BUSY] == timedelta(seconds=60)
    assert policy.delays[Outcome.NO_ANSWER] == timedelta(hours=2)
    assert policy.delays[Outcome.MACHINE] == timedelta(hours=3)        # defaults kept
    data = policy.to_dict()
    assert data["max_attempts"] == 5 and data["delays"]["busy"] == 60.0
    assert RetryPolicy.from_dict(data) == policy
    assert RetryPolicy.from_dict({}) == RetryPolicy()
    assert RetryPolicy.from_dict({"delays": None}) == RetryPolicy()


@pytest.mark.parametrize("data, words", [
    ({"max_attempts": 0}, ("max_attempts",)),
    ({"max_attempts": -2}, ("max_attempts",)),
    ({"delays": {"sleeping": 60}}, ("unknown outcome", "sleeping")),
    ({"delays": {"busy": "soon"}}, ("bad delay", "soon")),
    ({"delays": {"busy": None}}, ("bad delay", "None")),
    ({"delays": {"busy": float("inf")}}, ("bad delay", "inf")),
    ({"delays": ["busy", 60]}, ("delays",)),
    ({"max_attempts": None}, ("max_attempts",)),
    ({"max_attempts": "three"}, ("max_attempts", "three")),
])
def test_retry_policy_from_dict_errors(data: dict[str, object], words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as error:
        RetryPolicy.from_dict(data)
    for word in words:
        assert word in str(error.value)


# --- properties -------------------------------------------------------------------------------

ZONES = st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Asia/Kolkata", "Pacific/Kiritimati", "America/Los_Angeles",
                         "Europe/London", "Australia/Lord_Howe"])
TIMES = st.times().map(lambda t: t.replace(microsecond=0))


@st.composite
def day_parts(draw: st.DrawFn) -> tuple[DayPart, ...]:
    count = draw(st.integers(1, 2))
    parts = []
    for _ in range(count):
        a, b = draw(TIMES), draw(TIMES)
        assume(a != b)
        parts.append(DayPart(min(a, b), max(a, b)))
    parts.sort(key=lambda p: p.start)
    assume(all(earlier.end <= later.start for earlier, later in zip(parts, parts[1:])))
    return tuple(parts)


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow:
    return CallingWindow(
        timezone=draw(ZONES),
        weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        parts=draw(day_parts()),
        closed_dates=frozenset(draw(st.sets(st.dates(date(2025, 12, 20), date(2027, 1, 10)), max_size=10))),
    )


# Real instants, expressed in assorted zones. (Drawing local wall times directly would produce
# times inside DST gaps, which compare unequal to every instant under PEP 495.)
INSTANTS = st.builds(
    lambda t, zone: t.astimezone(zone),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.sampled_from([UTC, HCM, ZoneInfo("America/New_York"), timezone(timedelta(hours=-9, minutes=-30))]))


@settings(max_examples=400, deadline=None)
@given(window=windows(), now=INSTANTS)
def test_property_next_open_is_open_and_not_earlier(window: CallingWindow, now: datetime) -> None:
    result = window.next_open(now)
    if result is None:
        # Only when no open day exists within the search horizon.
        assert not window.is_open(now)
        return
    assert result >= now
    assert window.is_open(result)
    assert result.utcoffset() == timedelta(0)
    if window.is_open(now):
        assert result == now.astimezone(UTC)


@settings(max_examples=300, deadline=None)
@given(window=windows(), now=INSTANTS, delay=st.timedeltas(timedelta(0), timedelta(days=3)),
       outcome=st.sampled_from([Outcome.BUSY, Outcome.NO_ANSWER, Outcome.MACHINE, Outcome.FAILED,
                                Outcome.PARTIAL, Outcome.BREAK_OFF, Outcome.CANCELED]),
       attempts=st.integers(0, 4))
def test_property_retries_land_inside_the_window_after_the_delay(
        window: CallingWindow, now: datetime, delay: timedelta, outcome: Outcome, attempts: int) -> None:
    policy = RetryPolicy(max_attempts=3, delays={outcome: delay})
    result = policy.next_attempt(outcome, attempts, now, window)
    if attempts >= 3:
        assert result is None
        return
    assert result == window.next_open(now + delay)
    if result is not None:
        assert result >= now + delay and window.is_open(result)


@settings(max_examples=200, deadline=None)
@given(now=INSTANTS, weekdays=st.sets(st.integers(0, 6), min_size=1),
       start=st.integers(0, 22), length=st.integers(1, 8))
def test_property_next_open_is_the_earliest_open_instant_in_a_fixed_offset_zone(
        now: datetime, weekdays: set[int], start: int, length: int) -> None:
    # Without daylight saving, one second before a later opening must still be closed.
    window = CallingWindow(weekdays=frozenset(weekdays),
                           parts=(DayPart(time(start), time(min(start + length, 23), 59)),))
    result = window.next_open(now)
    assert result is not None
    if result > now:
        assert not window.is_open(result - timedelta(seconds=1))
        assert result.astimezone(HCM).time() == time(start)
