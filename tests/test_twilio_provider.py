"""The Twilio provider against a local HTTP server standing in for Twilio's REST API.

The server is reached through the ``twilio_api_base_url`` setting, exactly as a
Twilio-compatible provider would be; it records every request the official library sends
and answers as Twilio does (JSON bodies, Twilio error codes)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.persistence.models import Attempt, AttemptStatus, Contact, ContactStatus
from ivr_service.providers import CallRequest, ProviderError, build_provider
from ivr_service.providers.twilio import TwilioProvider
from ivr_service.worker import Worker

ACCOUNT = "AC" + "0" * 32
TOKEN = "twilio-test-auth-token"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class FakeTwilio:
    """Answers with the next queued reply (status, JSON) or a created call."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    replies: list[tuple[int, dict[str, Any]] | str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def reply_for(self, recorded: Recorded) -> tuple[int, dict[str, Any]] | str:
        if self.replies:
            return self.replies.pop(0)
        if recorded.method == "POST":
            return 201, {"sid": "CA" + uuid.uuid4().hex, "status": "queued", "account_sid": ACCOUNT}
        sid = recorded.path.rsplit("/", 1)[-1].removesuffix(".json")
        return 200, {"sid": sid, "status": "completed", "duration": "42", "account_sid": ACCOUNT}


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            recorded = Recorded(self.command, self.path, dict(self.headers), parse_qs(body))
            fake.requests.append(recorded)
            reply = fake.reply_for(recorded)
            if reply == "hang":  # never answer: the client's read timeout fires
                fake.release.wait(30)
                return
            status, payload = reply  # type: ignore[misc]
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


def provider_for(fake: FakeTwilio, **options: Any) -> TwilioProvider:
    return TwilioProvider(ACCOUNT, TOKEN, ("+842812345678", "+842812345679"), api_base_url=fake.url, **options)


def request(to: str = "+84912345678") -> CallRequest:
    token = uuid.uuid4().hex
    return CallRequest(to=to, from_=None, answer_url=f"https://survey.example.gov.vn/voice/{token}/answer",
                       status_url=f"https://survey.example.gov.vn/voice/{token}/status", idempotency_key=token)


def twilio_error(status: int, code: int, message: str = "error") -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


def test_place_call_sends_the_twilio_request(twilio_api: FakeTwilio) -> None:
    provider = provider_for(twilio_api, ring_timeout_s=25, machine_detection="Enable")
    call = request()
    placed = provider.place_call(call)
    assert len(twilio_api.requests) == 1
    sent = twilio_api.requests[0]
    assert sent.method == "POST"
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    user, _, password = base64.b64decode(sent.headers["Authorization"].split()[1]).decode().partition(":")
    assert (user, password) == (ACCOUNT, TOKEN)
    form = sent.form
    assert form["To"] == ["+84912345678"]
    assert form["From"] == ["+842812345678"]
    assert form["Url"] == [call.answer_url] and form["Method"] == ["POST"]
    assert form["StatusCallback"] == [call.status_url] and form["StatusCallbackMethod"] == ["POST"]
    assert sorted(form["StatusCallbackEvent"]) == ["answered", "completed", "initiated", "ringing"]
    assert form["Timeout"] == ["25"]
    assert form["MachineDetection"] == ["Enable"]
    assert placed.provider_id.startswith("CA") and len(placed.provider_id) == 34


def test_caller_ids_rotate_and_machine_detection_is_off_by_default(twilio_api: FakeTwilio) -> None:
    provider = provider_for(twilio_api)
    for _ in range(3):
        provider.place_call(request())
    assert [r.form["From"][0] for r in twilio_api.requests] == ["+842812345678", "+842812345679", "+842812345678"]
    assert all("MachineDetection" not in r.form for r in twilio_api.requests)
    assert all(r.form["Timeout"] == ["30"] for r in twilio_api.requests)


