"""Questionnaire files: the shipped ones are right, broken ones are reported precisely."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr_service.core.questionnaire import QuestionnaireError, load_questionnaire

from .conftest import ROOT

QDIR = ROOT / "config" / "questionnaires"
SEEDS = Path("/work/shared/seeds")  # the planning documents, beside the repository on our machines
RAW = yaml.safe_load((QDIR / "sipas-2024.yaml").read_text(encoding="utf-8"))


def test_sipas_2024_has_17_rated_items_in_five_factors() -> None:
    q = load_questionnaire(QDIR / "sipas-2024.yaml")
    assert len(q.criteria) == 16 and len(q.rated_items) == 17
    assert q.factors == ("I", "II", "III", "IV", "V")
    assert [len([c for c in q.criteria if c.factor == f]) for f in q.factors] == [3, 4, 3, 3, 3]
    scale = q.item("C01").scale
    assert [o.label.vi for o in scale.options] == ["Rất không hài lòng", "Không hài lòng", "Bình thường",
                                                   "Hài lòng", "Rất hài lòng"]
    assert scale.no_opinion_key == "0" and scale.satisfied == {4, 5}
    needs = [i for i in q.items if i.kind == "needs"]
    assert len(needs) == 9 and all(i.channels == ("web",) for i in needs)
    assert q.item("C14").condition.item == "SCREEN_FEEDBACK"


def test_two_level_variant_is_data_too() -> None:
    q = load_questionnaire(QDIR / "sipas-2level-2024.yaml")
    assert len(q.criteria) == 20
    assert [o.label.vi for o in q.item("C01").scale.options] == ["Hài lòng", "Không hài lòng"]


@pytest.mark.parametrize("key, seed", [("sipas-2024", "000_"), ("sipas-2level-2024", "001_")])
def test_criterion_texts_are_verbatim_from_the_seed(key: str, seed: str) -> None:
    text = next(SEEDS.glob(f"{seed}*.txt")).read_text(encoding="utf-8")
    q = load_questionnaire(QDIR / f"{key}.yaml")
    for item in q.criteria:
        assert item.text.vi in text, item.id


def _item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for s in data["sections"] for i in s["items"] if i["id"] == item_id)


BREAKAGES: list[tuple[str, Callable[[dict[str, Any]], None], tuple[str, ...]]] = [
    ("unknown scale", lambda d: _item(d, "C05").update(scale="six_level"), ("C05", "scale", "six_level")),
    ("missing vi text", lambda d: _item(d, "C07")["text"].pop("vi"), ("C07", "text.vi")),
    ("duplicate id", lambda d: _item(d, "C03").update(id="C02"), ("C02", "duplicate")),
    ("condition on a later item", lambda d: _item(d, "C01").update(ask_if={"item": "OVERALL", "in": [1]}),
     ("C01", "ask_if", "OVERALL")),
    ("duplicate option key", lambda d: d["scales"]["five_level"]["options"][1].update(key="1"),
     ("five_level", "duplicate keys")),
    ("satisfied value off the scale", lambda d: d["scales"]["five_level"].update(satisfied=[4, 6]),
     ("five_level", "satisfied", "6")),
    ("bad keypad key", lambda d: d["scales"]["yes_no"]["options"][0].update(key="11"), ("yes_no", "key")),
    ("repeat key is an answer", lambda d: d["flow"].update(repeat_key="1"), ("repeat_key",)),
    ("missing message", lambda d: d["messages"].pop("thanks"), ("messages.thanks",)),
    ("unknown section kind", lambda d: d["sections"][1].update(kind="bonus"), ("F1", "kind", "bonus")),
]


@pytest.mark.parametrize("name, breakage, words", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_broken_files_name_the_item_and_field(tmp_path: Path, name: str,
                                              breakage: Callable[[dict[str, Any]], None],
                                              words: tuple[str, ...]) -> None:
    data = copy.deepcopy(RAW)
    breakage(data)
    path = tmp_path / "sipas-2024.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(QuestionnaireError) as error:
        load_questionnaire(path)
    message = str(error.value)
    assert message.startswith("sipas-2024.yaml:")
    for word in words:
        assert word in message, (name, message)


def test_key_must_match_the_file_name_and_yaml_must_parse(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(RAW, allow_unicode=True), encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="must equal the file name"):
        load_questionnaire(other)
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed", encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="broken.yaml: not valid YAML"):
        load_questionnaire(broken)
