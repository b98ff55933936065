"""Vietnamese phone numbers: normalise to E.164 and classify (REFERENCE §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

# 11-digit mobile prefixes retired in 2018 -> their 10-digit replacements (last 7 digits kept).
LEGACY_PREFIXES = {
    "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",
    "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036",
    "0167": "037", "0168": "038", "0169": "039",
    "0186": "056", "0188": "058", "0199": "059",
}

CARRIERS = {
    "Viettel": ("032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098"),
    "Mobifone": ("070", "076", "077", "078", "079", "089", "090", "093"),
    "Vinaphone": ("081", "082", "083", "084", "085", "088", "091", "094"),
    "Itel": ("087",),
    "Vietnamobile": ("052", "056", "058", "092"),
    "Reddi": ("055",),
    "Gmobile": ("059", "099"),
}
_PREFIX_CARRIER = {prefix: name for name, prefixes in CARRIERS.items() for prefix in prefixes}
_STRIP = re.compile(r"[\s.\-()/]")
_EXCEL_FLOAT = re.compile(r"^(\d+)\.0+$")  # a number Excel stored as 912345678.0


@dataclass(frozen=True)
class Phone:
    e164: str | None          # None when rejected
    kind: str                 # mobile | landline | invalid
    carrier: str | None = None
    reason: str | None = None  # why it was rejected

    @property
    def ok(self) -> bool:
        return self.e164 is not None

    @property
    def can_sms(self) -> bool:
        return self.kind == "mobile"


def _national(raw: str) -> str | None:
    """Digits in national form (leading 0), or None if it is not a Vietnamese number."""
    digits = _STRIP.sub("", _EXCEL_FLOAT.sub(r"\1", raw.strip()))
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif not digits.startswith("0") and len(digits) in (9, 10):
        digits = "0" + digits  # Excel stored the number as an integer and lost the 0
    if not digits.isdigit():
        return None
    return digits


@lru_cache(maxsize=1_000_000)
def normalise(raw: str) -> Phone:
    """Normalise one number as written in a transaction list."""
    if raw is None or not str(raw).strip():
        return Phone(None, "invalid", reason="empty")
    text = str(raw).strip()
    national = _national(text)
    if national is None:
        return Phone(None, "invalid", reason=f"not a phone number: {text!r}")
    if len(national) == 11 and national[:4] in LEGACY_PREFIXES:
        national = LEGACY_PREFIXES[national[:4]] + national[4:]
    if len(national) == 10 and national[:3] in _PREFIX_CARRIER:
        # Our carrier table is authoritative for mobiles; phonenumbers' metadata
        # rejects some real ranges.
        return Phone("+84" + national[1:], "mobile", _PREFIX_CARRIER[national[:3]])
    try:
        parsed = phonenumbers.parse(national, "VN")
    except NumberParseException as exc:
        return Phone(None, "invalid", reason=f"not a phone number: {exc}")
    if not phonenumbers.is_valid_number(parsed):
        return Phone(None, "invalid", reason=f"not a valid Vietnamese number: {text!r}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.FIXED_LINE:
        return Phone(e164, "landline")
    if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return Phone(e164, "mobile")
    return Phone(None, "invalid", reason=f"not a personal number (type {kind}): {text!r}")


# The fast path reads numbers as arrays of code points. Values longer than this (rare,
# and never a clean mobile) are left to normalise().
_FAST_WIDTH = 24
_DIGIT_CARRIER = np.full(100, -1, dtype=np.int64)   # two digits after the 0 -> index in _CARRIER_NAMES
_CARRIER_NAMES = np.array(sorted(CARRIERS), dtype=object)
for _prefix, _name in _PREFIX_CARRIER.items():
    _DIGIT_CARRIER[int(_prefix[1:])] = int(np.searchsorted(_CARRIER_NAMES, _name))
_SEPARATOR_POINTS = np.array([ord(c) for c in " .-()/\t"], dtype=np.uint8)
_MOBILE_CHARS = 13   # the longest spelling the fast path reads: 0084 and 9 digits


def _fast_mobiles(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """E.164 and carrier index of each value that is a 10-digit mobile in a usual spelling
    (None and -1 for the others), with no Python work per value.

    Accepts exactly what ``normalise`` maps to a carrier-table mobile for text made of ASCII
    digits, ``+`` and the separators `` .-()/`` and tab: separators go, then ``+84``,
    ``0084``, ``84`` before 9 digits or a missing leading 0 is read as the 0 of a national
    number. Anything else (an Excel float ending in ``.0``, a legacy 11-digit number, a
    landline, other characters) gets None and is left to :func:`normalise`.
    """
    count = len(values)
    e164 = np.full(count, None, dtype=object)
    carrier = np.full(count, -1, dtype=np.int64)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    short = np.flatnonzero(lengths <= _FAST_WIDTH)
    if not len(short):
        return e164, carrier
    # One column per value, one row per character position (NUL-padded): every step below
    # is a whole-array operation along the rows.
    text = values if len(short) == count else [values[i] for i in short.tolist()]
    points = np.array(text, dtype=f"<U{_FAST_WIDTH}").view(np.uint32)
    wide = points.reshape(len(short), _FAST_WIDTH).T
    usable = (wide < 128).all(axis=0)
    chars = np.ascontiguousarray(wide, dtype=np.uint8)   # rows with other characters are not usable
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    kept = digit | (chars == ord("+"))
    usable &= (kept | np.isin(chars, _SEPARATOR_POINTS) | (chars == 0)).all(axis=0)
    # An Excel float (912345678.0) takes the slow path, as in normalise(): its last
    # character other than a space or tab is a 0 after a dot.
    filled = (chars != 0) & (chars != ord(" ")) & (chars != ord("\t"))
    last = _FAST_WIDTH - 1 - np.argmax(filled[::-1], axis=0)
    columns = np.arange(len(short))
    excel = (last >= 1) & (chars[last, columns] == ord("0")) & (chars[np.maximum(last - 1, 0), columns] == ord("."))
    usable &= filled.any(axis=0) & ~excel
    # Drop the separators: each kept character moves up to its rank among the kept ones
    # (a mobile has at most 13: 0084 and 9 digits; the rest piles up in a spare row).
    compact = np.zeros((_MOBILE_CHARS + 1, len(short)), dtype=np.uint8)
    rank = np.zeros(len(short), dtype=np.intp)
    for position in range(_FAST_WIDTH):
        moved = np.flatnonzero(kept[position])
        compact[np.minimum(rank[moved], _MOBILE_CHARS), moved] = chars[position, moved]
        rank[moved] += 1
    length = rank

    def starts(prefix: str) -> np.ndarray:
        code = np.array([ord(c) for c in prefix], dtype=np.uint8)[:, None]
        return np.all(compact[:len(prefix)] == code, axis=0)

    plus84, zero084, eighty4 = starts("+84"), starts("0084"), starts("84")
    first_zero = compact[0] == ord("0")
    other = ~plus84 & ~zero084
    # Where the 9 digits after the national number's 0 begin; -1: not a 10-digit mobile.
    offset = np.select(
        [plus84 & (length == 12), zero084 & (length == 13), other & eighty4 & (length == 11),
         other & (length == 9) & ~first_zero, other & (length == 10) & first_zero],
        [3, 4, 2, 0, 1], default=-1)
    usable &= offset >= 0
    rest = compact[np.maximum(offset, 0) + np.arange(9)[:, None], columns]
    usable &= ((rest >= ord("0")) & (rest <= ord("9"))).all(axis=0)
    two = np.where(usable, (rest[0].astype(np.int64) - ord("0")) * 10 + rest[1] - ord("0"), 0)
    found = np.where(usable, _DIGIT_CARRIER[two], -1)
    hits = np.flatnonzero(found >= 0)
    national = np.ascontiguousarray(rest[:, hits].T).view("S9").ravel().astype("<U9")
    e164[short[hits]] = np.strings.add("+84", national).astype(object)
    carrier[short[hits]] = found[hits]
    return e164, carrier


def normalise_distinct(values: list[str]) -> pd.DataFrame:
    """:func:`normalise` of each of ``values`` (distinct strings), as columns e164, kind,
    carrier and reason in the order of ``values``.

    The common case (a 10-digit mobile in any usual spelling) is read as arrays of code
    points (:func:`_fast_mobiles`); everything else goes through :func:`normalise` one by one.
    """
    e164, carrier_index = _fast_mobiles(values)
    fast = carrier_index >= 0
    kind = np.full(len(values), None, dtype=object)
    kind[fast] = "mobile"
    carrier = np.full(len(values), None, dtype=object)
    carrier[fast] = _CARRIER_NAMES[carrier_index[fast]]
    reason = np.full(len(values), None, dtype=object)
    for i in np.flatnonzero(~fast).tolist():
        phone = normalise(values[i])
        e164[i], kind[i], carrier[i], reason[i] = phone.e164, phone.kind, phone.carrier, phone.reason
    return pd.DataFrame({"e164": e164, "kind": kind, "carrier": carrier, "reason": reason}, dtype=object)


def normalise_many(values: pd.Series) -> pd.DataFrame:
    """Normalise distinct raw numbers at once: columns e164, kind, carrier, reason, indexed by value."""
    distinct = pd.unique(values.astype(str))
    table = normalise_distinct(list(distinct))
    table.index = pd.Index(distinct, name="raw")
    return table
