"""Vietnamese phone numbers: normalise to E.164 and classify (REFERENCE §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

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


_SEPARATORS = str.maketrans("", "", " .-()/\t")


def _fast_mobile(raw: str) -> str | None:
    """E.164 for the common case, a 10-digit mobile in a usual spelling; None otherwise."""
    digits = raw.strip()
    if digits.endswith(".0"):
        return None  # rare (an Excel float): leave it to normalise()
    digits = digits.translate(_SEPARATORS)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    elif len(digits) == 9 and not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) == 10 and digits.isdigit() and digits[:3] in _PREFIX_CARRIER:
        return "+84" + digits[1:]
    return None


def normalise_many(values: pd.Series) -> pd.DataFrame:
    """Normalise distinct raw numbers at once: columns e164, kind, carrier, reason, indexed by value.

    The common case (a 10-digit mobile in any usual spelling) takes a fast path of plain
    string operations; everything else goes through :func:`normalise` one by one.
    """
    distinct = pd.unique(values.astype(str))
    e164: list[str | None] = []
    kind: list[str] = []
    carrier: list[str | None] = []
    reason: list[str | None] = []
    for raw in distinct:
        fast = _fast_mobile(raw)
        if fast is not None:
            e164.append(fast)
            kind.append("mobile")
            carrier.append(_PREFIX_CARRIER["0" + fast[3:5]])
            reason.append(None)
        else:
            phone = normalise(raw)
            e164.append(phone.e164)
            kind.append(phone.kind)
            carrier.append(phone.carrier)
            reason.append(phone.reason)
    return pd.DataFrame({"e164": e164, "kind": kind, "carrier": carrier, "reason": reason},
                        index=pd.Index(distinct, name="raw"), dtype=object)
