"""Calling windows: weekdays and hours in the campaign's time zone (Monday–Saturday 08:00–17:00
in Asia/Ho_Chi_Minh, UTC+07:00 all year, by default), next_open and open_until, public holidays,
daylight saving elsewhere, the JSON form and its validation, and properties over random windows.
(The retry policy, which uses the window, is in test_policy_retries.py.)

Holiday facts are those of the pinned holidays==0.109 package.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from ivr_service.core.policy import CallingWindow, DayPart

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT = CallingWindow()
# Tests about weekdays and hours use dates around Tuesday 2026-11-24, which is Vietnam Culture
# Day (a public holiday from 2026): they turn holidays off, and holidays are tested on their own.
NO_HOLIDAYS = CallingWindow(public_holidays=None)
MORNING, AFTERNOON = DayPart(time(8), time(11, 30)), DayPart(time(13, 30), time(17))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hanoi(*args: int) -> datetime:
    return datetime(*args, tzinfo=HCM)


# --- weekdays and hours ------------------------------------------------------------------------

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
    assert NO_HOLIDAYS.timezone == "Asia/Ho_Chi_Minh"
    assert NO_HOLIDAYS.weekdays == frozenset(range(6))
    assert NO_HOLIDAYS.is_open(instant) is is_open


def test_sunday_closed_and_the_day_ends_at_17_00() -> None:
    assert not DEFAULT.is_open(hanoi(2026, 11, 29, 10, 0))              # Sunday
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 16, 59))                  # Wednesday
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 16, 59, 59, 999999))
    assert not DEFAULT.is_open(hanoi(2026, 11, 25, 17, 0))
    assert not DEFAULT.is_open(hanoi(2026, 11, 25, 7, 59))
    assert DEFAULT.is_open(hanoi(2026, 11, 25, 8, 0))


def test_is_open_accepts_any_aware_time_and_rejects_naive() -> None:
    assert NO_HOLIDAYS.is_open(datetime(2026, 11, 24, 8, 0, tzinfo=HCM))
    assert not NO_HOLIDAYS.is_open(datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=-5))))  # 20:00 local
    with pytest.raises(ValueError, match="timezone-aware"):
        NO_HOLIDAYS.is_open(datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        NO_HOLIDAYS.next_open(datetime(2026, 11, 24, 9, 0))


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
    result = NO_HOLIDAYS.next_open(now)
    assert result == expected
    assert result.utcoffset() == timedelta(0)
    assert NO_HOLIDAYS.is_open(result)


def test_next_open_of_a_local_time_is_returned_in_utc() -> None:
    result = NO_HOLIDAYS.next_open(datetime(2026, 11, 24, 18, 0, tzinfo=HCM))
    assert result == utc(2026, 11, 25, 1, 0) and result.tzinfo == UTC
    inside = NO_HOLIDAYS.next_open(datetime(2026, 11, 24, 9, 0, tzinfo=HCM))
    assert inside.tzinfo == UTC and inside == utc(2026, 11, 24, 2, 0)


def test_two_day_parts_with_a_lunch_break() -> None:
    window = CallingWindow(parts=(DayPart(time(13, 30), time(17)), DayPart(time(8), time(11, 30))),
                           public_holidays=None)
    assert window.is_open(utc(2026, 11, 24, 4, 0))           # 11:00 local
    assert not window.is_open(utc(2026, 11, 24, 5, 0))       # 12:00 local
    assert window.next_open(utc(2026, 11, 24, 5, 0)) == utc(2026, 11, 24, 6, 30)    # → 13:30 local
    assert window.next_open(utc(2026, 11, 23, 22, 0)) == utc(2026, 11, 24, 1, 0)    # 05:00 → 08:00, parts unsorted


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


# --- open_until: where the open stretch ends ----------------------------------------------------

def test_open_until_is_the_end_of_the_day_part() -> None:
    window = CallingWindow(parts=(DayPart(time(8), time(11, 30)), DayPart(time(13, 30), time(17))),
                           public_holidays=None)
    morning = datetime(2026, 11, 17, 3, tzinfo=UTC)                        # Tue 10:00 in Hanoi
    assert window.open_until(morning) == datetime(2026, 11, 17, 4, 30, tzinfo=UTC)
    assert window.open_until(datetime(2026, 11, 17, 5, tzinfo=UTC)) is None   # 12:00, lunch
    assert window.open_until(datetime(2026, 11, 17, 9, 59, tzinfo=UTC)) == datetime(2026, 11, 17, 10, tzinfo=UTC)


# A daylight-saving change while the part is open takes the clock out of it before the wall
# clock reaches the part's end: London jumps from 01:00 to 02:00 on 2026-03-29, so a part that
# ends at 01:30 ends at 01:00 GMT; New York goes back from 02:00 to 01:00 on 2026-11-01, so a
# part from 01:15 is left at 06:00 UTC, when the clock shows 01:00 again.
LONDON_SPRING = CallingWindow(timezone="Europe/London", weekdays=frozenset(range(7)),
                              parts=(DayPart(time(0, 30), time(1, 30)),), public_holidays=None)
NEW_YORK_AUTUMN = CallingWindow(timezone="America/New_York", weekdays=frozenset(range(7)),
                                parts=(DayPart(time(1, 15), time(3)),), public_holidays=None)


@pytest.mark.parametrize("window, now, until", [
    (LONDON_SPRING, utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1)),
    (replace(NEW_YORK_AUTUMN, parts=(DayPart(time(1), time(2, 30)),)), utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7)),
    (NEW_YORK_AUTUMN, utc(2026, 11, 1, 5, 20), utc(2026, 11, 1, 6)),
    # The jump lands inside the part: the stretch goes on to the part's end (03:00 BST).
    (replace(LONDON_SPRING, parts=(DayPart(time(0, 30), time(3)),)), utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 2)),
], ids=["london-spring", "new-york-spring", "new-york-autumn", "jump-inside-the-part"])
def test_open_until_ends_where_a_daylight_saving_change_leaves_the_part(
        window: CallingWindow, now: datetime, until: datetime) -> None:
    assert window.is_open(now)
    assert window.open_until(now) == until
    assert window.is_open(until - timedelta(microseconds=1)) and window.day_part(until) != window.day_part(now)


# --- the JSON form and its validation ------------------------------------------------------------

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


def test_old_window_json_without_public_holidays_loads_with_the_defaults() -> None:
    old_window = {"timezone": "Asia/Ho_Chi_Minh", "weekdays": [0, 1, 2, 3, 4, 5],
                  "parts": [["08:00:00", "17:00:00"]], "closed_dates": []}
    assert CallingWindow.from_dict(old_window) == CallingWindow()
    assert CallingWindow.from_dict(old_window).public_holidays == "VN"


def test_public_holidays_and_sorted_parts_round_trip() -> None:
    window = CallingWindow(parts=(AFTERNOON, MORNING), public_holidays=None)
    data = window.to_dict()
    assert data["public_holidays"] is None
    assert data["parts"] == [["08:00:00", "11:30:00"], ["13:30:00", "17:00:00"]]   # sorted
    assert CallingWindow.from_dict(data) == window
    assert CallingWindow.from_dict({"public_holidays": "TH"}).public_holidays == "TH"


@pytest.mark.parametrize("data, words", [
    ({"timezone": "Mars/Olympus"}, ("timezone", "Mars/Olympus")),
    ({"timezone": "Asia/Hanoi_Typo"}, ("unknown time zone", "Asia/Hanoi_Typo")),
    ({"timezone": None}, ("unknown time zone",)),
    ({"timezone": 7}, ("unknown time zone",)),
    ({"tz": "UTC"}, ("unknown key", "'tz'")),
    ({"weekdays": []}, ("weekdays", "at least one")),
    ({"weekdays": [7]}, ("weekdays", "7")),
    ({"weekdays": [-1]}, ("weekdays", "-1")),
    ({"weekdays": [True]}, ("weekdays", "True")),
    ({"weekdays": ["1"]}, ("weekdays", "'1'")),
    ({"weekdays": ["monday"]}, ("weekdays",)),
    ({"weekdays": [1.0]}, ("weekdays", "1.0")),
    ({"weekdays": "0123"}, ("weekdays",)),
    ({"weekdays": 5}, ("weekdays",)),
    ({"weekdays": None}, ("weekdays",)),
    ({"parts": []}, ("parts", "at least one")),
    ({"parts": [["08:00", "12:00"], ["11:00", "17:00"]]}, ("parts", "overlaps", "08:00:00–12:00:00")),
    ({"parts": [["08:00", "17:00"], ["08:00", "17:00"]]}, ("parts", "overlaps")),
    ({"parts": [["17:00", "08:00"]]}, ("parts[0]", "start must be before end")),
    ({"parts": [["08:00", "12:00"], ["13:00", "xx"]]}, ("parts[1]",)),
    ({"parts": [["08:00", "25:00"]]}, ("parts[0]",)),
    ({"parts": [["08:00+07:00", "17:00"]]}, ("parts[0]", "UTC offset")),
    ({"parts": [["08:00"]]}, ("parts[0]",)),
    ({"parts": [[8, 17]]}, ("parts[0]",)),
    ({"parts": "08:00-17:00"}, ("parts",)),
    ({"parts": None}, ("parts",)),
    ({"closed_dates": ["2026-02-30"]}, ("closed_dates", "2026-02-30")),
    ({"closed_dates": ["20260430"]}, ("closed_dates", "20260430")),
    ({"closed_dates": ["30/04/2026"]}, ("closed_dates", "30/04/2026")),
    ({"closed_dates": [20260430]}, ("closed_dates", "20260430")),
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
    for start, end in zip(bounds[::2], bounds[1::2], strict=True):
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


def assert_in_part_between(window: CallingWindow, part: DayPart, start: datetime, stop: datetime) -> None:
    """Open and in ``part`` throughout [start, stop): ``start`` and every whole minute after it."""
    moment = start
    while moment < stop:
        assert window.is_open(moment) and window.day_part(moment) == part, moment
        moment = (moment.replace(second=0, microsecond=0) + MINUTE) if moment == start else moment + MINUTE


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


@st.composite
def windows_and_instants(draw: st.DrawFn) -> tuple[CallingWindow, datetime]:
    now = draw(instants())
    return draw(windows(now)), now


def _changes() -> list[tuple[str, datetime]]:
    """(zone, instant) of each daylight-saving change of the ``ZONES`` on the ``HOT_DATES``
    (all on a whole UTC hour)."""
    found = []
    for zone in ZONES:
        for day in HOT_DATES:
            hours = [datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=h) for h in range(13)]
            offsets = [h.astimezone(ZoneInfo(zone)).utcoffset() for h in hours]
            found += [(zone, hours[i]) for i in range(1, 13) if offsets[i] != offsets[i - 1]]
    return found


CHANGES = _changes()


@st.composite
def stretches_across_a_change(draw: st.DrawFn) -> tuple[CallingWindow, datetime]:
    """An instant up to two hours before a daylight-saving change, in an open day part that
    ends up to four hours (of wall clock) later: one in four ends in the skipped or repeated hour."""
    zone, change = draw(st.sampled_from(CHANGES))
    now = change - timedelta(minutes=draw(st.integers(1, 120)), microseconds=draw(st.integers(0, 999999)))
    wall = now.astimezone(ZoneInfo(zone))
    minute = wall.hour * 60 + wall.minute
    assume(minute < 24 * 60 - 1)      # a part must end by 23:59
    start = draw(st.integers(max(0, minute - 120), minute))
    end = draw(st.integers(minute + 1, min(24 * 60 - 1, minute + 240)))
    part = DayPart(time(start // 60, start % 60), time(end // 60, end % 60))
    return CallingWindow(timezone=zone, weekdays=frozenset(range(7)), parts=(part,), public_holidays=None), now


@settings(max_examples=300, deadline=None)
@given(case=windows_and_instants() | stretches_across_a_change())
# A daylight-saving change that takes the clock out of the part before its end. Random windows
# alone never drew one in 6 runs of 300 examples; stretches across a change draw it every run.
@example(case=(LONDON_SPRING, utc(2026, 3, 29, 0, 45)))
@example(case=(NEW_YORK_AUTUMN, utc(2026, 11, 1, 5, 20)))
def test_property_open_until_ends_the_open_stretch(case: tuple[CallingWindow, datetime]) -> None:
    """The dispatcher places a claimed call only before ``open_until``: every instant from
    now up to it is open, so a call that starts in time starts inside the window; and it is
    where the day part ends, not earlier."""
    window, now = case
    until = window.open_until(now)
    if not window.is_open(now):
        assert until is None
        return
    part = window.day_part(now)
    assert until is not None and until >= now and part is not None
    event("part left by a daylight-saving change" if window.day_part(until - MINUTE) == part
          and until.astimezone(ZoneInfo(window.timezone)).time() != part.end else "part ends")
    assert_in_part_between(window, part, now, until)
    if until > now:
        assert window.day_part(until) != part or not window.is_open(until)


# Windows with whole-second parts in zones with odd offsets (Kolkata +05:30, Kiritimati +14,
# Lord Howe's half-hour daylight saving), seen from instants expressed in other zones. Uniform
# instants over a year fell on a day with a daylight-saving change about 1 time in 100; half
# of them are now drawn within two days of one of this year's changes in these zones.
ANY_ZONES = st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Asia/Kolkata", "Pacific/Kiritimati", "America/Los_Angeles",
                             "Europe/London", "Australia/Lord_Howe"])
TIMES = st.times().map(lambda t: t.replace(microsecond=0))
CHANGES_2026 = [date(2026, 3, 8), date(2026, 11, 1), date(2026, 3, 29), date(2026, 10, 25),   # Los Angeles, London
                date(2026, 4, 5), date(2026, 10, 4)]                                            # Lord Howe


@st.composite
def any_day_parts(draw: st.DrawFn) -> tuple[DayPart, ...]:
    # Distinct sorted bounds paired up: parts that never overlap, without filtering.
    count = draw(st.integers(1, 2))
    bounds = sorted(draw(st.lists(TIMES, min_size=2 * count, max_size=2 * count, unique=True)))
    return tuple(DayPart(start, end) for start, end in zip(bounds[::2], bounds[1::2], strict=True))


@st.composite
def any_windows(draw: st.DrawFn) -> CallingWindow:
    return CallingWindow(
        timezone=draw(ANY_ZONES),
        weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        parts=draw(any_day_parts()),
        closed_dates=frozenset(draw(st.sets(st.dates(date(2025, 12, 20), date(2027, 1, 10)), max_size=10))),
    )


# Real instants, expressed in assorted zones. (Drawing local wall times directly would produce
# times inside DST gaps, which compare unequal to every instant under PEP 495.)
INSTANTS = st.builds(
    lambda t, zone: t.astimezone(zone),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
    | st.builds(lambda day, seconds: datetime.combine(day, time(0), tzinfo=UTC) + timedelta(seconds=seconds),
                st.sampled_from(CHANGES_2026), st.integers(-2 * 86400, 2 * 86400)),
    st.sampled_from([UTC, HCM, ZoneInfo("America/New_York"), timezone(timedelta(hours=-9, minutes=-30))]))


@settings(max_examples=400, deadline=None)
@given(window=any_windows(), now=INSTANTS)
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


# Random JSON under the known keys almost never got past the first key it names: in 1,000
# examples the time parser never rejected a day part and 3 windows parsed to anything but the
# default, so the round trip was checked on defaults (and 2 retry policies, none with a
# delay: random text is never an outcome's name). Plausible values for each key, right or
# slightly wrong, reach every check, and about 20 in 300 parse to a non-default value.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["08:00", "17:00", "2026-02-17", "VN", "UTC", "busy", "no_answer", "Asia/Ho_Chi_Minh"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
CLOCK = st.sampled_from(["08:00", "11:30", "12:00", "13:30", "17:00", "00:00", "23:59:59", "25:00", "8h",
                         "08:00+07:00"])
WINDOW_JSON = st.fixed_dictionaries({}, optional={
    "timezone": st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Europe/London", "Mars/Olympus", ""]),
    "weekdays": st.lists(st.integers(0, 6), max_size=7) | st.lists(st.integers(-1, 7), max_size=3),
    "parts": st.lists(st.lists(CLOCK | st.times().map(time.isoformat), min_size=2, max_size=2), max_size=3),
    "closed_dates": st.lists(st.dates().map(date.isoformat) | st.sampled_from(["2026-02-30", "20260430"]),
                             max_size=3),
    "public_holidays": st.sampled_from(["VN", "TH", "XX", None, ""]),
}) | st.dictionaries(st.sampled_from(["timezone", "weekdays", "parts", "closed_dates", "public_holidays", "other"]),
                     JSON, max_size=4)


@settings(max_examples=300, deadline=None)
@given(data=WINDOW_JSON)
@example(data={})
@example(data={"timezone": "UTC", "weekdays": [6, 0], "parts": [["13:30", "17:00"], ["08:00", "11:30"]],
               "closed_dates": ["2026-09-02"], "public_holidays": "TH"})
def test_property_bad_window_json_raises_only_value_error(data: dict[str, object]) -> None:
    # Campaign creation turns ValueError into a 400; anything else would be a 500.
    try:
        parsed = CallingWindow.from_dict(data)
    except ValueError as error:
        event(f"rejected: {str(error).split(':')[1].strip().split(' ')[0]}")
        return
    event("parsed" if parsed == CallingWindow() else "parsed, not the default")
    assert CallingWindow.from_dict(parsed.to_dict()) == parsed
