"""Opt-out keywords in inbound SMS: is a message only a refusal word?

Pure functions. A message opts its sender out when, once normalised (NFC, case-folded,
unaccented, surrounding spaces and punctuation dropped, inner spaces collapsed), it is
exactly one of the refusal words: "Hủy!", "  tc " and "TU  CHOI" are; "tc 5" and
"stop please" are not (a sentence is left to a person, never guessed at).

A word a questionnaire accepts as an answer ("không" to a yes/no question, a digit, an
option label) must never be a refusal word, or a two-way survey would opt out a citizen
who answered: :func:`answer_words` lists them and :func:`clashes` finds the overlap.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .messages import unaccent
from .questionnaire import Questionnaire, QuestionnaireRegistry, Text

# REFERENCE §10: Viettel's TC, then the words in common use. "KHONG" is deliberately
# absent: it answers yes/no questions.
DEFAULT_OPT_OUT_WORDS: tuple[str, ...] = ("TC", "HUY", "TU CHOI", "DUNG", "NGUNG", "STOP")

_SPACES = re.compile(r"\s+")


def _is_edge(char: str) -> bool:
    """Punctuation, symbols and spaces that may surround a keyword ("Hủy!", "“STOP”")."""
    return char.isspace() or unicodedata.category(char)[0] in "PSZC"


def normalise(text: str) -> str:
    """The comparable form of an inbound text: "  Từ   chối. " → "tu choi"."""
    folded = unaccent(unicodedata.normalize("NFC", text)).casefold()
    start, end = 0, len(folded)
    while start < end and _is_edge(folded[start]):
        start += 1
    while end > start and _is_edge(folded[end - 1]):
        end -= 1
    return _SPACES.sub(" ", folded[start:end])


def word_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w for w in (normalise(word) for word in words) if w)


def is_refusal(text: str, words: Iterable[str] = DEFAULT_OPT_OUT_WORDS) -> bool:
    """True when ``text`` is only one of ``words`` (any case, accents, surrounding
    punctuation and spaces)."""
    normal = normalise(text)
    return bool(normal) and normal in word_set(words)


def questionnaire_answer_words(q: Questionnaire) -> frozenset[str]:
    """Every word ``q`` accepts as an answer, normalised: option keys (digits), option and
    no-opinion labels in both languages, and the repeat key."""
    raw: list[str] = [q.repeat_key]
    for scale in q.scales.values():
        raw += scale.valid_keys
        labels: list[Text] = [o.label for o in scale.options]
        if scale.no_opinion_label is not None:
            labels.append(scale.no_opinion_label)
        for label in labels:
            raw += [label.vi] + ([label.en] if label.en else [])
    return word_set(raw)


def answer_words(registry: QuestionnaireRegistry) -> frozenset[str]:
    """The answer words of every questionnaire in ``registry``."""
    found: set[str] = set()
    for q in registry.load_all():
        found |= questionnaire_answer_words(q)
    return frozenset(found)


def clashes(words: Iterable[str], answers: Iterable[str]) -> list[str]:
    """The refusal words that are also answer words (normalised), sorted."""
    return sorted(word_set(words) & word_set(answers))


def check_words(words: Iterable[str]) -> None:
    """Refuse a list no questionnaire is needed to reject: an empty list or word, a word
    with a digit (every scale's keys are digits), a word that is a common yes/no answer."""
    words = list(words)
    if not words:
        raise ValueError("expected at least one refusal word, such as 'TC'")
    for word in words:
        normal = normalise(word)
        if not normal:
            raise ValueError(f"{word!r} is empty once spaces and punctuation are removed")
        if any(c.isdigit() for c in normal):
            raise ValueError(f"{word!r} contains a digit, which is an answer key")
        if normal in COMMON_ANSWER_WORDS:
            raise ValueError(f"{word!r} is also an answer word ({normal!r}); it cannot be a refusal word")


# Answers to yes/no and consent questions in any questionnaire, shipped or not.
COMMON_ANSWER_WORDS = frozenset({"khong", "co", "dong y", "khong dong y", "yes", "no", "ok", "vang", "u"})