@pytest.mark.parametrize("reply, kind, code", [
    (twilio_error(400, 21211, "The 'To' number +84000 is not a valid phone number."), "permanent", "21211"),
    (twilio_error(400, 21217, "Phone number does not appear to be valid"), "permanent", "21217"),
    (twilio_error(400, 21216, "Account not allowed to call"), "permanent", "21216"),
    (twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), "permanent", "21610"),
    (twilio_error(429, 20429, "Too Many Requests"), "retryable", "20429"),
    (twilio_error(503, 20500, "Service unavailable"), "retryable", "20500"),
    (twilio_error(401, 20003, "Authenticate"), "configuration", "20003"),
    (twilio_error(400, 21215, "Geo permission"), "configuration", "21215"),
    (twilio_error(400, 21212, "Invalid From number"), "configuration", "21212"),
    (twilio_error(400, 29999, "Something new"), "retryable", "29999"),
])
def test_errors_are_classified_with_twilio_codes(twilio_api: FakeTwilio, reply: tuple[int, dict[str, Any]],
                                                 kind: str, code: str) -> None:
    twilio_api.replies.append(reply)
    with pytest.raises(ProviderError) as raised:
        provider_for(twilio_api).place_call(request())
    assert raised.value.kind == kind
    assert raised.value.code == code
    assert raised.value.retryable is (kind != "permanent")
    assert code in str(raised.value)


def test_a_read_timeout_is_ambiguous(twilio_api: FakeTwilio) -> None:
    twilio_api.replies.append("hang")
    with pytest.raises(ProviderError) as raised:
        provider_for(twilio_api, http_timeout_s=0.3).place_call(request())
    assert (raised.value.kind, raised.value.code) == ("unknown", "timeout")


