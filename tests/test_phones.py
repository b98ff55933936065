"""Vietnamese phone numbers (REFERENCE §7): spellings, Excel damage, legacy 11-digit prefixes,
landlines, rejections and carriers, and the vectorised path agreeing with the one-by-one path."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ivr_service.core.phones import CARRIERS, LEGACY_PREFIXES, _fast_mobiles, normalise, normalise_many


@pytest.mark.parametrize("raw", [
    "0912 345 678", "84912345678", "+84 912 345 678", "0084912345678", "(+84) 912.345.678",
    "912345678",          # Excel stored it as a number and lost the leading 0
    "912345678.0",        # ... and as a float
    "0912345678", " 0912345678 ", "0912-345-678", "0912.345.678", "+84.912.345.678", "(84) 912345678",
])
def test_spellings_of_one_mobile_number(raw: str) -> None:
    phone = normalise(raw)
    assert phone.e164 == "+84912345678"
    assert (phone.kind, phone.carrier, phone.reason) == ("mobile", "Vinaphone", None)
    assert phone.ok and phone.can_sms


def test_a_number_passed_as_an_integer() -> None:
    assert normalise(912345678).e164 == "+84912345678"  # type: ignore[arg-type]


@pytest.mark.parametrize("raw, e164, carrier", [
    ("01662345678", "+84362345678", "Viettel"),
    ("0166 234 5678", "+84362345678", "Viettel"),
    ("+84 166 234 5678", "+84362345678", "Viettel"),
    ("1662345678", "+84362345678", "Viettel"),           # legacy number that also lost its 0
    ("01662345678.0", "+84362345678", "Viettel"),
    ("0123 456 7890", "+84834567890", "Vinaphone"),       # legacy Vinaphone 0123 → 083
    ("01201234567", "+84701234567", "Mobifone"),
    ("01861234567", "+84561234567", "Vietnamobile"),
    ("0199 123 4567", "+84591234567", "Gmobile"),
])
def test_legacy_eleven_digit_mobiles(raw: str, e164: str, carrier: str) -> None:
    phone = normalise(raw)
    assert (phone.e164, phone.kind, phone.carrier) == (e164, "mobile", carrier)
    assert phone.ok and phone.can_sms


# REFERENCE §7: old prefix → new prefix and carrier, last 7 digits kept.
LEGACY = {
    "0120": ("070", "Mobifone"), "0121": ("079", "Mobifone"), "0122": ("077", "Mobifone"),
    "0126": ("076", "Mobifone"), "0128": ("078", "Mobifone"),
    "0123": ("083", "Vinaphone"), "0124": ("084", "Vinaphone"), "0125": ("085", "Vinaphone"),
    "0127": ("081", "Vinaphone"), "0129": ("082", "Vinaphone"),
    **{f"016{d}": (f"03{d}", "Viettel") for d in range(2, 10)},
    "0186": ("056", "Vietnamobile"), "0188": ("058", "Vietnamobile"), "0199": ("059", "Gmobile"),
}


@pytest.mark.parametrize("old", sorted(LEGACY))
def test_every_legacy_prefix(old: str) -> None:
    new, carrier = LEGACY[old]
    assert LEGACY_PREFIXES[old] == new
    phone = normalise(old + "7654321")
    assert phone.e164 == "+84" + new[1:] + "7654321"
    assert (phone.kind, phone.carrier) == ("mobile", carrier)


def test_the_legacy_table_is_exactly_the_reference() -> None:
    assert set(LEGACY_PREFIXES) == set(LEGACY)


@pytest.mark.parametrize("raw, e164", [
    ("024 3825 1234", "+842438251234"),       # Hà Nội
    ("028 3829 1234", "+842838291234"),       # TP.HCM
    ("02438251234", "+842438251234"),
    ("2438251234", "+842438251234"),          # Excel lost the 0
    ("+84 24 3825 1234", "+842438251234"),
    ("842438251234", "+842438251234"),
])
def test_landlines_are_callable_but_not_textable(raw: str, e164: str) -> None:
    phone = normalise(raw)
    assert (phone.e164, phone.kind, phone.carrier) == (e164, "landline", None)
    assert phone.ok and not phone.can_sms


@pytest.mark.parametrize("raw", [
    "", "   ", None, "abc", "12345", "không có", "091234567", "0912 345 6789", "0241234", "0281234",
    "12345678901234", "+1 415 555 0100", "0912345678/0987654321", "1900 1234", "0691234567",
])
def test_rejected_numbers_say_why(raw: str | None) -> None:
    phone = normalise(raw)  # type: ignore[arg-type]
    assert phone.e164 is None and phone.kind == "invalid" and phone.carrier is None
    assert phone.reason
    assert not phone.ok and not phone.can_sms


def test_empty_is_reported_as_empty() -> None:
    assert normalise("").reason == "empty" and normalise("  ").reason == "empty"
    assert "abc" in normalise("abc").reason


@pytest.mark.parametrize("prefix, carrier", [
    (prefix, carrier) for carrier, prefixes in CARRIERS.items() for prefix in prefixes])
def test_carriers(prefix: str, carrier: str) -> None:
    phone = normalise(prefix + "1234567")
    assert (phone.e164, phone.kind, phone.carrier) == ("+84" + prefix[1:] + "1234567", "mobile", carrier)


def test_carrier_table_matches_the_reference() -> None:
    assert set(CARRIERS["Viettel"]) == {f"03{d}" for d in range(2, 10)} | {"086", "096", "097", "098"}
    assert set(CARRIERS["Mobifone"]) == {"070", "076", "077", "078", "079", "089", "090", "093"}
    assert set(CARRIERS["Vinaphone"]) == {"081", "082", "083", "084", "085", "088", "091", "094"}
    assert set(CARRIERS["Vietnamobile"]) == {"052", "056", "058", "092"}
    assert CARRIERS["Itel"] == ("087",) and CARRIERS["Reddi"] == ("055",)
    assert set(CARRIERS["Gmobile"]) == {"059", "099"}
    every = [p for prefixes in CARRIERS.values() for p in prefixes]
    assert len(every) == len(set(every))  # no prefix belongs to two carriers


# --- the vectorised path ---------------------------------------------------------------------

def test_vectorised_path_on_the_same_cases() -> None:
    raws = ["0912 345 678", "0971234567", "912345678.0", "01662345678", "0123 456 7890", "024 3825 1234",
            "abc", "12345"]
    table = normalise_many(pd.Series(raws))
    assert list(table["e164"]) == ["+84912345678", "+84971234567", "+84912345678", "+84362345678",
                                   "+84834567890", "+842438251234", None, None]
    assert list(table["kind"]) == ["mobile", "mobile", "mobile", "mobile", "mobile", "landline", "invalid",
                                   "invalid"]
    assert list(table["carrier"]) == ["Vinaphone", "Viettel", "Vinaphone", "Viettel", "Vinaphone", None, None,
                                      None]


# Random digits alone are almost always invalid or a plain 10-digit mobile (the fast path):
# under 1 % of the values drawn were legacy numbers, landlines or other valid spellings that
# only the slow path handles. Realistic numbers (a carrier, legacy or landline prefix,
# sometimes one digit short or long) in the spellings of REFERENCE §7 raise that to about 9 %.
DIGITS = st.text("0123456789", min_size=8, max_size=12)
DECOR = st.sampled_from(["{}", "+84{}", "84{}", "0084{}", "{} ", "({})", "0{}"])
CARRIER_PREFIXES = {p for prefixes in CARRIERS.values() for p in prefixes}
PREFIXES = sorted(CARRIER_PREFIXES | set(LEGACY_PREFIXES) | {"024", "028", "0236", "0251"})


@st.composite
def spelled_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(PREFIXES))
    length = 10 if prefix in CARRIER_PREFIXES else 11
    length += draw(st.sampled_from([0, 0, 0, -1, 1]))   # mostly a real length, sometimes one off
    national = prefix + draw(st.text("0123456789", min_size=length - len(prefix), max_size=length - len(prefix)))
    digits = draw(st.sampled_from([national, national[1:], "84" + national[1:], "+84" + national[1:],
                                   "0084" + national[1:]]))
    separator = draw(st.sampled_from(["", " ", ".", "-"]))
    if separator:
        digits = separator.join([digits[:-7], digits[-7:-4], digits[-4:]])
    elif digits.isdigit():
        digits = draw(st.sampled_from(["{}", "{}.0"])).format(digits)    # Excel's float
    return draw(st.sampled_from(["{}", " {} ", "({})"])).format(digits)


VALUES = st.lists(st.builds(lambda d, f: f.format(d), DIGITS, DECOR) | spelled_numbers()
                  | st.sampled_from(["", "x", "0912 345 678"]), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(values=VALUES)
# Where the fast path's length rules differ from normalise(): "84" + 9 digits, 10 digits
# starting with 84, an Excel float, a legacy number that lost its 0, "+84" before a 0.
@example(values=["84912345678", "8491234567", "849123456", "912345678.0", "1662345678", "+84 0912 345 678"])
def test_vectorised_path_agrees_with_normalise(values: list[str]) -> None:
    table = normalise_many(pd.Series(values))
    for value in values:
        one = normalise(value)
        assert (table.loc[value, "e164"], table.loc[value, "kind"]) == (one.e164, one.kind), value
        assert (table.loc[value, "carrier"], table.loc[value, "reason"]) == (one.carrier, one.reason), value


def test_usual_spellings_take_the_array_path_and_the_rest_is_left_to_normalise() -> None:
    fast = ["0912 345 678", "84912345678", "+84 912 345 678", "0084912345678", "(+84) 912.345.678", "912345678",
            " 0912-345-678\t"]
    slow = ["912345678.0", "01662345678", "024 3825 1234", "0912 345 678 9", "không có", "", "x" * 40]
    e164, carrier = _fast_mobiles(fast + slow)
    assert list(e164) == ["+84912345678"] * len(fast) + [None] * len(slow)
    assert list(carrier >= 0) == [True] * len(fast) + [False] * len(slow)
