"""Scores from stored answers, and exports (XLSX and CSV) without personal data."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..core.cells import safe_frame
from ..core.flow import AnswerStatus, Response
from ..core.questionnaire import Questionnaire, QuestionnaireRegistry
from ..core.scoring import Aggregation, Respondent, ScoreReport, score
from ..persistence.files import private_dir, private_file
from ..persistence.models import Answer, Contact, Interview, InterviewStatus
from . import audit
from .audit import Actor
from .call_costs import DEFAULT_COSTING, CallCosts, Costing, campaign_costs
from .campaigns import get_campaign
from .errors import NotFound

COUNTED = (InterviewStatus.COMPLETE, InterviewStatus.PARTIAL)
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class ScoreFilter:
    """Which interviews a score counts: those of one field (lĩnh vực) of the sample, and
    those that ended between two dates (inclusive, in the campaign's time zone). An
    interview without an end (a partial one left open) counts only when no date is given."""

    field: str | None = None
    ended_from: date | None = None
    ended_to: date | None = None

    def bounds(self, zone: str) -> tuple[datetime | None, datetime | None]:
        """The period as UTC instants: from the first day's local midnight to the midnight
        after the last day (exclusive)."""
        tz = ZoneInfo(zone)
        start = (datetime.combine(self.ended_from, time(), tz).astimezone(UTC)
                 if self.ended_from is not None else None)
        end = (datetime.combine(self.ended_to + timedelta(days=1), time(), tz).astimezone(UTC)
               if self.ended_to is not None else None)
        return start, end

    def apply(self, query: Q, zone: str) -> Q:
        if self.field is not None:
            query = query.where(Contact.field == self.field)
        start, end = self.bounds(zone)
        if start is not None:
            query = query.where(Interview.ended_at >= start)
        if end is not None:
            query = query.where(Interview.ended_at < end)
        return query


EVERYONE = ScoreFilter()


@dataclass(frozen=True)
class Person:
    """A scored respondent as exported: pseudonym, field, the channel answered on (voice,
    web) and the answers."""

    pseudonym: str
    field: str | None
    channel: str
    respondent: Respondent


def respondents(session: Session, q: Questionnaire, campaign_id: int, filters: ScoreFilter = EVERYONE,
                zone: str = "UTC") -> list[Person]:
    """Every complete or partial interview of a campaign (those ``filters`` keep; ``zone``:
    the campaign's time zone, which its dates are in).

    Per item the latest answer counts (a resumed call may re-ask an item left unanswered).
    """
    query = (select(Contact.respondent_id, Contact.field, Contact.stratum_weight, Interview.id, Interview.channel,
                    Answer.item_id, Answer.value, Answer.status, Answer.digits)
             .join(Interview, Interview.contact_id == Contact.id)
             .join(Answer, Answer.interview_id == Interview.id)
             .where(Interview.campaign_id == campaign_id, Interview.status.in_(COUNTED))
             .order_by(Interview.id, Answer.id))
    rows = session.execute(filters.apply(query, zone)).all()
    people: dict[int, tuple[tuple[str, str | None, str, float], dict[str, Response]]] = {}
    for pseudonym, field, weight, interview_id, channel, item_id, value, status, digits in rows:
        if not q.has_item(item_id) or q.item(item_id).kind == "consent":
            continue
        entry = people.setdefault(interview_id, ((pseudonym, field, channel, weight), {}))
        entry[1][item_id] = Response(value, AnswerStatus(status), digits)
    return [Person(pseudonym, field, channel, Respondent(responses, weight))
            for (pseudonym, field, channel, weight), responses in people.values()]


def campaign_scores(session: Session, registry: QuestionnaireRegistry, campaign_id: int,
                    aggregation: Aggregation = "mean_of_criteria", filters: ScoreFilter = EVERYONE) -> ScoreReport:
    campaign = get_campaign(session, campaign_id)
    q = registry.get(campaign.questionnaire_key)
    people = respondents(session, q, campaign_id, filters, campaign.timezone)
    return score(q, [p.respondent for p in people], aggregation)


def sample_fields(session: Session, campaign_id: int) -> list[str]:
    """The fields (lĩnh vực) of a campaign's sample, to filter its scores by."""
    return sorted(session.scalars(select(Contact.field).where(Contact.campaign_id == campaign_id,
                                                              Contact.field.is_not(None)).distinct()))


def _criteria_table(q: Questionnaire, report: ScoreReport, lang: str) -> pd.DataFrame:
    rows = []
    scores = list(report.criteria) + ([report.overall] if report.overall else [])
    for c in scores:
        row = asdict(c)
        row["text"] = q.item(c.item_id).text.get(lang)
        rows.append(row)
    columns = ["item_id", "factor", "text", "n", "n_satisfied", "n_dissatisfied", "n_no_opinion",
               "n_unanswered", "index", "ci_low", "ci_high", "mean", "weighted_index", "dissatisfied_flag"]
    return pd.DataFrame(rows, columns=columns)


def _call_rows(calls: CallCosts, costing: Costing) -> list[tuple[str, object]]:
    """The summary's call figures: observed length and cost, and the estimate's."""
    expected = calls.expected
    return [
        ("calls_connected", calls.calls), ("calls_billed_minutes", calls.billed_minutes),
        ("calls_mean_seconds", calls.mean_call_seconds), ("calls_completed_questionnaire", calls.complete_calls),
        ("calls_mean_complete_seconds", calls.mean_complete_seconds), ("completes", calls.completes),
        ("calls_cost_vnd", calls.cost), ("cost_per_complete_vnd", calls.cost_per_complete),
        ("calls_unpriced", calls.unpriced_calls),
        ("expected_call_longest_seconds", expected.longest_seconds),
        ("expected_call_shortest_seconds", expected.shortest_seconds),
        ("expected_cost_per_complete_longest_vnd", expected.longest_cost),
        ("expected_cost_per_complete_shortest_vnd", expected.shortest_cost),
        ("estimate_speaking_rate_characters_per_second", costing.pace.speaking_rate),
        ("estimate_answer_seconds", costing.pace.answer_seconds),
    ]


def write_export(session: Session, registry: QuestionnaireRegistry, campaign_id: int, export_dir: str | Path,
                 now: datetime, record: bool = True, *, costing: Costing = DEFAULT_COSTING,
                 actor: Actor | None = None) -> Path:
    """Write ``campaign-<id>-<date>.xlsx`` plus CSVs of scores and responses; returns the XLSX path.
    ``record`` stores the path as the campaign's final export (not for interim weekly ones).
    The summary sheet holds the call figures too (services.call_costs, priced by ``costing``).
    With ``actor`` the export is written to the audit log in the same transaction.

    Respondents appear only by pseudonym; phone numbers and names are never exported.
    """
    path = export_with_scores(session, registry, campaign_id, export_dir, now, record, costing=costing)[0]
    if actor is not None:
        audit.record(session, actor, "export_written", now, target=f"campaign:{campaign_id}",
                     agency_id=get_campaign(session, campaign_id).agency_id, file=path.name)
    return path


# What a campaign export may be called (write_export's files): the campaign's id first,
# then letters, digits, dots, dashes; never a slash or a parent directory.
_EXPORT_NAME = re.compile(r"campaign-([0-9]{1,12})-[0-9A-Za-z][0-9A-Za-z._-]{0,150}\.(xlsx|csv)")


def export_file(export_dir: str | Path, campaign_id: int, name: str) -> Path:
    """The export file ``name`` of campaign ``campaign_id`` in ``export_dir``, for a
    download. The name is checked strictly (no slash, no ``..``, the campaign's own prefix)
    and must be a file directly in the export directory; anything else is NotFound, so a
    caller learns nothing of other files or of the server's paths."""
    found = _EXPORT_NAME.fullmatch(name)
    if found is None or ".." in name or int(found.group(1)) != campaign_id:
        raise NotFound(f"export {name!r} of campaign {campaign_id}: no such file")
    directory = Path(export_dir).resolve()
    path = directory / name
    if path.resolve().parent != directory or path.is_symlink() or not path.is_file():
        raise NotFound(f"export {name!r} of campaign {campaign_id}: no such file")
    return path


def export_with_scores(session: Session, registry: QuestionnaireRegistry, campaign_id: int,
                       export_dir: str | Path, now: datetime, record: bool = True, *,
                       costing: Costing = DEFAULT_COSTING) -> tuple[Path, ScoreReport]:
    """:func:`write_export`, also returning the scores it wrote."""
    campaign = get_campaign(session, campaign_id)
    calls = campaign_costs(session, registry, campaign_id, costing)
    q = registry.get(campaign.questionnaire_key)
    people = respondents(session, q, campaign_id)
    report = score(q, [p.respondent for p in people])
    lang = campaign.language
    criteria = _criteria_table(q, report, lang)
    factors = pd.DataFrame([
        {**asdict(f), "title": q.factor_title(f.factor).get(lang)} for f in report.factors
    ], columns=["factor", "title", "index", "weighted_index", "n_criteria", "n"])
    summary = pd.DataFrame([
        ("campaign_id", campaign.id), ("campaign", campaign.name), ("agency", campaign.agency.name),
        ("questionnaire", q.key), ("aggregation", report.aggregation),
        ("respondents", report.n_respondents), ("service_index", report.service_index),
        ("weighted_service_index", report.weighted_service_index),
        ("overall_satisfaction_index", report.overall.index if report.overall else None),
        ("sample_seed", campaign.sample_seed), ("generated_at_utc", now.isoformat()),
        *_call_rows(calls, costing),
    ], columns=["key", "value"])
    rated = [item.id for item in q.items if item.kind != "consent"]
    responses = pd.DataFrame(
        [{"respondent": p.pseudonym, "field": p.field, "channel": p.channel, "weight": p.respondent.weight,
          **{item: (p.respondent.responses[item].value if item in p.respondent.responses else None)
             for item in rated}}
         for p in people],
        columns=["respondent", "field", "channel", "weight", *rated],
    )
    # Names and fields are whatever agencies typed: no text may start a formula.
    summary, criteria, factors, responses = map(safe_frame, (summary, criteria, factors, responses))
    directory = private_dir(export_dir)
    stem = f"campaign-{campaign.id}-{now:%Y%m%dT%H%M%SZ}"
    xlsx = private_file(directory / f"{stem}.xlsx")
    for suffix in ("criteria", "factors", "responses"):
        private_file(directory / f"{stem}-{suffix}.csv")
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        summary.to_excel(writer, sheet_name="summary", index=False)
        criteria.to_excel(writer, sheet_name="criteria", index=False)
        factors.to_excel(writer, sheet_name="factors", index=False)
        responses.to_excel(writer, sheet_name="responses", index=False)
    criteria.to_csv(directory / f"{stem}-criteria.csv", index=False, encoding="utf-8-sig")
    factors.to_csv(directory / f"{stem}-factors.csv", index=False, encoding="utf-8-sig")
    responses.to_csv(directory / f"{stem}-responses.csv", index=False, encoding="utf-8-sig")
    if record:
        campaign.export_path = str(xlsx)
    return xlsx, report
