"""SIPAS scores from recorded responses (REFERENCE §4).

Criterion index = share of valid answers that are "satisfied", in percent; "no opinion"
and unanswered items are left out of the denominator and counted separately. Factor
index = mean of its criterion indices; service-delivery index = mean of the factor
indices. The aggregation is a parameter because the 1001/QĐ-BNV annex could not be
checked: ``pooled`` instead divides all satisfied answers by all valid answers.

Intervals are 95 %. A criterion's is Wilson's. A factor's and the service index's combine
criteria that the same people answered, so their answers are not independent: the
variance of the index is estimated with each respondent as a cluster (linearisation: the
sum of the squares of each respondent's influence on the index), turned into an effective
sample size n_eff = p(1 − p) / variance, and the Wilson interval taken at n_eff. With one
criterion answered by everyone this is Wilson's interval at n − 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .flow import AnswerStatus, Response
from .questionnaire import Item, Questionnaire

Aggregation = Literal["mean_of_criteria", "pooled"]
DISSATISFIED_FLAG_SHARE = 0.25  # seed 003: flag a unit above 25 % dissatisfied
SMALL_CELL = 30  # fewer valid answers than this: an index too unstable to compare, shown as such
Z95 = 1.959963984540054


@dataclass(frozen=True)
class CriterionScore:
    item_id: str
    factor: str | None
    n: int                      # valid answers (on the scale)
    n_satisfied: int
    n_dissatisfied: int
    n_no_opinion: int
    n_unanswered: int
    index: float | None         # percent satisfied among valid answers
    ci_low: float | None        # 95 % Wilson interval of the index, percent
    ci_high: float | None
    mean: float | None          # mean scale value among valid answers
    weighted_index: float | None
    dissatisfied_flag: bool     # dissatisfied share above 25 %


@dataclass(frozen=True)
class FactorScore:
    factor: str
    index: float | None
    weighted_index: float | None
    n_criteria: int             # criteria with at least one valid answer
    n: int                      # valid answers over the factor's criteria
    ci_low: float | None = None     # 95 % interval of the index, percent (respondents as clusters)
    ci_high: float | None = None
    respondents: int = 0        # respondents with a valid answer to one of its criteria


@dataclass(frozen=True)
class ScoreReport:
    questionnaire: str
    aggregation: str
    n_respondents: int
    criteria: tuple[CriterionScore, ...]
    factors: tuple[FactorScore, ...]
    service_index: float | None
    weighted_service_index: float | None
    overall: CriterionScore | None
    service_ci_low: float | None = None   # 95 % interval of the service index, percent
    service_ci_high: float | None = None

    def criterion(self, item_id: str) -> CriterionScore:
        for score in self.criteria:
            if score.item_id == item_id:
                return score
        raise KeyError(item_id)

    def factor(self, factor: str) -> FactorScore:
        for score in self.factors:
            if score.factor == factor:
                return score
        raise KeyError(factor)


@dataclass(frozen=True)
class Respondent:
    responses: Mapping[str, Response]
    weight: float = 1.0         # stratum weight N_h / n_h


def small_cell(n: int) -> bool:
    """Too few valid answers (below :data:`SMALL_CELL`) to read an index on its own."""
    return n < SMALL_CELL


def wilson_interval(successes: int, n: int) -> tuple[float, float] | tuple[None, None]:
    if n == 0:
        return None, None
    return _wilson(successes / n, n)


def _wilson(p: float, n: float) -> tuple[float, float]:
    """Wilson's 95 % interval, in percent, of a share ``p`` observed on ``n`` (possibly an
    effective, fractional, sample size)."""
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    # At 0 % and 100 % the bound is exactly the estimate; rounding would otherwise put it
    # just outside (e.g. 100 % with an upper bound of 99.99999999999997 %).
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return 100 * low, 100 * high


def clustered_interval(index: float | None, influence: Mapping[int, float]) -> tuple[float | None, float | None]:
    """The 95 % interval of an index (percent) combining several criteria, from each
    respondent's influence on it (percentage points; one entry per respondent who counts).

    The variance is n/(n − 1) · Σ influence² (respondents as clusters); the interval is
    Wilson's at the effective sample size p(1 − p) / variance, or at n when the answers do
    not vary (every one satisfied, or none)."""
    return _clustered_from(index, len(influence), sum((u / 100) ** 2 for u in influence.values()))


def _clustered_from(index: float | None, n: int, squares: float) -> tuple[float | None, float | None]:
    """:func:`clustered_interval` from n and Σ (influence / 100)²."""
    if index is None or n == 0:
        return None, None
    p = min(1.0, max(0.0, index / 100))
    variance = n / (n - 1) * squares if n > 1 else 0.0
    effective = p * (1 - p) / variance if variance > 0 and 0 < p < 1 else float(n)
    return _wilson(p, max(effective, 1.0))


# What a respondent did with an item, in a column of a :class:`Table`.
MISSING, VALID, NO_OPINION, UNANSWERED = 0, 1, 2, 3


@dataclass(frozen=True)
class Table:
    """Respondents as columns, scored many times over (a report scores every unit, field
    and officer): per item the state of each respondent's answer (:data:`VALID`,
    :data:`NO_OPINION`, :data:`UNANSWERED` or :data:`MISSING`) and its value, and each
    respondent's stratum weight. Row ``i`` of every array is the same respondent."""

    states: Mapping[str, np.ndarray]     # int8 per item
    values: Mapping[str, np.ndarray]     # int64 per item (meaningful where VALID)
    weights: np.ndarray                  # float64

    @property
    def size(self) -> int:
        return len(self.weights)

    @classmethod
    def of(cls, items: Iterable[Item], respondents: Sequence[Respondent]) -> Table:
        states: dict[str, np.ndarray] = {}
        values: dict[str, np.ndarray] = {}
        for item in items:
            state = np.zeros(len(respondents), dtype=np.int8)
            value = np.zeros(len(respondents), dtype=np.int64)
            for row, respondent in enumerate(respondents):
                response = respondent.responses.get(item.id)
                if response is None:
                    continue
                if response.status is AnswerStatus.NO_OPINION:
                    state[row] = NO_OPINION
                elif response.status is AnswerStatus.UNANSWERED or response.value is None:
                    state[row] = UNANSWERED
                else:
                    state[row], value[row] = VALID, response.value
            states[item.id], values[item.id] = state, value
        return cls(states, values, np.array([r.weight for r in respondents], dtype=np.float64))


