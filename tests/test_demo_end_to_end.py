"""The whole demo survey over real HTTP: frame in, sample, simulated calls through the
webhooks, answers stored, campaign closed, export written — and the exported numbers
equal a direct computation from the stored answers. Then the demo's post-transaction
programme: feed, SMS invitations, simulated citizens answering the web form."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from ivr_service.cli import DEMO_TRANSACTIONS, load_demo, load_demo_programme
from ivr_service.persistence.models import Interview, Message
from ivr_service.providers.simulator import CitizenProfile, HttpTransport, SimulatorProvider
from ivr_service.providers.sms_simulator import HttpBrowser, MessageProfile, SmsSimulatorProvider, items_of
from ivr_service.services import campaigns, programmes
from ivr_service.worker import Worker

pytestmark = pytest.mark.slow


def run_to_completion(app: Any, worker: Worker, clock: Any, campaign_id: int, rounds: int = 40) -> None:
    db = app.extensions["sipas"].db
    for _ in range(rounds):
        worker.dispatch()
        worker.provider.wait_idle()
        clock.advance(seconds=5)
        worker.housekeeping()
        with db.begin() as session:
            status, export = session.execute(
                text("SELECT status, export_path FROM campaigns WHERE id = :id"), {"id": campaign_id}).one()
        if status == "completed" and export:
            return
    raise AssertionError(f"campaign {campaign_id} did not complete in {rounds} rounds")


def direct_indices(db: Any) -> pd.DataFrame:
    """Per item: satisfied / valid among complete and partial interviews, straight from SQL."""
    with db.engine.connect() as conn:
        answers = pd.read_sql(text(
            "SELECT a.id, i.id AS interview, a.item_id, a.value, a.status FROM answers a "
            "JOIN interviews i ON i.id = a.interview_id WHERE i.status IN ('complete', 'partial')"), conn)
    latest = answers.sort_values("id").groupby(["interview", "item_id"]).tail(1)
    valid = latest[latest["status"] == "answered"]
    grouped = valid.groupby("item_id")["value"]
    return pd.DataFrame({"n": grouped.size(), "index": grouped.apply(lambda v: 100 * v.isin([4, 5]).mean())})


def test_demo_campaign_end_to_end(live_server: Any, clock: Any) -> None:
    app = live_server
    services = app.extensions["sipas"]
    provider = SimulatorProvider.from_settings(services.settings, HttpTransport(), CitizenProfile(seed=7),
                                              services.registry.get, max_workers=8)
    worker = Worker(app, provider=provider)
    campaign_id = load_demo(app)
    try:
        run_to_completion(app, worker, clock, campaign_id)
    finally:
        worker.close()
    assert not [c.errors for c in provider.calls.values() if c.errors]

    with services.db.engine.connect() as conn:
        contacts = conn.execute(text("SELECT count(*), count(disposition) FROM contacts WHERE campaign_id = :c"),
                                {"c": campaign_id}).one()
        dup = conn.execute(text("SELECT count(*) FROM (SELECT contact_id, number FROM attempts "
                                "GROUP BY contact_id, number HAVING count(*) > 1) d")).scalar()
        export_path = conn.execute(text("SELECT export_path FROM campaigns WHERE id = :c"),
                                   {"c": campaign_id}).scalar()
        complete = conn.execute(text("SELECT count(*) FROM interviews WHERE status = 'complete'")).scalar()
    assert contacts[0] == 200 and contacts[1] == 200  # every contact has a final disposition
    assert dup == 0
    assert complete > 100

    criteria = pd.read_excel(export_path, sheet_name="criteria", engine="openpyxl").set_index("item_id")
    expected = direct_indices(services.db)
    assert len(criteria) == 17
    for item_id, row in criteria.iterrows():
        assert row["n"] == expected.loc[item_id, "n"], item_id
        assert row["index"] == pytest.approx(expected.loc[item_id, "index"]), item_id

    factors = pd.read_excel(export_path, sheet_name="factors", engine="openpyxl").set_index("factor")
    for factor, row in factors.iterrows():
        items = criteria[criteria["factor"] == factor]
        assert row["index"] == pytest.approx(items["index"].mean())
    summary = pd.read_excel(export_path, sheet_name="summary", engine="openpyxl").set_index("key")["value"]
    assert float(summary["service_index"]) == pytest.approx(factors["index"].mean())

    responses = pd.read_excel(export_path, sheet_name="responses", dtype=str, engine="openpyxl")
    phones = set(pd.read_sql(text("SELECT phone_e164, name FROM contacts"), services.db.engine).stack())
    for sheet in ("summary", "criteria", "factors", "responses"):
        frame = pd.read_excel(export_path, sheet_name=sheet, dtype=str, engine="openpyxl")
        assert not (set(frame.stack()) & phones), f"personal data in sheet {sheet}"
    assert len(responses) == len(set(responses["respondent"]))


def test_demo_programme_end_to_end(live_server: Any, clock: Any) -> None:
    """The demo's post-transaction programme over real HTTP: dossiers reported, SMS
    invitations sent through the simulator, simulated citizens open the link and answer
    the web form (or refuse, or ignore it), scores computed for the reporting period."""
    app = live_server
    services = app.extensions["sipas"]
    messenger = SmsSimulatorProvider.from_settings(services.settings, HttpTransport(), HttpBrowser(),
                                                   MessageProfile(seed=11), item_for=items_of(services.registry))
    worker = Worker(app, provider=SimulatorProvider.from_settings(services.settings, HttpTransport(),
                                                                   CitizenProfile(seed=7), services.registry.get),
                    messenger=messenger)
    campaign_id = load_demo(app)
    with services.db.begin() as session:
        code = campaigns.get_campaign(session, campaign_id).agency.code
    programme_id, decisions = load_demo_programme(app, code)
    assert sum(decisions.values()) == DEMO_TRANSACTIONS and decisions["invited"] > DEMO_TRANSACTIONS / 2
    try:
        run_to_completion(app, worker, clock, campaign_id)   # the phone campaign, as before
        for _ in range(10):
            if not worker.messages():
                break
        messenger.wait_idle()
        worker.housekeeping()
    finally:
        worker.close()
    assert not [m.errors for m in messenger.messages.values() if m.errors]
    with services.db.begin() as session:
        assert campaigns.all_settled(session, clock())        # what `serve --exit-when-done` waits for
        [period] = programmes.period_summaries(session, services.registry, programme_id, clock())
        channels = set(session.scalars(select(Interview.channel).where(Interview.campaign_id == period["campaign_id"])))
        sent = session.scalar(select(func.count()).select_from(Message).where(
            Message.campaign_id == period["campaign_id"], Message.kind == "invitation"))
    assert sent == decisions["invited"] == period["contacts"]
    behaviours = Counter(m.behaviour for m in messenger.messages.values())
    assert period["by_disposition"].get("1.1", 0) == behaviours["complete"] > 0
    assert period["by_disposition"].get("2.11", 0) == behaviours["refused"]
    assert channels == {"web"}
    assert period["n_respondents"] >= behaviours["complete"] and period["service_index"] is not None
