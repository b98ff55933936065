"""Report rules as pure functions: rollups along the agency tree, rankings, and whether a
change from the previous period is more than noise.

* **Rollup.** A node's index (service, factor, criterion, overall) is the mean of its
  components' indices weighted by their eligible populations N: the node's own campaigns
  (scored together) and each unit directly below it (rolled up the same way). A component
  without a valid answer for an index is left out of that index's mean.
* **Change.** A criterion (and the overall item) is compared with a two-proportion z-test
  on the satisfied shares (pooled standard error); a factor and the service index combine
  criteria, so their standard errors are read from their 95 % intervals
  (half-width / 1.96) and z = difference / √(se₁² + se₂²). Two-sided p; a change is more
  than noise when p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .scoring import Z95, CriterionScore, ScoreReport

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Figures:
    """The indices of one unit (percent; None without valid answers)."""

    service_index: float | None
    factors: Mapping[str, float | None]
    criteria: Mapping[str, float | None]
    overall: float | None


def figures(report: ScoreReport) -> Figures:
    return Figures(report.service_index, {f.factor: f.index for f in report.factors},
                   {c.item_id: c.index for c in report.criteria},
                   report.overall.index if report.overall else None)


def weighted_mean(parts: Sequence[tuple[float, float | None]]) -> float | None:
    """Σ wᵢ·xᵢ / Σ wᵢ over the parts with a value and a positive weight."""
    kept = [(w, x) for w, x in parts if x is not None and w > 0]
    total = sum(w for w, _ in kept)
    return sum(w * x for w, x in kept) / total if total else None


def combine(parts: Sequence[tuple[float, Figures]]) -> Figures:
    """The eligible-population-weighted mean of several units' figures."""
    factor_keys = sorted({k for _, f in parts for k in f.factors})
    criterion_keys = sorted({k for _, f in parts for k in f.criteria})
    return Figures(
        weighted_mean([(w, f.service_index) for w, f in parts]),
        {k: weighted_mean([(w, f.factors.get(k)) for w, f in parts]) for k in factor_keys},
        {k: weighted_mean([(w, f.criteria.get(k)) for w, f in parts]) for k in criterion_keys},
        weighted_mean([(w, f.overall) for w, f in parts]),
    )


def rollup_tree(root: int, children: Mapping[int, Sequence[int]], own: Mapping[int, Figures],
                own_eligible: Mapping[int, int]) -> dict[int, tuple[Figures, int]]:
    """Every node's rolled-up figures and eligible population, from the leaves up:
    a node combines its own campaigns' figures (weight: their N) with its children's."""
    result: dict[int, tuple[Figures, int]] = {}
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children.get(node, ()))
    for node in reversed(order):
        parts: list[tuple[float, Figures]] = []
        eligible = 0
        if node in own:
            parts.append((own_eligible.get(node, 0), own[node]))
            eligible += own_eligible.get(node, 0)
        for child in children.get(node, ()):
            child_figures, child_eligible = result[child]
            parts.append((child_eligible, child_figures))
            eligible += child_eligible
        result[node] = (combine(parts), eligible)
    return result


def rank(values: Sequence[tuple[str, float | None]]) -> dict[str, int]:
    """Competition ranks (1, 2, 2, 4), highest value first; keys without a value get none."""
    ordered = sorted((v for _k, v in values if v is not None), reverse=True)
    return {k: 1 + ordered.index(v) for k, v in values if v is not None}


@dataclass(frozen=True)
class Change:
    key: str                  # "service", a factor id, or an item id
    kind: str                 # service | factor | criterion | overall
    previous: float | None
    previous_n: int
    current: float | None
    current_n: int
    difference: float | None  # percentage points
    z: float | None
    p: float | None

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < SIGNIFICANCE


def _p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, float | None]:
    """z and two-sided p of the difference x2/n2 − x1/n1 (pooled standard error)."""
    if not n1 or not n2:
        return None, None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = x2 / n2 - x1 / n1
    if se == 0:
        return 0.0, 1.0
    z = diff / se
    return z, _p(z)


def from_intervals(previous: tuple[float | None, float | None, float | None],
                   current: tuple[float | None, float | None, float | None]) -> tuple[float | None, float | None]:
    """z and two-sided p of a change between two indices given as (index, low, high)."""
    (i1, l1, h1), (i2, l2, h2) = previous, current
    if None in (i1, l1, h1, i2, l2, h2):
        return None, None
    assert i1 is not None and i2 is not None and l1 is not None and h1 is not None
    assert l2 is not None and h2 is not None
    se = math.hypot((h1 - l1) / (2 * Z95), (h2 - l2) / (2 * Z95))
    if se == 0:
        return (0.0, 1.0) if i1 == i2 else (None, None)
    z = (i2 - i1) / se
    return z, _p(z)


def _criterion(kind: str, before: CriterionScore, now: CriterionScore) -> Change:
    z, p = two_proportions(before.n_satisfied, before.n, now.n_satisfied, now.n)
    diff = now.index - before.index if now.index is not None and before.index is not None else None
    return Change(now.item_id, kind, before.index, before.n, now.index, now.n, diff, z, p)


def changes(current: ScoreReport, previous: ScoreReport) -> tuple[Change, ...]:
    """Service index, factors, criteria and the overall item against the previous period."""
    found = []
    z, p = from_intervals((previous.service_index, previous.service_ci_low, previous.service_ci_high),
                          (current.service_index, current.service_ci_low, current.service_ci_high))
    diff = (current.service_index - previous.service_index
            if current.service_index is not None and previous.service_index is not None else None)
    found.append(Change("service", "service", previous.service_index, previous.n_respondents,
                        current.service_index, current.n_respondents, diff, z, p))
    before_factors = {f.factor: f for f in previous.factors}
    for factor in current.factors:
        old = before_factors.get(factor.factor)
        if old is None:
            continue
        z, p = from_intervals((old.index, old.ci_low, old.ci_high), (factor.index, factor.ci_low, factor.ci_high))
        diff = factor.index - old.index if factor.index is not None and old.index is not None else None
        found.append(Change(factor.factor, "factor", old.index, old.respondents, factor.index, factor.respondents,
                            diff, z, p))
    before_criteria = {c.item_id: c for c in previous.criteria}
    for criterion in current.criteria:
        if criterion.item_id in before_criteria:
            found.append(_criterion("criterion", before_criteria[criterion.item_id], criterion))
    if current.overall is not None and previous.overall is not None:
        found.append(_criterion("overall", previous.overall, current.overall))
    return tuple(found)
