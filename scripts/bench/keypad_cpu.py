"""Benchmark: server CPU per keypad answer, and where it goes.

Plays ``--calls`` whole interviews (answer, consent, screening, 17 rated items, the
final status callback) through the app's WSGI entry point in this process, one request
after another, every request signed and checked as in production. Only the time spent
inside the app counts (``time.process_time`` around each WSGI call: the signing of the
requests and the parsing of the replies are the "provider's" work). PostgreSQL on the
same machine does its share in its own processes, not counted here (the saturation run
of ``webhook_throughput.py --saturate`` shows the whole).

Prints CPU ms per keypad answer (p50 over the answers, and the mean), per status
callback and per answered call, and with ``--profile`` the cProfile breakdown of the
keypad answers by layer (framework, signature check, ORM, SQL driver, TwiML, ours).

    .venv/bin/python scripts/bench/keypad_cpu.py [--calls 200] [--profile]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts" / "bench"))
from cpu_meter import layers  # noqa: E402
from webhook_throughput import prepare, recreate_database  # noqa: E402

ACTION = re.compile(r'action="([^"]+)"')
BASE = "http://bench.sipas.test"

# Where a profiled function's file lies, in order: the first match names its layer.
LAYERS = [
    ("signature check", ("twilio/request_validator",)),
    ("TwiML", ("twilio/twiml", "xml/etree", "ivr_service/web/twiml")),
    ("SQL driver", ("psycopg", "sqlite3")),
    ("ORM + Core", ("sqlalchemy",)),
    ("framework", ("flask", "werkzeug", "apiflask", "jinja2", "flask_login", "flask_wtf", "flask_limiter",
                   "limits", "flask_babel", "babel", "prometheus_client", "json/", "logging/", "urllib/")),
    ("ours", ("ivr_service",)),
]


class Player:
    """Drives the WSGI app as Twilio would, counting the app's CPU per request kind."""

    def __init__(self, app: Any, token: str) -> None:
        self.client = app.test_client()
        self.app = app
        self.validator = RequestValidator(token)
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.profiler: cProfile.Profile | None = None
        self.profiled = "gather"
        inner = app.wsgi_app

        def timed(environ: Any, start_response: Any) -> Any:
            kind = environ["PATH_INFO"].rsplit("/", 1)[-1]
            if self.profiler is not None and kind == self.profiled:
                self.profiler.enable()
            started = time.process_time()
            body = list(inner(environ, start_response))
            self.cpu[kind].append(time.process_time() - started)
            if self.profiler is not None and kind == self.profiled:
                self.profiler.disable()
            return body

        app.wsgi_app = timed

    def post(self, url: str, form: dict[str, str]) -> str:
        signature = self.validator.compute_signature(url, form)
        parts = urlsplit(url)
        response = self.client.post(parts.path + (f"?{parts.query}" if parts.query else ""),
                                    data=urlencode(form), content_type="application/x-www-form-urlencoded",
                                    headers={"X-Twilio-Signature": signature})
        if response.status_code >= 400:
            raise SystemExit(f"{url}: {response.status_code} {response.get_data(as_text=True)[:200]}")
        return response.get_data(as_text=True)

    def interview(self, token: str, sid: str) -> int:
        """One whole call; returns the keys pressed."""
        twiml = self.post(f"{BASE}/voice/{token}/answer", {"CallSid": sid, "CallStatus": "in-progress"})
        pressed = 0
        while (found := ACTION.search(twiml)) is not None:
            url = found.group(1).replace("&amp;", "&")
            key = "1" if "item=consent" in url or "item=screen" in url else str(1 + pressed % 5)
            twiml = self.post(url, {"CallSid": sid, "Digits": key, "CallStatus": "in-progress"})
            pressed += 1
        self.post(f"{BASE}/voice/{token}/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "180"})
        return pressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile", nargs="?", const="gather", choices=("gather", "answer", "status"),
                        help="print the cProfile breakdown of the keypad answers (or of the answered calls, "
                             "or of the status callbacks)")
    parser.add_argument("--top", type=int, default=25, help="with --profile: the functions to list")
    parser.add_argument("--sort", default="tottime", help="with --profile: pstats order (tottime, cumulative)")
    parser.add_argument("--dump", help="with --profile: also write the raw profile to this file (pstats)")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    settings = Settings(database_url=url, public_base_url=BASE, log_level="WARNING")
    pairs = prepare(settings, args.calls)
    app = create_app(settings)
    player = Player(app, settings.webhook_auth_token)
    warm = max(1, args.calls // 10)       # the first calls fill caches and the pool: not counted
    for i, (token, _number) in enumerate(pairs[:warm]):
        player.interview(token, f"CA{i:032x}")
    player.cpu.clear()
    # CPU time, not wall time: waiting for PostgreSQL is not this process's cost.
    profile = cProfile.Profile(time.process_time) if args.profile else None
    player.profiler, player.profiled = profile, args.profile or "gather"
    started = time.perf_counter()
    presses = sum(player.interview(token, f"CA{warm + i:032x}") for i, (token, _n) in enumerate(pairs[warm:]))
    elapsed = time.perf_counter() - started
    app.extensions["sipas"].db.dispose()

    gathers, statuses, answers = player.cpu["gather"], player.cpu["status"], player.cpu["answer"]
    total = sum(gathers) + sum(statuses) + sum(answers)
    print(f"database             {settings.database_url.split('@')[-1]}")
    print(f"calls                {len(answers)} whole interviews ({warm} more to warm up), {presses} keys, "
          f"{elapsed:.1f} s wall")
    print(f"keypad answer CPU    p50 {statistics.median(gathers) * 1000:.2f} ms, "
          f"mean {statistics.fmean(gathers) * 1000:.2f} ms   (target <= 3 ms)")
    print(f"answered call CPU    p50 {statistics.median(answers) * 1000:.2f} ms")
    print(f"status callback CPU  p50 {statistics.median(statuses) * 1000:.2f} ms")
    print(f"per keypad answer, everything included: {total / len(gathers) * 1000:.2f} ms")
    if profile is not None:
        by_layer = layers(profile, LAYERS)
        spent = sum(seconds for _layer, seconds in by_layer)
        print(f"\n{player.profiled} requests by layer (own time, profiled: the profiler slows everything about alike)")
        for layer, seconds in by_layer:
            print(f"  {layer:28} {seconds / spent * 100:5.1f} %")
        if args.dump:
            profile.dump_stats(args.dump)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
