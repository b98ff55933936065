"""Whole calls through the signed voice webhooks, with the TwiML checked structurally
(ElementTree's XPath subset): the opening and consent, each item's <Gather>, invalid keys,
silence, repeat, refusal, machines, hang-up with resume or restart, Twilio's retried and
out-of-order requests."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import yaml
from sqlalchemy import func, select

from ivr_service import create_app
from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import Answer, Attempt, Contact, Interview, OptOut
from ivr_service.services.dispatch import Pacing
from ivr_service.services import campaigns, dispatch, frames

from .conftest import ROOT

AGENCY = "Sở Tài nguyên và Môi trường"
RATED = ["C01", "C02", "C03", "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C11", "C12", "C13", "C14",
         "C15", "C16", "OVERALL"]


@dataclass
class Call:
    client: Any
    token: str
    sid: str
    attempt_id: int

    def post(self, kind: str, query: str = "", headers: dict[str, str] | None = None, **form: str) -> ElementTree.Element:
        response = self.client.post(f"/voice/{self.token}/{kind}{query}", data={"CallSid": self.sid, **form},
                                    headers=headers or {})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return ElementTree.fromstring(response.data)

    def answer(self, **form: str) -> ElementTree.Element:
        return self.post("answer", "?q=sipas-2024", CallStatus="in-progress", **form)

    def press(self, item: str, digits: str | None, **headers: str) -> ElementTree.Element:
        form = {"CallStatus": "in-progress"} if digits is None else {"CallStatus": "in-progress", "Digits": digits}
        return self.post("gather", f"?item={item}", headers=headers, **form)

    def status(self, status: str, **form: str) -> None:
        response = self.client.post(f"/voice/{self.token}/status",
                                    data={"CallSid": self.sid, "CallStatus": status, **form})
        assert response.status_code == 204, response.get_data(as_text=True)


def gathered_item(twiml: ElementTree.Element) -> str | None:
    """The item id the <Gather> asks for, checking the Gather's fixed attributes."""
    gathers = twiml.findall("./Gather")
    if not gathers:
        return None
    assert len(gathers) == 1
    gather = gathers[0]
    assert gather.get("input") == "dtmf" and gather.get("numDigits") == "1"
    assert gather.get("method") == "POST" and gather.get("actionOnEmptyResult") == "true"
    assert gather.get("finishOnKey") == ""
    action = urlsplit(gather.get("action", ""))
    assert action.scheme == "http" and action.netloc == "sipas.test"
    return parse_qs(action.query)["item"][0]


def said(twiml: ElementTree.Element, path: str = "./Gather/Say") -> list[str]:
    return [element.text or "" for element in twiml.findall(path)]


def hangs_up(twiml: ElementTree.Element) -> bool:
    return twiml.find("./Gather") is None and list(twiml)[-1].tag == "Hangup"


def start(app: Any, tmp_path: Path, phone: str = "0912345678", **options: Any) -> int:
    frame = tmp_path / f"frame-{uuid.uuid4().hex[:6]}.csv"
    frame.write_text("Mã hồ sơ,Lĩnh vực,Số điện thoại,Ngày trả kết quả\n"
                     f"HS-1,Đất đai,{phone},02/11/2026\n", encoding="utf-8")
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, f"A{uuid.uuid4().hex[:6]}", AGENCY, now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name="Q4",
                                             questionnaire="sipas-2024", now=now, **options)
        frames.import_and_sample(session, campaign, frame, SampleRule("census"), 1, now)
        campaigns.transition(session, campaign.id, "start", now)
        return campaign.id


def dial(app: Any, client: Any) -> Call:
    svc = app.extensions["sipas"]
    claimed = dispatch.claim_due(svc.db, Pacing("twilio", 1000.0, 1000), svc.clock(), 10)
    assert len(claimed) == 1
    return Call(client, claimed[0].token, "CA" + uuid.uuid4().hex, claimed[0].attempt_id)


@pytest.fixture
def call(app: Any, client: Any, tmp_path: Path) -> Call:
    start(app, tmp_path)
    return dial(app, client)


