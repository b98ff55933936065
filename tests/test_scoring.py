"""Scoring on small hand-computed examples: criterion index, mean, n, exclusions, factor and
service indices (mean of criteria and pooled), weighted figures, Wilson interval, flags."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ivr_service.core.flow import AnswerStatus, Response
from ivr_service.core.questionnaire import load_questionnaire
from ivr_service.core.scoring import Respondent, score, score_item, wilson_interval

from .conftest import ROOT

QDIR = ROOT / "config" / "questionnaires"
Q = load_questionnaire(QDIR / "sipas-2024.yaml")
Q2 = load_questionnaire(QDIR / "sipas-2level-2024.yaml")

NO_OPINION = "no opinion"
UNANSWERED = "unanswered"


def resp(value: int | str) -> Response:
    if value == NO_OPINION:
        return Response(None, AnswerStatus.NO_OPINION, "0")
    if value == UNANSWERED:
        return Response(None, AnswerStatus.UNANSWERED, "")
    assert isinstance(value, int)
    return Response(value, AnswerStatus.ANSWERED, str(value))


def person(weight: float = 1.0, **answers: int | str) -> Respondent:
    return Respondent({k: resp(v) for k, v in answers.items()}, weight=weight)


# Three respondents; C05–C16 never answered.
#            C01 C02 C03          C04 OVERALL
# R1 (w=10)   5   3   4            4   5
# R2 (w=2)    4   2   no opinion   1   3
# R3 (w=1)    2   unanswered 5     5   4
R1 = person(10, C01=5, C02=3, C03=4, C04=4, OVERALL=5)
R2 = person(2, C01=4, C02=2, C03=NO_OPINION, C04=1, OVERALL=3)
R3 = person(1, C01=2, C02=UNANSWERED, C03=5, C04=5, OVERALL=4)
PEOPLE = [R1, R2, R3]


def test_criterion_index_mean_and_counts() -> None:
    report = score(Q, PEOPLE)
    c01 = report.criterion("C01")
    assert (c01.n, c01.n_satisfied, c01.n_dissatisfied, c01.n_no_opinion, c01.n_unanswered) == (3, 2, 1, 0, 0)
    assert c01.index == pytest.approx(200 / 3)          # 4 and 5 are satisfied, 2 is not
    assert c01.mean == pytest.approx(11 / 3)
    assert c01.factor == "I"


def test_no_opinion_and_unanswered_are_left_out_of_the_denominator() -> None:
    report = score(Q, PEOPLE)
    c02 = report.criterion("C02")     # values 3, 2; R3 unanswered
    assert (c02.n, c02.n_satisfied, c02.n_unanswered, c02.n_no_opinion) == (2, 0, 1, 0)
    assert c02.index == 0.0 and c02.mean == pytest.approx(2.5)
    c03 = report.criterion("C03")     # values 4, 5; R2 no opinion
    assert (c03.n, c03.n_satisfied, c03.n_no_opinion, c03.n_unanswered) == (2, 2, 1, 0)
    assert c03.index == 100.0 and c03.mean == pytest.approx(4.5)   # not 2/3
    c05 = report.criterion("C05")     # nobody answered
    assert (c05.n, c05.index, c05.mean, c05.ci_low, c05.ci_high, c05.weighted_index) == (0, *[None] * 5)
    assert c05.dissatisfied_flag is False


def test_factor_index_is_the_mean_of_criterion_indices() -> None:
    report = score(Q, PEOPLE)
    f1 = report.factor("I")
    assert f1.index == pytest.approx((200 / 3 + 0 + 100) / 3)      # 55.56, not pooled 4/7
    assert (f1.n_criteria, f1.n) == (3, 7)
    f2 = report.factor("II")       # only C04 has answers: 4, 1, 5
    assert f2.index == pytest.approx(200 / 3)
    assert (f2.n_criteria, f2.n) == (1, 3)
    for name in ("III", "IV", "V"):
        empty = report.factor(name)
        assert (empty.index, empty.weighted_index, empty.n_criteria, empty.n) == (None, None, 0, 0)
    assert [f.factor for f in report.factors] == ["I", "II", "III", "IV", "V"]
    with pytest.raises(KeyError):
        report.factor("VI")
    with pytest.raises(KeyError):
        report.criterion("OVERALL")   # the overall item is not a criterion


def test_service_index_is_the_mean_of_factor_indices_with_answers() -> None:
    report = score(Q, PEOPLE)
    assert report.service_index == pytest.approx(((200 / 3 + 0 + 100) / 3 + 200 / 3) / 2)   # 61.11
    assert report.aggregation == "mean_of_criteria"
    assert report.n_respondents == 3 and report.questionnaire == "sipas-2024"
    assert len(report.criteria) == 16


def test_pooled_aggregation() -> None:
    report = score(Q, PEOPLE, aggregation="pooled")
    assert report.aggregation == "pooled"
    assert report.factor("I").index == pytest.approx(100 * 4 / 7)    # (2 + 0 + 2) / (3 + 2 + 2)
    assert report.factor("II").index == pytest.approx(100 * 2 / 3)
    # The service index stays the mean of the (pooled) factor indices.
    assert report.service_index == pytest.approx((100 * 4 / 7 + 100 * 2 / 3) / 2)
    # Criterion figures do not depend on the aggregation.
    assert report.criteria == score(Q, PEOPLE).criteria


def test_unknown_aggregation_is_rejected() -> None:
    with pytest.raises(ValueError, match="median"):
        score(Q, PEOPLE, aggregation="median")  # type: ignore[arg-type]


def test_overall_item_is_scored_separately() -> None:
    overall = score(Q, PEOPLE).overall
    assert overall is not None and overall.item_id == "OVERALL" and overall.factor is None
    assert (overall.n, overall.n_satisfied, overall.index, overall.mean) == (3, 2, pytest.approx(200 / 3), 4.0)


def test_weighted_index_uses_stratum_weights() -> None:
    report = score(Q, PEOPLE)
    # C01: satisfied R1 (10) and R2 (2) out of 13.
    assert report.criterion("C01").weighted_index == pytest.approx(100 * 12 / 13)
    assert report.criterion("C02").weighted_index == 0.0
    # C03: R2 has no opinion, so the weights are R1 + R3 = 11, both satisfied.
    assert report.criterion("C03").weighted_index == 100.0
    assert report.criterion("C04").weighted_index == pytest.approx(100 * 11 / 13)
    f1 = (100 * 12 / 13 + 0 + 100) / 3
    assert report.factor("I").weighted_index == pytest.approx(f1)
    assert report.factor("II").weighted_index == pytest.approx(100 * 11 / 13)
    assert report.weighted_service_index == pytest.approx((f1 + 100 * 11 / 13) / 2)


def test_equal_weights_give_the_unweighted_index() -> None:
    same = [Respondent(p.responses, weight=7.5) for p in PEOPLE]
    report = score(Q, same)
    answered = [c for c in report.criteria if c.n]
    assert [c.item_id for c in answered] == ["C01", "C02", "C03", "C04"]
    for criterion in answered:
        assert criterion.weighted_index == pytest.approx(criterion.index)
    assert report.weighted_service_index == pytest.approx(report.service_index)


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(49.02, abs=0.01) and high == pytest.approx(94.33, abs=0.01)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(43.45, abs=0.01)
    low, high = wilson_interval(5, 5)
    assert low == pytest.approx(56.55, abs=0.01) and high == 100.0
    assert wilson_interval(0, 0) == (None, None)


def test_criterion_reports_the_wilson_interval_of_its_index() -> None:
    people = [person(C01=5)] * 8 + [person(C01=3)] * 2
    c01 = score(Q, people).criterion("C01")
    assert c01.index == 80.0
    assert (c01.ci_low, c01.ci_high) == pytest.approx((49.016, 94.332), abs=0.001)


@settings(max_examples=200, deadline=None)
@given(case=st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@example(case=(0, 1))
@example(case=(1, 1))
@example(case=(2500, 5000))            # the widest interval for its n
def test_wilson_interval_contains_the_estimate(case: tuple[int, int]) -> None:
    k, n = case
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= 100 * k / n <= high <= 100.0
    assert high - low <= 100 * 2 * 1.96 / (2 * math.sqrt(n)) + 1e-9   # never wider than the conservative Wald width


@pytest.mark.parametrize("values, flag", [
    ([1, 4, 4, 4], False),           # 25 % dissatisfied: not above 25 %
    ([2, 4, 4, 5, 1, 3, 3], True),   # 2/7 = 28.6 %
    ([3, 3, 3, 3], False),           # neutral is not dissatisfied
    ([1, 2, 4], True),
])
def test_dissatisfied_flag_above_25_percent(values: list[int], flag: bool) -> None:
    c = score(Q, [person(C01=v) for v in values]).criterion("C01")
    assert c.n_dissatisfied == sum(1 for v in values if v <= 2)
    assert c.dissatisfied_flag is flag


def test_no_opinion_does_not_dilute_the_dissatisfied_share() -> None:
    # 1 of 3 valid answers dissatisfied (33 %) even with many "no opinion".
    people = [person(C01=1), person(C01=4), person(C01=5)] + [person(C01=NO_OPINION)] * 5
    c = score(Q, people).criterion("C01")
    assert (c.n, c.n_no_opinion, c.dissatisfied_flag) == (3, 5, True)


def test_items_not_asked_are_neither_unanswered_nor_counted() -> None:
    # Factor V was not asked of R1–R3 (no feedback): it is simply absent.
    c14 = score(Q, PEOPLE).criterion("C14")
    assert (c14.n, c14.n_no_opinion, c14.n_unanswered) == (0, 0, 0)


def test_two_level_scale() -> None:
    people = [person(C01=1), person(C01=1), person(C01=0), person(C01=NO_OPINION),
              person(C02=0), person(C02=0)]
    report = score(Q2, people)
    c01 = report.criterion("C01")
    assert (c01.n, c01.n_satisfied, c01.n_dissatisfied, c01.n_no_opinion) == (3, 2, 1, 1)
    assert c01.index == pytest.approx(200 / 3) and c01.mean == pytest.approx(2 / 3)
    assert c01.dissatisfied_flag is True
    c02 = report.criterion("C02")
    assert (c02.index, c02.dissatisfied_flag) == (0.0, True)
    assert report.factor("I").index == pytest.approx((200 / 3 + 0) / 2)
    assert report.service_index == pytest.approx((200 / 3) / 2)
    assert len(report.criteria) == 20


def test_no_respondents() -> None:
    report = score(Q, [])
    assert report.n_respondents == 0 and report.service_index is None and report.weighted_service_index is None
    assert all(c.n == 0 and c.index is None for c in report.criteria)
    assert report.overall is not None and report.overall.n == 0


def test_score_item_alone_and_generators() -> None:
    c = score_item(Q.item("C04"), PEOPLE)
    assert (c.n, c.index) == (3, pytest.approx(200 / 3))
    assert score(Q, iter(PEOPLE)).n_respondents == 3   # any iterable of respondents


# Stratum weights N_h / n_h. With every weight 1 (as this property had it) the weighted index
# is the index whatever the weighting does; drawn weights check the weighted share itself.
WEIGHTS = st.sampled_from([1.0, 2.5, 7.0, 40.0])


@settings(max_examples=150, deadline=None)
@given(answers=st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, NO_OPINION, UNANSWERED]), WEIGHTS), max_size=40))
@example(answers=[(1, 1.0), (4, 1.0), (4, 1.0), (4, 1.0)])                 # 25 % dissatisfied: not flagged
@example(answers=[(2, 1.0), (4, 40.0), (5, 2.5), (NO_OPINION, 7.0)])       # 1 of 3 dissatisfied: flagged
def test_property_criterion_counts_add_up(answers: list[tuple[int | str, float]]) -> None:
    c = score(Q, [person(weight, C01=a) for a, weight in answers]).criterion("C01")
    valid = [(a, weight) for a, weight in answers if isinstance(a, int)]
    values = [v for v, _ in valid]
    assert c.n + c.n_no_opinion + c.n_unanswered == len(answers)
    assert c.n == len(valid) and c.n_satisfied == sum(1 for v in values if v >= 4)
    assert c.n_dissatisfied == sum(1 for v in values if v <= 2)
    assert c.dissatisfied_flag is (bool(valid) and c.n_dissatisfied / c.n > 0.25)
    if valid:
        assert c.index == pytest.approx(100 * c.n_satisfied / c.n)
        assert c.mean == pytest.approx(sum(values) / len(values))
        assert c.ci_low <= c.index <= c.ci_high
        assert c.weighted_index == pytest.approx(100 * sum(w for v, w in valid if v >= 4) / sum(w for _, w in valid))
        if len({w for _, w in valid}) == 1:
            assert c.weighted_index == pytest.approx(c.index)
    else:
        assert c.index is None and c.weighted_index is None
