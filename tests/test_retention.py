"""Personal data lifecycle (issue 17): the retention purge, lookups that still match purged
numbers, and citizens' show/erase requests (service, CLI, API), on SQLite and PostgreSQL
with the test clock."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from ivr_service import create_app
from ivr_service.core.access import Grant, Role
from ivr_service.core.pseudonym import phone_hash, purge_due, retention_days
from ivr_service.persistence.db import Database
from ivr_service.persistence.models import (
    Agency,
    Answer,
    AuditEntry,
    Campaign,
    Contact,
    Interview,
    JobRun,
    NumberCall,
    OptOut,
    Transaction,
)
from ivr_service.services import access, export_retention, housekeeping, opt_outs, retention, transactions
from ivr_service.services.audit import Actor
from ivr_service.services.transactions import Record

from .conftest import Call, api_token, fetch, row, scalars, snapshot
from .test_access import PASSWORD, signed_in

KEY = "retention-test-key-0123456789"
TALKER = "+84912345678"      # answers the whole interview
REFUSER = "+84912345679"     # asked an operator to be put on the do-not-contact list
OPERATOR = Actor("cli:operator")
DEFAULT_DAYS = 180
SURVEY = {"CONSENT": "1", "SCREEN_FEEDBACK": "2"}   # a complete interview


def h(phone: str) -> str:
    return phone_hash(KEY, phone)


@pytest.fixture
def app(make_settings: Callable[..., Any], clock: Any) -> Iterator[Any]:
    """The app with a phone-hash key (the conftest one has none)."""
    application = create_app(make_settings(phone_hash_key=KEY), clock=clock)
    api_token(application)
    yield application
    application.extensions["sipas"].db.dispose()


def svc(app: Any) -> Any:
    return app.extensions["sipas"]


def purge(app: Any, now: datetime | None = None, key: str | None = KEY) -> retention.Counts | None:
    s = svc(app)
    return retention.run_if_due(s.db, now or s.clock(), DEFAULT_DAYS, key)


@pytest.fixture
def close_campaign(app: Any, make_campaign: Callable[..., int], claim: Callable[..., Any], client: Any,
                   clock: Any) -> Callable[..., int]:
    def close(agency: int | None = None, name: str = "Quý 4", talker: str = "0912345678",
              refuser: str = "0912345679") -> int:
        """A campaign of two: ``talker`` completes the interview, ``refuser`` is put on the
        do-not-contact list; closed and exported by housekeeping."""
        campaign = make_campaign([talker, refuser], agency=agency, name=name)
        s = svc(app)
        with s.db.begin() as session:
            opt_outs.add(session, OPERATOR, refuser, s.clock())
        claimed = claim()
        assert len(claimed) == 1
        call = Call(client, claimed[0])
        call.survey(SURVEY)
        call.status("completed", CallDuration="95")
        housekeeping.run(s.db, s.registry, s.settings.export_dir, s.clock)
        closed = row(app, Campaign, id=campaign)
        assert closed.status.value == "completed", contacts_of(app, campaign)
        assert closed.status.value == "completed" and closed.export_path is not None
        return campaign
    return close


def contacts_of(app: Any, campaign: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in fetch(app, select(
        Contact.phone_e164, Contact.name, Contact.transaction_code, Contact.respondent_id, Contact.disposition,
        Contact.status).where(Contact.campaign_id == campaign).order_by(Contact.id))]


def kept(app: Any) -> dict[str, Any]:
    """What the purge must never change: answers and interviews (pseudonymous)."""
    return {"answers": [tuple(r) for r in fetch(app, select(Answer.interview_id, Answer.item_id, Answer.value,
                                                                Answer.status).order_by(Answer.id))],
            "interviews": [tuple(r) for r in fetch(app, select(Interview.contact_id, Interview.status,
                                                                   Interview.ended_at).order_by(Interview.id))]}


def audit_details(app: Any, action: str) -> list[dict[str, Any]]:
    return [e.detail or {} for e in scalars(app, select(AuditEntry).where(AuditEntry.action == action)
                                            .order_by(AuditEntry.id))]


def no_number_in_clear(*values: Any) -> None:
    text = json.dumps(values, default=str, ensure_ascii=False)
    for digits in ("912345678", "912345679", "0912345678"):
        assert digits not in text, text


# ============================================================================ rules

def test_rules_retention_and_due() -> None:
    closed = datetime(2026, 1, 1, tzinfo=UTC)
    assert retention_days(None, 180) == 180 and retention_days(30, 180) == 30
    assert purge_due("completed", closed, "x.xlsx", 10, closed + timedelta(days=10))
    assert not purge_due("completed", closed, "x.xlsx", 10, closed + timedelta(days=9, hours=23))
    assert not purge_due("completed", closed, None, 10, closed + timedelta(days=400))      # no final export
    assert purge_due("cancelled", closed, None, 10, closed + timedelta(days=10))           # never gets one
    assert not purge_due("running", None, None, 10, closed + timedelta(days=400))
    assert phone_hash(KEY, TALKER).startswith("h:") and len(phone_hash(KEY, TALKER)) == 20
    assert phone_hash(KEY, TALKER) != phone_hash("another-key-0123456789", TALKER)


# ============================================================================ the purge

def test_a_closed_exported_campaign_past_retention_is_purged_to_what_the_policy_keeps(
        app: Any, clock: Any, close_campaign: Callable[..., int]) -> None:
    campaign = close_campaign()
    before = kept(app)
    assert contacts_of(app, campaign)[0][:3] == (TALKER, "Nguyễn Văn 1", "HS-1")
    respondents = [c[3] for c in contacts_of(app, campaign)]
    dispositions = [c[4] for c in contacts_of(app, campaign)]

    assert purge(app, clock() + timedelta(days=DEFAULT_DAYS - 1)).total() == 1   # only the cap row (> 2 days)
    assert contacts_of(app, campaign)[0][:3] == (TALKER, "Nguyễn Văn 1", "HS-1")

    counts = purge(app, clock() + timedelta(days=DEFAULT_DAYS, hours=1))
    assert counts is not None and (counts.campaigns, counts.contacts) == (1, 2)
    after = contacts_of(app, campaign)
    assert [c[:3] for c in after] == [(h(TALKER), None, None), (h(REFUSER), None, None)]
    assert [c[3] for c in after] == respondents and [c[4] for c in after] == dispositions
    assert kept(app) == before and before["answers"]
    assert row(app, Campaign, id=campaign).purged_at == clock() + timedelta(days=DEFAULT_DAYS, hours=1)
    # The refusal is under a year old: kept as it is. The call cap row is long past: hashed.
    assert scalars(app, select(OptOut.phone_e164)) == [REFUSER]
    assert scalars(app, select(NumberCall.phone_e164)) == [h(TALKER)]
    # Recorded with counts only.
    run = row(app, JobRun, name="retention", period=(clock() + timedelta(days=DEFAULT_DAYS, hours=1))
              .strftime("%Y-%m-%dT%H"))
    assert run.finished_at is not None and run.detail["contacts"] == 2 and run.detail["campaigns"] == 1
    details = audit_details(app, "retention_purge")
    assert details[-1]["contacts"] == 2
    no_number_in_clear(details, run.detail)


def test_within_retention_or_without_its_final_export_a_campaign_is_untouched_and_the_agency_override_wins(
        app: Any, clock: Any, close_campaign: Callable[..., int], make_agency: Callable[..., int]) -> None:
    quick = make_agency("QUICK", "Sở Tư pháp", retention_days=30)
    ordinary = close_campaign()
    unexported = close_campaign(name="Quý 3", talker="0912345600", refuser="0912345601")
    short = close_campaign(agency=quick, name="Quý 4 Tư pháp", talker="0912345610", refuser="0912345611")
    s = svc(app)
    with s.db.begin() as session:
        session.execute(update(Campaign).where(Campaign.id == unexported).values(export_path=None))
    untouched = {c: contacts_of(app, c) for c in (ordinary, unexported)}

    counts = purge(app, clock() + timedelta(days=31))
    assert counts is not None and counts.campaigns == 1
    assert [c[:3] for c in contacts_of(app, short)] == [(h("+84912345610"), None, None),
                                                         (h("+84912345611"), None, None)]
    assert {c: contacts_of(app, c) for c in (ordinary, unexported)} == untouched

    purge(app, clock() + timedelta(days=DEFAULT_DAYS + 1))
    assert contacts_of(app, ordinary)[0][:3] == (h(TALKER), None, None)
    assert contacts_of(app, unexported) == untouched[unexported]     # no final export: kept


def test_a_final_export_removed_by_export_retention_still_counts_as_written(
        app: Any, clock: Any, close_campaign: Callable[..., int], tmp_path: Any) -> None:
    """Exports go after SIPAS_EXPORT_RETENTION_DAYS (90), personal data after
    SIPAS_RETENTION_DAYS (180): the export's removal clears its path, and the purge must
    still come."""
    campaign = close_campaign()
    s = svc(app)
    written = clock().timestamp()   # files carry the machine's time; the test's clock is another
    for path in Path(s.settings.export_dir).rglob("*"):
        os.utime(path, (written, written))
    with s.db.begin() as session:
        pruned = export_retention.prune(session, s.settings.export_dir, clock() + timedelta(days=91), 90)
    assert pruned.campaigns == [campaign] and row(app, Campaign, id=campaign).export_path is None
    counts = purge(app, clock() + timedelta(days=DEFAULT_DAYS + 1))
    assert counts is not None and counts.campaigns == 1
    assert contacts_of(app, campaign)[0][:3] == (h(TALKER), None, None)


def test_a_purged_refusal_is_still_honoured_on_import_and_in_the_transaction_feed(
        app: Any, clock: Any, close_campaign: Callable[..., int], make_campaign: Callable[..., int],
        make_programme: Callable[..., int]) -> None:
    close_campaign()
    make_programme(share_mode="fixed", share=1.0)
    s = svc(app)
    returned = clock() - timedelta(hours=1)
    with s.db.begin() as session:
        first = transactions.report(session, clock(), [Record("STNMT", "HS-OLD", "0912345679", returned,
                                                              officer="Cán bộ A")], source="api")
    assert first.results[0].decision == "opted_out"

    later = clock.advance(days=400)       # past the opt-out's first year: it is hashed too
    counts = purge(app, later)
    assert counts is not None and counts.opt_outs == 1 and counts.transactions == 1
    assert scalars(app, select(OptOut.phone_e164)) == [h(REFUSER)]
    lone = row(app, Transaction, code=h("HS-OLD"))
    assert (lone.phone_e164, lone.officer, lone.contact_id) == (h(REFUSER), "Cán bộ A", None)

    # Imported again in a new campaign: refused.
    campaign = make_campaign(["0912345679", "0912345699"], name="Quý 1 2028", start=False)
    assert [c[0] for c in contacts_of(app, campaign)] == ["+84912345699"]
    # Reported again by the one-stop-shop: refused.
    with s.db.begin() as session:
        again = transactions.report(session, later, [Record("STNMT", "HS-NEW", "0912345679",
                                                            later - timedelta(hours=1))], source="api")
        assert again.results[0].decision == "opted_out"
        # Operators still find it on the list by the number.
        assert opt_outs.lookup(session, "0912 345 679")[1] is not None


def test_the_surveyed_recently_checks_hold_for_erased_and_purged_numbers(
        app: Any, clock: Any, make_call: Callable[..., Call], make_campaign: Callable[..., int],
        import_frame: Callable[..., Any], make_frame: Callable[..., Any], claim: Callable[..., Any]) -> None:
    call = make_call(phone="0912345678")
    call.survey(SURVEY)
    call.status("completed", CallDuration="95")
    # The call-cap row is hashed once it is two days old; a campaign whose numbers must
    # rest a week between calls still waits for it.
    clock.advance(days=3)
    assert purge(app).number_calls == 1
    assert scalars(app, select(NumberCall.phone_e164)) == [h(TALKER)]
    make_campaign(["0912345678"], name="Quý 1", retry={"min_gap_s": 7 * 86400}, sampling={"recent_days": 0})
    assert claim() == []
    deferred = row(app, Contact, campaign_id=scalars(app, select(Campaign.id).order_by(Campaign.id))[-1])
    assert deferred.next_attempt_at >= clock() - timedelta(days=3) + timedelta(days=7)
    clock.current = deferred.next_attempt_at + timedelta(hours=1)
    assert len(claim()) == 1
    # Erased: the frame import still sees the number was surveyed recently.
    s = svc(app)
    with s.db.begin() as session:
        retention.erase(session, OPERATOR, "0912345678", "thư ngày 17/11", clock(), KEY)
    draft = make_campaign(name="Quý 2")
    report = import_frame(draft, make_frame(["0912345678", "0912345698"]))
    assert report.excluded.get("surveyed_recently") == 1
    assert [c[0] for c in contacts_of(app, draft)] == ["+84912345698"]


def test_the_purge_twice_changes_nothing_and_runs_once_per_hour(
        app: Any, clock: Any, close_campaign: Callable[..., int]) -> None:
    close_campaign()
    moment = clock() + timedelta(days=DEFAULT_DAYS + 1)
    assert purge(app, moment) is not None
    first = snapshot(app)
    assert purge(app, moment + timedelta(minutes=10)) is None      # this hour's run is done
    assert snapshot(app) == first
    again = purge(app, moment + timedelta(hours=1))
    assert again is not None and again.total() == 0
    second = snapshot(app)
    for table in ("job_runs", "audit_log"):
        second["rows"].pop(table), first["rows"].pop(table)
    assert second["rows"] == first["rows"]


def test_two_workers_run_it_once(app: Any, clock: Any, close_campaign: Callable[..., int]) -> None:
    close_campaign()
    s = svc(app)
    moment = clock() + timedelta(days=DEFAULT_DAYS + 1)
    other = Database(s.db.url, KEY)             # a second worker: its own engine and connections
    try:
        if s.db.engine.dialect.name == "postgresql":
            # While one worker holds the lock, the other does nothing.
            with s.db.cluster_lock(retention.JOB) as mine:
                assert mine
                assert retention.run_if_due(other, moment, DEFAULT_DAYS, KEY) is None
        ran = [retention.run_if_due(db, moment, DEFAULT_DAYS, KEY) for db in (s.db, other)]
    finally:
        other.dispose()
    assert sum(r is not None for r in ran) == 1
    assert len(audit_details(app, "retention_purge")) == 1


def test_without_the_key_the_purge_refuses_names_the_setting_and_changes_nothing(
        app: Any, clock: Any, close_campaign: Callable[..., int], caplog: pytest.LogCaptureFixture) -> None:
    close_campaign()
    before = snapshot(app)
    with caplog.at_level(logging.ERROR, logger="ivr_service.services.retention"):
        assert purge(app, clock() + timedelta(days=1), key=None) is None
    assert caplog.text == ""   # nothing due yet: a laptop without the key is not nagged
    with caplog.at_level(logging.ERROR, logger="ivr_service.services.retention"):
        assert purge(app, clock() + timedelta(days=DEFAULT_DAYS + 1), key=None) is None
    assert "SIPAS_PHONE_HASH_KEY" in caplog.text and "1 campaign(s)" in caplog.text
    assert snapshot(app) == before
    with svc(app).db.begin() as session, pytest.raises(Exception, match="SIPAS_PHONE_HASH_KEY"):
        retention.erase(session, OPERATOR, "0912345678", "thư", clock(), None)


# ============================================================================ citizens' requests

def test_show_and_erase_through_the_service(app: Any, clock: Any, close_campaign: Callable[..., int]) -> None:
    campaign = close_campaign()
    before = kept(app)
    s = svc(app)
    with s.db.begin() as session:
        held = retention.holdings(session, OPERATOR, "0912345679", "đơn ngày 17/11", clock(), KEY)
    assert held.opted_out and held.phone == "+84******679"
    assert [(c.campaign_id, c.stored, c.has_name, c.disposition) for c in held.contacts] == [
        (campaign, "plain", True, "2.11")]
    with s.db.begin() as session:
        counts = retention.erase(session, OPERATOR, "0912345679", "đơn ngày 17/11", clock(), KEY)
    assert (counts.contacts, counts.opt_outs) == (1, 1)
    assert contacts_of(app, campaign)[1][:3] == (h(REFUSER), None, None)
    assert scalars(app, select(OptOut.phone_e164)) == [h(REFUSER)]
    with s.db.begin() as session:
        held = retention.holdings(session, OPERATOR, "0912345679", "kiểm tra", clock(), KEY)
        assert held.opted_out and [c.stored for c in held.contacts] == ["hashed"]
        assert retention.erase(session, OPERATOR, "0912345679", "lần hai", clock(), KEY).total() == 0
    assert kept(app) == before
    shown, erased = audit_details(app, "citizen_shown"), audit_details(app, "citizen_erased")
    assert len(shown) == 2 and len(erased) == 2
    assert erased[0]["phone"] == "+84******679" and erased[0]["phone_hash"] == h(REFUSER)
    assert erased[0]["reason"] == "đơn ngày 17/11"
    no_number_in_clear(shown, erased)


def make_user(app: Any, username: str, role: str, agency: int | None) -> None:
    s = svc(app)
    with s.db.begin() as session:
        access.create_user(session, username, PASSWORD, s.clock(), grants=[Grant(Role(role), agency)])


def test_show_and_erase_through_the_api_admins_only(app: Any, clock: Any, close_campaign: Callable[..., int],
                                                    make_agency: Callable[..., int]) -> None:
    campaign = close_campaign()
    make_user(app, "quan-tri", "admin", None)
    make_user(app, "quan-tri-so", "admin", make_agency())
    make_user(app, "quan-ly", "manager", None)
    body = {"phone": "0912 345 678", "reason": "đơn ngày 17/11"}
    admin = signed_in(app, "quan-tri")

    shown = admin.post("/api/v1/citizens/show", json=body)
    assert shown.status_code == 200, shown.json
    assert shown.json["phone"] == "+84******678" and not shown.json["opted_out"]
    assert [(c["campaign_id"], c["stored"], c["has_name"], c["attempts"]) for c in shown.json["contacts"]] == [
        (campaign, "plain", True, 1)]
    no_number_in_clear(shown.json)

    for who in ("quan-ly", "quan-tri-so"):   # a manager; an admin of one agency only
        refused = signed_in(app, who).post("/api/v1/citizens/erase", json=body)
        assert refused.status_code == 403, (who, refused.json)
    token = app.test_client().post("/api/v1/citizens/erase", json=body)    # tokens never carry it
    assert token.status_code == 403
    assert contacts_of(app, campaign)[0][0] == TALKER
    assert admin.post("/api/v1/citizens/erase", json={"phone": "0912345678"}).status_code == 422   # no reason

    erased = admin.post("/api/v1/citizens/erase", json=body)
    assert erased.status_code == 200, erased.json
    assert erased.json["contacts"] == 1 and erased.json["number_calls"] == 1
    assert contacts_of(app, campaign)[0][:3] == (h(TALKER), None, None)
    entries = scalars(app, select(AuditEntry).where(AuditEntry.action.in_(["citizen_shown", "citizen_erased"]))
                      .order_by(AuditEntry.id))
    assert [(e.action, e.actor.split()[-1]) for e in entries] == [("citizen_shown", "quan-tri"),
                                                                  ("citizen_erased", "quan-tri")]
    no_number_in_clear([e.detail for e in entries], [e.target for e in entries])


def test_show_and_erase_through_the_cli(app: Any, clock: Any, close_campaign: Callable[..., int],
                                        run_cli: Callable[..., Any]) -> None:
    campaign = close_campaign()
    env = {"SIPAS_DATABASE_URL": svc(app).settings.database_url, "SIPAS_PHONE_HASH_KEY": KEY}
    shown = run_cli("citizen", "show", "--phone", "0912345678", "--reason", "đơn ngày 17/11", env=env)
    assert shown.returncode == 0, shown.stderr
    held = json.loads(shown.stdout)
    assert held["phone"] == "+84******678" and held["contacts"][0]["stored"] == "plain"
    no_number_in_clear(held)

    missing = run_cli("citizen", "erase", "--phone", "0912345678", "--reason", "đơn", env={
        "SIPAS_DATABASE_URL": env["SIPAS_DATABASE_URL"]})
    assert missing.returncode == 1 and "SIPAS_PHONE_HASH_KEY" in missing.stderr
    assert "Traceback" not in missing.stderr
    not_a_number = run_cli("citizen", "erase", "--phone", "abc", "--reason", "đơn", env=env)
    assert not_a_number.returncode == 1 and "phone" in not_a_number.stderr

    erased = run_cli("citizen", "erase", "--phone", "0912345678", "--reason", "đơn ngày 17/11", env=env)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["erased"]["contacts"] == 1
    assert contacts_of(app, campaign)[0][:3] == (h(TALKER), None, None)
    entries = scalars(app, select(AuditEntry).where(AuditEntry.action.like("citizen_%")).order_by(AuditEntry.id))
    assert [e.action for e in entries] == ["citizen_shown", "citizen_erased"]
    assert all(e.actor.startswith("cli:") for e in entries)
    no_number_in_clear([e.detail for e in entries])


def test_an_agencys_retention_is_changed_by_api_and_cli_and_audited(
        app: Any, clock: Any, close_campaign: Callable[..., int], make_agency: Callable[..., int],
        run_cli: Callable[..., Any]) -> None:
    """An agency created without its own retention gets 30 days later; the purge follows it."""
    agency = make_agency("TUPHAP", "Sở Tư pháp")
    other = make_agency("XAYDUNG", "Sở Xây dựng")
    campaign = close_campaign(agency=agency, name="Quý 4 Tư pháp")
    make_user(app, "quan-tri-xd", "admin", other)
    refused = signed_in(app, "quan-tri-xd").patch(f"/api/v1/agencies/{agency}", json={"retention_days": 30})
    assert refused.status_code in (403, 404)
    bad = app.test_client().patch(f"/api/v1/agencies/{agency}", json={"retention_days": 0})
    assert bad.status_code == 422 and "retention_days" in str(bad.json)   # schema errors, as elsewhere
    changed = app.test_client().patch(f"/api/v1/agencies/{agency}", json={"retention_days": 30})
    assert changed.status_code == 200 and changed.json["retention_days"] == 30
    assert purge(app, clock() + timedelta(days=31)) is not None
    assert contacts_of(app, campaign)[0][:3] == (h(TALKER), None, None)

    env = {"SIPAS_DATABASE_URL": svc(app).settings.database_url}
    assert run_cli("agency-retention", "XAYDUNG", "45", env=env).returncode == 0
    assert row(app, Agency, id=other).retention_days == 45
    assert run_cli("agency-retention", "XAYDUNG", "default", env=env).returncode == 0
    assert row(app, Agency, id=other).retention_days is None
    wrong = run_cli("agency-retention", "XAYDUNG", "forever", env=env)
    assert wrong.returncode != 0 and "DAYS" in wrong.stderr and "Traceback" not in wrong.stderr
    entries = scalars(app, select(AuditEntry).where(AuditEntry.action == "agency_retention_changed")
                      .order_by(AuditEntry.id))
    assert [(e.detail["before"], e.detail["after"]) for e in entries] == [(None, 30), (None, 45), (45, None)]
