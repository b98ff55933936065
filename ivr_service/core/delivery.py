"""One delivery state machine for every messaging provider (pure: no I/O, no clock).

States, in the only order a message moves through them::

    accepted → sent → delivered | undelivered | failed | expired

* **accepted**: the provider took the message (Twilio ``queued``/``sending``, eSMS
  ``CodeResult`` 100, ZNS ``error`` 0). Nothing more is known.
* **sent**: handed to the carrier (or to Zalo's servers).
* **delivered**: the handset got it *as far as the provider knows*; whether that report
  can be believed is the provider's :data:`TRUSTED_DELIVERY` flag (Twilio's Vietnamese
  reports only say the carrier accepted the message).
* **undelivered / failed / expired**: final failures; each carries a :data:`Reason` and
  whether trying again later may succeed (``retryable``) or never will (permanent:
  opted out, not a mobile, no Zalo account, content refused …).

A state only moves forward (:func:`advance`): a late ``sent`` never undoes ``delivered``,
and nothing leaves a final state. Each provider's statuses and error codes are mapped by
one table per kind below; an unknown code keeps its raw value and counts as ``"other"``
(retryable: we do not give up on a number for a code we cannot read). The raw status and
code always travel with the result, to be stored on the message.

Sources (re-check against the providers' current documentation): Twilio's MessageStatus
values and error dictionary; eSMS's API (``CodeResult`` of the send call, ``SendStatus``
of the delivery callback); Zalo ZNS's error table and webhook events (REFERENCE §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class State(StrEnum):
    ACCEPTED = "accepted"          # the provider took it
    SENT = "sent"                  # handed to the carrier / Zalo
    DELIVERED = "delivered"        # the handset got it (as far as the provider knows)
    UNDELIVERED = "undelivered"    # the carrier could not deliver it
    FAILED = "failed"              # never left the provider
    EXPIRED = "expired"            # its validity period ran out undelivered


FINAL = frozenset({State.DELIVERED, State.UNDELIVERED, State.FAILED, State.EXPIRED})
FAILURES = frozenset({State.UNDELIVERED, State.FAILED, State.EXPIRED})
_RANK = {State.ACCEPTED: 1, State.SENT: 2}

Reason = Literal["opted_out", "not_mobile", "no_zalo", "unreachable", "filtered", "expired", "blocked",
                 "content", "other"]
REASONS: tuple[Reason, ...] = ("opted_out", "not_mobile", "no_zalo", "unreachable", "filtered", "expired",
                               "blocked", "content", "other")

KINDS = ("twilio", "esms", "zns", "simulator")
# Whether a provider kind's "delivered" means the handset got it. An account may say otherwise.
TRUSTED_DELIVERY = {"twilio": False, "esms": True, "zns": True, "simulator": True}


class UnknownStatus(ValueError):
    """A status value the provider's table does not hold (the caller names the field)."""


@dataclass(frozen=True)
class Failure:
    reason: Reason
    retryable: bool


@dataclass(frozen=True)
class Delivery:
    """One provider report, read: our state, why it failed (final failures only), whether
    a later attempt may succeed, and the provider's own status and code as received."""

    state: State
    retryable: bool = False
    reason: Reason | None = None
    raw_status: str | None = None
    raw_code: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def failed(self) -> bool:
        return self.state in FAILURES


def advance(current: State | None, new: State) -> State:
    """The state after ``new`` is reported in ``current``: forward only, never out of a
    final state (accepted < sent < any final state)."""
    if current is None:
        return new
    if current in FINAL:
        return current
    if new in FINAL or _RANK[new] > _RANK[current]:
        return new
    return current


def trusted(kind: str, override: bool | None = None) -> bool:
    """Whether ``kind``'s delivered reports are believed (an account's own flag wins)."""
    if override is not None:
        return override
    return TRUSTED_DELIVERY.get(kind, False)


_OTHER = Failure("other", True)


def _failed(state: State, failure: Failure, raw_status: str | None, raw_code: str | None) -> Delivery:
    return Delivery(state, failure.retryable, failure.reason, raw_status, raw_code)


# ============================================================================ Twilio

TWILIO_STATUSES = {
    "accepted": State.ACCEPTED, "scheduled": State.ACCEPTED, "queued": State.ACCEPTED,
    "sending": State.ACCEPTED, "sent": State.SENT, "delivered": State.DELIVERED,
    "read": State.DELIVERED,       # WhatsApp's; implies delivery
    "undelivered": State.UNDELIVERED, "failed": State.FAILED, "canceled": State.FAILED,
}
TWILIO_ERRORS: dict[str, Failure] = {
    "21610": Failure("opted_out", False),      # the recipient replied STOP
    "30003": Failure("unreachable", True),     # handset off or out of coverage
    "30005": Failure("not_mobile", False),     # unknown destination handset
    "30006": Failure("not_mobile", False),     # landline or unreachable carrier
    "21614": Failure("not_mobile", False),     # 'To' is not a valid mobile number
    "21211": Failure("not_mobile", False),     # invalid 'To' number
    "21407": Failure("not_mobile", False),     # this number type does not support SMS
    "21612": Failure("not_mobile", False),     # cannot route to this number
    "30007": Failure("filtered", True),        # carrier filtering (may pass later, with other content)
    "30004": Failure("blocked", False),        # message blocked (by the recipient or carrier)
    "21408": Failure("blocked", False),        # no permission to send to this region
    "30036": Failure("expired", True),         # validity period expired
    "30008": Failure("other", True),           # unknown error
    "30001": Failure("other", True),           # queue overflow
    "63018": Failure("other", True),           # rate limit exceeded (throttled)
}


