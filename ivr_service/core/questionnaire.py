"""Questionnaires as data: typed model and a loader that validates every field.

A questionnaire file (``config/questionnaires/<key>.yaml``) declares scales, ordered
sections and items. The loader turns it into frozen dataclasses, or raises
:class:`QuestionnaireError` naming the file, the item and the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import yaml

from .speech import normalise

SECTION_KINDS = ("consent", "factor", "screening", "overall", "needs")
CHANNELS = ("voice", "web")
MESSAGE_KEYS = ("intro", "consent", "invalid", "thanks", "refused", "no_input", "sms_invitation")
FACTORS = ("I", "II", "III", "IV", "V")
# When a scale's instructions are said in full (see core.prompts): before every item; the
# first time the scale is heard on a call; or that and again at the first item of each factor.
INSTRUCTION_MODES = ("always", "first", "first_per_factor")
LANGUAGES = ("vi", "en")


@dataclass(frozen=True)
class _DefaultText:
    vi: str
    en: str


# Messages a questionnaire file may leave out (files written before they existed keep
# loading); a file's own text always wins. ``{hotline}`` is the agency's contact line.
OPTIONAL_MESSAGES: Mapping[str, _DefaultText] = {
    "moving_on": _DefaultText("Chúng tôi xin chuyển sang câu tiếp theo.", "Let us move on to the next question."),
    "no_consent": _DefaultText(
        "Có lẽ lúc này Ông/bà đang bận. Xin cảm ơn và chào Ông/bà.",
        "Perhaps this is not a good moment for you. Thank you, and goodbye."),
    "closing_contact": _DefaultText(
        "Nếu muốn góp ý thêm, Ông/bà có thể gọi số {hotline}.",
        "If you would like to say more, you can call {hotline}."),
    "not_understood": _DefaultText(
        "Xin lỗi, chúng tôi chưa nghe rõ câu trả lời của Ông/bà.", "Sorry, we did not catch your answer."),
    "speech_hint": _DefaultText(
        "Ông/bà có thể bấm phím hoặc nói câu trả lời.",
        "You can press a key or say your answer."),
}

_T = TypeVar("_T")
_D = TypeVar("_D")


class QuestionnaireError(ValueError):
    """The questionnaire file is malformed; the message says where."""


@dataclass(frozen=True)
class Text:
    vi: str
    en: str | None = None

    def get(self, lang: str = "vi") -> str:
        return self.en if lang == "en" and self.en else self.vi


@dataclass(frozen=True)
class Option:
    key: str
    value: int
    label: Text


@dataclass(frozen=True)
class Scale:
    id: str
    options: tuple[Option, ...]
    no_opinion_key: str | None = None
    no_opinion_label: Text | None = None
    satisfied: frozenset[int] = frozenset()
    dissatisfied: frozenset[int] = frozenset()
    # How to answer, said in full where it helps (core.prompts); the cue reminds briefly.
    instructions: Text | None = None
    cue: Text | None = None
    # Spoken answers by language: (phrase, key) pairs, phrases normalised (core.speech).
    speech: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def option_for_key(self, key: str) -> Option | None:
        for option in self.options:
            if option.key == key:
                return option
        return None

    @property
    def valid_keys(self) -> tuple[str, ...]:
        keys = tuple(o.key for o in self.options)
        return keys + ((self.no_opinion_key,) if self.no_opinion_key else ())

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(o.value for o in self.options)


@dataclass(frozen=True)
class Condition:
    """Ask only if an earlier item's recorded value is one of ``values``."""

    item: str
    values: frozenset[int]


@dataclass(frozen=True)
class Item:
    id: str
    section: str
    kind: str
    scale: Scale
    text: Text
    voice: Text
    sms: Text
    factor: str | None = None
    condition: Condition | None = None
    channels: tuple[str, ...] = CHANNELS
    audio: str | None = None
    audio_seconds: float | None = None     # length of the recording, for the call estimate

    @property
    def is_rated(self) -> bool:
        """One of the rated items that enter the satisfaction scores."""
        return self.kind in ("factor", "overall")


@dataclass(frozen=True)
class Section:
    id: str
    kind: str
    title: Text
    items: tuple[Item, ...]
    factor: str | None = None


