"""The report a CCHC officer files: every figure of one agency node (its whole subtree) or
one campaign, for one reporting period (month, quarter or half-year, seed 003), gathered
here as plain data; ``services.report_workbook`` lays it out as a Vietnamese workbook.

What counts (the same rules as the campaign scores, ``services.results``):

* the complete and partial interviews that **ended in the period** (local dates in the
  report's time zone), the latest answer per item; consent is not scored;
* scores by ``core.scoring``: criterion index = share satisfied of valid answers, factor
  index = mean of its criteria, service index = mean of the factors; 95 % intervals;
* **rollup along the agency tree** (``core.report``): a node's index is the mean of its own
  campaigns' index and its child units' indices, weighted by eligible population
  (frame N after exclusions, or the transactions a post-transaction programme received);
* the previous period of the same kind is compared item by item (``core.report.compare``);
* self-selected QR answers are read separately and never enter an index.

No phone number or name is read: units, fields, procedures and officers are counted.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ..core import report as rules
from ..core.access import ancestors
from ..core.dispositions import response_rates
from ..core.flow import AnswerStatus
from ..core.programmes import Period, parse_period, previous_period
from ..core.questionnaire import Questionnaire, QuestionnaireRegistry
from ..core.scoring import NO_OPINION, SMALL_CELL, UNANSWERED, VALID, CriterionScore, ScoreReport, Table, score_table
from ..persistence.models import (
    Agency,
    Answer,
    Campaign,
    Contact,
    Interview,
    InterviewStatus,
    Stratum,
    Transaction,
)
from . import qr, report_workbook
from .access import agency_parents
from .campaigns import get_agency, get_campaign
from .errors import invalid
from .results import ScoreFilter

COUNTED = (InterviewStatus.COMPLETE, InterviewStatus.PARTIAL)
STATES = {AnswerStatus.ANSWERED.value: VALID, AnswerStatus.NO_OPINION.value: NO_OPINION,
          AnswerStatus.UNANSWERED.value: UNANSWERED}
DIMENSIONS = ("field", "procedure", "unit", "officer")   # breakdowns, where the frame names them
SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
DEFAULT_TARGET = 80.0   # percent satisfied; Resolution 30c/NQ-CP's "above 80 %" (a setting)


@dataclass(frozen=True)
class Counted:
    """The counted interviews of a report in columns: their answers (a scoring table) and,
    row by row, each interview's campaign, agency and channel, and the field, procedure,
    handling unit and officer it is broken down by (no phone, no name)."""

    table: Table
    campaign_ids: np.ndarray
    agency_ids: np.ndarray
    channels: tuple[str, ...]
    values: Mapping[str, list[str | None]]    # dimension -> one value per row

    @property
    def size(self) -> int:
        return self.table.size

    def of_agencies(self, agencies: Iterable[int]) -> np.ndarray:
        """The rows whose campaign belongs to one of ``agencies``."""
        return np.flatnonzero(np.isin(self.agency_ids, list(agencies)))


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    agency: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    sample_seed: int | None
    eligible: int                 # the campaign's eligible population (its weight in rollups)
    drawn: int
    contacts: int
    respondents: int              # counted interviews in the report's period
    rule: str = ""                # the sample-size rule: seed002, slovin e=0.05, fixed n=150, programme…


@dataclass(frozen=True)
class StratumRow:
    campaign_id: int
    agency: str
    field: str
    eligible: int
    drawn: int
    weight: float | None


@dataclass(frozen=True)
class UnitRow:
    """One unit directly below the report's node (its whole subtree), or the node's own
    campaigns; ``figures`` are the rollup of that unit."""

    agency_id: int
    code: str
    name: str
    own: bool                     # the node's own campaigns, not a child unit
    eligible: int
    respondents: int
    figures: rules.Figures
    flagged: tuple[CriterionScore, ...]   # above the dissatisfied share (the unit's answers pooled)
    suppressed: bool              # fewer respondents than the minimum: not ranked
    rank: int | None


@dataclass(frozen=True)
class GroupRow:
    value: str
    respondents: int
    scores: ScoreReport
    suppressed: bool


@dataclass(frozen=True)
class NeedRow:
    item_id: str
    n: int
    counts: Mapping[int, int]     # scale value -> answers
    mean: float | None
    top_share: float | None       # percent answering the highest level
    rank: int | None


@dataclass(frozen=True)
class QrBlock:
    questionnaire: str
    q: Questionnaire
    scores: ScoreReport
    statuses: Mapping[str, int]


@dataclass(frozen=True)
class Report:
    scope: str                                  # agency | campaign
    agency_id: int
    agency_code: str
    agency_name: str
    agency_path: tuple[str, ...]                # names from the root down to the node
    campaign: CampaignRow | None                # for a campaign report
    kind: str | None                            # month | quarter | half (None: the whole campaign)
    period: Period | None
    previous: Period | None
    timezone: str
    questionnaire: Questionnaire
    generated_at: datetime
    campaigns: tuple[CampaignRow, ...]
    other_questionnaires: tuple[str, ...]       # campaigns in scope reported separately
    strata: tuple[StratumRow, ...]
    contacts: int
    dispositions: Mapping[str, int]
    rates: Mapping[str, float | None]
    channels: tuple[str, ...]
    first_interview: datetime | None
    last_interview: datetime | None
    scores: ScoreReport                         # pooled over every counted interview
    rollup: rules.Figures                       # weighted by eligible population along the tree
    units: tuple[UnitRow, ...]
    breakdowns: Mapping[str, tuple[GroupRow, ...]]
    needs: tuple[NeedRow, ...]
    previous_scores: ScoreReport | None
    changes: tuple[rules.Change, ...]
    qr: tuple[QrBlock, ...]
    min_n: int = SMALL_CELL
    target: float = DEFAULT_TARGET
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def flagged(self) -> tuple[str, ...]:
        """Criteria (and the overall item) whose dissatisfied share is above 25 %."""
        scored = list(self.scores.criteria) + ([self.scores.overall] if self.scores.overall else [])
        return tuple(c.item_id for c in scored if c.dissatisfied_flag)


def bounds(period: Period | None, zone: str) -> tuple[datetime | None, datetime | None]:
    """A period's local dates as UTC instants: [first midnight, midnight after the last day)."""
    if period is None:
        return None, None
    return ScoreFilter(ended_from=period.start, ended_to=period.end).bounds(zone)


