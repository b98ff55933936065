"""Public holidays, strict parsing, the per-number gap and day-part rotation of retries.

Holiday facts are those of the pinned holidays==0.109 package.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from ivr_service.core.policy import FINAL_OUTCOMES, CallingWindow, DayPart, Outcome, RetryPolicy

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT = CallingWindow()
NO_HOLIDAYS = CallingWindow(public_holidays=None)
MORNING, AFTERNOON = DayPart(time(8), time(11, 30)), DayPart(time(13, 30), time(17))
TWO_PARTS = CallingWindow(parts=(MORNING, AFTERNOON))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hanoi(*args: int) -> datetime:
    return datetime(*args, tzinfo=HCM)


# --- public holidays ---------------------------------------------------------------------------

VN_HOLIDAYS = {
    2026: {date(2026, 1, 1), *(date(2026, 2, d) for d in range(16, 21)),       # Tết 17 Feb: eve to 4th day
           date(2026, 4, 26), date(2026, 4, 27), date(2026, 4, 30), date(2026, 5, 1),
           date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2), date(2026, 11, 24)},
    2027: {date(2027, 1, 1), *(date(2027, 2, d) for d in range(4, 11)),        # Tết 6 Feb
           date(2027, 4, 16), date(2027, 4, 30), date(2027, 5, 1), date(2027, 5, 3),
           date(2027, 9, 2), date(2027, 9, 3), date(2027, 11, 24)},
}


@pytest.mark.parametrize("year", sorted(VN_HOLIDAYS))
def test_default_window_closes_exactly_the_vietnamese_public_holidays(year: int) -> None:
    day = date(year, 1, 1)
    while day.year == year:
        at_ten = hanoi(day.year, day.month, day.day, 10, 0)
        assert DEFAULT.is_holiday(day) is (day in VN_HOLIDAYS[year])
        assert DEFAULT.is_open(at_ten) is (day.weekday() != 6 and day not in VN_HOLIDAYS[year]), day
        assert NO_HOLIDAYS.is_open(at_ten) is (day.weekday() != 6), day
        day += timedelta(days=1)


def test_tet_2026_is_closed_and_the_window_reopens_after_it() -> None:
    for day in range(16, 21):                                           # Mon 16 – Fri 20 Feb 2026
        assert not DEFAULT.is_open(hanoi(2026, 2, day, 9, 0))
        assert NO_HOLIDAYS.is_open(hanoi(2026, 2, day, 9, 0))
    assert DEFAULT.is_open(hanoi(2026, 2, 13, 16, 59))                  # Friday before Tết
    assert DEFAULT.next_open(hanoi(2026, 2, 14, 17, 0)) == hanoi(2026, 2, 21, 8, 0)   # Saturday to Saturday
    assert DEFAULT.next_open(hanoi(2027, 2, 3, 17, 0)) == hanoi(2027, 2, 11, 8, 0)    # Tết 2027: 4–10 Feb


def test_government_tet_break_goes_in_closed_dates() -> None:
    extended = CallingWindow(closed_dates=frozenset({date(2026, 2, 14), date(2026, 2, 21)}))
    assert extended.next_open(hanoi(2026, 2, 13, 17, 0)) == hanoi(2026, 2, 23, 8, 0)  # Monday


def test_sunday_closed_and_the_day_ends_at_17_00() -> None:
    assert not DEFAULT.is_open(hanoi(2026, 11, 29, 10, 0))              # Sunday
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 16, 59))                  # Wednesday
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 16, 59, 59, 999999))
    assert not DEFAULT.is_open(hanoi(2026, 11, 25, 17, 0))
    assert not DEFAULT.is_open(hanoi(2026, 11, 25, 7, 59))
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 8, 0))


@pytest.mark.parametrize("day", [date(2026, 9, 2), date(2026, 4, 30), date(2026, 11, 24), date(2027, 9, 3)])
def test_a_holiday_on_a_weekday_is_closed_unless_holidays_are_off(day: date) -> None:
    assert day.weekday() < 5
    at_ten = hanoi(day.year, day.month, day.day, 10, 0)
    assert not DEFAULT.is_open(at_ten)
    assert DEFAULT.next_open(at_ten) > at_ten
    assert NO_HOLIDAYS.is_open(at_ten)
    assert NO_HOLIDAYS.next_open(at_ten) == at_ten


def test_holidays_follow_the_window_time_zone_and_country() -> None:
    # Holidays apply to the local date: 06:00 on Thursday 3 Sep in Hà Nội is still
    # Wednesday 2 Sep (National Day) in New York.
    all_day = (DayPart(time(0), time(23)),)
    instant = hanoi(2026, 9, 3, 6, 0)
    assert CallingWindow(parts=all_day).is_open(instant)
    assert not CallingWindow(timezone="America/New_York", parts=all_day).is_open(instant)
    thai = CallingWindow(public_holidays="TH")
    assert thai.is_open(hanoi(2026, 9, 2, 10, 0))
    assert not thai.is_holiday(date(2026, 11, 24))


def test_always_open_ignores_holidays() -> None:
    assert CallingWindow.always_open().public_holidays is None
    assert CallingWindow.always_open().is_open(hanoi(2026, 2, 17, 3, 0))


# --- daylight saving ---------------------------------------------------------------------------

def test_part_starting_in_a_spring_gap_opens_when_the_clock_jumps_into_it() -> None:
    # New York skips 02:00–03:00 on 2026-03-08: the 02:30–03:15 part runs 03:00–03:15 EDT.
    window = CallingWindow(timezone="America/New_York", weekdays=frozenset(range(7)),
                           parts=(DayPart(time(2, 30), time(3, 15)),), public_holidays=None)
    assert window.next_open(utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 7, 0)


def test_part_met_again_when_an_autumn_change_repeats_the_hour() -> None:
    # New York repeats 01:00–02:00 on 2026-11-01. At 01:30 EDT the 00:30–01:20 part is over,
    # but the clock goes back to 01:00 EST (06:00 UTC) and is inside it again.
    window = CallingWindow(timezone="America/New_York", weekdays=frozenset(range(7)),
                           parts=(DayPart(time(0, 30), time(1, 20)),), public_holidays=None)
    now = utc(2026, 11, 1, 5, 30)
    assert not window.is_open(now)
    assert window.next_open(now) == utc(2026, 11, 1, 6, 0)
    # A part inside the repeated hour starts twice: 01:10 EDT, then 01:10 EST.
    window = replace(window, parts=(DayPart(time(1, 10), time(1, 20)),))
    assert window.next_open(utc(2026, 11, 1, 5, 0)) == utc(2026, 11, 1, 5, 10)
    assert window.next_open(now) == utc(2026, 11, 1, 6, 10)


# --- retry policy ------------------------------------------------------------------------------

def test_no_answer_moves_to_the_other_day_part() -> None:
    policy = RetryPolicy()
    # Morning attempt unanswered: +2 h is 11:05, still the morning, so 13:30 the same day.
    result = policy.next_attempt(Outcome.NO_ANSWER, 1, hanoi(2026, 11, 25, 9, 5), TWO_PARTS,
                                 previous_start=hanoi(2026, 11, 25, 9, 0))
    assert result == hanoi(2026, 11, 25, 13, 30)
    # Afternoon attempt: +2 h is 16:05, still the afternoon, so 08:00 the next day.
    result = policy.next_attempt(Outcome.NO_ANSWER, 1, hanoi(2026, 11, 25, 14, 5), TWO_PARTS,
                                 previous_start=hanoi(2026, 11, 25, 14, 0))
    assert result == hanoi(2026, 11, 26, 8, 0)
    # Already in another part after the delay: no change.
    result = policy.next_attempt(Outcome.NO_ANSWER, 1, hanoi(2026, 11, 25, 12, 30), TWO_PARTS,
                                 previous_start=hanoi(2026, 11, 25, 9, 0))
    assert result == hanoi(2026, 11, 25, 14, 30)


def test_part_rotation_only_for_no_answer_with_a_previous_start_and_several_parts() -> None:
    policy, now, previous = RetryPolicy(), hanoi(2026, 11, 25, 14, 5), hanoi(2026, 11, 25, 14, 0)
    plain = hanoi(2026, 11, 25, 16, 5)
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, now, TWO_PARTS) == plain
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, now, DEFAULT, previous_start=previous) == plain
    outside = hanoi(2026, 11, 25, 12, 0)                                 # lunch: in no part
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, now, TWO_PARTS, previous_start=outside) == plain
    busy = policy.next_attempt(Outcome.BUSY, 1, now, TWO_PARTS, previous_start=previous)
    assert busy == hanoi(2026, 11, 25, 14, 20)
    assert policy.next_attempt(Outcome.NO_ANSWER, 3, now, TWO_PARTS, previous_start=previous) is None


def test_part_rotation_falls_back_when_the_other_part_is_more_than_7_days_away() -> None:
    # Closed for ten days from Thursday: the next morning is Monday 7 December, more than
    # 7 days after 16:05 on Wednesday, so the retry stays in the afternoon.
    closed = frozenset(date(2026, 11, 26) + timedelta(days=n) for n in range(10))
    window = CallingWindow(parts=(MORNING, AFTERNOON), closed_dates=closed)
    result = RetryPolicy().next_attempt(Outcome.NO_ANSWER, 1, hanoi(2026, 11, 25, 14, 5), window,
                                        previous_start=hanoi(2026, 11, 25, 14, 0))
    assert result == hanoi(2026, 11, 25, 16, 5) and window.day_part(result) == AFTERNOON
    # Within 7 days (closed for five days), the morning wins.
    window = CallingWindow(parts=(MORNING, AFTERNOON),
                           closed_dates=frozenset(date(2026, 11, 26) + timedelta(days=n) for n in range(5)))
    result = RetryPolicy().next_attempt(Outcome.NO_ANSWER, 1, hanoi(2026, 11, 25, 14, 5), window,
                                        previous_start=hanoi(2026, 11, 25, 14, 0))
    assert result == hanoi(2026, 12, 1, 8, 0)                           # Tuesday; 26–30 Nov closed


def test_min_gap_defaults_to_24_hours_and_round_trips() -> None:
    assert RetryPolicy().min_gap == timedelta(hours=24)
    assert RetryPolicy().to_dict()["min_gap_s"] == 86400
    for seconds in (0, 3600, 86400.0):
        policy = RetryPolicy.from_dict({"min_gap_s": seconds})
        assert policy.min_gap == timedelta(seconds=seconds)
        assert RetryPolicy.from_dict(policy.to_dict()) == policy


def test_max_attempts_bounds() -> None:
    assert RetryPolicy.from_dict({"max_attempts": 20}).max_attempts == 20
    assert RetryPolicy.from_dict({"max_attempts": 1}).max_attempts == 1
    assert RetryPolicy.from_dict({"max_attempts": 4.0}).max_attempts == 4


# --- serialization and validation ---------------------------------------------------------------

def test_old_json_without_the_new_keys_loads_with_the_defaults() -> None:
    old_window = {"timezone": "Asia/Ho_Chi_Minh", "weekdays": [0, 1, 2, 3, 4, 5],
                  "parts": [["08:00:00", "17:00:00"]], "closed_dates": []}
    assert CallingWindow.from_dict(old_window) == CallingWindow()
    assert CallingWindow.from_dict(old_window).public_holidays == "VN"
    old_retry = {"max_attempts": 3, "delays": {"busy": 900.0, "no_answer": 7200.0}}
    assert RetryPolicy.from_dict(old_retry) == RetryPolicy()
    assert RetryPolicy.from_dict(old_retry).min_gap == timedelta(hours=24)


def test_new_keys_round_trip() -> None:
    window = CallingWindow(parts=(AFTERNOON, MORNING), public_holidays=None)
    data = window.to_dict()
    assert data["public_holidays"] is None
    assert data["parts"] == [["08:00:00", "11:30:00"], ["13:30:00", "17:00:00"]]   # sorted
    assert CallingWindow.from_dict(data) == window
    assert CallingWindow.from_dict({"public_holidays": "TH"}).public_holidays == "TH"
    assert RetryPolicy().to_dict() == {
        "max_attempts": 3, "min_gap_s": 86400.0,
        "delays": {"busy": 900.0, "no_answer": 7200.0, "failed": 1800.0, "machine": 10800.0,
                   "partial": 86400.0, "break_off": 86400.0, "canceled": 1800.0}}


@pytest.mark.parametrize("data, words", [
    ({"timezone": "Mars/Olympus"}, ("timezone", "Mars/Olympus")),
    ({"tz": "UTC"}, ("unknown key", "'tz'")),
    ({"weekdays": []}, ("weekdays", "at least one")),
    ({"weekdays": [7]}, ("weekdays", "7")),
    ({"weekdays": [-1]}, ("weekdays", "-1")),
    ({"weekdays": [True]}, ("weekdays", "True")),
    ({"weekdays": ["1"]}, ("weekdays", "'1'")),
    ({"weekdays": [1.0]}, ("weekdays", "1.0")),
    ({"weekdays": "0123"}, ("weekdays",)),
    ({"weekdays": None}, ("weekdays",)),
    ({"parts": []}, ("parts", "at least one")),
    ({"parts": [["08:00", "12:00"], ["11:00", "17:00"]]}, ("parts", "overlaps", "08:00:00–12:00:00")),
    ({"parts": [["08:00", "17:00"], ["08:00", "17:00"]]}, ("parts", "overlaps")),
    ({"parts": [["17:00", "08:00"]]}, ("parts[0]", "start must be before end")),
    ({"parts": [["08:00", "12:00"], ["13:00", "xx"]]}, ("parts[1]",)),
    ({"parts": [["08:00+07:00", "17:00"]]}, ("parts[0]", "UTC offset")),
    ({"parts": [[8, 17]]}, ("parts[0]",)),
    ({"parts": None}, ("parts",)),
    ({"closed_dates": ["2026-02-30"]}, ("closed_dates", "2026-02-30")),
    ({"closed_dates": ["20260430"]}, ("closed_dates", "20260430")),
    ({"closed_dates": ["2026-W18-4"]}, ("closed_dates",)),
    ({"closed_dates": "2026-04-30"}, ("closed_dates",)),
    ({"public_holidays": "XX"}, ("public_holidays", "'XX'")),
    ({"public_holidays": 84}, ("public_holidays", "84")),
    ({"public_holidays": ""}, ("public_holidays",)),
])
def test_window_validation_names_the_field(data: dict[str, object], words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as error:
        CallingWindow.from_dict(data)
    assert str(error.value).startswith("calling window: ")
    for word in words:
        assert word in str(error.value)


def test_window_constructor_validates_and_normalizes() -> None:
    window = CallingWindow(weekdays=[4, 0], parts=[AFTERNOON, MORNING], closed_dates=[date(2026, 1, 2)])
    assert window.weekdays == frozenset({0, 4})
    assert window.parts == (MORNING, AFTERNOON)
    assert window.closed_dates == frozenset({date(2026, 1, 2)})
    assert window == CallingWindow(weekdays=frozenset({0, 4}), parts=(MORNING, AFTERNOON),
                                   closed_dates=frozenset({date(2026, 1, 2)}))
    adjacent = CallingWindow(parts=(DayPart(time(8), time(12)), DayPart(time(12), time(17))))
    assert len(adjacent.parts) == 2
    with pytest.raises(ValueError, match="closed_dates"):
        CallingWindow(closed_dates=frozenset({datetime(2026, 1, 2)}))
    with pytest.raises(ValueError, match="parts"):
        CallingWindow(parts=(("08:00", "17:00"),))
    with pytest.raises(ValueError, match="timezone"):
        CallingWindow(timezone="Nowhere/Else")
    with pytest.raises(ValueError, match="expected an object"):
        CallingWindow.from_dict([["08:00", "17:00"]])  # type: ignore[arg-type]


@pytest.mark.parametrize("data, words", [
    ({"max_attempts": 21}, ("max_attempts", "between 1 and 20")),
    ({"max_attempts": 0}, ("max_attempts", "between 1 and 20")),
    ({"max_attempts": True}, ("max_attempts", "True")),
    ({"max_attempts": 2.5}, ("max_attempts", "2.5")),
    ({"delays": {"busy": -1}}, ("delays.busy", "-1")),
    ({"delays": {"busy": float("nan")}}, ("delays.busy", "nan")),
    ({"delays": {"busy": float("-inf")}}, ("delays.busy", "-inf")),
    ({"delays": {"busy": 1e300}}, ("delays.busy",)),
    ({"delays": {"busy": True}}, ("delays.busy", "True")),
    ({"delays": {"no answer": 60}}, ("delays", "unknown outcome", "'no answer'")),
    ({"min_gap_s": -60}, ("min_gap_s", "-60")),
    ({"min_gap_s": None}, ("min_gap_s", "None")),
    ({"min_gap_s": float("inf")}, ("min_gap_s", "inf")),
    ({"min_gap_s": "a day"}, ("min_gap_s", "'a day'")),
    ({"max_attempt": 3}, ("unknown key", "'max_attempt'")),
    ({"min_gap": 3600}, ("unknown key", "'min_gap'")),
])
def test_retry_validation_names_the_field(data: dict[str, object], words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as error:
        RetryPolicy.from_dict(data)
    assert str(error.value).startswith("retry policy: ")
    for word in words:
        assert word in str(error.value)


def test_retry_constructor_rejects_negative_durations() -> None:
    with pytest.raises(ValueError, match="min_gap"):
        RetryPolicy(min_gap=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(delays={Outcome.BUSY: timedelta(seconds=-1)})


# --- properties ----------------------------------------------------------------------------------

ZONES = ["Asia/Ho_Chi_Minh", "UTC", "America/New_York", "Europe/London"]
# Daylight-saving changes in New York and London, 2025–2028, and Tết: the interesting days.
HOT_DATES = [date(2025, 3, 9), date(2025, 11, 2), date(2026, 3, 8), date(2026, 11, 1),
             date(2027, 3, 14), date(2027, 11, 7), date(2028, 3, 12), date(2028, 11, 5),
             date(2025, 3, 30), date(2025, 10, 26), date(2026, 3, 29), date(2026, 10, 25),
             date(2027, 3, 28), date(2027, 10, 31), date(2028, 3, 26), date(2028, 10, 29),
             date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6), date(2028, 1, 26)]
MINUTE = timedelta(minutes=1)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Real instants (aware UTC, microseconds included), often close to the hot dates."""
    anywhere = draw(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)))
    near = datetime.combine(draw(st.sampled_from(HOT_DATES)), time(0)) + timedelta(
        seconds=draw(st.integers(-3 * 86400, 2 * 86400)), microseconds=draw(st.integers(0, 999999)))
    return draw(st.sampled_from([anywhere, near])).replace(tzinfo=UTC)


