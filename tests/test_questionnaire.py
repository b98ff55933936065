"""Questionnaire model and loader: the shipped files, the registry, and broken files whose
error message names the file, the item and the field at fault."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr_service.core.questionnaire import (
    CHANNELS,
    Questionnaire,
    QuestionnaireError,
    QuestionnaireRegistry,
    Text,
    load_questionnaire,
    parse_questionnaire,
)

from .conftest import ROOT

QDIR = ROOT / "config" / "questionnaires"
SEEDS = Path("/work/shared/seeds")
SIPAS = QDIR / "sipas-2024.yaml"
TWO_LEVEL = QDIR / "sipas-2level-2024.yaml"
RAW = yaml.safe_load(SIPAS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def q() -> Questionnaire:
    return load_questionnaire(SIPAS)


@pytest.fixture(scope="module")
def q2() -> Questionnaire:
    return load_questionnaire(TWO_LEVEL)


# --- the shipped files --------------------------------------------------------------------

def test_sipas_2024_shape(q: Questionnaire) -> None:
    assert q.key == "sipas-2024" and q.version == 1
    assert len(q.criteria) == 16
    assert [i.id for i in q.criteria] == [f"C{n:02d}" for n in range(1, 17)]
    assert len(q.rated_items) == 17
    assert [i.id for i in q.rated_items] == [f"C{n:02d}" for n in range(1, 17)] + ["OVERALL"]
    assert q.factors == ("I", "II", "III", "IV", "V")
    per_factor = {f: [c.id for c in q.criteria if c.factor == f] for f in q.factors}
    assert per_factor == {
        "I": ["C01", "C02", "C03"], "II": ["C04", "C05", "C06", "C07"], "III": ["C08", "C09", "C10"],
        "IV": ["C11", "C12", "C13"], "V": ["C14", "C15", "C16"],
    }
    assert q.max_invalid == 2 and q.repeat_key == "*"
    assert q.factor_title("III").vi == "Công chức trực tiếp giải quyết công việc"
    with pytest.raises(KeyError):
        q.factor_title("VI")


def test_sipas_2024_item_order_and_kinds(q: Questionnaire) -> None:
    ids = [i.id for i in q.items]
    assert ids == (["CONSENT"] + [f"C{n:02d}" for n in range(1, 14)] + ["SCREEN_FEEDBACK"]
                   + ["C14", "C15", "C16", "OVERALL"] + [f"N{n}" for n in range(1, 10)])
    kinds = {i.id: i.kind for i in q.items}
    assert kinds["CONSENT"] == "consent" and kinds["SCREEN_FEEDBACK"] == "screening"
    assert kinds["OVERALL"] == "overall" and kinds["N5"] == "needs"
    assert q.has_item("C01") and not q.has_item("C99")
    with pytest.raises(KeyError):
        q.item("C99")


def test_sipas_2024_needs_items_are_web_only(q: Questionnaire) -> None:
    needs = [i for i in q.items if i.kind == "needs"]
    assert [i.id for i in needs] == [f"N{n}" for n in range(1, 10)]
    assert all(i.channels == ("web",) for i in needs)
    assert all(not i.is_rated for i in needs)
    assert [o.label.vi for o in needs[0].scale.options] == ["Rất nhiều", "Nhiều", "Ít"]
    # Every other item is asked on voice; the consent item only on voice.
    assert all("voice" in i.channels for i in q.items if i.kind != "needs")
    assert q.item("CONSENT").channels == ("voice",)
    assert q.item("C01").channels == CHANNELS


def test_sipas_2024_scales(q: Questionnaire) -> None:
    five = q.item("C01").scale
    assert [(o.key, o.value) for o in five.options] == [(str(n), n) for n in range(1, 6)]
    assert [o.label.vi for o in five.options] == [
        "Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"]
    assert five.no_opinion_key == "0" and five.no_opinion_label == Text("Không ý kiến", "No opinion")
    assert five.satisfied == {4, 5} and five.dissatisfied == {1, 2}
    assert five.valid_keys == ("1", "2", "3", "4", "5", "0")
    assert five.option_for_key("4").value == 4 and five.option_for_key("0") is None
    consent = q.item("CONSENT").scale
    assert consent.option_for_key("9").value == 0 and consent.option_for_key("1").value == 1
    assert consent.no_opinion_key is None
    # Every rated item uses the 5-level scale with "no opinion".
    assert {i.scale.id for i in q.rated_items} == {"five_level"}


def test_sipas_2024_factor_v_is_conditional_on_screening(q: Questionnaire) -> None:
    for item_id in ("C14", "C15", "C16"):
        condition = q.item(item_id).condition
        assert condition is not None
        assert condition.item == "SCREEN_FEEDBACK" and condition.values == {1}
    assert q.item("SCREEN_FEEDBACK").scale.option_for_key("2").value == 0
    assert all(q.item(f"C{n:02d}").condition is None for n in range(1, 14))
    assert q.item("OVERALL").condition is None


def test_texts_fall_back_to_vietnamese(q: Questionnaire) -> None:
    text = q.item("C01").text
    assert text.get("vi") == text.vi and text.get("en") == text.en != text.vi
    assert Text("xin chào").get("en") == "xin chào"
    assert set(q.messages) == {"intro", "consent", "invalid", "thanks", "refused", "no_input", "sms_invitation",
                               "moving_on", "no_consent", "not_understood", "closing_contact", "speech_hint"}
    assert "{agency}" in q.messages["intro"].vi


def test_two_level_shape(q2: Questionnaire) -> None:
    assert q2.key == "sipas-2level-2024"
    assert len(q2.criteria) == 20
    assert len(q2.rated_items) == 21
    assert q2.factors == ("I", "II", "III", "IV", "V")
    scale = q2.item("C01").scale
    assert [(o.key, o.value, o.label.vi) for o in scale.options] == [
        ("1", 1, "Hài lòng"), ("2", 0, "Không hài lòng")]
    assert scale.satisfied == {1} and scale.dissatisfied == {0} and scale.no_opinion_key == "0"
    factor_v = [c.id for c in q2.criteria if c.factor == "V"]
    assert factor_v == ["C17", "C18", "C19", "C20"]
    assert all(q2.item(i).condition.item == "SCREEN_FEEDBACK" for i in factor_v)
    assert not [i for i in q2.items if i.kind == "needs"]


def _seed(prefix: str) -> str:
    [path] = list(SEEDS.glob(f"{prefix}*.txt"))
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path, prefix, count", [(SIPAS, "000_", 16), (TWO_LEVEL, "001_", 20)],
                         ids=["sipas-2024/seed000", "2level/seed001"])
def test_criterion_texts_are_verbatim_substrings_of_the_seed(path: Path, prefix: str, count: int) -> None:
    seed = _seed(prefix)
    q = load_questionnaire(path)
    checked = 0
    for item in q.criteria:
        assert len(item.text.vi) > 20, item.id  # a real sentence, not a stub that trivially matches
        assert item.text.vi in seed, f"{item.id}: {item.text.vi!r} is not verbatim in seed {prefix}"
        checked += 1
    assert checked == count


def test_registry_loads_every_file_once() -> None:
    registry = QuestionnaireRegistry(QDIR)
    keys = registry.keys()
    assert {"sipas-2024", "sipas-2level-2024"} <= set(keys) and keys == sorted(keys)
    loaded = registry.load_all()
    assert [q.key for q in loaded] == keys
    assert registry.get("sipas-2024") is loaded[keys.index("sipas-2024")]  # cached, not reloaded


@pytest.mark.parametrize("key", ["../sipas-2024", "sipas 2024", "sipas/2024", ""])
def test_registry_rejects_keys_that_are_not_names(key: str) -> None:
    with pytest.raises(QuestionnaireError, match="not a questionnaire key"):
        QuestionnaireRegistry(QDIR).get(key)


def test_registry_reports_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(QuestionnaireError, match="no such questionnaire file"):
        QuestionnaireRegistry(QDIR).get("sipas-1999")
    with pytest.raises(QuestionnaireError, match="questionnaire directory not found"):
        QuestionnaireRegistry(tmp_path / "nowhere").load_all()


def test_registry_load_all_stops_on_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "sipas-2024.yaml").write_text(SIPAS.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "zz-broken.yaml").write_text("key: zz-broken\n", encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="zz-broken.yaml"):
        QuestionnaireRegistry(tmp_path).load_all()


# --- broken files -------------------------------------------------------------------------

def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)


def _item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for s in data["sections"] for i in s["items"] if i["id"] == item_id)


def _section(data: dict[str, Any], section_id: str) -> dict[str, Any]:
    return next(s for s in data["sections"] if s["id"] == section_id)


def _move_consent_last(d: dict[str, Any]) -> None:
    d["sections"].append(d["sections"].pop(0))


def _drop_factor_sections(d: dict[str, Any]) -> None:
    d["sections"] = [s for s in d["sections"] if s["kind"] != "factor"]


Mutation = Callable[[dict[str, Any]], None]
BREAKAGES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("unknown scale", lambda d: _item(d, "C05").update(scale="six_level"), ("C05", "scale", "six_level")),
    ("missing scale", lambda d: _item(d, "C04").pop("scale"), ("C04", ".scale", "required")),
    ("missing text.vi", lambda d: _item(d, "C07")["text"].pop("vi"), ("C07", "text.vi")),
    ("blank text.vi", lambda d: _item(d, "C08")["text"].update(vi="   "), ("C08", "text.vi")),
    ("missing voice text", lambda d: _item(d, "C09").pop("voice"), ("C09", "voice", "required")),
    ("unknown language", lambda d: _item(d, "C02")["text"].update(fr="Bonjour"), ("C02", "text", "fr")),
    ("en not text", lambda d: _item(d, "C03")["sms"].update(en=5), ("C03", "sms.en")),
    ("duplicate item id", lambda d: _item(d, "C03").update(id="C02"), ("C02", "duplicate item id")),
    ("duplicate id across sections", lambda d: _item(d, "OVERALL").update(id="C01"), ("C01", "duplicate item id")),
    ("item id not text", lambda d: _section(d, "F2")["items"][0].update(id=5), ("F2", "items[0].id", "expected str")),
    ("ask_if on a later item", lambda d: _item(d, "C01").update(ask_if={"item": "OVERALL", "in": [1]}),
     ("C01", "ask_if.item", "OVERALL", "earlier")),
    ("ask_if on an unknown item", lambda d: _item(d, "C02").update(ask_if={"item": "NOPE", "in": [1]}),
     ("C02", "ask_if.item", "NOPE")),
    ("ask_if on itself", lambda d: _item(d, "C03").update(ask_if={"item": "C03", "in": [4]}),
     ("C03", "ask_if.item", "earlier")),
    ("section ask_if on a later item", lambda d: _section(d, "F5")["ask_if"].update(item="OVERALL"),
     ("F5", "ask_if.item", "OVERALL")),
    ("ask_if value off the scale", lambda d: _section(d, "F5")["ask_if"].update({"in": [7]}),
     ("F5", "ask_if.in", "7", "SCREEN_FEEDBACK")),
    ("ask_if without values", lambda d: _section(d, "F5")["ask_if"].pop("in"), ("F5", "ask_if.in", "required")),
    ("duplicate option keys", lambda d: d["scales"]["five_level"]["options"][1].update(key="1"),
     ("scales.five_level.options", "duplicate keys")),
    ("duplicate option values", lambda d: d["scales"]["five_level"]["options"][1].update(value=1),
     ("scales.five_level.options", "duplicate values")),
    ("option key not a keypad key", lambda d: d["scales"]["yes_no"]["options"][0].update(key="11"),
     ("scales.yes_no.options[0].key", "'11'")),
    ("option value not a number", lambda d: d["scales"]["yes_no"]["options"][0].update(value="one"),
     ("scales.yes_no.options[0].value", "expected int")),
    ("option value a boolean", lambda d: d["scales"]["yes_no"]["options"][0].update(value=True),
     ("scales.yes_no.options[0].value", "expected int")),
    ("option without a label", lambda d: d["scales"]["consent"]["options"][1].pop("label"),
     ("scales.consent.options[1].label", "required")),
    ("one-option scale", lambda d: d["scales"]["consent"].update(options=d["scales"]["consent"]["options"][:1]),
     ("scales.consent.options", "at least two")),
    ("satisfied value off the scale", lambda d: d["scales"]["five_level"].update(satisfied=[4, 6]),
     ("scales.five_level.satisfied", "6")),
    ("dissatisfied value off the scale", lambda d: d["scales"]["five_level"].update(dissatisfied=[0]),
     ("scales.five_level.dissatisfied", "0")),
    ("satisfied and dissatisfied overlap", lambda d: d["scales"]["five_level"].update(dissatisfied=[1, 4]),
     ("scales.five_level", "both satisfied and dissatisfied")),
    ("no-opinion key is an option key", lambda d: d["scales"]["five_level"]["no_opinion"].update(key="5"),
     ("scales.five_level.no_opinion.key", "'5'")),
    ("rated item on an unrated scale", lambda d: _item(d, "C06").update(scale="yes_no"),
     ("C06", "scale", "yes_no", "satisfied")),
    ("repeat key is an answer key", lambda d: d["flow"].update(repeat_key="1"), ("flow.repeat_key", "'1'")),
    ("repeat key is the no-opinion key", lambda d: d["flow"].update(repeat_key="0"), ("flow.repeat_key", "'0'")),
    ("repeat key not a key", lambda d: d["flow"].update(repeat_key="**"), ("flow.repeat_key", "'**'")),
    ("max_invalid out of range", lambda d: d["flow"].update(max_invalid=9), ("flow.max_invalid", "9")),
    ("max_invalid not a number", lambda d: d["flow"].update(max_invalid="2"), ("flow.max_invalid", "expected int")),
    ("missing message", lambda d: d["messages"].pop("thanks"), ("messages.thanks", "required")),
    ("unknown message", lambda d: d["messages"].update(goodbye={"vi": "Tạm biệt"}), ("messages", "goodbye")),
    ("unknown section kind", lambda d: _section(d, "F1").update(kind="bonus"), ("F1", "kind", "bonus")),
    ("unknown factor", lambda d: _section(d, "F2").update(factor="VI"), ("F2", "factor", "VI")),
    ("factor section without factor", lambda d: _section(d, "F3").pop("factor"), ("F3", "factor", "required")),
    ("factor on a non-factor section", lambda d: _section(d, "overall").update(factor="I"),
     ("overall", "factor", "only factor sections")),
    ("duplicate section id", lambda d: _section(d, "F2").update(id="F1"), ("F1", "duplicate section id")),
    ("empty section", lambda d: _section(d, "F4").update(items=[]), ("F4", "items", "at least one item")),
    ("unknown channel on an item", lambda d: _item(d, "N1").update(channels=["sms"]), ("N1", "channels", "sms")),
    ("unknown channel on a section", lambda d: _section(d, "needs").update(channels=["fax"]),
     ("needs", "channels", "fax")),
    ("consent not first", _move_consent_last, ("sections", "consent", "first")),
    ("consent scale without decline", lambda d: d["scales"]["consent"]["options"][1].update(value=2),
     ("CONSENT", "scale", "value 0")),
    ("no factor section", _drop_factor_sections, ("sections", "factor section")),
    ("version not a number", lambda d: d.update(version="one"), ("version", "expected int")),
    ("missing source", lambda d: d.pop("source"), ("source", "required")),
    ("scales not a mapping", lambda d: d.update(scales=["five_level"]), ("scales", "expected dict")),
    ("item not a mapping", lambda d: _section(d, "F1")["items"].append("C99"), ("F1", "items[3]", "mapping")),
    ("invitation without the stop link", lambda d: d["messages"]["sms_invitation"].update(vi="Moi danh gia: {link}"),
     ("messages.sms_invitation.vi", "{stop}")),
    ("invitation with an unknown placeholder",
     lambda d: d["messages"]["sms_invitation"].update(en="{name}: {link} Stop: {stop}"),
     ("messages.sms_invitation.en", "unknown placeholder", "name")),
]


@pytest.mark.parametrize("name, mutation, words", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_broken_file_names_file_item_and_field(tmp_path: Path, name: str, mutation: Mutation,
                                               words: tuple[str, ...]) -> None:
    data = copy.deepcopy(RAW)
    mutation(data)
    path = tmp_path / "sipas-2024.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    with pytest.raises(QuestionnaireError) as error:
        load_questionnaire(path)
    message = str(error.value)
    assert message.startswith("sipas-2024.yaml: "), message
    for word in words:
        assert word in message, f"{name}: {word!r} not in {message!r}"


def test_unmodified_dump_loads(tmp_path: Path) -> None:
    # The mutation tests above are only meaningful if the dumped original is accepted.
    path = tmp_path / "sipas-2024.yaml"
    path.write_text(_dump(copy.deepcopy(RAW)), encoding="utf-8")
    q = load_questionnaire(path)
    assert q == load_questionnaire(SIPAS)
    # The order of keys in a mapping does not matter (safe_dump sorts them).
    path.write_text(yaml.safe_dump(RAW, allow_unicode=True), encoding="utf-8")
    assert load_questionnaire(path) == q


def test_key_must_equal_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "sipas-2025.yaml"
    path.write_text(_dump(RAW), encoding="utf-8")
    with pytest.raises(QuestionnaireError) as error:
        load_questionnaire(path)
    message = str(error.value)
    assert message.startswith("sipas-2025.yaml: key:")
    assert "'sipas-2024'" in message and "'sipas-2025'" in message and "must equal the file name" in message


@pytest.mark.parametrize("content, words", [
    ("key: [unclosed", ("not valid YAML",)),
    ("key: a\n  - b: :\n", ("not valid YAML",)),
    ("- just\n- a list\n", ("top level", "expected a mapping", "list")),
    ("", ("top level", "expected a mapping", "NoneType")),
    ("just a string", ("top level", "expected a mapping", "str")),
], ids=["unclosed", "bad-indent", "list", "empty", "scalar"])
def test_not_a_questionnaire_document(tmp_path: Path, content: str, words: tuple[str, ...]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QuestionnaireError) as error:
        load_questionnaire(path)
    message = str(error.value)
    assert message.startswith("broken.yaml: ")
    for word in words:
        assert word in message, message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "legacy.yaml"
    path.write_bytes("key: Đắk Nông\n".encode("utf-16-le"))  # e.g. a file saved as UTF-16 without BOM
    with pytest.raises(QuestionnaireError, match=r"^legacy\.yaml: not UTF-8 text"):
        load_questionnaire(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(QuestionnaireError, match="no such questionnaire file"):
        load_questionnaire(tmp_path / "absent.yaml")


def test_parse_accepts_integer_keypad_keys_and_defaults() -> None:
    data = copy.deepcopy(RAW)
    for option in data["scales"]["five_level"]["options"]:
        option["key"] = int(option["key"])   # YAML without quotes gives ints
    del data["flow"]
    q = parse_questionnaire(data, source="inline")
    assert q.item("C01").scale.option_for_key("5").value == 5
    assert q.max_invalid == 2 and q.repeat_key == "*"


def test_item_level_ask_if_overrides_the_section_condition() -> None:
    data = copy.deepcopy(RAW)
    _item(data, "C15")["ask_if"] = {"item": "C14", "in": [1, 2]}
    q = parse_questionnaire(data, source="inline")
    assert q.item("C14").condition.item == "SCREEN_FEEDBACK"
    assert q.item("C15").condition.item == "C14" and q.item("C15").condition.values == {1, 2}