def test_a_refused_connection_is_retryable() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TwilioProvider(ACCOUNT, TOKEN, ("+842812345678",), api_base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as raised:
        provider.place_call(request())
    assert raised.value.kind == "retryable" and raised.value.code == "network-error"


def test_fetch_call_reads_status_and_duration(twilio_api: FakeTwilio) -> None:
    provider = provider_for(twilio_api)
    sid = "CA" + "a" * 32
    state = provider.fetch_call(sid)
    assert state is not None and (state.provider_id, state.status, state.duration_s) == (sid, "completed", 42)
    assert twilio_api.requests[-1].method == "GET"
    assert twilio_api.requests[-1].path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"
    twilio_api.replies.append(twilio_error(404, 20404, "not found"))
    assert provider.fetch_call(sid) is None


def test_twilio_environment_variables_do_not_redirect_the_client(twilio_api: FakeTwilio,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    provider_for(twilio_api).place_call(request())
    assert len(twilio_api.requests) == 1  # an edge would have sent it to api.sydney.au1.twilio.com


# -- through the worker, with the provider built from settings ----------------------------


@pytest.fixture
def twilio_app(make_settings: Any, clock: Any, twilio_api: FakeTwilio) -> Iterator[Any]:
    settings = make_settings(provider="twilio", twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                             twilio_caller_ids=("+842812345678",), twilio_api_base_url=twilio_api.url,
                             public_base_url="https://survey.example.gov.vn", secret_key="s" * 32,
                             twilio_http_timeout=0.3, calls_per_second=100)
    app = create_app(settings, clock=clock)
    yield app
    app.extensions["sipas"].db.dispose()


def attempts(app: Any) -> list[Attempt]:
    with app.extensions["sipas"].db.begin() as session:
        return list(session.scalars(select(Attempt).order_by(Attempt.id)))


def test_worker_places_calls_with_webhook_urls_from_the_public_base(twilio_app: Any, twilio_api: FakeTwilio,
                                                                   make_campaign: Any) -> None:
    worker = Worker(twilio_app)
    assert isinstance(worker.provider, TwilioProvider)
    make_campaign(["0912345678", "0987654321"], app=twilio_app)
    assert worker.dispatch() == 2
    rows = attempts(twilio_app)
    assert [a.status for a in rows] == [AttemptStatus.INITIATED] * 2
    by_token = {a.token: a for a in rows}
    for sent in twilio_api.requests:
        url = sent.form["Url"][0]
        token = url.split("/voice/")[1].split("/")[0]
        assert url.startswith(f"https://survey.example.gov.vn/voice/{token}/answer")
        assert sent.form["StatusCallback"] == [f"https://survey.example.gov.vn/voice/{token}/status"]
        assert by_token[token].provider_id is not None and by_token[token].provider_id.startswith("CA")
    assert {r.form["To"][0] for r in twilio_api.requests} == {"+84912345678", "+84987654321"}


def test_invalid_number_ends_the_contact_and_rate_limit_retries(twilio_app: Any, twilio_api: FakeTwilio,
                                                                make_campaign: Any) -> None:
    twilio_api.replies += [twilio_error(400, 21211), twilio_error(429, 20429)]
    make_campaign(["0912345678", "0987654321"], app=twilio_app)
    assert Worker(twilio_app).dispatch() == 2
    rows = attempts(twilio_app)
    assert [(a.status, a.outcome, a.error_code) for a in rows] == [
        (AttemptStatus.FAILED, "invalid_number", "21211"), (AttemptStatus.FAILED, "failed", "20429")]
    with twilio_app.extensions["sipas"].db.begin() as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        first, second = contacts[rows[0].contact_id], contacts[rows[1].contact_id]
        assert first.status is ContactStatus.DONE and first.disposition is not None
        assert second.status is ContactStatus.PENDING and second.next_attempt_at is not None


def test_timeout_then_a_callback_means_the_call_exists_and_is_never_placed_again(
        twilio_app: Any, twilio_api: FakeTwilio, make_campaign: Any, make_call: Any, clock: Any) -> None:
    twilio_api.replies.append("hang")
    make_campaign(["0912345678"], app=twilio_app)
    worker = Worker(twilio_app)
    assert worker.dispatch() == 1
    [attempt] = attempts(twilio_app)
    assert attempt.status is AttemptStatus.QUEUED and attempt.error_code == "timeout"
    clock.advance(minutes=1)
    assert worker.dispatch() == 0  # the contact is still active and the lease holds: no second call
    # Twilio's "initiated" callback names the call the timed-out request created.
    sid = "CA" + "b" * 32
    make_call(attempt.token, sid=sid, app=twilio_app).status("initiated")
    clock.advance(hours=1)
    assert worker.dispatch() == 0
    [attempt] = attempts(twilio_app)
    assert attempt.provider_id == sid and attempt.status is not AttemptStatus.QUEUED
    assert len([r for r in twilio_api.requests if r.method == "POST"]) == 1


def test_timeout_without_any_callback_is_placed_again_with_the_same_token(
        twilio_app: Any, twilio_api: FakeTwilio, make_campaign: Any, clock: Any) -> None:
    twilio_api.replies.append("hang")
    make_campaign(["0912345678"], app=twilio_app)
    worker = Worker(twilio_app)
    worker.dispatch()
    clock.advance(minutes=6)  # past the lease given to an ambiguous error: nothing was placed
    assert worker.dispatch() == 1
    posts = [r for r in twilio_api.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[0].form["Url"] == posts[1].form["Url"]
    [attempt] = attempts(twilio_app)
    assert attempt.status is AttemptStatus.INITIATED and attempt.number == 1


def test_build_provider_twilio_uses_the_base_url_setting(make_settings: Any, twilio_api: FakeTwilio) -> None:
    settings = make_settings(provider="twilio", twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                             twilio_caller_ids=("+842812345678",), twilio_api_base_url=twilio_api.url + "/",
                             secret_key="s" * 32)
    provider = build_provider(settings)
    assert isinstance(provider, TwilioProvider)
    provider.place_call(request())
    assert twilio_api.requests[0].path.startswith("/2010-04-01/")
