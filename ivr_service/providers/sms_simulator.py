"""Simulated citizens who get SMS invitations, behind a Twilio-like messaging provider.

``send_message`` returns a message sid at once; the message then plays out on a thread
pool and drives the app over HTTP as the real world would:

* **status callbacks**, signed with the webhook token exactly like the voice simulator's:
  ``queued``, ``sent``, then ``delivered`` — or ``undelivered`` (30003, unreachable) or
  ``failed`` (30006, landline or unreachable carrier);
* **the citizen**, once delivered: opens the link and answers everything, answers part
  then stops, ignores it, or refuses (opens the stop page and confirms it).

The form is read through its protocol (see the issue-12 brief): ``GET /s/<code>`` gives a
``<form method="post">`` with a hidden ``item`` input and radio ``answer`` inputs whose
values are the option keys; ``POST`` ``item``/``answer`` answers ``303`` to the next item.
Behaviour is reproducible: seeded by the profile's seed, the number and how many messages
that number got before (tokens are random, so they cannot seed it).
"""

from __future__ import annotations

import http.client
import logging
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

import yaml
from twilio.request_validator import RequestValidator

from ..core.questionnaire import Item
from ..settings import Settings
from .messaging import MessageRequest, MessageSent, MessageState
from .simulator import HttpTransport, Transport

log = logging.getLogger(__name__)

LINK = re.compile(r"(https?://[^\s]+/s/[0-9A-Za-z]{8,10})(?![0-9A-Za-z/])")
MAX_PAGES = 200


@dataclass(frozen=True)
class MessageProfile:
    """How simulated citizens treat an SMS invitation. Rates are probabilities in [0, 1].

    ``delivery_failure_rate`` of messages never arrive (``undelivered_share`` of those as
    undelivered 30003, the rest failed 30006). Of delivered invitations: ``complete_rate``
    answer every item, ``partial_rate`` answer ``partial_items`` items then stop,
    ``refusal_rate`` refuse on the stop page; the rest ignore the message."""

    delivery_failure_rate: float = 0.03
    undelivered_share: float = 0.7
    complete_rate: float = 0.45
    partial_rate: float = 0.10
    refusal_rate: float = 0.03
    partial_items: tuple[int, int] = (1, 5)
    no_opinion_rate: float = 0.03
    feedback_rate: float = 0.20
    rating_weights: tuple[float, ...] = (0.03, 0.07, 0.15, 0.45, 0.30)
    seed: int = 2024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (f.name.endswith("_rate") or f.name.endswith("_share")) and not 0 <= value <= 1:
                raise ValueError(f"sms simulator profile: {f.name} must be between 0 and 1, got {value}")
        if self.complete_rate + self.partial_rate + self.refusal_rate > 1 + 1e-9:
            raise ValueError("sms simulator profile: complete_rate + partial_rate + refusal_rate exceeds 1")
        low, high = self.partial_items
        if not 1 <= low <= high:
            raise ValueError("sms simulator profile: partial_items must be [low, high] with 1 <= low <= high")
        if len(self.rating_weights) != 5 or any(w < 0 for w in self.rating_weights) or not sum(self.rating_weights):
            raise ValueError("sms simulator profile: rating_weights needs five non-negative weights")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MessageProfile:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"sms simulator profile: unknown setting(s) {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> MessageProfile:
        """The ``sms:`` section of the simulator file (the rest is the callers' profile)."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.from_mapping(data.get("sms") or {})


class Browser(Protocol):
    """A phone's browser: GET and POST a form, following redirects; (status, html)."""

    def get(self, url: str) -> tuple[int, str]: ...

    def post(self, url: str, form: Mapping[str, str]) -> tuple[int, str]: ...


class HttpBrowser:
    """Real HTTP (keep-alive per thread), following 301/302/303 with a GET."""

    user_agent = "Mozilla/5.0 (Linux; Android 10) SIPAS-simulated-citizen"

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _send(self, method: str, url: str, body: str | None) -> tuple[int, str]:
        for _ in range(10):
            parts = urlsplit(url)
            connections = self._local.__dict__.setdefault("connections", {})
            key = (parts.scheme, parts.netloc)
            conn = connections.get(key)
            if conn is None:
                factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = connections[key] = factory(parts.netloc, timeout=self.timeout_s)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = {"User-Agent": self.user_agent}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            location = response.getheader("Location")
            if response.status in (301, 302, 303) and location:
                method, body, url = "GET", None, urljoin(url, location)
                continue
            return response.status, text
        raise OSError("too many redirects")

    def get(self, url: str) -> tuple[int, str]:
        return self._send("GET", url, None)

    def post(self, url: str, form: Mapping[str, str]) -> tuple[int, str]:
        return self._send("POST", url, urlencode(dict(form)))


