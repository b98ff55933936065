"""Benchmark: concurrent citizens answering the web form at their SMS links.

Starts the web app under gunicorn (as the Procfile runs it) on the database given, makes
``--respondents`` live SMS links, then runs one thread per respondent: GET the page, think
for ``--think-ms`` (uniform; a person reads the item on a phone), POST the answer (the
reply is the 303 to the next page), GET the next page … until the thanks page. Every
respondent answers the whole web form (24 items: no feedback, so factor V is skipped).

Reports p50/p99 latency of the pages (GET) and of the answers (POST), and the page weight
(HTML of an item page plus the stylesheet). Targets (issue 12): p99 < 50 ms at 100
concurrent respondents; page weight < 30 KB.

    .venv/bin/python scripts/bench/form_latency.py [--database-url URL] [--respondents 100]
        [--think-ms 2000 5000]

The database is emptied first: a PostgreSQL URL has its public schema dropped and
recreated; without a URL a fresh SQLite file in a temporary directory is used.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr_service import create_app  # noqa: E402
from ivr_service.core.messages import new_code  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.db import make_engine  # noqa: E402
from ivr_service.persistence.models import (  # noqa: E402
    Attempt,
    AttemptStatus,
    CampaignStatus,
    Contact,
    ContactStatus,
    SurveyLink,
)
from ivr_service.services import campaigns  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402

ITEM = re.compile(r'name="item" value="([A-Za-z0-9_]+)"')
OPTION = re.compile(r'name="answer" id="a[0-9]" value="([0-9])"')


def reset(url: str) -> None:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(url)


def prepare(settings: Settings, respondents: int) -> list[str]:
    """A running SMS campaign with one live link per respondent; returns the codes."""
    app = create_app(settings)
    svc = app.extensions["sipas"]
    now = svc.clock()
    codes = []
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "BENCH", "Sở Benchmark", now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="bench",
                                             questionnaire="sipas-2024", now=now,
                                             channel_plan=[{"channel": "sms", "max_attempts": 1}])
        campaign.status = CampaignStatus.RUNNING
        for i in range(respondents):
            contact = Contact(campaign_id=campaign.id, phone_e164=f"+8490{i:07d}", channel="sms",
                              status=ContactStatus.ACTIVE, attempt_count=1, channel_attempts=1, created_at=now)
            session.add(contact)
            session.flush()
            attempt = Attempt(contact_id=contact.id, campaign_id=campaign.id, channel="sms", number=1,
                              provider="simulator", status=AttemptStatus.IN_PROGRESS, created_at=now)
            session.add(attempt)
            session.flush()
            code = new_code()
            session.add(SurveyLink(code=code, attempt_id=attempt.id, contact_id=contact.id, campaign_id=campaign.id,
                                   created_at=now, expires_at=now + timedelta(days=7)))
            codes.append(code)
    svc.db.dispose()
    return codes


class Results:
    def __init__(self) -> None:
        self.pages: list[float] = []
        self.answers: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.finished = 0
        self.lock = threading.Lock()

    def note(self, kind: list[float], elapsed: float, status: int) -> None:
        with self.lock:
            kind.append(elapsed)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def respondent(port: int, code: str, think: tuple[int, int], seed: int, results: Results) -> None:
    rng = random.Random(seed)
    headers = {"User-Agent": "Mozilla/5.0 (Linux; Android 10) Mobile bench"}

    def request(method: str, path: str, body: str | None = None) -> tuple[int, str, float]:
        send = dict(headers)
        if body is not None:
            send["Content-Type"] = "application/x-www-form-urlencoded"
        # A new connection per request, connect time included: gunicorn closes idle
        # keep-alive connections after 2 s, shorter than a person's think time.
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=send)
            response = conn.getresponse()
            data = response.read().decode()
        finally:
            conn.close()
        return response.status, data, time.perf_counter() - started

    try:
        # People open their links at different moments, not all in the same millisecond.
        time.sleep(rng.uniform(0, think[1]) / 1000)
        status, page, elapsed = request("GET", f"/s/{code}?lang=vi")
        results.note(results.pages, elapsed, status)
        for _ in range(40):
            found = ITEM.search(page)
            if found is None:
                break
            options = OPTION.findall(page)
            item = found.group(1)
            key = "2" if item == "SCREEN_FEEDBACK" else rng.choice(options)
            time.sleep(rng.uniform(*think) / 1000)
            status, _, elapsed = request("POST", f"/s/{code}", f"item={item}&answer={key}&lang=vi")
            results.note(results.answers, elapsed, status)
            if status != 303:
                raise RuntimeError(f"{code}: answer to {item} got HTTP {status}")
            status, page, elapsed = request("GET", f"/s/{code}?lang=vi")
            results.note(results.pages, elapsed, status)
        if "Cảm ơn Ông/bà!" not in page:
            raise RuntimeError(f"{code}: did not end on the thanks page")
        with results.lock:
            results.finished += 1
    except Exception as exc:  # reported at the end
        with results.lock:
            results.errors.append(f"{type(exc).__name__}: {exc}")


def weight(port: int, code: str) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sizes = []
    for path in (f"/s/{code}", "/survey-static/survey.css"):
        conn.request("GET", path, headers={"User-Agent": "bench-preview-bot"})   # not an open
        sizes.append(len(conn.getresponse().read()))
    conn.close()
    return sizes[0], sizes[1]


def warm_up(port: int, code: str, requests: int) -> None:
    """Every worker loads its templates, questionnaire and connections before timing
    starts (a deploy does the same behind its health check): GETs as a preview bot (not
    opens) and answers to C01 again and again (the back button), on a link of its own."""
    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(4):
            conn.request("GET", f"/s/{code}", headers={"User-Agent": "warm-up-bot"})
            conn.getresponse().read()
            conn.request("POST", f"/s/{code}", body="item=C01&answer=4",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            conn.getresponse().read()
        conn.close()
    threads = [threading.Thread(target=run) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_for(port: int) -> None:
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("gunicorn did not start")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (emptied!); default: a new SQLite file")
    parser.add_argument("--respondents", type=int, default=100, help="concurrent respondents")
    parser.add_argument("--think-ms", type=int, nargs=2, default=(2000, 5000), metavar=("MIN", "MAX"),
                        help="time a person takes to read an item and choose")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=5098)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="form-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    reset(url)
    base = f"http://127.0.0.1:{args.port}"
    settings = Settings(database_url=url, public_base_url=base, log_level="WARNING", export_dir=f"{tmp}/exports")
    codes = prepare(settings, args.respondents + 1)
    warm_code = codes.pop()

    env = {**os.environ, "SIPAS_DATABASE_URL": url, "SIPAS_PUBLIC_BASE_URL": base, "SIPAS_LOG_LEVEL": "WARNING",
           "SIPAS_EXPORT_DIR": f"{tmp}/exports"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--worker-class", "gthread",
         "--threads", str(args.threads), "--bind", f"127.0.0.1:{args.port}", "--log-level", "warning",
         "ivr_service:create_app()"], cwd=ROOT, env=env)
    results = Results()
    try:
        wait_for(args.port)
        html_bytes, css_bytes = weight(args.port, codes[0])
        warm_up(args.port, warm_code, args.workers * args.threads)
        threads = [threading.Thread(target=respondent, args=(args.port, code, tuple(args.think_ms), i, results))
                   for i, code in enumerate(codes)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)

    parsed = make_url(url)
    print(f"database            {parsed.get_backend_name()} ({parsed.database})")
    print(f"web                 gunicorn, {args.workers} gthread workers x {args.threads} threads "
          f"(on {os.cpu_count()} cores, shared with the respondents)")
    print(f"respondents         {args.respondents} concurrent, think {args.think_ms[0]}-{args.think_ms[1]} ms "
          f"per item; {results.finished} finished in {elapsed:.1f} s")
    print(f"requests            {len(results.pages) + len(results.answers)} "
          f"({(len(results.pages) + len(results.answers)) / elapsed:.0f}/s), "
          f"status codes {dict(sorted(results.statuses.items()))}")
    for name, values in (("page (GET)", results.pages), ("answer (POST)", results.answers)):
        if values:
            print(f"{name:<19} n={len(values)}  p50 {statistics.median(values) * 1000:.1f} ms  "
                  f"p99 {percentile(values, 0.99) * 1000:.1f} ms  max {max(values) * 1000:.1f} ms  (target p99 < 50)")
    print(f"page weight         {html_bytes + css_bytes} bytes (HTML {html_bytes} + CSS {css_bytes}; "
          f"target < 30720)")
    print(f"errors              {len(results.errors)}")
    if results.errors:
        print("first error:", results.errors[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
