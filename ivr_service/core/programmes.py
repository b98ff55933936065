"""Post-transaction programmes as pure rules: whom to invite, and which reporting period a
returned dossier falls into.

* **Shares (seed 003).** An agency must collect returned forms from at least a share of its
  yearly transactions: under 100 → 50 %, 100–499 → 30 %, 500–999 → 20 %, 1,000 or more →
  10 %. Only some invited citizens answer, so the share *invited* is that share divided by
  the expected response rate, capped at 1 (everyone).
* **The draw** is a hash of (seed, agency, transaction code) read as a number in [0, 1):
  the same transaction always gets the same answer, whichever process decides it and
  however often it is reported, so concurrent or repeated reports cannot change a decision.
* **Periods** (month | quarter | half-year, as seed 003 publishes) are local calendar
  periods in the programme's time zone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

PERIODS = ("month", "quarter", "half")
SHARE_MODES = ("seed003", "fixed")
# (yearly transactions below this, share); the last tier has no upper bound.
SEED003_TIERS: tuple[tuple[int | None, float], ...] = ((100, 0.5), (500, 0.3), (1000, 0.2), (None, 0.1))

# Decree 91/2020: messages only 07:00–22:00 local time, every day of the week. Public
# holidays do not stop messages (a citizen who got a result on a holiday may be asked).
MESSAGE_HOURS = ("07:00", "22:00")


def seed003_share(yearly_transactions: int) -> float:
    """The seed-003 minimum share of returned forms for an agency's yearly volume."""
    if yearly_transactions < 0:
        raise ValueError(f"yearly transactions: expected 0 or more, got {yearly_transactions}")
    for bound, share in SEED003_TIERS:
        if bound is None or yearly_transactions < bound:
            return share
    raise AssertionError("unreachable: the last tier has no bound")


def invited_share(mode: str, share: float | None, expected_response: float, yearly_transactions: int) -> float:
    """The share of transactions to invite: ``share`` itself in fixed mode; in seed003 mode
    the tier's share divided by the expected response rate, capped at 1."""
    if mode == "fixed":
        if share is None or not 0 < share <= 1:
            raise ValueError(f"share: expected more than 0 and at most 1, got {share!r}")
        return share
    if mode != "seed003":
        raise ValueError(f"share_mode: expected one of {', '.join(SHARE_MODES)}, got {mode!r}")
    if not 0 < expected_response <= 1:
        raise ValueError(f"expected_response: expected more than 0 and at most 1, got {expected_response!r}")
    return min(1.0, seed003_share(yearly_transactions) / expected_response)


def draw(seed: int, agency_id: int, code: str, share: float) -> bool:
    """Whether the transaction ``code`` of ``agency_id`` is selected at ``share``:
    reproducible, and the same in every process."""
    if share >= 1:
        return True
    digest = hashlib.sha256(f"{seed}:{agency_id}:{code}".encode()).digest()
    uniform = int.from_bytes(digest[:8], "big") / 2**64
    return uniform < share


@dataclass(frozen=True)
class Period:
    """A reporting period: ``start`` to ``end`` inclusive, local dates, and its label."""

    start: date
    end: date
    label: str           # 2026-11, 2026-Q4, 2026-H2


def period_of(period: str, day: date) -> Period:
    """The reporting period of kind ``period`` holding the local date ``day``."""
    if period == "month":
        first_month, months, label = day.month, 1, f"{day.year}-{day.month:02d}"
    elif period == "quarter":
        quarter = (day.month - 1) // 3
        first_month, months, label = 3 * quarter + 1, 3, f"{day.year}-Q{quarter + 1}"
    elif period == "half":
        half = (day.month - 1) // 6
        first_month, months, label = 6 * half + 1, 6, f"{day.year}-H{half + 1}"
    else:
        raise ValueError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
    start = date(day.year, first_month, 1)
    following = first_month + months
    after = date(day.year + 1, 1, 1) if following > 12 else date(day.year, following, 1)
    return Period(start, after - timedelta(days=1), label)


PERIOD_LABEL = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4])|H([12]))$")


def parse_period(label: str) -> tuple[str, Period]:
    """The kind and period of a label: ``2026-11`` (month), ``2026-Q4`` (quarter),
    ``2026-H2`` (half-year)."""
    found = PERIOD_LABEL.match(label.strip().upper())
    if found is None:
        raise ValueError(f"period: expected a month (2026-11), a quarter (2026-Q4) or a half-year (2026-H2), "
                         f"got {label[:40]!r}")
    year, month, quarter, half = found.groups()
    if month:
        return "month", period_of("month", date(int(year), int(month), 1))
    if quarter:
        return "quarter", period_of("quarter", date(int(year), 3 * int(quarter) - 2, 1))
    return "half", period_of("half", date(int(year), 6 * int(half) - 5, 1))


def previous_period(kind: str, period: Period) -> Period:
    """The period of the same kind just before ``period``."""
    return period_of(kind, period.start - timedelta(days=1))


def period_end_instant(period_end: date, timezone: str) -> datetime:
    """The local midnight after ``period_end``, in UTC: when the period is over."""
    return datetime.combine(period_end + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def message_window(timezone: str) -> dict[str, Any]:
    """The window invitations may be sent in (``CallingWindow.from_dict`` form)."""
    return {"timezone": timezone, "weekdays": list(range(7)), "parts": [list(MESSAGE_HOURS)],
            "closed_dates": [], "public_holidays": None}
