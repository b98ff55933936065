"""When a citizen may be contacted, and when to try again.

Times go in and out as aware UTC datetimes; windows are evaluated in the campaign's
time zone. Every function takes ``now`` instead of reading the clock.

Public holidays come from the ``holidays`` package (pinned; its data changes between
releases). With the default ``public_holidays="VN"`` and holidays 0.109 these days are
closed (observed and government-swapped days off included):

* 2026: 1 Jan; Tết 16–20 Feb (lunar New Year's Eve to the 4th day; Tết is 17 Feb);
  26 Apr (Hùng Kings, a Sunday) and 27 Apr (observed); 30 Apr; 1 May; 31 Aug (day off
  swapped with Saturday 22 Aug); 1–2 Sep; 24 Nov (Vietnam Culture Day, a holiday from 2026).
* 2027: 1 Jan; Tết 4–10 Feb (Tết is 6 Feb); 16 Apr; 30 Apr; 1 May and 3 May (observed);
  2–3 Sep; 24 Nov.

The package knows the statutory days only. The longer Tết break the government announces
each year for public agencies, and local days off, go in the window's ``closed_dates``:
one explicit, auditable list per campaign rather than a guessed number of extra days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays


class Outcome(StrEnum):
    """How one attempt ended, as far as the retry policy cares."""

    COMPLETED = "completed"        # interview finished
    PARTIAL = "partial"            # call dropped after enough answers; may resume
    BREAK_OFF = "break_off"        # call dropped early; may resume
    REFUSED = "refused"            # citizen declined: never again
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"            # answering machine
    FAILED = "failed"              # provider or network failure, may be transient
    INVALID_NUMBER = "invalid_number"  # permanent: number does not exist / not callable
    CANCELED = "canceled"


FINAL_OUTCOMES = frozenset({Outcome.COMPLETED, Outcome.REFUSED, Outcome.INVALID_NUMBER})

# How far next_open looks ahead, in local days after the day of ``now``.
SEARCH_DAYS = 366
# How far past ``now + delay`` a NO_ANSWER retry may move to reach another day part.
OTHER_PART_LOOKAHEAD = timedelta(days=7)
# Longest accepted delay or per-number gap: the window search does not reach further anyway,
# and bigger values would overflow datetime arithmetic in the callers.
MAX_DELAY = timedelta(days=366)
MAX_ATTEMPTS = 20

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WINDOW_KEYS = frozenset({"timezone", "weekdays", "parts", "closed_dates", "public_holidays"})
_RETRY_KEYS = frozenset({"max_attempts", "delays", "min_gap_s"})


def _check_keys(data: Any, label: str, allowed: frozenset[str]) -> None:
    """``data`` is a JSON object whose keys are all in ``allowed``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{label}: expected an object, got {data!r}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ValueError(f"{label}: unknown key {', '.join(map(repr, unknown))}; "
                         f"expected {', '.join(sorted(allowed))}")


@lru_cache(maxsize=64)
def _check_country(code: str) -> None:
    try:
        holidays.country_holidays(code)
    except NotImplementedError:
        raise ValueError(f"calling window: public_holidays: unknown country code {code!r}") from None


@lru_cache(maxsize=256)
def _holiday_dates(country: str, year: int) -> frozenset[date]:
    # Neighbouring years too: a holiday observed on a later day can move into the next year.
    calendar = holidays.country_holidays(country, years=(year - 1, year, year + 1))
    return frozenset(d for d in calendar if d.year == year)


@lru_cache(maxsize=4096)
def _offset_change(tz: str, day: date) -> datetime | None:
    """The instant (UTC) the zone's offset changes, if its wall clock then shows ``day``.

    Searches the 52 hours whose instants can show a wall time on ``day`` (offsets lie within
    −12 h and +14 h) and assumes at most one change in them, true of current tz data.
    """
    zone = ZoneInfo(tz)
    low = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=15)
    span = 52 * 3600
    before = low.astimezone(zone).utcoffset()
    if (low + timedelta(seconds=span)).astimezone(zone).utcoffset() == before:
        return None
    lo, hi = 0, span   # offset unchanged at lo, changed at hi; tz data changes on whole seconds
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (low + timedelta(seconds=mid)).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    change = low + timedelta(seconds=hi)
    return change if change.astimezone(zone).date() == day else None


