"""Whole calls through the signed voice webhooks, with the TwiML checked structurally
(ElementTree's XPath subset): the opening and consent, each item's <Gather>, complete
calls, refusal, invalid keys, silence and repeat, hang-up with resume or restart, calls
nobody answers, and answering machines.

Webhook robustness (retried, late and out-of-order requests, malformed parameters) is in
test_voice_webhooks.py; signatures in test_signatures.py."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.persistence.models import Answer, Attempt, Contact, Interview, NumberCall, OptOut
from ivr_service.services import campaigns

from .conftest import (
    AGENCY,
    ROOT,
    answers,
    asked,
    count,
    cue,
    full,
    hangs_up,
    message,
    prompts,
    questionnaire,
    row,
    says,
    voice_text,
)

BASE_URL = "http://sipas.test"          # public_base_url of the conftest settings
PHONE_1, PHONE_1_E164 = "0912345678", "+84912345678"
PHONE_2, PHONE_2_E164 = "0987654321", "+84987654321"
CRITERIA_I_IV = [f"C{i:02d}" for i in range(1, 14)]
FACTOR_V = ["C14", "C15", "C16"]
RATED = [*CRITERIA_I_IV, *FACTOR_V, "OVERALL"]


# ============================================================================ the opening

def test_opening_names_the_agency_and_gathers_consent_in_vietnamese(app: Any, call: Any) -> None:
    twiml = call.answer()
    assert twiml.tag == "Response"
    gathers = twiml.findall("./Gather")
    assert len(gathers) == 1 and twiml.find("./Hangup") is None and twiml.findall("./Say") == []
    assert asked(twiml) == "CONSENT"
    gather = gathers[0]
    assert gather.get("input") == "dtmf"
    assert gather.get("numDigits") == "1"
    assert gather.get("actionOnEmptyResult") == "true"
    assert gather.get("method") == "POST"
    action = gather.get("action", "")
    assert action == f"{BASE_URL}/voice/{call.token}/gather?item=CONSENT"
    assert action.startswith(BASE_URL + "/") and action.endswith("gather?item=CONSENT")
    inner = gather.findall("./Say")
    assert len(inner) == 2
    for say in inner:
        assert say.get("language") == "vi-VN" and say.get("voice") == "Google.vi-VN-Wavenet-A"
    intro, prompt = (say.text or "" for say in inner)
    assert AGENCY in intro and "{agency}" not in intro
    assert "không ghi danh tính" in intro
    assert prompt == voice_text(app, "CONSENT")
    assert "Bấm 1 để bắt đầu, bấm 9 nếu không muốn tham gia" in prompt
    # The call is now in progress and has an interview, but nothing is answered yet.
    stored = row(app, Attempt, id=call.attempt_id)
    assert (stored.status.value, stored.provider_id) == ("in_progress", call.sid)
    assert row(app, Interview).current_item == "CONSENT"
    assert count(app, Answer) == 0


def test_answering_records_when_and_at_which_number_once_and_a_resumed_call_starts_its_reprompts_afresh(
        app: Any, call: Any, claim: Any, make_call: Any, clock: Any) -> None:
    answered = clock()
    call.answer()
    clock.current = answered + timedelta(seconds=5)
    assert asked(call.answer()) == "CONSENT"       # the same webhook again: asked again, nothing moved
    stored = row(app, Attempt, id=call.attempt_id)
    assert stored.answered_at == answered
    assert row(app, NumberCall, phone_e164=row(app, Contact).phone_e164).last_call_at == answered
    call.press("CONSENT", "1")
    call.press("C01", "8")                          # an invalid key uses a re-prompt
    assert row(app, Interview).retries == 1
    call.status("completed", CallDuration="20")

    clock.current = datetime(2026, 11, 19, 1, 30, tzinfo=timezone.utc)   # the retry, inside the window
    retry = make_call(claim()[0])
    assert asked(retry.answer()) == "CONSENT"
    interview = row(app, Interview)
    assert (interview.retries, interview.repeats, interview.current_item) == (0, 0, "CONSENT")
    assert count(app, Interview) == 1                # resumed, not started again
    again = row(app, Attempt, id=retry.attempt_id)
    assert (again.status.value, again.provider_id, again.answered_at) == ("in_progress", retry.sid, clock.current)
    assert row(app, NumberCall, phone_e164=row(app, Contact).phone_e164).last_call_at == clock.current


def test_gather_action_uses_the_configured_public_base_url_and_campaign_language(
        make_settings: Any, clock: Any, make_call: Any) -> None:
    other = create_app(make_settings(public_base_url="https://khaosat.example.gov.vn/ivr/"), clock=clock)
    try:
        call = make_call(app=other, language="en")
        twiml = call.answer()
        gather = twiml.find("./Gather")
        assert gather is not None
        assert gather.get("action") == f"https://khaosat.example.gov.vn/ivr/voice/{call.token}/gather?item=CONSENT"
        assert {say.get("language") for say in gather.iter("Say")} == {"en-US"}
        # English campaigns speak English with the English voice.
        assert all(s.get("language") == "en-US" and s.get("voice") == "Google.en-US-Standard-C"
                   for s in twiml.findall("./Gather/Say"))
        assert "survey" in (gather.findall("./Say")[-1].text or "")
        assert "Press 1 to start" in prompts(twiml)[-1]
    finally:
        other.extensions["sipas"].db.dispose()


def test_recorded_audio_is_played_instead_of_speech(make_settings: Any, clock: Any, tmp_path: Path,
                                                    make_call: Any) -> None:
    folder = tmp_path / "questionnaires"
    folder.mkdir()
    data = yaml.safe_load((ROOT / "config/questionnaires/sipas-2024.yaml").read_text(encoding="utf-8"))
    for section in data["sections"]:
        for item in section["items"]:
            if item["id"] == "C01":
                item["audio"] = "https://cdn.example.gov.vn/sipas/c01-vi.mp3"
    (folder / "sipas-2024.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    shutil.copy(ROOT / "config/questionnaires/sipas-2level-2024.yaml", folder)
    app = create_app(make_settings(questionnaire_dir=str(folder)), clock=clock)
    try:
        call = make_call(app=app)
        call.answer()
        twiml = call.press("CONSENT", "1")
        assert asked(twiml) == "C01"
        assert [p.text for p in twiml.findall("./Gather/Play")] == ["https://cdn.example.gov.vn/sipas/c01-vi.mp3"]
        assert prompts(twiml) == [full(app)]  # the recording replaces the item's prompt, not the scale's
        twiml = call.press("C01", "5")
        assert asked(twiml) == "C02" and twiml.find("./Gather/Play") is None
        assert prompts(twiml) == [voice_text(app, "C02"), cue(app)]
    finally:
        app.extensions["sipas"].db.dispose()


# ============================================================================ whole calls

def test_whole_call_stores_every_answer_skips_factor_v_and_completes(app: Any, call: Any) -> None:
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "2", "OVERALL": "5",
            **{item: "54321054321"[i % 11] for i, item in enumerate(CRITERIA_I_IV)}}
    seen, last = call.survey(keys)

    assert seen == ["CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", "OVERALL"]
    assert hangs_up(last)
    assert says(last) == [message(app, "thanks")]
    assert all(say.get("language") == "vi-VN" for say in last.iter("Say"))

    stored = answers(app)
    assert set(stored) == set(seen)                      # one row per item asked, C14-C16 absent
    assert count(app, Answer) == len(seen)
    assert stored["CONSENT"] == (1, "answered", "1")
    assert stored["SCREEN_FEEDBACK"] == (0, "answered", "2")   # key 2 means "no" (value 0)
    assert stored["OVERALL"] == (5, "answered", "5")
    for item in CRITERIA_I_IV:
        key = keys[item]
        expected = (None, "no_opinion", "0") if key == "0" else (int(key), "answered", key)
        assert stored[item] == expected, item
    with app.extensions["sipas"].db.begin() as session:
        assert set(session.scalars(select(Answer.attempt_id))) == {call.attempt_id}
    done = row(app, Interview)
    assert done.status.value == "complete" and done.ended_at is not None and done.current_item is None

    # The contact is only settled by the status callback.
    assert row(app, Contact).status.value == "active"
    call.status("completed", CallDuration="95")
    settled = row(app, Contact)
    assert (settled.status.value, settled.disposition, settled.next_attempt_at) == ("done", "1.1", None)
    final = row(app, Attempt, id=call.attempt_id)
    assert (final.status.value, final.outcome, final.duration_s) == ("completed", "completed", 95)
    assert final.provider_id == call.sid


def test_screening_yes_asks_factor_v_before_overall(app: Any, call: Any) -> None:
    seen, last = call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1", "C15": "2", "C16": "0"})
    assert seen == ["CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", *FACTOR_V, "OVERALL"]
    assert hangs_up(last)
    stored = answers(app)
    assert stored["SCREEN_FEEDBACK"] == (1, "answered", "1")
    assert (stored["C14"], stored["C15"], stored["C16"]) == ((4, "answered", "4"), (2, "answered", "2"),
                                                            (None, "no_opinion", "0"))


def test_a_complete_call_records_every_rated_item_and_ends_with_thanks(app: Any, call: Any) -> None:
    _, twiml = call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1", "C03": "0", "OVERALL": "5"})
    assert hangs_up(twiml)
    assert says(twiml) == ["Cảm ơn Ông/bà đã dành thời gian tham gia khảo sát. Xin chào Ông/bà."]
    recorded = answers(app)
    assert set(RATED) <= set(recorded)
    assert recorded["C03"][:2] == (None, "no_opinion") and recorded["OVERALL"][:2] == (5, "answered")
    assert recorded["C01"][:2] == (4, "answered")
    assert row(app, Interview).status.value == "complete"
    call.status("completed", CallDuration="185")
    attempt = row(app, Attempt)
    assert (attempt.status.value, attempt.outcome, attempt.duration_s) == ("completed", "completed", 185)
    assert row(app, Contact).disposition == "1.1"


def test_consenting_then_letting_every_item_time_out_is_a_break_off_not_a_complete(app: Any, call: Any) -> None:
    twiml = call.answer()
    while (item := asked(twiml)) is not None:
        twiml = call.press(item, "1" if item == "CONSENT" else "")
    assert hangs_up(twiml)
    assert row(app, Interview).status.value == "break_off"
    call.status("completed", CallDuration="300")
    contact = row(app, Contact)
    # Every item was asked, so nothing is left to resume: the contact ends as a break-off.
    assert (contact.status.value, contact.disposition) == ("done", "2.12")


# ============================================================================ refusal

def test_refusal_hangs_up_opts_out_and_stops_the_phone_in_other_campaigns(app: Any, make_campaign: Any,
                                                                          claim: Any, make_call: Any) -> None:
    first = make_campaign([PHONE_1], name="Quý 4")
    # Another campaign holds the same phone (and one other); imported before anyone is called.
    second = make_campaign([PHONE_1, PHONE_2], name="Quý 4 bis", start=False, calls_per_second=1.0)
    claimed = claim()
    assert [c.to for c in claimed] == [PHONE_1_E164]
    call = make_call(claimed[0])
    with app.extensions["sipas"].db.begin() as session:
        campaigns.transition(session, second, "start", app.extensions["sipas"].clock())

    call.answer()
    twiml = call.press("CONSENT", "9")
    assert hangs_up(twiml)
    assert says(twiml) == [message(app, "refused")]
    assert "sẽ không gọi lại" in says(twiml)[0]
    assert answers(app) == {"CONSENT": (0, "answered", "9")}
    assert row(app, Interview).status.value == "refused"
    opt = row(app, OptOut)
    assert (opt.phone_e164, opt.source, opt.campaign_id) == (PHONE_1_E164, "ivr", first)
    # Stopped at once in the other campaign; the other phone there is untouched.
    stopped = row(app, Contact, phone_e164=PHONE_1_E164, campaign_id=second)
    assert (stopped.status.value, stopped.disposition, stopped.next_attempt_at) == ("done", "2.11", None)
    assert row(app, Contact, phone_e164=PHONE_2_E164, campaign_id=second).status.value == "pending"

    call.status("completed", CallDuration="12")
    refused = row(app, Contact, phone_e164=PHONE_1_E164, campaign_id=first)
    assert (refused.status.value, refused.disposition) == ("done", "2.11")
    assert row(app, Attempt, id=call.attempt_id).outcome == "refused"
    # The next dispatch round calls only the other phone of the second campaign.
    assert [c.to for c in claim()] == [PHONE_2_E164]


def test_silence_at_consent_ends_the_call_without_an_opt_out(app: Any, call: Any) -> None:
    call.answer()
    limit = questionnaire(app).max_invalid
    for _ in range(limit):
        assert asked(call.press("CONSENT", "")) == "CONSENT"
    twiml = call.press("CONSENT", "")
    assert hangs_up(twiml)
    assert answers(app) == {"CONSENT": (None, "unanswered", "")}
    assert count(app, OptOut) == 0
    call.status("completed", CallDuration="20")
    retried = row(app, Contact)
    assert retried.status.value == "pending" and retried.disposition is None
    assert row(app, Attempt, id=call.attempt_id).outcome == "break_off"


# ============================================================================ re-prompts

def test_invalid_keys_and_silence_reprompt_then_the_item_is_left_unanswered(app: Any, call: Any) -> None:
    call.answer()
    assert asked(call.press("CONSENT", "1")) == "C01"
    limit = questionnaire(app).max_invalid
    assert limit == 2

    invalid = call.press("C01", "7")
    assert asked(invalid) == "C01"
    inner = prompts(invalid)
    # The scale's instructions name the valid keys: said in full, no separate key list.
    assert inner == [message(app, "invalid"), voice_text(app, "C01"), full(app)]
    assert "C01" not in answers(app)

    silence = call.press("C01", "")
    assert asked(silence) == "C01"
    assert prompts(silence) == [message(app, "no_input"), voice_text(app, "C01"), full(app)]
    assert "C01" not in answers(app)

    # max_invalid + 1 failures: the item is given up, the call says so and moves on.
    moved_on = call.press("C01", "#")
    assert asked(moved_on) == "C02"
    assert answers(app)["C01"] == (None, "unanswered", "#")
    assert prompts(moved_on) == [message(app, "moving_on"), voice_text(app, "C02"), cue(app)]
    assert "chuyển sang câu tiếp theo" in message(app, "moving_on")

    # The counter starts again for the next item: one bad key only re-prompts.
    assert asked(call.press("C02", "6")) == "C02"
    assert asked(call.press("C02", None)) == "C02"      # no Digits parameter at all: silence
    assert asked(call.press("C02", "3")) == "C03"
    assert answers(app)["C02"] == (3, "answered", "3")


def test_an_invalid_key_reprompts_with_the_valid_keys_then_moves_on(app: Any, call: Any) -> None:
    call.answer()
    twiml = call.press("CONSENT", "7")     # the consent scale has no instructions of its own
    assert asked(twiml) == "CONSENT"
    texts = prompts(twiml)
    assert texts == ["Phím không hợp lệ.", "Các phím hợp lệ là 1, 9.", voice_text(app, "CONSENT")]
    twiml = call.press("CONSENT", "1")
    assert asked(twiml) == "C01"
    twiml = call.press("C01", "7")
    assert asked(twiml) == "C01"
    texts = prompts(twiml)
    assert texts[0] == "Phím không hợp lệ." and texts[-1] == full(app)
    assert full(app).startswith("Bấm từ 1 đến 5") and "bấm 0" in full(app)
    twiml = call.press("C01", "#")
    assert asked(twiml) == "C01"
    twiml = call.press("C01", "8")  # max_invalid = 2: the third bad key gives up on the item
    assert asked(twiml) == "C02"
    assert answers(app)["C01"][:2] == (None, "unanswered")


def test_silence_reprompts_then_leaves_the_item_unanswered(app: Any, call: Any) -> None:
    call.answer()
    call.press("CONSENT", "1")
    twiml = call.press("C01", None)
    assert asked(twiml) == "C01" and prompts(twiml)[0] == "Chúng tôi chưa nhận được câu trả lời của Ông/bà."
    assert asked(call.press("C01", "")) == "C01"
    assert asked(call.press("C01", "")) == "C02"
    assert answers(app)["C01"][:2] == (None, "unanswered")


def test_star_repeats_the_item_without_using_up_a_reprompt_and_stores_nothing(app: Any, call: Any) -> None:
    call.answer()
    first = call.press("CONSENT", "1")
    before = answers(app)
    for _ in range(3):
        repeat = call.press("C01", "*")
        assert asked(repeat) == "C01"
        assert prompts(repeat) == [voice_text(app, "C01"), full(app)]
        assert prompts(repeat) == prompts(first)        # asked again just as the first time
        assert answers(app) == before
    assert row(app, Interview).retries == 0
    # Repeats do not use up the invalid-key allowance.
    assert asked(call.press("C01", "9")) == "C01"
    assert asked(call.press("C01", "5")) == "C02"
    assert answers(app)["C01"] == (5, "answered", "5")


# ============================================================================ hang-up, resume and restart

@pytest.mark.parametrize("answered, outcome", [(2, "break_off"), (7, "partial")])
def test_dropped_call_is_retried_and_resumes_at_the_first_unanswered_item(
        app: Any, call: Any, claim: Any, make_call: Any, clock: Any, answered: int, outcome: str) -> None:
    start = clock()
    stop = CRITERIA_I_IV[answered]
    seen, _ = call.survey({"CONSENT": "1"}, default="5", stop_before=stop)
    assert seen == ["CONSENT", *CRITERIA_I_IV[:answered]]
    call.status("completed", CallDuration="40")     # hung up while `stop` was asked

    first = row(app, Attempt, id=call.attempt_id)
    assert (first.status.value, first.outcome) == ("completed", outcome)
    waiting = row(app, Contact)
    assert (waiting.status.value, waiting.attempt_count, waiting.disposition) == ("pending", 1, None)
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > start
    assert waiting.next_attempt_at == start + timedelta(days=1)    # default delay, inside the window
    assert row(app, Interview).status.value == "in_progress"

    assert claim() == []                                           # not before the retry time
    clock.current = datetime(2026, 11, 18, 11, 0, tzinfo=timezone.utc)   # Wed 18:00 local: closed
    assert claim() == []
    clock.current = datetime(2026, 11, 19, 1, 30, tzinfo=timezone.utc)   # Thu 08:30 local: open
    second = claim()
    assert len(second) == 1 and second[0].attempt_id != call.attempt_id
    retry = make_call(second[0])
    assert row(app, Attempt, id=retry.attempt_id).number == 2

    opening = retry.answer()
    assert asked(opening) == "CONSENT"                            # consent is asked on every call
    assert AGENCY in says(opening)[0]
    assert asked(retry.press("CONSENT", "1")) == stop              # resumes after the last answer
    # Answering the rest on this call completes the interview with both calls' answers.
    item: str | None = stop
    while item is not None:
        item = asked(retry.press(item, "2" if item == "SCREEN_FEEDBACK" else "3"))
    retry.status("completed", CallDuration="70")
    assert row(app, Contact).disposition == "1.1" and row(app, Interview).status.value == "complete"
    first_call, second_call = answers(app, call.attempt_id), answers(app, retry.attempt_id)
    assert set(first_call) == {"CONSENT", *CRITERIA_I_IV[:answered]}
    assert all(first_call[i] == (5, "answered", "5") for i in CRITERIA_I_IV[:answered])
    assert set(second_call) == {"CONSENT", *CRITERIA_I_IV[answered:], "SCREEN_FEEDBACK", "OVERALL"}


def test_dropped_call_is_claimed_again_at_its_retry_time_and_resumes(app: Any, call: Any, claim: Any,
                                                                     make_call: Any, clock: Any) -> None:
    call.answer()
    call.press("CONSENT", "1")
    call.press("C01", "5")
    call.press("C02", "4")
    call.status("completed", CallDuration="40")   # hung up during C03
    contact = row(app, Contact)
    assert (contact.status.value, contact.attempt_count) == ("pending", 1)
    assert row(app, Attempt, id=call.attempt_id).outcome == "break_off"
    assert claim() == []                          # not before the retry time
    clock.current = contact.next_attempt_at
    second = claim()
    assert len(second) == 1
    again = make_call(second[0])
    assert asked(again.answer()) == "CONSENT"     # consent every call
    assert asked(again.press("CONSENT", "1")) == "C03"                     # resumes after C02
    stored = answers(app, call.attempt_id)                                 # consent is stored per call
    assert stored["C01"][:2] == (5, "answered") and stored["C02"][:2] == (4, "answered")


def test_dropped_call_without_attempts_left_is_a_final_break_off(app: Any, make_call: Any, claim: Any) -> None:
    call = make_call(retry={"max_attempts": 1})
    call.survey({"CONSENT": "1"}, stop_before="C03")
    call.status("completed", CallDuration="30")
    done = row(app, Contact)
    assert (done.status.value, done.disposition, done.next_attempt_at) == ("done", "2.12", None)
    interview = row(app, Interview)
    assert interview.status.value == "break_off" and interview.ended_at is not None
    assert claim() == []


def test_restart_mode_asks_everything_again_and_the_new_answers_count(app: Any, make_call: Any, claim: Any,
                                                                      clock: Any) -> None:
    first = make_call(resume_mode="restart")
    first.answer()
    for item, key in (("CONSENT", "1"), ("C01", "5"), ("C02", "4"), ("C03", "3")):
        first.press(item, key)
    first.status("completed", CallDuration="60")
    assert row(app, Attempt).outcome == "break_off"
    clock.advance(days=1, hours=1)
    claimed = claim()
    assert len(claimed) == 1
    second = make_call(claimed[0])
    second.answer()
    assert asked(second.press("CONSENT", "1")) == "C01"
    assert asked(second.press("C01", "2")) == "C02"
    with app.extensions["sipas"].db.begin() as session:
        c01 = session.scalars(select(Answer).where(Answer.item_id == "C01").order_by(Answer.id)).all()
    assert [(a.value, a.attempt_id) for a in c01] == [(5, first.attempt_id), (2, second.attempt_id)]


# ============================================================================ nobody answers

def test_busy_schedules_a_retry(app: Any, call: Any, claim: Any, clock: Any) -> None:
    call.status("ringing")
    call.status("busy")
    busy = row(app, Attempt, id=call.attempt_id)
    assert (busy.status.value, busy.outcome, busy.ended_at) == ("busy", "busy", clock())
    retry = row(app, Contact)
    assert (retry.status.value, retry.disposition) == ("pending", None)
    assert retry.next_attempt_at == clock() + timedelta(minutes=15)
    assert claim() == []
    clock.advance(minutes=15)
    assert [c.to for c in claim()] == [PHONE_1_E164]


def test_no_answer_until_max_attempts_ends_as_3_13(app: Any, make_campaign: Any, claim: Any, make_call: Any,
                                                   clock: Any) -> None:
    make_campaign([PHONE_1])
    for number in (1, 2, 3):
        claimed = claim()
        assert len(claimed) == 1, f"attempt {number} was not dispatched"
        call = make_call(claimed[0])
        assert row(app, Attempt, id=call.attempt_id).number == number
        call.status("ringing")
        call.status("no-answer")
        assert row(app, Attempt, id=call.attempt_id).outcome == "no_answer"
        current = row(app, Contact)
        assert current.attempt_count == number
        if number < 3:
            assert (current.status.value, current.disposition) == ("pending", None)
            assert current.next_attempt_at == clock() + timedelta(hours=2)
            clock.advance(hours=2)
    final = row(app, Contact)
    assert (final.status.value, final.disposition, final.next_attempt_at) == ("done", "3.13", None)
    assert count(app, Interview) == 0
    clock.advance(days=1)
    assert claim() == []


def test_busy_no_answer_and_failed_calls_store_duration_and_error_code(app: Any, make_call: Any) -> None:
    outcomes = {}
    for phone, status, code in (("0912000001", "busy", None), ("0912000002", "no-answer", None),
                                ("0912000003", "failed", "32009")):
        call = make_call(phone=phone)
        form = {"CallDuration": "0"} | ({"ErrorCode": code} if code else {})
        call.status(status, **form)
        attempt = row(app, Attempt, id=call.attempt_id)
        outcomes[status] = (attempt.outcome, attempt.error_code, attempt.duration_s)
    assert outcomes == {"busy": ("busy", None, 0), "no-answer": ("no_answer", None, 0),
                        "failed": ("failed", "32009", 0)}


# ============================================================================ answering machines

def test_answering_machine_is_hung_up_on_and_retried(app: Any, call: Any, clock: Any) -> None:
    twiml = call.answer(AnsweredBy="machine_start")
    assert hangs_up(twiml) and says(twiml) == []
    assert row(app, Attempt, id=call.attempt_id).outcome == "machine"
    assert count(app, Interview) == 0 and count(app, Answer) == 0
    call.status("completed", CallDuration="4")
    final = row(app, Attempt, id=call.attempt_id)
    assert (final.status.value, final.outcome) == ("completed", "machine")
    retry = row(app, Contact)
    assert retry.status.value == "pending" and retry.next_attempt_at == clock() + timedelta(hours=3)


def test_machine_reported_only_in_the_status_callback(app: Any, call: Any) -> None:
    assert asked(call.answer(AnsweredBy="unknown")) == "CONSENT"     # not a machine: the survey starts
    call.status("completed", CallDuration="9", AnsweredBy="machine_end_beep")
    assert row(app, Attempt, id=call.attempt_id).outcome == "machine"
    assert row(app, Contact).status.value == "pending"


def test_human_answer_starts_the_survey(app: Any, call: Any) -> None:
    assert asked(call.answer(AnsweredBy="human")) == "CONSENT"
    assert row(app, Attempt, id=call.attempt_id).outcome is None


def test_a_late_machine_verdict_does_not_override_a_person_who_answered(app: Any, call: Any) -> None:
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1"})
    call.status("completed", CallDuration="200", AnsweredBy="machine_end_beep")
    assert row(app, Attempt).outcome == "completed"
    assert row(app, Contact).disposition == "1.1"