def twilio(status: str, code: str | None) -> Delivery:
    """A Twilio status callback (``MessageStatus``, ``ErrorCode``) or, with ``status``
    ``"failed"``, a REST API error code of the send call."""
    state = TWILIO_STATUSES.get(status)
    if state is None:
        raise UnknownStatus(f"unknown value {status[:40]!r}; expected one of {sorted(TWILIO_STATUSES)}")
    if state not in FAILURES:
        return Delivery(state, raw_status=status, raw_code=code or None)
    failure = TWILIO_ERRORS.get(code or "", _OTHER)
    if failure.reason == "expired":
        state = State.EXPIRED
    return _failed(state, failure, status, code or None)


# The simulator speaks Twilio's statuses and codes.
simulator = twilio


# ============================================================================ eSMS

ESMS_SEND_CODES: dict[str, Failure | None] = {
    "100": None,                               # accepted (not delivered)
    "99": Failure("blocked", False),           # number blocked: refused messages (opted out)
    "146": Failure("content", False),          # content does not match the registered template
    "124": None,                               # duplicate RequestId: the first one was accepted
    "104": Failure("blocked", False),          # brandname does not exist or is not approved
    "118": Failure("content", False),          # message type invalid
    "119": Failure("blocked", False),          # brandname not registered with this carrier
    "131": Failure("content", False),          # content too long
    "132": Failure("blocked", False),          # no permission to send to this number
    "177": Failure("blocked", False),          # brandname has no direction for this carrier
    "101": Failure("other", True),             # authentication failed (configuration)
    "103": Failure("other", True),             # balance too low
}
# Delivery callback ``SendStatus`` (and the textual statuses some gateways send).
ESMS_STATUSES = {
    "1": State.ACCEPTED,    # waiting for approval
    "2": State.ACCEPTED,    # waiting to be sent
    "3": State.SENT,        # being sent
    "7": State.SENT,        # handed to the carrier, waiting for its report
    "5": State.DELIVERED,   # sent successfully (delivered)
    "4": State.FAILED,      # refused
    "6": State.FAILED,      # deleted
    "delivered": State.DELIVERED, "failed": State.UNDELIVERED,
}


def esms_send(code: str) -> Delivery:
    """The ``CodeResult`` of eSMS's send call."""
    failure = ESMS_SEND_CODES.get(code, _OTHER)
    if failure is None:
        return Delivery(State.ACCEPTED, raw_status=code, raw_code=code)
    if failure.reason == "blocked" and code == "99":
        failure = Failure("opted_out", False)
    return _failed(State.FAILED, failure, code, code)


def esms(status: str, code: str | None) -> Delivery:
    """An eSMS delivery callback: ``SendStatus`` and, on failure, its error code."""
    state = ESMS_STATUSES.get(status.lower())
    if state is None:
        raise UnknownStatus(f"unknown value {status[:40]!r}; expected one of {sorted(ESMS_STATUSES)}")
    if state not in FAILURES:
        return Delivery(state, raw_status=status, raw_code=code or None)
    return _failed(state, failure_of("esms", code), status, code or None)


# ============================================================================ Zalo ZNS

ZNS_EVENTS = {
    "sent": State.ACCEPTED,                    # the send call answered error 0
    "user_received_message": State.DELIVERED,  # webhook: the phone's Zalo got it
    "user_seen_message": State.DELIVERED,
    "failed": State.FAILED,                    # the send call answered an error
}
ZNS_ERRORS: dict[str, Failure] = {
    "-118": Failure("no_zalo", False),         # no Zalo account, or it is disabled: fall back to SMS
    "-119": Failure("no_zalo", False),         # the account cannot receive ZNS
    "-108": Failure("not_mobile", False),      # phone number invalid
    "-114": Failure("no_zalo", False),         # inactive user (not using Zalo)
    "-139": Failure("opted_out", False),       # the user refused this kind of message
    "-112": Failure("content", False),         # template data invalid
    "-116": Failure("content", False),         # content invalid
    "-131": Failure("content", False),         # template not approved
    "-124": Failure("other", True),            # access token invalid: refresh it and send again
    "-133": Failure("other", True),            # not sent at night (22:00–06:00): later
    "-144": Failure("other", True),            # daily quota exceeded
    "-115": Failure("other", True),            # out of quota / balance
}


def zns(event: str, code: str | None) -> Delivery:
    """A ZNS send answer (``"sent"`` or ``"failed"`` with Zalo's ``error``) or a webhook
    ``event_name``."""
    state = ZNS_EVENTS.get(event)
    if state is None:
        raise UnknownStatus(f"unknown value {event[:40]!r}; expected one of {sorted(ZNS_EVENTS)}")
    if state not in FAILURES:
        return Delivery(state, raw_status=event, raw_code=code or None)
    return _failed(state, ZNS_ERRORS.get(code or "", _OTHER), event, code or None)


_READERS = {"twilio": twilio, "simulator": simulator, "esms": esms, "zns": zns}


def read(kind: str, status: str, code: str | None) -> Delivery:
    """A report of provider ``kind`` in our terms; providers we have no table for are
    read as Twilio-compatible (the only API the simulator and TeXML clones speak)."""
    return _READERS.get(kind, twilio)(status, code)


def failure_of(kind: str, code: str | None) -> Failure:
    """Why a failed message of provider ``kind`` with ``code`` failed (send-time errors and
    failure reports alike)."""
    tables: dict[str, dict[str, Failure]] = {"twilio": TWILIO_ERRORS, "simulator": TWILIO_ERRORS,
                                             "zns": ZNS_ERRORS}
    if kind == "esms":
        if code == "99":
            return Failure("opted_out", False)
        return ESMS_SEND_CODES.get(code or "") or _OTHER
    return tables.get(kind, TWILIO_ERRORS).get(code or "", _OTHER)