def children_of(parents: Mapping[int, int | None]) -> dict[int, list[int]]:
    """Each agency's units directly below it."""
    children: dict[int, list[int]] = defaultdict(list)
    for agency, parent in parents.items():
        if parent is not None:
            children[parent].append(agency)
    return children


def subtree_of(children: Mapping[int, Sequence[int]], root: int) -> list[int]:
    """``root`` and every agency below it."""
    found, stack = [], [root]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def counted(session: Session, q: Questionnaire, campaign_ids: Sequence[int], start: datetime | None,
            end: datetime | None) -> Counted:
    """The counted interviews of ``campaign_ids`` that ended in [start, end), with the
    latest answer per item (answers read in the order they were stored)."""
    items = [item for item in q.items if item.kind != "consent"]
    interviews = (select(Interview.id, Interview.campaign_id, Campaign.agency_id, Interview.channel, Contact.field,
                         Contact.procedure, Stratum.agency, Transaction.officer, Contact.stratum_weight)
                  .join(Contact, Contact.id == Interview.contact_id)
                  .join(Campaign, Campaign.id == Interview.campaign_id)
                  .outerjoin(Stratum, Stratum.id == Contact.stratum_id)
                  .outerjoin(Transaction, Transaction.contact_id == Contact.id)
                  .where(Interview.campaign_id.in_(campaign_ids), Interview.status.in_(COUNTED))
                  .order_by(Interview.id))
    connection = session.connection()   # Core rows: no ORM work per answer
    row_of: dict[int, int] = {}
    campaign_list, agency_list, channels, weights = [], [], [], []
    values: dict[str, list[str | None]] = {dim: [] for dim in DIMENSIONS}
    for (interview_id, campaign_id, agency_id, channel, field_, procedure, unit, officer,
         weight) in connection.execute(_ended_in(interviews, start, end)) if campaign_ids else ():
        if interview_id in row_of:
            continue   # a contact reported twice by a one-stop-shop: one interview all the same
        row_of[interview_id] = len(row_of)
        campaign_list.append(campaign_id)
        agency_list.append(agency_id)
        channels.append(channel)
        weights.append(weight)
        for dim, value in zip(DIMENSIONS, (field_, procedure, unit, officer), strict=True):
            values[dim].append(value or None)
    size = len(row_of)
    column_of = {item.id: k for k, item in enumerate(items)}
    rows: list[int] = []
    columns: list[int] = []
    states: list[int] = []
    answered: list[int] = []
    if size:
        answers = (select(Answer.interview_id, Answer.item_id, Answer.value, Answer.status)
                   .join(Interview, Interview.id == Answer.interview_id)
                   .where(Interview.campaign_id.in_(campaign_ids), Interview.status.in_(COUNTED))
                   .order_by(Answer.id))
        for interview_id, item_id, value, status in connection.execute(_ended_in(answers, start, end)):
            column = column_of.get(item_id)
            if column is None:
                continue
            state = STATES[status]
            if state == VALID and value is None:
                state = UNANSWERED
            rows.append(row_of[interview_id])
            columns.append(column)
            states.append(state)
            answered.append(value or 0)
    row_array, column_array = np.array(rows, dtype=np.int64), np.array(columns, dtype=np.int64)
    # The latest answer per (interview, item): the last of each key, in stored order.
    keys = row_array * len(items) + column_array
    _, last_from_end = np.unique(keys[::-1], return_index=True)
    latest = len(keys) - 1 - last_from_end
    state_array, value_array = np.array(states, dtype=np.int8)[latest], np.array(answered, dtype=np.int64)[latest]
    row_array, column_array = row_array[latest], column_array[latest]
    table_states, table_values = {}, {}
    for k, item in enumerate(items):
        at = column_array == k
        state_column = np.zeros(size, dtype=np.int8)
        value_column = np.zeros(size, dtype=np.int64)
        state_column[row_array[at]] = state_array[at]
        value_column[row_array[at]] = value_array[at]
        table_states[item.id], table_values[item.id] = state_column, value_column
    table = Table(table_states, table_values, np.array(weights, dtype=np.float64))
    return Counted(table, np.array(campaign_list, dtype=np.int64), np.array(agency_list, dtype=np.int64),
                   tuple(channels), values)