@dataclass(frozen=True)
class Questionnaire:
    key: str
    version: int
    title: Text
    source: str
    max_invalid: int
    repeat_key: str
    messages: Mapping[str, Text]
    scales: Mapping[str, Scale]
    sections: tuple[Section, ...]
    instructions: str = "first"            # one of INSTRUCTION_MODES
    speech_min_confidence: float = 0.5     # spoken answers heard with less are re-asked

    @cached_property
    def items(self) -> tuple[Item, ...]:
        return tuple(item for section in self.sections for item in section.items)

    @cached_property
    def _by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}

    def item(self, item_id: str) -> Item:
        return self._by_id[item_id]

    def has_item(self, item_id: str) -> bool:
        return item_id in self._by_id

    @property
    def criteria(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.kind == "factor")

    @property
    def rated_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.is_rated)

    @property
    def factors(self) -> tuple[str, ...]:
        seen: list[str] = []
        for item in self.criteria:
            if item.factor and item.factor not in seen:
                seen.append(item.factor)
        return tuple(seen)

    def factor_title(self, factor: str) -> Text:
        for section in self.sections:
            if section.factor == factor:
                return section.title
        raise KeyError(factor)


def load_questionnaire(path: str | Path) -> Questionnaire:
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionnaireError(f"{path}: no such questionnaire file") from None
    except UnicodeDecodeError as exc:
        raise QuestionnaireError(f"{path.name}: not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise QuestionnaireError(f"{path.name}: not valid YAML: {exc}") from None
    questionnaire = parse_questionnaire(data, source=path.name)
    if questionnaire.key != path.stem:
        raise QuestionnaireError(
            f"{path.name}: key: {questionnaire.key!r} must equal the file name {path.stem!r}"
        )
    return questionnaire


class _Reader:
    """Typed field access that reports the path of the field at fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> QuestionnaireError:
        return QuestionnaireError(f"{self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    @overload
    def field(self, data: Mapping[str, Any], name: str, where: str, kind: type[_T],
              required: Literal[True] = True) -> _T: ...

    @overload
    def field(self, data: Mapping[str, Any], name: str, where: str, kind: type[_T],
              required: bool, default: None = None) -> _T | None: ...

    @overload
    def field(self, data: Mapping[str, Any], name: str, where: str, kind: type[_T],
              required: bool, default: _D) -> _T | _D: ...

    def field(self, data: Mapping[str, Any], name: str, where: str, kind: type,
              required: bool = True, default: object = None) -> object:
        if name not in data or data[name] is None:
            if required:
                raise self.fail(f"{where}.{name}" if where else name, "required field is missing")
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(f"{where}.{name}" if where else name,
                            f"expected {kind.__name__}, got {value!r}")
        return value

    @overload
    def text(self, data: Mapping[str, Any], name: str, where: str, required: Literal[True] = True) -> Text: ...

    @overload
    def text(self, data: Mapping[str, Any], name: str, where: str, required: bool) -> Text | None: ...

    def text(self, data: Mapping[str, Any], name: str, where: str, required: bool = True) -> Text | None:
        loc = f"{where}.{name}" if where else name
        value = data.get(name)
        if value is None:
            if required:
                raise self.fail(loc, "required field is missing")
            return None
        value = self.mapping(value, loc)
        vi = value.get("vi")
        if not isinstance(vi, str) or not vi.strip():
            raise self.fail(f"{loc}.vi", "a non-empty Vietnamese text is required")
        en = value.get("en")
        if en is not None and not isinstance(en, str):
            raise self.fail(f"{loc}.en", f"expected text, got {en!r}")
        unknown = set(value) - {"vi", "en"}
        if unknown:
            raise self.fail(loc, f"unknown language(s) {sorted(unknown)}; use vi and en")
        return Text(vi=vi.strip(), en=en.strip() if en else None)


def _key(reader: _Reader, value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) != 1 or value not in "0123456789*#":
        raise reader.fail(where, f"expected one keypad key '0'-'9', got {value!r}")
    return value


def _number(reader: _Reader, data: Mapping[str, Any], name: str, where: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise reader.fail(f"{where}.{name}", f"expected a number, got {value!r}")
    return float(value)


def _check_invitation(reader: _Reader, text: str, where: str) -> None:
    """An SMS invitation names the agency at most through ``{agency}``, carries ``{link}``
    once and ends with the ``{stop}`` link: every message ends with how to refuse more."""
    found = re.findall(r"\{([^{}]*)\}", text)
    unknown = sorted(set(found) - {"agency", "link", "stop"})
    if unknown:
        raise reader.fail(where, f"unknown placeholder(s) {unknown}; use {{agency}}, {{link}} and {{stop}}")
    if found.count("link") != 1 or found.count("stop") != 1 or not text.rstrip(" .)").endswith("{stop}"):
        raise reader.fail(where, "needs {link} once and must end with the {stop} link that refuses further messages")


def _parse_scale(reader: _Reader, scale_id: str, data: Any) -> Scale:
    where = f"scales.{scale_id}"
    data = reader.mapping(data, where)
    raw_options = reader.field(data, "options", where, list)
    if len(raw_options) < 2:
        raise reader.fail(f"{where}.options", "a scale needs at least two options")
    options = []
    for i, raw in enumerate(raw_options):
        loc = f"{where}.options[{i}]"
        raw = reader.mapping(raw, loc)
        options.append(Option(
            key=_key(reader, raw.get("key"), f"{loc}.key"),
            value=reader.field(raw, "value", loc, int),
            label=reader.text(raw, "label", loc),
        ))
    keys = [o.key for o in options]
    values = [o.value for o in options]
    if len(set(keys)) != len(keys):
        raise reader.fail(f"{where}.options", f"duplicate keys {keys}")
    if len(set(values)) != len(values):
        raise reader.fail(f"{where}.options", f"duplicate values {values}")
    no_opinion_key = no_opinion_label = None
    if data.get("no_opinion") is not None:
        raw = reader.mapping(data["no_opinion"], f"{where}.no_opinion")
        no_opinion_key = _key(reader, raw.get("key"), f"{where}.no_opinion.key")
        no_opinion_label = reader.text(raw, "label", f"{where}.no_opinion")
        if no_opinion_key in keys:
            raise reader.fail(f"{where}.no_opinion.key", f"{no_opinion_key!r} is also an option key")
    groups = {}
    for name in ("satisfied", "dissatisfied"):
        raw_values = reader.field(data, name, where, list, required=False, default=[])
        for value in raw_values:
            if value not in values:
                raise reader.fail(f"{where}.{name}", f"{value!r} is not a value of this scale {values}")
        groups[name] = frozenset(raw_values)
    if groups["satisfied"] & groups["dissatisfied"]:
        raise reader.fail(where, "a value cannot be both satisfied and dissatisfied")
    instructions = reader.text(data, "instructions", where, required=False)
    cue = reader.text(data, "cue", where, required=False)
    if cue is not None and instructions is None:
        raise reader.fail(f"{where}.cue", "a cue reminds of the instructions; give the instructions too")
    valid_keys = keys + ([no_opinion_key] if no_opinion_key else [])
    speech = _parse_speech(reader, data.get("speech"), f"{where}.speech", valid_keys)
    return Scale(id=scale_id, options=tuple(options), no_opinion_key=no_opinion_key,
                 no_opinion_label=no_opinion_label, instructions=instructions, cue=cue, speech=speech, **groups)


def _parse_speech(reader: _Reader, data: Any, where: str,
                  valid_keys: list[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    """``{lang: {key: [phrase, ...]}}`` → ``{lang: ((normalised phrase, key), ...)}``."""
    if data is None:
        return {}
    data = reader.mapping(data, where)
    table: dict[str, tuple[tuple[str, str], ...]] = {}
    for lang, by_key in data.items():
        if lang not in LANGUAGES:
            raise reader.fail(where, f"unknown language {lang!r}; use {' and '.join(LANGUAGES)}")
        by_key = reader.mapping(by_key, f"{where}.{lang}")
        pairs: list[tuple[str, str]] = []
        meaning: dict[str, str] = {}
        for raw_key, phrases in by_key.items():
            key = _key(reader, raw_key, f"{where}.{lang}.{raw_key}")
            if key not in valid_keys:
                raise reader.fail(f"{where}.{lang}.{key}", f"not a key of this scale {valid_keys}")
            if not isinstance(phrases, list) or not phrases:
                raise reader.fail(f"{where}.{lang}.{key}", "expected a list of phrases")
            for phrase in phrases:
                said = normalise(phrase) if isinstance(phrase, str) else ""
                if not said:
                    raise reader.fail(f"{where}.{lang}.{key}", f"expected a non-empty phrase, got {phrase!r}")
                if meaning.get(said, key) != key:
                    raise reader.fail(f"{where}.{lang}.{key}",
                                      f"{phrase!r} already means key {meaning[said]!r}")
                if said.isdigit() and said != key:
                    raise reader.fail(f"{where}.{lang}.{key}", f"the digits {phrase!r} cannot mean key {key!r}")
                meaning[said] = key
                pairs.append((said, key))
        table[lang] = tuple(sorted(pairs))
    return table


def _parse_condition(reader: _Reader, data: Any, where: str, earlier: Mapping[str, Item]) -> Condition:
    data = reader.mapping(data, where)
    item_id = reader.field(data, "item", where, str)
    values = reader.field(data, "in", where, list)
    if item_id not in earlier:
        raise reader.fail(f"{where}.item", f"{item_id!r} is not an item asked earlier")
    allowed = earlier[item_id].scale.values
    for value in values:
        if value not in allowed:
            raise reader.fail(f"{where}.in", f"{value!r} is not a value of {item_id}'s scale {allowed}")
    return Condition(item=item_id, values=frozenset(values))


def _parse_channels(reader: _Reader, data: Mapping[str, Any], where: str,
                    default: tuple[str, ...]) -> tuple[str, ...]:
    channels = reader.field(data, "channels", where, list, required=False)
    if channels is None:
        return default
    for channel in channels:
        if channel not in CHANNELS:
            raise reader.fail(f"{where}.channels", f"unknown channel {channel!r}; use {CHANNELS}")
    return tuple(channels)


def parse_questionnaire(data: Any, source: str = "<questionnaire>") -> Questionnaire:
    reader = _Reader(source)
    data = reader.mapping(data, "top level")
    key = reader.field(data, "key", "", str)
    version = reader.field(data, "version", "", int)
    title = reader.text(data, "title", "")
    source_text = reader.field(data, "source", "", str)
    flow = reader.mapping(data.get("flow") or {}, "flow")
    max_invalid = reader.field(flow, "max_invalid", "flow", int, required=False, default=2)
    if not 0 <= max_invalid <= 5:
        raise reader.fail("flow.max_invalid", f"expected 0 to 5, got {max_invalid}")
    repeat_key = _key(reader, flow.get("repeat_key", "*"), "flow.repeat_key")
    instructions = reader.field(flow, "instructions", "flow", str, required=False, default="first")
    if instructions not in INSTRUCTION_MODES:
        raise reader.fail("flow.instructions", f"expected one of {INSTRUCTION_MODES}, got {instructions!r}")
    min_confidence = _number(reader, flow, "speech_min_confidence", "flow")
    min_confidence = 0.5 if min_confidence is None else min_confidence
    if not 0 <= min_confidence <= 1:
        raise reader.fail("flow.speech_min_confidence", f"expected 0 to 1, got {min_confidence}")

    raw_messages = reader.mapping(reader.field(data, "messages", "", dict), "messages")
    messages = {}
    for name in MESSAGE_KEYS:
        messages[name] = reader.text(raw_messages, name, "messages")
    for name, default in OPTIONAL_MESSAGES.items():
        messages[name] = reader.text(raw_messages, name, "messages", required=False) or Text(default.vi, default.en)
    for lang in LANGUAGES:
        contact = messages["closing_contact"].get(lang)
        if "{hotline}" not in contact:
            raise reader.fail(f"messages.closing_contact.{lang}", "must say the agency's line as {hotline}")
    unknown = set(raw_messages) - set(MESSAGE_KEYS) - set(OPTIONAL_MESSAGES)
    if unknown:
        raise reader.fail("messages", f"unknown message(s) {sorted(unknown)}")
    for lang, text in (("vi", messages["sms_invitation"].vi), ("en", messages["sms_invitation"].en)):
        if text is not None:
            _check_invitation(reader, text, f"messages.sms_invitation.{lang}")

    raw_scales = reader.mapping(reader.field(data, "scales", "", dict), "scales")
    scales = {scale_id: _parse_scale(reader, scale_id, raw) for scale_id, raw in raw_scales.items()}

    sections: list[Section] = []
    seen_items: dict[str, Item] = {}
    seen_sections: set[str] = set()
    for s_index, raw_section in enumerate(reader.field(data, "sections", "", list)):
        where = f"sections[{s_index}]"
        raw_section = reader.mapping(raw_section, where)
        section_id = reader.field(raw_section, "id", where, str)
        where = f"sections[{s_index}] ({section_id})"
        if section_id in seen_sections:
            raise reader.fail(f"{where}.id", "duplicate section id")
        seen_sections.add(section_id)
        kind = reader.field(raw_section, "kind", where, str)
        if kind not in SECTION_KINDS:
            raise reader.fail(f"{where}.kind", f"expected one of {SECTION_KINDS}, got {kind!r}")
        factor = reader.field(raw_section, "factor", where, str, required=kind == "factor")
        if kind == "factor" and factor not in FACTORS:
            raise reader.fail(f"{where}.factor", f"expected one of {FACTORS}, got {factor!r}")
        if kind != "factor" and factor is not None:
            raise reader.fail(f"{where}.factor", "only factor sections name a factor")
        section_title = reader.text(raw_section, "title", where)
        section_condition = None
        if raw_section.get("ask_if") is not None:
            section_condition = _parse_condition(reader, raw_section["ask_if"], f"{where}.ask_if", seen_items)
        section_channels = _parse_channels(reader, raw_section, where, CHANNELS)

        items = []
        raw_items = reader.field(raw_section, "items", where, list)
        if not raw_items:
            raise reader.fail(f"{where}.items", "a section needs at least one item")
        for i_index, raw_item in enumerate(raw_items):
            loc = f"{where}.items[{i_index}]"
            raw_item = reader.mapping(raw_item, loc)
            item_id = reader.field(raw_item, "id", loc, str)
            loc = f"item {item_id} ({where}.items[{i_index}])"
            if item_id in seen_items:
                raise reader.fail(loc, "duplicate item id")
            scale_id = reader.field(raw_item, "scale", loc, str)
            if scale_id not in scales:
                raise reader.fail(f"{loc}.scale", f"unknown scale {scale_id!r}; defined: {sorted(scales)}")
            scale = scales[scale_id]
            if kind in ("factor", "overall") and not scale.satisfied:
                raise reader.fail(f"{loc}.scale",
                                  f"rated items need a scale with 'satisfied' values; {scale_id!r} has none")
            condition = section_condition
            if raw_item.get("ask_if") is not None:
                condition = _parse_condition(reader, raw_item["ask_if"], f"{loc}.ask_if", seen_items)
            audio = reader.field(raw_item, "audio", loc, str, required=False)
            audio_seconds = _number(reader, raw_item, "audio_seconds", loc)
            if audio_seconds is not None and (audio is None or not 0 < audio_seconds <= 600):
                raise reader.fail(f"{loc}.audio_seconds",
                                  "the length in seconds (0 to 600) of the item's audio recording")
            item = Item(
                id=item_id, section=section_id, kind=kind, scale=scale,
                text=reader.text(raw_item, "text", loc),
                voice=reader.text(raw_item, "voice", loc),
                sms=reader.text(raw_item, "sms", loc),
                factor=factor, condition=condition,
                channels=_parse_channels(reader, raw_item, loc, section_channels), audio=audio,
                audio_seconds=float(audio_seconds) if audio_seconds is not None else None,
            )
            items.append(item)
            seen_items[item_id] = item
        sections.append(Section(id=section_id, kind=kind, title=section_title,
                                items=tuple(items), factor=factor))

    consent = [s for s in sections if s.kind == "consent"]
    if len(consent) > 1 or (consent and sections[0].kind != "consent"):
        raise reader.fail("sections", "at most one consent section, and it must come first")
    for section in consent:
        for item in section.items:
            if 0 not in item.scale.values:
                raise reader.fail(f"item {item.id}.scale", "a consent scale needs value 0 for 'decline'")
    if not any(s.kind == "factor" for s in sections):
        raise reader.fail("sections", "at least one factor section is required")
    if repeat_key in {k for scale in scales.values() for k in scale.valid_keys}:
        raise reader.fail("flow.repeat_key", f"{repeat_key!r} is also an answer key")
    return Questionnaire(key=key, version=version, title=title, source=source_text,
                         max_invalid=max_invalid, repeat_key=repeat_key, messages=messages,
                         scales=scales, sections=tuple(sections), instructions=instructions,
                         speech_min_confidence=float(min_confidence))


class QuestionnaireRegistry:
    """Loads questionnaires by key from a directory, once each."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, Questionnaire] = {}

    def get(self, key: str) -> Questionnaire:
        if key not in self._cache:
            if not key.replace("-", "").replace("_", "").isalnum():
                raise QuestionnaireError(f"{key!r}: not a questionnaire key")
            self._cache[key] = load_questionnaire(self.directory / f"{key}.yaml")
        return self._cache[key]

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.yaml"))

    def load_all(self) -> list[Questionnaire]:
        """Load and validate every file, so a broken one stops start-up, not a call."""
        if not self.directory.is_dir():
            raise QuestionnaireError(f"{self.directory}: questionnaire directory not found")
        return [self.get(key) for key in self.keys()]
