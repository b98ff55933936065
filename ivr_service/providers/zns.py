"""Zalo ZNS (Zalo Notification Service): one approved template message per ``send_message``.

``POST <SIPAS_ZNS_BASE_URL>/message/template`` with the OA access token in the
``access_token`` header and the JSON body ``{"phone": "84…", "template_id": …,
"template_data": {…}, "tracking_id": <message token>}``; Zalo answers
``{"error": 0, "message": "Success", "data": {"msg_id": …}}``, and ``msg_id`` becomes the
message's ``provider_id``. A ZNS message is a template approved by Zalo, not a body:
accented text is fine, links live only in the template's buttons (template data may carry
the link's code for the button URL). The tracking id is our message token, so a delivery
event names the message even before ``msg_id`` was recorded.

Tokens: the OA access token lives about 25 hours; the refresh token is single-use. They are
kept by a :class:`TokenSource` (``services.zns_tokens``, one row-locked database row per
account) and refreshed *before* expiry; an answer that says the token is invalid makes the
provider refresh once and send once more. :class:`ZaloOAuth` is the HTTP side of the refresh
(``POST <SIPAS_ZALO_OAUTH_URL>/v4/oa/access_token``, form ``refresh_token``, ``app_id``,
``grant_type=refresh_token``, header ``secret_key``).

Errors become :class:`ProviderError` kinds with Zalo's code as given (``"-118"``):
:data:`PERMANENT_CODES` (−118: the number has no Zalo account, which the caller answers
with an SMS), :data:`TOKEN_CODES`, :data:`RETRYABLE_CODES` (quota, rate),
:data:`CONFIGURATION_CODES` (template, OA). The code tables follow Zalo's public ZNS error
list as far as it could be checked (−118, −124 and the shape of the answer are
confirmed by several clients; the others are from Zalo's published table and may
change): they are constructor arguments so an account can correct them without a release.
An unknown negative code is a configuration error (logged as an error, retried later).
A read timeout is ``unknown``: the message may exist; the tracking id names it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests

from ..settings import Settings
from .base import ProviderError
from .messaging import MessageRequest, MessageSent

log = logging.getLogger(__name__)

SEND_PATH = "/message/template"
REFRESH_PATH = "/v4/oa/access_token"
NO_ZALO_CODE = "-118"

# The number cannot get ZNS: the message ends; −118 is answered with an SMS by the caller.
PERMANENT_CODES: Mapping[int, str] = {
    -118: "the number has no Zalo account (or it is inactive)",
    -108: "invalid phone number",
    -119: "the Zalo account cannot receive ZNS messages",
    -139: "the user refused ZNS messages from this OA",
}
# The access token was refused: refresh it once and send again.
TOKEN_CODES: Mapping[int, str] = {
    -124: "access token invalid or expired",
    -216: "access token invalid",
}
RETRYABLE_CODES: Mapping[int, str] = {
    -115: "the OA's ZNS quota is used up",
    -144: "the OA's daily ZNS quota is used up",
    -32: "rate limit exceeded",
    -100: "Zalo application error",
}
CONFIGURATION_CODES: Mapping[int, str] = {
    -109: "template id not found",
    -111: "template data empty",
    -112: "template data invalid",
    -114: "the template or its data is invalid",
    -117: "the template is not approved (or the OA has no ZNS permission)",
    -131: "template data does not match the template's parameters",
    -133: "the message cannot be sent at this hour (night-time rule)",
}

# Delivery webhook event → our delivery status name (as services.messaging.apply_status reads it).
# "user_received_message" is the documented delivery event of a ZNS message; other event
# names on the same webhook (a user's message, follow, template review) are not ours.

_LINK_CODE = re.compile(r"/s/([0-9A-Za-z]{6,12})\b")


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in_s: int


class TokenSource(Protocol):
    """The OA access token of one account (``services.zns_tokens``)."""

    def access_token(self, now: datetime) -> str:
        """A token valid for a while yet (refreshed first when it is about to expire)."""

    def refresh(self, now: datetime, rejected: str) -> str:
        """A new token, Zalo having refused ``rejected`` (another worker may have renewed it already)."""


class ZaloOAuth:
    """The refresh call of Zalo's OAuth v4 for Official Accounts."""

    def __init__(self, app_id: str, app_secret: str, base_url: str = "https://oauth.zaloapp.com",
                 http_timeout_s: float = 10.0, session: requests.Session | None = None) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.url = base_url.rstrip("/") + REFRESH_PATH
        self.timeout = http_timeout_s
        self.session = session or requests.Session()

    def refresh(self, refresh_token: str) -> TokenGrant:
        try:
            response = self.session.post(
                self.url, data={"refresh_token": refresh_token, "app_id": self.app_id, "grant_type": "refresh_token"},
                headers={"secret_key": self.app_secret, "Accept": "application/json"}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"Zalo token refresh failed: {type(exc).__name__}", code="oauth-http",
                                kind="retryable") from exc
        payload = _json(response)
        access, refresh, expires = payload.get("access_token"), payload.get("refresh_token"), payload.get("expires_in")
        if response.status_code >= 400 or not isinstance(access, str) or not isinstance(refresh, str) or not access:
            code = str(payload.get("error", response.status_code))
            # The answer may echo tokens: only its code and a short reason are kept.
            reason = str(payload.get("error_name") or payload.get("message") or "")[:100]
            raise ProviderError(f"Zalo refused the token refresh ({code}: {reason})", code=code,
                                kind="configuration")
        try:
            seconds = int(str(expires))  # Zalo sends it as a string of seconds
        except (TypeError, ValueError):
            seconds = 3600
        return TokenGrant(access, refresh, seconds)

    def close(self) -> None:
        self.session.close()


