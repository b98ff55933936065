"""The Twilio Messaging provider against the local stand-in for Twilio's REST API
(``twilio_api_base_url``), as tests/test_twilio_provider.py does for calls."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from ivr_service.providers import MessageRequest, ProviderError, build_messaging_provider
from ivr_service.providers.twilio_messaging import TwilioMessagingProvider

from .test_twilio_provider import ACCOUNT, TOKEN, FakeTwilio, twilio_api, twilio_error  # noqa: F401

SID = "SM" + "c" * 32


def provider_for(fake: FakeTwilio, sender: str | None = "SoTNMT", **options: Any) -> TwilioMessagingProvider:
    return TwilioMessagingProvider(ACCOUNT, TOKEN, sender, api_base_url=fake.url, **options)


def message(sender: str | None = None) -> MessageRequest:
    token = uuid.uuid4().hex
    return MessageRequest(to="+84912345678", body="Moi danh gia: https://k.gov.vn/s/ACDEFGHJK Tu choi: ...",
                          sender=sender, status_url=f"https://survey.example.gov.vn/sms/{token}/status",
                          idempotency_key=token)


def test_send_message_posts_to_messages_json(twilio_api: FakeTwilio) -> None:  # noqa: F811
    twilio_api.replies.append((201, {"sid": SID, "status": "queued"}))
    request = message()
    sent = provider_for(twilio_api).send_message(request)
    assert sent.provider_id == SID
    [recorded] = twilio_api.requests
    assert (recorded.method, recorded.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    user, _, password = base64.b64decode(recorded.headers["Authorization"].split()[1]).decode().partition(":")
    assert (user, password) == (ACCOUNT, TOKEN)
    assert recorded.form == {"To": ["+84912345678"], "From": ["SoTNMT"], "Body": [request.body],
                             "StatusCallback": [request.status_url]}
    assert recorded.headers["I-Twilio-Idempotency-Token"] == request.idempotency_key


def test_the_programme_sender_wins_and_a_missing_sender_is_a_configuration_error(
        twilio_api: FakeTwilio) -> None:  # noqa: F811
    twilio_api.replies.append((201, {"sid": SID}))
    provider_for(twilio_api).send_message(message(sender="UBNDDakNong"))
    assert twilio_api.requests[0].form["From"] == ["UBNDDakNong"]
    with pytest.raises(ProviderError) as raised:
        provider_for(twilio_api, sender=None).send_message(message())
    assert raised.value.kind == "configuration" and len(twilio_api.requests) == 1


@pytest.mark.parametrize("reply, kind, code", [
    (twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), "permanent", "21610"),
    (twilio_error(400, 21211, "Invalid 'To' Phone Number"), "permanent", "21211"),
    (twilio_error(400, 21614, "'To' number is not a valid mobile number"), "permanent", "21614"),
    (twilio_error(429, 20429, "Too Many Requests"), "retryable", "20429"),
    (twilio_error(500, 20500, "Internal error"), "retryable", "20500"),
    (twilio_error(401, 20003, "Authenticate"), "configuration", "20003"),
    (twilio_error(400, 21408, "Permission to send an SMS has not been enabled"), "configuration", "21408"),
    (twilio_error(400, 21212, "Invalid From Number"), "configuration", "21212"),
])
def test_errors_are_classified(twilio_api: FakeTwilio, reply: Any, kind: str, code: str) -> None:  # noqa: F811
    twilio_api.replies.append(reply)
    with pytest.raises(ProviderError) as raised:
        provider_for(twilio_api).send_message(message())
    assert (raised.value.kind, raised.value.code) == (kind, code)
    assert code in str(raised.value)


def test_a_read_timeout_is_unknown(twilio_api: FakeTwilio) -> None:  # noqa: F811
    twilio_api.replies.append("hang")
    with pytest.raises(ProviderError) as raised:
        provider_for(twilio_api, http_timeout_s=0.3).send_message(message())
    assert (raised.value.kind, raised.value.code) == ("unknown", "timeout")


def test_the_factory_builds_it_from_settings(make_settings: Any, twilio_api: FakeTwilio) -> None:  # noqa: F811
    settings = make_settings(provider="twilio", twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                             twilio_caller_ids=("+842812345678",), twilio_api_base_url=twilio_api.url,
                             twilio_sms_sender="SIPAS", secret_key="s" * 32)
    provider = build_messaging_provider(settings)
    assert isinstance(provider, TwilioMessagingProvider)
    twilio_api.replies.append((201, {"sid": SID}))
    assert provider.send_message(message()).provider_id == SID
    assert twilio_api.requests[0].form["From"] == ["SIPAS"]


def test_fetch_message_reads_status_and_error_code(twilio_api: FakeTwilio) -> None:  # noqa: F811
    twilio_api.replies += [(200, {"sid": SID, "status": "undelivered", "error_code": 30003}),
                           (200, {"sid": SID, "status": "sent", "error_code": None}),
                           twilio_error(404, 20404, "The requested resource was not found"),
                           twilio_error(500, 20500, "Internal error")]
    provider = provider_for(twilio_api)
    state = provider.fetch_message(SID)
    assert state is not None and (state.status, state.error_code) == ("undelivered", "30003")
    assert twilio_api.requests[0].method == "GET"
    assert twilio_api.requests[0].path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json"
    state = provider.fetch_message(SID)
    assert state is not None and (state.status, state.error_code) == ("sent", None)
    assert provider.fetch_message(SID) is None            # Twilio has no such message
    with pytest.raises(ProviderError) as raised:
        provider.fetch_message(SID)
    assert raised.value.kind == "retryable"