def row(app: Any, model: Any, **where: Any) -> Any:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalars(select(model).filter_by(**where)).one()


def count(app: Any, model: Any) -> int:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalar(select(func.count()).select_from(model))


def answers(app: Any) -> dict[str, tuple[int | None, str]]:
    with app.extensions["sipas"].db.begin() as session:
        return {a.item_id: (a.value, a.status) for a in session.scalars(select(Answer).order_by(Answer.id))}


def complete_interview(call: Call, keys: dict[str, str] | None = None) -> ElementTree.Element:
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "1", **(keys or {})}
    twiml = call.answer()
    steps = 0
    while (item := gathered_item(twiml)) is not None:
        steps += 1
        assert steps < 40
        twiml = call.press(item, keys.get(item, "4"))
    return twiml


# -- the opening ----------------------------------------------------------------------


def test_opening_names_the_agency_and_asks_for_consent_in_vietnamese(call: Call) -> None:
    twiml = call.answer()
    assert twiml.tag == "Response"
    assert gathered_item(twiml) == "CONSENT"
    texts = said(twiml)
    assert AGENCY in texts[0] and "không ghi danh tính" in texts[0]
    assert "Bấm 1 để bắt đầu, bấm 9 nếu không muốn tham gia" in texts[-1]
    for say in twiml.findall("./Gather/Say"):
        assert say.get("language") == "vi-VN" and say.get("voice") == "Google.vi-VN-Wavenet-A"


def test_english_campaigns_speak_english_with_the_english_voice(app: Any, client: Any, tmp_path: Path) -> None:
    start(app, tmp_path, language="en")
    twiml = dial(app, client).answer()
    assert all(s.get("language") == "en-US" and s.get("voice") == "Google.en-US-Standard-C"
               for s in twiml.findall("./Gather/Say"))
    assert "Press 1 to start" in said(twiml)[-1]


def test_recorded_audio_is_played_instead_of_speech(make_settings: Any, clock: Any, tmp_path: Path) -> None:
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
        start(app, tmp_path)
        call = dial(app, app.test_client())
        call.answer()
        twiml = call.press("CONSENT", "1")
        assert gathered_item(twiml) == "C01"
        assert [p.text for p in twiml.findall("./Gather/Play")] == ["https://cdn.example.gov.vn/sipas/c01-vi.mp3"]
        assert said(twiml) == []  # the recording replaces the spoken prompt
        twiml = call.press("C01", "5")
        assert gathered_item(twiml) == "C02" and twiml.find("./Gather/Play") is None and said(twiml)
    finally:
        app.extensions["sipas"].db.dispose()


# -- whole calls ------------------------------------------------------------------------


def test_a_complete_call_records_every_rated_item_and_ends_with_thanks(app: Any, call: Call) -> None:
    twiml = complete_interview(call, {"C03": "0", "OVERALL": "5"})
    assert hangs_up(twiml)
    assert said(twiml, "./Say") == ["Cảm ơn Ông/bà đã dành thời gian tham gia khảo sát. Xin chào Ông/bà."]
    recorded = answers(app)
    assert set(RATED) <= set(recorded)
    assert recorded["C03"] == (None, "no_opinion") and recorded["OVERALL"] == (5, "answered")
    assert recorded["C01"] == (4, "answered")
    assert row(app, Interview).status.value == "complete"
    call.status("completed", CallDuration="185")
    attempt = row(app, Attempt)
    assert (attempt.status.value, attempt.outcome, attempt.duration_s) == ("completed", "completed", 185)
    assert row(app, Contact).disposition == "1.1"


def test_refusal_with_9_says_goodbye_and_adds_the_number_to_the_do_not_contact_list(app: Any, call: Call) -> None:
    call.answer()
    twiml = call.press("CONSENT", "9")
    assert hangs_up(twiml)
    assert "sẽ không gọi lại" in said(twiml, "./Say")[0]
    assert row(app, OptOut).phone_e164 == "+84912345678"
    call.status("completed", CallDuration="20")
    assert row(app, Attempt).outcome == "refused"
    contact = row(app, Contact)
    assert contact.disposition == "2.11" and contact.status.value == "done"