def zalo_phone(e164: str) -> str:
    """ZNS wants the international number without '+': "+84912345678" → "84912345678"."""
    if not re.fullmatch(r"\+[0-9]{7,15}", e164):
        raise ProviderError(f"'to' must be an E.164 number, got {e164[:4]}…", code="bad-phone", kind="permanent")
    return e164[1:]


def default_template_data(request: MessageRequest) -> dict[str, str]:
    """Until a programme names its ZNS template data: the survey link's code, which the
    approved template puts in its button URL (``<host>/s/<code>``); no link in the text."""
    found = _LINK_CODE.search(request.body)
    return {"code": found.group(1)} if found else {}


class ZnsProvider:
    name = "zns"

    def __init__(self, tokens: TokenSource, *, template_id: str | None = None,
                 base_url: str = "https://business.openapi.zalo.me", http_timeout_s: float = 10.0,
                 clock: Callable[[], datetime], session: requests.Session | None = None,
                 template_data_for: Callable[[MessageRequest], Mapping[str, str]] = default_template_data,
                 permanent_codes: Mapping[int, str] = PERMANENT_CODES, token_codes: Mapping[int, str] = TOKEN_CODES,
                 retryable_codes: Mapping[int, str] = RETRYABLE_CODES,
                 configuration_codes: Mapping[int, str] = CONFIGURATION_CODES) -> None:
        self.tokens = tokens
        self.template_id = template_id
        self.url = base_url.rstrip("/") + SEND_PATH
        self.timeout = http_timeout_s
        self.clock = clock
        self.session = session or requests.Session()
        self.template_data_for = template_data_for
        self.permanent_codes, self.token_codes = permanent_codes, token_codes
        self.retryable_codes, self.configuration_codes = retryable_codes, configuration_codes

    def send_message(self, request: MessageRequest) -> MessageSent:
        template_id = request.template_id or self.template_id
        if not template_id:
            raise ProviderError("no ZNS template: set the account's or the message's template id",
                                code="no-template", kind="configuration")
        data = dict(request.template_data if request.template_data is not None else self.template_data_for(request))
        body = {"phone": zalo_phone(request.to), "template_id": template_id, "template_data": data,
                "tracking_id": request.idempotency_key}
        token = self.tokens.access_token(self.clock())
        payload = self._post(body, token)
        if _code(payload) in self.token_codes:
            log.info("ZNS: the access token was refused (%s); refreshing it once", _code(payload))
            token = self.tokens.refresh(self.clock(), rejected=token)
            payload = self._post(body, token)
        code = _code(payload)
        if code != 0:
            raise self._error(code, payload)
        msg_id = (payload.get("data") or {}).get("msg_id") if isinstance(payload.get("data"), dict) else None
        if not isinstance(msg_id, str) or not msg_id:
            raise ProviderError("Zalo accepted the message without a msg_id", code="no-msg-id", kind="unknown")
        return MessageSent(msg_id)

    def _post(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        try:
            response = self.session.post(self.url, json=body, timeout=self.timeout,
                                         headers={"access_token": token, "Accept": "application/json"})
        except requests.Timeout as exc:
            if isinstance(exc, requests.ConnectTimeout):
                raise ProviderError("ZNS: could not connect", code="connect-timeout", kind="retryable") from exc
            raise ProviderError("ZNS: no answer in time; the message may exist", code="timeout",
                                kind="unknown") from exc
        except requests.RequestException as exc:
            raise ProviderError(f"ZNS: {type(exc).__name__}", code="http", kind="retryable") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderError(f"ZNS: HTTP {response.status_code}", code=str(response.status_code),
                                kind="retryable")
        payload = _json(response)
        if "error" not in payload:
            raise ProviderError(f"ZNS: unexpected answer (HTTP {response.status_code})",
                                code=str(response.status_code), kind="configuration")
        return payload

    def _error(self, code: int, payload: Mapping[str, Any]) -> ProviderError:
        text = str(payload.get("message") or "")[:200]
        for table, kind in ((self.permanent_codes, "permanent"), (self.retryable_codes, "retryable"),
                            (self.configuration_codes, "configuration"), (self.token_codes, "configuration")):
            if code in table:
                return ProviderError(f"ZNS error {code}: {table[code] or text}", code=str(code), kind=kind)
        return ProviderError(f"ZNS error {code}: {text}", code=str(code), kind="configuration")

    def close(self) -> None:
        self.session.close()


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _code(payload: Mapping[str, Any]) -> int:
    try:
        return int(payload.get("error", -1))
    except (TypeError, ValueError):
        return -1


SIGNATURE_HEADER = "X-ZEvent-Signature"


def event_signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    """Zalo's event signature: sha256 hex of app id + raw body + timestamp + OA secret key
    (the header carries it as ``mac=<hex>``)."""
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret.encode()).hexdigest()


