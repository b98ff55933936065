"""Prometheus metrics under gunicorn: three web processes count in their own files
(``PROMETHEUS_MULTIPROC_DIR``), and a scrape of any of them sums all, the dead ones
included. Labels are few and never a token, an id or a phone number; an anonymous
scrape is refused."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from ivr_service import create_app, metrics
from ivr_service.services import access
from ivr_service.settings import Settings, SettingsError
from ivr_service.worker import Worker

from .conftest import ROOT, RecordingProvider, phones

CONTACTS = 24
UNKNOWN = 12
ALWAYS_OPEN = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]], "public_holidays": None}
STATUS_ROUTE = "/voice/<token>/status"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)   # polling for the port, not timing anything
    raise AssertionError("gunicorn did not start")


@pytest.fixture
def web(clean_db: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "SIPAS_DATABASE_URL": clean_db, "SIPAS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "SIPAS_LOG_LEVEL": "WARNING", "SIPAS_EXPORT_DIR": str(tmp_path / "exports"),
           "SIPAS_SECRET_KEY": "s" * 32, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    env.pop("TEST_DATABASE_URL", None)
    # Sync workers serve one request at a time, so concurrent requests spread over them.
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:ivr_service.gunicorn_conf",
                                "--workers", "3", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                                "ivr_service:create_app()"], cwd=ROOT, env=env)
    app = create_app(Settings.from_env({k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}))
    try:
        wait_for(port, process)
        yield {"port": port, "app": app, "dir": metrics_dir, "process": process}
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        app.extensions["sipas"].db.dispose()


def request(port: int, path: str, *, form: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed_status(port: int, token: str, status: str) -> int:
    path = f"/voice/{token}/status"
    form = {"CallSid": "CA" + secrets.token_hex(16), "CallStatus": status}
    signature = RequestValidator(Settings().webhook_auth_token).compute_signature(
        f"http://127.0.0.1:{port}{path}", form)
    return request(port, path, form=form, headers={"X-Twilio-Signature": signature})[0]


def scrape(port: int, token: str) -> dict[str, Any]:
    status, body = request(port, "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body[:300]
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    return sum(s.value for family in families.values() for s in family.samples
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


def counting_pids(metrics_dir: Path) -> set[int]:
    return {int(m.group(1)) for f in metrics_dir.iterdir() if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))}


def test_counters_sum_over_the_gunicorn_processes_and_labels_stay_small(
        web: dict[str, Any], make_campaign: Any, claim: Any, make_agency: Any) -> None:
    app, port = web["app"], web["port"]
    svc = app.extensions["sipas"]
    frame = [(("Đất đai", "Hộ tịch")[i % 2], f"Trần Thị {i}", f"091{i:07d}") for i in range(CONTACTS)]
    make_campaign(frame, app=app, window=ALWAYS_OPEN)
    claimed = claim(app=app)
    assert len(claimed) == CONTACTS
    district = make_agency(app=app)
    with svc.db.begin() as session:
        reader = access.create_token(session, "prometheus", ["metrics:read"], None, svc.clock()).secret
        other = access.create_token(session, "reader", ["campaigns:read"], None, svc.clock()).secret
        local = access.create_token(session, "district", ["metrics:read"], district, svc.clock()).secret

    # Refused: anonymous (401), without the scope (403), an agency's token (404: totals span all agencies).
    assert request(port, "/metrics")[0] == 401
    assert request(port, "/metrics", headers={"Authorization": f"Bearer {other}"})[0] == 403
    assert request(port, "/metrics", headers={"Authorization": f"Bearer {local}"})[0] == 404
    assert request(port, "/livez")[0] == 200 and request(port, "/readyz")[0] == 200

    with ThreadPoolExecutor(9) as pool:
        busy = list(pool.map(lambda c: signed_status(port, c.token, "busy"), claimed))
        assert busy == [204] * CONTACTS
        # Requests for unknown calls until at least two processes have counted some (a
        # process still loading the app when the first burst came counts nothing).
        unknown, pids, deadline = 0, counting_pids(web["dir"]), time.monotonic() + 60
        while unknown < UNKNOWN or (len(pids) < 2 and time.monotonic() < deadline):
            burst = list(pool.map(lambda _: signed_status(port, secrets.token_hex(16), "busy"), range(UNKNOWN)))
            assert burst == [404] * UNKNOWN
            unknown += UNKNOWN
            pids = counting_pids(web["dir"])
    assert len(pids) >= 2, f"the requests reached one process only: {pids}"

    scrapes = [scrape(port, reader) for _ in range(6)]     # served by whichever process accepts
    for families in scrapes:
        assert value(families, "sipas_webhook_requests_total", route=STATUS_ROUTE, status="204") == CONTACTS
        assert value(families, "sipas_webhook_requests_total", route=STATUS_ROUTE, status="404") == unknown
        assert value(families, "sipas_webhook_duration_seconds_count", route=STATUS_ROUTE) == CONTACTS + unknown
        assert value(families, "sipas_webhook_duration_seconds_bucket", route=STATUS_ROUTE, le="+Inf") == \
            CONTACTS + unknown
        assert value(families, "sipas_attempts_ended_total", channel="voice", outcome="busy") == CONTACTS
        # Progress from the tallies: the busy contacts wait for their retry.
        assert value(families, "sipas_campaigns", status="running") == 1
        assert value(families, "sipas_contacts", campaign_status="running") == CONTACTS
        assert value(families, "sipas_attempts", campaign_status="running", status="busy") == CONTACTS
    assert len({frozenset((s.name, tuple(sorted(s.labels.items())), s.value)
                          for f in scr.values() if f.name.startswith("sipas_webhook_requests") for s in f.samples)
                for scr in scrapes}) == 1

    # Few label values, none of them a token, an id, a number or a name.
    hidden = ({c.token for c in claimed} | {c.to for c in claimed} | {c.to.removeprefix("+") for c in claimed}
              | {"0" + c.to.removeprefix("+84") for c in claimed})
    for family in scrapes[-1].values():
        if not family.name.startswith("sipas_"):
            continue
        label_sets = {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in family.samples}
        assert len(label_sets) <= 30, (family.name, len(label_sets))
        for labels in label_sets:
            for name, text in labels:
                assert name not in ("campaign", "campaign_id", "attempt", "token", "phone", "pid"), family.name
                assert text not in hidden and not re.search(r"[0-9a-f]{16}|\d{5}", text), (family.name, name, text)
                assert "Trần" not in text

    # A web process dies: what it counted stays in the sum (gunicorn's child_exit marks it dead).
    victim = next(iter(pids - {web["process"].pid}))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in {int(p) for p in os.listdir("/proc") if p.isdigit()} and time.monotonic() < deadline:
        time.sleep(0.05)    # waiting for the kernel to reap it, not timing anything
    after = scrape(port, reader)
    assert value(after, "sipas_webhook_requests_total", route=STATUS_ROUTE, status="204") == CONTACTS
    assert value(after, "sipas_attempts_ended_total", channel="voice", outcome="busy") == CONTACTS


def test_provider_codes_and_pacing_buckets_make_few_label_values() -> None:
    assert metrics.bucket_kind("sender:sms:account:17") == "sender:sms:account"
    assert metrics.bucket_kind("campaign:123") == "campaign"
    metrics.provider_error("twilio", "permanent", "21211")
    metrics.provider_error("esms", "retryable", "a message from the provider with +84912345678 in it")
    metrics.provider_error("esms", "unknown", None)
    codes = {s.labels["code"] for s in metrics.PROVIDER_ERRORS.collect()[0].samples}
    assert {"21211", "other", "none"} <= codes and not any("84912345678" in c for c in codes)


def test_metrics_in_one_process_without_a_multiprocess_directory(app: Any, client: Any) -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    response = client.get("/metrics", headers={"Authorization": f"Bearer {app.config['TEST_API_TOKEN']}"})
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"sipas_campaigns", "sipas_contacts", "sipas_attempts", "sipas_webhook_requests"} <= names
    assert client.get("/metrics", auth=False).status_code == 401


def test_an_unusable_multiprocess_directory_stops_start_up(make_settings: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR: .* is not a writable directory"):
        create_app(make_settings())


def test_a_dispatch_round_counts_its_claims_its_duration_and_its_pacing_waits(
        app: Any, make_campaign: Any) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    make_campaign(phones(5), calls_per_second=1)   # one call a second: the round takes one, then waits
    before = (sample("sipas_dispatch_claims_total", channel="voice"),
              sample("sipas_dispatch_round_seconds_count", channel="voice"),
              sample("sipas_pacing_waits_total", bucket="campaign"))
    provider = RecordingProvider()
    placed = Worker(app, provider=provider).dispatch()
    after = (sample("sipas_dispatch_claims_total", channel="voice"),
             sample("sipas_dispatch_round_seconds_count", channel="voice"),
             sample("sipas_pacing_waits_total", bucket="campaign"))
    assert placed == len(provider.placed) == 1
    assert after[0] - before[0] == 1          # what was claimed
    assert after[1] - before[1] == 1          # one round timed
    assert after[2] - before[2] >= 1          # cut short by the campaign's pace
