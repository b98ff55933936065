"""Spoken answers: what a speech recogniser heard, mapped to a keypad key.

Each scale may carry a table of phrases per language (``speech`` in the questionnaire
file): digits and their words ("năm"), and the scale's own words ("rất hài lòng",
"không ý kiến"). A result is matched after normalising case, Unicode form, punctuation
and spacing. The whole utterance is tried first; otherwise the longest table phrases
found in it, as whole words, decide, and only when they all mean the same key ("tôi rất
hài lòng" is 5; "hài lòng, à không, không hài lòng" is two answers and is re-asked).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, NFC, punctuation dropped, single spaces: how phrases are compared."""
    text = unicodedata.normalize("NFC", text).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def match(heard: str, table: Iterable[tuple[str, str]], valid_keys: Iterable[str]) -> str | None:
    """The key ``heard`` means, or None when it is not understood or is ambiguous.

    ``table`` holds normalised (phrase, key) pairs; a bare valid key ("5") is understood
    too, since recognisers often transcribe numbers as digits.
    """
    said = normalise(heard)
    if not said:
        return None
    pairs = list(table) + [(key, key) for key in valid_keys if key.isdigit()]
    for phrase, key in pairs:
        if said == phrase:
            return key
    words = said.split(" ")
    spans: list[tuple[int, int, str]] = []      # (first word, past last word, key)
    for phrase, key in pairs:
        size = len(phrase.split(" "))
        for i in range(len(words) - size + 1):
            if " ".join(words[i:i + size]) == phrase:
                spans.append((i, i + size, key))
    # A phrase inside a longer one at the same place ("hài lòng" in "rất hài lòng") is not
    # an answer of its own.
    answers = {key for start, end, key in spans
               if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans)}
    return answers.pop() if len(answers) == 1 else None


def hints(table: Iterable[tuple[str, str]], limit: int = 50) -> str:
    """Phrases to bias the recogniser towards, comma-separated as Twilio's ``hints``."""
    phrases: list[str] = []
    for phrase, _key in table:
        if phrase not in phrases and not phrase.isdigit():
            phrases.append(phrase)
    return ", ".join(phrases[:limit])
