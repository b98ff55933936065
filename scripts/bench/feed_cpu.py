"""Benchmark: the transaction feed through the app, reports per second of one process.

Creates an agency with a seed-003 programme and an API token holding transactions:write
for it, then reports returned dossiers through the app's WSGI entry point in this
process, with the token, as a one-stop-shop system does: ``--singles`` records one at a
time (``POST /api/v1/transactions``), then ``--intake`` records one at a time to the
intake (``POST /api/v1/transactions/intake``, each answered 202 once stored) and the
worker's drain that decides them (``services/intake.py``, timed apart), then ``--batches``
batches of ``--batch`` records (``POST /api/v1/transactions/batch``), then the same
batches again (all duplicates).
Only the app's own time counts as CPU (``time.process_time`` around each WSGI call; the
client's JSON encoding is not the server's work); the wall rate also holds PostgreSQL's
share and the round trips, one request after another on a machine others share.

Prints reports per second by CPU and by wall time, SQL statements per request, and with
``--profile`` the cProfile breakdown of singles, intake requests and batches by layer.
Targets (issue 18): at least 1,000 reports/s one at a time, 5,000/s in batches.

    .venv/bin/python scripts/bench/feed_cpu.py [--singles 2000] [--intake 2000] [--batches 20] [--batch 1000]
                                               [--profile]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from cpu_meter import Meter  # noqa: E402
from feed_intake import records  # noqa: E402
from sqlalchemy import text  # noqa: E402
from webhook_throughput import recreate_database  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.core.access import Permission  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.services import access, campaigns, intake, programmes  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

AGENCY = "STNMT"


def prepare(app: Any) -> str:
    """The agency, its programme and a token for it; returns the token."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, AGENCY, "Sở Tài nguyên và Môi trường (bench)", now)
        programmes.create_programme(session, svc.registry, agency_id=agency.id, name="Bench", now=now,
                                    default_host="https://ks.example.vn", delay_minutes=60)
        issued = access.create_token(session, "feed bench", [Permission.TRANSACTIONS_WRITE.value], agency.id, now)
    return issued.secret


def as_json(count: int, run: int, suffix: str = "") -> list[dict[str, Any]]:
    return [{"agency": r.agency, "code": r.code + suffix, "phone": r.phone, "returned_at": r.returned_at,
             "procedure": r.procedure, "field": r.field, "officer": r.officer} for r in records(count, AGENCY, run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--intake", type=int, default=2000, help="records handed to the intake one at a time")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="print the cProfile breakdown by layer")
    parser.add_argument("--top", type=int, default=0, help="with --profile: the functions to list")
    parser.add_argument("--sort", default="tottime", help="with --profile: pstats order (tottime, cumulative)")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    app = create_app(Settings(database_url=url, public_base_url="https://bench.sipas.test", log_level="WARNING"))
    headers = {"Authorization": f"Bearer {prepare(app)}"}
    client = app.test_client()

    phase = {"batch": "batch"}      # the batches sent again are counted apart

    def kind_of(environ: dict[str, Any]) -> str:
        path = environ["PATH_INFO"]
        return phase["batch"] if path.endswith("/batch") else "intake" if path.endswith("/intake") else "single"

    meter = Meter(app, kind_of, {"single", "intake", "batch"} if args.profile else set())

    def post(path: str, body: Any) -> Any:
        response = client.post(path, json=body, headers=headers)
        if response.status_code not in (200, 201, 202):
            raise SystemExit(f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        return response.get_json()

    # Warm-up (not counted): caches, the pool, the first period campaign.
    meter.counting = False
    for record in as_json(50, 1, "-W"):
        post("/api/v1/transactions", record)
    post("/api/v1/transactions/batch", {"transactions": as_json(args.batch, 2, "-W")})
    for record in as_json(50, 4, "-WI"):
        post("/api/v1/transactions/intake", record)
    svc = app.extensions["sipas"]
    intake.drain(svc.db, svc.clock)
    meter.counting = True

    decisions: dict[str, int] = {}
    started = time.perf_counter()
    for record in as_json(args.singles, 3, "-S"):
        decision = post("/api/v1/transactions", record)["decision"]
        decisions[decision] = decisions.get(decision, 0) + 1
    walls = {"single": time.perf_counter() - started}
    started = time.perf_counter()
    handed = [post("/api/v1/transactions/intake", record)["id"] for record in as_json(args.intake, 5, "-I")]
    walls["intake"] = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    drained = intake.drain(svc.db, svc.clock)
    drain_cpu, walls["drain"] = time.process_time() - cpu, time.perf_counter() - started
    meter.counting = False        # reading the outcomes is not reporting
    outcomes = [client.get(f"/api/v1/transactions/intake/{i}", headers=headers).get_json() for i in handed]
    meter.counting = True
    undecided = [o for o in outcomes if o.get("status") != "decided" or o["result"]["status"] != "created"]
    if drained != args.intake or undecided:
        raise SystemExit(f"intake: {drained} decided of {args.intake}; not created: {undecided[:3]}")
    handed_decisions: dict[str, int] = {}
    for o in outcomes:
        handed_decisions[o["result"]["decision"]] = handed_decisions.get(o["result"]["decision"], 0) + 1
    with app.extensions["sipas"].db.engine.connect() as conn:
        # What autovacuum does on its own soon after: without fresh statistics the plans
        # chosen while the tables were nearly empty (sequential scans) stay in use.
        conn.execute(text("ANALYZE transactions; ANALYZE contacts"))
        conn.commit()
    sent = [as_json(args.batch, 10 + i, f"-B{i}") for i in range(args.batches)]
    for kind, expected in (("batch", "created"), ("again", "duplicate")):
        phase["batch"] = kind
        started = time.perf_counter()
        for chunk in sent:
            counts = post("/api/v1/transactions/batch", {"transactions": chunk})["counts"]
            if counts[expected] != len(chunk):
                raise SystemExit(f"{kind}: expected {len(chunk)} {expected}, got {counts}")
        walls[kind] = time.perf_counter() - started
    app.extensions["sipas"].db.dispose()

    in_batches = args.batches * args.batch
    print(f"database       {url.split('@')[-1]}")
    print(f"decisions      of the singles: {dict(sorted(decisions.items()))}")
    print(f"               of the intake: {dict(sorted(handed_decisions.items()))}")
    for kind, label, n, target in (("single", "one at a time", args.singles, "   (target >= 1,000/s)"),
                                   ("intake", "to the intake", args.intake, "   (target >= 1,000/s)"),
                                   ("batch", f"batches of {args.batch}", in_batches, "   (target >= 5,000/s)"),
                                   ("again", "the same again", in_batches, " (all duplicates)")):
        print(f"{label:<18} {n / sum(meter.cpu[kind]):7,.0f} reports/s by CPU, {n / walls[kind]:7,.0f}/s wall{target}")
        if kind == "intake":
            print(f"{'  then decided':<18} {drained / drain_cpu:7,.0f} reports/s by CPU, "
                  f"{drained / walls['drain']:7,.0f}/s wall (the worker's drain, batches of {intake.BATCH})")
    print(meter.line("single", "single (per request)"))
    print(meter.line("intake", "intake (per request)"))
    print(meter.line("batch", "batch (per record)", per=args.batch))
    print(meter.line("again", "again (per record)", per=args.batch))
    for kind in ("single", "intake", "batch") if args.profile else ():
        print(meter.breakdown(kind, args.top, args.sort))


if __name__ == "__main__":
    main()