@st.composite
def day_parts(draw: st.DrawFn, min_parts: int = 1) -> tuple[DayPart, ...]:
    # Whole minutes, so every opening of the window falls on a whole UTC minute in these
    # zones and a minute-by-minute scan cannot miss one.
    count = draw(st.integers(min_parts, 3))
    bounds = sorted(draw(st.lists(st.integers(0, 24 * 60 - 1), min_size=2 * count, max_size=2 * count,
                                  unique=True)))
    parts = []
    for start, end in zip(bounds[::2], bounds[1::2]):
        # Sometimes touch the next part: adjacent parts are allowed.
        parts.append(DayPart(time(start // 60, start % 60), time(end // 60, end % 60)))
    return tuple(parts)


@st.composite
def windows(draw: st.DrawFn, near: datetime, min_parts: int = 1) -> CallingWindow:
    return CallingWindow(
        timezone=draw(st.sampled_from(ZONES)),
        weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        parts=draw(day_parts(min_parts)),
        closed_dates=frozenset(near.date() + timedelta(days=n)
                               for n in draw(st.sets(st.integers(-1, 20), max_size=8))),
        public_holidays=draw(st.sampled_from(["VN", None])),
    )


def assert_closed_between(window: CallingWindow, start: datetime, stop: datetime) -> None:
    """No open instant in [start, stop): ``start`` and every whole minute after it are closed."""
    assert not window.is_open(start)
    minute = start.replace(second=0, microsecond=0) + MINUTE
    while minute < stop:
        assert not window.is_open(minute), minute
        minute += MINUTE


def first_open_elsewhere(window: CallingWindow, part: DayPart, start: datetime, stop: datetime) -> datetime | None:
    """Brute force: the first instant in [start, stop] that is open and not in ``part``."""
    moment = start
    while moment <= stop:
        if window.is_open(moment) and window.day_part(moment) != part:
            return moment
        moment = (moment.replace(second=0, microsecond=0) + MINUTE) if moment == start else moment + MINUTE
    return None


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_property_next_open_is_the_earliest_open_instant(data: st.DataObject) -> None:
    now = data.draw(instants())
    window = data.draw(windows(now))
    result = window.next_open(now)
    scan_until = now + timedelta(days=4)
    event("open now" if result == now else "opens within 4 days" if result and result < scan_until else "later")
    if result is None:
        assert_closed_between(window, now, scan_until)
        return
    assert result >= now and window.is_open(result) and result.tzinfo == UTC
    if result > now:
        assert not window.is_open(result - timedelta(microseconds=1))
        assert_closed_between(window, now, min(result, scan_until))
    else:
        assert window.is_open(now)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), delay_s=st.integers(0, 3 * 86400),
       outcome=st.sampled_from([o for o in Outcome if o not in FINAL_OUTCOMES]),
       attempts=st.integers(0, 4), with_previous=st.booleans())
def test_property_retries_are_open_and_not_before_the_delay(
        data: st.DataObject, delay_s: int, outcome: Outcome, attempts: int, with_previous: bool) -> None:
    now = data.draw(instants())
    window = data.draw(windows(now))
    delay = timedelta(seconds=delay_s)
    policy = RetryPolicy(max_attempts=3, delays={outcome: delay})
    previous = now - timedelta(minutes=data.draw(st.integers(0, 600))) if with_previous else None
    result = policy.next_attempt(outcome, attempts, now, window, previous_start=previous)
    if attempts >= 3:
        assert result is None
        return
    if result is not None:
        assert result >= now + delay and window.is_open(result)
    if outcome is not Outcome.NO_ANSWER or previous is None:
        assert result == window.next_open(now + delay)
    elif result is None:
        assert window.next_open(now + delay) is None


@settings(max_examples=200, deadline=None)
@given(data=st.data(), delay_s=st.integers(0, 2 * 86400))
def test_property_no_answer_retries_move_to_another_day_part(data: st.DataObject, delay_s: int) -> None:
    now = data.draw(instants())
    window = data.draw(windows(now, min_parts=2))
    part = data.draw(st.sampled_from(window.parts))
    # The previous attempt started in that part, on the local day of ``now`` or the one before.
    zone = ZoneInfo(window.timezone)
    day = now.astimezone(zone).date() - timedelta(days=data.draw(st.integers(0, 1)))
    start_min = part.start.hour * 60 + part.start.minute
    end_min = part.end.hour * 60 + part.end.minute
    wall = data.draw(st.integers(start_min, end_min - 1))
    previous = datetime.combine(day, time(wall // 60, wall % 60), tzinfo=zone).astimezone(UTC)
    assume(window.day_part(previous) == part)      # not a wall time a DST change skipped
    earliest = now + timedelta(seconds=delay_s)

    policy = RetryPolicy(delays={Outcome.NO_ANSWER: timedelta(seconds=delay_s)})
    result = policy.next_attempt(Outcome.NO_ANSWER, 1, now, window, previous_start=previous)

    elsewhere = first_open_elsewhere(window, part, earliest, earliest + timedelta(days=7))
    event("moved to another part" if result != window.next_open(earliest) else "earliest instant kept")
    if elsewhere is not None:
        assert result == elsewhere
        assert window.day_part(result) != part
    else:
        assert result == window.next_open(earliest)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["08:00", "17:00", "2026-02-17", "VN", "UTC", "busy", "no_answer", "Asia/Ho_Chi_Minh"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(window=st.dictionaries(st.sampled_from(["timezone", "weekdays", "parts", "closed_dates",
                                               "public_holidays", "other"]), JSON, max_size=4),
       retry=st.dictionaries(st.sampled_from(["max_attempts", "delays", "min_gap_s", "other"]), JSON, max_size=3))
def test_property_bad_json_raises_only_value_error(window: dict[str, object], retry: dict[str, object]) -> None:
    # Campaign creation turns ValueError into a 400; anything else would be a 500.
    for parse, data in ((CallingWindow.from_dict, window), (RetryPolicy.from_dict, retry)):
        try:
            parsed = parse(data)
        except ValueError:
            continue
        assert type(parsed).from_dict(parsed.to_dict()) == parsed


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_property_open_until_ends_the_open_stretch(data: st.DataObject) -> None:
    """The dispatcher places a claimed call only before ``open_until``: every instant from
    now up to it is open, so a call that starts in time starts inside the window."""
    now = data.draw(instants())
    window = data.draw(windows(now))
    until = window.open_until(now)
    if not window.is_open(now):
        assert until is None
        return
    assert until is not None and until >= now
    fraction = data.draw(st.floats(0, 1, exclude_max=True))
    inside = now + (until - now) * fraction
    assert window.is_open(inside) or inside == until


def test_open_until_is_the_end_of_the_day_part() -> None:
    window = CallingWindow(parts=(DayPart(time(8), time(11, 30)), DayPart(time(13, 30), time(17))),
                           public_holidays=None)
    morning = datetime(2026, 11, 17, 3, tzinfo=UTC)                        # Tue 10:00 in Hanoi
    assert window.open_until(morning) == datetime(2026, 11, 17, 4, 30, tzinfo=UTC)
    assert window.open_until(datetime(2026, 11, 17, 5, tzinfo=UTC)) is None   # 12:00, lunch
    assert window.open_until(datetime(2026, 11, 17, 9, 59, tzinfo=UTC)) == datetime(2026, 11, 17, 10, tzinfo=UTC)
