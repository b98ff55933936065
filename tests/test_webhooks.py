"""Telephony webhooks end to end through the Flask test client: TwiML structure (XPath),
whole calls, refusals, re-prompts, idempotency, retries, late status callbacks, answering
machines, and malformed requests that must be rejected without touching the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select, text

from ivr_service import create_app
from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import Agency, Answer, Attempt, Base, Contact, Interview, OptOut
from ivr_service.services import campaigns, dispatch, frames
from ivr_service.services.dispatch import Pacing, Claimed

HEADER = "Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày trả kết quả\n"
AGENCY = "Sở Tài nguyên và Môi trường tỉnh Đắk Nông"
BASE_URL = "http://sipas.test"          # public_base_url of the conftest settings
PHONE_1, PHONE_1_E164 = "0912345678", "+84912345678"
PHONE_2, PHONE_2_E164 = "0987654321", "+84987654321"
PHONE_3 = "0352222333"
CRITERIA_I_IV = [f"C{i:02d}" for i in range(1, 14)]
FACTOR_V = ["C14", "C15", "C16"]


# --------------------------------------------------------------------------- set-up helpers

def write_frame(tmp_path: Path, phones: Iterable[str], name: str = "frame.csv", field: str = "Đất đai") -> Path:
    path = tmp_path / name
    lines = [f"HS-{i},{field},Nguyễn Văn {i},{phone},02/11/2026" for i, phone in enumerate(phones, 1)]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def new_campaign(app: Any, frame: Path, *, start: bool = True, code: str = "STNMT", name: str = "Quý 4",
                 **options: Any) -> int:
    """Agency (reused by code) + campaign + census sample of ``frame``; started unless told."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    options.setdefault("calls_per_second", 50.0)   # claim every due contact in one round
    with svc.db.begin() as session:
        agency = session.scalar(select(Agency).where(Agency.code == code))
        if agency is None:
            agency = campaigns.create_agency(session, code, AGENCY, now)
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency.id, name=name,
                                             questionnaire="sipas-2024", now=now, **options)
        frames.import_and_sample(session, campaign, frame, SampleRule("census"), 7, now)
        if start:
            campaigns.transition(session, campaign.id, "start", now)
        return campaign.id


def claim(app: Any) -> list[Claimed]:
    svc = app.extensions["sipas"]
    return dispatch.claim_due(svc.db, Pacing("simulator", 1000.0, 1000), svc.clock(), 50)


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


class Call:
    """One call as the provider drives it: the same token and CallSid on every webhook."""

    def __init__(self, client: Any, claimed: Claimed, sid: str | None = None) -> None:
        self.client = client
        self.token = claimed.token
        self.attempt_id = claimed.attempt_id
        self.to = claimed.to
        self.sid = sid or new_sid()

    def post(self, kind: str, query: str = "", **form: str) -> Any:
        return self.client.post(f"/voice/{self.token}/{kind}{query}", data={"CallSid": self.sid, **form})

    def answer(self, **form: str) -> ElementTree.Element:
        response = self.post("answer", **form)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return ElementTree.fromstring(response.data)

    def press(self, item: str, digits: str | None) -> ElementTree.Element:
        form = {} if digits is None else {"Digits": digits}
        response = self.post("gather", f"?item={item}", **form)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return ElementTree.fromstring(response.data)

    def status(self, status: str, **form: str) -> None:
        response = self.post("status", CallStatus=status, **form)
        assert response.status_code == 204, response.get_data(as_text=True)


def one_call(app: Any, client: Any, tmp_path: Path, **options: Any) -> Call:
    new_campaign(app, write_frame(tmp_path, [PHONE_1]), **options)
    claimed = claim(app)
    assert len(claimed) == 1
    return Call(client, claimed[0])


# --------------------------------------------------------------------------- TwiML helpers

def asked(twiml: ElementTree.Element) -> str | None:
    """The item the reply gathers a key for (from the Gather action URL), or None."""
    gathers = twiml.findall("./Gather")
    assert len(gathers) <= 1
    if not gathers:
        return None
    items = parse_qs(urlsplit(gathers[0].get("action", "")).query)["item"]
    assert len(items) == 1
    return items[0]


