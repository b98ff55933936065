"""Liveness and readiness, as plain checks that name what failed.

* live: the process answers (no database: a database outage must not get every process
  restarted);
* ready: the database answers, holds the schema, and is at the migrations' head (a
  process of a newer release must not serve an older schema, nor the reverse); in a
  process that runs the scheduler (a worker, the all-in-one server), the scheduler runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import BaseWSGIServer, make_server

from .persistence.migrate import alembic_config


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)   # name -> "ok" or what is wrong

    @property
    def failed(self) -> list[str]:
        return [name for name, state in self.checks.items() if state != "ok"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def body(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "fail", "failed": self.failed, "checks": self.checks}


@cache
def heads() -> tuple[str, ...]:
    """The migrations' head revision(s) this code expects (read once per process)."""
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def readiness(engine: Engine, scheduler_running: Callable[[], bool] | None = None) -> Readiness:
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            has_schema = inspect(conn).has_table("alembic_version")
            current = MigrationContext.configure(conn).get_current_revision() if has_schema else None
    except SQLAlchemyError as exc:
        # The driver's message may carry the host and user, never the password; keep it short.
        checks["database"] = f"unreachable: {type(getattr(exc, 'orig', None) or exc).__name__}"
        checks["migrations"] = "unknown"
    else:
        if not has_schema:
            checks["database"] = "reachable but holds no SIPAS schema (run `db upgrade`)"
            checks["migrations"] = "none applied"
        else:
            checks["database"] = "ok"
            expected = heads()
            checks["migrations"] = "ok" if current in expected else \
                f"database at {current}, code expects {', '.join(expected)} (run `db upgrade`)"
    if scheduler_running is not None:
        checks["scheduler"] = "ok" if scheduler_running() else "not running"
    return Readiness(checks)


def wsgi_app(engine: Engine, scheduler_running: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    """``/livez`` and ``/readyz`` alone, for a worker process (which serves nothing else)."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            code, body = 200, {"status": "ok"}
        elif path == "/readyz":
            state = readiness(engine, scheduler_running)
            code, body = (200 if state.ok else 503), state.body()
        else:
            code, body = 404, {"status": "not found"}
        data = json.dumps(body).encode()
        start_response(f"{code} {HTTPStatus(code).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    return app


def serve_in_thread(app: Callable[..., Iterable[bytes]], port: int) -> BaseWSGIServer:
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