def _eligible(session: Session, campaign: Campaign) -> tuple[int, int]:
    """A campaign's eligible population and its drawn sample: the strata's N and n; for a
    post-transaction programme, the transactions it received in its period and the
    contacts made."""
    eligible, drawn = session.execute(select(func.coalesce(func.sum(Stratum.eligible), 0),
                                             func.coalesce(func.sum(Stratum.drawn), 0))
                                      .where(Stratum.campaign_id == campaign.id)).one()
    contacts = session.scalar(select(func.count()).select_from(Contact)
                              .where(Contact.campaign_id == campaign.id)) or 0
    if eligible:
        return int(eligible), int(drawn)
    if campaign.programme_id is not None:
        received = session.scalar(select(func.count()).select_from(Transaction)
                                  .where(Transaction.programme_id == campaign.programme_id,
                                         *_returned_in(campaign))) or 0
        return max(int(received), contacts), contacts
    return contacts, contacts


def _returned_in(campaign: Campaign) -> list[ColumnElement[bool]]:
    if campaign.period_start is None or campaign.period_end is None:
        return []
    start, end = bounds(Period(campaign.period_start, campaign.period_end, ""), campaign.timezone)
    return [Transaction.returned_at >= start, Transaction.returned_at < end]


def _campaign_row(session: Session, campaign: Campaign, respondents: int) -> CampaignRow:
    eligible, drawn = _eligible(session, campaign)
    contacts = session.scalar(select(func.count()).select_from(Contact)
                              .where(Contact.campaign_id == campaign.id)) or 0
    return CampaignRow(campaign.id, campaign.name, campaign.agency.name, campaign.status.value, campaign.started_at,
                       campaign.completed_at, campaign.sample_seed, eligible, drawn, contacts, respondents,
                       rule_text(campaign))


def rule_text(campaign: Campaign) -> str:
    """The sample-size rule a campaign's frame was drawn with, as its agency configures it
    (seed-002 tiers when none); a post-transaction programme invites by seed-003 shares."""
    if campaign.programme_id is not None:
        return "programme (seed003 shares)"
    rule = campaign.agency.sample_rule or {}
    kind = str(rule.get("kind", "seed002"))
    if kind in ("slovin", "cochran"):
        return f"{kind} e={rule.get('margin', 0.05)}"
    if kind == "fixed":
        return f"fixed n={rule.get('n')}"
    return kind


