"""The eSMS brandname gateway adapter against a local stand-in that speaks eSMS's
documented JSON API (werkzeug in a thread), its delivery callback route, and a programme
routed to an eSMS account sending end to end through the worker."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ivr_service.persistence.models import (
    Attempt,
    AttemptStatus,
    Campaign,
    Message,
    MessageStatus,
    OptOut,
    PacingBucket,
    Programme,
)
from ivr_service.providers import MessageRequest, ProviderError
from ivr_service.providers.esms import SEND_PATH, EsmsProvider
from ivr_service.services import messaging_accounts
from ivr_service.worker import Worker

from .conftest import count, phones, row, scalars
from .sms_helpers import RecordingMessenger, sms_campaign

API_KEY, SECRET_KEY = "esms-api-key-1234", "esms-secret-key-5678"
CALLBACK = "https://survey.example.gov.vn/sms/esms/1/abc/status"


@dataclass
class FakeEsms:
    """Answers each POST with the next queued reply (status, JSON) or "hang"; by default
    accepts with a fresh SMSID."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    replies: list[tuple[int, Any] | str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.paths.append(request.path)
        self.content_types.append(request.content_type or "")
        self.requests.append(json.loads(request.get_data(as_text=True)))
        reply = self.replies.pop(0) if self.replies else (200, {"CodeResult": "100", "CountRegenerate": 0,
                                                              "SMSID": uuid.uuid4().hex})
        if reply == "hang":
            self.release.wait(30)
            return Response("", 504)(environ, start_response)
        status, payload = reply
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return Response(body, status, content_type="application/json")(environ, start_response)