def says(twiml: ElementTree.Element) -> list[str]:
    return [say.text or "" for say in twiml.iter("Say")]


def hangs_up(twiml: ElementTree.Element) -> bool:
    children = list(twiml)
    return (twiml.find(".//Gather") is None and bool(children) and children[-1].tag == "Hangup"
            and len(twiml.findall("./Hangup")) == 1)


def q(app: Any) -> Any:
    return app.extensions["sipas"].registry.get("sipas-2024")


def voice_text(app: Any, item_id: str) -> str:
    return q(app).item(item_id).voice.get("vi")


def message(app: Any, key: str) -> str:
    return q(app).messages[key].get("vi")


# --------------------------------------------------------------------------- database helpers

def answers(app: Any, attempt_id: int | None = None) -> dict[str, tuple[int | None, str, str]]:
    """item -> (value, status, digits); fails if an item has two rows in the selection."""
    query = select(Answer).order_by(Answer.id)
    if attempt_id is not None:
        query = query.where(Answer.attempt_id == attempt_id)
    with app.extensions["sipas"].db.begin() as session:
        rows = session.scalars(query).all()
        result = {a.item_id: (a.value, a.status, a.digits) for a in rows}
    assert len(result) == len(rows), "an item was stored twice"
    return result


def contact(app: Any, phone_e164: str = PHONE_1_E164, campaign_id: int | None = None) -> Contact:
    query = select(Contact).where(Contact.phone_e164 == phone_e164)
    if campaign_id is not None:
        query = query.where(Contact.campaign_id == campaign_id)
    with app.extensions["sipas"].db.begin() as session:
        return session.scalars(query).one()


def attempt(app: Any, attempt_id: int) -> Attempt:
    with app.extensions["sipas"].db.begin() as session:
        found = session.get(Attempt, attempt_id)
        assert found is not None
        return found


def interview(app: Any) -> Interview:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalars(select(Interview)).one()


def count(app: Any, model: Any) -> int:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def snapshot(app: Any) -> dict[str, Any]:
    """Row counts of every table and every row of every table, read on a fresh connection."""
    with app.extensions["sipas"].db.engine.connect() as conn:
        rows = {table.name: [tuple(r) for r in conn.execute(text(
                    f"SELECT * FROM {table.name} ORDER BY {table.primary_key.columns.values()[0].name}"))]
                for table in Base.metadata.sorted_tables}
    return {"counts": {name: len(r) for name, r in rows.items()}, "rows": rows}


def run_survey(app: Any, call: Call, keys: dict[str, str], default: str = "4",
               stop_before: str | None = None) -> tuple[list[str], ElementTree.Element]:
    """Answer the call and press keys item by item as the replies ask; returns the items
    asked (in order) and the last reply. ``stop_before``: hang up when that item is asked."""
    twiml = call.answer()
    item, seen = asked(twiml), []
    while item is not None and item != stop_before:
        seen.append(item)
        twiml = call.press(item, keys.get(item, default))
        item = asked(twiml)
    return seen, twiml


# ============================================================================ TwiML structure

