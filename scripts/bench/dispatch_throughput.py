"""Benchmark: dispatch throughput with 1, 2 and 4 worker processes on PostgreSQL.

Each worker process runs the real dispatcher (claim with SKIP LOCKED and the shared pacing
buckets, lease renewal, recording the placed call) against a no-op provider that accepts
every call at once, until the campaign has no due contact left. Prints attempts per second
for each worker count. Target (issue 5): at least 500 attempts/s with one worker, and
near-linear scaling while the database has headroom.

    .venv/bin/python scripts/bench/dispatch_throughput.py [--contacts 20000] [--workers 1 2 4]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated for each worker count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.models import Attempt, CampaignStatus, Contact, ContactStatus  # noqa: E402
from ivr_service.providers import CallPlaced, CallRequest, CallState  # noqa: E402
from ivr_service.services import campaigns, dispatch  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_throughput import recreate_database  # noqa: E402


class NoopProvider:
    name = "noop"

    def place_call(self, request: CallRequest) -> CallPlaced:
        return CallPlaced("CA" + uuid.uuid4().hex)

    def fetch_call(self, provider_id: str) -> CallState | None:
        return None

    def close(self) -> None:
        pass


def settings(url: str) -> Settings:
    return Settings(database_url=url, log_level="WARNING", public_base_url="https://survey.example.gov.vn")


def prepare(url: str, contacts: int) -> None:
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "BENCH", "Sở Benchmark", now)
        campaign = campaigns.create_campaign(
            session, svc.registry, agency_id=agency.id, name="bench", questionnaire="sipas-2024", now=now,
            window={"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None},
            calls_per_second=1000)
        campaign.status = CampaignStatus.RUNNING
        session.execute(insert(Contact), [
            {"campaign_id": campaign.id, "phone_e164": f"+8491{i:07d}", "field": "bench",
             "status": ContactStatus.PENDING, "next_attempt_at": now, "created_at": now,
             "respondent_id": uuid.uuid4().hex} for i in range(contacts)])
    svc.db.dispose()


def work(url: str, batch: int, start_at: float, counts: multiprocessing.Queue[tuple[int, float]]) -> None:
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    provider = NoopProvider()
    pacing = dispatch.Pacing("noop", 10000.0, 10_000_000)
    while time.time() < start_at:
        time.sleep(0.001)
    placed, idle = 0, 0
    while idle < 3:
        n = dispatch.dispatch_once(svc.db, svc.registry, provider, lambda kind, token: f"https://x/{token}/{kind}",
                                   svc.clock, pacing, batch=batch)
        placed += n
        idle = idle + 1 if n == 0 else 0
    counts.put((placed, time.time()))
    svc.db.dispose()


def run(url: str, contacts: int, workers: int, batch: int) -> tuple[float, int]:
    recreate_database(url)
    migrate.upgrade(url)
    prepare(url, contacts)
    counts: multiprocessing.Queue[tuple[int, float]] = multiprocessing.Queue()
    start_at = time.time() + 2.0  # every process connected before the clock starts
    processes = [multiprocessing.Process(target=work, args=(url, batch, start_at, counts)) for _ in range(workers)]
    for process in processes:
        process.start()
    results: list[tuple[int, float]] = []
    while len(results) < workers:
        try:
            results.append(counts.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise SystemExit(f"a worker process failed (exit codes {failed}); see its traceback above") from None
    for process in processes:
        process.join()
    placed = sum(n for n, _ in results)
    # The last idle rounds are not work: measure to the last claim of the last worker.
    elapsed = max(at for _, at in results) - start_at
    app = create_app(settings(url))
    with app.extensions["sipas"].db.begin() as session:
        stored = session.scalar(select(func.count()).select_from(Attempt))
        doubles = session.scalar(select(func.count()).select_from(
            select(Attempt.contact_id).group_by(Attempt.contact_id).having(func.count() > 1).subquery()))
    app.extensions["sipas"].db.dispose()
    assert stored == placed == contacts and doubles == 0, (stored, placed, doubles)
    return elapsed, placed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=500, help="attempts claimed per round (SIPAS_DISPATCH_BATCH)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    print(f"no-op provider, {args.contacts} due contacts, batch {args.batch}, PostgreSQL, {os.cpu_count()} cores")
    base = None
    for workers in args.workers:
        elapsed, placed = run(url, args.contacts, workers, args.batch)
        rate = placed / elapsed
        if workers == 1:
            base = rate
        scaling = f"x{rate / base:.2f} of one worker" if base else "run with --workers 1 to compare"
        print(f"{workers} worker(s): {placed} attempts in {elapsed:.1f} s = {rate:.0f} attempts/s "
              f"({scaling}; target >= 500/s for one)")


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
