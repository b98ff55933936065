"""Sample sizes and stratified random sampling (REFERENCE §3).

Strata are fields (lĩnh vực). Allocation is proportional with at least one draw from
every non-empty stratum (seed 000, stage 3); the draw is reproducible from its seed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

RULES = ("seed002", "seed003", "slovin", "cochran", "fixed", "census")
Z95 = 1.959963984540054
MAX_SAMPLE_SIZE = 10_000_000   # far beyond any frame; keeps n a sane integer


class SampleRuleError(ValueError):
    """A sample rule that cannot be used; ``part`` is the field at fault: kind, n or margin."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class SampleRule:
    """How many to draw from a frame of N people.

    seed002: tiers by yearly transactions (≥500 → 150, 200–499 → 100, <200 → 30);
    seed003: share of transactions (<100 → 50 %, 100–499 → 30 %, 500–999 → 20 %, ≥1000 → 10 %);
    slovin: N / (1 + N·e²); cochran: z²·p(1−p)/e² with the finite-population correction;
    fixed: n; census: everyone. Every rule takes everyone when the frame is smaller.
    """

    kind: str = "seed002"
    n: int | None = None      # for kind="fixed"
    margin: float = 0.05      # e, for slovin and cochran

    def __post_init__(self) -> None:
        # Rules arrive from JSON (an agency's rule) and the command line: floats, booleans,
        # infinities and 30-digit numbers included.
        if self.kind not in RULES:
            raise SampleRuleError("kind", f"sample rule: expected one of {', '.join(RULES)}, got {self.kind!r}")
        n = self.n
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)
                              or not 1 <= n <= MAX_SAMPLE_SIZE):
            raise SampleRuleError("n", f"sample rule {self.kind!r} needs a positive n of at most "
                                       f"{MAX_SAMPLE_SIZE:,}, got {n!r}")
        if self.kind == "fixed" and n is None:
            raise SampleRuleError("kind", "sample rule 'fixed' needs a positive n")
        margin = self.margin
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not 0 < margin < 0.5:
            raise SampleRuleError("margin", f"sample rule: margin must be between 0 and 0.5, got {margin!r}")


def sample_size(population: int, rule: SampleRule) -> int:
    """How many to draw from a frame of ``population`` people."""
    if population <= 0:
        return 0
    if rule.kind == "census":
        return population
    if rule.kind == "fixed":
        wanted = rule.n or 0
    elif rule.kind == "seed003":
        share = 0.5 if population < 100 else 0.3 if population < 500 else 0.2 if population < 1000 else 0.1
        wanted = math.ceil(round(population * share, 9))
    elif rule.kind == "slovin":
        wanted = math.ceil(round(population / (1 + population * rule.margin**2), 9))
    elif rule.kind == "cochran":
        n0 = Z95**2 * 0.25 / rule.margin**2
        wanted = math.ceil(round(n0 / (1 + (n0 - 1) / population), 9))
    elif population >= 500:   # seed 002: ≥500 transactions → at least 150
        wanted = 150
    elif population >= 200:   # 200–499 → 100
        wanted = 100
    else:                     # <200 → 30, and everyone when fewer than 30
        wanted = 30
    return min(wanted, population)


def allocate(sizes: Mapping[str, int], n: int, minimum_one: bool = True) -> dict[str, int]:
    """Proportional allocation (largest remainder); with ``minimum_one`` every non-empty
    stratum gets at least one draw, taken from the strata with the largest allocations."""
    strata = {k: v for k, v in sizes.items() if v > 0}
    total = sum(strata.values())
    if n >= total:
        return dict(strata)
    if minimum_one and n < len(strata):
        raise ValueError(f"sample of {n} cannot cover {len(strata)} non-empty fields; draw at least {len(strata)}")
    quotas = {k: n * v / total for k, v in strata.items()}
    alloc = {k: math.floor(q) for k, q in quotas.items()}
    # Ties broken by stratum name so the allocation is deterministic.
    for k in sorted(strata, key=lambda k: (-(quotas[k] - alloc[k]), k))[: n - sum(alloc.values())]:
        alloc[k] += 1
    if minimum_one:
        for k in sorted(k for k in strata if alloc[k] == 0):
            donor = max((d for d in strata if alloc[d] > 1), key=lambda d: (alloc[d] - quotas[d], alloc[d], d))
            alloc[donor] -= 1
            alloc[k] = 1
    return alloc


def draw(frame: pd.DataFrame, stratum_column: str, n: int, seed: int | np.random.Generator,
         reserve: int = 0, replicates: int = 1) -> pd.DataFrame:
    """Stratified random sample of ``n`` rows plus an optional reserve pool.

    Adds ``stratum_weight`` = N_h / n_h (main sample) and ``replicate``: 0 for the main
    sample, 1..``replicates`` for reserve rows, released in waves when response falls short.
    The same frame, n and seed always give the same rows.
    """
    if frame.empty or n <= 0:
        return frame.iloc[0:0].assign(stratum_weight=pd.Series(dtype=float), replicate=pd.Series(dtype=int))
    if replicates < 1:
        raise ValueError("replicates must be at least 1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    strata = frame[stratum_column].fillna("").astype(str)
    # positions per stratum, one pass; the keys are the stratum strings (typed Hashable by pandas)
    members = {str(k): v for k, v in strata.groupby(strata, sort=True).indices.items()}
    sizes = {k: len(v) for k, v in members.items()}
    alloc = allocate(sizes, n)
    spare = {k: sizes[k] - alloc.get(k, 0) for k in sizes}
    extra = allocate(spare, min(reserve, sum(spare.values())), minimum_one=False) if reserve > 0 else {}
    positions, weights, waves = [], [], []
    for stratum in sorted(members):
        main, more = alloc.get(stratum, 0), extra.get(stratum, 0)
        if not main and not more:
            continue
        order = rng.permutation(members[stratum])[: main + more]
        positions.append(order)
        weights.append(np.full(len(order), sizes[stratum] / main if main else np.nan))
        waves.append(np.concatenate([np.zeros(main, dtype=int), 1 + np.arange(more) % replicates]))
    chosen = np.concatenate(positions)
    result = frame.iloc[chosen].copy()
    result["stratum_weight"] = np.concatenate(weights)
    result["replicate"] = np.concatenate(waves)
    return result.sort_values(["replicate"], kind="stable")
