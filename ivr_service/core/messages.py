"""SMS text rules: encodings and segments, unaccenting, short link codes, templates.

Pure functions (REFERENCE §10). A Vietnamese letter with a diacritic forces UCS-2 (70
characters in one segment, 67 per part when concatenated) where unaccented text fits
GSM-7 (160, 153 per part); carriers bill per segment, so invitations are unaccented by
default. Text is normalised to NFC before it is counted.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7 = "GSM-7"
UCS2 = "UCS-2"
SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}

# Letters and digits a person can read off a phone screen and type without doubt: no
# 0/O, 1/I/l, 2/Z, 5/S, 8/B, and no "_" or "-", which some carriers mangle in links.
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 9          # 25**9 ≈ 3.8e12 codes
CODE_PATTERN = re.compile(f"[{CODE_ALPHABET}{CODE_ALPHABET.lower()}]{{8,10}}")

PLACEHOLDERS = ("link", "stop")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

DAILY_CAP = 3                      # messages per number in any 24 h (Decree 91/2020)


@dataclass(frozen=True)
class Encoded:
    """How a text travels: its encoding, units (septets or UTF-16 code units) and segments."""

    encoding: str
    units: int
    segments: int


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def unaccent(text: str) -> str:
    """Vietnamese without diacritics: "Hài lòng, đúng hẹn" → "Hai long, dung hen"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return nfc("".join(c for c in decomposed if not unicodedata.combining(c)))


def encode(text: str) -> Encoded:
    """The encoding and segment count of ``text`` as an SMS."""
    text = nfc(text)
    try:
        units = len(text.encode("gsm03.38"))     # extension characters (€, [ …) take two septets
        encoding = GSM7
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        encoding = UCS2
    if units <= SINGLE[encoding]:
        segments = 1 if units else 0
    else:
        segments = -(-units // PART[encoding])
    return Encoded(encoding, units, segments)


def new_code(length: int = CODE_LENGTH) -> str:
    if not 8 <= length <= 10:
        raise ValueError("link codes are 8 to 10 characters")
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normal_code(code: str) -> str | None:
    """A code as typed or as a carrier delivered it (case folded), or None if it cannot be one."""
    return code.upper() if CODE_PATTERN.fullmatch(code) else None


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def render(template: str, **values: str) -> str:
    """Fill the template's placeholders; everything else is sent byte for byte."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def check_template(template: str, link_length: int, max_segments: int) -> Encoded:
    """Raise ValueError naming the problem unless ``template`` is a usable invitation:
    known placeholders only, ``{link}`` once, ending with the ``{stop}`` link (how to refuse
    further messages), and no more segments than ``max_segments`` once both links (each
    ``link_length`` characters) are filled in. Returns the filled message's encoding."""
    if template != template.strip() or not template:
        raise ValueError("the template is empty or starts or ends with spaces")
    found = placeholders(template)
    unknown = sorted(set(found) - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                         "use {link} and {stop}")
    if found.count("link") != 1:
        raise ValueError("the template must contain {link} exactly once")
    if found.count("stop") != 1 or not template.rstrip(" .)").endswith("{stop}"):
        raise ValueError("the template must end with the {stop} link that refuses further messages")
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise ValueError("unbalanced { or } in the template")
    sample = "x" * link_length
    encoded = encode(render(template, link=sample, stop=sample))
    if encoded.segments > max_segments:
        raise ValueError(f"the message needs {encoded.segments} {encoded.encoding} segments "
                         f"({encoded.units} characters with its links), more than the limit of {max_segments}")
    return encoded


# ============================================================================ prices

def parse_prices(text: str, unit: str = "segment") -> dict[str, float]:
    """A price table, JSON ``{"*": 300, "viettel": 250}``: VND per ``unit`` (an SMS segment,
    a started minute of a call) by carrier (any case), ``"*"`` for carriers not named.
    Raises ValueError saying what is wrong."""
    try:
        table = json.loads(text)
    except ValueError:
        raise ValueError(f'expected a JSON object such as {{"*": 300, "viettel": 250}}, got {text[:60]!r}') from None
    if not isinstance(table, dict) or not table:
        raise ValueError(f'expected a non-empty JSON object of carrier → VND per {unit}, such as {{"*": 300}}')
    prices: dict[str, float] = {}
    for carrier, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100_000:
            raise ValueError(f"price of {carrier!r}: expected VND per {unit} between 0 and 100000, got {value!r}")
        prices[carrier.strip().lower()] = float(value)
    return prices


def unit_price(prices: Mapping[str, float] | None, carrier: str | None) -> float | None:
    """The carrier's price per unit in a table of :func:`parse_prices` (``"*"`` when the
    carrier is unknown or not listed); None without a price for it."""
    if not prices:
        return None
    return prices.get((carrier or "*").lower(), prices.get("*"))


def message_price(prices: dict[str, float] | None, carrier: str | None, segments: int) -> float | None:
    """What a message costs, VND: segments × the carrier's price per segment (``"*"`` when
    the carrier is unknown or not listed); None without a price for it."""
    per_segment = unit_price(prices, carrier)
    return None if per_segment is None else segments * per_segment
