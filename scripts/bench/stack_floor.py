"""Benchmark: the most requests per second this machine gives with the stack alone
(gunicorn, Flask, SQLAlchemy, psycopg, PostgreSQL) and none of the service's own work:
the ceiling beside which ``webhook_throughput.py --saturate`` and ``feed_http.py`` read.

A bare Flask app under gunicorn, loaded as the service is loaded (16 callers on
keep-alive connections, the load generator on the same cores), answers each request with
a fixed reply after ``--statements`` statements (``SELECT 1``), in one of two shapes:

- ``webhook`` (a key press): a signed form POST whose signature is checked as the service
  checks it (``web.voice.signed``), the statements in one transaction (so BEGIN and
  COMMIT are two more round trips: the service's key press on PostgreSQL is BEGIN, lock,
  read, the answer with the interview, COMMIT), a TwiML reply;
- ``feed`` (a report to the intake): a JSON record read with ``request.get_json()``, the
  statements each on its own (autocommit, as the intake's token read and INSERT), a 202
  JSON reply.

The statements run through ``--db``: ``core`` (SQLAlchemy ``Connection.execute`` on a
pooled engine, as the service runs them), ``psycopg`` (a connection per thread, no
SQLAlchemy) or ``none`` (no database: HTTP and Flask only).

Prints requests/s and the machine's CPU per request (gunicorn, PostgreSQL, the load
generator). A call takes 1.2 requests per keypad answer (its answer webhook and status
callbacks included), so for the webhook shape ``requests/s / 1.2`` is the ceiling in
keypad answers/s that the service, doing its own work on top, cannot pass.

    .venv/bin/python scripts/bench/stack_floor.py [--shape webhook] [--db none psycopg core]
        [--statements 3] [--workers 4] [--threads 4] [--requests 12000]
    .venv/bin/python scripts/bench/stack_floor.py --shape feed --statements 2 --workers 1

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) must exist
(any database: only ``SELECT 1`` runs).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from twilio.request_validator import RequestValidator  # noqa: E402
from webhook_throughput import play, start_gunicorn, wait_for  # noqa: E402

from ivr_service.providers.simulator import HttpTransport  # noqa: E402

TOKEN = "0" * 32
TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/t/gather?item=a2" '
         'numDigits="1" timeout="5"><Say language="vi-VN">Câu hỏi tiếp theo</Say></Gather></Response>')
RECORD = {"agency": "STNMT", "code": "STNMT-0000001", "phone": "0912345678", "returned_at": "2026-12-01T09:30:00+07:00",
          "procedure": "Cấp giấy chứng nhận quyền sử dụng đất", "field": "Đất đai", "officer": "Cán bộ 7"}


class JsonSender:
    """POSTs a raw body over a keep-alive connection per thread (the simulator's transport
    sends forms)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._local = threading.local()

    def post(self, path: str, body: str, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("POST", path, body=body.encode(), headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()


def floor_app() -> Any:
    """The app gunicorn serves (``stack_floor:floor_app()``), set by the FLOOR_* variables."""
    import psycopg
    from flask import Flask, Response, abort, jsonify, request
    from sqlalchemy import create_engine, text

    from ivr_service.web.voice import signed

    shape, mode, statements = os.environ["FLOOR_SHAPE"], os.environ["FLOOR_DB"], int(os.environ["FLOOR_STATEMENTS"])
    base = os.environ["FLOOR_BASE_URL"]
    autocommit = shape == "feed"
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sipas_bench")
    engine = None
    if mode == "core":
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=4,
                               **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    local = threading.local()
    select_1 = text("SELECT 1")

    def run_statements() -> None:
        if mode == "psycopg":
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = psycopg.connect(url, autocommit=autocommit)
            for _ in range(statements):
                conn.execute("SELECT 1").fetchall()
            if not autocommit:
                conn.commit()
        elif engine is not None:
            with engine.connect() as connection:
                for _ in range(statements):
                    connection.execute(select_1).all()
                if not autocommit:
                    connection.commit()

    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/voice/<token>/<kind>")
    def hook(token: str, kind: str) -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signed(TOKEN, base + request.full_path.rstrip("?"), request.form, signature, "HMAC_SHA1"):
            abort(403)
        run_statements()
        return Response(TWIML, mimetype="text/xml")

    @app.post("/api/v1/transactions/intake")
    def intake() -> tuple[Response, int]:
        record = request.get_json()
        if not isinstance(record, dict) or not record.get("code"):
            abort(422)
        run_statements()
        return jsonify({"id": 1, "status": "queued"}), 202

    return app


def run(mode: str, args: argparse.Namespace) -> str:
    base = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "FLOOR_SHAPE": args.shape, "FLOOR_DB": mode, "FLOOR_STATEMENTS": str(args.statements),
           "FLOOR_BASE_URL": base}
    server = start_gunicorn("stack_floor:floor_app()", args.workers, args.threads, args.port, env,
                            chdir=Path(__file__).parent)
    try:
        wait_for(args.port)
        transport, signer = HttpTransport(timeout_s=30), RequestValidator(TOKEN)
        sender = JsonSender("127.0.0.1", args.port)
        hook = f"{base}/voice/{'ab' * 16}/gather?item=a1"
        form = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "1" * 32, "Digits": "4",
                "From": "+842873000000", "To": "+84901234567", "CallStatus": "in-progress", "Direction": "outbound-api"}
        body = json.dumps(RECORD)
        per_caller = args.requests // args.callers
        failures: list[int] = []

        def send() -> int:
            if args.shape == "webhook":
                return transport.post(hook, form, {"X-Twilio-Signature": signer.compute_signature(hook, form)})[0]
            return sender.post("/api/v1/transactions/intake", body, {"Authorization": "Bearer sipas_floor"})[0]

        def caller() -> None:
            for _ in range(per_caller):
                status = send()
                if status not in (200, 202):
                    failures.append(status)

        load = play(server.pid, [threading.Thread(target=caller) for _ in range(args.callers)])
    finally:
        server.terminate()
        server.wait(10)
    if failures:
        raise SystemExit(f"{mode}: {len(failures)} requests failed, first with HTTP {failures[0]}")
    done = per_caller * args.callers
    rate, per = done / load.elapsed, 1000 / done
    server_cpu, pg_cpu, own_cpu = load.server * per, load.postgres * per, load.own * per
    if mode == "none":
        work = "no database"
    elif args.shape == "webhook":
        work = f"{args.statements} + 2 round trips, {mode}"
    else:
        work = f"{args.statements} statements, {mode}"
    ceiling = f" (<= {rate / 1.2:5,.0f} keypad answers/s)" if args.shape == "webhook" else ""
    return (f"{work:<26} {rate:6,.0f} requests/s{ceiling}   machine {server_cpu + pg_cpu + own_cpu:.2f} ms a "
            f"request: gunicorn {server_cpu:.2f} + PostgreSQL {pg_cpu:.2f} + load generator {own_cpu:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("webhook", "feed"), default="webhook")
    parser.add_argument("--db", nargs="+", choices=("none", "psycopg", "core"), default=["none", "psycopg", "core"])
    parser.add_argument("--statements", type=int, help="per request (default: 3 for a webhook, 2 for the feed)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--callers", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--port", type=int, default=5098)
    args = parser.parse_args()
    if args.statements is None:
        args.statements = 3 if args.shape == "webhook" else 2
    print(f"{args.shape}: gunicorn {args.workers} gthread workers x {args.threads} threads, {args.callers} callers, "
          f"{os.cpu_count()} cores shared with the load generator"
          + ("; every request signed and checked" if args.shape == "webhook" else ""))
    for mode in args.db:
        print(run(mode, args), flush=True)


if __name__ == "__main__":
    main()
