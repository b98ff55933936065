"""Vietnamese phone numbers: formats of REFERENCE §7, legacy prefixes, landlines, and the
vectorised path agreeing with the one-by-one path."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr_service.core.phones import normalise, normalise_many


@pytest.mark.parametrize("raw, e164, kind", [
    ("0912 345 678", "+84912345678", "mobile"), ("84912345678", "+84912345678", "mobile"),
    ("+84 912 345 678", "+84912345678", "mobile"), ("0084912345678", "+84912345678", "mobile"),
    ("(+84) 912.345.678", "+84912345678", "mobile"), ("912345678", "+84912345678", "mobile"),
    ("912345678.0", "+84912345678", "mobile"), ("01662345678", "+84362345678", "mobile"),
    ("0123 456 7890", "+84834567890", "mobile"), ("0199 123 4567", "+84591234567", "mobile"),
    ("024 3825 1234", "+842438251234", "landline"), ("028 3829 1234", "+842838291234", "landline"),
])
def test_accepted_forms(raw: str, e164: str, kind: str) -> None:
    phone = normalise(raw)
    assert (phone.e164, phone.kind) == (e164, kind)
    assert phone.can_sms is (kind == "mobile")


@pytest.mark.parametrize("raw", ["", "abc", "12345", "0281234", "12345678901234", "không có"])
def test_rejected_with_a_reason(raw: str) -> None:
    phone = normalise(raw)
    assert phone.e164 is None and phone.reason


DIGITS = st.text("0123456789", min_size=8, max_size=12)
DECOR = st.sampled_from(["{}", "+84{}", "84{}", "0084{}", "{} ", "({})", "0{}"])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.builds(lambda d, f: f.format(d), DIGITS, DECOR) | st.sampled_from(["", "x", "0912 345 678"]),
                       min_size=1, max_size=20))
def test_vectorised_path_agrees_with_normalise(values: list[str]) -> None:
    table = normalise_many(pd.Series(values))
    for value in values:
        one = normalise(value)
        assert (table.loc[value, "e164"], table.loc[value, "kind"]) == (one.e164, one.kind), value


def test_carrier_and_kind_come_out_of_the_vectorised_path() -> None:
    table = normalise_many(pd.Series(["0971234567", "0912 345 678", "024 3825 1234", "bad"]))
    assert list(table["carrier"]) == ["Viettel", "Vinaphone", None, None]
    assert list(table["kind"]) == ["mobile", "mobile", "landline", "invalid"]