@dataclass(frozen=True)
class _Column:
    """One item over the scored rows: which answers are valid, and which are satisfied."""

    valid: np.ndarray
    satisfied: np.ndarray


def _column(item: Item, table: Table, rows: np.ndarray | None) -> tuple[CriterionScore, _Column]:
    state, value, weight = table.states[item.id], table.values[item.id], table.weights
    if rows is not None:
        state, value, weight = state[rows], value[rows], weight[rows]
    valid = state == VALID
    satisfied = valid & np.isin(value, list(item.scale.satisfied))
    n, n_satisfied = int(valid.sum()), int(satisfied.sum())
    n_dissatisfied = int((valid & np.isin(value, list(item.scale.dissatisfied))).sum())
    low, high = wilson_interval(n_satisfied, n)
    total_weight = float(weight[valid].sum())
    weighted = 100 * float(weight[satisfied].sum()) / total_weight if total_weight else None
    return CriterionScore(
        item_id=item.id, factor=item.factor, n=n, n_satisfied=n_satisfied, n_dissatisfied=n_dissatisfied,
        n_no_opinion=int((state == NO_OPINION).sum()), n_unanswered=int((state == UNANSWERED).sum()),
        index=100 * n_satisfied / n if n else None, ci_low=low, ci_high=high,
        mean=float(value[valid].sum()) / n if n else None, weighted_index=weighted,
        dissatisfied_flag=bool(n) and n_dissatisfied / n > DISSATISFIED_FLAG_SHARE,
    ), _Column(valid, satisfied)


