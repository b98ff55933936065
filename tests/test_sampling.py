"""Sample sizes against the seeds' thresholds and formulas, proportional allocation with a
minimum of one per field, and the reproducible stratified draw. (Sampling through the CLI and
the API is in test_sampling_interfaces.py.)"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ivr_service.core.sampling import SampleRule, allocate, draw, sample_size

# Seed 002: ≥500 transactions → 150; 200–499 → 100; <200 → 30; fewer than 30 → all of them.
SEED002 = [(0, 0), (1, 1), (29, 29), (30, 30), (31, 30), (199, 30), (200, 100), (201, 100), (499, 100),
           (500, 150), (501, 150), (10_000, 150), (100_000, 150), (1_000_000, 150)]


@pytest.mark.parametrize("population, expected", SEED002)
def test_seed002_tiers(population: int, expected: int) -> None:
    assert sample_size(population, SampleRule()) == expected      # seed002 is the default rule
    assert sample_size(population, SampleRule("seed002")) == expected


@pytest.mark.parametrize("population, n, expected", [(0, 50, 0), (1, 50, 1), (40, 50, 40), (50, 50, 50),
                                                     (10_000, 50, 50), (40, 100, 40)])
def test_fixed(population: int, n: int, expected: int) -> None:
    assert sample_size(population, SampleRule("fixed", n=n)) == expected


@pytest.mark.parametrize("population", [0, 1, 29, 30, 40, 500, 12_345])
def test_census_takes_everyone(population: int) -> None:
    assert sample_size(population, SampleRule("census")) == population


# Seed 003: <100 → 50 %, 100–499 → 30 %, 500–999 → 20 %, ≥1000 → 10 %, rounded up.
@pytest.mark.parametrize("rule, population, expected", [
    ("seed003", 10, 5), ("seed003", 60, 30), ("seed003", 99, 50), ("seed003", 100, 30), ("seed003", 101, 31),
    ("seed003", 499, 150), ("seed003", 500, 100), ("seed003", 999, 200), ("seed003", 1000, 100),
    ("seed003", 25_000, 2500),
    ("slovin", 20, 20), ("slovin", 100, 80),
    ("slovin", 1000, 286),      # 1000 / (1 + 1000·0.0025) = 285.7
    ("slovin", 10_000, 385), ("slovin", 1_000_000, 400),
    ("cochran", 100, 80),       # with the finite-population correction
    ("cochran", 1000, 278),     # n0 = 384.1; 384.1 / (1 + 383.1/1000) = 277.7
    ("cochran", 10_000, 370), ("cochran", 1_000_000, 384),
])
def test_other_rules(rule: str, population: int, expected: int) -> None:
    assert sample_size(population, SampleRule(rule)) == expected


def test_margin_changes_slovin() -> None:
    assert sample_size(1000, SampleRule("slovin", margin=0.1)) == 91     # 1000 / 11 = 90.9


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "guess"}, "expected one of"), ({"kind": "fixed"}, "positive n"),
    ({"kind": "fixed", "n": 0}, "positive n"), ({"kind": "slovin", "margin": 0.0}, "margin"),
    ({"kind": "slovin", "margin": 0.5}, "margin"),
])
def test_rule_validation(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SampleRule(**kwargs)  # type: ignore[arg-type]


RULE = (st.sampled_from(["seed002", "seed003", "slovin", "cochran", "census"]).map(SampleRule)
        | st.builds(lambda n: SampleRule("fixed", n=n), st.integers(1, 1000)))


@settings(max_examples=200, deadline=None)
@given(population=st.integers(0, 100_000), rule=RULE)
def test_property_sample_never_exceeds_the_frame(population: int, rule: SampleRule) -> None:
    n = sample_size(population, rule)
    assert 0 <= n <= population
    assert (n == 0) is (population == 0)


# --- allocation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, n, expected", [
    ({"A": 70, "B": 25, "C": 5}, 20, {"A": 14, "B": 5, "C": 1}),          # exact quotas
    ({"A": 50, "B": 30, "C": 20}, 7, {"A": 4, "B": 2, "C": 1}),           # 3.5, 2.1, 1.4: A has the largest remainder
    ({"A": 10, "B": 10, "C": 10}, 4, {"A": 2, "B": 1, "C": 1}),           # tie broken by name
    ({"big": 1000, "s1": 1, "s2": 2}, 10, {"big": 8, "s1": 1, "s2": 1}),  # minimum one, taken from the largest
    ({"A": 10, "Z": 0}, 5, {"A": 5}),                                      # empty fields are left out
])
def test_allocate_examples(sizes: dict[str, int], n: int, expected: dict[str, int]) -> None:
    alloc = allocate(sizes, n)
    assert alloc == expected
    assert sum(alloc.values()) == n


def test_allocate_proportional_within_one_of_the_quota() -> None:
    sizes = {"đất đai": 612, "hộ tịch": 233, "xây dựng": 97, "tư pháp": 58}
    alloc = allocate(sizes, 150)
    assert sum(alloc.values()) == 150
    for field, size in sizes.items():
        assert abs(alloc[field] - 150 * size / 1000) < 1, field


@pytest.mark.parametrize("n", [5, 6, 100])
def test_allocate_takes_everyone_when_n_covers_the_frame(n: int) -> None:
    assert allocate({"A": 3, "B": 2, "Z": 0}, n) == {"A": 3, "B": 2}


def test_allocate_cannot_cover_more_fields_than_draws() -> None:
    with pytest.raises(ValueError, match="cover 3"):
        allocate({"A": 10, "B": 10, "C": 10, "Z": 0}, 2)
    # Without the minimum it is plain largest-remainder allocation.
    alloc = allocate({"A": 10, "B": 10, "C": 10}, 2, minimum_one=False)
    assert alloc == {"A": 1, "B": 1, "C": 0}


def test_allocate_does_not_depend_on_dict_order() -> None:
    sizes = {"C": 7, "A": 7, "B": 7, "D": 1}
    assert allocate(sizes, 6) == allocate(dict(sorted(sizes.items())), 6) == {"A": 2, "B": 2, "C": 1, "D": 1}


# Field names: short ones from a few letters (ties in the remainders are broken by name), or
# any text, as fields are written in the transaction lists.
SIZES = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3) | st.text(min_size=1, max_size=5),
                        st.integers(0, 800), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(sizes=SIZES, data=st.data())
def test_property_allocate(sizes: dict[str, int], data: st.DataObject) -> None:
    nonempty = {k: v for k, v in sizes.items() if v > 0}
    assume(nonempty)
    total = sum(nonempty.values())
    n = data.draw(st.integers(len(nonempty), total + 5), label="n")
    alloc = allocate(sizes, n)
    assert set(alloc) == set(nonempty)
    assert sum(alloc.values()) == min(n, total)
    for field, size in nonempty.items():
        assert 1 <= alloc[field] <= size
    if n >= total:
        assert alloc == nonempty
        return
    quotas = {k: n * v / total for k, v in nonempty.items()}
    raised = [k for k in nonempty if quotas[k] < 1]
    for field in nonempty:
        # Never more than the quota rounded up (or the guaranteed one) ...
        assert alloc[field] <= max(1, math.ceil(quotas[field]))
        # ... and never less than its floor, minus the draws given to fields below one.
        assert alloc[field] >= math.floor(quotas[field]) - len(raised)
    if not raised:
        assert all(abs(alloc[k] - quotas[k]) < 1 for k in nonempty)
    # Deterministic whatever the order of the fields.
    assert allocate(dict(reversed(list(sizes.items()))), n) == alloc


@settings(max_examples=200, deadline=None)
@given(sizes=SIZES, data=st.data())
def test_property_allocate_without_minimum(sizes: dict[str, int], data: st.DataObject) -> None:
    nonempty = {k: v for k, v in sizes.items() if v > 0}
    assume(nonempty)
    total = sum(nonempty.values())
    n = data.draw(st.integers(0, total - 1), label="n") if total > 1 else 0
    alloc = allocate(sizes, n, minimum_one=False)
    assert sum(alloc.values()) == n
    for field, size in nonempty.items():
        assert abs(alloc[field] - n * size / total) < 1
        assert 0 <= alloc[field] <= size


# --- draw ---------------------------------------------------------------------------------------

FRAME = pd.DataFrame({"field": ["A"] * 70 + ["B"] * 25 + ["C"] * 5, "id": range(100)})


def test_draw_is_reproducible_for_a_seed() -> None:
    first, again, other = draw(FRAME, "field", 20, 7), draw(FRAME, "field", 20, 7), draw(FRAME, "field", 20, 8)
    assert list(first["id"]) == list(again["id"])
    assert set(first["id"]) != set(other["id"])
    assert list(draw(FRAME, "field", 20, np.random.default_rng(7))["id"]) == list(first["id"])


def test_draw_represents_every_stratum_with_weights_n_over_n() -> None:
    sample = draw(FRAME, "field", 20, 3)
    assert len(sample) == 20 and sample["id"].is_unique
    assert sample["field"].value_counts().to_dict() == {"A": 14, "B": 5, "C": 1}
    weights = sample.groupby("field")["stratum_weight"].unique().to_dict()
    assert {k: list(v) for k, v in weights.items()} == {"A": [70 / 14], "B": [25 / 5], "C": [5 / 1]}
    assert (sample["replicate"] == 0).all()
    # Rows are the frame's own rows.
    assert (FRAME.loc[sample.index, "id"] == sample["id"]).all()
    # Weights add up to the frame size.
    assert sample["stratum_weight"].sum() == pytest.approx(len(FRAME))


def test_draw_with_a_small_stratum_keeps_one() -> None:
    frame = pd.DataFrame({"field": ["A"] * 995 + ["B"] * 5, "id": range(1000)})
    sample = draw(frame, "field", 30, 1)
    counts = sample["field"].value_counts().to_dict()
    assert counts == {"A": 29, "B": 1}
    assert sample.loc[sample["field"] == "B", "stratum_weight"].tolist() == [5.0]


def test_draw_with_missing_field_values() -> None:
    frame = pd.DataFrame({"field": ["A"] * 8 + [None] * 2, "id": range(10)})
    sample = draw(frame, "field", 5, 0)
    assert len(sample) == 5 and sample["field"].isna().sum() == 1   # None is a stratum of its own


def test_draw_with_reserve_in_replicates() -> None:
    sample = draw(FRAME, "field", 20, 5, reserve=10, replicates=2)
    main = sample[sample["replicate"] == 0]
    reserve = sample[sample["replicate"] > 0]
    assert len(main) == 20 and len(reserve) == 10 and sample["id"].is_unique
    assert set(reserve["replicate"]) == {1, 2}
    assert list(sample["replicate"]) == sorted(sample["replicate"])      # main sample first
    assert main["field"].value_counts().to_dict() == {"A": 14, "B": 5, "C": 1}
    # Main draws reproduce without the reserve.
    assert set(main["id"]) == set(draw(FRAME, "field", 20, 5)["id"])


def test_reserve_larger_than_what_is_left() -> None:
    sample = draw(FRAME, "field", 90, 2, reserve=50)
    assert len(sample) == 100 and (sample["replicate"] > 0).sum() == 10


def test_draw_everyone_when_n_covers_the_frame() -> None:
    sample = draw(FRAME, "field", 500, 1)
    assert sorted(sample["id"]) == list(range(100))
    assert (sample["stratum_weight"] == 1.0).all()


@pytest.mark.parametrize("frame, n", [(FRAME.iloc[0:0], 10), (FRAME, 0)])
def test_draw_nothing(frame: pd.DataFrame, n: int) -> None:
    sample = draw(frame, "field", n, 1)
    assert sample.empty and {"stratum_weight", "replicate"} <= set(sample.columns)


def test_draw_errors() -> None:
    with pytest.raises(ValueError, match="replicates"):
        draw(FRAME, "field", 20, 1, reserve=5, replicates=0)
    with pytest.raises(ValueError, match="cover 3"):
        draw(FRAME, "field", 2, 1)


def test_draw_is_uniform_within_a_stratum() -> None:
    # Stratum C has 5 rows and gets 1 draw: over 500 fixed seeds each row is drawn about 100 times.
    picks = Counter()
    for seed in range(500):
        sample = draw(FRAME, "field", 20, seed)
        picks.update(sample.loc[sample["field"] == "C", "id"])
    assert set(picks) == set(range(95, 100))
    assert all(60 <= count <= 140 for count in picks.values()), picks
