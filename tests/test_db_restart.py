"""PostgreSQL "restarts" mid-campaign: every server connection of the database is killed,
twice in a row, while a web process under gunicorn and two workers run a campaign whose
simulated citizens call the signed webhooks over HTTP. The server is shared with other
runs, so the restart is simulated with ``pg_terminate_backend`` on this database's
connections, which is what every client sees of a restart: its connections die at once.

The processes recover on their own (the pool pings a connection the server has closed, or
that sat idle, before handing it out; a failed job round is logged and the next one runs),
nothing is lost and nothing is dialled twice. The cluster, its short questionnaire and its call log come from test_multi_worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ivr_service.persistence import db as db_module
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Answer, Attempt, Campaign, Contact, ContactStatus

from . import test_multi_worker as cluster_run
from .conftest import ROOT
from .test_multi_worker import cluster, cluster_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                                reason="simulates a PostgreSQL restart with pg_terminate_backend; SQLite has "
                                       "no server connections to kill (this test runs in CI on PostgreSQL)")

CONTACTS = 800
WORKERS = 2
DEADLINE_S = 420

TERMINATE = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_the_pool_pings_only_a_connection_that_was_idle_long_or_hears_from_the_server(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    killer = make_engine(database_url, isolation_level="AUTOCOMMIT")
    pings: list[object] = []
    do_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    pid = text("SELECT pg_backend_pid()")
    try:
        with engine.connect() as conn:
            first = conn.scalar(pid)
        for _ in range(3):  # taken back at once, as a busy web process does: no round trip
            with engine.connect() as conn:
                assert conn.scalar(pid) == first
        assert pings == []

        with killer.connect() as conn:  # the server ends the idle connection
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        goodbye = time.monotonic() + 5
        while not db_module._readable(engine.pool._pool.queue[0].dbapi_connection):
            assert time.monotonic() < goodbye, "the server's goodbye never reached the socket"
            time.sleep(0.01)  # waiting for the kernel to deliver the FIN, not timing anything
        with engine.connect() as conn:  # pinged, found dead, replaced: the caller sees nothing of it
            second = conn.scalar(pid)
        assert second != first
        assert len(pings) == 1

        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # idle too long: pinged, alive, kept
        with engine.connect() as conn:
            assert conn.scalar(pid) == second
        assert len(pings) == 2
    finally:
        engine.dispose()
        killer.dispose()


def placed_calls(call_log: Any) -> list[tuple[str, str, float]]:
    if not call_log.exists():
        return []
    return [(token, sid, float(at)) for token, sid, at in
            (line.split() for line in call_log.read_text().splitlines())]


def recorded_answers(session: Any) -> set[tuple[int, int, str, int | None]]:
    return {(a.id, a.attempt_id, a.item_id, a.value) for a in session.execute(
        select(Answer.id, Answer.attempt_id, Answer.item_id, Answer.value))}


def test_killed_connections_are_recovered_without_loss_or_double_calls(
        cluster: dict[str, Any], cluster_app: Any, make_campaign: Any, make_frame: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_run, "CONTACTS", CONTACTS)
    env, call_log = cluster["env"], cluster["call_log"]
    campaign_id = cluster_run.load_campaign(cluster_app, make_campaign, make_frame)
    cluster_run.wait_for_web(cluster["port"])
    workers = [subprocess.Popen([sys.executable, "-m", "ivr_service", "worker"], cwd=ROOT, env=env)
               for _ in range(WORKERS)]
    cluster["processes"].extend(workers)

    db = cluster_app.extensions["sipas"].db
    # The "restart" comes from a connection of its own, outside every process's pool.
    killer = make_engine(cluster["db"], isolation_level="AUTOCOMMIT")
    killed_at: float | None = None
    terminated: list[int] = []
    answers_before: set[tuple[int, int, str, int | None]] = set()
    status = None
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            if killed_at is None and len(placed_calls(call_log)) >= CONTACTS // 3:
                with db.begin() as session:
                    answers_before = recorded_answers(session)
                db.engine.dispose()  # the test's own connection is not one to kill
                killed_at = time.time()
                with killer.connect() as conn:
                    terminated.append(conn.scalar(TERMINATE) or 0)
                    time.sleep(0.3)  # reconnects in between die too: a restart that takes a moment
                    terminated.append(conn.scalar(TERMINATE) or 0)
            with db.begin() as session:
                status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            if status is not None and status.value == "completed":
                break
            time.sleep(0.5)  # polling for completion, not timing anything
    finally:
        killer.dispose()
    assert killed_at is not None, "the run ended before the kill"
    assert terminated[0] > 0, "no connection was killed"
    assert answers_before, "no answer was recorded before the kill"
    assert status is not None and status.value == "completed", \
        f"campaign is {status} after {DEADLINE_S} s; {cluster_run.where_it_stands(db, campaign_id)}"
    assert all(p.poll() is None for p in cluster["processes"]), "a process died instead of reconnecting"

    calls = placed_calls(call_log)
    tokens = Counter(token for token, _sid, _at in calls)
    assert tokens.most_common(1)[0][1] == 1, f"placed twice: {tokens.most_common(3)}"
    recovered_at = min(at for _token, _sid, at in calls if at > killed_at + 0.3)

    with db.begin() as session:
        contacts = session.execute(select(Contact.status, Contact.disposition)
                                   .where(Contact.campaign_id == campaign_id)).all()
        answers_after = recorded_answers(session)
        attempt_tokens = set(session.scalars(select(Attempt.token).where(Attempt.campaign_id == campaign_id)))
        duplicated = session.execute(select(Attempt.contact_id, Attempt.number, func.count())
                                     .group_by(Attempt.contact_id, Attempt.number)
                                     .having(func.count() > 1)).all()
        live = session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.status.in_(["queued", "initiated", "ringing", "in_progress"])))
    assert len(contacts) == CONTACTS
    assert {s for s, _d in contacts} == {ContactStatus.DONE}
    assert all(d for _s, d in contacts)
    assert answers_before <= answers_after, f"{len(answers_before - answers_after)} answers lost"
    assert duplicated == []
    assert live == 0
    assert set(tokens) <= attempt_tokens
    print(f"\nkilled {terminated} connections; first call placed {recovered_at - killed_at:.2f} s after the "
          f"first kill ({recovered_at - killed_at - 0.3:.2f} s after the second); {len(calls)} calls; "
          f"answers {len(answers_before)} before the kill, {len(answers_after)} at the end")
