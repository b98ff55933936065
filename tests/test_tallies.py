"""Progress tallies kept by triggers equal a direct count of the rows, after every kind of
change (bulk claims, callbacks, reserve release, closing, deletes), after folding, and
when a writer commits while a fold runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from ivr_service.persistence import tallies
from ivr_service.persistence.models import Attempt, AttemptStatus, Contact, ProgressDelta
from ivr_service.services import campaigns

from .conftest import phones


def counted(app: Any, campaign_id: int) -> dict[str, dict[str, int]]:
    """What the tallies should say, counted from the rows themselves."""
    with app.extensions["sipas"].db.begin() as session:
        contacts = {f"{s.value}:{d or ''}": n for s, d, n in session.execute(
            select(Contact.status, Contact.disposition, func.count()).where(Contact.campaign_id == campaign_id)
            .group_by(Contact.status, Contact.disposition))}
        attempts = {s.value: n for s, n in session.execute(
            select(Attempt.status, func.count()).where(Attempt.campaign_id == campaign_id).group_by(Attempt.status))}
    return {"contact": contacts, "attempt": attempts}


def tallied(app: Any, campaign_id: int) -> dict[str, dict[str, int]]:
    with app.extensions["sipas"].db.begin() as session:
        return tallies.tallies(session, campaign_id)


def delta_rows(app: Any) -> int:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalar(select(func.count()).select_from(ProgressDelta)) or 0


def test_tallies_follow_every_change_and_survive_folding(app: Any, make_campaign: Any, claim: Any, provider: Any,
                                                         place_calls: Any, make_call: Any, clock: Any) -> None:
    svc = app.extensions["sipas"]
    first = make_campaign(phones(30))
    second = make_campaign(phones(5, base=100))
    assert tallied(app, first) == counted(app, first) == {"contact": {"pending:": 30}, "attempt": {}}

    claimed = claim(batch=20)                                       # one bulk statement per campaign
    place_calls(provider, claimed)
    for number, item in enumerate(claimed[:6]):
        with svc.db.begin() as session:
            sid = session.scalar(select(Attempt.provider_id).where(Attempt.token == item.token))
        call = make_call(item, sid=sid)
        call.status("ringing")
        call.status("busy" if number % 2 else "no-answer")
    with svc.db.begin() as session:                                 # a Core bulk update
        session.execute(update(Attempt).where(Attempt.status == AttemptStatus.INITIATED)
                        .values(status=AttemptStatus.RINGING))
    for campaign_id in (first, second):
        assert tallied(app, campaign_id) == counted(app, campaign_id)
    assert sum(tallied(app, first)["attempt"].values()) + sum(tallied(app, second)["attempt"].values()) == 20

    with svc.db.begin() as session:
        campaigns.transition(session, second, "cancel", clock(), svc.registry)   # dispositions for everyone
    assert tallied(app, second) == counted(app, second)
    assert all(key.startswith("done:") for key in tallied(app, second)["contact"])

    before = delta_rows(app)
    with svc.db.begin() as session:
        removed = tallies.fold(session, above=0)
    assert removed > 0 and delta_rows(app) == before - removed
    for campaign_id in (first, second):
        assert tallied(app, campaign_id) == counted(app, campaign_id)

    with svc.db.begin() as session:                                 # deletes count down
        session.execute(delete(Attempt).where(Attempt.campaign_id == second))
    assert tallied(app, second)["attempt"] == {} == counted(app, second)["attempt"]


def test_a_write_committed_during_a_fold_is_kept(app: Any, make_campaign: Any, claim: Any) -> None:
    """The fold removes exactly the rows it read (DELETE … RETURNING): a writer whose
    transaction is still open when the fold runs keeps its tally rows."""
    svc = app.extensions["sipas"]
    campaign_id = make_campaign(phones(3))
    claim()
    if svc.db.engine.dialect.name == "postgresql":
        with svc.db.engine.connect() as writer:
            transaction = writer.begin()
            writer.execute(update(Attempt).where(Attempt.campaign_id == campaign_id)
                           .values(status=AttemptStatus.CANCELED))              # not yet committed
            with svc.db.begin() as session:
                assert tallies.fold(session, above=0) > 0
            transaction.commit()
    else:   # one writer at a time: the fold waits for the writer, then folds its rows too
        with svc.db.begin() as session:
            session.execute(update(Attempt).where(Attempt.campaign_id == campaign_id)
                            .values(status=AttemptStatus.CANCELED))
        with svc.db.begin() as session:
            assert tallies.fold(session, above=0) > 0
    assert tallied(app, campaign_id) == counted(app, campaign_id)
    assert tallied(app, campaign_id)["attempt"] == {"canceled": 3}


def test_recount_rebuilds_tallies_from_the_rows(app: Any, make_campaign: Any, claim: Any) -> None:
    svc = app.extensions["sipas"]
    campaign_id = make_campaign(phones(4))
    claim()
    with svc.db.engine.begin() as conn:
        conn.execute(delete(ProgressDelta))
    assert tallied(app, campaign_id) == {"contact": {}, "attempt": {}}
    with svc.db.engine.begin() as conn:
        tallies.recount(conn)
    assert tallied(app, campaign_id) == counted(app, campaign_id) == {
        "contact": {"active:": 4}, "attempt": {"queued": 4}}
