"""95 % intervals of factor and service indices (core/scoring.py): respondents as clusters,
Wilson's interval at the effective sample size. Examples computed by hand and Hypothesis
properties; the criterion intervals (Wilson) are in test_scoring.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr_service.core import scoring
from ivr_service.core.scoring import clustered_interval, score, small_cell, wilson_interval

from .test_scoring import NO_OPINION, Q, person

FACTOR_I = ("C01", "C02", "C03")


def test_one_criterion_answered_by_everyone_is_wilson_at_n_minus_one() -> None:
    # Factor I with only C01 answered: 3 of 5 satisfied.
    people = [person(C01=v) for v in (5, 4, 4, 2, 1)]
    factor = score(Q, people).factor("I")
    assert factor.index == pytest.approx(60.0) and factor.respondents == 5
    low, high = wilson_interval(3, 5)
    # variance = p(1 − p)/(n − 1): Wilson's interval with n − 1 = 4.
    p, n, z = 0.6, 4, scoring.Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert factor.ci_low == pytest.approx(100 * (centre - half))
    assert factor.ci_high == pytest.approx(100 * (centre + half))
    assert factor.ci_low < low and factor.ci_high > high       # a little wider than at n = 5


def test_criteria_answered_alike_count_as_one_not_as_three_times_the_people() -> None:
    # Each person gives the same answer to C01–C03: three answers each, but no more
    # information than one criterion: the factor's interval is the single criterion's.
    values = (5, 4, 2, 1, 4, 5, 3)
    alike = [person(**{item: v for item in FACTOR_I}) for v in values]
    single = [person(C01=v) for v in values]
    together, alone = score(Q, alike).factor("I"), score(Q, single).factor("I")
    assert together.n == 3 * alone.n and together.index == pytest.approx(alone.index)
    assert (together.ci_low, together.ci_high) == (pytest.approx(alone.ci_low), pytest.approx(alone.ci_high))
    # Answers that differ between criteria carry more: a narrower interval than that.
    mixed = [person(C01=v, C02=w, C03=u) for v, w, u in zip(values, (4, 2, 5, 4, 1, 4, 5), (2, 5, 4, 4, 5, 1, 4),
                                                          strict=True)]
    spread = score(Q, mixed).factor("I")
    assert spread.ci_high - spread.ci_low < together.ci_high - together.ci_low


def test_no_variation_gives_wilson_at_the_number_of_respondents() -> None:
    factor = score(Q, [person(C01=5, C02=4) for _ in range(4)]).factor("I")
    assert factor.index == 100.0
    assert (factor.ci_low, factor.ci_high) == pytest.approx(wilson_interval(4, 4))
    assert factor.ci_high == 100.0 and factor.ci_low < 100.0


def test_people_without_a_valid_answer_are_not_counted() -> None:
    people = [person(C01=5), person(C01=2), person(C01=NO_OPINION), person(C04=4)]
    factor = score(Q, people).factor("I")
    assert factor.respondents == 2 and factor.n == 2
    empty = score(Q, []).factor("I")
    assert (empty.index, empty.ci_low, empty.ci_high, empty.respondents) == (None, None, None, 0)


def test_service_index_interval() -> None:
    people = [person(C01=5, C04=4), person(C01=2, C04=4), person(C01=4, C04=1), person(C01=5, C04=5)]
    report = score(Q, people)
    assert report.service_index == pytest.approx((75 + 75) / 2)
    assert report.service_ci_low is not None and report.service_ci_high is not None
    assert report.service_ci_low < report.service_index < report.service_ci_high
    assert score(Q, []).service_ci_low is None


def test_small_cells() -> None:
    assert small_cell(29) and not small_cell(30)


ANSWER = st.sampled_from([1, 2, 3, 4, 5, NO_OPINION])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ANSWER, ANSWER, ANSWER), min_size=1, max_size=40),
       st.sampled_from(["mean_of_criteria", "pooled"]))
def test_property_intervals_hold_the_index_within_0_and_100(answers: list[tuple[object, ...]],
                                                            aggregation: str) -> None:
    people = [person(**{item: value for item, value in zip(FACTOR_I, row, strict=True)}) for row in answers]
    report = score(Q, people, aggregation)  # type: ignore[arg-type]
    factor = report.factor("I")
    if factor.index is None:
        assert factor.ci_low is None and factor.respondents == 0
        return
    assert factor.ci_low is not None and factor.ci_high is not None
    assert 0.0 <= factor.ci_low <= factor.index + 1e-9 and factor.index - 1e-9 <= factor.ci_high <= 100.0
    assert factor.respondents == sum(1 for row in answers if any(v != NO_OPINION for v in row))


def test_an_index_of_nothing_has_no_interval() -> None:
    assert clustered_interval(None, {0: 1.0}) == (None, None) and clustered_interval(50.0, {}) == (None, None)