def signature_matches(header: str, app_id: str, body: bytes, timestamp: str, oa_secret: str) -> bool:
    # Zalo's documentation shows "mac=<hex>"; a bare hex digest is accepted too.
    given = header.strip().removeprefix("mac=").lower()
    return hmac.compare_digest(given.encode(), event_signature(app_id, body, timestamp, oa_secret).encode())


def zns_from_settings(settings: Settings, tokens: TokenSource, clock: Callable[[], datetime],
                      template_id: str | None = None, base_url: str | None = None, **options: Any) -> ZnsProvider:
    """The installation's ZNS provider, or a messaging account's (its ``base_url``, None:
    ``SIPAS_ZNS_BASE_URL``; ``options``: e.g. a session)."""
    return ZnsProvider(tokens, template_id=template_id, base_url=base_url or settings.zns_base_url, clock=clock,
                       http_timeout_s=settings.twilio_http_timeout, **options)


def oauth_from_settings(settings: Settings, app_id: str | None = None, app_secret: str | None = None) -> ZaloOAuth:
    """The token refresh of the installation's Zalo app, or of an account's own app (its
    ``app_id`` and ``app_secret``; each falls back to the setting)."""
    app_id, app_secret = app_id or settings.zalo_app_id, app_secret or settings.zalo_app_secret
    if not app_id or not app_secret:
        raise ProviderError("ZNS needs SIPAS_ZALO_APP_ID and SIPAS_ZALO_APP_SECRET (or the account's app_id and "
                            "secret_key) to refresh its token", code="no-app", kind="configuration")
    return ZaloOAuth(app_id, app_secret, settings.zalo_oauth_url, settings.twilio_http_timeout)
