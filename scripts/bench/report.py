"""Benchmark: the CCHC report of a province over 1,000,000 answers, on PostgreSQL.

Seeds the province of tests/report_data.py (an agency tree of five units with their own
campaigns, strata, officers and QR answers) ``--scale`` times larger: at the default 200,
about 53,000 interviews and 1,020,000 answers end in the reported quarter (and 0.75 times
as many in the quarter before, which the report compares with). Then generates the
province's report (every sheet: indices, rollups, breakdowns, needs, change, method)
``--runs`` times and prints the answers counted, each run's seconds, the median and the
process's peak memory. Target (issue 16): under 10 s.

    .venv/bin/python scripts/bench/report.py [--scale 180] [--runs 3] [--rebuild]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench_report) is
dropped and filled when it does not hold the data yet (or with ``--rebuild``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.models import Agency, Answer, Interview  # noqa: E402
from ivr_service.services import reports  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402
from tests.conftest import reset_database  # noqa: E402
from tests.report_data import PERIOD, seed_province  # noqa: E402

NOW = datetime(2026, 10, 2, 1, 0, tzinfo=UTC)
IN_QUARTER = (datetime(2026, 6, 30, 17, 0, tzinfo=UTC), datetime(2026, 9, 30, 17, 0, tzinfo=UTC))


def settings(url: str) -> Settings:
    return Settings(database_url=url, public_base_url="http://bench.test", secret_key="bench")


def answers_in_quarter(url: str) -> int:
    app = create_app(settings(url))
    db = app.extensions["sipas"].db
    try:
        with db.begin() as session:
            return session.scalar(select(func.count()).select_from(Answer).join(
                Interview, Interview.id == Answer.interview_id).where(
                Interview.ended_at >= IN_QUARTER[0], Interview.ended_at < IN_QUARTER[1])) or 0
    except SQLAlchemyError:
        return 0
    finally:
        db.dispose()


def build(url: str, scale: int) -> None:
    started = time.perf_counter()
    reset_database(url)
    migrate.upgrade(url)
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    seeded = seed_province(svc.db, svc.registry.get("sipas-2024"), scale=scale, qr_responses=500)
    with svc.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    svc.db.dispose()
    print(f"  built {seeded.interviews:,} interviews and {seeded.answers:,} answers "
          f"in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench_report")
    counted = 0 if args.rebuild else answers_in_quarter(url)
    if counted < 4_500 * args.scale:
        print(f"building the province at scale {args.scale} in {url}")
        build(url, args.scale)
        counted = answers_in_quarter(url)
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        province = session.scalar(select(Agency.id).where(Agency.code == "PROV"))
    seconds = []
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.runs):
            started = time.perf_counter()
            with svc.db.begin() as session:
                path = reports.generate(session, svc.registry, NOW, directory, agency_id=province, period=PERIOD)
            seconds.append(time.perf_counter() - started)
        size = path.stat().st_size
    svc.db.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"answers of interviews ended in {PERIOD}: {counted:,}")
    print(f"report {path.name}: {size / 1024:.0f} KiB; runs " + ", ".join(f"{s:.2f} s" for s in seconds))
    print(f"median {statistics.median(seconds):.2f} s (target < 10 s); peak memory {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
