"""Errors at each edge: services raise one family (InvalidInput, Conflict, NotFound) that
the API answers in one JSON shape documented in OpenAPI, the webhooks answer in plain
text, and the command line prints as a message with a non-zero exit and no traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ivr_service.cli import cli
from ivr_service.services import errors
from ivr_service.web.errors import STATUS, status_of

from .conftest import ROOT

DEMO_FRAME = ROOT / "config" / "demo" / "transactions.csv"
HUGE = "99999999999999999999"


def _is_error_body(body: Any) -> bool:
    return isinstance(body, dict) and set(body) == {"message", "field", "detail"} and isinstance(body["message"], str)


def _agency(client: Any, code: str = "STNMT") -> int:
    response = client.post("/api/v1/agencies", json={"code": code, "name": "Sở Tài nguyên và Môi trường"})
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def test_every_service_error_has_one_http_status() -> None:
    family = [cls for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.ServiceError) and cls is not errors.ServiceError]
    assert {cls.__name__ for cls in family} == {"InvalidInput", "Conflict", "NotFound"}
    assert set(STATUS) == set(family)
    assert [status_of(cls("x")) for cls in (errors.InvalidInput, errors.NotFound, errors.Conflict)] == [400, 404, 409]
    assert errors.invalid("window", "expected an object").message == "window: expected an object"
    assert errors.invalid("window", "expected an object").field == "window"


def test_the_api_answers_every_error_in_one_shape_naming_the_field(client: Any) -> None:
    agency_id = _agency(client)
    created = client.post("/api/v1/campaigns", json={"agency_id": agency_id, "name": "Quý 4"})
    campaign_id = created.json["id"]
    cases = [
        # (request, status, field, words in the message)
        (lambda: client.post("/api/v1/agencies", json={"code": "STNMT", "name": "x"}), 409, "code", "'STNMT'"),
        (lambda: client.patch(f"/api/v1/campaigns/{campaign_id}", json={"window": {"weekdays": [9]}}),
         400, "window", "weekdays"),
        (lambda: client.patch(f"/api/v1/campaigns/{campaign_id}", json={"channel_plan": [{"channel": "fax"}]}),
         400, "channel_plan", "fax"),
        (lambda: client.post("/api/v1/campaigns", json={"agency_id": agency_id, "name": "x",
                                                        "questionnaire": "sipas-1999"}),
         400, "questionnaire", "sipas-1999"),
        (lambda: client.post("/api/v1/agencies", json={"name": "x"}), 422, "code", "code: Missing data"),
        (lambda: client.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": "start"}),
         409, None, "no sampled contacts"),
        (lambda: client.get("/api/v1/campaigns/999"), 404, None, "campaign 999 not found"),
        (lambda: client.get(f"/api/v1/campaigns/{HUGE}"), 404, None, f"campaign {HUGE} not found"),
        (lambda: client.post(f"/api/v1/campaigns/{HUGE}/actions", json={"action": "start"}), 404, None, HUGE),
        (lambda: client.get("/api/v1/no-such-thing"), 404, None, "Not Found"),
    ]
    for send, status, field, words in cases:
        response = send()
        assert response.status_code == status, (status, response.json)
        assert _is_error_body(response.json), response.json
        assert response.json["field"] == field and words in response.json["message"], response.json


def test_frame_parameters_are_bounded_by_the_service(client: Any) -> None:
    campaign_id = client.post("/api/v1/campaigns", json={"agency_id": _agency(client), "name": "Q"}).json["id"]
    for form, status, field in (({"columns": "{not json"}, 400, "columns"),
                                ({"rule": "fixed"}, 400, "rule"),
                                ({"seed": HUGE}, 422, "seed"),
                                ({"recent_days": "99999"}, 422, "recent_days")):
        data = {"file": (io.BytesIO(DEMO_FRAME.read_bytes()), "ds.csv"), **form}
        response = client.post(f"/api/v1/campaigns/{campaign_id}/frame", data=data,
                               content_type="multipart/form-data")
        assert response.status_code == status and response.json["field"] == field, (form, response.json)
        assert response.json["message"].startswith(f"{field}: "), response.json


def test_the_openapi_document_states_the_error_shape(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    documented = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("4"):
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                assert set(schemas[ref]["properties"]) == {"message", "field", "detail"}, (path, method, status)
                documented += 1
    actions = spec["paths"]["/api/v1/campaigns/{campaign_id}/actions"]["post"]["responses"]
    assert {"404", "409", "422"} <= set(actions)
    assert documented > 20


def test_webhooks_answer_service_errors_in_plain_text(client: Any) -> None:
    unknown = client.post("/voice/" + "0" * 32 + "/status", data={"CallSid": "CA" + "0" * 32,
                                                                  "CallStatus": "completed"})
    assert unknown.status_code == 404 and unknown.mimetype == "text/plain"
    assert "unknown call attempt" in unknown.get_data(as_text=True)
    bad_sid = client.post("/voice/" + "0" * 32 + "/status", data={"CallSid": "nope", "CallStatus": "completed"})
    assert bad_sid.status_code == 400 and bad_sid.get_data(as_text=True).startswith("CallSid: ")


@pytest.fixture
def run(tmp_path: Path) -> Any:
    env = {"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SIPAS_EXPORT_DIR": str(tmp_path / "out")}
    runner = CliRunner()

    def invoke(*args: str, **extra_env: str) -> Result:
        return runner.invoke(cli, list(args), env={**env, **extra_env})

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def _clean_failure(result: Result, exit_code: int, words: str) -> None:
    # SystemExit is how click ends a command that failed cleanly; anything else escaped.
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == exit_code and words in result.output, result.output
    assert "Traceback" not in result.output


def test_the_cli_prints_service_errors_without_a_traceback(run: Any) -> None:
    assert run("create-agency", "S", "Sở Demo").exit_code == 0
    _clean_failure(run("create-agency", "S", "Sở khác"), 1, "agency: code 'S' is already used")
    _clean_failure(run("campaign", "start", HUGE), 1, f"campaign {HUGE} not found")
    _clean_failure(run("progress", "999"), 1, "campaign 999 not found")
    assert run("create-campaign", "--agency-id", "1", "--name", "Q").exit_code == 0
    _clean_failure(run("campaign", "start", "1"), 1, "no sampled contacts")
    for option, value in (("--seed", HUGE), ("--recent-days", HUGE), ("--replicates", "0")):
        result = run("import-frame", "1", str(DEMO_FRAME), option, value)
        _clean_failure(result, 1, f"{option.lstrip('-').replace('-', '_')}: expected")
    _clean_failure(run("import-frame", "1", str(DEMO_FRAME), "--rule", "fixed"), 1, "rule: sample rule 'fixed'")
    _clean_failure(run("configure-campaign", "1", "--channel-plan", "fax:1"), 1, "channel_plan step 1")
    assert json.loads(run("progress", "1").output)["contacts"] == 0       # nothing was imported


def test_the_cli_stops_on_configuration_errors_with_exit_code_2(run: Any, tmp_path: Path) -> None:
    _clean_failure(run("progress", "1", SIPAS_PROVIDER="fax"), 2, "configuration error: SIPAS_PROVIDER")
    _clean_failure(run("db", "upgrade", SIPAS_DISPATCH_BATCH=HUGE), 2, "SIPAS_DISPATCH_BATCH")
    broken = tmp_path / "questionnaires"
    broken.mkdir()
    (broken / "bad.yaml").write_text("key: bad\nitems: 3\n", encoding="utf-8")
    _clean_failure(run("progress", "1", SIPAS_QUESTIONNAIRE_DIR=str(broken)), 2, "questionnaire error")


def test_oversized_requests_get_413_naming_the_setting(make_settings: Any, clock: Any) -> None:
    from ivr_service import create_app

    from .conftest import api_token

    app = create_app(make_settings(max_request_mb=0.1, max_json_kb=1), clock=clock)
    api_token(app)
    client = app.test_client()
    window = {"weekdays": [0, 1, 2], "parts": [["08:00", "17:00"]], "closed_dates": ["2027-02-15"] * 200}
    big_json = client.post("/api/v1/campaigns", json={"agency_id": 1, "name": "x", "window": window})
    assert big_json.status_code == 413 and "SIPAS_MAX_JSON_KB" in big_json.json["message"]
    assert _is_error_body(big_json.json)
    upload = {"file": (io.BytesIO(b"x" * 200_000), "ds.csv")}
    big_file = client.post("/api/v1/frames/preview", data=upload, content_type="multipart/form-data")
    assert big_file.status_code == 413 and "SIPAS_MAX_REQUEST_MB" in big_file.json["message"]
    small = client.post("/api/v1/campaigns", json={"agency_id": 1, "name": "x"})
    assert small.status_code == 404          # within both limits: it reaches the service (no agency 1)
    app.extensions["sipas"].db.dispose()


def test_a_frame_over_the_row_cap_is_refused_and_nothing_is_stored(make_settings: Any, clock: Any) -> None:
    from ivr_service import create_app

    from .conftest import api_token

    app = create_app(make_settings(max_frame_rows=50), clock=clock)
    api_token(app)
    client = app.test_client()
    agency = client.post("/api/v1/agencies", json={"code": "S", "name": "Sở Demo"}).json["id"]
    campaign_id = client.post("/api/v1/campaigns", json={"agency_id": agency, "name": "Q"}).json["id"]
    for path in (f"/api/v1/campaigns/{campaign_id}/frame", "/api/v1/frames/preview"):
        data = {"file": (io.BytesIO(DEMO_FRAME.read_bytes()), "ds.csv")}
        response = client.post(path, data=data, content_type="multipart/form-data")
        assert response.status_code == 400 and response.json["field"] == "file", response.json
        assert "1000 rows" in response.json["message"] and "SIPAS_MAX_FRAME_ROWS" in response.json["message"]
    assert client.get(f"/api/v1/campaigns/{campaign_id}/progress").json["contacts"] == 0
    app.extensions["sipas"].db.dispose()
