"""Robustness of the voice webhooks: the provider's retried, duplicated, late and
out-of-order requests and status callbacks change nothing they must not, and malformed
requests are rejected with a clear message and leave the database unchanged.

Whole calls are in test_voice_calls.py; signatures in test_signatures.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from ivr_service.persistence.models import Answer, Attempt, Contact, Interview, OptOut

from .conftest import answers, asked, count, full, hangs_up, message, new_sid, row, says, snapshot, voice_text

# ============================================================================ retried and late gathers

def test_repeated_and_late_gathers_change_nothing(app: Any, call: Any) -> None:
    call.answer()
    call.press("CONSENT", "1")
    assert asked(call.press("C01", "5")) == "C02"
    before, rows = snapshot(app), count(app, Answer)

    again = call.press("C01", "5")                 # the provider retried the same request
    assert asked(again) == "C02"
    # Re-asked with the whole scale: the first reply may never have been heard.
    assert [say.text for say in again.findall("./Gather/Say")] == [voice_text(app, "C02"), full(app)]
    late = call.press("C01", "1")                  # a late, different key for an answered item
    assert asked(late) == "C02"
    refusal = call.press("CONSENT", "9")           # a late "decline" after consenting
    assert asked(refusal) == "C02"
    assert snapshot(app) == before
    assert rows == 2 and answers(app)["C01"] == (5, "answered", "5")
    assert count(app, OptOut) == 0 and row(app, Interview).status.value == "in_progress"

    assert asked(call.press("C02", "4")) == "C03"  # the call carries on normally
    assert count(app, Answer) == 3


def test_a_key_press_is_read_in_two_statements_and_written_in_one_on_postgresql(app: Any, call: Any) -> None:
    """On PostgreSQL the answer's INSERT rides in the interview's UPDATE (a CTE): lock, read,
    one write. SQLite has no INSERT in a WITH clause: two writes. Both rows change either way."""
    call.answer()
    call.press("CONSENT", "1")
    engine = app.extensions["sipas"].db.engine
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb not in ("BEGIN", "COMMIT"):    # SQLite's explicit BEGIN (persistence.db)
            sent.append(verb)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert asked(call.press("C01", "5")) == "C02"
    finally:
        event.remove(engine, "before_cursor_execute", record)
    writes = ["WITH"] if engine.dialect.name == "postgresql" else ["INSERT", "UPDATE"]
    assert sent == ["SELECT", "SELECT", *writes]
    assert answers(app)["C01"] == (5, "answered", "5")
    assert row(app, Interview).current_item == "C02"


def test_a_retried_keypress_with_the_same_idempotency_token_is_applied_once(app: Any, call: Any) -> None:
    call.answer()
    call.press("CONSENT", "1")
    token = {"I-Twilio-Idempotency-Token": "a1b2c3-retry"}
    first = call.press("C01", "7", **token)
    retried = call.press("C01", "7", **token)
    assert asked(first) == asked(retried) == "C01"
    assert row(app, Interview).retries == 1  # the retry did not use up a second re-prompt
    call.press("C01", "7", **{"I-Twilio-Idempotency-Token": "d4e5f6"})
    assert row(app, Interview).retries == 2


def test_a_repeated_last_gather_after_completion_only_says_goodbye(app: Any, call: Any) -> None:
    _, last = call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
    assert hangs_up(last)
    before = snapshot(app)
    again = call.press("OVERALL", "1")
    assert hangs_up(again) and says(again) == [message(app, "thanks")]
    assert snapshot(app) == before


# ============================================================================ late and out-of-order status callbacks

def test_late_ringing_after_completed_changes_nothing(app: Any, call: Any) -> None:
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
    call.status("completed", CallDuration="90")
    before = snapshot(app)
    call.status("ringing")
    call.status("in-progress")
    call.status("no-answer")
    assert snapshot(app) == before
    final = row(app, Attempt, id=call.attempt_id)
    assert (final.status.value, final.outcome, final.duration_s) == ("completed", "completed", 90)
    assert row(app, Contact).disposition == "1.1"


def test_out_of_order_and_repeated_status_callbacks_never_undo_a_final_outcome(app: Any, call: Any) -> None:
    call.status("initiated")
    call.status("ringing")
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "1"})
    call.status("completed", CallDuration="150")
    before = row(app, Attempt)
    for late in ("ringing", "in-progress", "initiated", "completed", "busy", "no-answer"):
        call.status(late, CallDuration="1")
    after = row(app, Attempt)
    assert (after.status, after.outcome, after.duration_s, after.ended_at) == \
        (before.status, before.outcome, before.duration_s, before.ended_at)
    assert row(app, Contact).disposition == "1.1"


def test_callbacks_after_a_final_busy_never_undo_it(app: Any, call: Any) -> None:
    call.status("busy")
    call.status("ringing")
    call.status("completed", CallDuration="30")
    attempt, contact = row(app, Attempt, id=call.attempt_id), row(app, Contact)
    assert (attempt.status.value, attempt.outcome) == ("busy", "busy")
    assert contact.status.value == "pending" and contact.next_attempt_at > attempt.created_at


def test_a_second_completed_does_not_reschedule(app: Any, call: Any, clock: Any) -> None:
    call.survey({"CONSENT": "1"}, stop_before="C02")
    call.status("completed", CallDuration="25")
    scheduled = row(app, Contact).next_attempt_at
    assert scheduled is not None
    before = snapshot(app)
    clock.advance(minutes=30)
    call.status("completed", CallDuration="26")
    assert snapshot(app) == before
    again = row(app, Contact)
    assert (again.next_attempt_at, again.attempt_count, again.status.value) == (scheduled, 1, "pending")


def test_progress_statuses_only_move_forward(app: Any, call: Any) -> None:
    call.status("initiated")
    assert row(app, Attempt, id=call.attempt_id).status.value == "initiated"
    call.status("ringing")
    assert row(app, Attempt, id=call.attempt_id).status.value == "ringing"
    call.status("queued")                      # out of order: ignored
    call.status("initiated")
    assert row(app, Attempt, id=call.attempt_id).status.value == "ringing"
    assert row(app, Contact).status.value == "active"


def test_a_ringing_callback_after_answer_does_not_move_the_call_back(app: Any, call: Any) -> None:
    call.answer()
    call.status("ringing")
    assert row(app, Attempt).status.value == "in_progress"


# ============================================================================ malformed requests

BAD_REQUESTS = [
    # (webhook, query, form replacing the defaults, status, words in the message)
    ("gather", "?item=C02", {"CallSid": None, "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C02", {"CallSid": "", "Digits": "4"}, 400, "CallSid"),
    ("gather", "?item=C02", {"CallSid": "nope", "Digits": "4"}, 400, "CallSid"),
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
def test_malformed_requests_are_rejected_and_change_nothing(app: Any, client: Any, call: Any, kind: str,
                                                            query: str, form: dict[str, str | None], status: int,
                                                            words: str) -> None:
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
def test_unknown_token_is_404_and_changes_nothing(app: Any, client: Any, call: Any, kind: str, token: str) -> None:
    call.answer()
    before = snapshot(app)
    query = "?item=CONSENT" if kind == "gather" else ""
    response = client.post(f"/voice/{token}/{kind}{query}",
                           data={"CallSid": new_sid(), "Digits": "1", "CallStatus": "completed"})
    assert response.status_code == 404
    assert "unknown call attempt" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_gather_before_answer_is_a_conflict_and_changes_nothing(app: Any, call: Any) -> None:
    before = snapshot(app)
    response = call.post("gather", "?item=CONSENT", Digits="1")
    assert response.status_code == 409 and "not been answered" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_call_sid_with_a_trailing_newline_is_not_stored(app: Any, client: Any, call: Any) -> None:
    before = snapshot(app)
    for kind, form in (("answer", {}), ("status", {"CallStatus": "ringing"})):
        response = client.post(f"/voice/{call.token}/{kind}", data={"CallSid": call.sid + "\n", **form})
        assert response.status_code == 400 and "CallSid" in response.get_data(as_text=True)
    assert snapshot(app) == before
    assert row(app, Attempt, id=call.attempt_id).provider_id is None
