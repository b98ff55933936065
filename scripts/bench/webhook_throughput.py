"""Benchmark: concurrent simulated calls answering through the real webhooks.

Starts the web app under gunicorn on PostgreSQL, prepares ``--calls`` dialled attempts,
then has the simulator play them all at once: each simulated citizen is answered, thinks
for ``--think-ms`` (uniform) before every key press and answers the whole questionnaire
(consent, screening, 17 rated items), then the call completes. Every request is signed
(X-Twilio-Signature) and checked by the app, as in production.

Reports requests/s and p50/p99 latency of the keypad answers (the <Gather> actions).
Target (issue 4): p99 under 50 ms with 200 concurrent calls; (issue 18) under 20 ms.

With ``--saturate`` the citizens do not think: ``--callers`` (16) of them play whole
interviews back to back until ``--calls`` interviews are done, and the figures are the
most the web processes can take on this machine (the load generator shares its cores):
keypad answers/s, and the CPU the gunicorn processes spent per keypad answer (from
/proc, every request of the call included: answer, keys, status callback).

    .venv/bin/python scripts/bench/webhook_throughput.py [--calls 200] [--think-ms 1000 3000]
    .venv/bin/python scripts/bench/webhook_throughput.py --saturate [--calls 400] [--callers 16]

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr_service import create_app  # noqa: E402
from ivr_service.persistence import migrate  # noqa: E402
from ivr_service.persistence.models import Attempt, AttemptStatus, CampaignStatus, Contact, ContactStatus, Interview  # noqa: E402
from ivr_service.providers import CallRequest  # noqa: E402
from ivr_service.providers.simulator import CitizenProfile, HttpTransport, SimulatorProvider  # noqa: E402
from ivr_service.services import campaigns  # noqa: E402
from ivr_service.settings import Settings  # noqa: E402
from ivr_service.web.urls import webhook_url  # noqa: E402


def recreate_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def prepare(settings: Settings, calls: int) -> list[tuple[str, str]]:
    """A running campaign with ``calls`` dialled attempts; returns (token, number)."""
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
                              status=AttemptStatus.QUEUED, created_at=now)
            session.add(attempt)
            session.flush()
            pairs.append((attempt.token, contact.phone_e164))
    svc.db.dispose()
    return pairs


class TimedTransport(HttpTransport):
    """Real HTTP, timing every keypad answer (the requests to a gather action)."""

    def __init__(self) -> None:
        super().__init__(timeout_s=30)
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.requests = 0
        self._lock = threading.Lock()

    def post(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        started = time.perf_counter()
        status, body = super().post(url, params, headers)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if "/gather" in url:
                self.latencies.append(elapsed)
        return status, body


def _cpu_of(counts: Callable[[int, str, list[str]], bool]) -> float:
    """User + system CPU so far of the processes for which ``counts(pid, name, fields)``
    holds (Linux /proc; ``fields`` are those after the name)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
            name, after = rest.rsplit(")", 1)
        except (OSError, ValueError):
            continue   # ended meanwhile
        fields = after.split()
        if counts(int(pid), name, fields):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_seconds(parent: int) -> float:
    """CPU so far of a process and its children."""
    return _cpu_of(lambda pid, _name, fields: pid == parent or int(fields[1]) == parent)


def postgres_cpu_seconds() -> float:
    """CPU so far of the PostgreSQL server processes on this machine (the benchmark's
    connections are pooled, so their backends live through the run)."""
    return _cpu_of(lambda _pid, name, _fields: name == "postgres")


def start_gunicorn(app: str, workers: int, threads: int, port: int, env: Mapping[str, str],
                   chdir: Path = ROOT) -> subprocess.Popen[bytes]:
    """``app`` under gunicorn (gthread workers) on 127.0.0.1:``port``, as every benchmark
    here runs it; ``wait_for`` says when it answers."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
         "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "--chdir", str(chdir), app], cwd=ROOT, env=env)


class Load(NamedTuple):
    """A load run: wall seconds, and the CPU seconds spent meanwhile by the server's
    processes, PostgreSQL's and this process (the load generator)."""

    elapsed: float
    server: float
    postgres: float
    own: float


