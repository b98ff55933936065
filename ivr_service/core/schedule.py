"""A weekly instant in a time zone, for jobs such as the weekly export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklySchedule:
    """The weekly instant, in a time zone: weekday 0 = Monday."""

    weekday: int
    at: time
    timezone: str

    @classmethod
    def parse(cls, text: str, timezone: str) -> WeeklySchedule | None:
        """``"mon 07:00"``; ``"off"`` gives None. ValueError names the expected form."""
        if text.strip().lower() == "off":
            return None
        day, _, clock = text.strip().lower().partition(" ")
        try:
            return cls(WEEKDAYS.index(day), time.fromisoformat(clock.strip()), timezone)
        except ValueError:
            raise ValueError(f"expected a weekday and a time such as 'mon 07:00', or 'off', got {text!r}") from None

    def last_run(self, now: datetime) -> tuple[str, datetime]:
        """The latest scheduled instant at or before ``now`` (UTC) and its period label."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        monday = local.date() - timedelta(days=local.weekday())
        for week in (0, -1):
            day = monday + timedelta(days=self.weekday + 7 * week)
            instant = datetime.combine(day, self.at, tzinfo=zone).astimezone(UTC)
            if instant <= now:
                return _label(day), instant
        raise AssertionError("unreachable: last week's instant is always past")


def _label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
