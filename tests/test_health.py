"""``/livez`` and ``/readyz``: public, tiny JSON, 503 naming the failing check; the worker's
own health server; request ids on every response."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from werkzeug.test import Client

from ivr_service import create_app, health
from ivr_service.persistence import migrate
from ivr_service.settings import Settings
from ivr_service.web.observability import SCHEDULER

from .conftest import ROOT


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])   # nothing listens once the socket is closed


def readyz(app: Any) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    return response.status_code, response.json


def app_on(make_settings: Callable[..., Settings], url: str) -> Any:
    return create_app(make_settings(database_url=url))


def test_livez_and_readyz_answer_anonymously_when_all_is_well(app: Any) -> None:
    anonymous = app.test_client()
    live = anonymous.get("/livez", auth=False)
    assert live.status_code == 200 and live.json == {"status": "ok"}
    status, body = readyz(app)
    assert status == 200
    assert body == {"status": "ok", "failed": [], "checks": {"database": "ok", "migrations": "ok"}}
    assert anonymous.get("/healthz").json == {"status": "ok"}     # the old check still answers


def test_readyz_names_the_database_when_it_cannot_be_reached(make_settings: Callable[..., Settings]) -> None:
    app = app_on(make_settings, f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/sipas")
    try:
        status, body = readyz(app)
        assert status == 503
        assert body["status"] == "fail" and "database" in body["failed"]
        assert body["checks"]["database"].startswith("unreachable")
        assert app.test_client().get("/livez").status_code == 200      # alive all the same
    finally:
        app.extensions["sipas"].db.dispose()


def test_readyz_names_the_database_when_it_was_never_migrated(make_settings: Callable[..., Settings],
                                                             tmp_path: Path) -> None:
    app = app_on(make_settings, f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        status, body = readyz(app)
        assert status == 503 and body["failed"] == ["database", "migrations"]
        assert "no SIPAS schema" in body["checks"]["database"]
    finally:
        app.extensions["sipas"].db.dispose()


def test_readyz_names_the_migrations_when_the_database_is_behind(make_settings: Callable[..., Settings],
                                                                tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_revision(health.heads()[0])
    assert head is not None and isinstance(head.down_revision, str)
    migrate.upgrade(url, head.down_revision)
    app = app_on(make_settings, url)
    try:
        status, body = readyz(app)
        assert status == 503 and body["failed"] == ["migrations"]
        assert head.down_revision in body["checks"]["migrations"] and head.revision in body["checks"]["migrations"]
        migrate.upgrade(url)
        assert readyz(app)[0] == 200
    finally:
        app.extensions["sipas"].db.dispose()


class FakeScheduler:
    running = False


def test_readyz_names_the_scheduler_in_a_process_that_runs_one(app: Any) -> None:
    scheduler = FakeScheduler()
    app.extensions[SCHEDULER] = scheduler      # as `serve` registers its scheduler
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["scheduler"]
    scheduler.running = True
    assert readyz(app) == (200, {"status": "ok", "failed": [],
                                 "checks": {"database": "ok", "migrations": "ok", "scheduler": "ok"}})


def test_the_workers_health_server_answers_livez_and_readyz(app: Any) -> None:
    running = {"now": True}
    client = Client(health.wsgi_app(app.extensions["sipas"].db.engine, lambda: running["now"]))
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["scheduler"] == "ok"
    running["now"] = False
    stopped = client.get("/readyz")
    assert stopped.status_code == 503 and stopped.json["failed"] == ["scheduler"]
    assert client.get("/metrics").status_code == 404


def test_every_response_carries_a_request_id(app: Any) -> None:
    client = app.test_client()
    made = client.get("/livez").headers["X-Request-Id"]
    assert len(made) == 32 and made != client.get("/livez").headers["X-Request-Id"]
    assert client.get("/livez", headers={"X-Request-Id": "lb-7f3a.1"}).headers["X-Request-Id"] == "lb-7f3a.1"
    # Not a header to inject into logs with: an odd value is replaced.
    odd = client.get("/livez", headers={"X-Request-Id": "x\" level=ERROR"}).headers["X-Request-Id"]
    assert len(odd) == 32 and "level" not in odd
    refused = client.get("/api/v1/campaigns", auth=False)
    assert refused.status_code == 401 and refused.headers["X-Request-Id"]


def test_a_worker_process_answers_readyz_on_its_health_port(clean_db: str, tmp_path: Path) -> None:
    port = closed_port()
    env = {**os.environ, "SIPAS_DATABASE_URL": clean_db, "SIPAS_WORKER_HEALTH_PORT": str(port),
           "SIPAS_EXPORT_DIR": str(tmp_path / "exports"), "SIPAS_LOG_LEVEL": "WARNING"}
    env.pop("TEST_DATABASE_URL", None)
    worker = subprocess.Popen([sys.executable, "-m", "ivr_service", "worker"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and answer is None:
            assert worker.poll() is None, "the worker exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                    answer = response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:   # 503 while the scheduler starts
                answer = None if exc.code == 503 else (exc.code, {})
                time.sleep(0.1)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)     # polling until the port answers, not timing anything
        assert answer == (200, {"status": "ok", "failed": [],
                                "checks": {"database": "ok", "migrations": "ok", "scheduler": "ok"}})
    finally:
        worker.terminate()
        worker.wait(30)
