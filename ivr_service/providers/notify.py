"""Where alerts go: mail through an SMTP server (the standard library's ``smtplib``) and a
JSON POST to a webhook (``urllib``). One :class:`Notifier` protocol so the service and its
tests swap one thing; failures come up as :class:`DeliveryFailed` with a short reason,
never as the library's own exceptions.
"""

from __future__ import annotations

import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from ..settings import Settings

TIMEOUT = 10.0          # seconds for the SMTP dialogue and the webhook's answer


class DeliveryFailed(Exception):
    """A mail or a webhook was not accepted; the message says why, briefly."""


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str
    message_id: str     # the same on every retry, so a mailbox can drop a repeat
    date: datetime      # when it is sent (the caller's clock)


class Notifier(Protocol):
    def send_mail(self, mail: Mail) -> None:
        """Hand the mail to the server; raises :class:`DeliveryFailed`."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POST ``body``; any answer but 2xx raises :class:`DeliveryFailed`."""


@dataclass(frozen=True)
class SmtpWebhookNotifier:
    """Mail through ``host``:``port`` (STARTTLS with the certificate checked, and a login,
    when configured); webhooks with a timeout."""

    host: str | None
    port: int
    sender: str | None
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpWebhookNotifier:
        return cls(settings.smtp_host, settings.smtp_port_or_default, settings.alert_email_from,
                   settings.smtp_user, settings.smtp_password, settings.smtp_starttls)

    def send_mail(self, mail: Mail) -> None:
        if not self.host or not self.sender:
            raise DeliveryFailed("no SMTP server or sender address configured")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        message["Date"] = formatdate(mail.date.timestamp(), usegmt=True)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body, charset="utf-8")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user and self.password:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {_brief(exc)}") from None
        if refused:
            raise DeliveryFailed(f"SMTP refused {len(refused)} of {len(mail.to)} recipients")

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryFailed(f"webhook: {_brief(exc)}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"webhook answered {status}")


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:299] + "…"

