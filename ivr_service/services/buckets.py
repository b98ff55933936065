"""Counts per closed period (an hour, a local day), kept between the polls of a live page.

A period that has ended no longer changes: attempts keep the time they were created,
interviews the time they ended, and nothing deletes either. So each period is read once
per process after it ends, and every poll reads only the current period: an index range
of an hour or a day of rows instead of 24 hours or 14 days of them
(``scripts/bench/monitor_page.py``). When the series moves on by a period, only the
period that has just ended is read. Should rows ever be purged, the kept counts of the
periods already read stay as they were until they leave the series.

Kept per web process (an ``app.extensions`` entry), one entry per series (what, which
campaign, which time zone); nothing depends on it across processes, each reads the same
rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import datetime

# Counts the rows of periods [starts[i], starts[i + 1]) for every i but the last start.
Count = Callable[[list[datetime]], list[int]]


class Closed:
    def __init__(self) -> None:
        # series -> (the starts of the closed periods read, their counts, where the last one ends)
        self._found: dict[Hashable, tuple[list[datetime], list[int], datetime]] = {}
        self._lock = threading.Lock()

    def counts(self, series: Hashable, starts: list[datetime], count: Count) -> list[int]:
        """Rows per period ``[starts[i], starts[i + 1])`` for every period but the last one
        (the current period, which ``starts[-1]`` begins): those kept are reused, the rest
        read with ``count`` in one range from the first period not kept."""
        with self._lock:
            kept = self._found.get(series)
        known = dict(zip(kept[0], kept[1], strict=True)) if kept is not None else {}
        closed = starts[:-1]
        first = next((i for i, start in enumerate(closed) if start not in known), len(closed))
        continues = kept is not None and (first == len(closed) or starts[first] == kept[2])
        if not continues or any(start in known for start in closed[first:]):
            first = 0                          # not the series kept, moved on: read it all
        found = [known[start] for start in closed[:first]] + (count(starts[first:]) if first < len(closed) else [])
        with self._lock:
            self._found[series] = (closed, found, starts[-1])
        return found
