"""Twilio Messaging (or a Twilio-compatible API): one SMS per ``send_message``.

``POST /2010-04-01/Accounts/<sid>/Messages.json`` with ``To``, ``From`` (the programme's
sender, else ``SIPAS_TWILIO_SMS_SENDER``), ``Body`` (byte for byte) and ``StatusCallback``
(our signed ``/sms/<token>/status`` webhook: queued, sending, sent, delivered, undelivered,
failed). The message token travels as ``I-Twilio-Idempotency-Token`` so a retried request
names the same message. The REST base URL is ``SIPAS_TWILIO_API_BASE_URL``, as for calls,
so a local stand-in serves the tests.

Errors are classified as for calls (:func:`providers.twilio.classify`) with the messaging
codes: 21610 (the recipient replied STOP: opted out), 21211 / 21614 (not a valid mobile
number) are permanent; 20429 and 5xx retryable; 20003 and sender or geo-permission codes
are configuration; a read timeout is unknown (the message may exist).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..settings import Settings
from .base import ProviderError
from .messaging import MessageRequest, MessageSent, MessageState
from .twilio import CONFIGURATION_CODES, classify

log = logging.getLogger(__name__)
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

# The number cannot get this message: the attempt ends (21610: opted out at the carrier).
MESSAGE_PERMANENT_CODES = {
    21211: "invalid 'To' phone number",
    21407: "this phone number type does not support SMS",
    21610: "the recipient opted out (STOP)",
    21612: "'To' number is not reachable on this route",
    21614: "'To' number is not a mobile number",
    30006: "landline or unreachable carrier",
}
MESSAGE_CONFIGURATION_CODES = {
    **CONFIGURATION_CODES,
    21212: "invalid sender: check the programme's sender or SIPAS_TWILIO_SMS_SENDER",
    21606: "the sender cannot send this message: check SIPAS_TWILIO_SMS_SENDER",
    21659: "the sender is not a registered or owned number or brandname",
    21604: "a 'To' phone number is required",
    21602: "the message body is required",
    21408: "geo permissions do not allow SMS to this country (enable Vietnam in the console)",
}


class TwilioMessagingProvider:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, default_sender: str | None,
                 api_base_url: str = "https://api.twilio.com", http_timeout_s: float = 10.0) -> None:
        self.client = Client(account_sid, auth_token, account_sid=account_sid, environment={"SIPAS": "1"},
                             http_client=TwilioHttpClient(timeout=http_timeout_s))
        self.account_sid = account_sid
        self.base_url = api_base_url.rstrip("/")
        self.default_sender = default_sender

    @classmethod
    def from_settings(cls, settings: Settings, **_options: object) -> TwilioMessagingProvider:
        assert settings.twilio_account_sid and settings.twilio_auth_token  # checked by Settings.validate
        return cls(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_sms_sender,
                   api_base_url=settings.twilio_api_base_url, http_timeout_s=settings.twilio_http_timeout)

    def send_message(self, request: MessageRequest) -> MessageSent:
        sender = request.sender or self.default_sender
        if not sender:
            raise ProviderError("no SMS sender: set the programme's sender or SIPAS_TWILIO_SMS_SENDER",
                                code="no-sender", kind="configuration")
        uri = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        data = {"To": request.to, "From": sender, "Body": request.body, "StatusCallback": request.status_url}
        _status, payload = self._call("POST", uri, data=data, headers={IDEMPOTENCY_HEADER: request.idempotency_key})
        sid = payload.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderError("the provider accepted the message without a sid", code="no-sid", kind="unknown")
        return MessageSent(sid)

    def fetch_message(self, provider_id: str) -> MessageState | None:
        """Ask Twilio about a message (GET …/Messages/<sid>.json); None when it has none."""
        uri = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{provider_id}.json"
        found, payload = self._call("GET", uri, missing_ok=True)
        if found == 404:
            return None
        status = payload.get("status")
        if not isinstance(status, str) or not status:
            raise ProviderError("the provider described a message without a status", code="no-status",
                                kind="unknown")
        code = payload.get("error_code")
        return MessageState(provider_id, status, str(code) if code not in (None, "") else None)

    def _call(self, method: str, uri: str, *, data: dict[str, str] | None = None,
              headers: dict[str, str] | None = None, missing_ok: bool = False) -> tuple[int, dict[str, Any]]:
        """One REST request: its status and JSON body; errors classified as ProviderError
        (a 404 returned as such when ``missing_ok``)."""
        try:
            response = self.client.request(method, uri, data=data,
                                           headers={**(headers or {}), "Accept": "application/json"})
        except requests.RequestException as exc:
            raise classify(exc, MESSAGE_PERMANENT_CODES, MESSAGE_CONFIGURATION_CODES) from exc
        try:
            payload = json.loads(response.text or "{}")
        except ValueError:
            payload = {}
        if response.status_code == 404 and missing_ok:
            return 404, payload
        if response.status_code >= 400:
            error = TwilioRestException(response.status_code, uri, str(payload.get("message", ""))[:300],
                                        payload.get("code"), method=method)
            raise classify(error, MESSAGE_PERMANENT_CODES, MESSAGE_CONFIGURATION_CODES)
        return response.status_code, payload

    def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()
