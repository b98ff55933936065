"""Two-way SMS surveys: what a question message shows, what a reply means, how many items fit.

Pure functions over a :class:`Questionnaire` and the responses so far (the web form's item
set: ``flow.next_item(..., "web")``, so conditions skip items exactly as on the form).

* **Blocks.** A question message shows the current item and up to :data:`BLOCK` - 1 items
  after it that are sure to be asked (it stops before an item whose condition depends on an
  item shown in the same message). The citizen answers one item ("5") or several in order
  ("5 4 5", "5,4,5", "545"); each key goes through :func:`flow.step`.
* **Invalid replies.** An invalid key re-asks its item once (:data:`MAX_INVALID`); the second
  invalid key leaves it unanswered and the next item is asked. Keys after an invalid one in
  the same reply are not used (the citizen answered a question they had not been shown).
* **The cap.** Decree 91/2020: at most ``cap`` (3) messages per number in any 24 hours. A
  session sends an invitation (the first block), further question messages and a thank-you,
  so at most ``cap - 2`` question messages besides the invitation: with blocks of
  :data:`BLOCK` items at most ``(cap - 1) * BLOCK`` = 6 items can be asked in a day
  (one-by-one replies fit only ``cap - 1`` = 2). :func:`check_capacity` refuses more, and
  counts every item the session might ask (conditional ones included).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import flow
from .flow import Event, Response
from .messages import unaccent
from .questionnaire import Item, Questionnaire, Scale

LINK = "link"
TWO_WAY = "two_way"
MODES = (LINK, TWO_WAY)
CHANNEL = "web"                  # the item set: the web form's (conditions included)
BLOCK = 3                        # items one question message shows ("5 4 5")
MAX_INVALID = 1                  # an invalid reply re-asks its item once
DEFAULT_SESSION_HOURS = 24
MAX_SESSION_HOURS = 72
SHORT_FORM = "sipas-sms-short"
REFUSE_HINT = "Tu choi: TC"

_SEPARATORS = re.compile(r"[\s,;.\-/]+")


@dataclass(frozen=True)
class SmsMode:
    mode: str = LINK
    session_hours: int = DEFAULT_SESSION_HOURS

    @property
    def two_way(self) -> bool:
        return self.mode == TWO_WAY


def sms_mode(plan: Sequence[Mapping[str, Any]] | None) -> SmsMode:
    """The SMS mode of a (validated) channel plan: its sms step's ``mode`` and ``session_hours``."""
    for step in plan or ():
        if step.get("channel") == "sms":
            return SmsMode(step.get("mode", LINK), step.get("session_hours", DEFAULT_SESSION_HOURS))
    return SmsMode()


def session_items(q: Questionnaire) -> list[Item]:
    """Every item a session may ask (conditional ones included): the worst case."""
    return [i for i in q.items if CHANNEL in i.channels]


def max_items(cap: int, block: int = BLOCK) -> int:
    """Items that fit in ``cap`` messages: the invitation and ``cap - 2`` more question
    messages of ``block`` items each, and the thank-you."""
    return max(cap - 1, 0) * block


def check_capacity(q: Questionnaire, cap: int, block: int = BLOCK) -> None:
    """Raise ValueError when ``q`` asks more items than the cap lets a session ask."""
    n, limit = len(session_items(q)), max_items(cap, block)
    if n > limit:
        raise ValueError(
            f"two-way SMS cannot ask questionnaire {q.key!r}: it has {n} items, but at most {cap} messages per "
            f"number in 24 hours (Decree 91/2020) leave room for the invitation, {cap - 2} more question "
            f"message(s) and the thank-you, each message asking at most {block} items answered in one reply "
            f"(\"5 4 5\"), so at most {limit} items; use the short form {SHORT_FORM!r} (overall satisfaction "
            f"plus three items), or mode 'link' (an invitation with a link to the web form)")


