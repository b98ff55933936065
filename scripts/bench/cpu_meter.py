"""What the in-process CPU benchmarks share (``form_cpu.py``, ``feed_cpu.py``): a meter
around the app's WSGI entry point that counts, per request kind, the app's CPU time
(``time.process_time``), wall time and SQL statements, and optionally profiles chosen
kinds; and the breakdown of a profile by layer, finer than ``keypad_cpu.py``'s (the
rate limiter, the access guard and CSRF, Jinja, the API schemas each on their own line).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

# Where a profiled function's file lies, in order: the first match names its layer.
LAYERS = [
    ("access guard + CSRF", ("ivr_service/web/access", "flask_wtf", "flask_login")),
    ("rate limiter", ("flask_limiter", "/limits/")),
    ("Jinja (rendering)", ("jinja2", "markupsafe", "/templates/")),
    ("API schemas (apiflask, marshmallow)", ("apiflask", "marshmallow", "webargs")),
    ("JSON (request, reply, JSON columns)", ("json/",)),
    ("SQL driver", ("psycopg", "sqlite3")),
    ("ORM", ("sqlalchemy/orm",)),
    ("Core (SQL compile, results)", ("sqlalchemy",)),
    ("framework (Flask, Werkzeug)", ("flask", "werkzeug", "flask_babel", "babel", "prometheus_client", "logging/",
                                     "urllib/", "http/")),
    ("ours", ("ivr_service",)),
]
OTHER = "Python (stdlib, builtins)"


class Meter:
    """Wraps ``app.wsgi_app``: ``kind_of(environ)`` names the kind of each request."""

    def __init__(self, app: Any, kind_of: Callable[[dict[str, Any]], str],
                 profile: set[str] | frozenset[str] = frozenset()) -> None:
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[int]] = defaultdict(list)
        self.profiles = {kind: cProfile.Profile(time.process_time) for kind in profile}
        self.counting = True
        self._executed = 0
        inner = app.wsgi_app
        db = app.extensions["sipas"].db

        def _count(*_args: Any) -> None:
            self._executed += 1

        for engine in (db.engine, db.autocommit_engine):
            if engine is not None:
                event.listen(engine, "before_cursor_execute", _count)

        def timed(environ: Any, start_response: Any) -> Any:
            kind = kind_of(environ)
            profiler = self.profiles.get(kind) if self.counting else None
            self._executed = 0
            if profiler is not None:
                profiler.enable()
            wall, cpu = time.perf_counter(), time.process_time()
            body = list(inner(environ, start_response))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler is not None:
                profiler.disable()
            if self.counting:
                self.cpu[kind].append(cpu)
                self.wall[kind].append(wall)
                self.statements[kind].append(self._executed)
            return body

        app.wsgi_app = timed

    def reset(self) -> None:
        self.cpu.clear()
        self.wall.clear()
        self.statements.clear()

    def line(self, kind: str, label: str, per: int = 1) -> str:
        """p50 and mean CPU per request (or per ``per`` records of one), wall p50, statements."""
        cpu, wall, sql = self.cpu[kind], self.wall[kind], self.statements[kind]
        return (f"{label:<22} n={len(cpu):<5} CPU p50 {statistics.median(cpu) * 1000 / per:7.3f} ms  "
                f"mean {statistics.fmean(cpu) * 1000 / per:7.3f} ms   wall p50 {statistics.median(wall) * 1000:7.2f} ms"
                f"   SQL statements {statistics.median(sql):.0f}")

    def breakdown(self, kind: str, top: int, sort: str) -> str:
        profile = self.profiles[kind]
        rows = layers(profile)
        spent = sum(seconds for _layer, seconds in rows) or 1.0
        out = io.StringIO()
        out.write(f"\n{kind}: by layer (own time, profiled: the profiler slows everything about alike)\n")
        for layer, seconds in rows:
            out.write(f"  {layer:38} {seconds / spent * 100:5.1f} %\n")
        if top:
            pstats.Stats(profile, stream=out).sort_stats(sort).print_stats(top)
        return out.getvalue()


Layers = list[tuple[str, tuple[str, ...]]]


def layers(profile: cProfile.Profile, table: Layers | None = None) -> list[tuple[str, float]]:
    """Own time of every profiled function, summed by layer (of ``table``, :data:`LAYERS`
    by default; what matches none is :data:`OTHER`)."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        layer = next((name for name, marks in table or LAYERS if any(mark in path for mark in marks)), OTHER)
        totals[layer] += tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])