@pytest.fixture
def esms_api() -> Iterator[FakeEsms]:
    fake = FakeEsms()
    server = make_server("127.0.0.1", 0, fake.app, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()


def provider_for(fake: FakeEsms, **options: Any) -> EsmsProvider:
    return EsmsProvider(API_KEY, SECRET_KEY, "SoTNMT", CALLBACK, base_url=fake.url, **options)


def message(body: str = "Moi danh gia: https://k.gov.vn/s/ACDEFGHJK Tu choi: https://k.gov.vn/s/ACDEFGHJK/stop",
            to: str = "+84912345678") -> MessageRequest:
    token = uuid.uuid4().hex
    return MessageRequest(to=to, body=body, sender=None, status_url="unused", idempotency_key=token)


# ============================================================================ the adapter

def test_send_posts_the_documented_json_fields(esms_api: FakeEsms) -> None:
    esms_api.replies.append((200, {"CodeResult": "100", "CountRegenerate": 0, "SMSID": "d533459ee42b2b95"}))
    request = message()
    sent = provider_for(esms_api).send_message(request)
    assert sent.provider_id == "d533459ee42b2b95"
    assert esms_api.paths == [SEND_PATH]
    assert esms_api.content_types[0].startswith("application/json")
    assert esms_api.requests == [{
        "ApiKey": API_KEY, "SecretKey": SECRET_KEY, "Phone": "0912345678", "Content": request.body,
        "Brandname": "SoTNMT", "SmsType": "2", "IsUnicode": "0", "RequestId": request.idempotency_key,
        "CallbackUrl": CALLBACK}]


def test_accented_text_is_sent_as_unicode_byte_for_byte(esms_api: FakeEsms) -> None:
    request = message(body="Mời Ông/Bà đánh giá: https://k.gov.vn/s/ACDEFGHJK")
    provider_for(esms_api).send_message(request)
    [sent] = esms_api.requests
    assert sent["IsUnicode"] == "1" and sent["Content"] == request.body
    assert sent["Content"].encode("utf-8") == request.body.encode("utf-8")


@pytest.mark.parametrize("reply, kind, code, reason", [
    ((200, {"CodeResult": "99", "ErrorMessage": "Phone blocked"}), "permanent", "99", "opted_out"),
    ((200, {"CodeResult": "108"}), "permanent", "108", None),
    ((200, {"CodeResult": "146", "ErrorMessage": "Template not match"}), "configuration", "146", None),
    ((200, {"CodeResult": "101"}), "configuration", "101", None),
    ((200, {"CodeResult": "103"}), "configuration", "103", None),
    ((200, {"CodeResult": "104"}), "configuration", "104", None),
    ((200, {"CodeResult": "124"}), "unknown", "124", None),
    ((200, {"CodeResult": "100"}), "unknown", "no-smsid", None),
    ((200, {"CodeResult": "500"}), "retryable", "500", None),
    ((503, "Service Unavailable"), "retryable", "http-503", None),
    ((200, "<html>not json</html>"), "unknown", "http-200", None),
])
def test_errors_are_classified(esms_api: FakeEsms, reply: Any, kind: str, code: str, reason: str | None) -> None:
    esms_api.replies.append(reply)
    with pytest.raises(ProviderError) as raised:
        provider_for(esms_api).send_message(message())
    assert (raised.value.kind, raised.value.code, raised.value.reason) == (kind, code, reason)
    assert API_KEY not in str(raised.value) and SECRET_KEY not in str(raised.value)
    assert "0912345678" not in str(raised.value)


def test_a_duplicate_request_id_with_its_smsid_counts_as_accepted(esms_api: FakeEsms) -> None:
    esms_api.replies.append((200, {"CodeResult": "124", "SMSID": "first-smsid"}))
    assert provider_for(esms_api).send_message(message()).provider_id == "first-smsid"


def test_a_read_timeout_is_unknown(esms_api: FakeEsms) -> None:
    esms_api.replies.append("hang")
    with pytest.raises(ProviderError) as raised:
        provider_for(esms_api, http_timeout_s=0.3).send_message(message())
    assert (raised.value.kind, raised.value.code) == ("unknown", "timeout")


def test_a_number_outside_vietnam_is_refused_without_a_request(esms_api: FakeEsms) -> None:
    with pytest.raises(ProviderError) as raised:
        provider_for(esms_api).send_message(message(to="+6591234567"))
    assert raised.value.kind == "permanent" and esms_api.requests == []


def test_the_keys_are_not_in_its_repr(esms_api: FakeEsms) -> None:
    text = repr(provider_for(esms_api))
    assert API_KEY not in text and SECRET_KEY not in text


# ============================================================================ through the worker

def routed(app: Any, make_campaign: Any, fake: FakeEsms, n: int = 2) -> tuple[Worker, RecordingMessenger, int, Any]:
    """A programme campaign routed to an eSMS account of its agency; the worker's own
    (installation) messenger records anything that would go the old way."""
    svc = app.extensions["sipas"]
    campaign_id = sms_campaign(app, make_campaign, phones(n), reminder_hours=None)
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        account = messaging_accounts.create_account(
            session, agency_id=campaign.agency_id, name="eSMS Sở TNMT", kind="esms", now=svc.clock(),
            credentials={"api_key": API_KEY, "secret_key": SECRET_KEY}, sender="SoTNMT", base_url=fake.url,
            prices={"*": 300})
        programme = session.get(Programme, campaign.programme_id)
        assert programme is not None
        programme.routing = messaging_accounts.check_routing(session, campaign.agency_id, [account.id])
        account_id, secret = account.id, account.callback_secret
    installation = RecordingMessenger()
    worker = Worker(app, messenger=installation)
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    return worker, installation, account_id, secret


def esms_callback(client: Any, account_id: int, secret: str, method: str = "get", **values: str) -> Any:
    url = f"/sms/esms/{account_id}/{secret}/status"
    if method == "get":
        return client.get(url, query_string=values, sign=False)
    return client.post(url, data=values, sign=False)


def test_a_routed_programme_sends_through_its_esms_account(app: Any, make_campaign: Any, client: Any,
                                                           esms_api: FakeEsms) -> None:
    worker, installation, account_id, secret = routed(app, make_campaign, esms_api)
    assert worker.messages() == 2
    assert installation.requests == []
    base = app.extensions["sipas"].settings.public_base_url.rstrip("/")
    messages = scalars(app, select(Message).order_by(Message.id))
    assert [m.account_id for m in messages] == [account_id, account_id]
    assert [m.provider for m in messages] == ["esms", "esms"]
    assert {r["RequestId"] for r in esms_api.requests} == {m.token for m in messages}
    assert {r["CallbackUrl"] for r in esms_api.requests} == {f"{base}/sms/esms/{account_id}/{secret}/status"}
    assert {r["Phone"] for r in esms_api.requests} == {"0910000000", "0910000001"}
    assert all(m.status is MessageStatus.ACCEPTED and m.provider_id for m in messages)
    assert row(app, PacingBucket, key=f"sender:sms:account:{account_id}") is not None
    assert count(app, Attempt, Attempt.status == AttemptStatus.IN_PROGRESS) == 2

    first = messages[0]
    values = {"SMSID": first.provider_id or "", "RequestId": first.token, "SendStatus": "5", "TypeId": "2",
              "telcoid": "1"}
    assert esms_callback(client, account_id, secret, **values).status_code == 200
    assert esms_callback(client, account_id, secret, **values).status_code == 200     # eSMS retries
    assert row(app, Message, id=first.id).status is MessageStatus.DELIVERED

    second = messages[1]
    failed = {"SMSID": second.provider_id or "", "RequestId": second.token, "SendStatus": "4"}
    assert esms_callback(client, account_id, secret, method="post", **failed).status_code == 200
    message_row = row(app, Message, id=second.id)
    assert (message_row.status, message_row.raw_status) == (MessageStatus.FAILED, "4")   # the raw SendStatus kept
    assert row(app, Attempt, id=second.attempt_id).status is AttemptStatus.FAILED
    worker.close()


def test_the_callback_needs_the_account_secret(app: Any, make_campaign: Any, client: Any,
                                               esms_api: FakeEsms) -> None:
    worker, _installation, account_id, secret = routed(app, make_campaign, esms_api, n=1)
    worker.messages()
    [sent] = scalars(app, select(Message))
    values = {"SMSID": sent.provider_id or "", "RequestId": sent.token, "SendStatus": "5"}
    wrong_secret = esms_callback(client, account_id, "0" * len(secret), **values)
    wrong_account = esms_callback(client, account_id + 1, secret, **values)
    assert wrong_secret.status_code == wrong_account.status_code == 403
    assert wrong_secret.get_data() == wrong_account.get_data()
    assert row(app, Message, id=sent.id).status is MessageStatus.ACCEPTED
    # Another account's message is not this account's to report on.
    unknown = esms_callback(client, account_id, secret, SMSID="x1", RequestId=uuid.uuid4().hex, SendStatus="5")
    assert unknown.status_code == 404
    bad = esms_callback(client, account_id, secret, SMSID=sent.provider_id or "", RequestId=sent.token,
                        SendStatus="42")
    assert bad.status_code == 400 and b"SendStatus" in bad.get_data()
    worker.close()


def test_a_blocked_number_is_an_opt_out(app: Any, make_campaign: Any, esms_api: FakeEsms) -> None:
    worker, _installation, _account_id, _secret = routed(app, make_campaign, esms_api, n=1)
    esms_api.replies.append((200, {"CodeResult": "99"}))
    worker.messages()
    [sent] = scalars(app, select(Message))
    assert sent.status is MessageStatus.FAILED and sent.error_code == "99"
    assert scalars(app, select(OptOut.phone_e164)) == ["+84910000000"]
    assert row(app, Attempt, id=sent.attempt_id).outcome == "refused"
    worker.close()


def test_a_template_mismatch_is_logged_without_the_body(app: Any, make_campaign: Any, esms_api: FakeEsms,
                                                        caplog: Any) -> None:
    worker, _installation, _account_id, _secret = routed(app, make_campaign, esms_api, n=1)
    esms_api.replies.append((200, {"CodeResult": "146"}))
    worker.messages()
    [sent] = scalars(app, select(Message))
    assert sent.status is MessageStatus.FAILED and sent.error_code == "146"
    assert "146" in caplog.text
    assert sent.body not in caplog.text and "0910000000" not in caplog.text and API_KEY not in caplog.text
    worker.close()


def test_an_unknown_answer_is_sent_again_through_the_account_with_the_same_request_id(
        app: Any, make_campaign: Any, clock: Any, esms_api: FakeEsms) -> None:
    worker, installation, account_id, _secret = routed(app, make_campaign, esms_api, n=1)
    esms_api.replies.append((200, {"CodeResult": "124"}))       # duplicate, no SMSID: unknown
    worker.messages()
    [first] = scalars(app, select(Message))
    assert first.status is MessageStatus.QUEUED and first.error_code == "124"
    clock.advance(minutes=10)                                   # past the unknown lease (5 min)
    assert worker.messages() == 1
    assert [r["RequestId"] for r in esms_api.requests] == [first.token, first.token]
    assert installation.requests == []
    again = row(app, Message, id=first.id)
    assert again.status is MessageStatus.ACCEPTED and again.account_id == account_id
    worker.close()
