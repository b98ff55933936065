"""Providers, chosen by the ``provider`` setting through one factory."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .base import CallPlaced, CallRequest, CallState, ProviderError, VoiceProvider

__all__ = ["CallPlaced", "CallRequest", "CallState", "ProviderError", "VoiceProvider", "build_provider"]


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
