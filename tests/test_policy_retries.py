"""The retry policy: outcomes that end a contact, the attempt limit, delays moved into the
calling window, day-part rotation after no answer, the per-number gap, the JSON form and its
validation, and properties over random windows. (Calling windows themselves are tested in
test_policy_windows.py, whose strategies these properties share.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from ivr_service.core.policy import FINAL_OUTCOMES, CallingWindow, DayPart, Outcome, RetryPolicy

from .test_policy_windows import (
    AFTERNOON,
    DEFAULT,
    INSTANTS,
    JSON,
    MINUTE,
    MORNING,
    NO_HOLIDAYS,
    any_windows,
    hanoi,
    instants,
    utc,
    windows,
)

TWO_PARTS = CallingWindow(parts=(MORNING, AFTERNOON))
POLICY = RetryPolicy()
TUE_0900 = utc(2026, 11, 24, 2, 0)       # Tue 09:00 local


# --- which outcomes are retried, and how often ---------------------------------------------------

@pytest.mark.parametrize("outcome", sorted(FINAL_OUTCOMES))
def test_final_outcomes_are_never_retried(outcome: Outcome) -> None:
    assert POLICY.next_attempt(outcome, 1, TUE_0900, NO_HOLIDAYS) is None


def test_final_outcomes_are_completed_refused_invalid_number() -> None:
    assert FINAL_OUTCOMES == {Outcome.COMPLETED, Outcome.REFUSED, Outcome.INVALID_NUMBER}


@pytest.mark.parametrize("outcome", [Outcome.BUSY, Outcome.NO_ANSWER, Outcome.MACHINE, Outcome.FAILED])
def test_max_attempts_reached_stops(outcome: Outcome) -> None:
    assert POLICY.max_attempts == 3
    assert POLICY.next_attempt(outcome, 2, TUE_0900, NO_HOLIDAYS) is not None
    assert POLICY.next_attempt(outcome, 3, TUE_0900, NO_HOLIDAYS) is None
    assert POLICY.next_attempt(outcome, 4, TUE_0900, NO_HOLIDAYS) is None


def test_max_attempts_bounds() -> None:
    assert RetryPolicy.from_dict({"max_attempts": 20}).max_attempts == 20
    assert RetryPolicy.from_dict({"max_attempts": 1}).max_attempts == 1
    assert RetryPolicy.from_dict({"max_attempts": 4.0}).max_attempts == 4


def test_outcome_without_a_delay_is_not_retried() -> None:
    policy = RetryPolicy(delays={Outcome.BUSY: timedelta(minutes=5)})
    assert policy.next_attempt(Outcome.NO_ANSWER, 1, TUE_0900, NO_HOLIDAYS) is None
    assert policy.next_attempt(Outcome.BUSY, 1, TUE_0900, NO_HOLIDAYS) == TUE_0900 + timedelta(minutes=5)


# --- when: the delay, moved into the window ---------------------------------------------------------

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
    result = POLICY.next_attempt(outcome, 1, now, NO_HOLIDAYS)
    assert result == expected
    assert NO_HOLIDAYS.is_open(result)


# --- day-part rotation after no answer -------------------------------------------------------------

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


# --- the per-number gap -----------------------------------------------------------------------------

def test_min_gap_defaults_to_24_hours_and_round_trips() -> None:
    assert RetryPolicy().min_gap == timedelta(hours=24)
    assert RetryPolicy().to_dict()["min_gap_s"] == 86400
    for seconds in (0, 3600, 86400.0):
        policy = RetryPolicy.from_dict({"min_gap_s": seconds})
        assert policy.min_gap == timedelta(seconds=seconds)
        assert RetryPolicy.from_dict(policy.to_dict()) == policy


# --- the JSON form and its validation --------------------------------------------------------------

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


def test_retry_policy_to_dict_has_every_key() -> None:
    assert RetryPolicy().to_dict() == {
        "max_attempts": 3, "min_gap_s": 86400.0,
        "delays": {"busy": 900.0, "no_answer": 7200.0, "failed": 1800.0, "machine": 10800.0,
                   "partial": 86400.0, "break_off": 86400.0, "canceled": 1800.0}}


def test_old_retry_json_without_min_gap_loads_with_the_defaults() -> None:
    old_retry = {"max_attempts": 3, "delays": {"busy": 900.0, "no_answer": 7200.0}}
    assert RetryPolicy.from_dict(old_retry) == RetryPolicy()
    assert RetryPolicy.from_dict(old_retry).min_gap == timedelta(hours=24)


@pytest.mark.parametrize("data, words", [
    ({"max_attempts": 21}, ("max_attempts", "between 1 and 20")),
    ({"max_attempts": 0}, ("max_attempts", "between 1 and 20")),
    ({"max_attempts": -2}, ("max_attempts",)),
    ({"max_attempts": True}, ("max_attempts", "True")),
    ({"max_attempts": 2.5}, ("max_attempts", "2.5")),
    ({"max_attempts": None}, ("max_attempts",)),
    ({"max_attempts": "three"}, ("max_attempts", "three")),
    ({"delays": {"busy": -1}}, ("delays.busy", "-1")),
    ({"delays": {"busy": "soon"}}, ("delays.busy", "bad delay", "soon")),
    ({"delays": {"busy": None}}, ("delays.busy", "bad delay", "None")),
    ({"delays": {"busy": float("nan")}}, ("delays.busy", "nan")),
    ({"delays": {"busy": float("inf")}}, ("delays.busy", "bad delay", "inf")),
    ({"delays": {"busy": float("-inf")}}, ("delays.busy", "-inf")),
    ({"delays": {"busy": 1e300}}, ("delays.busy",)),
    ({"delays": {"busy": True}}, ("delays.busy", "True")),
    ({"delays": {"no answer": 60}}, ("delays", "unknown outcome", "'no answer'")),
    ({"delays": {"sleeping": 60}}, ("delays", "unknown outcome", "sleeping")),
    ({"delays": ["busy", 60]}, ("delays",)),
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


# --- properties -------------------------------------------------------------------------------------

def first_open_elsewhere(window: CallingWindow, part: DayPart, start: datetime, stop: datetime) -> datetime | None:
    """Brute force: the first instant in [start, stop] that is open and not in ``part``."""
    moment = start
    while moment <= stop:
        if window.is_open(moment) and window.day_part(moment) != part:
            return moment
        moment = (moment.replace(second=0, microsecond=0) + MINUTE) if moment == start else moment + MINUTE
    return None


@settings(max_examples=300, deadline=None)
@given(window=any_windows(), now=INSTANTS, delay=st.timedeltas(timedelta(0), timedelta(days=3)),
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


# See WINDOW_JSON in test_policy_windows.py.
OUTCOME_NAMES = [o.value for o in Outcome]
RETRY_JSON = st.fixed_dictionaries({}, optional={
    "max_attempts": st.integers(-1, 25) | st.sampled_from([2.0, 2.5, "3", True, None]),
    "delays": st.dictionaries(st.sampled_from(OUTCOME_NAMES) | st.text(max_size=8),
                              st.integers(-10, 10**8) | st.floats() | JSON, max_size=3),
    "min_gap_s": st.integers(-10, 10**8) | st.floats() | st.sampled_from(["3600", None, True]),
}) | st.dictionaries(st.sampled_from(["max_attempts", "delays", "min_gap_s", "other"]), JSON, max_size=3)


@settings(max_examples=300, deadline=None)
@given(data=RETRY_JSON)
@example(data={})
@example(data={"max_attempts": 20, "delays": {"busy": 0.5, "machine": 31_622_400}, "min_gap_s": 0})
def test_property_bad_retry_json_raises_only_value_error(data: dict[str, object]) -> None:
    # Campaign creation turns ValueError into a 400; anything else would be a 500.
    try:
        parsed = RetryPolicy.from_dict(data)
    except ValueError as error:
        event(f"rejected: {str(error).split(':')[1].strip().split(' ')[0]}")
        return
    event("parsed" if parsed == RetryPolicy() else "parsed, not the default")
    assert RetryPolicy.from_dict(parsed.to_dict()) == parsed
