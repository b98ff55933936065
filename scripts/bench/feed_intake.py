"""Benchmark: the transaction feed's intake, reported transactions per second on one process.

Creates an agency with a seed-003 programme (10 % tier at this volume, 20 % invited), then
reports ``--transactions`` (default 20,000) returned dossiers through
``transactions.report`` in batches of ``--batch`` (default 1,000, the API's largest), each
batch in its own database transaction as ``POST /api/v1/transactions/batch`` runs it:
validation, decisions (opt-outs, recent invitations, the draw), the idempotent inserts and
the contacts of the invited. Then reports the same batches again (all duplicates) and a
few hundred single-record reports. Target (issue 12): at least 1,000 transactions/s.

    .venv/bin/python scripts/bench/feed_intake.py [--transactions 20000] [--batch 1000]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/sipas_bench_feed]

Always measures a fresh SQLite file; also PostgreSQL when --database or TEST_DATABASE_URL
names one (migrated in place; rows are added under a fresh agency, nothing is dropped).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from ivr_service.core.questionnaire import QuestionnaireRegistry  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.db import Database  # noqa: E402
from ivr_service.persistence.models import utcnow  # noqa: E402
from ivr_service.services import campaigns, programmes, transactions  # noqa: E402
from ivr_service.services.transactions import Record  # noqa: E402

PREFIXES = ["032", "035", "038", "086", "096", "097", "070", "079", "090", "093", "083", "088", "091", "094", "056"]
FIELDS = ["Đất đai", "Hộ tịch", "Xây dựng", "Môi trường", "Tư pháp", "Giao thông"]


def records(n: int, agency: str, run: int) -> list[Record]:
    """``n`` dossiers returned over the last 30 days; 10 % of the citizens come back twice."""
    rng = random.Random(run)
    now = utcnow()
    people = int(n * 0.9)
    out = []
    for i in range(n):
        person = rng.randrange(people)
        phone = PREFIXES[person % len(PREFIXES)] + f"{(run * 7919 + person) % 10_000_000:07d}"
        returned = now - timedelta(minutes=rng.randrange(30 * 24 * 60))
        out.append(Record(agency=agency, code=f"{agency}-{i:07d}", phone=phone, returned_at=returned.isoformat(),
                          procedure="Cấp giấy chứng nhận quyền sử dụng đất", field=FIELDS[i % len(FIELDS)],
                          officer=f"Cán bộ {i % 40}"))
    return out


def measure(label: str, url: str, n: int, batch: int) -> None:
    migrate.upgrade(url)
    db = Database(url)
    registry = QuestionnaireRegistry(ROOT / "config" / "questionnaires")
    run = time.time_ns() % 1_000_000
    code = f"BENCH-{run}"
    with db.begin() as session:
        agency = campaigns.create_agency(session, code, "Sở Tài nguyên và Môi trường (bench)", utcnow())
        programmes.create_programme(session, registry, agency_id=agency.id, name="Bench", now=utcnow(),
                                    default_host="https://ks.example.vn", delay_minutes=60)
    sent = records(n, code, run)

    def report(chunk: list[Record]) -> transactions.Reported:
        with db.begin() as session:
            return transactions.report(session, utcnow(), chunk, source="api")

    decisions: dict[str, int] = {}
    started = time.perf_counter()
    for start in range(0, n, batch):
        for key, value in report(sent[start:start + batch]).decisions.items():
            decisions[key] = decisions.get(key, 0) + value
    first = time.perf_counter() - started
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does on its own soon after: without fresh statistics the plans
        # chosen while the tables were empty (sequential scans) stay in use.
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE transactions; ANALYZE contacts"))
            conn.commit()
        db.engine.dispose()
    started = time.perf_counter()
    duplicates = sum(report(sent[start:start + batch]).counts["duplicate"] for start in range(0, n, batch))
    again = time.perf_counter() - started
    singles = records(300, code, run + 1)
    singles = [Record(**{**r.__dict__, "code": r.code + "-S"}) for r in singles]
    started = time.perf_counter()
    for record in singles:
        report([record])
    single = time.perf_counter() - started
    db.dispose()
    print(f"{label:<11} new {n / first:,.0f}/s ({n:,} in {first:.1f} s, batches of {batch}); "
          f"repeated {n / again:,.0f}/s ({duplicates:,} duplicates); one at a time {len(singles) / single:,.0f}/s; "
          f"decisions {dict(sorted((str(k), v) for k, v in decisions.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database", default=os.environ.get("TEST_DATABASE_URL"),
                        help="PostgreSQL URL to measure too (default: TEST_DATABASE_URL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite", f"sqlite:///{tmp}/bench.db", args.transactions, args.batch)
    if args.database:
        measure("PostgreSQL", args.database, args.transactions, args.batch)


if __name__ == "__main__":
    main()
