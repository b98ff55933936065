"""Zalo ZNS: the provider against a local stand-in of Zalo's ZNS and OAuth APIs (werkzeug
in a thread), the OA token kept in the database and refreshed once by several workers,
the ZNS → SMS fallback for numbers without Zalo, and the signed delivery webhook."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, select, text

from ivr_service import create_app
from ivr_service.persistence.db import Database
from ivr_service.persistence.models import (
    Attempt,
    AttemptStatus,
    Contact,
    ContactStatus,
    Message,
    MessageStatus,
    SurveyLink,
    ZnsToken,
)
from ivr_service.providers import MessageRequest, ProviderError
from ivr_service.providers.zns import ZaloOAuth, ZnsProvider, event_signature
from ivr_service.services import messaging, zns_tokens
from ivr_service.services.messaging import MessagePacing
from ivr_service.services.zns_tokens import DbTokenSource

from .conftest import row
from .sms_helpers import HOST, RecordingMessenger, claim, send, sms_campaign, status_url

APP_ID = "4303345510491118000"
APP_SECRET = "app-secret-for-tests"
OA_SECRET = "oa-secret-for-tests"
TEMPLATE_ID = "318021"
PHONE, E164 = "0912345678", "+84912345678"


@dataclass
class Sent:
    path: str
    headers: dict[str, str]       # lower-case names, as sent
    body: bytes


@dataclass
class FakeZalo:
    """Zalo's ZNS send API and OAuth v4 refresh, as documented: tokens are checked, a
    refresh token works once, ``replies`` answer sends first, ``hold`` keeps a refresh
    waiting until it is set."""

    url: str = ""
    sends: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    refreshes: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    replies: list[dict[str, Any] | str] = field(default_factory=list)
    valid: set[str] = field(default_factory=lambda: {"AT-0"})
    refresh_token: str = "RT-0"
    hold: threading.Event | None = None
    release: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)   # a refresh arrived
    refuse_all: bool = False          # every access token is refused (a revoked OA)
    issued: int = 0

    def answer(self, request: Sent) -> tuple[int, Any]:
        if request.path == "/message/template":
            payload = self.send(request)
        elif request.path == "/v4/oa/access_token":
            payload = self.refresh(request)
        else:
            return 404, {"error": 404}
        if payload == "hang":
            self.release.wait(30)
            payload = {"error": 0, "message": "Success", "data": {"msg_id": "late"}}
        return 200, payload

    def send(self, request: Sent) -> Any:
        self.sends.append((request.headers, json.loads(request.body)))
        if self.refuse_all or request.headers.get("access_token") not in self.valid:
            return {"error": -124, "message": "Access token is invalid"}
        if self.replies:
            return self.replies.pop(0)
        return {"error": 0, "message": "Success",
                "data": {"msg_id": uuid.uuid4().hex, "sent_time": "1701400000000",
                         "quota": {"dailyQuota": "500", "remainingQuota": "499"}}}

    def refresh(self, request: Sent) -> dict[str, Any]:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(30)
        form = dict(parse_qsl(request.body.decode()))
        self.refreshes.append((request.headers, form))
        if (request.headers.get("secret_key") != APP_SECRET or form.get("app_id") != APP_ID
                or form.get("grant_type") != "refresh_token"):
            return {"error": -14002, "error_name": "Invalid app", "error_description": "..."}
        if form.get("refresh_token") != self.refresh_token:
            return {"error": -14014, "error_name": "Invalid refresh token", "error_description": "..."}
        self.issued += 1
        access, self.refresh_token = f"AT-{self.issued}", f"RT-{self.issued}"
        self.valid.add(access)
        return {"access_token": access, "refresh_token": self.refresh_token, "expires_in": "90000"}


@pytest.fixture
def zalo() -> Iterator[FakeZalo]:
    fake = FakeZalo()

    # http.server, not werkzeug's: a WSGI server drops headers with underscores (Zalo's
    # "access_token" and "secret_key"), so the stand-in reads them raw.
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Sent(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            status, payload = fake.answer(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    if fake.hold is not None:
        fake.hold.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def zns_app(make_settings: Any, clock: Any, zalo: FakeZalo) -> Iterator[Any]:
    application = create_app(make_settings(zalo_app_id=APP_ID, zalo_oa_secret=OA_SECRET, zalo_app_secret=APP_SECRET,
                                           zns_base_url=zalo.url, zalo_oauth_url=zalo.url), clock=clock)
    yield application
    application.extensions["sipas"].db.dispose()


def tokens_for(app: Any, zalo: FakeZalo, expires_in: timedelta = timedelta(hours=20)) -> DbTokenSource:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        zns_tokens.store_grant(session, "default", "AT-0", "RT-0", svc.clock() + expires_in, svc.clock())
    return DbTokenSource(svc.db, "default", ZaloOAuth(APP_ID, APP_SECRET, zalo.url))


def provider_for(app: Any, zalo: FakeZalo, tokens: DbTokenSource | None = None, **options: Any) -> ZnsProvider:
    return ZnsProvider(tokens or tokens_for(app, zalo), template_id=TEMPLATE_ID, base_url=zalo.url,
                       clock=app.extensions["sipas"].clock, **options)


def request_(**options: Any) -> MessageRequest:
    token = uuid.uuid4().hex
    return MessageRequest(to=E164, body=f"Moi danh gia: {HOST}/s/ACDEFGHJK Tu choi: {HOST}/s/ACDEFGHJK/stop",
                          sender=None, status_url="", idempotency_key=token, **options)


def stored(app: Any) -> ZnsToken:
    return row(app, ZnsToken, account_key="default")


# ============================================================================ the provider

def test_a_template_message_is_posted_with_the_access_token(zns_app: Any, zalo: FakeZalo) -> None:
    request = request_(template_data={"ten_co_quan": "Sở Tài nguyên và Môi trường", "ma": "ACDEFGHJK"})
    sent = provider_for(zns_app, zalo).send_message(request)
    [(headers, body)] = zalo.sends
    assert headers["access_token"] == "AT-0" and headers["content-type"] == "application/json"
    assert body == {"phone": "84912345678", "template_id": TEMPLATE_ID, "tracking_id": request.idempotency_key,
                    "template_data": {"ten_co_quan": "Sở Tài nguyên và Môi trường", "ma": "ACDEFGHJK"}}
    assert len(sent.provider_id) == 32 and zalo.refreshes == []


def test_without_template_data_the_link_code_goes_to_the_template_button(zns_app: Any, zalo: FakeZalo) -> None:
    provider_for(zns_app, zalo).send_message(request_())
    assert zalo.sends[0][1]["template_data"] == {"code": "ACDEFGHJK"}
    provider_for(zns_app, zalo).send_message(request_(template_id="999"))
    assert zalo.sends[1][1]["template_id"] == "999"


@pytest.mark.parametrize("reply, kind, code", [
    ({"error": -118, "message": "Zalo account not existed"}, "permanent", "-118"),
    ({"error": -108, "message": "Phone number is invalid"}, "permanent", "-108"),
    ({"error": -115, "message": "Out of quota"}, "retryable", "-115"),
    ({"error": -109, "message": "Template ID is not found"}, "configuration", "-109"),
    ({"error": -112, "message": "Template data invalid"}, "configuration", "-112"),
    ({"error": -9999, "message": "Something new"}, "configuration", "-9999"),
])
def test_errors_are_classified_with_zalos_code(zns_app: Any, zalo: FakeZalo, reply: dict[str, Any], kind: str,
                                               code: str) -> None:
    zalo.replies.append(reply)
    with pytest.raises(ProviderError) as raised:
        provider_for(zns_app, zalo).send_message(request_())
    assert (raised.value.kind, raised.value.code) == (kind, code)
    assert code in str(raised.value)


def test_a_read_timeout_is_unknown(zns_app: Any, zalo: FakeZalo) -> None:
    zalo.replies.append("hang")
    with pytest.raises(ProviderError) as raised:
        provider_for(zns_app, zalo, http_timeout_s=0.3).send_message(request_())
    assert (raised.value.kind, raised.value.code) == ("unknown", "timeout")


def test_a_missing_template_is_a_configuration_error(zns_app: Any, zalo: FakeZalo) -> None:
    provider = ZnsProvider(tokens_for(zns_app, zalo), base_url=zalo.url, clock=zns_app.extensions["sipas"].clock)
    with pytest.raises(ProviderError) as raised:
        provider.send_message(request_())
    assert raised.value.kind == "configuration" and zalo.sends == []


# ============================================================================ tokens

def test_a_refused_token_is_refreshed_once_and_the_message_sent_again(zns_app: Any, zalo: FakeZalo,
                                                                      clock: Any) -> None:
    zalo.valid = set()          # Zalo revoked AT-0 although it had hours left
    sent = provider_for(zns_app, zalo).send_message(request_())
    assert [h["access_token"] for h, _ in zalo.sends] == ["AT-0", "AT-1"] and sent.provider_id
    [(headers, form)] = zalo.refreshes
    assert headers["secret_key"] == APP_SECRET
    assert form == {"refresh_token": "RT-0", "app_id": APP_ID, "grant_type": "refresh_token"}
    token = stored(zns_app)
    assert (token.access_token, token.refresh_token) == ("AT-1", "RT-1")
    assert token.expires_at == clock() + timedelta(seconds=90000)


def test_a_token_refused_twice_is_a_configuration_error(zns_app: Any, zalo: FakeZalo) -> None:
    zalo.refuse_all = True
    with pytest.raises(ProviderError) as raised:
        provider_for(zns_app, zalo).send_message(request_())
    assert (raised.value.kind, raised.value.code) == ("configuration", "-124")
    assert len(zalo.sends) == 2 and len(zalo.refreshes) == 1


def test_the_token_is_renewed_before_it_expires(zns_app: Any, zalo: FakeZalo, clock: Any) -> None:
    tokens = tokens_for(zns_app, zalo, expires_in=timedelta(minutes=30))
    provider = provider_for(zns_app, zalo, tokens)
    provider.send_message(request_())
    assert zalo.refreshes == []                      # 30 minutes left: still good
    clock.advance(minutes=21)                        # 9 minutes left: renewed first
    provider.send_message(request_())
    assert [h["access_token"] for h, _ in zalo.sends] == ["AT-0", "AT-1"] and len(zalo.refreshes) == 1
    provider.send_message(request_())
    assert len(zalo.refreshes) == 1 and stored(zns_app).refresh_token == "RT-1"


def test_a_refused_refresh_is_a_configuration_error_naming_no_token(zns_app: Any, zalo: FakeZalo) -> None:
    tokens = tokens_for(zns_app, zalo, expires_in=timedelta(minutes=1))
    zalo.refresh_token = "RT-spent-elsewhere"
    with pytest.raises(ProviderError) as raised:
        tokens.access_token(zns_app.extensions["sipas"].clock())
    assert (raised.value.kind, raised.value.code) == ("configuration", "-14014")
    assert "RT-0" not in str(raised.value)
    assert stored(zns_app).refresh_token == "RT-0"   # unchanged: nothing was granted


def test_two_workers_refresh_the_token_once(zns_app: Any, zalo: FakeZalo, clock: Any, clean_db: str) -> None:
    """Two workers find the token about to expire at once; the single-use refresh token is
    spent once, and the second worker uses the token the first stored."""
    if not clean_db.startswith("postgresql"):
        pytest.skip("row locks between workers need PostgreSQL (SQLite runs one worker)")
    tokens_for(zns_app, zalo, expires_in=timedelta(minutes=5))
    zalo.hold = threading.Event()
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        db = Database(clean_db)        # a worker has its own engine and connections
        try:
            results[name] = DbTokenSource(db, "default", ZaloOAuth(APP_ID, APP_SECRET, zalo.url)).access_token(clock())
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    assert zalo.entered.wait(20)      # the first worker holds the row lock, refreshing
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    probe = Database(clean_db)
    try:
        # The second worker waits for the first one's row lock (seen by PostgreSQL).
        _wait_for(lambda: _lock_waiters(probe) >= 1)
    finally:
        zalo.hold.set()
        first.join(30)
        second.join(30)
        probe.dispose()
    assert errors == []
    assert results == {"first": "AT-1", "second": "AT-1"}
    assert len(zalo.refreshes) == 1
    assert stored(zns_app).refresh_token == "RT-1"


def _lock_waiters(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar() or 0)


def _wait_for(condition: Any, deadline_s: float = 20.0) -> None:
    """Poll a condition another thread makes true (no fixed sleep decides the outcome)."""
    ticker = threading.Event()
    waited = 0.0
    while not condition():
        if waited > deadline_s:
            raise AssertionError("condition not reached")
        ticker.wait(0.01)
        waited += 0.01


# ============================================================================ fallback to SMS

def zns_claim(app: Any) -> list[messaging.ClaimedMessage]:
    svc = app.extensions["sipas"]
    return messaging.claim_messages(svc.db, MessagePacing("zns", 1000.0, timedelta(seconds=60)), svc.clock(), 100,
                                    registry=svc.registry, default_host="http://sipas.test")


def test_no_zalo_account_falls_back_to_an_sms_sent_by_the_next_round(zns_app: Any, zalo: FakeZalo, clock: Any,
                                                                     make_campaign: Any) -> None:
    sms_campaign(zns_app, make_campaign, [PHONE])
    [claimed] = zns_claim(zns_app)
    zalo.replies.append({"error": -118, "message": "Zalo account not existed"})
    svc = zns_app.extensions["sipas"]
    messaging.send(svc.db, svc.registry, provider_for(zns_app, zalo), claimed, status_url, svc.clock,
                   fallback_sender="twilio")
    zns = row(zns_app, Message, token=claimed.token)
    assert (zns.provider, zns.status, zns.error_code) == ("zns", MessageStatus.FAILED, "-118")
    sms = row(zns_app, Message, fallback_of_id=zns.id)
    assert zns.error_message == f"no Zalo account: replaced by SMS message {sms.id}"
    link = row(zns_app, SurveyLink, attempt_id=claimed.attempt_id)
    assert (sms.provider, sms.kind, sms.status, sms.attempt_id) == (
        "twilio", "invitation", MessageStatus.QUEUED, claimed.attempt_id)
    assert sms.body == (f"So TNMT Dak Nong moi Ong/ba danh gia dich vu da su dung: {HOST}/s/{link.code} "
                        f"Tu choi: {HOST}/s/{link.code}/stop")
    assert row(zns_app, Attempt, id=claimed.attempt_id).status is AttemptStatus.QUEUED
    assert row(zns_app, Contact, id=link.contact_id).status is ContactStatus.ACTIVE

    clock.advance(seconds=1)
    [again] = claim(zns_app)                  # the SMS sender's round
    assert (again.message_id, again.body, again.sender) == (sms.id, sms.body, "SoTNMT")
    messenger = RecordingMessenger()
    send(zns_app, messenger, [again])
    [request] = messenger.requests
    assert request.to == E164 and request.idempotency_key == sms.token
    assert row(zns_app, Message, id=sms.id).status is MessageStatus.ACCEPTED
    assert row(zns_app, Attempt, id=claimed.attempt_id).status is AttemptStatus.IN_PROGRESS
    with svc.db.begin() as session:           # idempotent: the same SMS, not a second one
        message = session.get(Message, zns.id)
        assert messaging.fall_back_to_sms(session, message, clock(), sender="twilio").id == sms.id
        assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_the_fallback_sms_waits_for_the_window(zns_app: Any, zalo: FakeZalo, clock: Any,
                                               make_campaign: Any) -> None:
    sms_campaign(zns_app, make_campaign, [PHONE])
    [claimed] = zns_claim(zns_app)
    zalo.replies.append({"error": -118, "message": "Zalo account not existed"})
    svc = zns_app.extensions["sipas"]
    messaging.send(svc.db, svc.registry, provider_for(zns_app, zalo), claimed, status_url, svc.clock,
                   fallback_sender="twilio")
    clock.current = clock.current.replace(hour=15, minute=30)    # 22:30 in Hà Nội: quiet hours
    assert claim(zns_app) == []
    clock.advance(hours=9)                                        # 07:30 the next morning
    [again] = claim(zns_app)
    assert row(zns_app, Message, id=again.message_id).fallback_of_id is not None


def test_without_a_fallback_sender_no_zalo_ends_the_attempt(zns_app: Any, zalo: FakeZalo,
                                                            make_campaign: Any) -> None:
    sms_campaign(zns_app, make_campaign, [PHONE])
    [claimed] = zns_claim(zns_app)
    zalo.replies.append({"error": -118, "message": "Zalo account not existed"})
    svc = zns_app.extensions["sipas"]
    messaging.send(svc.db, svc.registry, provider_for(zns_app, zalo), claimed, status_url, svc.clock)
    assert row(zns_app, Attempt, id=claimed.attempt_id).status is AttemptStatus.FAILED
    with svc.db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


# ============================================================================ delivery webhook

def signed_post(client: Any, event: dict[str, Any], *, secret: str = OA_SECRET, header: str | None = None) -> Any:
    body = json.dumps(event).encode()
    signature = header if header is not None else \
        "mac=" + event_signature(APP_ID, body, str(event["timestamp"]), secret)
    return client.post("/zns/events", data=body, content_type="application/json",
                       headers={"X-ZEvent-Signature": signature})


def delivered(now: datetime, tracking_id: str | None, msg_id: str | None) -> dict[str, Any]:
    message = {k: v for k, v in {"msg_id": msg_id, "tracking_id": tracking_id}.items() if v is not None}
    message["delivery_time"] = str(int(now.timestamp() * 1000))
    return {"app_id": APP_ID, "event_name": "user_received_message", "timestamp": str(int(now.timestamp() * 1000)),
            "sender": {"id": "579745863508352884"}, "recipient": {"id": "1234"}, "message": message}


def sent_zns(app: Any, zalo: FakeZalo, make_campaign: Any) -> Message:
    sms_campaign(app, make_campaign, [PHONE])
    [claimed] = zns_claim(app)
    svc = app.extensions["sipas"]
    messaging.send(svc.db, svc.registry, provider_for(app, zalo), claimed, status_url, svc.clock)
    return row(app, Message, token=claimed.token)


def test_a_signed_delivery_event_marks_the_message_delivered_once(zns_app: Any, zalo: FakeZalo, clock: Any,
                                                                 make_campaign: Any) -> None:
    message = sent_zns(zns_app, zalo, make_campaign)
    assert message.status is MessageStatus.ACCEPTED
    client = zns_app.test_client()
    event = delivered(clock(), message.token, message.provider_id)
    assert signed_post(client, event).status_code == 200
    assert row(zns_app, Message, id=message.id).status is MessageStatus.DELIVERED
    assert signed_post(client, event).status_code == 200          # Zalo retries: nothing changes
    after = row(zns_app, Message, id=message.id)
    assert (after.status, after.updated_at) == (MessageStatus.DELIVERED, clock())


def test_an_event_naming_only_the_msg_id_is_found(zns_app: Any, zalo: FakeZalo, clock: Any,
                                                  make_campaign: Any) -> None:
    message = sent_zns(zns_app, zalo, make_campaign)
    assert signed_post(zns_app.test_client(), delivered(clock(), None, message.provider_id)).status_code == 200
    assert row(zns_app, Message, id=message.id).status is MessageStatus.DELIVERED


@pytest.mark.parametrize("case", ["wrong secret", "no header", "tampered", "bare hex ok"])
def test_the_signature_is_checked(zns_app: Any, zalo: FakeZalo, clock: Any, make_campaign: Any,
                                  case: str) -> None:
    message = sent_zns(zns_app, zalo, make_campaign)
    client = zns_app.test_client()
    event = delivered(clock(), message.token, message.provider_id)
    if case == "wrong secret":
        response = signed_post(client, event, secret="not-the-secret")
    elif case == "no header":
        response = signed_post(client, event, header="")
    elif case == "tampered":
        good = "mac=" + event_signature(APP_ID, json.dumps(event).encode(), event["timestamp"], OA_SECRET)
        event["message"]["tracking_id"] = uuid.uuid4().hex
        response = signed_post(client, event, header=good)
    else:
        bare = hashlib.sha256((APP_ID + json.dumps(event) + event["timestamp"] + OA_SECRET).encode()).hexdigest()
        response = signed_post(client, event, header=bare)
    expected = 200 if case == "bare hex ok" else 403
    assert response.status_code == expected
    status = row(zns_app, Message, id=message.id).status
    assert status is (MessageStatus.DELIVERED if expected == 200 else MessageStatus.ACCEPTED)


def test_a_stale_event_is_refused(zns_app: Any, zalo: FakeZalo, clock: Any, make_campaign: Any) -> None:
    message = sent_zns(zns_app, zalo, make_campaign)
    event = delivered(clock() - timedelta(minutes=16), message.token, message.provider_id)
    response = signed_post(zns_app.test_client(), event)
    assert response.status_code == 403 and b"stale" in response.data
    assert row(zns_app, Message, id=message.id).status is MessageStatus.ACCEPTED


def test_other_events_and_unknown_messages_are_acknowledged(zns_app: Any, clock: Any) -> None:
    client = zns_app.test_client()
    chat = {"app_id": APP_ID, "event_name": "user_send_text", "timestamp": str(int(clock().timestamp() * 1000)),
            "message": {"text": "xin chao", "msg_id": "abc"}}
    assert signed_post(client, chat).status_code == 200
    assert signed_post(client, delivered(clock(), uuid.uuid4().hex, "nobody")).status_code == 200
    bad = {"app_id": APP_ID, "event_name": "user_received_message", "timestamp": "soon"}
    response = signed_post(client, bad, header="mac=00")
    assert response.status_code == 400 and b"timestamp" in response.data


def test_events_are_refused_when_zns_is_not_configured(app: Any, clock: Any) -> None:
    response = signed_post(app.test_client(), delivered(clock(), uuid.uuid4().hex, "x"))
    assert response.status_code == 403 and b"SIPAS_ZALO_OA_SECRET" in response.data