@dataclass(frozen=True)
class DayPart:
    """Local wall-clock times ``[start, end)`` in which attempts may start."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise ValueError(f"day part {name}: expected a time, got {value!r}")
            if value.tzinfo is not None:
                raise ValueError(f"day part {name}: expected a local time without a UTC offset, got {value}")
        if not self.start < self.end:
            raise ValueError(f"day part {self.start}–{self.end}: start must be before end")

    def contains(self, wall: time) -> bool:
        return self.start <= wall < self.end


@dataclass(frozen=True)
class CallingWindow:
    """Weekdays (0 = Monday) and day parts when attempts may start, in ``timezone``.

    A day is closed when its weekday is not listed, when it is in ``closed_dates``, or
    when it is a public holiday of the country ``public_holidays`` (a ``holidays`` package
    code; None turns holidays off). Day parts are sorted and must not overlap. Wall times
    that a daylight-saving change repeats are open twice; those it skips never occur.
    """

    timezone: str = "Asia/Ho_Chi_Minh"
    weekdays: frozenset[int] = frozenset(range(6))          # Monday–Saturday
    parts: tuple[DayPart, ...] = (DayPart(time(8), time(17)),)  # Decree 91/2020: calls 08–17
    closed_dates: frozenset[date] = frozenset()
    public_holidays: str | None = "VN"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)  # an unknown zone would otherwise fail only when the worker dials
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"calling window: timezone: unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "weekdays", _weekdays(self.weekdays))
        object.__setattr__(self, "parts", _parts(self.parts))
        object.__setattr__(self, "closed_dates", _closed_dates(self.closed_dates))
        if self.public_holidays is not None:
            if not isinstance(self.public_holidays, str) or not self.public_holidays:
                raise ValueError("calling window: public_holidays: expected a country code such as 'VN' "
                                 f"or null, got {self.public_holidays!r}")
            _check_country(self.public_holidays)

    @classmethod
    def always_open(cls, tz: str = "Asia/Ho_Chi_Minh") -> CallingWindow:
        """Every instant of every day, holidays included (simulations and tests)."""
        return cls(timezone=tz, weekdays=frozenset(range(7)),
                   parts=(DayPart(time(0), time(23, 59, 59, 999999)),), public_holidays=None)

    def _local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.astimezone(ZoneInfo(self.timezone))

    def is_holiday(self, day: date) -> bool:
        return self.public_holidays is not None and day in _holiday_dates(self.public_holidays, day.year)

    def _day_open(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.closed_dates and not self.is_holiday(day)

    def day_part(self, instant: datetime) -> DayPart | None:
        """The day part holding ``instant``'s local wall time, whether or not its day is open."""
        wall = self._local(instant).time()
        return next((p for p in self.parts if p.contains(wall)), None)

    def is_open(self, now: datetime) -> bool:
        local = self._local(now)
        if not self._day_open(local.date()):
            return False
        wall = local.time()
        return any(p.contains(wall) for p in self.parts)

    def open_until(self, now: datetime) -> datetime | None:
        """When the open stretch holding ``now`` ends (UTC): the end of its day part that
        day. None when the window is closed at ``now``."""
        if not self.is_open(now):
            return None
        local = self._local(now)
        part = self.day_part(now)
        assert part is not None
        zone = ZoneInfo(self.timezone)
        end = datetime.combine(local.date(), part.end, tzinfo=zone).replace(fold=local.fold).astimezone(UTC)
        # A daylight-saving change before that end can move the clock out of the part (past
        # an end in the skipped hour, or back before its start): the stretch ends there.
        change = _offset_change(self.timezone, local.date())
        if change is not None and now < change < end and self.day_part(change) != part:
            end = change
        # A daylight-saving jump inside the part can put the wall-clock end before now.
        return end if end > now else now

    def next_open(self, now: datetime) -> datetime | None:
        """The earliest instant at or after ``now`` inside the window, in UTC.

        None when the window stays closed for the next 366 days.
        """
        return self._next_open(now, SEARCH_DAYS)

    def _next_open(self, now: datetime, days: int) -> datetime | None:
        local = self._local(now)
        start_utc = now.astimezone(UTC)
        if self.is_open(now):
            return start_utc
        zone = ZoneInfo(self.timezone)
        for offset in range(days):
            day = local.date() + timedelta(days=offset)
            if not self._day_open(day):
                continue
            # The window opens where the wall clock reaches a part's start (the first or,
            # when a daylight-saving change repeats it, the second time), or where the
            # offset changes and the clock jumps into a part (a start the change skips).
            candidates = [datetime.combine(day, p.start, tzinfo=zone).replace(fold=fold).astimezone(UTC)
                          for p in self.parts for fold in (0, 1)]
            change = _offset_change(self.timezone, day)
            if change is not None:
                candidates.append(change)
            found = [c for c in candidates
                     if c >= start_utc and c.astimezone(zone).date() == day and self.is_open(c)]
            if found:
                return min(found)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekdays": sorted(self.weekdays),
            "parts": [[p.start.isoformat(), p.end.isoformat()] for p in self.parts],
            "closed_dates": sorted(d.isoformat() for d in self.closed_dates),
            "public_holidays": self.public_holidays,
        }

    @classmethod
    def of_campaign(cls, window: Mapping[str, Any] | None, timezone: str) -> CallingWindow:
        """A campaign's window: its ``window`` column, or the default hours in its time zone."""
        return cls.from_dict(window or {"timezone": timezone})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallingWindow:
        """Parse the JSON form; a missing key takes the default (old rows lack public_holidays)."""
        _check_keys(data, "calling window", _WINDOW_KEYS)
        tz = data.get("timezone", "Asia/Ho_Chi_Minh")
        if not isinstance(tz, str):
            raise ValueError(f"calling window: timezone: unknown time zone {tz!r}")
        return cls(timezone=tz, weekdays=data.get("weekdays", list(range(6))),
                   parts=_parse_parts(data.get("parts", [["08:00", "17:00"]])),
                   closed_dates=_parse_dates(data.get("closed_dates", [])),
                   public_holidays=data.get("public_holidays", "VN"))


