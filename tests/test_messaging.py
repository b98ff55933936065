"""Sending SMS invitations: claims, the 24 h cap, quiet hours, pacing, opt-outs, leases,
status callbacks, reminders, link expiry and the channel plan (services.messaging)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from ivr_service.core.messages import GSM7, normal_code
from ivr_service.persistence.models import (
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Interview,
    InterviewStatus,
    Message,
    MessageStatus,
    OptOut,
    SurveyLink,
)
from ivr_service.providers import ProviderError
from ivr_service.services import campaigns, dispatch, messaging
from ivr_service.services.dispatch import Pacing

from .conftest import ROOT, RecordingProvider, count, row, scalars
from .sms_helpers import (
    HOST,
    RecordingMessenger,
    callback,
    claim,
    contacts,
    round_,
    send,
    sms_campaign,
)

PHONE = "0912345678"
E164 = "+84912345678"


def test_an_invitation_is_claimed_with_its_link_and_sent_once(app: Any, make_campaign: Any, clock: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE])
    [claimed] = claim(app)
    attempt = row(app, Attempt, id=claimed.attempt_id)
    assert (attempt.channel, attempt.status, attempt.provider_id) == ("sms", AttemptStatus.QUEUED, None)
    assert attempt.lease_until is not None and attempt.lease_until > clock()
    link = row(app, SurveyLink, attempt_id=attempt.id)
    assert normal_code(link.code) == link.code and link.expires_at == clock() + timedelta(days=7)
    message = row(app, Message, token=claimed.token)
    assert message.body == (f"So TNMT Dak Nong moi Ong/ba danh gia dich vu da su dung: {HOST}/s/{link.code} "
                            f"Tu choi: {HOST}/s/{link.code}/stop")
    assert (message.kind, message.encoding, message.segments, message.status) == (
        "invitation", GSM7, 1, MessageStatus.QUEUED)
    assert claimed.sender == "SoTNMT" and claimed.to == E164
    assert row(app, Contact, campaign_id=campaign_id).status is ContactStatus.ACTIVE

    messenger = RecordingMessenger()
    send(app, messenger, [claimed])
    [request] = messenger.requests
    assert request.idempotency_key == claimed.token and request.body == message.body
    assert request.status_url == f"http://sipas.test/sms/{claimed.token}/status"
    message = row(app, Message, token=claimed.token)
    assert message.status is MessageStatus.ACCEPTED and message.provider_id and message.lease_until is None
    attempt = row(app, Attempt, id=claimed.attempt_id)
    assert attempt.status is AttemptStatus.IN_PROGRESS and attempt.lease_until is None
    assert attempt.provider_id is None   # the Message carries the provider's sid
    assert claim(app) == []             # nothing else is due


def test_the_cap_allows_three_messages_per_number_in_24_hours_across_campaigns(
        app: Any, make_campaign: Any, make_agency: Any, clock: Any) -> None:
    start = clock()
    ids = []
    for i in range(4):
        agency = make_agency(f"A{i}", f"Cơ quan {i}")
        ids.append(sms_campaign(app, make_campaign, [PHONE], agency=agency, name=f"Q{i}"))
        # Only campaign i's contact is due now (the others wait for their own hour).
        with app.extensions["sipas"].db.begin() as session:
            session.execute(update(Contact).where(Contact.campaign_id == ids[-1])
                            .values(next_attempt_at=start + timedelta(hours=i)))
    messenger = RecordingMessenger()
    sent = []
    for i in range(4):
        clock.current = start + timedelta(hours=i)
        sent += round_(app, messenger)
    assert len(sent) == 3 and len(messenger.requests) == 3
    fourth = row(app, Contact, campaign_id=ids[3])
    # Waits until the oldest of the three (sent at ``start``) is 24 hours old.
    assert fourth.status is ContactStatus.PENDING and fourth.next_attempt_at == start + timedelta(hours=24)
    clock.current = start + timedelta(hours=23, minutes=59)
    assert round_(app, messenger) == []
    clock.current = start + timedelta(hours=24)
    [late] = round_(app, messenger)
    assert late.to == E164 and len(messenger.requests) == 4
    assert count(app, Message, Message.phone_e164 == E164) == 4


def test_a_message_due_at_half_past_ten_at_night_waits_until_seven(app: Any, make_campaign: Any, clock: Any) -> None:
    clock.current = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)      # 22:30 in Hà Nội
    campaign_id = sms_campaign(app, make_campaign, [PHONE])
    assert claim(app) == []
    assert row(app, Contact, campaign_id=campaign_id).status is ContactStatus.PENDING
    clock.current = datetime(2026, 11, 17, 23, 59, tzinfo=UTC)      # 06:59
    assert claim(app) == []
    clock.current = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)        # 07:00
    [claimed] = claim(app)
    assert claimed.to == E164
    assert claimed.not_after == datetime(2026, 11, 18, 15, 0, tzinfo=UTC)   # 22:00


def test_a_message_claimed_before_ten_is_not_sent_after(app: Any, make_campaign: Any, clock: Any) -> None:
    clock.current = datetime(2026, 11, 17, 14, 59, 59, tzinfo=UTC)
    sms_campaign(app, make_campaign, [PHONE])
    claimed = claim(app)
    clock.current = datetime(2026, 11, 17, 15, 0, 1, tzinfo=UTC)   # 22:00:01
    messenger = RecordingMessenger()
    send(app, messenger, claimed)
    assert messenger.requests == []
    assert row(app, Message, token=claimed[0].token).status is MessageStatus.QUEUED


def test_the_sender_pace_holds(app: Any, make_campaign: Any, clock: Any) -> None:
    sms_campaign(app, make_campaign, [f"091{i:07d}" for i in range(10)])
    assert len(claim(app, rate=2)) == 2          # the bucket starts with one second's worth
    assert claim(app, rate=2) == []
    clock.advance(seconds=1)
    assert len(claim(app, rate=2)) == 2
    clock.advance(seconds=10)
    assert len(claim(app, rate=2)) == 2          # burst capped at one second's worth


def test_an_opted_out_number_is_never_messaged(app: Any, make_campaign: Any, clock: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE, "0987654321"])
    with app.extensions["sipas"].db.begin() as session:   # after the sample was drawn
        session.add(OptOut(phone_e164=E164, source="web", created_at=clock()))
    claimed = claim(app)
    assert [c.to for c in claimed] == ["+84987654321"]
    opted = row(app, Contact, campaign_id=campaign_id, phone_e164=E164)
    assert (opted.status, opted.disposition) == (ContactStatus.DONE, "2.11")
    assert count(app, Message, Message.phone_e164 == E164) == 0


def test_opting_out_while_a_message_waits_cancels_it(app: Any, make_campaign: Any, clock: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE])
    [claimed] = claim(app)   # the worker dies before sending
    with app.extensions["sipas"].db.begin() as session:
        session.add(OptOut(phone_e164=E164, source="web", created_at=clock()))
    clock.advance(minutes=2)
    assert claim(app) == []
    assert row(app, Message, token=claimed.token).status is MessageStatus.CANCELED
    assert row(app, Contact, campaign_id=campaign_id).disposition == "2.11"


def test_an_expired_lease_is_sent_again_with_the_same_token_and_only_once(
        app: Any, make_campaign: Any, clock: Any) -> None:
    sms_campaign(app, make_campaign, [PHONE, "0987654321"])
    first = claim(app)       # the worker dies: nothing sent
    messenger = RecordingMessenger()
    clock.advance(seconds=30)
    assert claim(app) == []  # the leases hold
    clock.advance(seconds=31)
    again = claim(app)
    assert sorted(c.token for c in again) == sorted(c.token for c in first)
    send(app, messenger, again)
    send(app, messenger, first)  # the dead worker wakes up: its leases are gone
    for _ in range(3):
        clock.advance(minutes=5)
        send(app, messenger, claim(app))
    tokens = Counter(r.idempotency_key for r in messenger.requests)
    assert set(tokens) == {c.token for c in first} and set(tokens.values()) == {1}
    assert count(app, Message) == 2 and count(app, Attempt) == 2
    assert {m.status for m in scalars(app, select(Message))} == {MessageStatus.ACCEPTED}


def test_an_ambiguous_error_waits_for_a_callback_and_is_never_sent_twice(
        app: Any, make_campaign: Any, clock: Any, client: Any) -> None:
    sms_campaign(app, make_campaign, [PHONE])
    messenger = RecordingMessenger(errors=[ProviderError("timeout", code="timeout", kind="unknown")])
    claimed = round_(app, messenger)
    message = row(app, Message, token=claimed[0].token)
    assert message.status is MessageStatus.QUEUED and message.error_code == "timeout"
    sid = "SM" + "a" * 32
    assert callback(client, claimed[0].token, "sent", sid).status_code == 204
    clock.advance(minutes=10)
    assert round_(app, messenger) == []
    assert len(messenger.requests) == 1
    message = row(app, Message, token=claimed[0].token)
    assert (message.status, message.provider_id) == (MessageStatus.SENT, sid)
    assert row(app, Attempt, id=claimed[0].attempt_id).status is AttemptStatus.IN_PROGRESS


def test_provider_errors_settle_the_contact_by_kind(app: Any, make_campaign: Any) -> None:
    numbers = ["0912345678", "0987654321", "0352222333", "0362222444"]
    campaign_id = sms_campaign(app, make_campaign, numbers,
                               plan=[{"channel": "sms", "max_attempts": 2}])
    messenger = RecordingMessenger(errors=[
        ProviderError("opted out", code="21610", kind="permanent"),
        ProviderError("not mobile", code="21614", kind="permanent"),
        ProviderError("slow down", code="20429", kind="retryable"),
        ProviderError("auth", code="20003", kind="configuration")])
    round_(app, messenger)
    by_phone = {c.phone_e164: c for c in contacts(app, campaign_id)}
    attempts = {a.contact_id: a for a in scalars(app, select(Attempt))}
    outcomes = {p: (attempts[c.id].status, attempts[c.id].outcome, c.status, c.disposition)
                for p, c in by_phone.items()}
    assert outcomes["+84912345678"] == (AttemptStatus.FAILED, "refused", ContactStatus.DONE, "2.11")
    assert outcomes["+84987654321"][:3] == (AttemptStatus.FAILED, "invalid_number", ContactStatus.DONE)
    assert outcomes["+84352222333"] == (AttemptStatus.FAILED, "failed", ContactStatus.PENDING, None)
    assert outcomes["+84362222444"] == (AttemptStatus.FAILED, "failed", ContactStatus.PENDING, None)
    assert count(app, OptOut, OptOut.phone_e164 == "+84912345678") == 1
    assert {m.status for m in scalars(app, select(Message))} == {MessageStatus.FAILED}


def test_status_callbacks_are_signed_idempotent_and_never_move_back(
        app: Any, make_campaign: Any, client: Any) -> None:
    sms_campaign(app, make_campaign, [PHONE])
    [claimed] = round_(app, RecordingMessenger())
    token = claimed.token
    sid = row(app, Message, token=token).provider_id
    unsigned = client.post(f"/sms/{token}/status", data={"MessageSid": sid, "MessageStatus": "delivered"},
                           sign=False)
    assert unsigned.status_code == 403
    forged = client.post(f"/sms/{token}/status", data={"MessageSid": sid, "MessageStatus": "delivered"},
                         headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    assert row(app, Message, token=token).status is MessageStatus.ACCEPTED
    for status in ("sent", "delivered", "delivered", "sent", "queued", "undelivered"):
        assert callback(client, token, status, sid, ErrorCode="30003" if status == "undelivered" else "") \
            .status_code == 204
    message = row(app, Message, token=token)
    assert message.status is MessageStatus.DELIVERED and message.error_code is None
    assert row(app, Attempt, id=claimed.attempt_id).status is AttemptStatus.IN_PROGRESS
    assert callback(client, token, "delivered", "SM" + "b" * 32).status_code == 409
    assert callback(client, token, "exploded", sid).status_code == 400
    assert callback(client, "0" * 32, "sent", sid).status_code == 404


def test_undelivered_invitations_end_their_attempt_by_error_code(app: Any, make_campaign: Any,
                                                                client: Any) -> None:
    numbers = {"0912345678": "30003", "0987654321": "30006", "0352222333": "21610", "0362222444": "30007"}
    campaign_id = sms_campaign(app, make_campaign, list(numbers), plan=[{"channel": "sms", "max_attempts": 2}])
    claimed = round_(app, RecordingMessenger())
    for item in claimed:
        code = numbers["0" + item.to[3:]]
        sid = row(app, Message, token=item.token).provider_id
        status = "failed" if code == "30006" else "undelivered"
        assert callback(client, item.token, status, sid, ErrorCode=code).status_code == 204
    result = {}
    for contact in contacts(app, campaign_id):
        attempt = row(app, Attempt, contact_id=contact.id)
        result["0" + contact.phone_e164[3:]] = (attempt.status, attempt.outcome, contact.status)
    assert result == {
        "0912345678": (AttemptStatus.FAILED, "failed", ContactStatus.PENDING),        # retried
        "0987654321": (AttemptStatus.FAILED, "invalid_number", ContactStatus.DONE),
        "0352222333": (AttemptStatus.FAILED, "refused", ContactStatus.DONE),
        "0362222444": (AttemptStatus.FAILED, "failed", ContactStatus.PENDING),        # filtered: retried
    }
    assert count(app, OptOut) == 1


def test_one_reminder_only_if_the_link_was_never_opened(app: Any, make_campaign: Any, clock: Any) -> None:
    sms_campaign(app, make_campaign, [PHONE, "0987654321"], reminder_hours=72)
    messenger = RecordingMessenger()
    invitations = round_(app, messenger)
    opened = invitations[1]
    with app.extensions["sipas"].db.begin() as session:
        session.execute(update(SurveyLink).where(SurveyLink.attempt_id == opened.attempt_id)
                        .values(opened_at=clock(), opens=1))
    clock.advance(hours=71)
    assert round_(app, messenger) == []
    clock.advance(hours=1)
    [reminder] = round_(app, messenger)
    assert reminder.kind == "reminder" and reminder.to == invitations[0].to
    assert reminder.attempt_id == invitations[0].attempt_id
    link = row(app, SurveyLink, attempt_id=invitations[0].attempt_id)
    assert link.reminded_at == clock() and link.code in reminder.body
    assert row(app, Message, token=reminder.token).status is MessageStatus.ACCEPTED
    clock.advance(hours=24)
    assert round_(app, messenger) == []
    assert [r.idempotency_key for r in messenger.requests] == [i.token for i in invitations] + [reminder.token]


def _answer(app: Any, attempt_id: int, items: dict[str, int], now: datetime) -> None:
    """What the web form stores when the citizen answers ``items`` (and opened the link)."""
    with app.extensions["sipas"].db.begin() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        interview = Interview(contact_id=attempt.contact_id, campaign_id=attempt.campaign_id,
                              questionnaire_key="sipas-2024", channel="web", started_at=now)
        session.add(interview)
        session.flush()
        for item, value in items.items():
            session.add(Answer(interview_id=interview.id, attempt_id=attempt_id, item_id=item, value=value,
                               status="answered", digits=str(value), answered_at=now))
        session.execute(update(SurveyLink).where(SurveyLink.attempt_id == attempt_id).values(opened_at=now, opens=1))


def test_expired_links_end_as_no_answer_break_off_or_partial(app: Any, make_campaign: Any, clock: Any) -> None:
    numbers = ["0912345678", "0987654321", "0352222333"]
    campaign_id = sms_campaign(app, make_campaign, numbers, link_days=7)
    claimed = {c.to: c for c in round_(app, RecordingMessenger())}
    q = app.extensions["sipas"].registry.get("sipas-2024")
    rated = [i.id for i in q.rated_items if "web" in i.channels and not i.condition]
    _answer(app, claimed["+84987654321"].attempt_id, {rated[0]: 4}, clock())
    _answer(app, claimed["+84352222333"].attempt_id, {i: 4 for i in rated[:-1]}, clock())
    svc = app.extensions["sipas"]
    clock.advance(days=7)
    assert messaging.expire_links(svc.db, svc.registry, clock() - timedelta(seconds=1)) == 0
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 3
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 0
    result = {}
    for contact in contacts(app, campaign_id):
        attempt = row(app, Attempt, contact_id=contact.id)
        interview = scalars(app, select(Interview.status).where(Interview.contact_id == contact.id))
        result[contact.phone_e164] = (attempt.status, attempt.outcome, contact.status, contact.disposition,
                                      interview)
    assert result["+84912345678"][:4] == (AttemptStatus.NO_ANSWER, "no_answer", ContactStatus.DONE, "3.13")
    assert result["+84987654321"] == (AttemptStatus.COMPLETED, "break_off", ContactStatus.DONE, "2.12",
                                      [InterviewStatus.BREAK_OFF])
    assert result["+84352222333"] == (AttemptStatus.COMPLETED, "partial", ContactStatus.DONE, "1.2",
                                      [InterviewStatus.PARTIAL])


def test_the_voice_dispatcher_never_touches_an_sms_attempt(app: Any, make_campaign: Any, clock: Any) -> None:
    sms_campaign(app, make_campaign, [PHONE, "0987654321"])
    queued, live = claim(app)
    send(app, RecordingMessenger(), [live])
    clock.advance(hours=2)              # the queued message's lease expired long ago
    before = [(a.id, a.status, a.lease_until, a.outcome) for a in scalars(app, select(Attempt))]
    voice = RecordingProvider()
    svc = app.extensions["sipas"]
    assert dispatch.claim_due(svc.db, Pacing("twilio", 1000.0, 1), clock(), 100) == []   # 1 concurrent call allowed
    assert dispatch.reconcile_stale(svc.db, svc.registry, voice, clock(), timedelta(minutes=1)) == 0
    after = [(a.id, a.status, a.lease_until, a.outcome) for a in scalars(app, select(Attempt))]
    assert after == before and voice.placed == []
    assert {a.status for a in scalars(app, select(Attempt))} == {AttemptStatus.QUEUED, AttemptStatus.IN_PROGRESS}


def test_voice_then_sms_then_the_campaign_closes(app: Any, make_campaign: Any, make_call: Any, claim: Any,
                                                 clock: Any) -> None:
    campaign_id = make_campaign([PHONE], channel_plan=[{"channel": "voice", "max_attempts": 1},
                                                       {"channel": "sms", "max_attempts": 1}])
    [call] = claim()
    make_call(call).status("no-answer")
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.channel, contact.status) == ("sms", ContactStatus.PENDING)
    clock.current = contact.next_attempt_at
    [invitation] = round_(app, RecordingMessenger())
    # No programme: the questionnaire's invitation, with the agency unaccented and a stop link.
    link = row(app, SurveyLink, attempt_id=invitation.attempt_id)
    assert invitation.body.startswith("So Tai nguyen va Moi truong tinh Dak Nong moi Ong/ba danh gia")
    assert invitation.body.endswith(f"Tu choi nhan tin: http://sipas.test/s/{link.code}/stop")
    # No reply keyword either (the random link code may itself contain the letters "TC").
    assert "TC" not in invitation.body.replace(link.code, "") and invitation.sender is None
    svc = app.extensions["sipas"]
    clock.advance(days=7)
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 1
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaigns.close_if_done(session, campaign, clock(), svc.registry)
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "3.13")
    assert row(app, Campaign, id=campaign_id).status is CampaignStatus.COMPLETED


def test_sms_then_voice_then_the_campaign_closes(app: Any, make_campaign: Any, make_call: Any, claim: Any,
                                                 clock: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE], programme=False,
                               plan=[{"channel": "sms", "max_attempts": 1}, {"channel": "voice", "max_attempts": 1}],
                               window={"weekdays": list(range(7)), "parts": [["07:00", "21:00"]],
                                       "public_holidays": None})
    round_(app, RecordingMessenger())
    svc = app.extensions["sipas"]
    clock.advance(days=7)
    messaging.expire_links(svc.db, svc.registry, clock())
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.channel, contact.status) == ("voice", ContactStatus.PENDING)
    clock.current = contact.next_attempt_at
    [call] = claim()
    driver = make_call(call)
    driver.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1"})
    driver.status("completed", CallDuration="120")
    contact = row(app, Contact, campaign_id=campaign_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "1.1")
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaigns.close_if_done(session, campaign, clock(), svc.registry)


def test_a_landline_skips_the_sms_step(app: Any, make_campaign: Any, clock: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [PHONE, "0987654321"], programme=False,
                               plan=[{"channel": "sms", "max_attempts": 1}, {"channel": "voice", "max_attempts": 1}])
    with app.extensions["sipas"].db.begin() as session:
        session.execute(update(Contact).where(Contact.phone_e164 == E164).values(phone_kind="landline"))
    [claimed] = claim(app)
    assert claimed.to == "+84987654321"
    landline = row(app, Contact, campaign_id=campaign_id, phone_e164=E164)
    assert (landline.channel, landline.status) == ("voice", ContactStatus.PENDING)


# -- several processes on one database ------------------------------------------------

WORKER_SCRIPT = """
import json, sys, uuid
from datetime import datetime, timedelta
from ivr_service import create_app
from ivr_service.providers import MessageSent
from ivr_service.services import messaging
from ivr_service.settings import Settings

