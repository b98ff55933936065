"""Benchmark: reports to the transaction intake over HTTP, on one gunicorn process.

Prepares an agency, its programme and an API token (``feed_cpu.prepare``), starts the
app under gunicorn on PostgreSQL (``--workers 1`` by default: the issue's figure is per
process), and has ``--callers`` one-stop-shop systems POST ``--records`` reports to
``/api/v1/transactions/intake`` one at a time on keep-alive connections. Then the
worker's drain decides them all in this process, and the run fails unless every report
was accepted (202) and created.

Prints reports/s and the CPU per report of the gunicorn processes, PostgreSQL and the
load generator; ``stack_floor.py --shape feed --workers 1`` gives the same figures for a
bare Flask app doing the same two statements and nothing else.

    .venv/bin/python scripts/bench/feed_http.py [--records 6000] [--workers 1] [--threads 4] [--callers 16]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from feed_cpu import as_json, prepare  # noqa: E402
from stack_floor import JsonSender  # noqa: E402
from webhook_throughput import play, recreate_database, start_gunicorn, wait_for  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.services import intake  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

INTAKE = "/api/v1/transactions/intake"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--callers", type=int, default=16, help="reports in flight at once")
    parser.add_argument("--port", type=int, default=5097)
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    settings = Settings(database_url=url, log_level="WARNING")
    app = create_app(settings)
    token = prepare(app)
    per_caller = args.records // args.callers
    bodies = [json.dumps(record) for record in as_json(per_caller * args.callers, 5, "-H")]
    warm = [json.dumps(record) for record in as_json(50, 6, "-HW")]

    env = {**os.environ, "SIPAS_DATABASE_URL": url, "SIPAS_LOG_LEVEL": "WARNING"}
    server = start_gunicorn("ivr_service:create_app()", args.workers, args.threads, args.port, env)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[tuple[int, bytes]] = []
    try:
        wait_for(args.port)
        sender = JsonSender("127.0.0.1", args.port)
        for body in warm:   # caches and pools (not counted)
            sender.post(INTAKE, body, headers)

        def caller(mine: list[str]) -> None:
            for body in mine:
                status, reply = sender.post(INTAKE, body, headers)
                if status != 202:
                    failures.append((status, reply))

        load = play(server.pid, [threading.Thread(target=caller, args=(bodies[i::args.callers],))
                                 for i in range(args.callers)])
    finally:
        server.terminate()
        server.wait(10)
    if failures:
        raise SystemExit(f"{len(failures)} reports refused, first: HTTP {failures[0][0]} {failures[0][1][:200]!r}")
    svc = app.extensions["sipas"]
    decided = intake.drain(svc.db, svc.clock)
    expected = len(bodies) + len(warm)
    if decided != expected:
        raise SystemExit(f"the drain decided {decided} reports of {expected}")

    n, elapsed = len(bodies), load.elapsed
    per = 1000 / n
    server_cpu, pg_cpu, own_cpu = load.server, load.postgres, load.own
    print(f"web                 gunicorn, {args.workers} gthread worker(s) x {args.threads} threads "
          f"(on {os.cpu_count()} cores, shared with the load generator), {args.callers} callers")
    print(f"reports             {n} in {elapsed:.1f} s: {n / elapsed:,.0f}/s "
          f"({n / elapsed / args.workers:,.0f}/s a process; target >= 1,000/s), all decided by the drain")
    print(f"CPU per report      gunicorn {server_cpu * per:.2f} ms ({1000 / (server_cpu * per):,.0f} reports/s "
          f"a busy core) + PostgreSQL {pg_cpu * per:.2f} + load generator {own_cpu * per:.2f}")


if __name__ == "__main__":
    main()
