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
    n = len(influence)
    if index is None or n == 0:
        return None, None
    p = min(1.0, max(0.0, index / 100))
    variance = n / (n - 1) * sum((u / 100) ** 2 for u in influence.values()) if n > 1 else 0.0
    effective = p * (1 - p) / variance if variance > 0 and 0 < p < 1 else float(n)
    return _wilson(p, max(effective, 1.0))


@dataclass(frozen=True)
class _Valid:
    """One item's answers in one pass: each valid answer as (respondent position, value,
    weight, satisfied), and the no-opinion and unanswered counts."""

    answers: list[tuple[int, int, float, bool]]
    no_opinion: int
    unanswered: int


def _valid(item: Item, respondents: Sequence[Respondent]) -> _Valid:
    answers: list[tuple[int, int, float, bool]] = []
    no_opinion = unanswered = 0
    satisfied = item.scale.satisfied
    key = item.id
    for position, respondent in enumerate(respondents):
        response = respondent.responses.get(key)
        if response is None:
            continue
        status = response.status
        if status is AnswerStatus.NO_OPINION:
            no_opinion += 1
        elif status is AnswerStatus.UNANSWERED or response.value is None:
            unanswered += 1
        else:
            answers.append((position, response.value, respondent.weight, response.value in satisfied))
    return _Valid(answers, no_opinion, unanswered)


def _influence(members: Sequence[tuple[_Valid, CriterionScore]], index: float | None,
               aggregation: Aggregation) -> dict[int, float]:
    """Each respondent's influence on a factor's index (keyed by position in the scored
    people): the mean over criteria of (satisfied − index_j) / n_j, or for ``pooled`` the
    sum of (satisfied − index) over their answers divided by all the factor's valid answers."""
    influence: dict[int, float] = {}
    if index is None:
        return influence
    total = sum(c.n for _, c in members)
    for valid, criterion in members:
        if criterion.index is None:
            continue
        if aggregation == "pooled":
            centre, scale = index, total
        else:
            centre, scale = criterion.index, criterion.n * len(members)
        for position, _value, _weight, satisfied in valid.answers:
            influence[position] = influence.get(position, 0.0) + (100.0 * satisfied - centre) / scale
    return influence


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_item(item: Item, respondents: Sequence[Respondent]) -> CriterionScore:
    return _score_valid(item, _valid(item, respondents))


def _score_valid(item: Item, valid: _Valid) -> CriterionScore:
    answers = valid.answers
    n = len(answers)
    dissatisfied_values = item.scale.dissatisfied
    satisfied = sum(1 for a in answers if a[3])
    dissatisfied = sum(1 for a in answers if a[1] in dissatisfied_values)
    low, high = wilson_interval(satisfied, n)
    total_weight = sum(a[2] for a in answers)
    weighted = 100 * sum(a[2] for a in answers if a[3]) / total_weight if total_weight else None
    return CriterionScore(
        item_id=item.id, factor=item.factor, n=n, n_satisfied=satisfied,
        n_dissatisfied=dissatisfied, n_no_opinion=valid.no_opinion, n_unanswered=valid.unanswered,
        index=100 * satisfied / n if n else None, ci_low=low, ci_high=high,
        mean=sum(a[1] for a in answers) / n if n else None, weighted_index=weighted,
        dissatisfied_flag=bool(n) and dissatisfied / n > DISSATISFIED_FLAG_SHARE,
    )


def score(q: Questionnaire, respondents: Iterable[Respondent],
          aggregation: Aggregation = "mean_of_criteria") -> ScoreReport:
    if aggregation not in ("mean_of_criteria", "pooled"):
        raise ValueError(f"unknown aggregation {aggregation!r}; use mean_of_criteria or pooled")
    people = list(respondents)
    valid = [_valid(item, people) for item in q.criteria]
    criteria = tuple(_score_valid(item, v) for item, v in zip(q.criteria, valid, strict=True))
    factors = []
    influences: list[dict[int, float]] = []   # of the factors with an index
    for factor in q.factors:
        members = [(v, c) for v, c in zip(valid, criteria, strict=True) if c.factor == factor and c.n]
        scores = [c for _, c in members]
        n = sum(c.n for c in scores)
        if aggregation == "pooled":
            index = 100 * sum(c.n_satisfied for c in scores) / n if n else None
        else:
            index = _mean([c.index for c in scores if c.index is not None])
        influence = _influence(members, index, aggregation)
        if index is not None:
            influences.append(influence)
        low, high = clustered_interval(index, influence)
        factors.append(FactorScore(
            factor=factor, index=index,
            weighted_index=_mean([c.weighted_index for c in scores if c.weighted_index is not None]),
            n_criteria=len(scores), n=n, ci_low=low, ci_high=high, respondents=len(influence),
        ))
    service_index = _mean([f.index for f in factors if f.index is not None])
    # The service index is the mean of the factor indices: each respondent's influence on
    # it is the mean of their influences on those factors.
    service_influence: dict[int, float] = {}
    for influence in influences:
        for position, value in influence.items():
            service_influence[position] = service_influence.get(position, 0.0) + value / len(influences)
    service_low, service_high = clustered_interval(service_index, service_influence)
    overall_items = [item for item in q.items if item.kind == "overall"]
    return ScoreReport(
        questionnaire=q.key, aggregation=aggregation, n_respondents=len(people),
        criteria=criteria, factors=tuple(factors),
        service_index=service_index,
        weighted_service_index=_mean([f.weighted_index for f in factors if f.weighted_index is not None]),
        overall=score_item(overall_items[0], people) if overall_items else None,
        service_ci_low=service_low, service_ci_high=service_high,
    )
