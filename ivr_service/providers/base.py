"""The telephony provider interface: typed requests, results and errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CallRequest:
    to: str                   # E.164
    from_: str | None         # caller id; None lets the provider choose
    answer_url: str           # webhook asked for the first TwiML when the call is answered
    status_url: str           # webhook for status callbacks
    idempotency_key: str      # the attempt token: one placed call per key
    ring_timeout_s: int | None = None   # None: the provider's setting


@dataclass(frozen=True)
class CallPlaced:
    provider_id: str


ERROR_KINDS = ("retryable", "permanent", "configuration", "unknown")


class ProviderError(Exception):
    """The provider refused or failed to place a call.

    ``kind`` says what the dispatcher does with the attempt:

    * ``retryable``: nothing was placed; try again after the retry delay;
    * ``permanent``: this number cannot be called; the contact ends (invalid number);
    * ``configuration``: our account or settings are wrong; retried later, logged as an error;
    * ``unknown``: the call may have been placed (e.g. a read timeout); the attempt is left
      for reconciliation rather than placed again.

    ``reason`` names a permanent failure in provider-neutral words where the provider's
    code says more than "cannot deliver": ``opted_out`` (the number refused messages).
    """

    def __init__(self, message: str, code: str | None = None, kind: str = "retryable",
                 reason: str | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown provider error kind {kind!r}")
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.kind != "permanent"


@dataclass(frozen=True)
class CallState:
    """What the provider knows of a placed call (asked when reconciling)."""

    provider_id: str
    status: str                 # Twilio CallStatus: queued, ringing, in-progress, completed, busy …
    duration_s: int | None = None


class VoiceProvider(Protocol):
    name: str

    def place_call(self, request: CallRequest) -> CallPlaced: ...

    def fetch_call(self, provider_id: str) -> CallState | None: ...

    def close(self) -> None: ...
