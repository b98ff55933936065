"""AAPOR disposition codes and response rates on a hand-made set of final codes."""

from __future__ import annotations

import pytest

from ivr_service.core.dispositions import (
    CODES,
    LABELS,
    OPTED_OUT,
    group,
    response_rates,
)
from ivr_service.core.policy import Outcome

EXPECTED_CODES = {
    Outcome.COMPLETED: ("1.1", "I"), Outcome.PARTIAL: ("1.2", "P"), Outcome.REFUSED: ("2.11", "R"),
    Outcome.BREAK_OFF: ("2.12", "R"), Outcome.MACHINE: ("3.14", "UH"), Outcome.BUSY: ("3.12", "UH"),
    Outcome.NO_ANSWER: ("3.13", "UH"), Outcome.FAILED: ("3.16", "UH"), Outcome.CANCELED: ("3.11", "UH"),
    Outcome.INVALID_NUMBER: ("4.30", "NE"), None: ("3.11", "UH"),
}


@pytest.mark.parametrize("outcome", list(EXPECTED_CODES), ids=lambda o: str(o))
def test_every_final_outcome_has_a_code_and_a_group(outcome: Outcome | None) -> None:
    code, expected_group = EXPECTED_CODES[outcome]
    assert CODES[outcome] == code
    assert group(code) == expected_group
    assert code in LABELS


def test_codes_cover_every_outcome() -> None:
    assert set(CODES) == set(Outcome) | {None}


@pytest.mark.parametrize("code, expected", [
    ("1.1", "I"), ("1.2", "P"), ("2.11", "R"), ("2.12", "R"), ("2.10", "R"), ("2.20", "NC"), ("2.21", "NC"),
    ("2.30", "O"), ("2.31", "O"), ("3.11", "UH"), ("3.12", "UH"), ("3.13", "UH"), ("3.14", "UH"),
    ("3.16", "UH"), ("3.90", "UH"), ("4.10", "NE"), ("4.20", "NE"), ("4.30", "NE"),
])
def test_group(code: str, expected: str) -> None:
    assert group(code) == expected


def test_every_labelled_code_has_a_group_and_opt_out_is_a_refusal() -> None:
    assert {code: group(code) for code in LABELS} == {
        "1.1": "I", "1.2": "P", "2.11": "R", "2.12": "R", "2.20": "NC", "2.30": "O", "3.11": "UH",
        "3.12": "UH", "3.13": "UH", "3.14": "UH", "3.16": "UH", "4.10": "NE", "4.20": "NE", "4.30": "NE"}
    assert group(OPTED_OUT) == "R"


# I=6, P=2, R=4 (3 refusals + 1 break-off), NC=2, O=1, UH=8, NE=5; 28 cases.
CASES = (["1.1"] * 6 + ["1.2"] * 2 + ["2.11"] * 3 + ["2.12"] + ["2.20"] * 2 + ["2.30"]
         + ["3.11"] * 2 + ["3.12"] + ["3.13"] * 3 + ["3.14"] + ["3.16"] + ["4.30"] * 3 + ["4.20"] + ["4.10"])
# Known eligible: I+P+R+NC+O = 15; base without unknowns = 15; with all unknowns 23.


def test_counts_per_group() -> None:
    rates = response_rates(CASES, e=0.5)
    assert len(CASES) == 28
    assert rates.counts == {"I": 6, "P": 2, "R": 4, "NC": 2, "O": 1, "UH": 8, "NE": 5}
    assert rates.e == 0.5


def test_rates_with_an_explicit_e() -> None:
    values = response_rates(CASES, e=0.5).values
    # e·UH = 4: denominators 23 (all unknowns), 19 (e·unknowns), 15 (no unknowns).
    expected = {
        "RR1": 6 / 23, "RR2": 8 / 23, "RR3": 6 / 19, "RR4": 8 / 19, "RR5": 6 / 15, "RR6": 8 / 15,
        "COOP1": 6 / 13, "COOP2": 8 / 13, "COOP3": 6 / 12, "COOP4": 8 / 12,
        "REF1": 4 / 23, "REF2": 4 / 19, "REF3": 4 / 15,
        "CON1": 13 / 23, "CON2": 13 / 19, "CON3": 13 / 15,
    }
    assert set(values) == set(expected)
    for name, value in expected.items():
        assert values[name] == pytest.approx(value), name


def test_default_e_is_the_eligible_share_of_known_cases() -> None:
    rates = response_rates(CASES)
    assert rates.e == pytest.approx(15 / 20)        # 15 eligible of 20 with known eligibility
    # e·UH = 6: denominator 21.
    assert rates.values["RR3"] == pytest.approx(6 / 21)
    assert rates.values["RR4"] == pytest.approx(8 / 21)
    assert rates.values["REF2"] == pytest.approx(4 / 21)
    assert rates.values["CON2"] == pytest.approx(13 / 21)
    # Rates that do not use e do not change.
    assert rates.values["RR1"] == pytest.approx(6 / 23) and rates.values["COOP1"] == pytest.approx(6 / 13)


def test_e_bounds_rr3_between_rr1_and_rr5() -> None:
    assert response_rates(CASES, e=1.0).values["RR3"] == pytest.approx(6 / 23)
    assert response_rates(CASES, e=0.0).values["RR3"] == pytest.approx(6 / 15)
    for e in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = response_rates(CASES, e=e).values
        assert v["RR1"] <= v["RR3"] <= v["RR5"] and v["RR2"] <= v["RR4"] <= v["RR6"]
        assert v["RR1"] <= v["RR2"] and v["COOP1"] <= v["COOP2"]


def test_no_cases() -> None:
    rates = response_rates([])
    assert rates.e == 1.0
    assert all(value is None for value in rates.values.values())
    assert rates.counts == {"I": 0, "P": 0, "R": 0, "NC": 0, "O": 0, "UH": 0, "NE": 0}


def test_only_unknown_eligibility() -> None:
    rates = response_rates(["3.13", "3.12", "3.13"])
    assert rates.e == 1.0        # nothing known: every unknown counted as eligible
    assert rates.values["RR1"] == 0.0 and rates.values["RR3"] == 0.0
    assert rates.values["RR5"] is None and rates.values["COOP1"] is None


def test_codes_from_outcomes() -> None:
    outcomes = [Outcome.COMPLETED, Outcome.COMPLETED, Outcome.PARTIAL, Outcome.REFUSED, Outcome.BUSY,
                Outcome.INVALID_NUMBER, None]
    rates = response_rates(CODES[o] for o in outcomes)     # any iterable, e.g. a generator
    assert rates.counts == {"I": 2, "P": 1, "R": 1, "NC": 0, "O": 0, "UH": 2, "NE": 1}
    assert rates.e == pytest.approx(4 / 5)
    assert rates.values["RR1"] == pytest.approx(2 / 6)
    assert rates.values["RR3"] == pytest.approx(2 / (4 + 0.8 * 2))
    assert rates.values["COOP4"] == pytest.approx(3 / 4)