def _questionnaire_of(session: Session, registry: QuestionnaireRegistry, campaigns: Sequence[Campaign],
                      start: datetime | None, end: datetime | None, key: str | None) -> str:
    """The questionnaire a report covers: ``key``, or the one most interviews in the period
    answered (then the most campaigns), so one report never mixes two questionnaires."""
    if key is not None:
        registry.get(key)
        return key
    if not campaigns:
        return "sipas-2024"
    query = (select(Campaign.questionnaire_key, func.count(Interview.id))
             .join(Interview, Interview.campaign_id == Campaign.id, isouter=True)
             .where(Campaign.id.in_([c.id for c in campaigns]))
             .group_by(Campaign.questionnaire_key))
    if start is not None:
        query = query.where((Interview.ended_at >= start) | Interview.id.is_(None))
    if end is not None:
        query = query.where((Interview.ended_at < end) | Interview.id.is_(None))
    counts = dict(session.execute(query).all())
    by_campaigns = Counter(c.questionnaire_key for c in campaigns)
    return max(by_campaigns, key=lambda k: (counts.get(k, 0), by_campaigns[k], k))


def _needs(q: Questionnaire, table: Table) -> tuple[NeedRow, ...]:
    rows = []
    for item in (i for i in q.items if i.kind == "needs"):
        valid = table.states[item.id] == VALID
        found = table.values[item.id][valid]
        counts = {int(v): int(c) for v, c in zip(*np.unique(found, return_counts=True), strict=True)}
        n = int(valid.sum())
        top = max(item.scale.values, default=None)
        rows.append((item.id, n, counts, float(found.sum()) / n if n else None,
                     100 * counts.get(top, 0) / n if n and top is not None else None))
    ranks = rules.rank([(row[0], row[3]) for row in rows])
    return tuple(NeedRow(item_id, n, counts, mean, top_share, ranks.get(item_id))
                 for item_id, n, counts, mean, top_share in rows)


def _qr(session: Session, registry: QuestionnaireRegistry, agencies: Iterable[int], start: datetime | None,
        end: datetime | None, now: datetime) -> tuple[QrBlock, ...]:
    posters = qr.list_posters(session, within=set(agencies))
    if not posters or start is None or end is None:
        return ()
    blocks = []
    for key in sorted({p.questionnaire_key for p in posters}):
        found = qr.scores_of(session, registry, [p for p in posters if p.questionnaire_key == key], start, end, now)
        if sum(found.statuses.values()):
            blocks.append(QrBlock(key, registry.get(key), found.report, found.statuses))
    return tuple(blocks)


