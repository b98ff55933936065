"""Absolute webhook URLs, built from the public base URL the provider reaches us at."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

VOICE_PREFIX = "/voice"
SMS_PREFIX = "/sms"
# The blueprints of the providers' signed webhooks.
WEBHOOK_BLUEPRINTS = ("voice", "sms", "zns")


def webhook_url(base_url: str, kind: str, token: str, **query: str) -> str:
    if kind not in ("answer", "gather", "status"):
        raise ValueError(f"unknown webhook {kind!r}")
    url = f"{base_url.rstrip('/')}{VOICE_PREFIX}/{token}/{kind}"
    return f"{url}?{urlencode(query)}" if query else url


def sms_status_url(base_url: str, token: str) -> str:
    """Where the messaging provider posts a message's delivery statuses."""
    return f"{base_url.rstrip('/')}{SMS_PREFIX}/{token}/status"


def esms_status_url(base_url: str, account_id: int, secret: str) -> str:
    """Where eSMS reports the delivery of an account's messages: unsigned, so the
    account's callback secret is part of the path."""
    return f"{base_url.rstrip('/')}{SMS_PREFIX}/esms/{account_id}/{secret}/status"


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path of this site, else ``default``: where a sign-in or a
    language switch may send the browser back to (no open redirect: browsers read
    ``//host`` and ``/\\host`` as another site)."""
    target = (target or "")[:500]
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 32 for c in target) or urlsplit(target).netloc):
        return default
    return target