def test_an_invalid_key_reprompts_with_the_valid_keys_then_moves_on(app: Any, call: Call) -> None:
    twiml = call.answer()
    twiml = call.press("CONSENT", "1")
    assert gathered_item(twiml) == "C01"
    twiml = call.press("C01", "7")
    assert gathered_item(twiml) == "C01"
    texts = said(twiml)
    assert texts[0] == "Phím không hợp lệ." and texts[1].startswith("Các phím hợp lệ là 1, 2, 3, 4, 5")
    twiml = call.press("C01", "#")
    assert gathered_item(twiml) == "C01"
    twiml = call.press("C01", "8")  # max_invalid = 2: the third bad key gives up on the item
    assert gathered_item(twiml) == "C02"
    assert answers(app)["C01"] == (None, "unanswered")


def test_silence_reprompts_then_leaves_the_item_unanswered(app: Any, call: Call) -> None:
    call.answer()
    call.press("CONSENT", "1")
    twiml = call.press("C01", None)
    assert gathered_item(twiml) == "C01" and said(twiml)[0] == "Chúng tôi chưa nhận được câu trả lời của Ông/bà."
    assert gathered_item(call.press("C01", "")) == "C01"
    assert gathered_item(call.press("C01", "")) == "C02"
    assert answers(app)["C01"] == (None, "unanswered")


def test_star_repeats_the_item_without_using_up_a_reprompt(app: Any, call: Call) -> None:
    call.answer()
    first = call.press("CONSENT", "1")
    again = call.press("C01", "*")
    assert gathered_item(again) == "C01" and said(again) == said(first)
    assert row(app, Interview).retries == 0
    assert gathered_item(call.press("C01", "5")) == "C02"
    assert answers(app)["C01"] == (5, "answered")


def test_screening_no_skips_factor_five(app: Any, call: Call) -> None:
    twiml = call.answer()
    asked = []
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "2"}
    while (item := gathered_item(twiml)) is not None:
        asked.append(item)
        twiml = call.press(item, keys.get(item, "3"))
    assert "SCREEN_FEEDBACK" in asked and "C14" not in asked and "C16" not in asked
    assert asked[-1] == "OVERALL" and "C13" in asked


def test_consenting_then_letting_every_item_time_out_is_a_break_off_not_a_complete(app: Any, call: Call) -> None:
    twiml = call.answer()
    while (item := gathered_item(twiml)) is not None:
        twiml = call.press(item, "1" if item == "CONSENT" else "")
    assert hangs_up(twiml)
    assert row(app, Interview).status.value == "break_off"
    call.status("completed", CallDuration="300")
    contact = row(app, Contact)
    # Every item was asked, so nothing is left to resume: the contact ends as a break-off.
    assert (contact.status.value, contact.disposition) == ("done", "2.12")


# -- machines -----------------------------------------------------------------------------


def test_an_answering_machine_gets_no_questionnaire_and_is_retried_later(app: Any, call: Call, clock: Any) -> None:
    twiml = call.answer(AnsweredBy="machine_start")
    assert hangs_up(twiml) and twiml.find(".//Gather") is None
    call.status("completed", CallDuration="12", AnsweredBy="machine_start")
    attempt, contact = row(app, Attempt), row(app, Contact)
    assert attempt.outcome == "machine"
    assert contact.status.value == "pending" and contact.next_attempt_at >= clock() + timedelta(hours=3)
    assert count(app, Answer) == 0


def test_a_late_machine_verdict_does_not_override_a_person_who_answered(app: Any, call: Call) -> None:
    complete_interview(call)
    call.status("completed", CallDuration="200", AnsweredBy="machine_end_beep")
    assert row(app, Attempt).outcome == "completed"
    assert row(app, Contact).disposition == "1.1"


# -- hang-up, resume and restart --------------------------------------------------------


def hang_up_after_c03(app: Any, call: Call, clock: Any) -> None:
    call.answer()
    for item, key in (("CONSENT", "1"), ("C01", "5"), ("C02", "4"), ("C03", "3")):
        call.press(item, key)
    call.status("completed", CallDuration="60")
    assert row(app, Attempt).outcome == "break_off"
    clock.advance(days=1, hours=1)


