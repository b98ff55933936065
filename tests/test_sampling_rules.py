"""Sample sizes (table-driven against the seeds' thresholds) and stratification properties."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr_service.core.sampling import SampleRule, allocate, draw, sample_size


@pytest.mark.parametrize("population, expected", [
    (0, 0), (1, 1), (29, 29), (30, 30), (31, 30), (199, 30), (200, 100), (499, 100), (500, 150), (100_000, 150)])
def test_seed002_tiers(population: int, expected: int) -> None:
    assert sample_size(population, SampleRule("seed002")) == expected


@pytest.mark.parametrize("population, expected", [
    (10, 5), (99, 50), (100, 30), (499, 150), (500, 100), (999, 200), (1000, 100), (25_000, 2500)])
def test_seed003_shares(population: int, expected: int) -> None:
    assert sample_size(population, SampleRule("seed003")) == expected


@pytest.mark.parametrize("population, expected", [(100, 80), (1000, 286), (10_000, 385), (1_000_000, 400)])
def test_slovin(population: int, expected: int) -> None:
    assert sample_size(population, SampleRule("slovin")) == expected


@pytest.mark.parametrize("population, expected", [(100, 80), (1000, 278), (10_000, 370), (1_000_000, 384)])
def test_cochran_with_finite_population_correction(population: int, expected: int) -> None:
    assert sample_size(population, SampleRule("cochran")) == expected


def test_fixed_and_census_never_exceed_the_frame() -> None:
    assert sample_size(40, SampleRule("fixed", n=100)) == 40
    assert sample_size(40, SampleRule("census")) == 40
    with pytest.raises(ValueError, match="fixed"):
        SampleRule("fixed")
    with pytest.raises(ValueError, match="expected one of"):
        SampleRule("guess")


@given(sizes=st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 500), min_size=1, max_size=12),
       extra=st.integers(0, 400))
def test_allocation_is_proportional_and_covers_every_field(sizes: dict[str, int], extra: int) -> None:
    nonempty = {k: v for k, v in sizes.items() if v}
    total = sum(nonempty.values())
    n = min(total, len(nonempty) + extra)
    if not nonempty:
        return
    alloc = allocate(sizes, n)
    assert sum(alloc.values()) == n
    assert set(alloc) == set(nonempty)
    raised = 0
    for field, size in nonempty.items():
        assert 1 <= alloc[field] <= size
        quota = n * size / total
        raised += quota < 1 and alloc[field] == 1
        assert alloc[field] <= max(1, math.ceil(quota))        # never more than rounding up
    for field, size in nonempty.items():
        assert alloc[field] >= math.floor(n * size / total) - raised  # minimums cost at most one each


def test_draw_is_reproducible_and_weights_are_n_over_n() -> None:
    frame = pd.DataFrame({"field": ["A"] * 70 + ["B"] * 25 + ["C"] * 5, "id": range(100)})
    first, again, other = draw(frame, "field", 20, 7), draw(frame, "field", 20, 7), draw(frame, "field", 20, 8)
    assert list(first["id"]) == list(again["id"]) and list(first["id"]) != list(other["id"])
    counts = first["field"].value_counts().to_dict()
    assert counts == {"A": 14, "B": 5, "C": 1}
    assert set(first.loc[first["field"] == "B", "stratum_weight"]) == {25 / 5}