class WsgiBrowser:
    """Straight into a WSGI app through its full request stack (tests)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _client(self, url: str) -> tuple[Any, str, str]:
        parts = urlsplit(url)
        return self.app.test_client(), parts.path + (f"?{parts.query}" if parts.query else ""), \
            f"{parts.scheme}://{parts.netloc}"

    def get(self, url: str) -> tuple[int, str]:
        client, path, base = self._client(url)
        response = client.get(path, base_url=base, follow_redirects=True,
                              headers={"User-Agent": HttpBrowser.user_agent})
        return response.status_code, response.get_data(as_text=True)

    def post(self, url: str, form: Mapping[str, str]) -> tuple[int, str]:
        client, path, base = self._client(url)
        response = client.post(path, data=dict(form), base_url=base, follow_redirects=True,
                               headers={"User-Agent": HttpBrowser.user_agent})
        return response.status_code, response.get_data(as_text=True)


@dataclass
class Form:
    action: str | None = None
    hidden: dict[str, str] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)      # radio values of name="answer"
    submits: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    """The first POST form of a page: its action, hidden inputs, answer radios, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.form: Form | None = None
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and a.get("method", "get").lower() == "post":
            self.form, self._inside = Form(action=a.get("action")), True
        elif self._inside and self.form is not None and tag in ("input", "button"):
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            name = a.get("name", "")
            if kind == "hidden" and name:
                self.form.hidden[name] = a.get("value", "")
            elif kind == "radio" and name == "answer":
                self.form.answers.append(a.get("value", ""))
            elif kind == "submit" and name:
                self.form.submits.append((name, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


def read_form(html: str) -> Form | None:
    parser = _FormParser()
    parser.feed(html)
    return parser.form


@dataclass
class SimulatedMessage:
    sid: str
    request: MessageRequest
    nth: int = 0                     # messages this number got from the simulator before
    delivery: str = "pending"        # delivered | undelivered | failed
    behaviour: str = "pending"       # complete | partial | refused | ignored | none
    answered: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class SmsSimulatorProvider:
    name = "simulator"

    def __init__(self, profile: MessageProfile, transport: Transport, browser: Browser,
                 item_for: Callable[[str], Item | None] | None = None, max_workers: int = 8,
                 auth_token: str | None = None) -> None:
        self.profile = profile
        self.transport = transport
        self.browser = browser
        self.item_for = item_for or (lambda _id: None)
        self._signer = RequestValidator(auth_token) if auth_token else None
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sms-citizen")
        self._futures: set[Future[SimulatedMessage]] = set()
        self._lock = threading.Lock()
        self.messages: dict[str, SimulatedMessage] = {}
        self.sent_keys: dict[str, str] = {}        # idempotency key -> sid
        self.requests: list[MessageRequest] = []   # every request, repeats included
        self._sent_to: Counter[str] = Counter()     # number -> messages sent to it

    @classmethod
    def from_settings(cls, settings: Settings, transport: Transport | None = None, browser: Browser | None = None,
                      profile: MessageProfile | None = None, item_for: Callable[[str], Item | None] | None = None,
                      max_workers: int = 6, **_options: Any) -> SmsSimulatorProvider:
        if profile is None:
            profile = (MessageProfile.from_file(settings.simulator_config)
                       if settings.simulator_config else MessageProfile())
        return cls(profile, transport or HttpTransport(), browser or HttpBrowser(), item_for,
                   max_workers=max_workers, auth_token=settings.webhook_auth_token)

    def send_message(self, request: MessageRequest) -> MessageSent:
        """Accept a message once per idempotency key: a repeated key returns the same sid
        and sends nothing (as Twilio does with I-Twilio-Idempotency-Token)."""
        with self._lock:
            self.requests.append(request)
            if request.idempotency_key in self.sent_keys:
                return MessageSent(self.sent_keys[request.idempotency_key])
            sid = "SM" + uuid.uuid4().hex
            self.sent_keys[request.idempotency_key] = sid
            message = SimulatedMessage(sid, request, nth=self._sent_to[request.to])
            self._sent_to[request.to] += 1
            self.messages[sid] = message
            future = self._pool.submit(self._run, message)
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return MessageSent(sid)

    def fetch_message(self, provider_id: str) -> MessageState | None:
        """What the simulated network knows of a message: delivered, undelivered or failed
        once decided, else sent; None for an id it never issued."""
        with self._lock:
            message = self.messages.get(provider_id)
        if message is None:
            return None
        if message.delivery == "pending":
            return MessageState(provider_id, "sent")
        code = {"undelivered": "30003", "failed": "30006"}.get(message.delivery)
        return MessageState(provider_id, message.delivery, code)

    def _forget(self, future: Future[SimulatedMessage]) -> None:
        with self._lock:
            self._futures.discard(future)

    def busy(self) -> bool:
        """Some simulated citizen is still reading or answering a message."""
        with self._lock:
            return bool(self._futures)

    def wait_idle(self, timeout: float | None = 60) -> None:
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for future in pending:
                future.result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- the world --------------------------------------------------------------

    def _rng(self, message: SimulatedMessage) -> random.Random:
        return random.Random(f"{self.profile.seed}:{message.request.to}:{message.nth}")

    def _status(self, message: SimulatedMessage, status: str, **extra: str) -> None:
        url = message.request.status_url
        form = {"MessageSid": message.sid, "SmsSid": message.sid, "AccountSid": "ACsimulator",
                "From": message.request.sender or "SIPAS", "To": message.request.to, "MessageStatus": status,
                "SmsStatus": status, "ApiVersion": "2010-04-01", **extra}
        headers = {"X-Twilio-Signature": self._signer.compute_signature(url, form)} if self._signer else {}
        code, body = self.transport.post(url, form, headers)
        if code >= 400:
            message.errors.append(f"status {status}: HTTP {code} {body[:200]}")

    def _run(self, message: SimulatedMessage) -> SimulatedMessage:
        try:
            self._play(message)
        except Exception as exc:  # a simulated citizen must never kill the pool
            message.errors.append(repr(exc))
            log.exception("simulated message %s crashed", message.sid)
        return message

    def _play(self, message: SimulatedMessage) -> None:
        rng = self._rng(message)
        p = self.profile
        self._status(message, "queued")
        self._status(message, "sent")
        if rng.random() < p.delivery_failure_rate:
            if rng.random() < p.undelivered_share:
                message.delivery = "undelivered"
                self._status(message, "undelivered", ErrorCode="30003")
            else:
                message.delivery = "failed"
                self._status(message, "failed", ErrorCode="30006")
            message.behaviour = "none"
            return
        message.delivery = "delivered"
        self._status(message, "delivered")
        found = LINK.search(message.request.body)
        if found is None:
            message.behaviour = "none"
            return
        link = found.group(1)
        roll = rng.random()
        if roll < p.complete_rate:
            message.behaviour = "complete"
            self._answer(message, rng, link, None)
        elif roll < p.complete_rate + p.partial_rate:
            message.behaviour = "partial"
            self._answer(message, rng, link, rng.randint(*p.partial_items))
        elif roll < p.complete_rate + p.partial_rate + p.refusal_rate:
            message.behaviour = "refused"
            self._refuse(message, link + "/stop")
        else:
            message.behaviour = "ignored"

    def _answer(self, message: SimulatedMessage, rng: random.Random, link: str, limit: int | None) -> None:
        status, html = self.browser.get(link)
        for _ in range(MAX_PAGES):
            if status != 200:
                message.errors.append(f"form: HTTP {status}")
                return
            form = read_form(html)
            if form is None or "item" not in form.hidden or not form.answers:
                return  # thanks, already answered, or expired
            if limit is not None and len(message.answered) >= limit:
                return
            item_id = form.hidden["item"]
            answer = self._choose(rng, item_id, form.answers)
            message.answered.append((item_id, answer))
            data = {**form.hidden, "answer": answer}
            status, html = self.browser.post(urljoin(link, form.action or link), data)

    def _refuse(self, message: SimulatedMessage, stop_url: str) -> None:
        status, html = self.browser.get(stop_url)
        form = read_form(html) if status == 200 else None
        if form is None:
            message.errors.append(f"stop page: HTTP {status}, no form")
            return
        data = dict(form.hidden)
        if form.submits:
            data.setdefault(*form.submits[0])
        status, _html = self.browser.post(urljoin(stop_url, form.action or stop_url), data)
        if status >= 400:
            message.errors.append(f"stop: HTTP {status}")

    def _choose(self, rng: random.Random, item_id: str, values: list[str]) -> str:
        """The option a citizen picks among the radio ``values`` of ``item_id``."""
        p = self.profile
        item = self.item_for(item_id)
        if item is None:
            return rng.choice(values)
        by_value = {o.value: o.key for o in item.scale.options if o.key in values}
        if item.kind == "consent":
            return by_value.get(1, values[0])
        if item.kind == "screening":
            return by_value.get(1 if rng.random() < p.feedback_rate else 0, values[0])
        if item.scale.no_opinion_key in values and rng.random() < p.no_opinion_rate:
            return item.scale.no_opinion_key
        if sorted(by_value) == [1, 2, 3, 4, 5]:
            return by_value[rng.choices([1, 2, 3, 4, 5], weights=p.rating_weights)[0]]
        candidates = [k for k in values if k != item.scale.no_opinion_key] or values
        return rng.choice(candidates)


def items_of(registry: Any) -> Callable[[str], Item | None]:
    """Look an item id up in every questionnaire of ``registry`` (the simulated citizen
    understands the question; it reads only the item id from the form)."""
    def find(item_id: str) -> Item | None:
        for key in registry.keys():
            q = registry.get(key)
            if q.has_item(item_id):
                return q.item(item_id)
        return None
    return find
