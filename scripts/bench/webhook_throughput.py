"""Benchmark: keypad-answer webhooks per second for one web process on PostgreSQL.

Starts one gunicorn process (gthread) serving the app, prepares answered calls in the
database, then drives whole interviews through the real webhook endpoints from
concurrent client threads. Reports requests/s and p50/p99 latency of the mid-survey
keypad answers (the <Gather> action requests).

    .venv/bin/python scripts/bench/webhook_throughput.py [--calls 300] [--clients 8]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.models import (Attempt, AttemptStatus, CampaignStatus, Contact,  # noqa: E402
                                            ContactStatus)
from ivr_service.services import campaigns  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

ANSWER_KEYS = {"CONSENT": "1", "SCREEN_FEEDBACK": "1"}


def recreate_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def prepare(settings: Settings, calls: int) -> list[tuple[str, str]]:
    """Create a running campaign with ``calls`` answered attempts; returns (token, sid)."""
    app = create_app(settings)
    svc = app.extensions["sipas"]
    now = svc.clock()
    pairs = []
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "BENCH", "Sở Benchmark", now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="bench",
                                             questionnaire="sipas-2024", now=now)
        campaign.status = CampaignStatus.RUNNING
        for i in range(calls):
            contact = Contact(campaign_id=campaign.id, phone_e164=f"+8490{i:07d}", field="bench",
                              status=ContactStatus.ACTIVE, attempt_count=1, created_at=now)
            session.add(contact)
            session.flush()
            attempt = Attempt(contact_id=contact.id, campaign_id=campaign.id, number=1, provider="simulator",
                              status=AttemptStatus.INITIATED, created_at=now)
            session.add(attempt)
            session.flush()
            pairs.append((attempt.token, "CA" + uuid.uuid4().hex))
    svc.db.dispose()
    return pairs


def interview(host: str, port: int, token: str, sid: str, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def post(path: str, params: dict[str, str]) -> str:
        conn.request("POST", path, body=urlencode({"CallSid": sid, "CallStatus": "in-progress", **params}),
                     headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            errors.append(f"{response.status} {path}: {body[:100]}")
        return body

    body = post(f"/voice/{token}/answer", {})
    while "<Gather" in body:
        action = body.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        path = urlsplit(action).path + "?" + urlsplit(action).query
        item = path.rsplit("item=", 1)[1]
        started = time.perf_counter()
        body = post(path, {"Digits": ANSWER_KEYS.get(item, "4")})
        latencies.append(time.perf_counter() - started)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads in the one web process")
    parser.add_argument("--port", type=int, default=5099)
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    base = f"http://127.0.0.1:{args.port}"
    settings = Settings(database_url=url, public_base_url=base, secret_key="bench", log_level="WARNING")
    pairs = prepare(settings, args.calls)

    env = {**os.environ, "SIPAS_DATABASE_URL": url, "SIPAS_PUBLIC_BASE_URL": base, "SIPAS_SECRET_KEY": "bench",
           "SIPAS_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads",
         str(args.threads), "--bind", f"127.0.0.1:{args.port}", "--log-level", "warning",
         "ivr_service:create_app()"], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        latencies: list[float] = []
        errors: list[str] = []
        queue = list(pairs)
        lock = threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    token, sid = queue.pop()
                interview("127.0.0.1", args.port, token, sid, latencies, errors)

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)

    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"database            {make_url(url).get_backend_name()} ({make_url(url).database})")
    print(f"web process         1 gunicorn gthread worker, {args.threads} threads; {args.clients} client threads")
    print(f"interviews          {args.calls} complete interviews, {len(latencies)} keypad answers")
    print(f"keypad answers/s    {len(latencies) / elapsed:.0f}")
    print(f"latency p50         {statistics.median(ordered) * 1000:.1f} ms")
    print(f"latency p99         {p99 * 1000:.1f} ms")
    print(f"errors              {len(errors)}")
    if errors:
        print("first error:", errors[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
