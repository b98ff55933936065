"""Two-way SMS surveys (core.twoway, services.twoway) end to end: the invitation asks the
first questions, citizens answer through the signed POST /sms/inbound, our replies go
through the message rounds (cap, window) to a recording provider; the clock is injected."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ivr_service.core import twoway
from ivr_service.core.messages import encode
from ivr_service.core.questionnaire import QuestionnaireRegistry
from ivr_service.persistence.models import (
    Answer,
    Attempt,
    Contact,
    ContactStatus,
    InboundMessage,
    Interview,
    InterviewStatus,
    Message,
    MessageStatus,
    OptOut,
    SurveyLink,
)
from ivr_service.services import messaging
from ivr_service.services.errors import InvalidInput
from ivr_service.services.messaging import MessagePacing

from .conftest import ROOT, count, row
from .sms_helpers import RecordingMessenger, send, sms_campaign

PHONE = "0912345678"
E164 = "+84912345678"
SHORT = "sipas-sms-short"
TWO_WAY = [{"channel": "sms", "max_attempts": 1, "mode": "two_way"}]


def post(client: Any, body: str, message_sid: str | None = None) -> Any:
    response = client.post("/sms/inbound", data={"MessageSid": message_sid or "SM" + uuid.uuid4().hex,
                                                  "From": PHONE, "To": "+15005550006", "Body": body})
    assert response.status_code == 200
    return response


def round_(app: Any, messenger: RecordingMessenger) -> list[str]:
    """One message round of the app's provider; returns the bodies sent."""
    svc = app.extensions["sipas"]
    pacing = MessagePacing(svc.settings.provider, 1000.0, timedelta(seconds=60))
    before = len(messenger.requests)
    claimed = messaging.claim_messages(svc.db, pacing, svc.clock(), 100, registry=svc.registry,
                                       default_host="http://sipas.test")
    send(app, messenger, claimed)
    return [r.body for r in messenger.requests[before:]]


@pytest.fixture
def started(app: Any, make_campaign: Any) -> tuple[int, RecordingMessenger]:
    """A two-way campaign of the short form whose invitation was sent."""
    campaign_id = sms_campaign(app, make_campaign, [PHONE], programme=False, plan=TWO_WAY, questionnaire=SHORT)
    messenger = RecordingMessenger(name="simulator")
    [invitation] = round_(app, messenger)
    assert invitation.startswith("So Tai nguyen va Moi truong tinh Dak Nong moi Ong/ba")
    assert "Cau 1/5: Thu tuc duoc giai quyet dung han?" in invitation and "Cau 3/5" in invitation
    assert "Cau 4/5" not in invitation          # C15 depends on item 3, shown in the same message
    assert invitation.endswith("Tu choi: TC") and encode(invitation).encoding == "GSM-7"
    return campaign_id, messenger


def answers(app: Any) -> dict[str, tuple[int | None, str]]:
    with app.extensions["sipas"].db.begin() as session:
        return {a.item_id: (a.value, a.status) for a in session.scalars(select(Answer))}


def test_valid_answers_one_by_one_and_the_cap(app: Any, client: Any, clock: Any,
                                              started: tuple[int, RecordingMessenger]) -> None:
    campaign_id, messenger = started
    post(client, "5")
    assert row(app, InboundMessage, body="5").action == "answer"
    [second] = round_(app, messenger)
    assert second.startswith("Cau 2/5: Cong chuc lich su") and "Cau 1/5" not in second
    clock.advance(minutes=5)
    post(client, " 4 ")
    [third] = round_(app, messenger)
    assert third.startswith("Cau 3/5: Ong/ba co phan anh") and "(1 Co, 2 Khong)" in third
    clock.advance(minutes=5)
    post(client, "1")                            # feedback given: C15 is asked
    # Invitation and two questions: the number has had its 3 messages in 24 h.
    assert round_(app, messenger) == []
    waiting = row(app, Message, kind="question", status=MessageStatus.QUEUED)
    assert "Cau 4/5: Phan anh, kien nghi duoc xu ly" in waiting.body
    invitation = row(app, Message, kind="invitation")
    assert waiting.lease_until == invitation.created_at + timedelta(hours=24)
    clock.advance(minutes=5)
    post(client, "4 5")
    assert answers(app) == {"C07": (5, "answered"), "C08": (4, "answered"), "SCREEN_FEEDBACK": (1, "answered"),
                            "C15": (4, "answered"), "OVERALL": (5, "answered")}
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "1.1")
    assert row(app, Interview, contact_id=contact.id).status is InterviewStatus.COMPLETE
    assert round_(app, messenger) == []         # the thank-you waits for the cap too
    clock.advance(hours=24)
    assert round_(app, messenger) == ["Cam on Ong/ba da tra loi khao sat."]
    # The question no longer needed was never sent.
    assert row(app, Message, id=waiting.id).status is MessageStatus.CANCELED
    assert len(messenger.requests) == 4


