"""Service settings, read from environment variables and validated at start-up.

Each setting is declared once, as a field of :class:`Settings` built with
:func:`setting`: its type annotation, default, bounds or choices, extra checks and help
text. The environment variable (``SIPAS_`` + the field name in capitals), the parsing,
the per-setting validation and the README table (:func:`markdown_table`, written by
``scripts/settings_table.py``) all come from that declaration; only the rules that tie
several settings together are spelled out in :meth:`Settings.validate`.

Every setting has a default that suits a laptop (SQLite + simulator). A missing or
malformed value raises :class:`SettingsError` naming the variable and the form it
expects, so the process stops before it serves anything.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .core.estimate import Pace
from .core.messages import parse_prices
from .core.optout import DEFAULT_OPT_OUT_WORDS, check_words
from .core.programmes import PERIODS
from .core.schedule import WeeklySchedule
from .core.scoring import SMALL_CELL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"
PROVIDERS = ("simulator", "twilio")
MACHINE_DETECTION = ("off", "Enable", "DetectMessageEnd")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
SIMULATOR_AUTH_TOKEN = "sipas-simulator-development-token"  # not a secret: simulator only
MIN_SECRET_KEY = 32
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Spec:
    """What a setting allows and how the README describes it (kept in its field's metadata).

    Numeric settings always have both bounds: an unbounded one would let a typo such as
    ``1e99`` through to a scheduler or a SQL ``LIMIT`` that cannot take it."""

    help: str
    low: float | None = None
    high: float | None = None
    above: bool = False                      # the value must exceed ``low``, not just reach it
    unit: str | None = None                  # "seconds": read as "a number of seconds"
    choices: tuple[str, ...] = ()
    # Raises ValueError saying what it expected; the variable name is prefixed to it.
    check: Callable[[Any], object] | None = None
    default_text: str | None = None          # README default when the value itself would mislead


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            above: bool = False, unit: str | None = None, choices: tuple[str, ...] = (),
            check: Callable[[Any], object] | None = None, default_text: str | None = None,
            secret: bool = False) -> Any:
    """A :class:`Settings` field with its :class:`Spec`. Typed ``Any`` like ``field()``,
    so the annotation stays the field's type."""
    spec = Spec(help, low, high, above, unit, choices, check, default_text)
    return field(default=default, repr=not secret, metadata={"setting": spec})


def _database_url(value: str) -> None:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):       # ValueError: e.g. a port that is not a number
        # The value may hold a password: show only its scheme.
        scheme = value.split(":", 1)[0][:20] if ":" in value else "no scheme"
        raise ValueError("expected a SQLAlchemy URL such as 'sqlite:///instance/sipas.db' or "
                         f"'postgresql+psycopg://user@host/db', got one starting {scheme!r}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"only sqlite and postgresql are supported, got {url.get_backend_name()!r}")


def _public_base_url(value: str) -> None:
    base = urlsplit(value)
    if base.scheme not in ("http", "https") or not base.netloc or base.query:
        raise ValueError(f"expected an absolute http(s) URL such as 'https://survey.example.gov.vn', got {value!r}")


def _http_url(value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {value!r}")


def _time_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as 'Asia/Ho_Chi_Minh', got {value!r}") from None


def _weekly_time(value: str) -> None:
    # The form only: the zone is SIPAS_TIMEZONE's, checked on its own.
    WeeklySchedule.parse(value, "UTC")


def report_kinds(value: str) -> tuple[str, ...]:
    """The period kinds of ``SIPAS_REPORT_PERIODS`` in the order given, each once; ``off``
    (or nothing, set in code) for none."""
    parts = [part.strip().lower() for part in value.split(",") if part.strip()]
    if parts == ["off"]:
        return ()
    for part in parts:
        if part not in PERIODS:
            raise ValueError(f"expected a comma-separated list of {', '.join(PERIODS)}, or off, got {part!r}")
    return tuple(dict.fromkeys(parts))


def _min_length(value: str, length: int) -> None:
    if len(value) < length:
        raise ValueError(f"at least {length} characters (e.g. python -c 'import secrets; "
                         f"print(secrets.token_hex(32))'), got {len(value)}")


def _storage_uri(value: str) -> None:
    if not value.startswith(("memory://", "redis://", "rediss://")):
        raise ValueError(f"expected memory:// or a redis:// URL, got one starting {value.split(':', 1)[0][:20]!r}")


def _rate(value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"expected a rate such as '30 per hour' or '5/minute', got {value!r}") from None


def _log_level(value: str) -> None:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {value!r}")


def _existing_file(value: str) -> None:
    if not Path(value).is_file():
        raise ValueError(f"no such file {value!r}")


def _voice_prices(value: str) -> None:
    parse_prices(value, unit="minute")


def _email(value: str) -> None:
    # The form only (one @, no spaces or commas): the SMTP server is the judge of the rest.
    if not re.fullmatch(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+", value):
        raise ValueError(f"expected an e-mail address such as 'canh-bao@example.gov.vn', got {value!r}")


def _emails(values: tuple[str, ...]) -> None:
    for value in values:
        _email(value)


def _host(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", value):
        raise ValueError(f"expected a host name or address such as 'smtp.example.gov.vn', got {value!r}")


def _e164_numbers(numbers: tuple[str, ...]) -> None:
    for number in numbers:
        if not re.fullmatch(r"\+[0-9]{7,15}", number):
            raise ValueError(f"expected comma-separated E.164 numbers such as '+842812345678', got {number!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str = setting(
        f"sqlite:///{INSTANCE_DIR / 'sipas.db'}", "SQLAlchemy URL; `postgresql://…` in production",
        check=_database_url)
    public_base_url: str = setting(
        "http://127.0.0.1:5000", "URL the telephony provider reaches the webhooks at", check=_public_base_url)
    provider: str = setting("simulator", "telephony provider", choices=PROVIDERS)
    timezone: str = setting(
        "Asia/Ho_Chi_Minh", "default time zone of new campaigns (IANA name)", check=_time_zone)
    secret_key: str | None = setting(
        None, "required with Twilio; same value on every web process", default_text="random per process",
        secret=True)
    export_dir: str = setting(str(INSTANCE_DIR / "exports"), "where exports are written")
    export_retention_days: int = setting(
        90, "days an export is kept (campaign and QR workbooks and CSVs, weekly and period report directories "
        "under `SIPAS_EXPORT_DIR`, by file time) before housekeeping removes it; `0`: kept forever",
        low=0, high=36500, unit="days")
    questionnaire_dir: str = setting(str(PROJECT_ROOT / "config" / "questionnaires"), "questionnaire files")
    simulator_config: str | None = setting(
        None, "YAML of simulated-citizen behaviour (see `CitizenProfile`)", check=_existing_file)
    simulator_call_log: str | None = setting(
        None, "file where the simulator appends one line per call it places "
        "(`<attempt token> <call sid> <unix time>`: its call records)")
    dispatch_interval: float = setting(
        1.0, "seconds between dispatch rounds", low=0, above=True, high=3600, unit="seconds")
    # claim_due caps the whole round with it, expired leases and every campaign included.
    dispatch_batch: int = setting(
        50, "most attempts a worker claims in one dispatch round, all running campaigns together",
        low=1, high=10000)
    calls_per_second: float | None = setting(
        None, "calls started per second by this sender (the provider account), all workers together",
        low=0, above=True, high=10000, default_text="`1` with Twilio, `50` with the simulator")
    max_concurrent_calls: int = setting(
        100, "calls in progress at once for this sender, all workers together", low=1, high=100000)
    lease_seconds: float = setting(
        60.0, "how long a claimed attempt belongs to its worker before another may reconcile it; "
        "with Twilio more than twice `SIPAS_TWILIO_HTTP_TIMEOUT`", low=1, high=3600, unit="seconds")
    stale_call_seconds: float | None = setting(
        None, "a call with no final status after this many seconds is asked of the provider, and closed as lost "
        "if the provider does not know it; unset: per campaign, `SIPAS_TWILIO_RING_TIMEOUT` + its longest "
        "complete call (core.estimate, at most `SIPAS_MAX_CALL_SECONDS`) + 120 s", low=1, high=86400,
        unit="seconds", default_text="per campaign")
    weekly_export: str = setting(
        "mon 07:00", "when the weekly CCHC export is written (weekday and local time in `SIPAS_TIMEZONE`), "
        "or `off`", check=_weekly_time)
    report_periods: str = setting(
        ",".join(PERIODS), "the reporting periods whose CCHC reports are written once each is over (the first "
        "check after local midnight in `SIPAS_TIMEZONE`): comma-separated `month`, `quarter`, `half`, or `off`; one "
        "report per agency node with counted interviews, into `<SIPAS_EXPORT_DIR>/reports/<period>/`",
        check=report_kinds)
    report_min_n: int = setting(
        30, "in reports, groups (units, fields, procedures, officers) with fewer responses than this are "
        "suppressed, and such units are not ranked", low=1, high=100000)
    satisfaction_target: float = setting(
        80.0, "the satisfaction target reports compare indices with, in percent (Resolution 30c/NQ-CP: above 80 %)",
        low=0, high=100, unit="percent")
    retention_days: int = setting(
        180, "days after a campaign closes (and, when completed, its final export is written) before its "
        "citizens' names, dossier codes and phone numbers are purged (numbers kept as keyed hashes); an "
        "agency's own `retention_days` wins", low=1, high=3650, unit="days")
    phone_hash_key: str | None = setting(
        None, "secret key of the phone-number hashes (HMAC-SHA256) that purged and erased data keeps; required "
        "for the purge and for citizens' erasure requests; never change it once data is hashed (hashed "
        "opt-outs would stop matching)", check=lambda v: _min_length(v, 16), secret=True)
    voice_vi: str = setting("Google.vi-VN-Wavenet-A", "`<Say>` voice for Vietnamese")
    voice_en: str = setting("Google.en-US-Standard-C", "`<Say>` voice for English")
    log_level: str = setting("INFO", "logging threshold: `DEBUG`, `INFO`, `WARNING` or `ERROR`", check=_log_level)
    log_format: str = setting(
        "text", "log records as readable lines, or as one JSON object per line (fields: see Observability)",
        choices=LOG_FORMATS)
    worker_health_port: int | None = setting(
        None, "a `worker` process answers `/livez` and `/readyz` on this port of 127.0.0.1 (the scheduler's "
        "state included); unset: no health server in workers", low=1, high=65535, default_text="none")
    validate_signatures: bool = setting(
        True, "check `X-Twilio-Signature` on every webhook; `false` only with the simulator")
    twilio_account_sid: str | None = setting(None, "Twilio account SID (`AC…`); required with Twilio")
    twilio_auth_token: str | None = setting(
        None, "Twilio auth token, required with Twilio; it also validates webhook signatures "
        "(with the simulator and none set, a fixed development token)", secret=True)
    twilio_caller_ids: tuple[str, ...] = setting(
        (), "comma-separated E.164 caller numbers; calls rotate over them; required with Twilio",
        check=_e164_numbers)
    twilio_api_base_url: str = setting(
        "https://api.twilio.com", "REST API; a Twilio-compatible one (SignalWire, Telnyx TeXML) works too",
        check=_http_url)
    twilio_ring_timeout: int = setting(
        30, "seconds a call rings before it counts as no answer", low=5, high=600, unit="seconds")
    twilio_machine_detection: str = setting(
        "off", "answering-machine detection, sent as Twilio's `MachineDetection`; `off` sends none",
        choices=MACHINE_DETECTION)
    twilio_http_timeout: float = setting(
        10.0, "seconds to wait for the REST API", low=0, above=True, high=120, unit="seconds")
    max_request_mb: float = setting(
        50.0, "largest request body, in MB (a frame upload; a province's quarter as XLSX is a few MB); "
        "larger ones get 413", low=0.1, high=1024, unit="megabytes")
    max_json_kb: float = setting(
        64.0, "largest JSON request body, in KB (a campaign's settings are a few hundred bytes)",
        low=1, high=10240, unit="kilobytes")
    max_frame_rows: int = setting(
        1_000_000, "most data rows a transaction list may hold (imports and previews)", low=1, high=10_000_000)
    session_hours: float = setting(
        8.0, "how long a console sign-in lasts", low=0.25, high=168, unit="hours")
    trusted_proxies: int = setting(
        0, "reverse proxies in front of the web processes whose `X-Forwarded-For` and `X-Forwarded-Proto` "
        "are trusted (0: none; 1 behind one nginx): the sign-in limit, the audit log and the logs then see "
        "each user's address instead of the proxy's", low=0, high=5)
    ratelimit_storage: str = setting(
        "memory://", "where failed sign-ins are counted: `memory://` (per process) or a `redis://` URL shared "
        "by every web process", check=_storage_uri, secret=True)

    messages_per_second: float | None = setting(
        None, "SMS sent per second by this sender, all workers together (a Twilio long code: 1; an "
        "alphanumeric sender: 10)", low=0, above=True, high=10000,
        default_text="`1` with Twilio, `50` with the simulator")
    twilio_sms_sender: str | None = setting(
        None, "default SMS sender with Twilio: a registered alphanumeric brandname (≤ 11 characters) or an "
        "E.164 number; a programme's own sender wins")
    esms_base_url: str = setting(
        "https://rest.esms.vn", "eSMS brandname gateway API (accounts of kind `esms` without their own base URL)",
        check=_http_url)
    zns_base_url: str = setting(
        "https://business.openapi.zalo.me", "Zalo ZNS API; ZNS template messages are posted to "
        "`<this>/message/template`", check=_http_url)
    zalo_oauth_url: str = setting(
        "https://oauth.zaloapp.com", "Zalo OAuth; the OA access token is refreshed at `<this>/v4/oa/access_token`",
        check=_http_url)
    zalo_app_id: str | None = setting(
        None, "Zalo app id of the Official Account that sends ZNS (token refresh, event signatures)")
    zalo_app_secret: str | None = setting(
        None, "Zalo app secret key, sent as `secret_key` when the OA access token is refreshed", secret=True)
    zalo_oa_secret: str | None = setting(
        None, "the OA secret key: ZNS delivery events (`POST /zns/events`) are signed with it", secret=True)
    zns_event_tolerance: float = setting(
        900.0, "seconds a ZNS event's timestamp may differ from our clock before the event is refused as stale",
        low=10, high=86400, unit="seconds")
    survey_base_url: str | None = setting(
        None, "default public https host of survey links and QR posters for new programmes",
        check=_public_base_url, default_text="`SIPAS_PUBLIC_BASE_URL`")
    sms_prices: str | None = setting(
        None, "SMS price table, JSON: VND per segment by carrier (as core.phones names them, any case), `*` for "
        'the others, e.g. `{"*": 300, "viettel": 250}`; each message sent records segments × its price; '
        "unset: no prices are recorded", check=parse_prices)
    form_rate_limit: str = setting(
        "30 per hour", "anonymous QR forms one address may start (a rate such as `30 per hour`; answers are "
        "limited to 40 times as many)", check=_rate)
    opt_out_words: tuple[str, ...] = setting(
        DEFAULT_OPT_OUT_WORDS, "comma-separated words that, alone in an inbound SMS, opt its sender out (any "
        "case, accents and surrounding punctuation); none may be an answer word of a questionnaire",
        check=check_words)
    speaking_rate: float = setting(
        13.0, "characters a second of synthesized speech (Vietnamese `<Say>`: about 13), for the length of a call "
        "(`python -m ivr_service estimate`)", low=1, high=100, unit="characters a second")
    answer_seconds: float = setting(
        3.0, "seconds a citizen takes to answer one item, for the length of a call", low=0, high=60, unit="seconds")
    max_call_seconds: int = setting(
        360, "start-up fails when the longest complete call of a questionnaire, in any language and with the "
        "speech hint and the agency's line, is expected to take longer; `0`: no check", low=0, high=3600,
        unit="seconds")
    voice_prices: str | None = setting(
        None, "call price table, JSON: VND per started minute by carrier (as core.phones names them, any case), "
        '`*` for the others, e.g. `{"*": 1000, "viettel": 900}`; gives the cost of a campaign\'s calls and per '
        "complete; unset: no cost figures", check=_voice_prices)


    smtp_host: str | None = setting(
        None, "SMTP server alert mails are sent through; required with `SIPAS_ALERT_EMAILS`", check=_host)
    smtp_port: int | None = setting(
        None, "SMTP port", low=1, high=65535, default_text="`587` with STARTTLS, else `25`")
    smtp_user: str | None = setting(None, "SMTP user name, when the server wants a login")
    smtp_password: str | None = setting(
        None, "SMTP password; sent only over STARTTLS unless the server is on this machine", secret=True)
    smtp_starttls: bool = setting(False, "upgrade the SMTP connection with STARTTLS (certificate checked)")
    alert_email_from: str | None = setting(
        None, "sender address of alert mails; required with `SIPAS_ALERT_EMAILS`", check=_email)
    alert_emails: tuple[str, ...] = setting(
        (), "comma-separated addresses alerts are mailed to (a unit's leaders); none: alerts are only recorded "
        "and shown in the console", check=_emails)
    alert_webhook_url: str | None = setting(
        None, "URL each alert is POSTed to as JSON", check=_http_url)
    alert_webhook_secret: str | None = setting(
        None, "signs each webhook body: `X-SIPAS-Signature: sha256=<hex HMAC-SHA256 of the body>`", secret=True)
    alert_min_answers: int = setting(
        SMALL_CELL, "valid answers a criterion needs in the period before its dissatisfied share may raise an alert",
        low=1, high=1_000_000)
    alert_period: str = setting(
        "month", "the period alerts are counted in and sent once per (local calendar, `SIPAS_TIMEZONE`)",
        choices=PERIODS)

    @property
    def smtp_port_or_default(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return 587 if self.smtp_starttls else 25

    @property
    def sender_messages_per_second(self) -> float:
        if self.messages_per_second is not None:
            return self.messages_per_second
        return 50.0 if self.provider == "simulator" else 1.0

    @property
    def sms_price_table(self) -> dict[str, float] | None:
        return parse_prices(self.sms_prices) if self.sms_prices else None

    @property
    def call_pace(self) -> Pace:
        return Pace(self.speaking_rate, self.answer_seconds)

    @property
    def voice_price_table(self) -> dict[str, float] | None:
        return parse_prices(self.voice_prices, unit="minute") if self.voice_prices else None

    @property
    def sender_calls_per_second(self) -> float:
        if self.calls_per_second is not None:
            return self.calls_per_second
        return 50.0 if self.provider == "simulator" else 1.0

    @property
    def weekly_schedule(self) -> WeeklySchedule | None:
        return WeeklySchedule.parse(self.weekly_export, self.timezone)

    @property
    def report_period_kinds(self) -> tuple[str, ...]:
        return report_kinds(self.report_periods)

    @property
    def webhook_auth_token(self) -> str:
        """The secret webhooks are signed with: Twilio's auth token; with the simulator and
        no token configured, a fixed development value (the simulator signs with it too)."""
        return self.twilio_auth_token or SIMULATOR_AUTH_TOKEN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in DECLARED:
            raw = env.get(declared.env, "").strip()
            if raw:
                values[declared.name] = declared.parse(raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for declared in DECLARED:
            declared.check(getattr(self, declared.name))
        if self.provider == "twilio" and self.lease_seconds <= 2 * self.twilio_http_timeout:
            raise SettingsError(
                f"SIPAS_LEASE_SECONDS: must exceed twice SIPAS_TWILIO_HTTP_TIMEOUT ({self.twilio_http_timeout} s), "
                f"or a slow API call could lose its lease and be placed twice")
        if not self.validate_signatures and self.provider != "simulator":
            raise SettingsError(
                "SIPAS_VALIDATE_SIGNATURES: webhook signatures can be turned off only with "
                f"SIPAS_PROVIDER=simulator, not {self.provider!r}"
            )
        if self.alert_emails:
            for name in ("smtp_host", "alert_email_from"):
                if not getattr(self, name):
                    raise SettingsError(f"SIPAS_{name.upper()}: required when SIPAS_ALERT_EMAILS is set")
        if self.smtp_password and not self.smtp_starttls and self.smtp_host not in (None, *LOOPBACK):
            raise SettingsError("SIPAS_SMTP_PASSWORD: sent only over an encrypted connection: set "
                                "SIPAS_SMTP_STARTTLS=true (or use a relay on this machine)")
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
            # Production: sessions, webhooks and the provider's API only over TLS, and a
            # session-signing key nobody can guess.
            if len(self.secret_key) < MIN_SECRET_KEY:
                raise SettingsError(
                    f"SIPAS_SECRET_KEY: at least {MIN_SECRET_KEY} characters with SIPAS_PROVIDER=twilio, "
                    f"got {len(self.secret_key)} (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
            for name in ("public_base_url", "twilio_api_base_url"):
                url = urlsplit(getattr(self, name))
                # A stand-in on this machine (tests, a local TeXML server) may speak plain http.
                if url.scheme != "https" and url.hostname not in LOOPBACK:
                    raise SettingsError(f"SIPAS_{name.upper()}: must be an https:// URL with SIPAS_PROVIDER=twilio")


@dataclass(frozen=True)
class Declared:
    """One setting as declared: its field, type and :class:`Spec`."""

    name: str
    kind: type           # bool, int, float, str or tuple (of strings); None is always allowed
    default: object
    spec: Spec

    @property
    def env(self) -> str:
        return "SIPAS_" + self.name.upper()

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float)

    def parse(self, raw: str) -> object:
        """The value of a non-empty environment variable; range and checks come later, in
        :meth:`check`, so keyword-built settings get them too."""
        if self.kind is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise SettingsError(f"{self.env}: expected true or false (or 1/0, yes/no, on/off), got {raw!r}")
        if self.kind is int:
            # int() alone takes "1_000" and non-ASCII digits, and fails with its own
            # message past 4300 digits: only plain digits get that far.
            if re.fullmatch(r"[+-]?[0-9]{1,30}", raw):
                return int(raw)
            raise SettingsError(f"{self.env}: expected {self.expected()}, got {raw!r}")
        if self.kind is float:
            try:
                return float(raw)   # nan and inf fail the range check
            except ValueError:
                raise SettingsError(f"{self.env}: expected {self.expected()}, got {raw!r}") from None
        if self.kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw

    def check(self, value: Any) -> None:
        if value is None:
            return
        spec = self.spec
        if self.numeric and not self._in_range(value):
            raise SettingsError(f"{self.env}: expected {self.expected()}, got {value}")
        if spec.choices and value not in spec.choices:
            raise SettingsError(f"{self.env}: expected one of {', '.join(spec.choices)}, got {value!r}")
        if spec.check is not None:
            try:
                spec.check(value)
            except ValueError as exc:
                raise SettingsError(f"{self.env}: {exc}") from None

    def _in_range(self, value: float) -> bool:
        low, high = self.spec.low, self.spec.high
        assert low is not None and high is not None   # _declare makes sure
        # Written so that nan is out of range: every comparison with it is false.
        return (value > low if self.spec.above else value >= low) and value <= high

    def expected(self) -> str:
        """The allowed form, for error messages: 'a number of seconds from 1 to 3600'."""
        unit = self.spec.unit
        if self.kind is int:
            noun = f"a whole number of {unit}" if unit else "an integer"
        else:
            noun = f"a number of {unit}" if unit else "a number"
        low, high = _number(self.spec.low), _number(self.spec.high)
        if self.spec.above:
            return f"{noun} above {low} and at most {high}"
        return f"{noun} from {low} to {high}"

    def markdown_default(self) -> str:
        if self.spec.default_text is not None:
            return self.spec.default_text
        if self.default is None or self.default == ():
            return "—"
        if isinstance(self.default, bool):
            return "`true`" if self.default else "`false`"
        if isinstance(self.default, float):
            return f"`{_number(self.default)}`"
        # Paths under the checkout: the README shows them as the relative paths they are.
        return "`" + str(self.default).replace(str(PROJECT_ROOT) + os.sep, "") + "`"

    def markdown_meaning(self) -> str:
        spec = self.spec
        if self.numeric:
            low, high = _number(spec.low), _number(spec.high)
            allowed = f"over {low}, up to {high}" if spec.above else f"{low}–{high}"
        elif spec.choices:
            quoted = [f"`{choice}`" for choice in spec.choices]
            allowed = ", ".join(quoted[:-1]) + " or " + quoted[-1]
        else:
            return spec.help
        return f"{spec.help} ({allowed})"


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and value == int(value) else str(value)


def _declare(cls: type) -> tuple[Declared, ...]:
    hints = typing.get_type_hints(cls)
    declared = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):   # "str | None": None means unset
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        setting = Declared(f.name, typing.get_origin(kind) or kind, f.default, f.metadata["setting"])
        if setting.numeric and (setting.spec.low is None or setting.spec.high is None):
            raise TypeError(f"{setting.env}: a numeric setting needs both bounds")
        declared.append(setting)
    return tuple(declared)


DECLARED: tuple[Declared, ...] = _declare(Settings)


def markdown_table() -> str:
    """The README's settings table, one row per variable in declaration order."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{d.env}` | {d.markdown_default()} | {d.markdown_meaning()} |" for d in DECLARED]
    return "\n".join(rows) + "\n"
