"""SMS citizens send: opt-out keywords (core.optout, services.inbound, POST /sms/inbound)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest

from ivr_service.core import optout
from ivr_service.core.dispositions import OPTED_OUT
from ivr_service.core.questionnaire import QuestionnaireRegistry
from ivr_service.persistence.models import (
    Attempt,
    AttemptStatus,
    Contact,
    ContactStatus,
    InboundMessage,
    Message,
    MessageStatus,
    OptOut,
    SurveyLink,
)
from ivr_service.services import messaging
from ivr_service.services.inbound import CONFIRMATION
from ivr_service.services.messaging import MessagePacing
from ivr_service.settings import Settings

from .conftest import ROOT, count, row
from .sms_helpers import RecordingMessenger, claim, contacts, send, sms_campaign

PHONE = "0912345678"
E164 = "+84912345678"
REFUSALS = ["TC", "  tc ", "Tc.", "HUY", "Hủy!", "huỷ", "TU CHOI", "TU  CHOI", "từ chối.", "Từ Chối",
            "DUNG", "Dừng", "dung!!", "NGUNG", "Ngừng", "STOP", "Stop", "stop.", '"STOP"', "\tTC\n"]
NOT_REFUSALS = ["không", "KHONG", "Không.", "5", "hai long", "Hài lòng", "tc 5", "stop please", "", "   ",
                "có", "dung hen", "TCX"]


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def post(client: Any, body: str, *, message_sid: str | None = None, sender: str = PHONE, **kwargs: Any) -> Any:
    return client.post("/sms/inbound", data={"MessageSid": message_sid or sid(), "From": sender,
                                             "To": "+15005550006", "Body": body}, **kwargs)


def confirmation_round(app: Any, messenger: RecordingMessenger) -> list[messaging.ClaimedMessage]:
    """A message round of the app's own messaging provider (the simulator's name in tests)."""
    svc = app.extensions["sipas"]
    pacing = MessagePacing(svc.settings.provider, 1000.0, timedelta(seconds=60))
    claimed = messaging.claim_messages(svc.db, pacing, svc.clock(), 100, registry=svc.registry,
                                       default_host="http://sipas.test")
    send(app, messenger, claimed)
    return claimed


# ---------------------------------------------------------------- core.optout

@pytest.mark.parametrize("text", REFUSALS)
def test_every_default_word_in_any_spelling_is_a_refusal(text: str) -> None:
    assert optout.is_refusal(text)


@pytest.mark.parametrize("text", NOT_REFUSALS)
def test_answers_and_sentences_are_not_refusals(text: str) -> None:
    assert not optout.is_refusal(text)


def test_normalise() -> None:
    assert optout.normalise("  Từ   chối. ") == "tu choi"
    assert optout.normalise("Hủy!") == optout.normalise("HUY") == "huy"


def test_no_default_refusal_word_answers_any_shipped_questionnaire() -> None:
    answers = optout.answer_words(QuestionnaireRegistry(ROOT / "config" / "questionnaires"))
    assert {"khong", "co", "hai long", "1", "5", "0"} <= answers
    assert optout.clashes(optout.DEFAULT_OPT_OUT_WORDS, answers) == []
    assert "khong" not in optout.word_set(optout.DEFAULT_OPT_OUT_WORDS)
    assert not optout.is_refusal("không") and not optout.is_refusal("KHONG")


def test_the_word_list_is_a_setting_that_refuses_answer_words() -> None:
    assert Settings.from_env({}).opt_out_words == optout.DEFAULT_OPT_OUT_WORDS
    assert optout.is_refusal("thôi", Settings.from_env({"SIPAS_OPT_OUT_WORDS": "THOI, TC"}).opt_out_words)
    for words, reason in (("TC,Không", "answer word"), ("TC,5", "digit"), ("TC, !", "empty")):
        with pytest.raises(ValueError, match=f"SIPAS_OPT_OUT_WORDS.*{reason}"):
            Settings.from_env({"SIPAS_OPT_OUT_WORDS": words})


def test_start_up_refuses_a_word_a_questionnaire_accepts(make_settings: Any, clock: Any) -> None:
    from ivr_service.app import create_app
    from ivr_service.settings import SettingsError

    with pytest.raises(SettingsError, match="SIPAS_OPT_OUT_WORDS: hai long"):
        create_app(make_settings(opt_out_words=("TC", "Hài lòng")), clock=clock)


# ---------------------------------------------------------------- POST /sms/inbound

@pytest.mark.parametrize("text", ["  tc ", "Hủy!", "TU  CHOI", "từ chối.", "Stop", "Dừng", "NGUNG"])
def test_a_refusal_word_opts_the_number_out_with_one_confirmation(app: Any, client: Any, text: str) -> None:
    response = post(client, text)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response" and list(root) == []
    opted = row(app, OptOut, phone_e164=E164)
    assert opted.source == "sms"
    inbound = row(app, InboundMessage, phone_e164=E164)
    assert (inbound.action, inbound.body, inbound.provider) == ("opt_out", text, "simulator")
    reply = row(app, Message, id=inbound.reply_message_id)
    assert (reply.kind, reply.body, reply.status, reply.phone_e164) == (
        "confirmation", CONFIRMATION, MessageStatus.QUEUED, E164)
    assert (reply.encoding, reply.segments) == ("GSM-7", 1)


@pytest.mark.parametrize("text", ["không", "5", "hai long", "tc 5", "stop please"])
def test_other_texts_are_stored_and_ignored(app: Any, client: Any, text: str) -> None:
    assert post(client, text).status_code == 200
    inbound = row(app, InboundMessage, phone_e164=E164)
    assert (inbound.action, inbound.body, inbound.reply_message_id) == ("ignored", text, None)
    assert count(app, OptOut) == 0 and count(app, Message) == 0


def test_an_unparseable_sender_is_stored_and_ignored(app: Any, client: Any) -> None:
    assert post(client, "STOP", sender="Viettel").status_code == 200
    inbound = row(app, InboundMessage, provider=app.extensions["sipas"].settings.provider)
    assert (inbound.phone_e164, inbound.action) == (None, "ignored")
    assert count(app, OptOut) == 0 and count(app, Message) == 0


def test_an_unsigned_request_is_refused(app: Any, client: Any) -> None:
    assert post(client, "STOP", sign=False).status_code == 403
    assert post(client, "STOP", headers={"X-Twilio-Signature": "bad"}).status_code == 403
    assert count(app, InboundMessage) == 0 and count(app, OptOut) == 0


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To", "Body"])
def test_a_malformed_request_names_the_parameter(app: Any, client: Any, missing: str) -> None:
    form = {"MessageSid": sid(), "From": PHONE, "To": "+15005550006", "Body": "STOP"}
    del form[missing]
    response = client.post("/sms/inbound", data=form)
    assert response.status_code == 400 and missing in response.get_data(as_text=True)
    assert count(app, InboundMessage) == 0


def test_a_retried_webhook_changes_nothing(app: Any, client: Any, clock: Any) -> None:
    message_sid = sid()
    assert post(client, "TC", message_sid=message_sid).status_code == 200
    clock.advance(seconds=30)
    assert post(client, "TC", message_sid=message_sid).status_code == 200
    assert count(app, InboundMessage) == 1 and count(app, OptOut) == 1
    assert count(app, Message, Message.kind == "confirmation") == 1


def test_a_second_refusal_the_same_day_keeps_the_one_confirmation(app: Any, client: Any) -> None:
    post(client, "TC")
    post(client, "STOP")
    assert count(app, InboundMessage) == 2 and count(app, Message) == 1


def test_the_confirmation_is_sent_by_the_message_round_even_at_the_cap(app: Any, client: Any, clock: Any) -> None:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:   # three messages in the last 24 h: the cap is reached
        for _ in range(3):
            session.add(Message(phone_e164=E164, kind="reminder", body="x", encoding="GSM-7", segments=1,
                                provider="simulator", status=MessageStatus.DELIVERED,
                                created_at=clock() - timedelta(hours=1)))
    post(client, "Hủy")
    messenger = RecordingMessenger(name="simulator")
    [claimed] = confirmation_round(app, messenger)
    [request] = messenger.requests
    assert (request.to, request.body, request.idempotency_key) == (E164, CONFIRMATION, claimed.token)
    reply = row(app, Message, kind="confirmation")
    assert reply.status is MessageStatus.ACCEPTED and reply.provider_id and reply.sent_at == clock()
    assert confirmation_round(app, messenger) == [] and len(messenger.requests) == 1


def test_pending_contacts_in_every_campaign_stop(app: Any, client: Any, make_campaign: Any) -> None:
    first = make_campaign([PHONE, "0987654321"], name="Q1")
    second = make_campaign([PHONE], name="Q2")
    post(client, "TỪ CHỐI")
    mine = [c for c in contacts(app) if c.phone_e164 == E164]
    assert {c.campaign_id for c in mine} == {first, second}
    assert all((c.status, c.disposition) == (ContactStatus.DONE, OPTED_OUT) for c in mine)
    other = row(app, Contact, phone_e164="+84987654321")
    assert other.status is ContactStatus.PENDING


def test_a_live_sms_link_ends_as_refused(app: Any, client: Any, make_campaign: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE])
    send(app, RecordingMessenger(), claim(app))
    link = row(app, SurveyLink, campaign_id=campaign_id)
    assert row(app, Attempt, id=link.attempt_id).status is AttemptStatus.IN_PROGRESS
    post(client, "stop")
    link = row(app, SurveyLink, campaign_id=campaign_id)
    attempt = row(app, Attempt, id=link.attempt_id)
    contact = row(app, Contact, campaign_id=campaign_id)
    assert link.finished_at is not None and attempt.outcome == "refused"
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "2.11")
    assert row(app, OptOut, phone_e164=E164).source == "sms"
