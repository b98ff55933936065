"""Survey flow: skip logic, re-prompts, and properties over any key sequence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr_service.core import flow
from ivr_service.core.flow import AnswerStatus, Disposition, Event, Finish, Response
from ivr_service.core.questionnaire import Questionnaire, load_questionnaire

from .conftest import ROOT

Q = load_questionnaire(ROOT / "config" / "questionnaires" / "sipas-2024.yaml")
Q2 = load_questionnaire(ROOT / "config" / "questionnaires" / "sipas-2level-2024.yaml")
KEYS = st.sampled_from(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "", None, "12", "abc"])


def run(q: Questionnaire, inputs: list[str | None]) -> tuple[dict[str, Response], list[Event]]:
    responses: dict[str, Response] = {}
    retries = repeats = 0
    events = []
    for digits in inputs:
        if flow.next_item(q, responses) is None:
            break
        step = flow.step(q, responses, retries, repeats, digits)
        events.append(step.event)
        retries, repeats = step.retries, step.repeats
        if step.response is not None:
            responses[step.item.id] = step.response
    return responses, events


def test_happy_path_without_feedback_skips_factor_v() -> None:
    inputs = ["1"] + ["4"] * 13 + ["2", "5"]
    responses, _ = run(Q, inputs)
    assert flow.next_item(Q, responses) is None
    assert flow.finish_of(Q, responses) is Finish.COMPLETE
    assert not {"C14", "C15", "C16"} & set(responses)
    assert responses["OVERALL"] == Response(5, AnswerStatus.ANSWERED, "5")
    assert "N1" not in responses  # needs items are web-only


def test_feedback_yes_asks_factor_v() -> None:
    responses, _ = run(Q, ["1"] + ["4"] * 13 + ["1"])
    assert flow.next_item(Q, responses).id == "C14"


def test_refusal_ends_the_survey() -> None:
    responses, _ = run(Q, ["9"])
    assert flow.next_item(Q, responses) is None
    assert flow.disposition(Q, responses) is Disposition.REFUSED


def test_invalid_keys_reprompt_then_leave_the_item_unanswered() -> None:
    responses, events = run(Q, ["1", "7", "", "8"])
    assert events == [Event.RECORDED, Event.INVALID, Event.NO_INPUT, Event.GAVE_UP]
    assert responses["C01"].status is AnswerStatus.UNANSWERED
    assert flow.next_item(Q, responses).id == "C02"


def test_repeat_does_not_count_as_invalid_until_the_cap() -> None:
    responses, events = run(Q, ["1"] + ["*"] * flow.MAX_REPEATS + ["3"])
    assert events[1:] == [Event.REPEAT] * flow.MAX_REPEATS + [Event.RECORDED]
    assert responses["C01"].value == 3


def test_no_opinion_is_recorded_without_a_value() -> None:
    responses, _ = run(Q, ["1", "0"])
    assert responses["C01"] == Response(None, AnswerStatus.NO_OPINION, "0")


def test_partial_and_break_off() -> None:
    partial, _ = run(Q, ["1"] + ["4"] * 10)
    assert flow.disposition(Q, partial) is Disposition.PARTIAL
    broken, _ = run(Q, ["1", "4", "4"])
    assert flow.disposition(Q, broken) is Disposition.BREAK_OFF


def _bound(q: Questionnaire) -> int:
    return len(q.items) * (q.max_invalid + 1 + flow.MAX_REPEATS + 1)


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(KEYS, max_size=80), which=st.sampled_from([Q, Q2]))
def test_any_key_sequence_ends_cleanly(inputs: list[str | None], which: Questionnaire) -> None:
    # Whatever is pressed, followed by silence, the survey ends within a bound, never
    # raises, and records only values on the item's scale.
    responses, events = run(which, inputs + [None] * _bound(which))
    assert flow.next_item(which, responses) is None
    assert len(events) <= len(inputs) + _bound(which)
    assert flow.disposition(which, responses) in set(Disposition)
    for item_id, response in responses.items():
        item = which.item(item_id)
        if response.status is AnswerStatus.ANSWERED:
            assert response.value in item.scale.values
        else:
            assert response.value is None
        assert flow.is_applicable(item, responses)


@settings(max_examples=200, deadline=None)
@given(inputs=st.lists(KEYS, max_size=60))
def test_interrupted_interviews_are_complete_partial_break_off_or_refused(inputs: list[str | None]) -> None:
    # A call can drop after any prefix of inputs: the interview is still classifiable.
    responses, _ = run(Q, inputs)
    disposition = flow.disposition(Q, responses)
    if flow.next_item(Q, responses) is None and flow.finish_of(Q, responses) is Finish.COMPLETE:
        assert disposition is Disposition.COMPLETE
    else:
        assert disposition in {Disposition.PARTIAL, Disposition.BREAK_OFF, Disposition.REFUSED}