def test_answer_twiml_gathers_consent_after_an_intro_naming_the_agency(app: Any, client: Any,
                                                                       tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    twiml = call.answer()
    assert twiml.tag == "Response"
    gathers = twiml.findall("./Gather")
    assert len(gathers) == 1 and twiml.find("./Hangup") is None and twiml.findall("./Say") == []
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
    assert all(say.get("language") == "vi-VN" for say in inner)
    intro, prompt = (say.text or "" for say in inner)
    assert AGENCY in intro and "{agency}" not in intro
    assert prompt == voice_text(app, "CONSENT")
    # The call is now in progress and has an interview, but nothing is answered yet.
    stored = attempt(app, call.attempt_id)
    assert (stored.status.value, stored.provider_id) == ("in_progress", call.sid)
    assert interview(app).current_item == "CONSENT"
    assert count(app, Answer) == 0


def test_gather_action_uses_the_configured_public_base_url_and_campaign_language(
        make_settings: Any, clock: Any, tmp_path: Path) -> None:
    other = create_app(make_settings(public_base_url="https://khaosat.example.gov.vn/ivr/"), clock=clock)
    try:
        new_campaign(other, write_frame(tmp_path, [PHONE_1]), language="en")
        call = Call(other.test_client(), claim(other)[0])
        gather = call.answer().find("./Gather")
        assert gather is not None
        assert gather.get("action") == f"https://khaosat.example.gov.vn/ivr/voice/{call.token}/gather?item=CONSENT"
        assert {say.get("language") for say in gather.iter("Say")} == {"en-US"}
        assert "survey" in (gather.findall("./Say")[-1].text or "")
    finally:
        other.extensions["sipas"].db.dispose()


# ============================================================================ whole calls

def test_whole_call_stores_every_answer_skips_factor_v_and_completes(app: Any, client: Any,
                                                                     tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    keys = {"CONSENT": "1", "SCREEN_FEEDBACK": "2", "OVERALL": "5",
            **{item: "54321054321"[i % 11] for i, item in enumerate(CRITERIA_I_IV)}}
    seen, last = run_survey(app, call, keys)

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
    done = interview(app)
    assert done.status.value == "complete" and done.ended_at is not None and done.current_item is None

    # The contact is only settled by the status callback.
    assert contact(app).status.value == "active"
    call.status("completed", CallDuration="95")
    settled = contact(app)
    assert (settled.status.value, settled.disposition, settled.next_attempt_at) == ("done", "1.1", None)
    final = attempt(app, call.attempt_id)
    assert (final.status.value, final.outcome, final.duration_s) == ("completed", "completed", 95)


def test_screening_yes_asks_factor_v_before_overall(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    seen, last = run_survey(app, call, {"CONSENT": "1", "SCREEN_FEEDBACK": "1", "C15": "2", "C16": "0"})
    assert seen == ["CONSENT", *CRITERIA_I_IV, "SCREEN_FEEDBACK", *FACTOR_V, "OVERALL"]
    assert hangs_up(last)
    stored = answers(app)
    assert stored["SCREEN_FEEDBACK"] == (1, "answered", "1")
    assert (stored["C14"], stored["C15"], stored["C16"]) == ((4, "answered", "4"), (2, "answered", "2"),
                                                            (None, "no_opinion", "0"))


# ============================================================================ refusal

def test_refusal_hangs_up_opts_out_and_stops_the_phone_in_other_campaigns(app: Any, client: Any,
                                                                          tmp_path: Path) -> None:
    first = new_campaign(app, write_frame(tmp_path, [PHONE_1], "a.csv"), name="Quý 4")
    # Another campaign holds the same phone (and one other); imported before anyone is called.
    second = new_campaign(app, write_frame(tmp_path, [PHONE_1, PHONE_2], "b.csv"), name="Quý 4 bis",
                          start=False, calls_per_second=1.0)
    claimed = claim(app)
    assert [c.to for c in claimed] == [PHONE_1_E164]
    call = Call(client, claimed[0])
    with app.extensions["sipas"].db.begin() as session:
        campaigns.transition(session, second, "start", app.extensions["sipas"].clock())

    call.answer()
    twiml = call.press("CONSENT", "9")
    assert hangs_up(twiml)
    assert says(twiml) == [message(app, "refused")]
    assert answers(app) == {"CONSENT": (0, "answered", "9")}
    assert interview(app).status.value == "refused"
    with app.extensions["sipas"].db.begin() as session:
        opt = session.scalars(select(OptOut)).one()
        assert (opt.phone_e164, opt.source, opt.campaign_id) == (PHONE_1_E164, "ivr", first)
    # Stopped at once in the other campaign; the other phone there is untouched.
    stopped = contact(app, PHONE_1_E164, second)
    assert (stopped.status.value, stopped.disposition, stopped.next_attempt_at) == ("done", "2.11", None)
    assert contact(app, PHONE_2_E164, second).status.value == "pending"

    call.status("completed", CallDuration="12")
    refused = contact(app, PHONE_1_E164, first)
    assert (refused.status.value, refused.disposition) == ("done", "2.11")
    assert attempt(app, call.attempt_id).outcome == "refused"
    # The next dispatch round calls only the other phone of the second campaign.
    assert [c.to for c in claim(app)] == [PHONE_2_E164]


def test_silence_at_consent_ends_the_call_without_an_opt_out(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    limit = q(app).max_invalid
    for _ in range(limit):
        assert asked(call.press("CONSENT", "")) == "CONSENT"
    twiml = call.press("CONSENT", "")
    assert hangs_up(twiml)
    assert answers(app) == {"CONSENT": (None, "unanswered", "")}
    assert count(app, OptOut) == 0
    call.status("completed", CallDuration="20")
    retried = contact(app)
    assert retried.status.value == "pending" and retried.disposition is None
    assert attempt(app, call.attempt_id).outcome == "break_off"


# ============================================================================ re-prompts

def test_invalid_keys_and_silence_reprompt_then_the_item_is_left_unanswered(app: Any, client: Any,
                                                                            tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    assert asked(call.press("CONSENT", "1")) == "C01"
    limit = q(app).max_invalid
    assert limit == 2

    invalid = call.press("C01", "7")
    assert asked(invalid) == "C01"
    inner = [say.text for say in invalid.findall("./Gather/Say")]
    assert inner == [message(app, "invalid"), "Các phím hợp lệ là 1, 2, 3, 4, 5, 0.", voice_text(app, "C01")]
    assert "C01" not in answers(app)

    silence = call.press("C01", "")
    assert asked(silence) == "C01"
    assert [say.text for say in silence.findall("./Gather/Say")] == [message(app, "no_input"), voice_text(app, "C01")]
    assert "C01" not in answers(app)

    # max_invalid + 1 failures: the item is given up and the next one asked.
    moved_on = call.press("C01", "#")
    assert asked(moved_on) == "C02"
    assert answers(app)["C01"] == (None, "unanswered", "#")
    assert [say.text for say in moved_on.findall("./Gather/Say")][-1] == voice_text(app, "C02")

    # The counter starts again for the next item: one bad key only re-prompts.
    assert asked(call.press("C02", "6")) == "C02"
    assert asked(call.press("C02", None)) == "C02"      # no Digits parameter at all: silence
    assert asked(call.press("C02", "3")) == "C03"
    assert answers(app)["C02"] == (3, "answered", "3")


def test_star_repeats_the_item_and_stores_nothing(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    call.press("CONSENT", "1")
    before = answers(app)
    for _ in range(3):
        repeat = call.press("C01", "*")
        assert asked(repeat) == "C01"
        assert [say.text for say in repeat.findall("./Gather/Say")] == [voice_text(app, "C01")]
        assert answers(app) == before
    # Repeats do not use up the invalid-key allowance.
    assert asked(call.press("C01", "9")) == "C01"
    assert asked(call.press("C01", "5")) == "C02"
    assert answers(app)["C01"] == (5, "answered", "5")


# ============================================================================ idempotency

def test_repeated_and_late_gathers_change_nothing(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    call.press("CONSENT", "1")
    assert asked(call.press("C01", "5")) == "C02"
    before, rows = snapshot(app), count(app, Answer)

    again = call.press("C01", "5")                 # the provider retried the same request
    assert asked(again) == "C02"
    assert [say.text for say in again.findall("./Gather/Say")] == [voice_text(app, "C02")]
    late = call.press("C01", "1")                  # a late, different key for an answered item
    assert asked(late) == "C02"
    refusal = call.press("CONSENT", "9")           # a late "decline" after consenting
    assert asked(refusal) == "C02"
    assert snapshot(app) == before
    assert rows == 2 and answers(app)["C01"] == (5, "answered", "5")
    assert count(app, OptOut) == 0 and interview(app).status.value == "in_progress"

    assert asked(call.press("C02", "4")) == "C03"  # the call carries on normally
    assert count(app, Answer) == 3


def test_a_repeated_last_gather_after_completion_only_says_goodbye(app: Any, client: Any,
                                                                   tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    _, last = run_survey(app, call, {"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
    assert hangs_up(last)
    before = snapshot(app)
    again = call.press("OVERALL", "1")
    assert hangs_up(again) and says(again) == [message(app, "thanks")]
    assert snapshot(app) == before


# ============================================================================ drops and retries

@pytest.mark.parametrize("answered, outcome", [(2, "break_off"), (7, "partial")])
def test_dropped_call_is_retried_and_resumes_at_the_first_unanswered_item(
        app: Any, client: Any, tmp_path: Path, clock: Any, answered: int, outcome: str) -> None:
    call = one_call(app, client, tmp_path)
    start = clock()
    stop = CRITERIA_I_IV[answered]
    seen, _ = run_survey(app, call, {"CONSENT": "1"}, default="5", stop_before=stop)
    assert seen == ["CONSENT", *CRITERIA_I_IV[:answered]]
    call.status("completed", CallDuration="40")     # hung up while `stop` was asked

    first = attempt(app, call.attempt_id)
    assert (first.status.value, first.outcome) == ("completed", outcome)
    waiting = contact(app)
    assert (waiting.status.value, waiting.attempt_count, waiting.disposition) == ("pending", 1, None)
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > start
    assert waiting.next_attempt_at == start + timedelta(days=1)    # default delay, inside the window
    assert interview(app).status.value == "in_progress"

    assert claim(app) == []                                        # not before the retry time
    clock.current = datetime(2026, 11, 18, 11, 0, tzinfo=timezone.utc)   # Wed 18:00 local: closed
    assert claim(app) == []
    clock.current = datetime(2026, 11, 19, 1, 30, tzinfo=timezone.utc)   # Thu 08:30 local: open
    second = claim(app)
    assert len(second) == 1 and second[0].attempt_id != call.attempt_id
    retry = Call(client, second[0])
    assert attempt(app, retry.attempt_id).number == 2

    opening = retry.answer()
    assert asked(opening) == "CONSENT"                            # consent is asked on every call
    assert AGENCY in says(opening)[0]
    assert asked(retry.press("CONSENT", "1")) == stop              # resumes after the last answer
    # Answering the rest on this call completes the interview with both calls' answers.
    item = stop
    while item is not None:
        item = asked(retry.press(item, "2" if item == "SCREEN_FEEDBACK" else "3"))
    retry.status("completed", CallDuration="70")
    assert contact(app).disposition == "1.1" and interview(app).status.value == "complete"
    first_call, second_call = answers(app, call.attempt_id), answers(app, retry.attempt_id)
    assert set(first_call) == {"CONSENT", *CRITERIA_I_IV[:answered]}
    assert all(first_call[i] == (5, "answered", "5") for i in CRITERIA_I_IV[:answered])
    assert set(second_call) == {"CONSENT", *CRITERIA_I_IV[answered:], "SCREEN_FEEDBACK", "OVERALL"}


def test_dropped_call_without_attempts_left_is_a_final_break_off(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path, retry={"max_attempts": 1})
    run_survey(app, call, {"CONSENT": "1"}, stop_before="C03")
    call.status("completed", CallDuration="30")
    done = contact(app)
    assert (done.status.value, done.disposition, done.next_attempt_at) == ("done", "2.12", None)
    assert interview(app).status.value == "break_off"
    assert claim(app) == []


# ============================================================================ status callbacks

def test_late_ringing_after_completed_changes_nothing(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    run_survey(app, call, {"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
    call.status("completed", CallDuration="90")
    before = snapshot(app)
    call.status("ringing")
    call.status("in-progress")
    call.status("no-answer")
    assert snapshot(app) == before
    final = attempt(app, call.attempt_id)
    assert (final.status.value, final.outcome, final.duration_s) == ("completed", "completed", 90)
    assert contact(app).disposition == "1.1"


def test_a_second_completed_does_not_reschedule(app: Any, client: Any, tmp_path: Path, clock: Any) -> None:
    call = one_call(app, client, tmp_path)
    run_survey(app, call, {"CONSENT": "1"}, stop_before="C02")
    call.status("completed", CallDuration="25")
    scheduled = contact(app).next_attempt_at
    assert scheduled is not None
    before = snapshot(app)
    clock.advance(minutes=30)
    call.status("completed", CallDuration="26")
    assert snapshot(app) == before
    again = contact(app)
    assert (again.next_attempt_at, again.attempt_count, again.status.value) == (scheduled, 1, "pending")


def test_progress_statuses_only_move_forward(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    call.status("initiated")
    assert attempt(app, call.attempt_id).status.value == "initiated"
    call.status("ringing")
    assert attempt(app, call.attempt_id).status.value == "ringing"
    call.status("queued")                      # out of order: ignored
    call.status("initiated")
    assert attempt(app, call.attempt_id).status.value == "ringing"
    assert contact(app).status.value == "active"


def test_busy_schedules_a_retry(app: Any, client: Any, tmp_path: Path, clock: Any) -> None:
    call = one_call(app, client, tmp_path)
    call.status("ringing")
    call.status("busy")
    busy = attempt(app, call.attempt_id)
    assert (busy.status.value, busy.outcome, busy.ended_at) == ("busy", "busy", clock())
    retry = contact(app)
    assert (retry.status.value, retry.disposition) == ("pending", None)
    assert retry.next_attempt_at == clock() + timedelta(minutes=15)
    assert claim(app) == []
    clock.advance(minutes=15)
    assert [c.to for c in claim(app)] == [PHONE_1_E164]


def test_no_answer_until_max_attempts_ends_as_3_13(app: Any, client: Any, tmp_path: Path, clock: Any) -> None:
    new_campaign(app, write_frame(tmp_path, [PHONE_1]))
    for number in (1, 2, 3):
        claimed = claim(app)
        assert len(claimed) == 1, f"attempt {number} was not dispatched"
        call = Call(client, claimed[0])
        assert attempt(app, call.attempt_id).number == number
        call.status("ringing")
        call.status("no-answer")
        assert attempt(app, call.attempt_id).outcome == "no_answer"
        current = contact(app)
        assert current.attempt_count == number
        if number < 3:
            assert (current.status.value, current.disposition) == ("pending", None)
            assert current.next_attempt_at == clock() + timedelta(hours=2)
            clock.advance(hours=2)
    final = contact(app)
    assert (final.status.value, final.disposition, final.next_attempt_at) == ("done", "3.13", None)
    assert count(app, Interview) == 0
    clock.advance(days=1)
    assert claim(app) == []


# ============================================================================ answering machines

def test_answering_machine_is_hung_up_on_and_retried(app: Any, client: Any, tmp_path: Path, clock: Any) -> None:
    call = one_call(app, client, tmp_path)
    twiml = call.answer(AnsweredBy="machine_start")
    assert hangs_up(twiml) and says(twiml) == []
    assert attempt(app, call.attempt_id).outcome == "machine"
    assert count(app, Interview) == 0 and count(app, Answer) == 0
    call.status("completed", CallDuration="4")
    final = attempt(app, call.attempt_id)
    assert (final.status.value, final.outcome) == ("completed", "machine")
    retry = contact(app)
    assert retry.status.value == "pending" and retry.next_attempt_at == clock() + timedelta(hours=3)


def test_machine_reported_only_in_the_status_callback(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    assert asked(call.answer(AnsweredBy="unknown")) == "CONSENT"     # not a machine: the survey starts
    call.status("completed", CallDuration="9", AnsweredBy="machine_end_beep")
    assert attempt(app, call.attempt_id).outcome == "machine"
    assert contact(app).status.value == "pending"


def test_human_answer_starts_the_survey(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    assert asked(call.answer(AnsweredBy="human")) == "CONSENT"
    assert attempt(app, call.attempt_id).outcome is None


# ============================================================================ malformed requests

BAD_REQUESTS = [
    # (webhook, query, form replacing the defaults, status, words in the message)
    ("gather", "?item=C02", {"CallSid": None, "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C02", {"CallSid": "CA123", "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C02", {"CallSid": "XX" + "a" * 32, "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C02", {"CallSid": "CA" + "g" * 32, "Digits": "4"}, 400, "CallSid"),
    ("answer", "", {"CallSid": "CA" + "a" * 32 + "\n"}, 400, "CallSid"),
    ("status", "", {"CallSid": "", "CallStatus": "completed"}, 400, "CallSid"),
    ("gather", "?item=C99", {"Digits": "4"}, 400, "C99"),
    ("gather", "", {"Digits": "4"}, 400, "item"),
    ("gather", "?item=C02%3BDROP", {"Digits": "4"}, 400, "item"),
    ("gather", "?item=C02", {"Digits": "4a"}, 400, "Digits"),
    ("gather", "?item=C02", {"Digits": "four"}, 400, "Digits"),
    ("gather", "?item=C02", {"Digits": "123456789"}, 400, "Digits"),
    ("status", "", {"CallStatus": "exploded"}, 400, "CallStatus"),
    ("status", "", {}, 400, "CallStatus"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "ten"}, 400, "CallDuration"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "-5"}, 400, "CallDuration"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "1.5"}, 400, "CallDuration"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "²"}, 400, "CallDuration"),
    ("status", "", {"CallStatus": "completed", "CallDuration": "9" * 20}, 400, "CallDuration"),
    ("status", "", {"CallStatus": "failed", "ErrorCode": "E" * 30}, 400, "ErrorCode"),
    ("answer", "", {"CallSid": "CA" + "0" * 32}, 409, "CallSid"),     # another call's SID
    ("gather", "?item=C02", {"CallSid": "CA" + "0" * 32, "Digits": "4"}, 409, "CallSid"),
    ("status", "", {"CallSid": "CA" + "0" * 32, "CallStatus": "completed"}, 409, "CallSid"),
]


@pytest.mark.parametrize("kind, query, form, status, words", BAD_REQUESTS,
                         ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(BAD_REQUESTS)])
def test_malformed_requests_are_rejected_and_change_nothing(app: Any, client: Any, tmp_path: Path, kind: str,
                                                            query: str, form: dict[str, str | None], status: int,
                                                            words: str) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    call.press("CONSENT", "1")
    call.press("C01", "5")
    before = snapshot(app)
    assert before["counts"]["answers"] == 2 and before["counts"]["interviews"] == 1

    data = {"CallSid": call.sid, **form}
    response = client.post(f"/voice/{call.token}/{kind}{query}",
                           data={k: v for k, v in data.items() if v is not None})
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert words in body
    assert snapshot(app) == before
    # The call is still usable afterwards.
    assert asked(call.press("C02", "4")) == "C03"


@pytest.mark.parametrize("kind", ["answer", "gather", "status"])
@pytest.mark.parametrize("token", ["0123456789abcdef" * 2, "not-a-token", "A" * 32])
def test_unknown_token_is_404_and_changes_nothing(app: Any, client: Any, tmp_path: Path, kind: str,
                                                  token: str) -> None:
    call = one_call(app, client, tmp_path)
    call.answer()
    before = snapshot(app)
    query = "?item=CONSENT" if kind == "gather" else ""
    response = client.post(f"/voice/{token}/{kind}{query}",
                           data={"CallSid": new_sid(), "Digits": "1", "CallStatus": "completed"})
    assert response.status_code == 404
    assert "unknown call attempt" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_gather_before_answer_is_a_conflict_and_changes_nothing(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    before = snapshot(app)
    response = call.post("gather", "?item=CONSENT", Digits="1")
    assert response.status_code == 409 and "not been answered" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_call_sid_with_a_trailing_newline_is_not_stored(app: Any, client: Any, tmp_path: Path) -> None:
    call = one_call(app, client, tmp_path)
    before = snapshot(app)
    for kind, form in (("answer", {}), ("status", {"CallStatus": "ringing"})):
        response = client.post(f"/voice/{call.token}/{kind}", data={"CallSid": call.sid + "\n", **form})
        assert response.status_code == 400 and "CallSid" in response.get_data(as_text=True)
    assert snapshot(app) == before
    assert attempt(app, call.attempt_id).provider_id is None
