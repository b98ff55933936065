"""X-Twilio-Signature on every webhook, checked with the twilio library's RequestValidator
against the public URL setting: good, bad, missing, tampered, behind a proxy, SHA-256."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from ivr_service import create_app
from ivr_service.settings import SIMULATOR_AUTH_TOKEN, Settings, SettingsError

from .conftest import new_sid, snapshot

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://survey.example.gov.vn"


@pytest.fixture
def app(make_settings: Any, clock: Any) -> Iterator[Any]:
    # Behind a proxy: Twilio calls https://survey.example.gov.vn, this process sees
    # http://localhost (the test client's host).
    application = create_app(make_settings(public_base_url=PUBLIC, twilio_auth_token=TOKEN), clock=clock)
    yield application
    application.extensions["sipas"].db.dispose()


def sign(url: str, form: dict[str, str], token: str = TOKEN, algorithm: str | None = None) -> str:
    return RequestValidator(token).compute_signature(url, form, algorithm)


def answer_form(call: Any) -> dict[str, str]:
    return {"CallSid": call.sid, "CallStatus": "in-progress", "To": "+84912345678", "From": "+842812345678"}


def post(client: Any, path: str, form: dict[str, str], signature: str | None, **headers: str) -> Any:
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data=form, headers=headers, sign=False)


def test_a_good_signature_over_the_public_url_is_accepted(app: Any, client: Any, call: Any) -> None:
    path = f"/voice/{call.token}/answer?q=sipas-2024"
    form = answer_form(call)
    response = post(client, path, form, sign(PUBLIC + path, form))
    assert response.status_code == 200 and b"<Gather" in response.data


def test_the_url_twilio_signed_may_carry_the_default_port(app: Any, client: Any, call: Any) -> None:
    path = f"/voice/{call.token}/answer"
    form = answer_form(call)
    assert post(client, path, form, sign(f"{PUBLIC}:443{path}", form)).status_code == 200


def test_sha256_signatures_named_in_the_settings_header_are_accepted(app: Any, client: Any,
                                                                    call: Any) -> None:
    path = f"/voice/{call.token}/answer"
    form = answer_form(call)
    response = post(client, path, form, sign(PUBLIC + path, form, algorithm="HMAC_SHA256"),
                    **{"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_x,algorithm=HMAC_SHA256"})
    assert response.status_code == 200
    # The same SHA-256 signature without the header is checked as SHA-1 and fails.
    assert post(client, path, form, sign(PUBLIC + path, form, algorithm="HMAC_SHA256")).status_code == 403


def test_an_unknown_signature_algorithm_is_refused(app: Any, client: Any, call: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = f"/voice/{call.token}/answer"
    form = answer_form(call)
    with caplog.at_level(logging.WARNING):
        response = post(client, path, form, sign(PUBLIC + path, form),
                        **{"X-Twilio-Webhooks-Signature-Settings": "key=k,algorithm=HMAC_MD5"})
    assert response.status_code == 403
    assert "HMAC_MD5" in caplog.text  # the library says why


def test_a_parameter_sent_twice_is_signed_with_both_values(app: Any, client: Any, call: Any) -> None:
    from werkzeug.datastructures import MultiDict
    path = f"/voice/{call.token}/answer"
    form = MultiDict([*answer_form(call).items(), ("ForwardedFrom", "+842811111111"),
                      ("ForwardedFrom", "+842822222222")])
    good = sign(PUBLIC + path, form)
    assert post(client, path, form, good).status_code == 200
    first_only = MultiDict([*answer_form(call).items(), ("ForwardedFrom", "+842811111111")])
    assert post(client, path, form, sign(PUBLIC + path, first_only)).status_code == 403


def signature_cases(call: Any) -> list[tuple[str, str, dict[str, str], str | None]]:
    token = call.token
    answer = f"/voice/{token}/answer"
    gather = f"/voice/{token}/gather?item=CONSENT"
    status = f"/voice/{token}/status"
    a = answer_form(call)
    g = {"CallSid": call.sid, "Digits": "1"}
    s = {"CallSid": call.sid, "CallStatus": "completed", "CallDuration": "30"}
    return [
        ("missing", answer, a, None),
        ("empty", answer, a, ""),
        ("garbage", answer, a, "not-a-signature"),
        ("wrong token", answer, a, sign(PUBLIC + answer, a, token="another-token")),
        # Signed for the URL this process sees, not the public one Twilio called.
        ("internal url", answer, a, sign("http://localhost" + answer, a)),
        ("other path", answer, a, sign(PUBLIC + status, a)),
        ("tampered digits", gather, {**g, "Digits": "9"}, sign(PUBLIC + gather, g)),
        ("tampered query", f"/voice/{token}/gather?item=C01", g, sign(PUBLIC + gather, g)),
        ("added parameter", status, {**s, "AnsweredBy": "machine_start"}, sign(PUBLIC + status, s)),
        ("missing status", status, s, None),
        ("not base64", answer, a, "é" * 28),  # not ASCII: refused, not a 500
        ("signed for another port", answer, a, sign(f"{PUBLIC}:8443{answer}", a)),
    ]


@pytest.mark.parametrize("case", range(12))
def test_bad_or_missing_signatures_get_403_and_record_nothing(app: Any, client: Any, call: Any,
                                                             case: int, caplog: pytest.LogCaptureFixture) -> None:
    # Answer the call first (validly), so a forged gather or status would have something to change.
    path = f"/voice/{call.token}/answer"
    form = answer_form(call)
    assert post(client, path, form, sign(PUBLIC + path, form)).status_code == 200
    name, path, form, signature = signature_cases(call)[case]
    before = snapshot(app)
    with caplog.at_level(logging.WARNING):
        response = post(client, path, form, signature)
    assert response.status_code == 403, name
    assert snapshot(app) == before, name
    logged = caplog.text
    assert "X-Twilio-Signature" in logged
    assert "+849" not in logged and "0912" not in logged  # the form (phone numbers) is never logged


def test_the_simulator_signs_with_the_development_token_when_none_is_set(make_settings: Any) -> None:
    settings: Settings = make_settings()
    assert settings.provider == "simulator" and settings.twilio_auth_token is None
    assert settings.webhook_auth_token == SIMULATOR_AUTH_TOKEN
    assert make_settings(twilio_auth_token="abc").webhook_auth_token == "abc"


def test_validation_can_be_turned_off_only_with_the_simulator(make_settings: Any, clock: Any, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SettingsError, match="SIPAS_VALIDATE_SIGNATURES"):
        make_settings(validate_signatures=False, provider="twilio", twilio_account_sid="AC" + "1" * 32,
                      twilio_auth_token=TOKEN, twilio_caller_ids=("+842812345678",)).validate()
    with caplog.at_level(logging.WARNING):
        unchecked = create_app(make_settings(validate_signatures=False), clock=clock)
    assert "SIPAS_VALIDATE_SIGNATURES is off" in caplog.text
    # Unsigned requests reach the handler: an unknown attempt is a 404, not a 403.
    response = unchecked.test_client().post(f"/voice/{'0' * 32}/answer", data={"CallSid": new_sid()}, sign=False)
    assert response.status_code == 404
    unchecked.extensions["sipas"].db.dispose()


def test_signed_requests_through_a_real_http_server(live_server: Any) -> None:
    """The signature check also holds over real HTTP (werkzeug server, not the test client)."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    settings = live_server.extensions["sipas"].settings
    base = urlsplit(settings.public_base_url)
    path = f"/voice/{'0' * 32}/answer"
    form = {"CallSid": new_sid()}
    results = []
    for signature in (sign(settings.public_base_url + path, form, token=settings.webhook_auth_token), "forged"):
        conn = http.client.HTTPConnection(base.netloc, timeout=10)
        conn.request("POST", path, body=urlencode(form), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        results.append(conn.getresponse().status)
        conn.close()
    assert results == [404, 403]  # signed: reaches the handler (unknown attempt); forged: refused
