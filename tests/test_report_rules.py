"""The report's pure rules: period labels, rollups along the tree, ranks, and the tests of
change against the previous period (core.report, core.programmes)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from ivr_service.core.programmes import parse_period, previous_period
from ivr_service.core.report import (
    Figures,
    combine,
    from_intervals,
    rank,
    rollup_tree,
    two_proportions,
    weighted_mean,
)


@pytest.mark.parametrize(("label", "kind", "start", "end"), [
    ("2026-11", "month", date(2026, 11, 1), date(2026, 11, 30)),
    ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),
    ("2026-Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31)),
    ("2026-q1", "quarter", date(2026, 1, 1), date(2026, 3, 31)),
    ("2026-H2", "half", date(2026, 7, 1), date(2026, 12, 31)),
    (" 2026-H1 ", "half", date(2026, 1, 1), date(2026, 6, 30)),
])
def test_period_labels(label: str, kind: str, start: date, end: date) -> None:
    found_kind, period = parse_period(label)
    assert (found_kind, period.start, period.end) == (kind, start, end)


@pytest.mark.parametrize("label", ["2026-13", "2026-00", "2026-Q5", "2026-H3", "2026", "26-11", "2026-11-01", ""])
def test_bad_period_labels_say_what_is_expected(label: str) -> None:
    with pytest.raises(ValueError, match=r"2026-11.*2026-Q4.*2026-H2"):
        parse_period(label)


def test_the_previous_period_crosses_years() -> None:
    assert previous_period(*parse_period("2026-01")).label == "2025-12"
    assert previous_period(*parse_period("2026-Q1")).label == "2025-Q4"
    assert previous_period(*parse_period("2026-H1")).label == "2025-H2"
    assert previous_period(*parse_period("2026-H2")).label == "2026-H1"


def test_weighted_mean_leaves_out_missing_values_and_zero_weights() -> None:
    assert weighted_mean([(100, 80.0), (300, 60.0)]) == pytest.approx(65.0)
    assert weighted_mean([(100, 80.0), (300, None), (0, 10.0)]) == pytest.approx(80.0)
    assert weighted_mean([(0, 50.0)]) is None
    assert weighted_mean([]) is None


def figures(service: float | None, overall: float | None = None, **criteria: float | None) -> Figures:
    return Figures(service, {"I": service}, criteria, overall)


def test_a_tree_rolls_up_by_eligible_population_from_the_leaves() -> None:
    """Province 1 (own campaigns N=1000 at 90) → department 2 (N=3000 at 60) → office 4
    (N=1000 at 30); province → commune 3 (N=2000 at 75, no overall item)."""
    children = {1: [2, 3], 2: [4]}
    own = {1: figures(90.0, 80.0, C01=90.0), 2: figures(60.0, 50.0, C01=None), 3: figures(75.0, None, C01=70.0),
           4: figures(30.0, 20.0, C01=40.0)}
    eligible = {1: 1000, 2: 3000, 3: 2000, 4: 1000}
    rolled = rollup_tree(1, children, own, eligible)
    department, n_department = rolled[2]
    assert n_department == 4000
    assert department.service_index == pytest.approx((3000 * 60 + 1000 * 30) / 4000)   # 52.5
    assert department.criteria["C01"] == pytest.approx(40.0)                          # only the office has C01
    province, n_province = rolled[1]
    assert n_province == 7000
    assert province.service_index == pytest.approx((1000 * 90 + 4000 * 52.5 + 2000 * 75) / 7000)
    assert province.overall == pytest.approx((1000 * 80 + 4000 * (3000 * 50 + 1000 * 20) / 4000) / 5000)
    assert province.factors["I"] == province.service_index
    assert rolled[3][0].overall is None


def test_a_node_without_its_own_campaigns_is_its_units() -> None:
    rolled = rollup_tree(1, {1: [2, 3]}, {2: figures(50.0), 3: figures(100.0)}, {2: 100, 3: 300})
    assert rolled[1][0].service_index == pytest.approx(87.5)
    assert combine([]).service_index is None


def test_ranks_are_competition_ranks_and_skip_missing_values() -> None:
    assert rank([("a", 70.0), ("b", 90.0), ("c", 70.0), ("d", None), ("e", 50.0)]) == {"b": 1, "a": 2, "c": 2,
                                                                                       "e": 4}


def test_two_proportions_matches_the_textbook_figures() -> None:
    z, p = two_proportions(40, 100, 60, 100)   # pooled 0.5: se = √(0.25 · 0.02)
    assert z == pytest.approx(0.2 / math.sqrt(0.005))
    assert p == pytest.approx(0.004677734981047177)
    assert two_proportions(0, 0, 5, 10) == (None, None)
    assert two_proportions(10, 10, 20, 20) == (0.0, 1.0)   # everyone satisfied both times


def test_change_from_intervals_uses_their_half_widths() -> None:
    z, p = from_intervals((70.0, 65.0, 75.0), (80.0, 76.0, 84.0))
    se = math.hypot(10 / (2 * 1.959963984540054), 8 / (2 * 1.959963984540054))
    assert z == pytest.approx(10 / se)
    assert p is not None and p < 0.05
    assert from_intervals((70.0, None, None), (80.0, 76.0, 84.0)) == (None, None)
