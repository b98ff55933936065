"""Survey flow: which item comes next, what a key press means, when the survey ends.

Pure functions over a :class:`Questionnaire` and the responses recorded so far. The
telephony layer stores the returned :class:`Step` and renders its prompt; nothing here
knows about HTTP, TwiML or the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .questionnaire import Item, Questionnaire

MAX_REPEATS = 3


class AnswerStatus(StrEnum):
    ANSWERED = "answered"          # a value on the item's scale
    NO_OPINION = "no_opinion"      # the scale's "không ý kiến" key
    UNANSWERED = "unanswered"      # invalid keys or silence beyond the limit


class Event(StrEnum):
    RECORDED = "recorded"          # a valid answer was recorded
    REPEAT = "repeat"              # the citizen asked to hear the item again
    INVALID = "invalid"            # a key that is not on the scale
    NOT_UNDERSTOOD = "not_understood"  # a spoken answer not recognised, or heard too unsurely
    NO_INPUT = "no_input"          # silence
    GAVE_UP = "gave_up"            # too many invalid keys or silences: item left unanswered


class Finish(StrEnum):
    COMPLETE = "complete"          # every applicable item was asked
    REFUSED = "refused"            # declined at the consent item (keypad 9)
    NO_CONSENT = "no_consent"      # never answered the consent item


class Disposition(StrEnum):
    """Interview-level outcome, the basis of AAPOR codes 1.1, 1.2, 2.11 and 2.12."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    BREAK_OFF = "break_off"
    REFUSED = "refused"


@dataclass(frozen=True)
class Response:
    value: int | None
    status: AnswerStatus
    digits: str = ""


@dataclass(frozen=True)
class Step:
    """What one key press (or silence) did, and what to ask next."""

    item: Item                       # the item the input was for
    event: Event
    response: Response | None        # to be recorded for ``item`` (RECORDED, GAVE_UP)
    retries: int                     # invalid inputs/silences on the item now asked
    repeats: int                     # repeats of the item now asked
    next_item: Item | None           # None when the survey is over
    finish: Finish | None


Responses = Mapping[str, Response]


def is_applicable(item: Item, responses: Responses) -> bool:
    if item.condition is None:
        return True
    earlier = responses.get(item.condition.item)
    return earlier is not None and earlier.value in item.condition.values


def next_item(q: Questionnaire, responses: Responses, channel: str = "voice") -> Item | None:
    """The first item of the channel not yet responded to whose condition holds."""
    if _refused(q, responses):
        return None
    for item in q.items:
        if channel in item.channels and item.id not in responses and is_applicable(item, responses):
            return item
    return None


def _refused(q: Questionnaire, responses: Responses) -> bool:
    for item in q.items:
        if item.kind == "consent" and item.id in responses:
            response = responses[item.id]
            if response.value == 0 or response.status is AnswerStatus.UNANSWERED:
                return True
    return False


def finish_of(q: Questionnaire, responses: Responses, channel: str = "voice") -> Finish | None:
    for item in q.items:
        if item.kind == "consent" and item.id in responses:
            response = responses[item.id]
            if response.value == 0:
                return Finish.REFUSED
            if response.status is AnswerStatus.UNANSWERED:
                return Finish.NO_CONSENT
    return Finish.COMPLETE if next_item(q, responses, channel) is None else None


def interpret(q: Questionnaire, item: Item, digits: str | None) -> tuple[Event, Response | None]:
    """What a key press means for one item, without any retry bookkeeping."""
    keys = (digits or "").strip()
    if not keys:
        return Event.NO_INPUT, None
    if keys == q.repeat_key:
        return Event.REPEAT, None
    option = item.scale.option_for_key(keys)
    if option is not None:
        return Event.RECORDED, Response(option.value, AnswerStatus.ANSWERED, keys)
    if item.scale.no_opinion_key is not None and keys == item.scale.no_opinion_key:
        return Event.RECORDED, Response(None, AnswerStatus.NO_OPINION, keys)
    return Event.INVALID, None


def step(q: Questionnaire, responses: Responses, retries: int, repeats: int,
         digits: str | None, channel: str = "voice") -> Step:
    """Apply one key press (or silence) to the item currently asked.

    ``retries`` and ``repeats`` are the counters stored for the current item. Raises
    ``ValueError`` if the survey is already over (there is no current item).
    """
    item = current(q, responses, channel)
    event, response = interpret(q, item, digits)
    return apply(q, responses, retries, repeats, event, response, (digits or "").strip(), channel)


def current(q: Questionnaire, responses: Responses, channel: str = "voice") -> Item:
    """The item being asked; ``ValueError`` when the survey is over."""
    item = next_item(q, responses, channel)
    if item is None:
        raise ValueError("the survey is already over; there is no item to answer")
    return item


def apply(q: Questionnaire, responses: Responses, retries: int, repeats: int, event: Event,
          response: Response | None, digits: str = "", channel: str = "voice") -> Step:
    """Apply an interpreted input (:func:`interpret`, or a spoken answer matched to a key)
    to the current item, with the re-prompt and repeat limits; ``digits`` is kept on an
    item left unanswered."""
    item = current(q, responses, channel)
    if event is Event.REPEAT and repeats >= MAX_REPEATS:
        event = Event.INVALID
    if event is Event.REPEAT:
        return Step(item, event, None, retries, repeats + 1, item, None)
    if event in (Event.INVALID, Event.NOT_UNDERSTOOD, Event.NO_INPUT):
        if retries + 1 <= q.max_invalid:
            return Step(item, event, None, retries + 1, repeats, item, None)
        event = Event.GAVE_UP
        response = Response(None, AnswerStatus.UNANSWERED, digits)
    assert response is not None
    after = {**responses, item.id: response}
    return Step(item, event, response, 0, 0, next_item(q, after, channel),
                finish_of(q, after, channel))


def disposition(q: Questionnaire, responses: Responses, channel: str = "voice",
                partial_threshold: float = 0.5, complete_threshold: float = 0.8) -> Disposition:
    """Classify an interview that has ended (completed, or the call dropped).

    By the share of applicable rated items that got an answer or "no opinion": complete
    when the flow reached its end with at least ``complete_threshold`` of them (someone
    who consented and then let every item time out is not a complete); partial from
    ``partial_threshold``; below that a break-off.
    """
    finish = finish_of(q, responses, channel)
    if finish is Finish.REFUSED:
        return Disposition.REFUSED
    if finish is Finish.NO_CONSENT:
        return Disposition.BREAK_OFF
    applicable = [i for i in q.rated_items if channel in i.channels and is_applicable(i, responses)]
    answered = [i for i in applicable if i.id in responses
                and responses[i.id].status is not AnswerStatus.UNANSWERED]
    share = len(answered) / len(applicable) if applicable else 1.0
    if finish is Finish.COMPLETE and share >= complete_threshold:
        return Disposition.COMPLETE
    if applicable and share >= partial_threshold:
        return Disposition.PARTIAL
    return Disposition.BREAK_OFF