def _weekdays(value: Any) -> frozenset[int]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"calling window: weekdays: expected a list of integers 0 (Monday) to 6 (Sunday), "
                         f"got {value!r}")
    weekdays = list(value)
    for day in weekdays:
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise ValueError(f"calling window: weekdays: expected integers 0 (Monday) to 6 (Sunday), got {day!r}")
    if not weekdays:
        raise ValueError("calling window: weekdays: at least one weekday is required")
    return frozenset(weekdays)


def _parts(value: Any) -> tuple[DayPart, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"calling window: parts: expected a list of day parts, got {value!r}")
    parts = list(value)
    for part in parts:
        if not isinstance(part, DayPart):
            raise ValueError(f"calling window: parts: expected day parts, got {part!r}")
    if not parts:
        raise ValueError("calling window: parts: at least one day part is required")
    parts.sort(key=lambda p: p.start)
    for earlier, later in pairwise(parts):
        if later.start < earlier.end:
            raise ValueError(f"calling window: parts: {earlier.start}–{earlier.end} overlaps "
                             f"{later.start}–{later.end}")
    return tuple(parts)


def _closed_dates(value: Any) -> frozenset[date]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"calling window: closed_dates: expected a list of dates, got {value!r}")
    dates = list(value)
    for day in dates:
        # A datetime is a date too, but would never equal the days it is compared with.
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValueError(f"calling window: closed_dates: expected dates, got {day!r}")
    return frozenset(dates)


def _parse_parts(raw: Any) -> tuple[DayPart, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"calling window: parts: expected a list of [start, end] pairs, got {raw!r}")
    parts = []
    for i, pair in enumerate(raw):
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(t, str) for t in pair)):
            raise ValueError(f"calling window: parts[{i}]: expected [start, end] as \"HH:MM\" strings, got {pair!r}")
        try:
            parts.append(DayPart(time.fromisoformat(pair[0]), time.fromisoformat(pair[1])))
        except ValueError as exc:
            raise ValueError(f"calling window: parts[{i}]: {exc}") from None
    return tuple(parts)


def _parse_dates(raw: Any) -> frozenset[date]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"calling window: closed_dates: expected a list of ISO dates, got {raw!r}")
    dates = set()
    for value in raw:
        try:
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
                raise ValueError
            dates.add(date.fromisoformat(value))
        except ValueError:
            raise ValueError(f"calling window: closed_dates: expected ISO dates (YYYY-MM-DD), got {value!r}") from None
    return frozenset(dates)


def _default_delays() -> dict[Outcome, timedelta]:
    return {
        Outcome.BUSY: timedelta(minutes=15),
        Outcome.NO_ANSWER: timedelta(hours=2),
        Outcome.FAILED: timedelta(minutes=30),
        Outcome.MACHINE: timedelta(hours=3),
        Outcome.PARTIAL: timedelta(days=1),
        Outcome.BREAK_OFF: timedelta(days=1),
        Outcome.CANCELED: timedelta(minutes=30),
    }


