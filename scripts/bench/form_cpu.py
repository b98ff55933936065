"""Benchmark: server CPU per web form page and per answer, and where it goes.

Plays ``--respondents`` whole web forms (the SMS link's page, then answer, next page …
to the thanks page, as ``form_latency.py``'s respondents do) through the app's WSGI entry
point in this process, one request after another. Only the time spent inside the app
counts (``time.process_time`` around each WSGI call); PostgreSQL's share runs in its own
processes (``form_latency.py`` measures the whole under gunicorn).

Prints CPU ms per page (GET /s/<code>) and per answer (POST /s/<code>), their wall time
and SQL statements, and with ``--profile`` the cProfile breakdown of each by layer
(framework, access guard and CSRF, rate limiter, Jinja, ORM, SQL driver, ours).
Target (issue 18): at most 3 ms of CPU each.

    .venv/bin/python scripts/bench/form_cpu.py [--respondents 200] [--profile]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from cpu_meter import Meter  # noqa: E402
from form_latency import ITEM, OPTION, prepare  # noqa: E402
from webhook_throughput import recreate_database  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

BASE = "http://bench.sipas.test"
PHONE = {"User-Agent": "Mozilla/5.0 (Linux; Android 10) Mobile bench"}


def respondent(client: Any, code: str, rng: random.Random) -> int:
    """One whole web form; returns the answers sent."""
    def get() -> str:
        response = client.get(f"/s/{code}?lang=vi", headers=PHONE)
        if response.status_code != 200:
            raise SystemExit(f"GET /s/{code}: {response.status_code}")
        return str(response.get_data(as_text=True))

    page, sent = get(), 0
    while (found := ITEM.search(page)) is not None:
        item = found.group(1)
        key = "2" if item == "SCREEN_FEEDBACK" else rng.choice(OPTION.findall(page))
        response = client.post(f"/s/{code}", data={"item": item, "answer": key, "lang": "vi"}, headers=PHONE)
        if response.status_code != 303:
            raise SystemExit(f"POST /s/{code} {item}: {response.status_code}")
        sent += 1
        page = get()
    if "Cảm ơn Ông/bà!" not in page:
        raise SystemExit(f"{code}: did not end on the thanks page")
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--respondents", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print the cProfile breakdown by layer")
    parser.add_argument("--top", type=int, default=0, help="with --profile: the functions to list")
    parser.add_argument("--sort", default="tottime", help="with --profile: pstats order (tottime, cumulative)")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    settings = Settings(database_url=url, public_base_url=BASE, log_level="WARNING")
    codes = prepare(settings, args.respondents)
    app = create_app(settings)
    meter = Meter(app, lambda environ: "answer" if environ["REQUEST_METHOD"] == "POST" else "page",
                  {"page", "answer"} if args.profile else set())
    client = app.test_client()
    rng = random.Random(18)
    warm = max(1, args.respondents // 10)   # the first forms fill caches and the pool: not counted
    meter.counting = False
    for code in codes[:warm]:
        respondent(client, code, rng)
    meter.counting = True
    answers = sum(respondent(client, code, rng) for code in codes[warm:])
    app.extensions["sipas"].db.dispose()

    print(f"database       {url.split('@')[-1]}")
    print(f"respondents    {len(codes) - warm} whole forms ({warm} more to warm up), {answers} answers")
    print(meter.line("page", "page (GET)") + "   (target CPU <= 3 ms)")
    print(meter.line("answer", "answer (POST)") + "   (target CPU <= 3 ms)")
    for kind in ("page", "answer") if args.profile else ():
        print(meter.breakdown(kind, args.top, args.sort))


if __name__ == "__main__":
    main()
