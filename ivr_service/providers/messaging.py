"""The messaging provider interface (SMS today; brandname gateways and Zalo ZNS next):
typed requests and results. Errors are :class:`ProviderError`, as for calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MessageRequest:
    to: str                   # E.164
    body: str                 # sent byte for byte
    sender: str | None        # brandname or number; None: the provider's default
    status_url: str           # webhook for delivery status callbacks
    idempotency_key: str      # the message token: one message sent per key
    # Template providers (Zalo ZNS) send an approved template, not ``body``: its id and
    # parameters. None: the provider's account default (SMS providers ignore both).
    template_id: str | None = None
    template_data: Mapping[str, str] | None = None


@dataclass(frozen=True)
class MessageSent:
    provider_id: str          # e.g. Twilio's SM… sid


class MessagingProvider(Protocol):
    name: str

    def send_message(self, request: MessageRequest) -> MessageSent: ...

    def close(self) -> None: ...