def _seconds(value: Any, name: str, problem: str) -> timedelta:
    """A JSON number of seconds, finite, at least 0 and at most MAX_DELAY."""
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DELAY.total_seconds():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        # Callers (campaign creation) turn ValueError into a 400: None or an infinite
        # delay must not escape as TypeError/OverflowError.
        raise ValueError(f"retry policy: {name}: {problem} {value!r}: expected seconds from 0 to "
                         f"{int(MAX_DELAY.total_seconds())}") from None
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and when to call a contact again.

    Default delays after an attempt: busy +15 min, no answer +2 h, failure or cancel
    +30 min, answering machine +3 h, break-off or partial +1 day; each then moved to the
    next open instant of the window. Up to ``max_attempts`` attempts (3).

    ``min_gap`` is the shortest time between two calls to the same number, across contacts
    and campaigns (Decree 91/2020: at most one call per number per 24 h). The dispatcher
    enforces it, since it alone sees every campaign's calls; 0 turns it off.
    """

    max_attempts: int = 3
    delays: Mapping[Outcome, timedelta] = field(default_factory=_default_delays)
    min_gap: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if not isinstance(self.min_gap, timedelta) or self.min_gap < timedelta(0):
            raise ValueError(f"retry policy: min_gap: expected a duration of at least 0, got {self.min_gap!r}")
        for outcome, delay in self.delays.items():
            if not isinstance(delay, timedelta) or delay < timedelta(0):
                raise ValueError(f"retry policy: delays: {outcome}: expected a duration of at least 0, got {delay!r}")

    def next_attempt(self, outcome: Outcome, attempts_made: int, now: datetime,
                     window: CallingWindow, *, previous_start: datetime | None = None) -> datetime | None:
        """When to try again after ``outcome``, or None when the contact is finished.

        The result is open in ``window`` and never before ``now`` plus the outcome's delay.
        After no answer, given the previous attempt's start, a window with several day
        parts prefers the earliest instant in another part (someone out every morning may
        be home in the afternoon) if one comes within 7 days of ``now`` plus the delay.
        """
        if outcome in FINAL_OUTCOMES or attempts_made >= self.max_attempts:
            return None
        delay = self.delays.get(outcome)
        if delay is None:
            return None
        earliest = now + delay
        if outcome is Outcome.NO_ANSWER and previous_start is not None and len(window.parts) > 1:
            last_part = window.day_part(previous_start)
            if last_part is not None:
                elsewhere = replace(window, parts=tuple(p for p in window.parts if p != last_part))
                found = elsewhere._next_open(earliest, OTHER_PART_LOOKAHEAD.days + 2)
                if found is not None and found <= earliest + OTHER_PART_LOOKAHEAD:
                    return found
        return window.next_open(earliest)

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts,
                "delays": {k.value: v.total_seconds() for k, v in self.delays.items()},
                "min_gap_s": self.min_gap.total_seconds()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        """Parse the JSON form; missing keys take the defaults (old rows lack min_gap_s)."""
        _check_keys(data, "retry policy", _RETRY_KEYS)
        delays = _default_delays()
        raw_delays = data.get("delays") or {}
        if not isinstance(raw_delays, Mapping):
            raise ValueError(f"retry policy: delays must map outcomes to seconds, got {raw_delays!r}")
        for name, seconds in raw_delays.items():
            try:
                outcome = Outcome(name)
            except ValueError:
                raise ValueError(f"retry policy: delays: unknown outcome {name!r}; expected one of "
                                 f"{', '.join(o.value for o in Outcome)}") from None
            delays[outcome] = _seconds(seconds, f"delays.{outcome.value}", "bad delay")
        raw_attempts = data.get("max_attempts", 3)
        try:
            if isinstance(raw_attempts, bool) or (isinstance(raw_attempts, float) and not raw_attempts.is_integer()):
                raise ValueError
            max_attempts = int(raw_attempts)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"retry policy: max_attempts must be a whole number, got {raw_attempts!r}") from None
        if not 1 <= max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"retry policy: max_attempts must be between 1 and {MAX_ATTEMPTS}, got {max_attempts}")
        min_gap = _seconds(data.get("min_gap_s", 86400), "min_gap_s", "bad gap")
        return cls(max_attempts=max_attempts, delays=delays, min_gap=min_gap)