def play(server_pid: int, callers: list[threading.Thread]) -> Load:
    """Start the ``callers``, wait until each is done, and say what it cost."""
    cpu_before, pg_before, own_before = cpu_seconds(server_pid), postgres_cpu_seconds(), time.process_time()
    started = time.perf_counter()
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    return Load(time.perf_counter() - started, cpu_seconds(server_pid) - cpu_before,
                postgres_cpu_seconds() - pg_before, time.process_time() - own_before)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, help="simulated calls (200 at once; --saturate: 400 in all)")
    parser.add_argument("--think-ms", type=int, nargs=2, default=(1000, 3000), metavar=("MIN", "MAX"),
                        help="citizen's pause before each key press (a prompt takes longer to hear)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--saturate", action="store_true",
                        help="no think time: --callers citizens play interviews back to back")
    parser.add_argument("--callers", type=int, default=16, help="with --saturate: calls in progress at once")
    args = parser.parse_args()
    if args.saturate:
        args.think_ms = (0, 0)
    args.calls = args.calls or (400 if args.saturate else 200)

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    recreate_database(url)
    migrate.upgrade(url)
    base = f"http://127.0.0.1:{args.port}"
    settings = Settings(database_url=url, public_base_url=base, log_level="WARNING")
    pairs = prepare(settings, args.calls)

    env = {**os.environ, "SIPAS_DATABASE_URL": url, "SIPAS_PUBLIC_BASE_URL": base, "SIPAS_LOG_LEVEL": "WARNING"}
    server = start_gunicorn("ivr_service:create_app()", args.workers, args.threads, args.port, env)
    try:
        wait_for(args.port)
        profile = CitizenProfile(answer_rate=1, busy_rate=0, failed_rate=0, refusal_rate=0, hangup_rate=0,
                                 invalid_rate=0.03, silence_rate=0.02, repeat_rate=0.01, no_opinion_rate=0.03,
                                 feedback_rate=1, think_ms=tuple(args.think_ms), seed=4)
        transport = TimedTransport()
        app = create_app(settings)
        simulator = SimulatorProvider.from_settings(settings, transport, profile, app.extensions["sipas"].registry.get,
                                                    max_workers=args.callers if args.saturate else args.calls)
        cpu_before, pg_before, own_before = cpu_seconds(server.pid), postgres_cpu_seconds(), time.process_time()
        started = time.perf_counter()
        for token, number in pairs:
            simulator.place_call(CallRequest(
                to=number, from_=None, answer_url=webhook_url(base, "answer", token) + "?q=sipas-2024",
                status_url=webhook_url(base, "status", token), idempotency_key=token))
        simulator.wait_idle(timeout=600)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
        pg_cpu, own_cpu = postgres_cpu_seconds() - pg_before, time.process_time() - own_before
        simulator.close()
        errors = [error for call in simulator.calls.values() for error in call.errors]
        db = app.extensions["sipas"].db
        with db.begin() as session:
            from sqlalchemy import func, select
            complete = session.scalar(select(func.count()).select_from(Interview).where(
                Interview.status == "complete"))
        db.dispose()
    finally:
        server.terminate()
        server.wait(10)

    ordered = sorted(transport.latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"database            {make_url(url).get_backend_name()} ({make_url(url).database})")
    print(f"web                 gunicorn, {args.workers} gthread workers x {args.threads} threads "
          f"(on {os.cpu_count()} cores, shared with the simulator)")
    if args.saturate:
        print(f"calls               {args.calls}, {args.callers} at a time back to back, no think time")
    else:
        print(f"calls               {args.calls} concurrent, think {args.think_ms[0]}-{args.think_ms[1]} ms per key")
    print(f"interviews complete {complete} of {args.calls} in {elapsed:.1f} s")
    print(f"requests            {transport.requests} ({transport.requests / elapsed:.0f}/s), "
          f"status codes {dict(sorted(transport.statuses.items()))}")
    print(f"keypad answers      {len(ordered)} ({len(ordered) / elapsed:.0f}/s)")
    print(f"latency p50         {statistics.median(ordered) * 1000:.1f} ms")
    print(f"latency p99         {p99 * 1000:.1f} ms" + ("" if args.saturate else "   (target < 20 ms)"))
    print(f"latency max         {ordered[-1] * 1000:.1f} ms")
    print(f"server CPU          {server_cpu:.1f} s in the gunicorn processes, "
          f"{server_cpu / len(ordered) * 1000:.2f} ms per keypad answer (all the call's requests included)")
    per = 1000 / len(ordered)
    machine = (server_cpu + pg_cpu + own_cpu) * per
    print(f"machine CPU         {machine:.2f} ms per keypad answer: gunicorn {server_cpu * per:.2f} + PostgreSQL "
          f"{pg_cpu * per:.2f} + load generator {own_cpu * per:.2f} "
          f"(at most {os.cpu_count() or 1} x 1000 / {machine:.2f} = {(os.cpu_count() or 1) * 1000 / machine:.0f} "
          f"answers/s on this machine's cores)")
    print(f"errors              {len(errors)}")
    if errors:
        print("first error:", errors[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