def build(session: Session, registry: QuestionnaireRegistry, now: datetime, *, agency_id: int | None = None,
          campaign_id: int | None = None, period: Period | None = None, kind: str | None = None,
          previous: Period | None = None, timezone: str = "Asia/Ho_Chi_Minh", questionnaire: str | None = None,
          min_n: int = SMALL_CELL, target: float = DEFAULT_TARGET) -> Report:
    """Gather a report of one agency node (with everything below it) or one campaign.

    ``period`` (with its ``kind`` and the ``previous`` period to compare with) limits it to
    interviews that ended in those local dates; a campaign report without a period covers
    the whole campaign. An agency report needs a period."""
    if (agency_id is None) == (campaign_id is None):
        raise invalid("scope", "give an agency or a campaign")
    if agency_id is not None and period is None:
        raise invalid("period", "an agency report covers a period (e.g. 2026-11, 2026-Q4, 2026-H2)")
    if min_n < 1:
        raise invalid("min_n", f"expected 1 or more, got {min_n}")
    parents = agency_parents(session)
    only: Campaign | None = None
    if campaign_id is not None:
        only = get_campaign(session, campaign_id)
        node = only.agency
        timezone = only.timezone
        children: dict[int, list[int]] = {}   # a campaign's report has no units
        tree = [node.id]
    else:
        assert agency_id is not None
        node = get_agency(session, agency_id)
        children = children_of(parents)
        tree = subtree_of(children, node.id)
    start, end = bounds(period, timezone)
    if only is not None:
        candidates = [only]
    else:
        candidates = list(session.scalars(select(Campaign).where(Campaign.agency_id.in_(tree))
                                          .order_by(Campaign.id)))
        answered = set(session.scalars(_ended_in(select(Interview.campaign_id).distinct().where(
            Interview.campaign_id.in_([c.id for c in candidates]), Interview.status.in_(COUNTED)), start, end)))
        candidates = [c for c in candidates if c.id in answered]
    key = _questionnaire_of(session, registry, candidates, start, end, questionnaire)
    q = registry.get(key)
    chosen = [c for c in candidates if c.questionnaire_key == key]
    others = tuple(sorted({c.questionnaire_key for c in candidates} - {key}))
    everyone = counted(session, q, [c.id for c in chosen], start, end)
    per_campaign = Counter(everyone.campaign_ids.tolist())
    rows = {c.id: _campaign_row(session, c, per_campaign.get(c.id, 0)) for c in chosen}
    agencies = session.execute(select(Agency.id, Agency.name, Agency.code)).all()
    names = {a: name for a, name, _code in agencies}
    codes = {a: code for a, _name, code in agencies}

    pooled = score_table(q, everyone.table)
    # Rollup: each agency's own campaigns are one component weighted by their eligible N.
    own_eligible: Counter[int] = Counter()
    for campaign in chosen:
        own_eligible[campaign.agency_id] += rows[campaign.id].eligible
    own_scores = {agency: score_table(q, everyone.table, everyone.of_agencies([agency]))
                  for agency in sorted(set(everyone.agency_ids.tolist()))}
    rollups = rules.rollup_tree(node.id, children, {a: rules.figures(s) for a, s in own_scores.items()},
                                dict(own_eligible))

    units = _units(q, node.id, children, everyone, own_eligible, own_scores, rollups, names, codes, min_n)
    breakdowns = {dim: _breakdown(q, everyone, dim, min_n) for dim in DIMENSIONS}
    previous_scores = None
    changes: tuple[rules.Change, ...] = ()
    if previous is not None:
        p_start, p_end = bounds(previous, timezone)
        before = counted(session, q, [c.id for c in _in_scope(session, tree, only, key)], p_start, p_end)
        previous_scores = score_table(q, before.table)
        changes = rules.changes(pooled, previous_scores)
    strata = tuple(StratumRow(s.campaign_id, s.agency, s.field, s.eligible, s.drawn, s.weight)
                   for s in session.scalars(select(Stratum).where(Stratum.campaign_id.in_(list(rows)))
                                            .order_by(Stratum.campaign_id, Stratum.agency, Stratum.field)))
    codes_final = [d for d in session.scalars(select(Contact.disposition).where(
        Contact.campaign_id.in_(list(rows)), Contact.disposition.is_not(None))) if d is not None]
    rates = response_rates(codes_final).values if codes_final else {}
    ends = [i for i in session.execute(_ended_in(select(func.min(Interview.ended_at), func.max(Interview.ended_at))
                                                 .where(Interview.campaign_id.in_(list(rows)),
                                                        Interview.status.in_(COUNTED)), start, end)).one()]
    path = tuple(names[a] for a in reversed(ancestors(node.id, parents)))
    return Report(
        scope="campaign" if only is not None else "agency", agency_id=node.id, agency_code=node.code,
        agency_name=node.name, agency_path=path,
        campaign=rows.get(only.id) if only is not None else None,
        kind=kind if period is not None else None, period=period, previous=previous if period else None,
        timezone=timezone, questionnaire=q, generated_at=now,
        campaigns=tuple(rows[c.id] for c in chosen), other_questionnaires=others, strata=strata,
        contacts=sum(r.contacts for r in rows.values()), dispositions=dict(Counter(codes_final)),
        rates=dict(rates), channels=tuple(sorted(set(everyone.channels))),
        first_interview=ends[0], last_interview=ends[1], scores=pooled, rollup=rollups[node.id][0],
        units=units, breakdowns=breakdowns, needs=_needs(q, everyone.table),
        previous_scores=previous_scores, changes=changes,
        qr=_qr(session, registry, tree, start, end, now) if only is None else (),
        min_n=min_n, target=target,
    )


def _ended_in(query, start: datetime | None, end: datetime | None):  # type: ignore[no-untyped-def]
    if start is not None:
        query = query.where(Interview.ended_at >= start)
    if end is not None:
        query = query.where(Interview.ended_at < end)
    return query


