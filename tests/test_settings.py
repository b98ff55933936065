"""Settings: each is declared once (ivr_service/settings.py) and parsed, checked, read and
documented from that declaration."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ivr_service.settings import DECLARED, Declared, Settings, SettingsError, markdown_table

from .conftest import ROOT

TWILIO = {"SIPAS_PROVIDER": "twilio", "SIPAS_TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "SIPAS_TWILIO_AUTH_TOKEN": "t",
          "SIPAS_TWILIO_CALLER_IDS": "+842812345678", "SIPAS_SECRET_KEY": "s" * 32,
          "SIPAS_PUBLIC_BASE_URL": "https://survey.example.gov.vn"}

# A value for every setting, as written in the environment and as parsed; none is the default.
SAMPLES: dict[str, tuple[str, object]] = {
    "database_url": ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    "public_base_url": ("https://survey.example.gov.vn", "https://survey.example.gov.vn"),
    "provider": ("twilio", "twilio"),
    "timezone": ("Asia/Bangkok", "Asia/Bangkok"),
    "secret_key": ("  s3cret ", "s3cret"),
    "export_dir": ("/srv/sipas/exports", "/srv/sipas/exports"),
    "export_retention_days": ("30", 30),
    "questionnaire_dir": ("/srv/sipas/questionnaires", "/srv/sipas/questionnaires"),
    "simulator_config": (str(ROOT / "config" / "simulator.example.yaml"),
                         str(ROOT / "config" / "simulator.example.yaml")),
    "simulator_call_log": ("/srv/sipas/calls.log", "/srv/sipas/calls.log"),
    "dispatch_interval": ("0.25", 0.25),
    "esms_base_url": ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
    "dispatch_batch": ("7", 7),
    "calls_per_second": ("2.5", 2.5),
    "max_concurrent_calls": ("30", 30),
    "lease_seconds": ("90", 90.0),
    "stale_call_seconds": ("600", 600.0),
    "weekly_export": ("fri 16:30", "fri 16:30"),
    "report_periods": ("month, quarter", "month, quarter"),
    "report_min_n": ("10", 10),
    "satisfaction_target": ("85.5", 85.5),
    "voice_vi": ("Google.vi-VN-Standard-B", "Google.vi-VN-Standard-B"),
    "voice_en": ("Polly.Joanna", "Polly.Joanna"),
    "log_level": ("debug", "debug"),
    "log_format": ("json", "json"),
    "worker_health_port": ("9101", 9101),
    "validate_signatures": ("off", False),
    "twilio_account_sid": ("AC" + "2" * 32, "AC" + "2" * 32),
    "twilio_auth_token": ("abc123", "abc123"),
    "twilio_caller_ids": ("+842812345678, +842838123456,", ("+842812345678", "+842838123456")),
    "twilio_api_base_url": ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    "twilio_ring_timeout": ("45", 45),
    "twilio_machine_detection": ("Enable", "Enable"),
    "twilio_http_timeout": ("5", 5.0),
    "session_hours": ("12", 12.0),
    "max_request_mb": ("20", 20.0),
    "max_json_kb": ("16", 16.0),
    "max_frame_rows": ("5000", 5000),
    "trusted_proxies": ("1", 1),
    "ratelimit_storage": ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/1"),
    "messages_per_second": ("10", 10.0),
    "twilio_sms_sender": ("UBNDQ1", "UBNDQ1"),
    "zns_base_url": ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
    "zalo_oauth_url": ("http://127.0.0.1:8082", "http://127.0.0.1:8082"),
    "zalo_app_id": ("1234567890", "1234567890"),
    "zalo_app_secret": ("app-s3cret", "app-s3cret"),
    "zalo_oa_secret": ("oa-s3cret", "oa-s3cret"),
    "zns_event_tolerance": ("60", 60.0),
    "survey_base_url": ("https://ks.example.gov.vn", "https://ks.example.gov.vn"),
    "form_rate_limit": ("10 per minute", "10 per minute"),
    "opt_out_words": ("TC, Hủy ,stop", ("TC", "Hủy", "stop")),
    "sms_prices": ('{"*": 300, "Viettel": 250}', '{"*": 300, "Viettel": 250}'),
    "speaking_rate": ("11.5", 11.5),
    "answer_seconds": ("4", 4.0),
    "max_call_seconds": ("420", 420),
    "voice_prices": ('{"*": 1000, "Viettel": 900}', '{"*": 1000, "Viettel": 900}'),
    "smtp_host": ("smtp.example.gov.vn", "smtp.example.gov.vn"),
    "smtp_port": ("2525", 2525),
    "smtp_user": ("canh-bao", "canh-bao"),
    "smtp_password": ("smtp-s3cret", "smtp-s3cret"),
    "smtp_starttls": ("yes", True),
    "alert_email_from": ("sipas@example.gov.vn", "sipas@example.gov.vn"),
    "alert_emails": ("giam-doc@example.gov.vn, pho-giam-doc@example.gov.vn,",
                     ("giam-doc@example.gov.vn", "pho-giam-doc@example.gov.vn")),
    "alert_webhook_url": ("https://hooks.example.gov.vn/sipas", "https://hooks.example.gov.vn/sipas"),
    "alert_webhook_secret": ("hook-s3cret", "hook-s3cret"),
    "alert_min_answers": ("50", 50),
    "alert_period": ("quarter", "quarter"),
    "retention_days": ("365", 365),
    "phone_hash_key": ("k" * 32, "k" * 32),
}
# What a sample needs beside it to pass the rules that tie settings together.
COMPANIONS = {"provider": TWILIO,
              "alert_emails": {"SIPAS_SMTP_HOST": "smtp.example.gov.vn",
                               "SIPAS_ALERT_EMAIL_FROM": "sipas@example.gov.vn"}}
NUMERIC = [d for d in DECLARED if d.numeric]
WITH_CHOICES = [d for d in DECLARED if d.spec.choices]


def env_id(declared: Declared) -> str:
    return declared.env


def error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    return str(raised.value)


def number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def test_defaults_suit_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("instance/sipas.db")
    assert settings.provider == "simulator"
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.sender_calls_per_second == 50


def test_every_declared_setting_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(d.name for d in DECLARED)


@pytest.mark.parametrize("declared", DECLARED, ids=env_id)
def test_every_setting_is_read_from_its_variable(declared: Declared) -> None:
    raw, parsed = SAMPLES[declared.name]
    assert parsed != declared.default
    env = {**COMPANIONS.get(declared.name, {}), declared.env: raw}
    assert getattr(Settings.from_env(env), declared.name) == parsed


def test_a_blank_variable_means_the_default() -> None:
    assert Settings.from_env({"SIPAS_DISPATCH_BATCH": "  ", "SIPAS_TIMEZONE": ""}) == Settings.from_env({})


def test_the_variable_is_sipas_and_the_field_name() -> None:
    assert [d.env for d in DECLARED][:2] == ["SIPAS_DATABASE_URL", "SIPAS_PUBLIC_BASE_URL"]
    assert all(d.env == "SIPAS_" + d.name.upper() for d in DECLARED)


def test_every_setting_is_read_by_the_service() -> None:
    """A setting nobody reads is a promise the service does not keep (as
    SIPAS_MESSAGES_PER_SECOND was): each must be read outside settings.py, directly or
    through a Settings property that is."""
    package = ROOT / "ivr_service"
    sources = "\n".join(path.read_text(encoding="utf-8") for path in sorted(package.rglob("*.py"))
                        if path.name != "settings.py")
    read = set(re.findall(r"\bsettings\.(\w+)", sources))
    module = ast.parse((package / "settings.py").read_text(encoding="utf-8"))
    settings_class = next(node for node in module.body if isinstance(node, ast.ClassDef) and node.name == "Settings")
    for function in settings_class.body:
        if isinstance(function, ast.FunctionDef) and function.name in read and any(
                isinstance(d, ast.Name) and d.id == "property" for d in function.decorator_list):
            read |= {node.attr for node in ast.walk(function) if isinstance(node, ast.Attribute)
                     and isinstance(node.value, ast.Name) and node.value.id == "self"}
    assert "calls_per_second" in read          # only through sender_calls_per_second
    assert [d.env for d in DECLARED if d.name not in read] == []


@pytest.mark.parametrize("declared", NUMERIC, ids=env_id)
def test_numeric_settings_take_their_bounds(declared: Declared) -> None:
    low, high = declared.spec.low, declared.spec.high
    assert low is not None and high is not None
    for value in [high] if declared.spec.above else [low, high]:
        assert getattr(Settings.from_env({declared.env: number(value)}), declared.name) == value


@pytest.mark.parametrize("declared", NUMERIC, ids=env_id)
def test_numeric_settings_refuse_out_of_range_and_malformed_values(declared: Declared) -> None:
    low, high = declared.spec.low, declared.spec.high
    assert low is not None and high is not None
    step = 1 if declared.kind is int else 0.5
    below = low if declared.spec.above else low - step
    bad = [number(below), number(high + step), "1e99", "-1e99", "99999999999999999999", "-99999999999999999999",
           "9" * 5000, "soon", "nan", "inf", "-inf", "1,5"]
    if declared.kind is int:
        bad += ["2.5", "1e2", "0x10", "1_0", "٣"]
    for raw in bad:
        message = error({declared.env: raw})
        assert message.startswith(declared.env + ":"), raw
        assert declared.expected() in message, raw    # the range, e.g. "from 1 to 3600"
    assert f"to {number(high)}" in declared.expected() or f"at most {number(high)}" in declared.expected()
    # Built by keyword, not from the environment: the same bounds.
    too_high: dict[str, Any] = {declared.name: high + step}
    with pytest.raises(SettingsError, match=declared.env):
        Settings(**too_high).validate()


def test_an_integer_setting_names_its_range_for_a_huge_value() -> None:
    assert error({"SIPAS_DISPATCH_BATCH": "99999999999999999999"}) == (
        "SIPAS_DISPATCH_BATCH: expected an integer from 1 to 10000, got 99999999999999999999")
    assert error({"SIPAS_TWILIO_RING_TIMEOUT": "1e99"}) == (
        "SIPAS_TWILIO_RING_TIMEOUT: expected a whole number of seconds from 5 to 600, got '1e99'")
    assert error({"SIPAS_TWILIO_HTTP_TIMEOUT": "0"}) == (
        "SIPAS_TWILIO_HTTP_TIMEOUT: expected a number of seconds above 0 and at most 120, got 0.0")


@pytest.mark.parametrize("declared", WITH_CHOICES, ids=env_id)
def test_choices_are_enforced(declared: Declared) -> None:
    for choice in declared.spec.choices:
        env = {**COMPANIONS.get(declared.name, {}), declared.env: choice}
        assert getattr(Settings.from_env(env), declared.name) == choice
    for wrong in ("nexmo", declared.spec.choices[-1].upper(), declared.spec.choices[-1] + "x"):
        message = error({declared.env: wrong})
        assert message.startswith(declared.env + ": expected one of ")
        assert all(choice in message for choice in declared.spec.choices)
    unknown: dict[str, Any] = {declared.name: "nexmo"}
    with pytest.raises(SettingsError, match=declared.env):
        Settings(**unknown).validate()


def test_switches_take_the_usual_words_in_any_case() -> None:
    for word in ("1", "true", "YES", "On"):
        assert Settings.from_env({"SIPAS_VALIDATE_SIGNATURES": word}).validate_signatures is True
    for word in ("0", "False", "no", "OFF"):
        assert Settings.from_env({"SIPAS_VALIDATE_SIGNATURES": word}).validate_signatures is False
    assert error({"SIPAS_VALIDATE_SIGNATURES": "maybe"}).startswith("SIPAS_VALIDATE_SIGNATURES: expected true or false")


@pytest.mark.parametrize("env, variable", [
    ({"SIPAS_DATABASE_URL": "not a url"}, "SIPAS_DATABASE_URL"),
    ({"SIPAS_DATABASE_URL": "mysql://x@y/z"}, "SIPAS_DATABASE_URL"),
    ({"SIPAS_PUBLIC_BASE_URL": "survey.example"}, "SIPAS_PUBLIC_BASE_URL"),
    ({"SIPAS_PUBLIC_BASE_URL": "https://survey.example?x=1"}, "SIPAS_PUBLIC_BASE_URL"),
    ({"SIPAS_PROVIDER": "nexmo"}, "SIPAS_PROVIDER"),
    ({"SIPAS_TIMEZONE": "Mars/Olympus"}, "SIPAS_TIMEZONE"),
    ({"SIPAS_WEEKLY_EXPORT": "sunday noon"}, "SIPAS_WEEKLY_EXPORT"),
    ({"SIPAS_DISPATCH_INTERVAL": "soon"}, "SIPAS_DISPATCH_INTERVAL"),
    ({"SIPAS_DISPATCH_BATCH": "0"}, "SIPAS_DISPATCH_BATCH"),
    ({"SIPAS_LOG_LEVEL": "LOUD"}, "SIPAS_LOG_LEVEL"),
    ({"SIPAS_SIMULATOR_CONFIG": "/nonexistent.yaml"}, "SIPAS_SIMULATOR_CONFIG"),
    ({"SIPAS_PROVIDER": "twilio"}, "SIPAS_TWILIO_ACCOUNT_SID"),
    ({"SIPAS_PROVIDER": "twilio", "SIPAS_TWILIO_ACCOUNT_SID": "AC1", "SIPAS_TWILIO_AUTH_TOKEN": "t",
      "SIPAS_TWILIO_CALLER_IDS": "+842812345678"}, "SIPAS_SECRET_KEY"),
    ({**TWILIO, "SIPAS_TWILIO_ACCOUNT_SID": "SK1"}, "SIPAS_TWILIO_ACCOUNT_SID"),
    ({**TWILIO, "SIPAS_LEASE_SECONDS": "20"}, "SIPAS_LEASE_SECONDS"),
    ({"SIPAS_TWILIO_CALLER_IDS": "0281234"}, "SIPAS_TWILIO_CALLER_IDS"),
    ({"SIPAS_TWILIO_CALLER_IDS": "+842812345678,+84٢812345678"}, "SIPAS_TWILIO_CALLER_IDS"),
    ({"SIPAS_TWILIO_API_BASE_URL": "api.twilio.com"}, "SIPAS_TWILIO_API_BASE_URL"),
    ({**TWILIO, "SIPAS_SECRET_KEY": "short"}, "SIPAS_SECRET_KEY"),
    ({**TWILIO, "SIPAS_PUBLIC_BASE_URL": "http://survey.example.gov.vn"}, "SIPAS_PUBLIC_BASE_URL"),
    ({**TWILIO, "SIPAS_TWILIO_API_BASE_URL": "http://api.twilio.com"}, "SIPAS_TWILIO_API_BASE_URL"),
    ({"SIPAS_RATELIMIT_STORAGE": "mongodb://x"}, "SIPAS_RATELIMIT_STORAGE"),
    ({"SIPAS_SESSION_HOURS": "0"}, "SIPAS_SESSION_HOURS"),
    ({"SIPAS_ALERT_EMAILS": "giam-doc@example.gov.vn"}, "SIPAS_SMTP_HOST"),
    ({"SIPAS_ALERT_EMAILS": "giam-doc@example.gov.vn", "SIPAS_SMTP_HOST": "smtp.example.gov.vn"},
     "SIPAS_ALERT_EMAIL_FROM"),
    ({"SIPAS_ALERT_EMAILS": "giam-doc; pho@example.gov.vn"}, "SIPAS_ALERT_EMAILS"),
    ({"SIPAS_ALERT_WEBHOOK_URL": "hooks.example.gov.vn"}, "SIPAS_ALERT_WEBHOOK_URL"),
    ({"SIPAS_SMTP_HOST": "smtp.example.gov.vn", "SIPAS_SMTP_PASSWORD": "p"}, "SIPAS_SMTP_PASSWORD"),
    ({"SIPAS_ALERT_PERIOD": "week"}, "SIPAS_ALERT_PERIOD"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    assert error(env).startswith(variable + ":")


def test_lease_and_signature_rules_hold_only_with_twilio() -> None:
    assert Settings.from_env({"SIPAS_LEASE_SECONDS": "20"}).lease_seconds == 20
    assert Settings.from_env({**TWILIO, "SIPAS_LEASE_SECONDS": "21"}).lease_seconds == 21
    assert error({**TWILIO, "SIPAS_VALIDATE_SIGNATURES": "false"}).startswith("SIPAS_VALIDATE_SIGNATURES:")


def test_the_smtp_port_follows_starttls_unless_given() -> None:
    assert Settings.from_env({}).smtp_port_or_default == 25
    assert Settings.from_env({"SIPAS_SMTP_STARTTLS": "true"}).smtp_port_or_default == 587
    assert Settings.from_env({"SIPAS_SMTP_STARTTLS": "true", "SIPAS_SMTP_PORT": "465"}).smtp_port_or_default == 465
    # A relay on this machine may take the password in clear.
    assert Settings.from_env({"SIPAS_SMTP_HOST": "127.0.0.1", "SIPAS_SMTP_PASSWORD": "p"}).smtp_password == "p"


def test_secrets_stay_out_of_the_repr() -> None:
    shown = repr(Settings(secret_key="s3cret-key", twilio_auth_token="s3cret-token", smtp_password="s3cret-smtp",
                          alert_webhook_secret="s3cret-hook"))
    assert "s3cret" not in shown and "database_url=" in shown


def test_the_readme_table_is_the_declaration() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("<!-- settings-table:begin -->\n")[2].partition("<!-- settings-table:end -->")[0]
    assert section == markdown_table()
    assert "| `SIPAS_DISPATCH_BATCH` | `50` | most attempts a worker claims in one dispatch round" in section
    assert "| `SIPAS_SECRET_KEY` | random per process |" in section
    assert "| `SIPAS_EXPORT_DIR` | `instance/exports` |" in section   # relative to the checkout
    assert "(5–600)" in section and "(`simulator` or `twilio`)" in section


def test_the_table_script_finds_and_rewrites_a_stale_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(current.replace("| `SIPAS_DISPATCH_BATCH` | `50` |", "| `SIPAS_DISPATCH_BATCH` | `5` |"),
                      encoding="utf-8")
    script = [sys.executable, str(ROOT / "scripts" / "settings_table.py")]
    check = subprocess.run([*script, "--check", str(readme)], capture_output=True, text=True)
    assert check.returncode == 1 and "settings table differs" in check.stderr
    subprocess.run([*script, str(readme)], check=True)
    assert readme.read_text(encoding="utf-8") == current


def test_bad_setting_stops_the_cli_with_the_variable_name(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    result = subprocess.run(
        [sys.executable, "-m", "ivr_service", "db", "upgrade"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SIPAS_DATABASE_URL": f"sqlite:///{db}", "SIPAS_TIMEZONE": "Nowhere"},
    )
    assert result.returncode != 0
    assert "SIPAS_TIMEZONE" in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()  # nothing was created


def test_production_needs_tls_and_a_real_secret_but_a_local_stand_in_may_use_http() -> None:
    local = Settings.from_env({**TWILIO, "SIPAS_TWILIO_API_BASE_URL": "http://127.0.0.1:8080",
                               "SIPAS_PUBLIC_BASE_URL": "http://localhost:5000"})
    assert local.twilio_api_base_url == "http://127.0.0.1:8080"
    assert "at least 32 characters" in error({**TWILIO, "SIPAS_SECRET_KEY": "s" * 31})


def test_a_database_password_is_never_shown_in_an_error() -> None:
    message = error({"SIPAS_DATABASE_URL": "postgresql://sipas:Hunter2-secret@db:bad-port/x"})
    assert message.startswith("SIPAS_DATABASE_URL:") and "Hunter2" not in message
