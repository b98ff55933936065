from __future__ import annotations

import subprocess
import sys

import pytest

from ivr_service.settings import Settings, SettingsError

from .conftest import ROOT


def test_defaults_suit_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("instance/sipas.db")
    assert settings.provider == "simulator"
    assert settings.timezone == "Asia/Ho_Chi_Minh"


def test_values_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"SIPAS_DATABASE_URL": "postgresql://u@h/db", "SIPAS_DISPATCH_BATCH": "7",
                                  "SIPAS_PUBLIC_BASE_URL": "https://survey.example.gov.vn"})
    assert (settings.database_url, settings.dispatch_batch) == ("postgresql://u@h/db", 7)


@pytest.mark.parametrize("env, variable", [
    ({"SIPAS_DATABASE_URL": "not a url"}, "SIPAS_DATABASE_URL"),
    ({"SIPAS_DATABASE_URL": "mysql://x@y/z"}, "SIPAS_DATABASE_URL"),
    ({"SIPAS_PUBLIC_BASE_URL": "survey.example"}, "SIPAS_PUBLIC_BASE_URL"),
    ({"SIPAS_PROVIDER": "nexmo"}, "SIPAS_PROVIDER"),
    ({"SIPAS_TIMEZONE": "Mars/Olympus"}, "SIPAS_TIMEZONE"),
    ({"SIPAS_DISPATCH_INTERVAL": "soon"}, "SIPAS_DISPATCH_INTERVAL"),
    ({"SIPAS_DISPATCH_BATCH": "0"}, "SIPAS_DISPATCH_BATCH"),
    ({"SIPAS_LOG_LEVEL": "LOUD"}, "SIPAS_LOG_LEVEL"),
    ({"SIPAS_SIMULATOR_CONFIG": "/nonexistent.yaml"}, "SIPAS_SIMULATOR_CONFIG"),
    ({"SIPAS_PROVIDER": "twilio"}, "SIPAS_TWILIO_ACCOUNT_SID"),
    ({"SIPAS_PROVIDER": "twilio", "SIPAS_TWILIO_ACCOUNT_SID": "AC1", "SIPAS_TWILIO_AUTH_TOKEN": "t",
      "SIPAS_TWILIO_CALLER_IDS": "+842812345678"}, "SIPAS_SECRET_KEY"),
    ({"SIPAS_TWILIO_CALLER_IDS": "0281234"}, "SIPAS_TWILIO_CALLER_IDS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert str(error.value).startswith(variable + ":")


def test_bad_setting_stops_the_cli_with_the_variable_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "never.db"
    result = subprocess.run(
        [sys.executable, "-m", "ivr_service", "db", "upgrade"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SIPAS_DATABASE_URL": f"sqlite:///{db}", "SIPAS_TIMEZONE": "Nowhere"},
    )
    assert result.returncode != 0
    assert "SIPAS_TIMEZONE" in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()  # nothing was created
