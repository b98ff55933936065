"""Benchmark: what access control costs per request.

Times the same API call (``GET /api/v1/campaigns/<id>``) through the WSGI app in process,
``--requests`` times each: with an API token, with a session cookie, and with the access
guard taken out (the baseline), and prints p50/p95 and the difference; then times a
sign-in (an argon2id verification) ``--logins`` times.

    .venv/bin/python scripts/bench/auth_overhead.py [--requests 2000] [--logins 20]

BENCH_DATABASE_URL (default: a SQLite file in a temporary directory) is migrated first;
for PostgreSQL give e.g. postgresql://postgres@127.0.0.1:5432/sipas_bench_auth (dropped and
recreated).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr_service import create_app  # noqa: E402
from ivr_service.core.access import TOKEN_SCOPES, Grant, Role  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.services import access, campaigns  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402
from ivr_service.web import access as web_access  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_throughput import recreate_database  # noqa: E402


def timed(call: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (f"p50 {statistics.median(ordered):6.2f} ms  p95 {ordered[int(len(ordered) * 0.95)]:6.2f} ms  "
            f"mean {statistics.fmean(ordered):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    if url.startswith("postgresql"):
        recreate_database(url)
    migrate.upgrade(url)
    settings = Settings(database_url=url, log_level="ERROR", secret_key="bench" * 8)
    app = create_app(settings)
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "BENCH", "Sở Thử nghiệm", now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="bench",
                                             questionnaire="sipas-2024", now=now)
        access.create_user(session, "bench", "bench-password", now, grants=[Grant(Role.MANAGER, agency.id)])
        token = access.create_token(session, "bench", TOKEN_SCOPES, agency.id, now).secret
    path = f"/api/v1/campaigns/{campaign.id}"

    token_client = app.test_client()
    with_token = timed(lambda: token_client.get(path, headers={"Authorization": f"Bearer {token}"}),
                       args.requests)
    session_client = app.test_client()
    assert session_client.post("/auth/login", json={"username": "bench", "password": "bench-password"}).status_code \
        == 200
    with_session = timed(lambda: session_client.get(path), args.requests)
    logins = timed(lambda: app.test_client().post("/auth/login", json={"username": "bench",
                                                                       "password": "bench-password"}),
                   args.logins)

    # The baseline: the same app and request with the access guard removed.
    app.before_request_funcs[None].remove(web_access.guard)
    open_client = app.test_client()
    assert open_client.get(path).status_code == 200
    baseline = timed(lambda: open_client.get(path), args.requests)

    print(f"database: {url.split('://')[0]}; {args.requests} requests of GET {path}")
    print(f"  no access control  {summary(baseline)}")
    print(f"  API token          {summary(with_token)}   "
          f"+{statistics.median(with_token) - statistics.median(baseline):.2f} ms at p50")
    print(f"  session cookie     {summary(with_session)}   "
          f"+{statistics.median(with_session) - statistics.median(baseline):.2f} ms at p50")
    print(f"sign-in (argon2id verify), {args.logins} runs: {summary(logins)}")
    svc.db.dispose()


if __name__ == "__main__":
    main()
