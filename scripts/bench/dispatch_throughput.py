"""Benchmark: dispatch throughput with 1, 2 and 4 worker processes on PostgreSQL.

Each worker process runs the real dispatcher (claim with SKIP LOCKED and the shared pacing
buckets, lease renewal, recording the placed call) against a no-op provider that accepts
every call at once, until no campaign has a due contact left. Prints, for each worker
count, attempts per second and, per attempt, the CPU time of the worker processes and of
their PostgreSQL backends (read from /proc: the database must run on this machine) and
the SQL statements and commits the workers sent. CPU time is much less sensitive than
wall-clock time to other processes sharing the cores. Target (issue 5): at least 500
attempts/s with one worker, and near-linear scaling while the database has headroom.

The contacts are spread over ``--campaigns`` running campaigns. Each campaign is paced at
1,000 calls/s at most (its bucket starts with one second's worth), so a single campaign
caps the whole run at about 1,050 attempts/s for 20,000 contacts: with one campaign the
benchmark measures the pacing, not the dispatcher, as soon as workers are that fast.

    .venv/bin/python scripts/bench/dispatch_throughput.py [--contacts 20000] [--campaigns 4] [--workers 1 2 4]
        [--batch 500] [--profile worker.prof]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated for each worker count.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import queue
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, insert, select  # noqa: E402

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


def prepare(url: str, contacts: int, campaign_count: int) -> None:
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "BENCH", "Sở Benchmark", now)
        ids = []
        for number in range(campaign_count):
            campaign = campaigns.create_campaign(
                session, svc.registry, agency_id=agency.id, name=f"bench {number + 1}", questionnaire="sipas-2024",
                now=now, calls_per_second=1000,
                window={"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None})
            campaign.status = CampaignStatus.RUNNING
            ids.append(campaign.id)
        session.execute(insert(Contact), [
            {"campaign_id": ids[i % campaign_count], "phone_e164": f"+8491{i:07d}", "field": "bench",
             "status": ContactStatus.PENDING, "next_attempt_at": now, "created_at": now,
             "respondent_id": uuid.uuid4().hex} for i in range(contacts)])
    svc.db.dispose()


@dataclass
class Counts:
    """What one worker process did and spent."""

    placed: int = 0
    last_claim_at: float = 0.0    # time.time() after its last round that claimed something
    cpu_s: float = 0.0            # its own process time
    backend_cpu_s: float = 0.0    # its PostgreSQL backends' (0 when /proc is not readable)
    statements: int = 0           # executed by the server (an executemany counts each row)
    commits: int = 0


def backend_cpu(pids: set[int]) -> float:
    """User + system CPU seconds of these PostgreSQL backends so far (Linux /proc)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def instrument(engine: Any, counts: Counts, backends: set[int]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        counts.statements += len(parameters) if many and isinstance(parameters, list) else 1

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        counts.commits += 1

    @event.listens_for(engine, "connect")
    def _backend(dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])
        dbapi_connection.rollback()


def work(url: str, batch: int, start_at: float, profile: str | None, results: multiprocessing.Queue[Counts]) -> None:
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    provider = NoopProvider()
    pacing = dispatch.Pacing("noop", 10000.0, 10_000_000)
    counts, backends = Counts(), set[int]()
    instrument(svc.db.engine, counts, backends)
    with svc.db.engine.connect() as conn:   # the pool's first connection, before the clock starts
        conn.exec_driver_sql("SELECT 1")
    while time.time() < start_at:
        time.sleep(0.001)
    profiler = cProfile.Profile() if profile else None
    counts.statements = counts.commits = 0
    cpu, db_cpu = time.process_time(), backend_cpu(backends)
    if profiler:
        profiler.enable()
    idle = 0
    while idle < 3:
        n = dispatch.dispatch_once(svc.db, svc.registry, provider, lambda kind, token: f"https://x/{token}/{kind}",
                                   svc.clock, pacing, batch=batch)
        counts.placed += n
        if n:
            idle, counts.last_claim_at = 0, time.time()
        else:
            idle += 1
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    counts.cpu_s, counts.backend_cpu_s = time.process_time() - cpu, backend_cpu(backends) - db_cpu
    results.put(counts)
    svc.db.dispose()


def run(url: str, contacts: int, campaign_count: int, workers: int, batch: int,
        profile: str | None) -> tuple[float, Counts]:
    recreate_database(url)
    migrate.upgrade(url)
    prepare(url, contacts, campaign_count)
    results: multiprocessing.Queue[Counts] = multiprocessing.Queue()
    start_at = time.time() + 2.0  # every process connected before the clock starts
    processes = [multiprocessing.Process(target=work, args=(url, batch, start_at, profile if n == 0 else None,
                                                            results)) for n in range(workers)]
    for process in processes:
        process.start()
    done: list[Counts] = []
    while len(done) < workers:
        try:
            done.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise SystemExit(f"a worker process failed (exit codes {failed}); see its traceback above") from None
    for process in processes:
        process.join()
    total = Counts(sum(c.placed for c in done), max(c.last_claim_at for c in done), sum(c.cpu_s for c in done),
                   sum(c.backend_cpu_s for c in done), sum(c.statements for c in done), sum(c.commits for c in done))
    # The last idle rounds are not work: measure to the last claim of the last worker.
    elapsed = total.last_claim_at - start_at
    app = create_app(settings(url))
    with app.extensions["sipas"].db.begin() as session:
        stored = session.scalar(select(func.count()).select_from(Attempt))
        doubles = session.scalar(select(func.count()).select_from(
            select(Attempt.contact_id).group_by(Attempt.contact_id).having(func.count() > 1).subquery()))
    app.extensions["sipas"].db.dispose()
    assert stored == total.placed == contacts and doubles == 0, (stored, total.placed, doubles)
    return elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--campaigns", type=int, default=4, help="running campaigns sharing the contacts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=500, help="attempts claimed per round (SIPAS_DISPATCH_BATCH)")
    parser.add_argument("--profile", help="write a cProfile of the first worker process here (pstats format)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    print(f"no-op provider, {args.contacts} due contacts in {args.campaigns} campaign(s) paced at 1,000 calls/s each, "
          f"batch {args.batch}, PostgreSQL, {os.cpu_count()} cores")
    base = None
    for workers in args.workers:
        elapsed, total = run(url, args.contacts, args.campaigns, workers, args.batch, args.profile)
        rate = total.placed / elapsed
        if workers == 1:
            base = rate
        scaling = f"x{rate / base:.2f} of one worker" if base else "run with --workers 1 to compare"
        per = 1000 / total.placed
        print(f"{workers} worker(s): {total.placed} attempts in {elapsed:.1f} s = {rate:.0f} attempts/s "
              f"({scaling}; target >= 500/s for one); per attempt: worker CPU {total.cpu_s * per:.3f} ms, "
              f"database CPU {total.backend_cpu_s * per:.3f} ms, {total.statements / total.placed:.2f} statements, "
              f"{total.commits / total.placed:.3f} commits")


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
