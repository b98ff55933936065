"""Sample sizes and stratified random sampling (REFERENCE §3).

Strata are fields (lĩnh vực). Allocation is proportional with at least one draw from
every non-empty stratum (seed 000, stage 3); the draw is reproducible from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

RULES = ("seed002", "fixed", "census")


@dataclass(frozen=True)
class SampleRule:
    kind: str = "seed002"     # seed002 tiers | fixed n | census
    n: int | None = None      # for kind="fixed"

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"sample rule: expected one of {RULES}, got {self.kind!r}")
        if self.kind == "fixed" and (self.n is None or self.n < 1):
            raise ValueError("sample rule 'fixed' needs a positive n")


def sample_size(population: int, rule: SampleRule) -> int:
    """How many to draw from a frame of ``population`` people."""
    if population <= 0:
        return 0
    if rule.kind == "census":
        return population
    if rule.kind == "fixed":
        wanted = rule.n or 0
    elif population >= 500:   # seed 002: ≥500 transactions → at least 150
        wanted = 150
    elif population >= 200:   # 200–499 → 100
        wanted = 100
    else:                     # <200 → 30, and everyone when fewer than 30
        wanted = 30
    return min(wanted, population)


def allocate(sizes: Mapping[str, int], n: int) -> dict[str, int]:
    """Proportional allocation, largest remainder, at least one per non-empty stratum."""
    strata = {k: v for k, v in sizes.items() if v > 0}
    total = sum(strata.values())
    if n >= total:
        return dict(strata)
    if n < len(strata):
        raise ValueError(f"sample of {n} cannot cover {len(strata)} non-empty fields; draw at least {len(strata)}")
    alloc = {k: 1 for k in strata}
    remaining = n - len(strata)
    spare = {k: v - 1 for k, v in strata.items()}
    spare_total = sum(spare.values())
    if remaining and spare_total:
        quotas = {k: remaining * v / spare_total for k, v in spare.items()}
        for k, q in quotas.items():
            alloc[k] += min(spare[k], math.floor(q))
        left = n - sum(alloc.values())
        # Ties broken by stratum name so the allocation is deterministic.
        order = sorted(strata, key=lambda k: (-(quotas[k] - math.floor(quotas[k])), k))
        for k in order:
            if left == 0:
                break
            if alloc[k] < strata[k]:
                alloc[k] += 1
                left -= 1
    return alloc


def draw(frame: pd.DataFrame, stratum_column: str, n: int, seed: int) -> pd.DataFrame:
    """Draw ``n`` rows, stratified by ``stratum_column``; adds ``stratum_weight`` = N_h / n_h."""
    if frame.empty or n <= 0:
        return frame.iloc[0:0].assign(stratum_weight=pd.Series(dtype=float))
    strata = frame[stratum_column].fillna("").astype(str)
    sizes = strata.value_counts().to_dict()
    alloc = allocate(sizes, n)
    rng = np.random.default_rng(seed)
    picked = []
    for stratum in sorted(alloc):
        members = frame.index[strata == stratum].to_numpy()
        chosen = rng.choice(members, size=alloc[stratum], replace=False)
        part = frame.loc[np.sort(chosen)].copy()
        part["stratum_weight"] = sizes[stratum] / alloc[stratum]
        picked.append(part)
    return pd.concat(picked)
