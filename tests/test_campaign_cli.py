"""The campaign engine through the command line: create and configure with windows, dates,
target and channel plan; start, pause, resume, cancel; progress as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import ROOT

DEMO = ROOT / "config" / "demo" / "transactions.csv"


def test_campaign_lifecycle_and_configuration_from_the_cli(run_cli: Any, tmp_path: Path) -> None:
    env = {"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("create-agency", "S", "Sở Demo", env=env).returncode == 0
    created = run_cli("create-campaign", "--agency-id", "1", "--name", "Quý 4", "--ends-at", "2026-12-20T17:00+07:00",
                      "--target-completes", "120", "--channel-plan", "voice:3,sms:1", "--spread",
                      "--window", '{"closed_dates": ["2026-12-24"]}', env=env)
    assert created.returncode == 0 and "campaign 1 (draft)" in created.stdout, created.stderr

    configured = run_cli("configure-campaign", "1", "--target-completes", "100", "--calls-per-second", "2", env=env)
    assert configured.returncode == 0, configured.stderr
    config = json.loads(configured.stdout)
    assert (config["target_completes"], config["calls_per_second"], config["spread"]) == (100, 2.0, True)
    assert config["channel_plan"] == [{"channel": "voice", "max_attempts": 3}, {"channel": "sms", "max_attempts": 1}]
    assert config["window"] == {"closed_dates": ["2026-12-24"], "timezone": "Asia/Ho_Chi_Minh"}
    assert config["ends_at"].startswith("2026-12-20 10:00:00")          # stored in UTC

    # Bad values name the option or the setting, and change nothing.
    for args, words in ((["--ends-at", "20/12/2026"], "--ends-at"),
                        (["--window", "[1]"], "--window"),
                        (["--channel-plan", "voice:x"], "--channel-plan"),
                        (["--ends-at", "none"], "spread: needs ends_at")):
        bad = run_cli("configure-campaign", "1", *args, env=env)
        assert bad.returncode != 0 and words in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
    assert json.loads(run_cli("configure-campaign", "1", "--name", "Quý 4", env=env).stdout)["ends_at"] is not None
    nothing = run_cli("configure-campaign", "1", env=env)
    assert nothing.returncode != 0 and "nothing to change" in nothing.stderr

    assert run_cli("import-frame", "1", str(DEMO), "--seed", "3", env=env).returncode == 0
    assert "campaign 1 is running" in run_cli("campaign", "start", "1", env=env).stdout
    progress = json.loads(run_cli("progress", "1", env=env).stdout)
    assert progress["status"] == "running" and progress["by_status"]["pending"] == progress["contacts"] > 0
    assert len(progress["attempts_per_hour"]) == 24 and progress["calls_in_progress"] == 0
    no_reason = run_cli("campaign", "pause", "1", env=env)
    assert no_reason.returncode != 0 and "--reason is required" in no_reason.stderr
    assert "is paused" in run_cli("campaign", "pause", "1", "--reason", "Tết", env=env).stdout
    assert "is running" in run_cli("campaign", "resume", "1", env=env).stdout
    assert "is cancelled" in run_cli("campaign", "cancel", "1", "--reason", "xong", env=env).stdout
    pauses = [json.loads(line) for line in run_cli("audit", "--action", "campaign_pause", env=env).stdout.splitlines()]
    assert [(e["target"], e["detail"]["reason"]) for e in pauses] == [("campaign:1", "Tết")]
    assert pauses[0]["actor"].startswith("cli:")
    closed = json.loads(run_cli("progress", "1", env=env).stdout)
    assert closed["by_status"]["done"] == closed["contacts"]
    assert sum(closed["by_disposition"].values()) == closed["contacts"] and "RR1" in closed["rates"]
    final = run_cli("configure-campaign", "1", "--name", "x", env=env)
    assert final.returncode != 0 and "cancelled" in final.stderr


def test_the_channel_plan_option_sets_the_two_way_sms_mode(run_cli: Any, tmp_path: Path) -> None:
    env = {"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("create-agency", "S", "Sở Demo", env=env).returncode == 0
    created = run_cli("create-campaign", "--agency-id", "1", "--name", "Hai chiều", "--questionnaire",
                      "sipas-sms-short", "--channel-plan", "sms:1:two_way", env=env)
    assert created.returncode == 0, created.stderr
    shown = json.loads(run_cli("configure-campaign", "1", "--name", "Hai chiều", env=env).stdout)
    assert shown["channel_plan"] == [{"channel": "sms", "max_attempts": 1, "mode": "two_way", "session_hours": 24}]
    configured = run_cli("configure-campaign", "1", "--channel-plan", "voice:2,sms:1:two_way:12", env=env)
    assert configured.returncode == 0, configured.stderr
    assert json.loads(configured.stdout)["channel_plan"] == [
        {"channel": "voice", "max_attempts": 2}, {"channel": "sms", "max_attempts": 1, "mode": "two_way",
                                                  "session_hours": 12}]
    # Bad modes and hours name the option (the parser) or the step (the campaign service); nothing changes.
    for plan, words in (("sms:1:two_way:x", "--channel-plan"), ("sms:1:two_way:12:9", "--channel-plan"),
                        ("sms:1:echo", "mode must be one of"), ("sms:1:two_way:99", "session_hours"),
                        ("voice:1:two_way", "belong to the sms step")):
        bad = run_cli("configure-campaign", "1", "--channel-plan", plan, env=env)
        assert bad.returncode != 0 and words in bad.stderr and "Traceback" not in bad.stderr, (plan, bad.stderr)
    # The long questionnaire does not fit the 24 h cap by two-way SMS: said at creation.
    too_long = run_cli("create-campaign", "--agency-id", "1", "--name", "Dài", "--channel-plan", "sms:1:two_way",
                       env=env)
    assert too_long.returncode != 0 and "channel_plan" in too_long.stderr, too_long.stderr
    assert json.loads(run_cli("configure-campaign", "1", "--name", "Hai chiều", env=env).stdout)["channel_plan"][1] \
        == {"channel": "sms", "max_attempts": 1, "mode": "two_way", "session_hours": 12}


def test_speech_and_the_hotline_are_campaign_options(run_cli: Any, tmp_path: Path) -> None:
    env = {"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("create-agency", "S", "Sở Demo", env=env).returncode == 0
    created = run_cli("create-campaign", "--agency-id", "1", "--name", "Nói", "--speech", "--hotline", "1022",
                      env=env)
    assert created.returncode == 0, created.stderr
    shown = json.loads(run_cli("configure-campaign", "1", "--name", "Nói", env=env).stdout)
    assert (shown["speech_input"], shown["hotline"]) == (True, "1022")
    changed = json.loads(run_cli("configure-campaign", "1", "--no-speech", "--hotline", "none", env=env).stdout)
    assert (changed["speech_input"], changed["hotline"]) == (False, None)
    bad = run_cli("configure-campaign", "1", "--hotline", "gọi tôi", env=env)
    assert bad.returncode != 0 and "hotline" in bad.stderr and "Traceback" not in bad.stderr
