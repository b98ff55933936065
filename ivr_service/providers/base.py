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
    ring_timeout_s: int = 30


@dataclass(frozen=True)
class CallPlaced:
    provider_id: str


class ProviderError(Exception):
    """The provider refused or failed to place a call."""

    def __init__(self, message: str, code: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class VoiceProvider(Protocol):
    name: str

    def place_call(self, request: CallRequest) -> CallPlaced: ...

    def close(self) -> None: ...