url, log_path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = datetime.fromisoformat(sys.argv[4])  # the test's clock: messages wait outside 07:00-22:00

class FileMessenger:
    name = "twilio"
    def send_message(self, request):
        with open(log_path, "a", encoding="ascii") as f:
            f.write(request.idempotency_key + " " + request.to + "\\n")
        return MessageSent("SM" + uuid.uuid4().hex)
    def close(self):
        pass

app = create_app(Settings(database_url=url, public_base_url="http://sipas.test", secret_key="test"),
                 clock=lambda: now)
svc = app.extensions["sipas"]
pacing = messaging.MessagePacing("twilio", 100000.0, timedelta(seconds=60))
idle = 0
while idle < rounds:
    sent = messaging.send_round(svc.db, svc.registry, FileMessenger(), lambda t: "http://sipas.test/sms/" + t,
                                svc.clock, pacing, "http://sipas.test", batch=7)
    idle = 0 if sent else idle + 1
svc.db.dispose()
"""


def test_several_processes_send_each_message_once_and_the_cap_holds(
        app: Any, make_campaign: Any, make_agency: Any, tmp_path: Path, database_url: str, clock: Any) -> None:
    """Four processes claim and send together (PostgreSQL row locks; on SQLite the write
    lock serialises them): every message goes out exactly once, at most three per number."""
    numbers = [f"091{i:07d}" for i in range(30)]
    for i in range(5):
        sms_campaign(app, make_campaign, numbers, agency=make_agency(f"P{i}", f"Phường {i}"), name=f"P{i}")
    log = tmp_path / "sent.log"
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, str(script), database_url, str(log), "3", clock().isoformat()],
                                  cwd=ROOT, env=env) for _ in range(4)]
    for process in processes:
        assert process.wait(120) == 0
    lines = [line.split() for line in log.read_text(encoding="ascii").splitlines()]
    tokens = Counter(token for token, _to in lines)
    per_number = Counter(to for _token, to in lines)
    assert len(lines) == 90 and set(tokens.values()) == {1}
    assert set(per_number.values()) == {3} and len(per_number) == 30
    assert count(app, Message) == 90 and count(app, Attempt) == 90
    waiting = [c for c in contacts(app) if c.status is ContactStatus.PENDING]
    assert len(waiting) == 60 and all(c.next_attempt_at is not None for c in waiting)
