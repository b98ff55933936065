"""JSON logs: the whole demo (web and worker in one process, as ``scripts/run`` runs it)
with ``SIPAS_LOG_FORMAT=json``. Every line it logs is one JSON object with the fields
the README lists; request, campaign and attempt ids appear; no phone number of the demo
frame (in any of its written forms) and no citizen's name does."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr_service import create_app, logs
from ivr_service.services import access
from ivr_service.settings import Settings

from .conftest import ROOT

pytestmark = pytest.mark.slow

DEMO_FRAME = ROOT / "config" / "demo" / "transactions.csv"
FIELDS = {"time", "level", "logger", "message"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def written_forms(phone: str) -> set[str]:
    """As written, and +84912345678, 84912345678, 0912345678 for any way the frame wrote it
    (invalid numbers included: the frame holds some on purpose)."""
    digits = re.sub(r"\D", "", phone)
    national = digits[2:] if digits.startswith("84") else digits[1:] if digits.startswith("0") else digits
    forms = {phone.strip(), f"+84{national}", f"84{national}", f"0{national}"}
    return {form for form in forms if len(re.sub(r"\D", "", form)) >= 8}


def frame_people() -> tuple[set[str], set[str]]:
    with DEMO_FRAME.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    phones = {form for row in rows for form in written_forms(row["Số điện thoại"])}
    return phones, {row["Chủ hồ sơ"] for row in rows}


def test_the_demo_logs_json_lines_with_ids_and_no_numbers_or_names(clean_db: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SIPAS_DATABASE_URL": clean_db, "SIPAS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "SIPAS_EXPORT_DIR": str(tmp_path / "exports"), "SIPAS_LOG_FORMAT": "json", "SIPAS_LOG_LEVEL": "INFO"}
    env.pop("TEST_DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    outputs: list[tuple[str, str]] = []
    for command in (["db", "upgrade"], ["demo"], ["serve", "--exit-when-done"]):
        done = subprocess.run([sys.executable, "-m", "ivr_service", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append((done.stdout, done.stderr))

    records: list[dict[str, Any]] = []
    for _stdout, stderr in outputs:
        for line in stderr.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"a log line that is not JSON: {line[:300]}")
            assert isinstance(record, dict) and FIELDS <= set(record), line[:300]
            assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
            assert record["time"].endswith("Z") and datetime.fromisoformat(record["time"]).utcoffset() is not None
            records.append(record)
    assert len(records) > 100

    # The ids a reader follows a call and a request by.
    assert any("request_id" in r for r in records)
    assert any("campaign_id" in r and "attempt_id" in r for r in records)
    per_call = [r for r in records if r["message"].endswith("call placed") or "call ended" in r["message"]]
    assert per_call and all(isinstance(r.get("attempt_id"), int) and isinstance(r.get("campaign_id"), int)
                            for r in per_call)
    ended = [r for r in records if "call ended" in r["message"]]
    assert ended and all(re.fullmatch(r"[0-9a-f]{32}", r["request_id"]) for r in ended)  # a status webhook's

    # Nothing of a citizen, in the logs or on the console: no number in any form, no name,
    # and nothing the safety net had to mask (no log call hands it a number).
    phones, names = frame_people()
    everything = "\n".join(out + err for out, err in outputs)
    assert not [p for p in phones if p in everything]
    assert not [n for n in names if n in everything]
    assert logs.MASK not in everything
    assert not logs.PHONE.search(everything.replace("\n", " ")) or _only_non_phones(everything)

    # The demo says how to sign in to the console, and what it prints signs in.
    shown = re.search(rf"operator console: open http://127\.0\.0\.1:{port}/ and sign in as (\S+) / (\S+)",
                      outputs[1][0])
    assert shown is not None, outputs[1][0]
    app = create_app(Settings(database_url=clean_db, public_base_url=f"http://127.0.0.1:{port}"))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        assert access.authenticate(session, shown.group(1), shown.group(2), svc.clock()) is not None
        assert access.authenticate(session, shown.group(1), shown.group(2) + "x", svc.clock()) is None
    svc.db.dispose()


def _only_non_phones(text: str) -> bool:
    """What the phone pattern finds besides numbers (export paths with timestamps) must not be a frame number."""
    phones, _ = frame_people()
    return not {m.group(0) for m in logs.PHONE.finditer(text)} & phones


def test_the_safety_net_masks_numbers_in_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("ivr_service.test", logging.WARNING, __file__, 1,
                               "number %s refused, then %s", ("+84912345678", "0912 345 678"), None)
    try:
        raise ValueError("bad number 84912345678")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert logs.MaskPhones().filter(record)
    token = logs.request_id.set("abc")
    try:
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id.reset(token)
    assert line["message"] == "number <phone> refused, then <phone>"
    assert "84912345678" not in line["exception"] and "<phone>" in line["exception"]
    assert line["request_id"] == "abc" and line["level"] == "WARNING" and line["logger"] == "ivr_service.test"
    for kept in ("attempt 12345 ended", "campaign 7", "took 0.25 s", "token 3f0912345678ab"):
        assert logs.mask_phones(kept) == kept
