"""Providers, chosen by the ``provider`` setting through one factory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from .base import CallPlaced, CallRequest, CallState, ProviderError, VoiceProvider
from .messaging import AccountConfig, MessageRequest, MessageSent, MessagingProvider

if TYPE_CHECKING:
    from .zns import TokenSource

__all__ = ["AccountConfig", "CallPlaced", "CallRequest", "CallState", "MessageRequest", "MessageSent",
           "MessagingProvider", "Messengers", "ProviderError", "VoiceProvider", "build_account_provider",
           "build_messaging_provider", "build_provider"]


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


def build_account_provider(settings: Settings, account: AccountConfig, callback_url: str, *,
                           tokens: TokenSource | None = None, clock: Callable[[], datetime] | None = None,
                           **options: Any) -> MessagingProvider:
    """The adapter of one messaging account; ``callback_url``: where its provider reports
    delivery (with the account's secret in it, for providers whose callbacks are unsigned).
    A ``zns`` account needs its OA ``tokens`` (``services.zns_tokens.account_tokens``) and
    the ``clock``; its template is the account's ``template_id`` credential (Zalo's
    events are signed and go to ``/zns/events``: no callback URL)."""
    if account.kind == "esms":
        from .esms import EsmsProvider

        return EsmsProvider(str(account.credentials["api_key"]), str(account.credentials["secret_key"]),
                            account.sender, callback_url, base_url=account.base_url or settings.esms_base_url,
                            http_timeout_s=settings.twilio_http_timeout, **options)
    if account.kind == "zns" and tokens is not None and clock is not None:
        from .zns import zns_from_settings

        template = account.credentials.get("template_id")
        return zns_from_settings(settings, tokens, clock, template_id=str(template) if template else None,
                                 base_url=account.base_url, **options)
    raise ProviderError(f"messaging account {account.id}: kind {account.kind!r} is not available in this build",
                        code="no-adapter", kind="configuration")


class Messengers:
    """The messaging provider of each message: the installation's (account None) or one
    adapter per messaging account, built on first use and rebuilt when the account changes.

    ``refresh`` takes the active accounts (the worker reads them once per round); an
    account missing from them (deactivated) has no adapter: sending through it is a
    configuration error. ``zns_tokens`` gives a ZNS account its OA token source (the
    services layer keeps them in the database); without it, or without ``clock``, ZNS
    accounts cannot send."""

    def __init__(self, settings: Settings, default: MessagingProvider,
                 callback_url: Callable[[AccountConfig], str], accounts: Iterable[AccountConfig] = (), *,
                 zns_tokens: Callable[[AccountConfig], TokenSource] | None = None,
                 clock: Callable[[], datetime] | None = None, **options: Any) -> None:
        self.settings = settings
        self.default = default
        self.callback_url = callback_url
        self.zns_tokens = zns_tokens
        self.clock = clock
        self.options = options          # passed to every account adapter (tests: a session)
        self._accounts: dict[int, AccountConfig] = {}
        self._built: dict[int, tuple[AccountConfig, MessagingProvider]] = {}
        self.refresh(accounts)

    @property
    def name(self) -> str:
        return self.default.name

    def refresh(self, accounts: Iterable[AccountConfig]) -> None:
        self._accounts = {a.id: a for a in accounts}
        for account_id, (config, provider) in list(self._built.items()):
            if self._accounts.get(account_id) != config:
                provider.close()
                del self._built[account_id]

    def for_account(self, account_id: int | None) -> MessagingProvider:
        if account_id is None:
            return self.default
        built = self._built.get(account_id)
        if built is not None:
            return built[1]
        account = self._accounts.get(account_id)
        if account is None:
            raise ProviderError(f"messaging account {account_id} is not active", code="inactive-account",
                                kind="configuration")
        tokens = self.zns_tokens(account) if account.kind == "zns" and self.zns_tokens is not None else None
        provider = build_account_provider(self.settings, account, self.callback_url(account), tokens=tokens,
                                          clock=self.clock, **self.options)
        self._built[account_id] = (account, provider)
        return provider

    def close(self) -> None:
        for _config, provider in self._built.values():
            provider.close()
        self._built.clear()
        self.default.close()