def test_a_block_reply_and_a_condition_skipping_an_item(app: Any, client: Any,
                                                        started: tuple[int, RecordingMessenger]) -> None:
    campaign_id, messenger = started
    post(client, "5 4 2")                        # no feedback: C15 is not asked
    [question] = round_(app, messenger)
    assert question.startswith("Cau 4/4: Muc do hai long chung") and "Phan anh, kien nghi duoc" not in question
    post(client, "5")
    assert round_(app, messenger) == ["Cam on Ong/ba da tra loi khao sat."]
    assert answers(app) == {"C07": (5, "answered"), "C08": (4, "answered"), "SCREEN_FEEDBACK": (0, "answered"),
                            "OVERALL": (5, "answered")}
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "1.1")
    post(client, "3")                            # after the end: stored, ignored
    assert row(app, InboundMessage, body="3").action == "ignored" and len(answers(app)) == 4


def test_an_invalid_reply_is_asked_again_once_then_skipped(app: Any, client: Any,
                                                           started: tuple[int, RecordingMessenger]) -> None:
    _, messenger = started
    post(client, "9")
    [again] = round_(app, messenger)
    assert again.startswith("Tra loi chua hop le. Cau 1/5: Thu tuc duoc giai quyet")
    post(client, "hai long")
    [question] = round_(app, messenger)
    assert question.startswith("Cau 2/5: Cong chuc")
    assert answers(app) == {"C07": (None, "unanswered")}
    post(client, "5 x 1")                        # C08 answered; "x" re-asks item 3; "1" is not used
    assert answers(app)["C08"] == (5, "answered") and "SCREEN_FEEDBACK" not in answers(app)
    assert row(app, Message, kind="question", status=MessageStatus.QUEUED).body.startswith(
        "Tra loi chua hop le. Cau 3/5: Ong/ba co phan anh")


def test_a_reply_outside_legal_hours_waits_for_the_window(app: Any, client: Any, clock: Any,
                                                          started: tuple[int, RecordingMessenger]) -> None:
    _, messenger = started
    invited = clock()
    clock.advance(hours=13, minutes=30)          # 22:30 in Hà Nội
    post(client, "5")
    assert round_(app, messenger) == []
    waiting = row(app, Message, kind="question")
    assert waiting.lease_until == invited + timedelta(hours=22)       # 07:00 the next morning
    clock.advance(hours=8, minutes=29)
    assert round_(app, messenger) == []
    clock.advance(minutes=1)
    [sent] = round_(app, messenger)
    assert sent.startswith("Cau 2/5")


def test_a_programme_refuses_two_way_with_too_many_items(make_programme: Any, make_agency: Any) -> None:
    with pytest.raises(InvalidInput, match="sipas-sms-short") as err:
        make_programme(template="{link} Tu choi: {stop}", channel_plan=TWO_WAY)
    assert err.value.field == "channel_plan"
    make_programme(make_agency("UBND", "UBND xã Nam Dong"), name="Ngắn", questionnaire=SHORT,
                   template="{link} Tu choi: {stop}", channel_plan=TWO_WAY)


def test_expiry_keeps_partial_answers_and_settles_the_contact(app: Any, client: Any, clock: Any,
                                                              started: tuple[int, RecordingMessenger]) -> None:
    campaign_id, messenger = started
    post(client, "5 4")
    clock.advance(hours=24)
    svc = app.extensions["sipas"]
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 1
    contact = row(app, Contact, campaign_id=campaign_id)
    attempt = row(app, Attempt, contact_id=contact.id)
    assert attempt.outcome == "partial"          # 2 of 3 applicable rated items answered
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "1.2")
    assert answers(app) == {"C07": (5, "answered"), "C08": (4, "answered")}
    # The question waiting for the next round is dropped; a late reply is only stored.
    assert round_(app, messenger) == []
    assert row(app, Message, kind="question").status is MessageStatus.CANCELED
    post(client, "1")
    assert row(app, InboundMessage, body="1").action == "ignored"


