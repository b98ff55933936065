"""Benchmark: the console's live monitor of a campaign with 1,000,000 attempts on PostgreSQL.

Builds the data of ``progress_query.py`` (two campaigns, each ``--attempts`` attempts over
``--contacts`` contacts created over the last 10 days, so every query must pick its
campaign's rows out of twice as many), adds an interview for every contact that has a
respondent's disposition (complete, partial, refusal, break-off; ended over the same 10
days: 200,000 interviews and 80,000 completes a campaign) and provider error codes on the
failed attempts of the last hour. Then, signed in as an admin through the Flask test
client, GETs the monitor page (``/campaigns/<id>``) and the fragment it polls every 5 s
(``/campaigns/<id>/live``) ``--requests`` times each and prints p50/p95/max (the first
request, which reads the hours and days that have ended, apart). Target (issue 15): p95
under 150 ms. Then times the call length and cost fragment the page loads once.

    .venv/bin/python scripts/bench/monitor_page.py [--attempts 1000000] [--requests 50] [--rebuild]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench_monitor) is
dropped and filled when it does not hold the data yet (or with ``--rebuild``); otherwise
the data is reused and timed at the moment it was built.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from ivr_service import create_app  # noqa: E402
from ivr_service.core.access import Grant, Role  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.models import Campaign, Interview  # noqa: E402
from ivr_service.services import access, campaigns  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress_query import fill  # noqa: E402

ADMIN, PASSWORD = "bench-admin", "bench-password-1"

# One interview per contact with a respondent's disposition, ended when its contact's
# attempts were made (the same spread over 10 days as progress_query's attempts).
INTERVIEWS_SQL = """
INSERT INTO interviews (contact_id, campaign_id, questionnaire_key, channel, status, retries, repeats,
                        started_at, ended_at)
SELECT c.id, c.campaign_id, 'sipas-2024', 'voice',
       CASE c.disposition WHEN '1.1' THEN 'complete' WHEN '1.2' THEN 'partial' WHEN '2.11' THEN 'refused'
                          ELSE 'break_off' END, 0, 0,
       :now - make_interval(secs => ((c.id - :first)::float8 / :contacts) * 864000) - interval '2 minutes',
       :now - make_interval(secs => ((c.id - :first)::float8 / :contacts) * 864000)
FROM contacts c
WHERE c.campaign_id = :campaign AND c.disposition IN ('1.1', '1.2', '2.11', '2.12')
"""

# Provider errors on the failed calls of the last hour (the monitor's error table).
ERRORS_SQL = """
UPDATE attempts SET error_code = (ARRAY['31005', '31009', '13224', 'lost'])[id % 4 + 1]
WHERE campaign_id = :campaign AND status = 'failed' AND created_at >= :now - interval '1 hour'
"""


def settings(url: str) -> Settings:
    return Settings(database_url=url, log_level="WARNING", public_base_url="https://survey.example.gov.vn",
                    secret_key="bench" * 8)


def built(url: str, attempts: int) -> tuple[int, datetime] | None:
    """The bench campaign and the moment its data was built, when the database holds it."""
    try:
        migrate.upgrade(url)            # data built by an older checkout gets the new indexes
        app = create_app(settings(url))
    except SQLAlchemyError:
        return None
    svc = app.extensions["sipas"]
    try:
        with svc.db.begin() as session:
            campaign = session.scalars(select(Campaign).where(Campaign.name == "bench")).first()
            if campaign is None:
                return None
            progress = campaigns.progress(session, campaign.id, campaign.created_at)
            interviews = session.scalar(select(func.count()).select_from(Interview)
                                        .where(Interview.campaign_id == campaign.id))
            if progress.attempts != attempts or not interviews:
                return None
            return campaign.id, campaign.created_at
    except SQLAlchemyError:
        return None
    finally:
        svc.db.dispose()


def build(url: str, attempts: int, contacts: int) -> tuple[int, datetime]:
    started = time.perf_counter()
    campaign_id = fill(url, attempts, contacts)
    app = create_app(settings(url))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        now = session.scalar(select(Campaign.created_at).where(Campaign.id == campaign_id))
        assert now is not None
        for campaign in session.scalars(select(Campaign)):
            campaign.target_completes = 150_000
            campaign.ends_at = now + timedelta(days=20)
            campaign.started_at = now - timedelta(days=10)
        access.create_user(session, ADMIN, PASSWORD, now, grants=[Grant(Role.ADMIN, None)])
    with svc.db.engine.begin() as conn:
        for campaign in conn.execute(text("SELECT id FROM campaigns ORDER BY id")).scalars():
            first = conn.execute(text("SELECT min(id) FROM contacts WHERE campaign_id = :c"),
                                 {"c": campaign}).scalar()
            conn.execute(text(INTERVIEWS_SQL), {"campaign": campaign, "first": first, "contacts": contacts,
                                                "now": now})
            conn.execute(text(ERRORS_SQL), {"campaign": campaign, "now": now})
    with svc.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    svc.db.dispose()
    print(f"  built in {time.perf_counter() - started:.0f} s")
    return campaign_id, now


def measure(url: str, campaign_id: int, at: datetime, requests: int) -> None:
    app = create_app(settings(url), clock=lambda: at + timedelta(seconds=1))
    client = app.test_client()
    signed = client.post("/auth/login", json={"username": ADMIN, "password": PASSWORD})
    assert signed.status_code == 200, signed.get_data(as_text=True)
    for path in (f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/live"):
        timings = []
        body = ""
        for _ in range(requests + 1):
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            body = response.get_data(as_text=True)
        assert re.search(r"1\.000\.000|1,000,000", body), "the page does not show the million attempts"
        cold, warm = timings[0], sorted(timings[1:])
        p95 = warm[min(len(warm) - 1, int(len(warm) * 0.95))]
        print(f"GET {path}: {len(body):,} bytes; first {cold:.0f} ms, then over {len(warm)} requests "
              f"p50 {statistics.median(warm):.1f} ms, p95 {p95:.1f} ms, max {warm[-1]:.1f} ms (target p95 < 150 ms)")
    # Loaded once by the page (never polled): it reads every connected call.
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert client.get(f"/campaigns/{campaign_id}/calls", headers={"HX-Request": "true"}).status_code == 200
        timings.append((time.perf_counter() - started) * 1000)
    print(f"GET /campaigns/{campaign_id}/calls (call length and cost, loaded once by the page, not polled): "
          f"p50 {statistics.median(timings):.0f} ms over {len(timings)} requests")
    app.extensions["sipas"].db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=400_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rebuild", action="store_true", help="fill the database again even if it holds the data")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench_monitor")
    print(f"PostgreSQL, {os.cpu_count()} cores")
    found = None if args.rebuild else built(url, args.attempts)
    if found is None:
        print(f"filling two campaigns of {args.attempts:,} attempts and {args.contacts:,} contacts")
        found = build(url, args.attempts, args.contacts)
    else:
        print("reusing the data already built")
    measure(url, *found, args.requests)


if __name__ == "__main__":
    main()
