"""How long a complete call takes: the spoken seconds of a call played through
:mod:`.flow` with valid answers, from the questionnaire's own texts.

A call is walked as the voice service asks it (``services/voice.py``, rendered by
``web/twiml.py``): the opening (the intro with the agency's name, then the speech hint when
the campaign takes spoken answers), each item's prompt (or its recording) followed by its
scale's instructions or cue under the questionnaire's instruction mode (:mod:`.prompts`,
with the voice service's bookkeeping: the item asked before, and the scales of the items
asked so far on this call), and the closing (the agency's line when the campaign has one,
then thanks). Nobody presses a wrong key, stays silent or asks for a repeat.

Two paths bound a complete call. Where an item's answer decides whether later items are
asked (factor V after SCREEN_FEEDBACK), the *longest* path answers so that the most of them
are asked and the *shortest* so that the fewest are; every other item gets its scale's first
key.

Seconds: characters said ÷ the speaking rate (synthesized Vietnamese runs at about 13
characters a second), plus each recording's ``audio_seconds``. An item whose recording has
no length given is counted by its text instead and flagged. The expected call adds the
seconds a citizen takes to answer each item; a provider bills per started minute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from . import flow
from .prompts import instructions_for, spoken_number
from .questionnaire import INSTRUCTION_MODES, LANGUAGES, Item, Questionnaire

# What the figures assume when no campaign says otherwise (the CLI, the API's defaults and
# the start-up check): seed 000's agency, a name of ordinary length, and a landline number.
SAMPLE_AGENCY = "Sở Tài nguyên và Môi trường tỉnh Đắk Nông"
SAMPLE_HOTLINE = "0261 3822 123"


@dataclass(frozen=True)
class Pace:
    """How fast a call goes (``SIPAS_SPEAKING_RATE``, ``SIPAS_ANSWER_SECONDS``)."""

    speaking_rate: float = 13.0     # characters a second of synthesized speech
    answer_seconds: float = 3.0     # a citizen's time to answer one item


DEFAULT_PACE = Pace()


@dataclass(frozen=True)
class CallPath:
    """One complete call: what is said and how long it takes."""

    name: str                                 # "longest" or "shortest"
    choices: tuple[tuple[str, str], ...]      # (item, key) where the answer decides what is asked next
    items: tuple[str, ...]                    # the items asked, in order
    says: tuple[str, ...]                     # every text said (each <Say>), in order
    characters: int                           # of ``says``
    audio_seconds: float                      # recordings played
    unmeasured_audio: tuple[str, ...]         # items whose recording has no length: counted by their text
    spoken_seconds: float
    call_seconds: float                       # spoken + the citizen's answers

    @property
    def minutes(self) -> int:
        """Minutes a provider bills for it: every started minute."""
        return started_minutes(self.call_seconds)


@dataclass(frozen=True)
class Estimate:
    """A questionnaire's complete call in one language, with a campaign's options."""

    questionnaire: str
    language: str
    instructions: str                         # the instruction mode the call was walked with
    speech: bool                              # the speech hint is said
    hotline: str | None                       # the agency's line is said at the close
    agency: str
    pace: Pace
    voice_items: int                          # items asked by telephone at all (0: a web-only form)
    longest: CallPath
    shortest: CallPath

    @property
    def paths(self) -> tuple[CallPath, CallPath]:
        return self.longest, self.shortest


def started_minutes(seconds: float) -> int:
    return math.ceil(seconds / 60) if seconds > 0 else 0


def estimate(q: Questionnaire, language: str = "vi", *, speech: bool = False, hotline: str | None = None,
             agency: str = SAMPLE_AGENCY, pace: Pace = DEFAULT_PACE, instructions: str | None = None) -> Estimate:
    """The longest and shortest complete call of ``q`` in ``language``. ``instructions``
    walks it with another instruction mode than the questionnaire's (to compare)."""
    if language not in LANGUAGES:
        raise ValueError(f"language: expected one of {', '.join(LANGUAGES)}, got {language!r}")
    mode = q.instructions if instructions is None else instructions
    if mode not in INSTRUCTION_MODES:
        raise ValueError(f"instructions: expected one of {', '.join(INSTRUCTION_MODES)}, got {mode!r}")
    if not pace.speaking_rate > 0 or not pace.answer_seconds >= 0:
        raise ValueError(f"expected a speaking rate above 0 and answer seconds from 0, got {pace}")
    walk = _Walk(q, language, speech, hotline, agency, pace, mode)
    return Estimate(q.key, language, mode, speech, hotline, agency, pace,
                    voice_items=sum("voice" in item.channels for item in q.items),
                    longest=walk.path(longest=True), shortest=walk.path(longest=False))


def estimates(questionnaires: Iterable[Questionnaire], *, speech: bool = False, hotline: str | None = None,
              agency: str = SAMPLE_AGENCY, pace: Pace = DEFAULT_PACE) -> list[Estimate]:
    """:func:`estimate` of every questionnaire in every language."""
    return [estimate(q, language, speech=speech, hotline=hotline, agency=agency, pace=pace)
            for q in questionnaires for language in LANGUAGES]


