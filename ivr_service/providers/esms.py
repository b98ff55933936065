"""eSMS (a Vietnamese brandname gateway): one customer-care SMS per ``send_message``.

``POST <base_url>/MainService.svc/json/SendMultipleMessage_V4_post_json/`` with a JSON body
(developers.esms.vn, "Send OTP/Customer care message"): ``ApiKey``, ``SecretKey``,
``Phone``, ``Content`` (byte for byte: it must match a customer-care template registered
with the carriers), ``Brandname``, ``SmsType`` "2" (customer care), ``IsUnicode`` "1" when
the text needs UCS-2, ``RequestId`` (the message token: eSMS refuses a RequestId it saw
in the last 24 hours, so a retried request cannot send twice) and ``CallbackUrl`` (the
account's secret callback URL). ``Phone`` is sent in the national form, ``0`` + the
subscriber number, as in eSMS's own examples (the gateway serves Vietnamese numbers only).

The answer's ``CodeResult`` "100" means eSMS accepted the request (not that it was
delivered); ``SMSID`` is its id. Codes are classified by :data:`SEND_CODES`; a read
timeout is ``unknown`` (the message may exist). Delivery reports arrive later as an
unsigned GET on the callback URL; ``core.delivery``'s eSMS table reads their ``SendStatus``.
Credentials and message bodies never go into logs or error messages.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from ..core.messages import UCS2, encode
from .base import ProviderError
from .messaging import MessageRequest, MessageSent

log = logging.getLogger(__name__)

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
CUSTOMER_CARE = "2"
ACCEPTED = "100"
DUPLICATE_REQUEST = "124"

# CodeResult → (kind, reason, what it means). Anything else is retryable.
SEND_CODES: dict[str, tuple[str, str | None, str]] = {
    "99": ("permanent", "opted_out", "the number is blocked at the gateway (treated as an opt-out)"),
    "108": ("permanent", None, "the phone number is not in a valid format"),
    "101": ("configuration", None, "wrong ApiKey or SecretKey: check the account's credentials"),
    "102": ("configuration", None, "no price list for this account"),
    "103": ("configuration", None, "the eSMS balance is too low"),
    "104": ("configuration", None, "the brandname does not exist for this account: check the sender"),
    "118": ("configuration", None, "unsupported message type"),
    "140": ("configuration", None, "this server's IP address is not whitelisted at eSMS"),
    # Every message of the programme would fail the same way until its template is
    # registered (or fixed): ours to repair, not the number's fault.
    "146": ("configuration", None, "the text does not match a registered customer-care template"),
    "177": ("configuration", None, "the brandname is not registered with this number's carrier"),
}

# Delivery callback SendStatus → our delivery state (developers.esms.vn, "Callback Url").


def national(e164: str) -> str:
    """``+84912345678`` → ``0912345678``; eSMS sends to Vietnamese numbers only."""
    if not e164.startswith("+84") or not e164[3:].isdigit():
        raise ProviderError("eSMS sends only to Vietnamese (+84) numbers", code="not-vn", kind="permanent")
    return "0" + e164[3:]


class EsmsProvider:
    name = "esms"

    def __init__(self, api_key: str, secret_key: str, brandname: str | None, callback_url: str, *,
                 base_url: str = "https://rest.esms.vn", http_timeout_s: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self._api_key = api_key
        self._secret_key = secret_key
        self.brandname = brandname
        self.callback_url = callback_url
        self.url = base_url.rstrip("/") + SEND_PATH
        self.http_timeout_s = http_timeout_s
        self.session = session or requests.Session()

    def __repr__(self) -> str:   # never the keys
        return f"EsmsProvider(url={self.url!r}, brandname={self.brandname!r})"

    def send_message(self, request: MessageRequest) -> MessageSent:
        brandname = request.sender or self.brandname
        if not brandname:
            raise ProviderError("no brandname: set the messaging account's sender", code="no-sender",
                                kind="configuration")
        body = {
            "ApiKey": self._api_key, "SecretKey": self._secret_key, "Phone": national(request.to),
            "Content": request.body, "Brandname": brandname, "SmsType": CUSTOMER_CARE,
            "IsUnicode": "1" if encode(request.body).encoding == UCS2 else "0",
            "RequestId": request.idempotency_key, "CallbackUrl": self.callback_url,
        }
        try:
            response = self.session.post(self.url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "Accept": "application/json"},
                                         timeout=self.http_timeout_s)
        except requests.ReadTimeout:
            raise ProviderError("eSMS did not answer in time; the message may have been sent", code="timeout",
                                kind="unknown") from None
        except (requests.ConnectTimeout, requests.exceptions.SSLError) as exc:
            raise ProviderError(f"could not reach eSMS: {exc.__class__.__name__}", code="connect-error",
                                kind="retryable") from None
        except requests.ConnectionError as exc:
            refused = "refused" in str(exc).lower() or "failed to establish" in str(exc).lower()
            raise ProviderError(f"network error talking to eSMS: {exc.__class__.__name__}", code="network-error",
                                kind="retryable" if refused else "unknown") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderError(f"eSMS answered HTTP {response.status_code}", code=f"http-{response.status_code}",
                                kind="retryable")
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            # A 2xx we cannot read may still have sent the message.
            kind = "unknown" if response.status_code < 400 else "configuration"
            raise ProviderError(f"eSMS answered HTTP {response.status_code} without a JSON object",
                                code=f"http-{response.status_code}", kind=kind)
        return self._result(payload)

    def _result(self, payload: dict[str, Any]) -> MessageSent:
        code = str(payload.get("CodeResult", "")).strip()
        sms_id = payload.get("SMSID")
        has_id = isinstance(sms_id, str) and bool(sms_id.strip())
        if code == ACCEPTED:
            if not has_id:
                raise ProviderError("eSMS accepted the message without an SMSID", code="no-smsid", kind="unknown")
            return MessageSent(str(sms_id).strip())
        if code == DUPLICATE_REQUEST:
            # We sent this RequestId before: that request was the one that counts.
            if has_id:
                return MessageSent(str(sms_id).strip())
            raise ProviderError("eSMS had this RequestId already; its SMSID is not known yet", code=code,
                                kind="unknown")
        kind, reason, meaning = SEND_CODES.get(code, ("retryable", None, "refused by eSMS"))
        if code == "146":
            log.error("eSMS refused a message: %s (CodeResult 146); register the programme's template", meaning)
        # Not eSMS's ErrorMessage: it may repeat the number or the text.
        raise ProviderError(f"eSMS CodeResult {code or '?'}: {meaning}", code=code or "no-code", kind=kind,
                            reason=reason)

    def close(self) -> None:
        self.session.close()


