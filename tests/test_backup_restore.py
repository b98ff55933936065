"""Backup and restore, as the runbook says (README, "Runbook: PostgreSQL in production"):
``pg_dump -Fc`` of a database with a campaign half done, ``pg_restore`` into a new database,
and the service carries on there: the schema is at the migrations' head, every row (answers,
contacts, attempts, tallies) is as it was, a dispatch round claims the contacts still
pending and a webhook answer is recorded on the restored database."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ivr_service import create_app, health
from ivr_service.persistence import migrate, tallies
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Answer, Attempt, Contact, ContactStatus
from ivr_service.settings import Settings

from .conftest import Call, answers, count, phones, snapshot

pytestmark = [
    pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                       reason="pg_dump and pg_restore back up PostgreSQL; a SQLite database is one file "
                              "(this test runs in CI on PostgreSQL)"),
    pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")),
                       reason="pg_dump and pg_restore are not on the PATH"),
]


def libpq_url(url: str) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def restored_url(clean_db: str) -> Iterator[str]:
    """A new, empty database on the same server (sipas_r_restore_<random>), dropped afterwards."""
    name = f"sipas_r_restore_{secrets.token_hex(4)}"
    admin = make_engine(clean_db, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(clean_db).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def progress(app: Any, campaign_id: int) -> dict[str, dict[str, int]]:
    with app.extensions["sipas"].db.begin() as session:
        return tallies.tallies(session, campaign_id)


def test_a_dump_restored_into_a_new_database_carries_on(app: Any, client: Any, make_campaign: Any, claim: Any,
                                                        clock: Any, restored_url: str, tmp_path: Path) -> None:
    numbers = phones(6)
    campaign_id = make_campaign(numbers, app=app)
    first = claim(batch=3)
    assert len(first) == 3
    done, refused, busy = (Call(client, c) for c in first)
    done.survey({"CONSENT": "1"})
    done.status("completed", CallDuration="80")
    refused.survey({"CONSENT": "9"}, default=None)
    refused.status("completed", CallDuration="10")
    busy.status("busy")
    assert count(app, Contact, Contact.status == ContactStatus.DONE) == 2
    assert count(app, Contact, Contact.status == ContactStatus.PENDING) == 4  # 3 never called, 1 to retry
    before = snapshot(app)
    assert before["counts"]["answers"] > 5
    tallied = progress(app, campaign_id)
    assert sum(tallied["attempt"].values()) == 3

    # The runbook's commands.
    dump = tmp_path / "sipas.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), libpq_url(app.extensions["sipas"].db.url)],
                   check=True)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", libpq_url(restored_url), str(dump)],
                   check=True)

    assert migrate.current(restored_url) in health.heads()
    assert migrate.differences(restored_url) == []
    restored = create_app(Settings(database_url=restored_url, export_dir=str(tmp_path / "exports"),
                                   public_base_url="http://sipas.test", secret_key="test"), clock=clock)
    try:
        assert health.readiness(restored.extensions["sipas"].db.engine).ok
        assert snapshot(restored) == before
        assert progress(restored, campaign_id) == tallied

        # It carries on: the pending contacts are claimed (the busy one is due again later,
        # by its retry delay), and an answer is recorded on the restored database only.
        clock.advance(seconds=3600)
        again = claim(app=restored)
        assert {c.to for c in again} == {f"+84{p[1:]}" for p in numbers} - {done.to, refused.to}
        call = Call(restored.test_client(), again[0])
        call.answer()
        call.press("CONSENT", "1")
        assert answers(restored, again[0].attempt_id)["CONSENT"][0] == 1
        assert count(restored, Attempt) == 3 + 4 and count(app, Attempt) == 3
        assert count(restored, Answer) == count(app, Answer) + 1
        assert not [a for a in snapshot(app)["rows"]["answers"]
                    if a not in before["rows"]["answers"]]
        # The tally triggers came with the dump: they count the new attempts.
        assert sum(progress(restored, campaign_id)["attempt"].values()) == 3 + 4
    finally:
        restored.extensions["sipas"].db.dispose()