def too_long(questionnaires: Iterable[Questionnaire], limit: float, pace: Pace = DEFAULT_PACE) -> list[Estimate]:
    """The questionnaires and languages whose longest complete call is expected to take
    more than ``limit`` seconds, with every option a campaign may add (the speech hint and
    the agency's line, :data:`SAMPLE_HOTLINE`) and :data:`SAMPLE_AGENCY`. A web-only form
    is never called."""
    return [found for found in estimates(questionnaires, speech=True, hotline=SAMPLE_HOTLINE, pace=pace)
            if found.voice_items and found.longest.call_seconds > limit]


def describe(found: Estimate, path: CallPath) -> str:
    """One line naming a path and its figures, for messages and the command line:
    ``sipas-2024 (vi), longest path (SCREEN_FEEDBACK=1): 20 items, 1,234 characters, 94.9 s
    spoken + 20 × 3 s answering = 154.9 s``."""
    choices = ", ".join(f"{item}={key}" for item, key in path.choices)
    audio = f" + {path.audio_seconds:g} s of recordings" if path.audio_seconds else ""
    unmeasured = f" (recordings without audio_seconds, counted by their text: {', '.join(path.unmeasured_audio)})" \
        if path.unmeasured_audio else ""
    return (f"{found.questionnaire} ({found.language}), {path.name} path{f' ({choices})' if choices else ''}: "
            f"{len(path.items)} items, {path.characters:,} characters{audio}, {path.spoken_seconds:.1f} s spoken + "
            f"{len(path.items)} × {found.pace.answer_seconds:g} s answering = {path.call_seconds:.1f} s{unmeasured}")


class _Walk:
    """One complete call through the flow, said as the voice service says it."""

    def __init__(self, q: Questionnaire, language: str, speech: bool, hotline: str | None, agency: str,
                 pace: Pace, mode: str) -> None:
        self.q, self.language, self.speech, self.hotline = q, language, speech, hotline
        self.agency, self.pace, self.mode = agency, pace, mode

    def path(self, longest: bool) -> CallPath:
        q, lang = self.q, self.language
        says = [q.messages["intro"].get(lang).replace("{agency}", self.agency)]
        if self.speech:
            says.append(q.messages["speech_hint"].get(lang))
        responses: dict[str, flow.Response] = {}
        asked: list[str] = []
        choices: list[tuple[str, str]] = []
        unmeasured: list[str] = []
        audio = 0.0
        fallback = 0                     # characters of recordings counted by their text
        previous: Item | None = None
        heard: frozenset[str] = frozenset()
        while (item := flow.next_item(q, responses, "voice")) is not None:
            asked.append(item.id)
            if item.audio is None:
                says.append(item.voice.get(lang))
            elif item.audio_seconds is not None:
                audio += item.audio_seconds
            else:
                unmeasured.append(item.id)
                fallback += len(item.voice.get(lang))
            instructions = instructions_for(self.mode, item, previous, heard)
            if instructions is not None:
                says.append(instructions.get(lang))
            key, decides = self._key(item, longest)
            if decides:
                choices.append((item.id, key))
            event, response = flow.interpret(q, item, key)
            step = flow.apply(q, responses, 0, 0, event, response, key, "voice")
            assert step.response is not None, (item.id, key)
            responses[item.id] = step.response
            previous, heard = item, heard | {item.scale.id}
        if flow.finish_of(q, responses, "voice") is not flow.Finish.COMPLETE:
            raise ValueError(f"{q.key}: the call did not reach its end with valid answers")
        if self.hotline:
            says.append(q.messages["closing_contact"].get(lang).replace("{hotline}", spoken_number(self.hotline)))
        says.append(q.messages["thanks"].get(lang))
        characters = sum(len(text) for text in says)
        spoken = (characters + fallback) / self.pace.speaking_rate + audio
        return CallPath("longest" if longest else "shortest", tuple(choices), tuple(asked), tuple(says),
                        characters, audio, tuple(unmeasured), spoken,
                        spoken + len(asked) * self.pace.answer_seconds)

    def _key(self, item: Item, longest: bool) -> tuple[str, bool]:
        """The key pressed for ``item``, and whether the answer decides what is asked next.

        Consent is accepted; an item later items depend on gets the answer that asks the
        most of them (longest) or the fewest (shortest); any other item its first key."""
        options = item.scale.options
        if item.kind == "consent":
            return next(o.key for o in options if o.value != 0), False
        later = [i for i in self.q.items if "voice" in i.channels
                 and i.condition is not None and i.condition.item == item.id]
        if not later:
            return options[0].key, False

        def asked(value: int) -> int:
            return sum(value in i.condition.values for i in later if i.condition is not None)

        pick = max if longest else min
        return pick(options, key=lambda o: asked(o.value)).key, True
