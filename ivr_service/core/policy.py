"""When a citizen may be contacted, and when to try again.

Times go in and out as aware UTC datetimes; windows are evaluated in the campaign's
time zone. Every function takes ``now`` instead of reading the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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


@dataclass(frozen=True)
class DayPart:
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"day part {self.start}–{self.end}: start must be before end")


@dataclass(frozen=True)
class CallingWindow:
    """Weekdays (0 = Monday) and day parts when attempts may start, in ``timezone``."""

    timezone: str = "Asia/Ho_Chi_Minh"
    weekdays: frozenset[int] = frozenset(range(6))          # Monday–Saturday
    parts: tuple[DayPart, ...] = (DayPart(time(8), time(17)),)  # Decree 91/2020: calls 08–17
    closed_dates: frozenset[date] = frozenset()

    @classmethod
    def always_open(cls, tz: str = "Asia/Ho_Chi_Minh") -> CallingWindow:
        return cls(timezone=tz, weekdays=frozenset(range(7)),
                   parts=(DayPart(time(0), time(23, 59, 59, 999999)),))

    def _local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.astimezone(ZoneInfo(self.timezone))

    def _day_open(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.closed_dates

    def is_open(self, now: datetime) -> bool:
        local = self._local(now)
        if not self._day_open(local.date()):
            return False
        return any(p.start <= local.time() < p.end for p in self.parts)

    def next_open(self, now: datetime) -> datetime | None:
        """The earliest instant at or after ``now`` inside the window, in UTC."""
        if self.is_open(now):
            return now.astimezone(timezone.utc)
        local = self._local(now)
        zone = ZoneInfo(self.timezone)
        for offset in range(0, 366):
            day = local.date() + timedelta(days=offset)
            if not self._day_open(day):
                continue
            for part in sorted(self.parts, key=lambda p: p.start):
                start = datetime.combine(day, part.start, tzinfo=zone)
                if offset == 0 and start < local:
                    if local.time() < part.end:
                        return now.astimezone(timezone.utc)
                    continue
                start_utc = start.astimezone(timezone.utc)
                # A start inside a daylight-saving gap does not exist that day and maps to a
                # later wall time, possibly past the part's end: only return open instants.
                if self.is_open(start_utc):
                    return start_utc
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekdays": sorted(self.weekdays),
            "parts": [[p.start.isoformat(), p.end.isoformat()] for p in self.parts],
            "closed_dates": sorted(d.isoformat() for d in self.closed_dates),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallingWindow:
        tz = data.get("timezone", "Asia/Ho_Chi_Minh")
        try:
            ZoneInfo(tz)  # an unknown zone would otherwise fail only when the worker dials
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"calling window: unknown time zone {tz!r}") from None
        try:
            return cls(
                timezone=tz,
                weekdays=frozenset(int(d) for d in data.get("weekdays", range(6))),
                parts=tuple(DayPart(time.fromisoformat(a), time.fromisoformat(b))
                            for a, b in data.get("parts", [["08:00", "17:00"]])),
                closed_dates=frozenset(date.fromisoformat(d) for d in data.get("closed_dates", [])),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"calling window: {exc}") from None


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


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    delays: Mapping[Outcome, timedelta] = field(default_factory=_default_delays)

    def next_attempt(self, outcome: Outcome, attempts_made: int, now: datetime,
                     window: CallingWindow) -> datetime | None:
        """When to try again after ``outcome``, or None when the contact is finished."""
        if outcome in FINAL_OUTCOMES or attempts_made >= self.max_attempts:
            return None
        delay = self.delays.get(outcome)
        if delay is None:
            return None
        return window.next_open(now + delay)

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts,
                "delays": {k.value: v.total_seconds() for k, v in self.delays.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        delays = _default_delays()
        raw_delays = data.get("delays") or {}
        if not isinstance(raw_delays, Mapping):
            raise ValueError(f"retry policy: delays must map outcomes to seconds, got {raw_delays!r}")
        for name, seconds in raw_delays.items():
            # Callers (campaign creation) turn ValueError into a 400: None or an infinite
            # delay must not escape as TypeError/OverflowError.
            try:
                delays[Outcome(name)] = timedelta(seconds=float(seconds))
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"retry policy: unknown outcome {name!r} or bad delay {seconds!r}") from None
        try:
            max_attempts = int(data.get("max_attempts", 3))
        except (TypeError, ValueError):
            raise ValueError(f"retry policy: max_attempts must be a whole number, got {data.get('max_attempts')!r}") from None
        if max_attempts < 1:
            raise ValueError("retry policy: max_attempts must be at least 1")
        return cls(max_attempts=max_attempts, delays=delays)
