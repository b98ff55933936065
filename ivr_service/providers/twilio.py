"""Twilio (or a Twilio-compatible API) through the official ``twilio`` library.

Outbound calls ask Twilio to fetch the questionnaire from our answer webhook and to post
every status change (initiated, ringing, answered, completed) to our status webhook. The
REST base URL is a setting, so SignalWire, Telnyx TeXML or a local test server can stand
in for Twilio without code changes.

Errors are classified for the dispatcher (see :class:`ProviderError`):

* ``retryable``: rate limits (HTTP 429 / 20429), Twilio's 5xx, network failures before
  the request was sent, and codes we do not know;
* ``permanent``: the number itself cannot be called (invalid, unreachable, blocked, opted
  out): the contact ends at once;
* ``configuration``: our account or settings are wrong (authentication, caller id, geo
  permissions): retried later, never held against the citizen, logged as an error;
* ``unknown``: the request may have reached Twilio (read timeout): the call may exist, so
  the attempt is left for reconciliation instead of being placed again.
"""

from __future__ import annotations

import itertools
import logging
import threading

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..settings import Settings
from .base import CallPlaced, CallRequest, CallState, ProviderError

log = logging.getLogger(__name__)
# The library logs every request's URL and headers at INFO; keep that out of our logs.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")

# The number cannot be called: end the contact (REFERENCE §6; Twilio error dictionary).
PERMANENT_CODES = {
    13223: "invalid phone number format",
    13224: "invalid phone number",
    13225: "forbidden phone number",
    13227: "no international authorization for this destination",
    21211: "invalid 'To' phone number",
    21214: "'To' phone number cannot be reached",
    21216: "destination blocked",
    21217: "phone number does not appear to be valid",
    21401: "invalid phone number",
    21407: "this phone number type does not support voice",
    21610: "the recipient opted out (STOP)",
    21612: "'To' number is not reachable on this route",
    21614: "'To' number is not a mobile number",
}
# Our account or settings are at fault: never the citizen's.
CONFIGURATION_CODES = {
    20003: "authentication failed: check SIPAS_TWILIO_ACCOUNT_SID and SIPAS_TWILIO_AUTH_TOKEN",
    20008: "test credentials cannot place real calls",
    20404: "resource not found: check SIPAS_TWILIO_API_BASE_URL and the account SID",
    21205: "the webhook URL is invalid: check SIPAS_PUBLIC_BASE_URL",
    21210: "caller id is not a verified or owned number: check SIPAS_TWILIO_CALLER_IDS",
    21212: "invalid caller id: check SIPAS_TWILIO_CALLER_IDS",
    21215: "geo permissions do not allow calls to this country (enable Vietnam in the console)",
    21219: "trial accounts can only call verified numbers",
}


def classify(exc: Exception, permanent: dict[int, str] | None = None,
             configuration: dict[int, str] | None = None) -> ProviderError:
    """Turn a library or network exception into a classified :class:`ProviderError`
    (``permanent`` / ``configuration``: the code tables; the voice ones by default)."""
    permanent_codes = PERMANENT_CODES if permanent is None else permanent
    configuration_codes = CONFIGURATION_CODES if configuration is None else configuration
    if isinstance(exc, TwilioRestException):
        code = exc.code
        label = str(code) if code is not None else f"http-{exc.status}"
        detail = f"Twilio {exc.status} {label}: {exc.msg}"
        if exc.status == 429 or code == 20429:
            return ProviderError(detail, code=label, kind="retryable")
        if exc.status >= 500:
            return ProviderError(detail, code=label, kind="retryable")
        if code in permanent_codes:
            return ProviderError(f"{detail} ({permanent_codes[code]})", code=label, kind="permanent")
        if code in configuration_codes or exc.status in (401, 403):
            hint = configuration_codes.get(code or 0, "check the Twilio settings")
            return ProviderError(f"{detail} ({hint})", code=label, kind="configuration")
        return ProviderError(detail, code=label, kind="retryable")
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return ProviderError(f"could not reach the provider: {exc.__class__.__name__}",
                             code="connect-error", kind="retryable")
    if isinstance(exc, requests.ReadTimeout):
        return ProviderError("the provider did not answer in time; the call may have been placed",
                             code="timeout", kind="unknown")
    if isinstance(exc, requests.ConnectionError):
        # Refused or reset before a response: with a reset the request may have arrived.
        refused = "refused" in str(exc).lower() or "failed to establish" in str(exc).lower()
        return ProviderError(f"network error talking to the provider: {exc.__class__.__name__}",
                             code="network-error", kind="retryable" if refused else "unknown")
    raise exc


class TwilioProvider:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, caller_ids: tuple[str, ...],
                 api_base_url: str = "https://api.twilio.com", ring_timeout_s: int = 30,
                 machine_detection: str = "off", http_timeout_s: float = 10.0) -> None:
        if not caller_ids:
            raise ValueError("TwilioProvider needs at least one caller id")
        # ``environment`` must not be empty, or the library reads TWILIO_* from os.environ
        # (an edge or region there would silently change the API host).
        self.client = Client(account_sid, auth_token, account_sid=account_sid,
                             environment={"SIPAS": "1"},
                             http_client=TwilioHttpClient(timeout=http_timeout_s))
        self.client.api.base_url = api_base_url.rstrip("/")
        self.ring_timeout_s = ring_timeout_s
        self.machine_detection = machine_detection
        self._caller_ids = itertools.cycle(caller_ids)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **_options: object) -> TwilioProvider:
        assert settings.twilio_account_sid and settings.twilio_auth_token  # checked by Settings.validate
        return cls(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_caller_ids,
                   api_base_url=settings.twilio_api_base_url, ring_timeout_s=settings.twilio_ring_timeout,
                   machine_detection=settings.twilio_machine_detection,
                   http_timeout_s=settings.twilio_http_timeout)

    def _caller_id(self) -> str:
        with self._lock:
            return next(self._caller_ids)

    def place_call(self, request: CallRequest) -> CallPlaced:
        options: dict[str, object] = {
            "to": request.to,
            "from_": request.from_ or self._caller_id(),
            "url": request.answer_url,
            "method": "POST",
            "status_callback": request.status_url,
            "status_callback_method": "POST",
            "status_callback_event": list(STATUS_EVENTS),
            "timeout": request.ring_timeout_s or self.ring_timeout_s,
        }
        if self.machine_detection != "off":
            options["machine_detection"] = self.machine_detection
        try:
            call = self.client.calls.create(**options)
        except (TwilioRestException, requests.RequestException) as exc:
            raise classify(exc) from exc
        return CallPlaced(call.sid)

    def fetch_call(self, provider_id: str) -> CallState | None:
        """The call's current state, or None when the provider does not know it."""
        try:
            call = self.client.calls(provider_id).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise classify(exc) from exc
        except requests.RequestException as exc:
            raise classify(exc) from exc
        duration = int(call.duration) if call.duration not in (None, "") else None
        return CallState(call.sid, call.status, duration)

    def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()
