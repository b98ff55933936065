"""SIPAS scores from recorded responses (REFERENCE §4).

Criterion index = share of valid answers that are "satisfied", in percent; "no opinion"
and unanswered items are left out of the denominator and counted separately. Factor
index = mean of its criterion indices; service-delivery index = mean of the factor
indices. The aggregation is a parameter because the 1001/QĐ-BNV annex could not be
checked: ``pooled`` instead divides all satisfied answers by all valid answers.
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


def wilson_interval(successes: int, n: int) -> tuple[float, float] | tuple[None, None]:
    if n == 0:
        return None, None
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    # At 0 % and 100 % the bound is exactly the estimate; rounding would otherwise put it
    # just outside (e.g. 100 % with an upper bound of 99.99999999999997 %).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return 100 * low, 100 * high


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_item(item: Item, respondents: Sequence[Respondent]) -> CriterionScore:
    values: list[int] = []
    weights: list[float] = []
    no_opinion = unanswered = 0
    for respondent in respondents:
        response = respondent.responses.get(item.id)
        if response is None:
            continue
        if response.status is AnswerStatus.NO_OPINION:
            no_opinion += 1
        elif response.status is AnswerStatus.UNANSWERED or response.value is None:
            unanswered += 1
        else:
            values.append(response.value)
            weights.append(respondent.weight)
    n = len(values)
    satisfied = sum(1 for v in values if v in item.scale.satisfied)
    dissatisfied = sum(1 for v in values if v in item.scale.dissatisfied)
    low, high = wilson_interval(satisfied, n)
    total_weight = sum(weights)
    weighted = (100 * sum(w for v, w in zip(values, weights, strict=True) if v in item.scale.satisfied) / total_weight
                if total_weight else None)
    return CriterionScore(
        item_id=item.id, factor=item.factor, n=n, n_satisfied=satisfied,
        n_dissatisfied=dissatisfied, n_no_opinion=no_opinion, n_unanswered=unanswered,
        index=100 * satisfied / n if n else None, ci_low=low, ci_high=high,
        mean=sum(values) / n if n else None, weighted_index=weighted,
        dissatisfied_flag=bool(n) and dissatisfied / n > DISSATISFIED_FLAG_SHARE,
    )


def score(q: Questionnaire, respondents: Iterable[Respondent],
          aggregation: Aggregation = "mean_of_criteria") -> ScoreReport:
    if aggregation not in ("mean_of_criteria", "pooled"):
        raise ValueError(f"unknown aggregation {aggregation!r}; use mean_of_criteria or pooled")
    people = list(respondents)
    criteria = tuple(score_item(item, people) for item in q.criteria)
    factors = []
    for factor in q.factors:
        scores = [c for c in criteria if c.factor == factor and c.n]
        n = sum(c.n for c in scores)
        if aggregation == "pooled":
            index = 100 * sum(c.n_satisfied for c in scores) / n if n else None
        else:
            index = _mean([c.index for c in scores if c.index is not None])
        factors.append(FactorScore(
            factor=factor, index=index,
            weighted_index=_mean([c.weighted_index for c in scores if c.weighted_index is not None]),
            n_criteria=len(scores), n=n,
        ))
    overall_items = [item for item in q.items if item.kind == "overall"]
    return ScoreReport(
        questionnaire=q.key, aggregation=aggregation, n_respondents=len(people),
        criteria=criteria, factors=tuple(factors),
        service_index=_mean([f.index for f in factors if f.index is not None]),
        weighted_service_index=_mean([f.weighted_index for f in factors if f.weighted_index is not None]),
        overall=score_item(overall_items[0], people) if overall_items else None,
    )
