"""Simulated citizens behind a Twilio-like provider.

``place_call`` returns a call id at once; the call then plays out on a thread pool and
drives the app's own webhooks with Twilio-style form parameters: status callbacks,
the answer URL, and each ``<Gather>`` action with the digits a simulated citizen
presses. The TwiML the app returns is parsed as XML, so the real webhook code is what
gets exercised. Behaviour is configurable and reproducible (seeded per call).
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import yaml
from twilio.request_validator import RequestValidator

from ..core.questionnaire import Item, Questionnaire
from ..settings import Settings
from .base import CallPlaced, CallRequest, CallState, ProviderError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CitizenProfile:
    """How simulated citizens behave. Rates are probabilities in [0, 1]."""

    answer_rate: float = 0.80           # picks up (the rest: busy, failed or no answer)
    busy_rate: float = 0.08
    failed_rate: float = 0.02
    machine_rate: float = 0.0           # of answered calls, an answering machine
    refusal_rate: float = 0.05          # presses 9 at the opening
    hangup_rate: float = 0.01           # hangs up before any one item
    invalid_rate: float = 0.03          # presses a key that is not on the scale
    silence_rate: float = 0.02          # says nothing until the gather times out
    repeat_rate: float = 0.01           # presses * to hear the item again
    no_opinion_rate: float = 0.03       # presses 0 where allowed
    feedback_rate: float = 0.20         # answers "yes" to the factor-V screening question
    speech_rate: float = 0.30           # speaks the answer where the call accepts speech
    misheard_rate: float = 0.05         # of spoken answers, heard unsurely (low Confidence)
    # Weights of the five levels (1 = rất không hài lòng … 5 = rất hài lòng).
    rating_weights: tuple[float, ...] = (0.03, 0.07, 0.15, 0.45, 0.30)
    think_ms: tuple[int, int] = (0, 0)  # delay before each key press, min/max
    ring_ms: tuple[int, int] = (0, 0)   # delay before the call is answered
    seed: int = 2024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0 <= value <= 1:
                raise ValueError(f"simulator profile: {f.name} must be between 0 and 1, got {value}")
        if self.busy_rate + self.failed_rate > 1 - self.answer_rate + 1e-9:
            raise ValueError("simulator profile: answer_rate + busy_rate + failed_rate exceeds 1")
        if len(self.rating_weights) != 5 or any(w < 0 for w in self.rating_weights) or not sum(self.rating_weights):
            raise ValueError("simulator profile: rating_weights needs five non-negative weights")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CitizenProfile:
        # The "sms" section is the message recipients' profile (providers.sms_simulator).
        data = {k: v for k, v in data.items() if k != "sms"}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"simulator profile: unknown setting(s) {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> CitizenProfile:
        return cls.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


class Transport(Protocol):
    def post(self, url: str, params: Mapping[str, str],
             headers: Mapping[str, str] | None = None) -> tuple[int, str]: ...


class HttpTransport:
    """Real HTTP to the app, as a telephony provider would send it (keep-alive per thread)."""

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s
        self._local = threading.local()

    def post(self, url: str, params: Mapping[str, str],
             headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        connections = self._local.__dict__.setdefault("connections", {})
        conn = connections.get(key)
        if conn is None:
            factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = connections[key] = factory(parts.netloc, timeout=self.timeout_s)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = urlencode(dict(params))
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.HTTPException, OSError):
            conn.close()  # the server closed a kept-alive connection: retry once on a new one
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")


class WsgiTransport:
    """Deliver webhooks straight into a WSGI app (through its full request stack)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def post(self, url: str, params: Mapping[str, str],
             headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.app.test_client().post(path, data=dict(params), headers=dict(headers or {}),
                                               base_url=f"{parts.scheme}://{parts.netloc}")
        return response.status_code, response.get_data(as_text=True)


@dataclass
class SimulatedCall:
    sid: str
    request: CallRequest
    outcome: str = "pending"            # busy | no-answer | failed | completed
    keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class SimulatorProvider:
    name = "simulator"

    def __init__(self, profile: CitizenProfile, transport: Transport,
                 questionnaire_for: Callable[[str], Questionnaire | None],
                 max_workers: int = 16, auth_token: str | None = None, call_log: str | None = None) -> None:
        self.profile = profile
        self.call_log = call_log
        # Sign every webhook as Twilio does, so the app's signature check is exercised.
        self._signer = RequestValidator(auth_token) if auth_token else None
        self.transport = transport
        self.questionnaire_for = questionnaire_for
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="citizen")
        self._futures: set[Future[SimulatedCall]] = set()
        self._lock = threading.Lock()
        self.calls: dict[str, SimulatedCall] = {}
        self.placed_keys: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, transport: Transport | None = None,
                      profile: CitizenProfile | None = None,
                      questionnaire_for: Callable[[str], Questionnaire | None] | None = None,
                      max_workers: int = 6) -> SimulatorProvider:
        if profile is None:
            profile = (CitizenProfile.from_file(settings.simulator_config)
                       if settings.simulator_config else CitizenProfile())
        return cls(profile, transport or HttpTransport(), questionnaire_for or (lambda _key: None),
                   max_workers=max_workers, auth_token=settings.webhook_auth_token,
                   call_log=settings.simulator_call_log)

    def place_call(self, request: CallRequest) -> CallPlaced:
        """Create the call as Twilio does: it exists once its "initiated" status callback
        has been delivered (Twilio sends that callback whatever happens to the caller's
        process afterwards); then it plays out on the pool."""
        with self._lock:
            if request.idempotency_key in self.placed_keys:
                raise ProviderError(f"call {request.idempotency_key} already placed",
                                    code="duplicate", kind="unknown")
            self.placed_keys.add(request.idempotency_key)
        sid = "CA" + uuid.uuid4().hex
        call = SimulatedCall(sid, request)
        try:
            self._status(call, "initiated")
        except OSError as exc:
            with self._lock:
                self.placed_keys.discard(request.idempotency_key)
            raise ProviderError(f"simulator could not reach the webhooks: {exc}", code="network-error") from exc
        if self.call_log:
            with open(self.call_log, "a", encoding="ascii") as log_file:  # one short line: atomic append
                log_file.write(f"{request.idempotency_key} {sid} {time.time():.6f}\n")
        with self._lock:
            self.calls[sid] = call
            future = self._pool.submit(self._run, call)
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return CallPlaced(sid)

    def _forget(self, future: Future[SimulatedCall]) -> None:
        with self._lock:
            self._futures.discard(future)

    def wait_idle(self, timeout: float | None = 60) -> None:
        """Block until every simulated call placed so far has played out."""
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for future in pending:
                future.result(timeout=timeout)

    def fetch_call(self, provider_id: str) -> CallState | None:
        call = self.calls.get(provider_id)
        if call is None:
            return None
        return CallState(provider_id, "in-progress" if call.outcome == "pending" else call.outcome)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- the citizen --------------------------------------------------------------

    def _rng(self, call: SimulatedCall) -> random.Random:
        return random.Random(f"{self.profile.seed}:{call.request.to}:{call.request.idempotency_key}")

    def _pause(self, rng: random.Random, bounds: tuple[int, int]) -> None:
        low, high = bounds
        if high > 0:
            time.sleep(rng.uniform(low, high) / 1000)

    def _post(self, call: SimulatedCall, url: str, **params: str) -> str | None:
        base = {"CallSid": call.sid, "AccountSid": "ACsimulator", "From": call.request.from_ or "+842800000000",
                "To": call.request.to, "Direction": "outbound-api", "ApiVersion": "2010-04-01"}
        form = {**base, **params}
        headers = {"X-Twilio-Signature": self._signer.compute_signature(url, form)} if self._signer else {}
        status, body = self.transport.post(url, form, headers)
        if status >= 400:
            call.errors.append(f"{status} from {url}: {body[:200]}")
            log.warning("simulated call %s: webhook %s answered %s", call.sid, url, status)
            return None
        return body

    def _status(self, call: SimulatedCall, status: str, duration: int | None = None, **extra: str) -> None:
        params = {"CallStatus": status, **extra}
        if duration is not None:
            params["CallDuration"] = str(duration)
        self._post(call, call.request.status_url, **params)

    def _run(self, call: SimulatedCall) -> SimulatedCall:
        try:
            self._play(call)
        except Exception as exc:  # a simulated call must never kill the pool
            call.errors.append(repr(exc))
            log.exception("simulated call %s crashed", call.sid)
            self._hang_up(call)
        return call

    def _hang_up(self, call: SimulatedCall) -> None:
        """A webhook that cannot be reached (timeout, reset) ends the call, as Twilio ends a
        call whose application fails: the call is over and says so when asked, and its
        status callback is tried once. Left "pending", it would look in progress forever
        and its contact would never be settled."""
        if call.outcome == "pending":
            call.outcome = "completed"
        try:
            self._status(call, call.outcome, 1)
        except Exception as exc:  # the app stays unreachable: reconciliation asks fetch_call
            call.errors.append(repr(exc))
            log.warning("simulated call %s: final status not delivered (%r)", call.sid, exc)

    def _play(self, call: SimulatedCall) -> None:
        rng = self._rng(call)
        p = self.profile
        self._status(call, "ringing")
        roll = rng.random()
        if roll >= p.answer_rate:
            roll -= p.answer_rate
            outcome = "busy" if roll < p.busy_rate else "failed" if roll < p.busy_rate + p.failed_rate else "no-answer"
            call.outcome = outcome
            extra = {"ErrorCode": "31005"} if outcome == "failed" else {}
            self._status(call, outcome, 0, **extra)
            return
        self._pause(rng, p.ring_ms)
        started = time.monotonic()
        if rng.random() < p.machine_rate:
            call.outcome = "completed"
            self._post(call, call.request.answer_url, CallStatus="in-progress", AnsweredBy="machine_start")
            self._status(call, "completed", 20, AnsweredBy="machine_start")
            return
        twiml = self._post(call, call.request.answer_url, CallStatus="in-progress")
        steps = 0
        while twiml is not None and steps < 200:
            steps += 1
            gather = _find_gather(twiml)
            if gather is None:
                break
            action, item_id, speech_language = gather
            if rng.random() < p.hangup_rate:
                break
            self._pause(rng, p.think_ms)
            digits = self._press(rng, item_id, call)
            spoken = self._say(rng, digits, item_id, speech_language, call) if speech_language else None
            if spoken is not None:
                call.keys.append(f"speech:{spoken[0]}")
                twiml = self._post(call, action, CallStatus="in-progress", SpeechResult=spoken[0],
                                   Confidence=spoken[1])
            else:
                call.keys.append(digits)
                twiml = self._post(call, action, CallStatus="in-progress", Digits=digits)
        call.outcome = "completed"
        self._status(call, "completed", max(1, int(time.monotonic() - started)))

    def _press(self, rng: random.Random, item_id: str | None, call: SimulatedCall) -> str:
        p = self.profile
        item = self._item(item_id, call)
        roll = rng.random()
        if roll < p.silence_rate:
            return ""
        roll -= p.silence_rate
        if roll < p.invalid_rate:
            return rng.choice("678#")
        roll -= p.invalid_rate
        if roll < p.repeat_rate:
            return "*"
        if item is None:
            return "1"
        if item.kind == "consent":
            return _key_for(item, 0) if rng.random() < p.refusal_rate else _key_for(item, 1)
        if item.kind == "screening":
            return _key_for(item, 1) if rng.random() < p.feedback_rate else _key_for(item, 0)
        if item.scale.no_opinion_key and rng.random() < p.no_opinion_rate:
            return item.scale.no_opinion_key
        values = item.scale.values
        if sorted(values) == [1, 2, 3, 4, 5]:
            return _key_for(item, rng.choices([1, 2, 3, 4, 5], weights=p.rating_weights)[0])
        share_satisfied = sum(p.rating_weights[3:]) / sum(p.rating_weights)
        satisfied = [v for v in values if v in item.scale.satisfied] or list(values)
        others = [v for v in values if v not in item.scale.satisfied] or list(values)
        pool = satisfied if rng.random() < share_satisfied else others
        return _key_for(item, rng.choice(pool))

    def _say(self, rng: random.Random, digits: str, item_id: str | None, language: str,
             call: SimulatedCall) -> tuple[str, str] | None:
        """Some citizens say their answer instead of pressing it: a phrase of the scale's
        speech table for that key (as Twilio would transcribe it) and a Confidence."""
        item = self._item(item_id, call)
        if item is None or not digits or rng.random() >= self.profile.speech_rate:
            return None
        phrases = [phrase for phrase, key in item.scale.speech.get(language, ()) if key == digits]
        if not phrases:
            return None
        misheard = rng.random() < self.profile.misheard_rate
        confidence = rng.uniform(0.05, 0.3) if misheard else rng.uniform(0.6, 0.98)
        return rng.choice(phrases), f"{confidence:.2f}"

    def _item(self, item_id: str | None, call: SimulatedCall) -> Item | None:
        # A real citizen understands the spoken prompt; the simulated one reads the
        # item id from the action URL and looks it up.
        key = parse_qs(urlsplit(call.request.answer_url).query).get("q", [None])[0]
        q = self.questionnaire_for(key) if key else None
        if q is None or item_id is None or not q.has_item(item_id):
            return None
        return q.item(item_id)


def _key_for(item: Item, value: int) -> str:
    for option in item.scale.options:
        if option.value == value:
            return option.key
    return item.scale.options[0].key


def _find_gather(twiml: str) -> tuple[str, str | None, str | None] | None:
    """The action URL and item id of the first <Gather> in a TwiML document, and the
    language of the speech it accepts ("vi", "en"; None: keys only)."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    gather = root.find("Gather")
    if gather is None or not gather.get("action"):
        return None
    action = gather.get("action", "")
    item = parse_qs(urlsplit(action).query).get("item", [None])[0]
    if "speech" not in gather.get("input", "").split():
        return action, item, None
    return action, item, "en" if gather.get("language", "").startswith("en") else "vi"
