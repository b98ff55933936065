"""Telephony webhooks: TwiML structure, whole calls, idempotency, and malformed requests
that must be rejected with a clear message and leave the database unchanged."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select, text

from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import Answer, Attempt, Contact, Interview, OptOut
from ivr_service.services.dispatch import Pacing
from ivr_service.services import campaigns, dispatch, frames


def sid() -> str:
    return "CA" + uuid.uuid4().hex


@pytest.fixture
def call(app: Any, tmp_path: Path) -> dict[str, Any]:
    """A running campaign with one answered-to-be call: token and CallSid."""
    frame = tmp_path / "frame.csv"
    frame.write_text("Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày trả kết quả\n"
                     "HS-1,Đất đai,Nguyễn Văn An,0912 345 678,02/11/2026\n", encoding="utf-8")
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, "STNMT", "Sở Tài nguyên và Môi trường", now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="Q4",
                                             questionnaire="sipas-2024", now=now)
        frames.import_and_sample(session, campaign, frame, SampleRule("census"), 1, now)
        campaigns.transition(session, campaign.id, "start", now)
    claimed = dispatch.claim_due(svc.db, Pacing("simulator", 1000.0, 1000), now, 10)
    assert len(claimed) == 1
    return {"token": claimed[0].token, "sid": sid(), "attempt_id": claimed[0].attempt_id}


def post(client: Any, call: dict[str, Any], kind: str, query: str = "", **form: str) -> Any:
    return client.post(f"/voice/{call['token']}/{kind}{query}", data={"CallSid": call["sid"], **form})


def gather(client: Any, call: dict[str, Any], item: str, digits: str) -> ElementTree.Element:
    response = post(client, call, "gather", f"?item={item}", Digits=digits)
    assert response.status_code == 200, response.get_data(as_text=True)
    return ElementTree.fromstring(response.data)


def asked(twiml: ElementTree.Element) -> str | None:
    gather_el = twiml.find("./Gather")
    return None if gather_el is None else gather_el.get("action").rsplit("item=", 1)[1]


def answers(app: Any) -> dict[str, tuple[int | None, str]]:
    with app.extensions["sipas"].db.begin() as session:
        return {a.item_id: (a.value, a.status) for a in session.scalars(select(Answer).order_by(Answer.id))}


def test_answer_opens_with_agency_and_consent_gather(client: Any, call: dict[str, Any]) -> None:
    response = post(client, call, "answer", CallStatus="in-progress")
    assert response.status_code == 200 and response.mimetype == "text/xml"
    twiml = ElementTree.fromstring(response.data)
    gather_el = twiml.find("./Gather")
    assert gather_el.get("input") == "dtmf" and gather_el.get("numDigits") == "1"
    assert gather_el.get("actionOnEmptyResult") == "true"
    assert gather_el.get("action") == f"http://sipas.test/voice/{call['token']}/gather?item=CONSENT"
    says = gather_el.findall("./Say")
    assert all(s.get("language") == "vi-VN" and s.get("voice") == "Google.vi-VN-Wavenet-A" for s in says)
    assert "Sở Tài nguyên và Môi trường" in says[0].text
    assert "bấm 9" in says[-1].text.lower()


def test_whole_call_records_every_answer_and_completes(app: Any, client: Any, call: dict[str, Any]) -> None:
    post(client, call, "answer")
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "2", "OVERALL": "5"}
    item, seen = "CONSENT", []
    while item is not None:
        seen.append(item)
        twiml = gather(client, call, item, keys.get(item, "4"))
        item = asked(twiml)
    assert twiml.find("./Hangup") is not None and "Cảm ơn" in twiml.find("./Say").text
    assert "C14" not in seen and seen[-1] == "OVERALL"
    stored = answers(app)
    assert stored["C01"] == (4, "answered") and stored["OVERALL"] == (5, "answered")
    assert len(stored) == 1 + 13 + 1 + 1
    assert post(client, call, "status", CallStatus="completed", CallDuration="95").status_code == 204
    with app.extensions["sipas"].db.begin() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.status.value, contact.disposition) == ("done", "1.1")
        assert session.scalars(select(Interview.status)).one().value == "complete"
        attempt = session.get(Attempt, call["attempt_id"])
        assert (attempt.duration_s, attempt.outcome, attempt.provider_id) == (95, "completed", call["sid"])


def test_refusal_opts_out_and_says_goodbye(app: Any, client: Any, call: dict[str, Any]) -> None:
    post(client, call, "answer")
    twiml = gather(client, call, "CONSENT", "9")
    assert twiml.find("./Gather") is None and twiml.find("./Hangup") is not None
    post(client, call, "status", CallStatus="completed", CallDuration="12")
    with app.extensions["sipas"].db.begin() as session:
        assert session.scalars(select(OptOut.phone_e164)).all() == ["+84912345678"]
        assert session.scalars(select(Contact.disposition)).one() == "2.11"


def test_invalid_key_and_silence_reprompt_then_move_on(app: Any, client: Any, call: dict[str, Any]) -> None:
    post(client, call, "answer")
    gather(client, call, "CONSENT", "1")
    first = gather(client, call, "C01", "7")
    assert asked(first) == "C01"
    assert any("hợp lệ" in (s.text or "") and "1, 2, 3, 4, 5, 0" in (s.text or "") for s in first.iter("Say"))
    assert asked(gather(client, call, "C01", "")) == "C01"
    assert asked(gather(client, call, "C01", "8")) == "C02"   # max_invalid = 2 re-prompts, then give up
    assert answers(app)["C01"] == (None, "unanswered")
    assert asked(gather(client, call, "C02", "*")) == "C02"   # repeat stores nothing
    assert "C02" not in answers(app)


def test_duplicate_and_late_requests_change_nothing(app: Any, client: Any, call: dict[str, Any]) -> None:
    post(client, call, "answer")
    gather(client, call, "CONSENT", "1")
    assert asked(gather(client, call, "C01", "5")) == "C02"
    before = answers(app)
    assert asked(gather(client, call, "C01", "5")) == "C02"   # Twilio retried the same request
    assert asked(gather(client, call, "C01", "1")) == "C02"   # a late, different key for C01
    assert answers(app) == before and before["C01"] == (5, "answered")


def test_late_status_callbacks_never_undo_a_final_outcome(app: Any, client: Any, call: dict[str, Any]) -> None:
    post(client, call, "status", CallStatus="busy")
    post(client, call, "status", CallStatus="ringing")
    post(client, call, "status", CallStatus="completed", CallDuration="30")
    with app.extensions["sipas"].db.begin() as session:
        attempt = session.get(Attempt, call["attempt_id"])
        contact = session.scalars(select(Contact)).one()
        assert (attempt.status.value, attempt.outcome) == ("busy", "busy")
        assert contact.status.value == "pending" and contact.next_attempt_at > attempt.created_at


def snapshot(app: Any) -> dict[str, list[tuple[Any, ...]]]:
    with app.extensions["sipas"].db.engine.connect() as conn:
        return {table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
                for table in ("contacts", "attempts", "interviews", "answers", "opt_outs", "campaigns")}


@pytest.mark.parametrize("kind, query, form, status, words", [
    ("gather", "?item=C01", {"CallSid": "nope", "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C01", {"CallSid": "", "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C99", {"Digits": "4"}, 400, "C99"),
    ("gather", "", {"Digits": "4"}, 400, "item"),
    ("gather", "?item=C01", {"Digits": "4a"}, 400, "Digits"),
    ("status", "", {"CallStatus": "exploded"}, 400, "CallStatus"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "ten"}, 400, "CallDuration"),
    ("answer", "", {"CallSid": "CA" + "0" * 32}, 409, "CallSid"),
])
def test_malformed_requests_are_rejected_and_store_nothing(app: Any, client: Any, call: dict[str, Any], kind: str,
                                                          query: str, form: dict[str, str], status: int,
                                                          words: str) -> None:
    post(client, call, "answer")
    gather(client, call, "CONSENT", "1")
    before = snapshot(app)
    response = client.post(f"/voice/{call['token']}/{kind}{query}", data={"CallSid": call["sid"], **form})
    assert response.status_code == status
    assert words in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_unknown_call_is_404_and_stores_nothing(app: Any, client: Any, call: dict[str, Any]) -> None:
    before = snapshot(app)
    response = client.post(f"/voice/{uuid.uuid4().hex}/answer", data={"CallSid": sid()})
    assert response.status_code == 404 and "unknown call attempt" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_dropped_call_resumes_at_the_first_unanswered_item(app: Any, client: Any, call: dict[str, Any],
                                                          clock: Any) -> None:
    post(client, call, "answer")
    gather(client, call, "CONSENT", "1")
    gather(client, call, "C01", "5")
    gather(client, call, "C02", "4")
    post(client, call, "status", CallStatus="completed", CallDuration="40")   # hung up during C03
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.status.value, contact.attempt_count) == ("pending", 1)
        assert session.get(Attempt, call["attempt_id"]).outcome == "break_off"
        retry_at = contact.next_attempt_at
    assert dispatch.claim_due(svc.db, Pacing("simulator", 1000.0, 1000), clock(), 10) == []   # not before the retry time
    clock.current = retry_at
    second = dispatch.claim_due(svc.db, Pacing("simulator", 1000.0, 1000), clock(), 10)
    assert len(second) == 1
    again = {"token": second[0].token, "sid": sid()}
    assert asked(ElementTree.fromstring(post(client, again, "answer").data)) == "CONSENT"   # consent every call
    assert asked(gather(client, again, "CONSENT", "1")) == "C03"                         # resumes after C02
    stored = answers(app)
    assert stored["C01"] == (5, "answered") and stored["C02"] == (4, "answered")