def test_a_dropped_call_resumes_at_the_first_unanswered_item(app: Any, client: Any, call: Call, clock: Any) -> None:
    hang_up_after_c03(app, call, clock)
    second = dial(app, client)
    assert gathered_item(second.answer()) == "CONSENT"  # consent is asked on every call
    assert gathered_item(second.press("CONSENT", "1")) == "C04"


def test_restart_mode_asks_everything_again_and_the_new_answers_count(app: Any, client: Any, tmp_path: Path,
                                                                      clock: Any) -> None:
    start(app, tmp_path, resume_mode="restart")
    first = dial(app, client)
    hang_up_after_c03(app, first, clock)
    second = dial(app, client)
    second.answer()
    assert gathered_item(second.press("CONSENT", "1")) == "C01"
    assert gathered_item(second.press("C01", "2")) == "C02"
    with app.extensions["sipas"].db.begin() as session:
        c01 = session.scalars(select(Answer).where(Answer.item_id == "C01").order_by(Answer.id)).all()
    assert [(a.value, a.attempt_id) for a in c01] == [(5, first.attempt_id), (2, second.attempt_id)]


# -- Twilio's retried, duplicated and out-of-order requests -------------------------------


def test_a_retried_keypress_with_the_same_idempotency_token_is_applied_once(app: Any, call: Call) -> None:
    call.answer()
    call.press("CONSENT", "1")
    token = {"I-Twilio-Idempotency-Token": "a1b2c3-retry"}
    first = call.press("C01", "7", **token)
    retried = call.press("C01", "7", **token)
    assert gathered_item(first) == gathered_item(retried) == "C01"
    assert row(app, Interview).retries == 1  # the retry did not use up a second re-prompt
    call.press("C01", "7", **{"I-Twilio-Idempotency-Token": "d4e5f6"})
    assert row(app, Interview).retries == 2


def test_a_duplicated_answer_is_not_recorded_twice_or_changed(app: Any, call: Call) -> None:
    call.answer()
    call.press("CONSENT", "1")
    call.press("C01", "5")
    twiml = call.press("C01", "1")  # the same request again, or a late one with other keys
    assert gathered_item(twiml) == "C02"
    assert answers(app)["C01"] == (5, "answered")
    with app.extensions["sipas"].db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Answer).where(Answer.item_id == "C01")) == 1


def test_out_of_order_and_repeated_status_callbacks_never_undo_a_final_outcome(app: Any, call: Call) -> None:
    call.status("initiated")
    call.status("ringing")
    complete_interview(call)
    call.status("completed", CallDuration="150")
    before = row(app, Attempt)
    for late in ("ringing", "in-progress", "initiated", "completed", "busy", "no-answer"):
        call.status(late, CallDuration="1")
    after = row(app, Attempt)
    assert (after.status, after.outcome, after.duration_s, after.ended_at) == \
        (before.status, before.outcome, before.duration_s, before.ended_at)
    assert row(app, Contact).disposition == "1.1"


def test_a_ringing_callback_after_answer_does_not_move_the_call_back(app: Any, call: Call) -> None:
    call.answer()
    call.status("ringing")
    assert row(app, Attempt).status.value == "in_progress"


def test_busy_no_answer_and_failed_calls_store_duration_and_error_code(app: Any, client: Any, tmp_path: Path,
                                                                     clock: Any) -> None:
    outcomes = {}
    for phone, status, code in (("0912000001", "busy", None), ("0912000002", "no-answer", None),
                                ("0912000003", "failed", "32009")):
        start(app, tmp_path, phone=phone)
        call = dial(app, client)
        form = {"CallDuration": "0"} | ({"ErrorCode": code} if code else {})
        call.status(status, **form)
        attempt = row(app, Attempt, id=call.attempt_id)
        outcomes[status] = (attempt.outcome, attempt.error_code, attempt.duration_s)
    assert outcomes == {"busy": ("busy", None, 0), "no-answer": ("no_answer", None, 0),
                        "failed": ("failed", "32009", 0)}
