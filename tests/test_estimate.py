"""The length of a complete call (core/estimate.py): the paths walked through the flow,
instruction modes, recordings, the speech hint and the agency's line; a whole call played
through the signed webhooks says exactly the estimated texts; start-up refuses a
questionnaire whose longest call is over SIPAS_MAX_CALL_SECONDS."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.core import estimate
from ivr_service.core.estimate import Pace, describe, too_long
from ivr_service.core.prompts import spoken_number
from ivr_service.core.questionnaire import QuestionnaireRegistry, load_questionnaire, parse_questionnaire
from ivr_service.persistence.models import Campaign
from ivr_service.services import call_costs
from ivr_service.settings import SettingsError

from .conftest import AGENCY, ROOT, says

QDIR = ROOT / "config" / "questionnaires"
Q = load_questionnaire(QDIR / "sipas-2024.yaml")
RAW = yaml.safe_load((QDIR / "sipas-2024.yaml").read_text(encoding="utf-8"))
CRITERIA_I_IV = [f"C{i:02d}" for i in range(1, 14)]
FACTOR_V = ["C14", "C15", "C16"]
FULL = Q.scales["five_level"].instructions.get("vi")      # type: ignore[union-attr]
CUE = Q.scales["five_level"].cue.get("vi")                # type: ignore[union-attr]
HOTLINE = "0261 3822 123"


def modified(change: Any, **flow: Any) -> Any:
    """sipas-2024 with ``change(data)`` applied to a copy of its file, and ``flow`` options."""
    data = copy.deepcopy(RAW)
    data["flow"].update(flow)
    change(data)
    return parse_questionnaire(data, source="sipas-2024.yaml")


def item_of(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(item for section in data["sections"] for item in section["items"] if item["id"] == item_id)


# ============================================================================ the paths

def test_the_longest_path_asks_factor_v_and_the_shortest_skips_it() -> None:
    found = estimate.estimate(Q, "vi")
    assert (found.questionnaire, found.language, found.instructions, found.voice_items) == ("sipas-2024", "vi",
                                                                                             "first", 19)
    longest, shortest = found.longest, found.shortest
    assert longest.items == ("CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", *FACTOR_V, "OVERALL")
    assert shortest.items == ("CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", "OVERALL")
    assert (longest.choices, shortest.choices) == ((("SCREEN_FEEDBACK", "1"),), (("SCREEN_FEEDBACK", "2"),))
    # Said: the intro with the agency's name, the consent prompt (no instructions on its
    # scale), each item with the scale in full the first time and its cue after, thanks.
    assert longest.says[0] == Q.messages["intro"].vi.replace("{agency}", estimate.SAMPLE_AGENCY)
    assert longest.says[1:5] == (Q.item("CONSENT").voice.vi, Q.item("C01").voice.vi, FULL, Q.item("C02").voice.vi)
    assert longest.says[5] == CUE and longest.says[-1] == Q.messages["thanks"].vi
    assert longest.says.count(FULL) == 1 and longest.says.count(CUE) == 16
    assert shortest.says.count(FULL) == 1 and shortest.says.count(CUE) == 13
    assert longest.characters == sum(len(text) for text in longest.says)
    extra = sum(len(Q.item(i).voice.vi) + len(CUE) for i in FACTOR_V)
    assert longest.characters - shortest.characters == extra
    assert (longest.audio_seconds, longest.unmeasured_audio) == (0.0, ())


def test_seconds_are_characters_at_the_speaking_rate_plus_answers() -> None:
    found = estimate.estimate(Q, "vi", pace=Pace(speaking_rate=10, answer_seconds=2))
    for path in found.paths:
        assert path.spoken_seconds == pytest.approx(path.characters / 10)
        assert path.call_seconds == pytest.approx(path.characters / 10 + 2 * len(path.items))
        assert path.minutes == -(-path.call_seconds // 60)
    default = estimate.estimate(Q, "vi").longest
    assert default.call_seconds == pytest.approx(default.characters / 13 + 3 * 19)
    # The figures of sipas-2024 in Vietnamese, as the README shows them.
    assert (default.characters, round(default.call_seconds, 1)) == (1789, 194.6)
    assert (estimate.estimate(Q, "vi").shortest.characters, default.minutes) == (1549, 4)


def test_the_choice_follows_the_condition_not_the_key() -> None:
    def ask_factor_v_on_no(data: dict[str, Any]) -> None:
        data["sections"][6]["ask_if"]["in"] = [0]          # F5 asked when SCREEN_FEEDBACK = 2 (value 0)

    found = estimate.estimate(modified(ask_factor_v_on_no), "vi")
    assert found.longest.choices == (("SCREEN_FEEDBACK", "2"),) and "C14" in found.longest.items
    assert found.shortest.choices == (("SCREEN_FEEDBACK", "1"),) and "C14" not in found.shortest.items


# ============================================================================ instruction modes

def test_saying_the_scale_before_every_item_is_longer_than_saying_it_once() -> None:
    first = estimate.estimate(Q, "vi")
    per_factor = estimate.estimate(Q, "vi", instructions="first_per_factor")
    always = estimate.estimate(Q, "vi", instructions="always")
    assert always.instructions == "always"
    step = len(FULL) - len(CUE)
    # always: the 17 five-level items of the longest path all hear it in full instead of 16 cues.
    assert always.longest.characters == first.longest.characters + 16 * step
    assert always.shortest.characters == first.shortest.characters + 13 * step
    # first_per_factor: again at C04, C08, C11 and (longest only) C14.
    assert per_factor.longest.characters == first.longest.characters + 4 * step
    assert per_factor.shortest.characters == first.shortest.characters + 3 * step
    assert always.longest.call_seconds > per_factor.longest.call_seconds > first.longest.call_seconds
    # The questionnaire's own mode decides when none is asked for.
    assert estimate.estimate(modified(lambda data: None, instructions="always"), "vi") == always


# ============================================================================ what a campaign adds

def test_the_speech_hint_and_the_agencys_line_are_counted() -> None:
    plain = estimate.estimate(Q, "vi").longest
    with_options = estimate.estimate(Q, "vi", speech=True, hotline=HOTLINE).longest
    hint = Q.messages["speech_hint"].vi
    contact = Q.messages["closing_contact"].vi.replace("{hotline}", "0 2 6 1, 3 8 2 2, 1 2 3")
    assert with_options.says[1] == hint and with_options.says[-2:] == (contact, Q.messages["thanks"].vi)
    assert with_options.characters == plain.characters + len(hint) + len(contact)
    named = estimate.estimate(Q, "vi", agency="UBND xã Nam Dong").longest
    assert named.characters == plain.characters - len(estimate.SAMPLE_AGENCY) + len("UBND xã Nam Dong")


def test_english_uses_the_english_texts() -> None:
    found = estimate.estimate(Q, "en", hotline="1022")
    assert found.longest.says[-2:] == ("If you would like to say more, you can call 1 0 2 2.", Q.messages["thanks"].en)
    assert Q.item("C01").voice.en in found.longest.says


def test_the_agencys_line_is_said_digit_by_digit_in_groups() -> None:
    assert spoken_number("1022") == "1 0 2 2"
    for number in ("0261 3822 123", "0261.3822.123", "0261-3822-123", " 0261  3822 123 "):
        assert spoken_number(number) == "0 2 6 1, 3 8 2 2, 1 2 3"
    assert spoken_number("+84-261") == "+ 8 4, 2 6 1"


@settings(max_examples=60, deadline=None)
@given(language=st.sampled_from(["vi", "en"]), mode=st.sampled_from(["always", "first", "first_per_factor"]),
       speech=st.booleans(), hotline=st.none() | st.from_regex(r"[0-9]{3,4}( [0-9]{3,4}){0,2}", fullmatch=True),
       agency=st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=200),
       rate=st.floats(1, 100), answer=st.floats(0, 60))
def test_what_each_option_adds_is_exactly_its_text(language: str, mode: str, speech: bool, hotline: str | None,
                                                   agency: str, rate: float, answer: float) -> None:
    bare = estimate.estimate(Q, language, instructions=mode, agency="A", pace=Pace(rate, answer))
    found = estimate.estimate(Q, language, instructions=mode, speech=speech, hotline=hotline, agency=agency,
                              pace=Pace(rate, answer))
    added = len(agency) - 1 + (len(Q.messages["speech_hint"].get(language)) if speech else 0) + (
        len(Q.messages["closing_contact"].get(language).replace("{hotline}", spoken_number(hotline)))
        if hotline else 0)
    for path, before in zip(found.paths, bare.paths, strict=True):
        assert path.items == before.items and path.characters == before.characters + added
        assert path.characters == sum(map(len, path.says))
        assert path.call_seconds == pytest.approx(path.characters / rate + len(path.items) * answer)
    assert found.longest.characters > found.shortest.characters
    assert set(found.shortest.items) < set(found.longest.items)


# ============================================================================ recordings

def test_recordings_count_their_length_and_one_without_a_length_is_flagged() -> None:
    def record(data: dict[str, Any]) -> None:
        item_of(data, "C01").update(audio="https://cdn.example.gov.vn/c01.mp3", audio_seconds=7.5)
        item_of(data, "C02").update(audio="https://cdn.example.gov.vn/c02.mp3")

    plain = estimate.estimate(Q, "vi").longest
    recorded = estimate.estimate(modified(record), "vi").longest
    c01, c02 = Q.item("C01").voice.vi, Q.item("C02").voice.vi
    assert c01 not in recorded.says and c02 not in recorded.says       # played, not said
    assert recorded.characters == plain.characters - len(c01) - len(c02)
    assert (recorded.audio_seconds, recorded.unmeasured_audio) == (7.5, ("C02",))
    # C02's recording has no length: its text stands in for it.
    assert recorded.spoken_seconds == pytest.approx((recorded.characters + len(c02)) / 13 + 7.5)
    assert "counted by their text: C02" in describe(estimate.estimate(modified(record), "vi"), recorded)
    assert "7.5 s of recordings" in describe(estimate.estimate(modified(record), "vi"), recorded)


def test_a_web_only_form_has_no_call() -> None:
    qr = load_questionnaire(QDIR / "sipas-qr-2024.yaml")
    found = estimate.estimate(qr, "vi")
    assert found.voice_items == 0 and found.longest.items == ()
    assert too_long([qr], 1) == []


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        estimate.estimate(Q, "fr")
    with pytest.raises(ValueError, match="instructions"):
        estimate.estimate(Q, "vi", instructions="never")
    with pytest.raises(ValueError, match="speaking rate"):
        estimate.estimate(Q, "vi", pace=Pace(speaking_rate=0))


# ============================================================================ start-up

def test_the_shipped_questionnaires_fit_the_default_limit() -> None:
    registry = QuestionnaireRegistry(QDIR)
    assert too_long(registry.load_all(), 360) == []
    over = too_long(registry.load_all(), 200)
    assert {(e.questionnaire, e.language) for e in over} >= {("sipas-2024", "vi"), ("sipas-2level-2024", "en")}
    assert all(e.speech and e.hotline == estimate.SAMPLE_HOTLINE for e in over)   # the worst a campaign adds


def test_a_call_over_the_limit_stops_start_up_naming_it(make_settings: Any) -> None:
    with pytest.raises(SettingsError) as raised:
        create_app(make_settings(max_call_seconds=150))
    message = str(raised.value)
    assert message.startswith("SIPAS_MAX_CALL_SECONDS: ") and "limit of 150 s" in message
    longest = estimate.estimate(Q, "vi", speech=True, hotline=estimate.SAMPLE_HOTLINE).longest
    assert (f"sipas-2024 (vi), longest path (SCREEN_FEEDBACK=1): 19 items, {longest.characters:,} characters, "
            f"{longest.spoken_seconds:.1f} s spoken + 19 × 3 s answering = {longest.call_seconds:.1f} s") in message
    assert "sipas-2024 (en)" in message and "sipas-sms-short" not in message and "sipas-qr-2024" not in message
    # A slower speaker makes the same questionnaire too long; 0 turns the check off.
    with pytest.raises(SettingsError, match="sipas-2024 \\(vi\\)"):
        create_app(make_settings(speaking_rate=6))
    create_app(make_settings(max_call_seconds=0, speaking_rate=1)).extensions["sipas"].db.dispose()


def test_a_call_over_the_limit_stops_the_cli(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("estimate", env={"SIPAS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                                      "SIPAS_MAX_CALL_SECONDS": "100"})
    assert result.returncode == 2, result.stderr
    assert "configuration error: SIPAS_MAX_CALL_SECONDS:" in result.stderr and "Traceback" not in result.stderr


# ============================================================================ the estimate is what a call says

def gathered_item(twiml: ElementTree.Element) -> str | None:
    """The item a reply gathers an answer for (keys, or keys and speech), or None."""
    gather = twiml.find("./Gather")
    return None if gather is None else parse_qs(urlsplit(gather.get("action", "")).query)["item"][0]


def play(call: Any, screen: str) -> list[str]:
    """A whole call with valid keys (SCREEN_FEEDBACK: ``screen``); every text said, in order."""
    reply = call.answer()
    said = says(reply)
    while (item := gathered_item(reply)) is not None:
        reply = call.press(item, {"CONSENT": "1", "SCREEN_FEEDBACK": screen}.get(item, "4"))
        said += says(reply)
    call.status("completed", CallDuration="190")
    return said


@pytest.mark.parametrize("path, screen, options", [
    ("longest", "1", {}),
    ("shortest", "2", {}),
    ("longest", "1", {"speech_input": True, "hotline": HOTLINE, "language": "en"}),
    ("shortest", "2", {"speech_input": True, "hotline": "1022"}),
], ids=["longest", "shortest", "longest-en-speech-hotline", "shortest-speech-hotline"])
def test_a_whole_call_says_exactly_what_the_estimate_counts(app: Any, make_call: Any, path: str, screen: str,
                                                             options: dict[str, Any]) -> None:
    call = make_call(**options)
    said = play(call, screen)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaign_id = session.scalars(select(Campaign.id)).one()
        found = call_costs.campaign_estimate(session, svc.registry, campaign_id)
    expected = getattr(found, path)
    assert found.agency == AGENCY and found.speech is options.get("speech_input", False)
    assert said == list(expected.says)
    assert sum(len(text) for text in said) == expected.characters


@pytest.mark.parametrize("path, screen", [("longest", "1"), ("shortest", "2")])
def test_a_call_with_the_scale_before_every_item_says_what_the_estimate_counts(
        make_settings: Any, clock: Any, tmp_path: Path, make_call: Any, path: str, screen: str) -> None:
    folder = tmp_path / "questionnaires"
    shutil.copytree(QDIR, folder)
    data = yaml.safe_load((folder / "sipas-2024.yaml").read_text(encoding="utf-8"))
    data["flow"]["instructions"] = "always"
    (folder / "sipas-2024.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    app = create_app(make_settings(questionnaire_dir=str(folder)), clock=clock)
    try:
        said = play(make_call(app=app), screen)
        expected = getattr(estimate.estimate(app.extensions["sipas"].registry.get("sipas-2024"), "vi",
                                             agency=AGENCY), path)
        assert said.count(FULL) == len(expected.items) - 2      # every five-level item; not CONSENT nor SCREEN
        assert said == list(expected.says) and sum(map(len, said)) == expected.characters
    finally:
        app.extensions["sipas"].db.dispose()