def _in_scope(session: Session, tree: Sequence[int], only: Campaign | None, key: str) -> list[Campaign]:
    if only is not None:
        return [only]
    return list(session.scalars(select(Campaign).where(Campaign.agency_id.in_(tree),
                                                       Campaign.questionnaire_key == key)))


def _units(q: Questionnaire, root: int, children: Mapping[int, list[int]], everyone: Counted,
           own_eligible: Mapping[int, int], own_scores: Mapping[int, ScoreReport],
           rollups: Mapping[int, tuple[rules.Figures, int]], names: Mapping[int, str], codes: Mapping[int, str],
           min_n: int) -> tuple[UnitRow, ...]:
    """The units one level below the node (each with its subtree), and the node's own
    campaigns when it has some, ranked by their rolled-up service index."""
    entries = []
    if root in own_scores:
        report = own_scores[root]
        entries.append((root, True, own_eligible.get(root, 0), report.n_respondents, rules.figures(report),
                        _flagged(report)))
    for child in sorted(children.get(root, ()), key=lambda a: names[a]):
        figures, eligible = rollups[child]
        members = everyone.of_agencies(subtree_of(children, child))
        if not len(members):
            continue
        entries.append((child, False, eligible, len(members), figures,
                        _flagged(score_table(q, everyone.table, members))))
    ranks = rules.rank([(f"{agency}:{own}", None if n < min_n else figures.service_index)
                        for agency, own, _e, n, figures, _f in entries])
    return tuple(UnitRow(agency, codes[agency], names[agency], own, eligible, n, figures, flagged, n < min_n,
                         ranks.get(f"{agency}:{own}"))
                 for agency, own, eligible, n, figures, flagged in entries)



def _flagged(report: ScoreReport) -> tuple[CriterionScore, ...]:
    scored = list(report.criteria) + ([report.overall] if report.overall else [])
    return tuple(c for c in scored if c.dissatisfied_flag)


def _breakdown(q: Questionnaire, everyone: Counted, dim: str, min_n: int) -> tuple[GroupRow, ...]:
    """Scores per value of one dimension (field, procedure, unit, officer); empty when the
    frame does not name it. Groups below ``min_n`` respondents are kept but suppressed."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row, value in enumerate(everyone.values[dim]):
        if value:
            groups[value].append(row)
    return tuple(GroupRow(value, len(members), score_table(q, everyone.table, np.array(members, dtype=np.int64)),
                          len(members) < min_n)
                 for value, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def period_of_label(label: str) -> tuple[str, Period, Period]:
    """The kind, the period and the previous period of a label (2026-11, 2026-Q4, 2026-H2);
    a clear error naming the field otherwise."""
    try:
        kind, period = parse_period(label)
    except ValueError as exc:
        raise invalid("period", str(exc).removeprefix("period: ")) from exc
    return kind, period, previous_period(kind, period)


def file_name(report: Report, lang: str = "vi") -> str:
    """``sipas-report-<agency code>-<period>[-en].xlsx``, or ``…-campaign-<id>…`` for a campaign."""
    scope = f"campaign-{report.campaign.id}" if report.campaign else SAFE_NAME.sub("_", report.agency_code)
    period = f"-{report.period.label}" if report.period else ""
    return f"sipas-report-{scope}{period}{'-en' if lang == 'en' else ''}.xlsx"


def generate(session: Session, registry: QuestionnaireRegistry, now: datetime, directory: str | Path, *,
             agency_id: int | None = None, campaign_id: int | None = None, period: str | None = None,
             lang: str = "vi", timezone: str = "Asia/Ho_Chi_Minh", questionnaire: str | None = None,
             min_n: int = SMALL_CELL, target: float = DEFAULT_TARGET) -> Path:
    """Build and write one report into ``directory``; returns the workbook's path."""
    if lang not in report_workbook.LANGS:
        raise invalid("lang", f"expected one of {', '.join(report_workbook.LANGS)}, got {lang[:10]!r}")
    kind = current = previous = None
    if period:
        kind, current, previous = period_of_label(period)
    report = build(session, registry, now, agency_id=agency_id, campaign_id=campaign_id, period=current, kind=kind,
                   previous=previous, timezone=timezone, questionnaire=questionnaire, min_n=min_n, target=target)
    return report_workbook.write(report, Path(directory) / file_name(report, lang), lang)
