"""The messaging provider interface (SMS today; brandname gateways and Zalo ZNS next):
typed requests and results. Errors are :class:`ProviderError`, as for calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


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


@dataclass(frozen=True)
class MessageState:
    """What the provider says of a message it was given: its own status word (read by
    core.delivery for the provider's kind) and error code."""

    provider_id: str
    status: str
    error_code: str | None = None


@runtime_checkable
class MessageLookup(Protocol):
    """A provider that can be asked about a message (Twilio, the simulator): None when it
    does not know the id. eSMS and ZNS adapters report by callback only."""

    def fetch_message(self, provider_id: str) -> MessageState | None: ...


class MessagingProvider(Protocol):
    name: str

    def send_message(self, request: MessageRequest) -> MessageSent: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class AccountConfig:
    """What an adapter needs of a messaging account (``persistence.models.MessagingAccount``)."""

    id: int
    kind: str                       # twilio | esms | zns | simulator
    sender: str | None
    base_url: str | None            # None: the kind's setting
    callback_secret: str
    updated_at: datetime            # a changed account gets a new adapter
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