def _influence(members: Sequence[tuple[_Column, CriterionScore]], index: float | None, aggregation: Aggregation,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each respondent's influence on a factor's index, and whether they count (a valid
    answer to one of its criteria): the mean over criteria of (satisfied − index_j) / n_j,
    or for ``pooled`` the sum of (satisfied − index) over their answers divided by all the
    factor's valid answers."""
    influence = np.zeros(size, dtype=np.float64)
    counts = np.zeros(size, dtype=bool)
    if index is None:
        return influence, counts
    total = sum(c.n for _, c in members)
    for column, criterion in members:
        if criterion.index is None:
            continue
        centre, scale = ((index, total) if aggregation == "pooled"
                         else (criterion.index, criterion.n * len(members)))
        valid = column.valid
        influence[valid] += (100.0 * column.satisfied[valid] - centre) / scale
        counts |= valid
    return influence, counts


def _clustered(index: float | None, influence: np.ndarray, counts: np.ndarray) -> tuple[float | None, float | None]:
    kept = influence[counts] / 100
    return _clustered_from(index, len(kept), float(np.dot(kept, kept)))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_item(item: Item, respondents: Sequence[Respondent]) -> CriterionScore:
    return _column(item, Table.of([item], respondents), None)[0]


def score(q: Questionnaire, respondents: Iterable[Respondent],
          aggregation: Aggregation = "mean_of_criteria") -> ScoreReport:
    people = list(respondents)
    scored = [*q.criteria, *(item for item in q.items if item.kind == "overall")]
    return score_table(q, Table.of(scored, people), aggregation=aggregation)


def score_table(q: Questionnaire, table: Table, rows: np.ndarray | None = None,
                aggregation: Aggregation = "mean_of_criteria") -> ScoreReport:
    """Score the respondents of ``table`` (those at ``rows``, an index array, when given)."""
    if aggregation not in ("mean_of_criteria", "pooled"):
        raise ValueError(f"unknown aggregation {aggregation!r}; use mean_of_criteria or pooled")
    size = table.size if rows is None else len(rows)
    scored = [_column(item, table, rows) for item in q.criteria]
    criteria = tuple(c for c, _ in scored)
    factors = []
    influences: list[tuple[np.ndarray, np.ndarray]] = []   # of the factors with an index
    for factor in q.factors:
        members = [(column, c) for c, column in scored if c.factor == factor and c.n]
        scores = [c for _, c in members]
        n = sum(c.n for c in scores)
        if aggregation == "pooled":
            index = 100 * sum(c.n_satisfied for c in scores) / n if n else None
        else:
            index = _mean([c.index for c in scores if c.index is not None])
        influence, counts = _influence(members, index, aggregation, size)
        if index is not None:
            influences.append((influence, counts))
        low, high = _clustered(index, influence, counts)
        factors.append(FactorScore(
            factor=factor, index=index,
            weighted_index=_mean([c.weighted_index for c in scores if c.weighted_index is not None]),
            n_criteria=len(scores), n=n, ci_low=low, ci_high=high, respondents=int(counts.sum()),
        ))
    service_index = _mean([f.index for f in factors if f.index is not None])
    # The service index is the mean of the factor indices: each respondent's influence on
    # it is the mean of their influences on those factors.
    service_influence = np.zeros(size, dtype=np.float64)
    service_counts = np.zeros(size, dtype=bool)
    for influence, counts in influences:
        service_influence += influence / len(influences)
        service_counts |= counts
    service_low, service_high = _clustered(service_index, service_influence, service_counts)
    overall_items = [item for item in q.items if item.kind == "overall"]
    return ScoreReport(
        questionnaire=q.key, aggregation=aggregation, n_respondents=size,
        criteria=criteria, factors=tuple(factors),
        service_index=service_index,
        weighted_service_index=_mean([f.weighted_index for f in factors if f.weighted_index is not None]),
        overall=_column(overall_items[0], table, rows)[0] if overall_items else None,
        service_ci_low=service_low, service_ci_high=service_high,
    )