def block(q: Questionnaire, responses: Mapping[str, Response], size: int = BLOCK) -> list[Item]:
    """The items the next question message shows (empty when the survey is over)."""
    first = flow.next_item(q, responses, CHANNEL)
    if first is None:
        return []
    shown = [first]
    if first.kind == "consent":
        return shown
    start = q.items.index(first) + 1
    for item in q.items[start:]:
        if len(shown) >= size:
            break
        if CHANNEL not in item.channels or item.id in responses:
            continue
        if item.kind == "consent" or (item.condition is not None
                                      and item.condition.item in {i.id for i in shown}):
            break  # its asking depends on an answer not given yet
        if flow.is_applicable(item, responses):
            shown.append(item)
    return shown


def key_hint(scale: Scale, lang: str = "vi") -> str:
    """ "1 Rat khong hai long..5 Rat hai long, 0 Khong y kien" or "1 Co, 2 Khong"."""
    options = scale.options
    ends = [options[0], options[-1]] if len(options) > 2 else list(options)
    joiner = ".." if len(options) > 2 else ", "
    hint = joiner.join(f"{o.key} {unaccent(o.label.get(lang))}" for o in ends)
    if scale.no_opinion_key is not None and scale.no_opinion_label is not None:
        hint += f", {scale.no_opinion_key} {unaccent(scale.no_opinion_label.get(lang))}"
    return hint


def question_text(q: Questionnaire, responses: Mapping[str, Response], lang: str = "vi",
                  intro: str = "", prefix: str = "") -> str:
    """A question message: ``prefix`` (e.g. "invalid"), ``intro``, the block's items numbered
    as asked ("Cau 2/5"), each scale's key hint once, how to answer several, how to refuse."""
    items = block(q, responses)
    possible = [i for i in session_items(q) if i.condition is None or i.condition.item not in responses
                or flow.is_applicable(i, responses)]
    total = len(possible)
    answered = len([i for i in possible if i.id in responses])
    parts = [p for p in (prefix, intro) if p]
    hinted: set[str] = set()
    for number, item in enumerate(items, start=answered + 1):
        text = unaccent(item.sms.get(lang)).rstrip(" ?.")
        hint = "" if item.scale.id in hinted else f" ({key_hint(item.scale, lang)})"
        hinted.add(item.scale.id)
        parts.append(f"Cau {number}/{total}: {text}?{hint}")
    if len(items) > 1:
        parts.append(f"Tra loi {len(items)} cau mot lan, vd: {' '.join(i.scale.options[-1].key for i in items)}.")
    parts.append(REFUSE_HINT)
    return " ".join(parts)


def parse_reply(text: str) -> list[str]:
    """The keys of a reply: "5 4 5", "5,4,5" and "545" are ["5", "4", "5"]; "" is [""]."""
    tokens = [t for t in _SEPARATORS.split(unaccent(text).strip()) if t]
    if len(tokens) == 1 and len(tokens[0]) > 1 and tokens[0].isdigit():
        tokens = list(tokens[0])
    return tokens or [""]


@dataclass(frozen=True)
class Reply:
    recorded: list[tuple[Item, Response]]   # in order; GAVE_UP items as UNANSWERED
    retries: int                            # invalid replies to the item now asked
    repeats: int
    reasked: bool                           # the last key was invalid (or "*"): ask it again
    finished: bool                          # no item is left to ask


def apply_reply(q: Questionnaire, responses: Mapping[str, Response], retries: int, repeats: int,
                text: str) -> Reply:
    """Apply one reply's keys in order through :func:`flow.step` (see the module docstring)."""
    strict = dataclasses.replace(q, max_invalid=min(q.max_invalid, MAX_INVALID))
    state = dict(responses)
    recorded: list[tuple[Item, Response]] = []
    reasked = False
    for key in parse_reply(text):
        if flow.next_item(strict, state, CHANNEL) is None:
            break  # more keys than items: the rest is ignored
        step = flow.step(strict, state, retries, repeats, key, CHANNEL)
        retries, repeats = step.retries, step.repeats
        if step.response is not None:
            recorded.append((step.item, step.response))
            state[step.item.id] = step.response
        if step.event in (Event.INVALID, Event.NO_INPUT, Event.REPEAT):
            reasked = True
            break
        if step.event is Event.GAVE_UP:
            break
    finished = flow.next_item(strict, state, CHANNEL) is None
    return Reply(recorded, retries, repeats, reasked and not finished, finished)
