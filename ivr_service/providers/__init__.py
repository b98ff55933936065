"""Providers, chosen by the ``provider`` setting through one factory."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .base import CallPlaced, CallRequest, CallState, ProviderError, VoiceProvider
from .messaging import MessageRequest, MessageSent, MessagingProvider

__all__ = ["CallPlaced", "CallRequest", "CallState", "MessageRequest", "MessageSent", "MessagingProvider",
           "ProviderError", "VoiceProvider", "build_messaging_provider", "build_provider"]


def build_provider(settings: Settings, **options: Any) -> VoiceProvider:
    """The one place a provider is built; tests pass ``options`` (e.g. a transport)."""
    if settings.provider == "simulator":
        from .simulator import SimulatorProvider

        return SimulatorProvider.from_settings(settings, **options)
    if settings.provider == "twilio":
        from .twilio import TwilioProvider

        return TwilioProvider.from_settings(settings)
    raise ProviderError(f"provider {settings.provider!r} is not available in this build",
                        kind="configuration")


def build_messaging_provider(settings: Settings, **options: Any) -> MessagingProvider:
    """The SMS provider for ``settings.provider``; tests pass ``options`` (a transport, a
    browser, a profile, ``item_for``)."""
    if settings.provider == "simulator":
        from .sms_simulator import SmsSimulatorProvider

        return SmsSimulatorProvider.from_settings(settings, **options)
    if settings.provider == "twilio":
        from .twilio_messaging import TwilioMessagingProvider

        return TwilioMessagingProvider.from_settings(settings)
    raise ProviderError(f"messaging provider {settings.provider!r} is not available in this build",
                        kind="configuration")
