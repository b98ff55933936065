"""Service settings, read from environment variables and validated at start-up.

Every setting has a documented default that suits a laptop (SQLite + simulator).
A missing or malformed value raises :class:`SettingsError` naming the variable and
the form it expects, so the process stops before it serves anything.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .core.schedule import WeeklySchedule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"
PROVIDERS = ("simulator", "twilio")
MACHINE_DETECTION = ("off", "Enable", "DetectMessageEnd")
SIMULATOR_AUTH_TOKEN = "sipas-simulator-development-token"  # not a secret: simulator only
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    # SIPAS_DATABASE_URL: SQLAlchemy URL; SQLite file under instance/ by default.
    database_url: str = f"sqlite:///{INSTANCE_DIR / 'sipas.db'}"
    # SIPAS_PUBLIC_BASE_URL: the URL the telephony provider uses to reach us.
    public_base_url: str = "http://127.0.0.1:5000"
    # SIPAS_PROVIDER: simulator | twilio
    provider: str = "simulator"
    # SIPAS_TIMEZONE: default time zone of new campaigns (IANA name).
    timezone: str = "Asia/Ho_Chi_Minh"
    # SIPAS_SECRET_KEY: required with the twilio provider; random per process otherwise.
    secret_key: str | None = field(default=None, repr=False)
    # SIPAS_EXPORT_DIR: where score exports are written.
    export_dir: str = str(INSTANCE_DIR / "exports")
    # SIPAS_QUESTIONNAIRE_DIR: where questionnaire files live.
    questionnaire_dir: str = str(PROJECT_ROOT / "config" / "questionnaires")
    # SIPAS_SIMULATOR_CONFIG: optional YAML file with simulated-citizen behaviour.
    simulator_config: str | None = None
    # SIPAS_SIMULATOR_CALL_LOG: optional file the simulator appends a line to for every
    # call it places ("<attempt token> <call sid> <unix time>"): its call detail records.
    simulator_call_log: str | None = None
    # SIPAS_DISPATCH_INTERVAL: seconds between worker dispatch rounds.
    dispatch_interval: float = 1.0
    # SIPAS_DISPATCH_BATCH: attempts claimed per dispatch round.
    dispatch_batch: int = 50
    # SIPAS_CALLS_PER_SECOND: calls started per second by this sender (the provider
    # account), across every worker. Default: 1 with Twilio (its default CPS), 50 with
    # the simulator.
    calls_per_second: float | None = None
    # SIPAS_MAX_CONCURRENT_CALLS: calls in progress at once for this sender, all workers.
    max_concurrent_calls: int = 100
    # SIPAS_MESSAGES_PER_SECOND: SMS sent per second by this sender (the SMS channel).
    messages_per_second: float = 1.0
    # SIPAS_LEASE_SECONDS: how long a claimed, not yet placed attempt belongs to its worker.
    lease_seconds: float = 60.0
    # SIPAS_STALE_CALL_SECONDS: a call with no final status after this long is asked of the
    # provider (and closed as lost if the provider does not know it).
    stale_call_seconds: float = 7200.0
    # SIPAS_WEEKLY_EXPORT: when the weekly CCHC export is written, as a weekday and a
    # local time in SIPAS_TIMEZONE ("mon 07:00"), or "off".
    weekly_export: str = "mon 07:00"
    # SIPAS_VOICE_VI / SIPAS_VOICE_EN: text-to-speech voices for <Say>.
    voice_vi: str = "Google.vi-VN-Wavenet-A"
    voice_en: str = "Google.en-US-Standard-C"
    # SIPAS_LOG_LEVEL
    log_level: str = "INFO"
    # SIPAS_VALIDATE_SIGNATURES: check X-Twilio-Signature on every webhook. Only the
    # simulator provider may turn it off (a warning is logged at start).
    validate_signatures: bool = True
    # Twilio (validated when provider=twilio).
    twilio_account_sid: str | None = None
    # SIPAS_TWILIO_AUTH_TOKEN: signs/validates webhooks too. With the simulator and no
    # token set, a fixed development token is used (see ``webhook_auth_token``).
    twilio_auth_token: str | None = field(default=None, repr=False)
    # SIPAS_TWILIO_CALLER_IDS: comma-separated E.164 numbers; calls rotate over them.
    twilio_caller_ids: tuple[str, ...] = ()
    # SIPAS_TWILIO_API_BASE_URL: Twilio's REST API, or a Twilio-compatible one.
    twilio_api_base_url: str = "https://api.twilio.com"
    # SIPAS_TWILIO_RING_TIMEOUT: seconds to let a call ring before "no-answer" (5-600).
    twilio_ring_timeout: int = 30
    # SIPAS_TWILIO_MACHINE_DETECTION: off | Enable | DetectMessageEnd
    twilio_machine_detection: str = "off"
    # SIPAS_TWILIO_HTTP_TIMEOUT: seconds to wait for the REST API before giving up.
    twilio_http_timeout: float = 10.0

    @property
    def sender_calls_per_second(self) -> float:
        if self.calls_per_second is not None:
            return self.calls_per_second
        return 50.0 if self.provider == "simulator" else 1.0

    @property
    def weekly_schedule(self) -> WeeklySchedule | None:
        return WeeklySchedule.parse(self.weekly_export, self.timezone)

    @property
    def webhook_auth_token(self) -> str:
        """The secret webhooks are signed with: Twilio's auth token; with the simulator and
        no token configured, a fixed development value (the simulator signs with it too)."""
        return self.twilio_auth_token or SIMULATOR_AUTH_TOKEN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = "SIPAS_" + f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(name, f.name, raw.strip())
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        try:
            url = make_url(self.database_url)
        except ArgumentError:
            raise SettingsError(
                f"SIPAS_DATABASE_URL: expected a SQLAlchemy URL such as "
                f"'sqlite:///instance/sipas.db' or 'postgresql+psycopg://user@host/db', "
                f"got {self.database_url!r}"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise SettingsError(
                f"SIPAS_DATABASE_URL: only sqlite and postgresql are supported, "
                f"got {url.get_backend_name()!r}"
            )
        base = urlsplit(self.public_base_url)
        if base.scheme not in ("http", "https") or not base.netloc or base.query:
            raise SettingsError(
                "SIPAS_PUBLIC_BASE_URL: expected an absolute http(s) URL such as "
                f"'https://survey.example.gov.vn', got {self.public_base_url!r}"
            )
        if self.provider not in PROVIDERS:
            raise SettingsError(
                f"SIPAS_PROVIDER: expected one of {', '.join(PROVIDERS)}, got {self.provider!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"SIPAS_TIMEZONE: expected an IANA time zone such as 'Asia/Ho_Chi_Minh', "
                f"got {self.timezone!r}"
            ) from None
        try:
            self.weekly_schedule
        except ValueError as exc:
            raise SettingsError(f"SIPAS_WEEKLY_EXPORT: {exc}") from None
        if self.dispatch_interval <= 0:
            raise SettingsError("SIPAS_DISPATCH_INTERVAL: expected a positive number of seconds")
        if self.dispatch_batch < 1:
            raise SettingsError("SIPAS_DISPATCH_BATCH: expected a positive integer")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"SIPAS_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}"
            )
        if self.simulator_config and not Path(self.simulator_config).is_file():
            raise SettingsError(
                f"SIPAS_SIMULATOR_CONFIG: no such file {self.simulator_config!r}"
            )
        if self.calls_per_second is not None and not 0 < self.calls_per_second <= 10000:
            raise SettingsError(
                f"SIPAS_CALLS_PER_SECOND: expected more than 0 and at most 10000, got {self.calls_per_second}")
        if not 1 <= self.max_concurrent_calls <= 100000:
            raise SettingsError(
                f"SIPAS_MAX_CONCURRENT_CALLS: expected 1 to 100000, got {self.max_concurrent_calls}")
        if not 0 < self.messages_per_second <= 10000:
            raise SettingsError(
                f"SIPAS_MESSAGES_PER_SECOND: expected more than 0 and at most 10000, got {self.messages_per_second}")
        if not 1 <= self.lease_seconds <= 3600:
            raise SettingsError(f"SIPAS_LEASE_SECONDS: expected 1 to 3600 seconds, got {self.lease_seconds}")
        if self.provider == "twilio" and self.lease_seconds <= 2 * self.twilio_http_timeout:
            raise SettingsError(
                f"SIPAS_LEASE_SECONDS: must exceed twice SIPAS_TWILIO_HTTP_TIMEOUT ({self.twilio_http_timeout} s), "
                f"or a slow API call could lose its lease and be placed twice")
        if not 1 <= self.stale_call_seconds <= 86400:
            raise SettingsError(
                f"SIPAS_STALE_CALL_SECONDS: expected 1 to 86400 seconds, got {self.stale_call_seconds}")
        if not self.validate_signatures and self.provider != "simulator":
            raise SettingsError(
                "SIPAS_VALIDATE_SIGNATURES: webhook signatures can be turned off only with "
                f"SIPAS_PROVIDER=simulator, not {self.provider!r}"
            )
        if not 5 <= self.twilio_ring_timeout <= 600:
            raise SettingsError(
                f"SIPAS_TWILIO_RING_TIMEOUT: expected 5 to 600 seconds, got {self.twilio_ring_timeout}"
            )
        if self.twilio_machine_detection not in MACHINE_DETECTION:
            raise SettingsError(
                f"SIPAS_TWILIO_MACHINE_DETECTION: expected one of {', '.join(MACHINE_DETECTION)}, "
                f"got {self.twilio_machine_detection!r}"
            )
        if not 0 < self.twilio_http_timeout <= 120:
            raise SettingsError(
                f"SIPAS_TWILIO_HTTP_TIMEOUT: expected 0 to 120 seconds, got {self.twilio_http_timeout}"
            )
        if self.provider == "twilio":
            for name in ("twilio_account_sid", "twilio_auth_token"):
                if not getattr(self, name):
                    raise SettingsError(
                        f"SIPAS_{name.upper()}: required when SIPAS_PROVIDER=twilio"
                    )
            if not (self.twilio_account_sid or "").startswith("AC"):
                raise SettingsError(
                    "SIPAS_TWILIO_ACCOUNT_SID: expected an account SID starting with 'AC'"
                )
            if not self.twilio_caller_ids:
                raise SettingsError(
                    "SIPAS_TWILIO_CALLER_IDS: required when SIPAS_PROVIDER=twilio: "
                    "comma-separated E.164 numbers such as '+842812345678'"
                )
            if not self.secret_key:
                raise SettingsError(
                    "SIPAS_SECRET_KEY: required when SIPAS_PROVIDER=twilio "
                    "(a long random string shared by every web process)"
                )


def _parse(env_name: str, field_name: str, raw: str) -> object:
    if field_name == "validate_signatures":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{env_name}: expected true or false, got {raw!r}")
    if field_name in ("dispatch_interval", "twilio_http_timeout", "calls_per_second", "messages_per_second",
                      "lease_seconds", "stale_call_seconds"):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{env_name}: expected a number of seconds, got {raw!r}") from None
    if field_name in ("dispatch_batch", "twilio_ring_timeout", "max_concurrent_calls"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env_name}: expected an integer, got {raw!r}") from None
    if field_name == "twilio_caller_ids":
        numbers = tuple(part.strip() for part in raw.split(",") if part.strip())
        for number in numbers:
            if not (number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16):
                raise SettingsError(
                    f"{env_name}: expected comma-separated E.164 numbers such as "
                    f"'+842812345678', got {number!r}"
                )
        return numbers
    if field_name == "twilio_api_base_url" and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{env_name}: expected an http(s) URL, got {raw!r}")
    return raw
