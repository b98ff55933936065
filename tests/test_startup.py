"""Start-up fails fast and clearly on a broken questionnaire, before touching the database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr_service import create_app
from ivr_service.core.questionnaire import QuestionnaireError

from .conftest import ROOT


def broken_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "questionnaires"
    shutil.copytree(ROOT / "config" / "questionnaires", directory)
    path = directory / "sipas-2024.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sections"][2]["items"][1]["scale"] = "six_level"   # C05
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return directory


def test_broken_questionnaire_stops_create_app(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuestionnaireError) as error:
        create_app(make_settings(questionnaire_dir=str(broken_copy(tmp_path))))
    message = str(error.value)
    assert "sipas-2024.yaml" in message and "C05" in message and "scale" in message and "six_level" in message


def test_broken_questionnaire_stops_the_cli_and_leaves_the_database_alone(tmp_path: Path) -> None:
    db = tmp_path / "sipas.db"
    env = {"PATH": "/usr/bin:/bin", "SIPAS_DATABASE_URL": f"sqlite:///{db}",
           "SIPAS_QUESTIONNAIRE_DIR": str(broken_copy(tmp_path))}
    result = subprocess.run([sys.executable, "-m", "ivr_service", "create-agency", "X", "Sở X"],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "C05" in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()


def test_the_simulator_says_at_start_that_its_answers_are_invented(make_settings: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ivr_service.app"):
        app = create_app(make_settings())
    app.extensions["sipas"].db.dispose()
    assert any("SIPAS_PROVIDER is simulator" in r.getMessage() and "invented" in r.getMessage()
               for r in caplog.records)