def test_a_refusal_word_in_the_middle_opts_out_first(app: Any, client: Any,
                                                     started: tuple[int, RecordingMessenger]) -> None:
    campaign_id, messenger = started
    post(client, "5")
    post(client, "Dừng")
    assert row(app, InboundMessage, body="Dừng").action == "opt_out"
    assert row(app, OptOut, phone_e164=E164).source == "sms"
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "2.11")
    assert row(app, SurveyLink, campaign_id=campaign_id).finished_at is not None
    sent = round_(app, messenger)
    assert sent[-1].startswith("Ban da tu choi") and not any(b.startswith("Cau 2/5") for b in sent)
    post(client, "4")
    assert row(app, InboundMessage, body="4").action == "ignored" and answers(app) == {"C07": (5, "answered")}


def test_a_retried_inbound_webhook_is_applied_once(app: Any, client: Any,
                                                   started: tuple[int, RecordingMessenger]) -> None:
    sid = "SM" + uuid.uuid4().hex
    post(client, "5", sid)
    post(client, "5", sid)
    assert count(app, InboundMessage) == 1 and count(app, Message, Message.kind == "question") == 1
    assert answers(app) == {"C07": (5, "answered")}


def test_too_many_items_are_refused_with_the_short_form(app: Any, make_campaign: Any) -> None:
    with pytest.raises(InvalidInput, match=r"27 items.*at most 3 messages.*at most 6 items.*sipas-sms-short") as err:
        make_campaign(name="Dài", channel_plan=TWO_WAY)          # sipas-2024
    assert err.value.field == "channel_plan"
    make_campaign(name="Ngắn", questionnaire=SHORT, channel_plan=TWO_WAY)
    for step, message in (({"mode": "sms"}, "mode must be one of link, two_way"),
                          ({"mode": "two_way", "session_hours": 0}, "session_hours"),
                          ({"session_hours": 12}, "session_hours")):
        with pytest.raises(InvalidInput, match=message):
            make_campaign(name="Sai", questionnaire=SHORT, channel_plan=[{"channel": "sms", **step}])


def test_core_capacity_blocks_and_replies() -> None:
    registry = QuestionnaireRegistry(ROOT / "config" / "questionnaires")
    q = registry.get(SHORT)
    assert twoway.max_items(3) == 6 and twoway.max_items(3, block=1) == 2
    twoway.check_capacity(q, 3)
    with pytest.raises(ValueError, match="at most 2 items"):
        twoway.check_capacity(q, 3, block=1)
    assert twoway.parse_reply("5,4 5") == twoway.parse_reply("545") == ["5", "4", "5"]
    reply = twoway.apply_reply(q, {}, 0, 0, "5 4 1 3 5 5 5")
    assert [i.id for i, _ in reply.recorded] == ["C07", "C08", "SCREEN_FEEDBACK", "C15", "OVERALL"]
    assert reply.finished and not reply.reasked
    # Re-asked once even where the questionnaire allows the voice channel more tries.
    lenient = dataclasses.replace(q, max_invalid=2)
    first = twoway.apply_reply(lenient, {}, 0, 0, "9")
    assert (first.recorded, first.retries, first.reasked) == ([], 1, True)
    second = twoway.apply_reply(lenient, {}, first.retries, 0, "9")
    assert [(i.id, r.status.value) for i, r in second.recorded] == [("C07", "unanswered")]
    assert not second.reasked and second.retries == 0
    assert twoway.sms_mode(TWO_WAY) == twoway.SmsMode("two_way", 24)
    assert not twoway.sms_mode([{"channel": "voice"}]).two_way
    for item in q.items:
        assert encode(item.sms.vi).encoding == "GSM-7" and len(item.sms.vi) <= 60
    sipas = registry.get("sipas-2024")
    for item_id in ("C07", "C08", "SCREEN_FEEDBACK", "C15", "OVERALL"):
        assert q.item(item_id).text == sipas.item(item_id).text
