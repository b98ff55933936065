"""QR posters at the counter and the anonymous, self-selected answers behind them (seed 001).

A poster belongs to an agency (or one of its counters) and leads to ``<public host>/q/<code>``.
Whoever scans it first names the field (lĩnh vực) or procedure they came for, which
starts a :class:`QrResponse`; then the poster's questionnaire is asked one item at a time
on the web channel (``core.flow``). Answers live in ``QrResponse.answers`` only: a QR
response is never a contact, an attempt or an interview, so it can never enter a
campaign's scores, AAPOR rates or exports, and the scores and exports here read
``QrResponse`` rows only. They are self-selected (nobody was sampled), and every export
says so.

Statuses: ``in_progress`` until the last applicable item is answered (``complete``). A
response idle for more than :data:`IDLE_LIMIT` has been left: :func:`sweep` settles it as
partial or break-off by ``flow.disposition`` on channel "web", and scoring applies the same
rule to rows the sweep has not reached yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import flow
from ..core.cells import safe_frame
from ..core.flow import AnswerStatus, Event, Response
from ..core.messages import new_code, normal_code
from ..core.questionnaire import Item, Questionnaire, QuestionnaireError, QuestionnaireRegistry
from ..core.scoring import Aggregation, Respondent, ScoreReport, score
from ..persistence.files import private_dir, private_file
from ..persistence.models import Campaign, Contact, InterviewStatus, QrPoster, QrResponse, Transaction
from .campaigns import MAX_ID, get_agency
from .errors import Conflict, NotFound, invalid

DEFAULT_QUESTIONNAIRE = "sipas-qr-2024"
CHANNEL = "web"
IDLE_LIMIT = timedelta(hours=1)
MAX_TEXT = 200
MAX_FIELDS = 200                 # options offered on the first screen
COUNTED = (InterviewStatus.COMPLETE.value, InterviewStatus.PARTIAL.value)
SELF_SELECTED = {"vi": "Ý kiến tự chọn, không phải mẫu xác suất",
                 "en": "Self-selected responses, not a probability sample"}


# --- posters -----------------------------------------------------------------------------

def public_host(value: str) -> str:
    """An absolute http(s) origin, without a trailing slash."""
    url = urlsplit(value.strip())
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise invalid("public_host", f"expected an absolute http(s) URL such as "
                                     f"'https://khaosat.example.gov.vn', got {value!r}")
    return value.strip().rstrip("/")


def poster_url(poster: QrPoster) -> str:
    return f"{poster.public_host}/q/{poster.code}"


def _text(name: str, value: str | None, required: bool) -> str | None:
    text = " ".join((value or "").split())
    if not text:
        if required:
            raise invalid(name, "required")
        return None
    if len(text) > MAX_TEXT:
        raise invalid(name, f"at most {MAX_TEXT} characters, got {len(text)}")
    return text


def _web_questionnaire(registry: QuestionnaireRegistry, key: str) -> Questionnaire:
    try:
        q = registry.get(key)
    except QuestionnaireError as exc:
        raise invalid("questionnaire", str(exc)) from None
    if not any(CHANNEL in item.channels and item.is_rated for item in q.items):
        raise invalid("questionnaire", f"{key!r} has no rated items on the web channel")
    return q


def create_poster(session: Session, registry: QuestionnaireRegistry, agency_id: int, label: str,
                  host: str, now: datetime, questionnaire: str = DEFAULT_QUESTIONNAIRE) -> QrPoster:
    """A new active poster with a fresh carrier-safe code."""
    get_agency(session, agency_id)
    text = _text("label", label, required=True)
    assert text is not None
    _web_questionnaire(registry, questionnaire)
    origin = public_host(host)
    for _ in range(5):
        code = new_code()
        if session.scalar(select(QrPoster.id).where(QrPoster.code == code)) is None:
            break
    else:  # 25**9 codes: five collisions in a row mean something else is wrong
        raise Conflict("could not find an unused poster code; try again")
    poster = QrPoster(code=code, agency_id=agency_id, label=text, questionnaire_key=questionnaire,
                      public_host=origin, active=True, created_at=now)
    session.add(poster)
    session.flush()
    return poster


def get_poster(session: Session, poster_id: int) -> QrPoster:
    poster = session.get(QrPoster, poster_id) if 1 <= poster_id <= MAX_ID else None
    if poster is None:
        raise NotFound(f"qr_poster {poster_id} not found")
    return poster


def poster_by_code(session: Session, code: str) -> QrPoster:
    """The poster behind a scanned or typed code (case-insensitive)."""
    normal = normal_code(code)
    poster = session.scalar(select(QrPoster).where(QrPoster.code == normal)) if normal else None
    if poster is None:
        raise NotFound("no poster has this code", field="code")
    return poster


def list_posters(session: Session, agency_id: int | None = None, within: set[int] | None = None) -> list[QrPoster]:
    """The posters of one agency, or of every agency in ``within`` (None: all)."""
    query = select(QrPoster).order_by(QrPoster.id)
    if agency_id is not None:
        query = query.where(QrPoster.agency_id == agency_id)
    if within is not None:
        query = query.where(QrPoster.agency_id.in_(within))
    return list(session.scalars(query))


def deactivate(session: Session, poster_id: int) -> QrPoster:
    """Stop the poster taking new forms; forms already started may still be finished."""
    poster = get_poster(session, poster_id)
    poster.active = False
    return poster


def known_fields(session: Session, agency_id: int) -> list[str]:
    """The fields the agency's transactions and contacts name, for the first screen."""
    found = set(session.scalars(select(Transaction.field).distinct().where(
        Transaction.agency_id == agency_id, Transaction.field.is_not(None))))
    found |= set(session.scalars(select(Contact.field).distinct().join(Campaign).where(
        Campaign.agency_id == agency_id, Contact.field.is_not(None))))
    return sorted(f for f in found if f and f.strip())[:MAX_FIELDS]


# --- one anonymous form ------------------------------------------------------------------

def responses_of(row: QrResponse) -> dict[str, Response]:
    return {item_id: Response(entry.get("value"), AnswerStatus(entry["status"]))
            for item_id, entry in (row.answers or {}).items()}


def start(session: Session, code: str, now: datetime, field: str | None = None,
          procedure: str | None = None) -> QrResponse:
    """Begin a form at an active poster: the field (one of :func:`known_fields` when the
    agency has any) or the procedure is required."""
    poster = poster_by_code(session, code)
    if not poster.active:
        raise Conflict("this poster is no longer in use", field="code")
    field_text = _text("field", field, required=False)
    procedure_text = _text("procedure", procedure, required=False)
    if field_text is None and procedure_text is None:
        raise invalid("field", "choose the field or write the procedure")
    if field_text is not None:
        fields = known_fields(session, poster.agency_id)
        if fields and field_text not in fields:
            raise invalid("field", "not one of the agency's fields")
    row = QrResponse(poster_id=poster.id, field=field_text, procedure=procedure_text, answers={},
                     status=InterviewStatus.IN_PROGRESS.value, started_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def get_response(session: Session, token: str, lock: bool = False) -> QrResponse:
    row = None
    if 16 <= len(token) <= 32 and token.isalnum():
        row = session.scalar(select(QrResponse).where(QrResponse.token == token)
                             .with_for_update(of=QrResponse) if lock else
                             select(QrResponse).where(QrResponse.token == token))
    if row is None:
        raise NotFound("no form has this address", field="token")
    return row


def questionnaire_of(session: Session, registry: QuestionnaireRegistry, row: QrResponse) -> Questionnaire:
    return registry.get(session.get_one(QrPoster, row.poster_id).questionnaire_key)


def current_item(q: Questionnaire, row: QrResponse) -> Item | None:
    """The item to show next (None: the form is finished)."""
    if row.status != InterviewStatus.IN_PROGRESS.value:
        return None
    return flow.next_item(q, responses_of(row), CHANNEL)


def _left(row: QrResponse, now: datetime) -> bool:
    return row.status == InterviewStatus.IN_PROGRESS.value and now - row.updated_at > IDLE_LIMIT


def _settle_left(q: Questionnaire, row: QrResponse) -> None:
    row.status = flow.disposition(q, responses_of(row), CHANNEL).value
    row.ended_at = row.updated_at


def answer(session: Session, registry: QuestionnaireRegistry, token: str, item_id: str, key: str,
           now: datetime) -> QrResponse:
    """Save one answer (replacing an earlier one to the same item: the back button).

    The item must be the current one or one already answered that still applies; answers
    to items a changed screening answer no longer applies to are dropped, so they are
    never scored. The last applicable item completes the form.
    """
    row = get_response(session, token, lock=True)
    q = questionnaire_of(session, registry, row)
    if _left(row, now):
        _settle_left(q, row)
    if row.status != InterviewStatus.IN_PROGRESS.value:
        raise Conflict("this form is already finished", field="token")
    responses = responses_of(row)
    if not q.has_item(item_id):
        raise invalid("item", f"{item_id!r} is not a question of this form")
    item = q.item(item_id)
    current = flow.next_item(q, responses, CHANNEL)
    answered_before = item_id in responses and flow.is_applicable(item, responses)
    if CHANNEL not in item.channels or not (answered_before or (current is not None and current.id == item_id)):
        raise Conflict(f"item: {item_id!r} is not the question being asked", field="item")
    event, response = flow.interpret(q, item, key)
    if event is not Event.RECORDED or response is None:
        raise invalid("answer", "choose one of the levels shown")
    responses[item_id] = response
    kept = {i: r for i, r in responses.items() if q.has_item(i) and flow.is_applicable(q.item(i), responses)}
    # A new dict, so the JSON column is seen as changed.
    row.answers = {i: {"value": r.value, "status": r.status.value} for i, r in kept.items()}
    row.updated_at = now
    if flow.next_item(q, kept, CHANNEL) is None:
        row.status = flow.disposition(q, kept, CHANNEL).value
        row.ended_at = now
    return row


def sweep(session: Session, registry: QuestionnaireRegistry, now: datetime) -> int:
    """Settle forms left for more than :data:`IDLE_LIMIT`; returns how many."""
    rows = list(session.scalars(select(QrResponse).where(
        QrResponse.status == InterviewStatus.IN_PROGRESS.value,
        QrResponse.updated_at < now - IDLE_LIMIT).with_for_update(skip_locked=True)))
    for row in rows:
        _settle_left(questionnaire_of(session, registry, row), row)
    return len(rows)


# --- scores and exports --------------------------------------------------------------------

@dataclass(frozen=True)
class QrScores:
    """Scores of self-selected QR responses: never comparable to a campaign's indices."""

    report: ScoreReport
    questionnaire: str
    start: datetime
    end: datetime
    statuses: dict[str, int] = field(default_factory=dict)   # forms started in the period, by status
    sample: str = "self-selected"


@dataclass(frozen=True)
class _Row:
    poster: QrPoster
    response: QrResponse
    status: str


def _rows(session: Session, registry: QuestionnaireRegistry, posters: Sequence[QrPoster],
          start: datetime, end: datetime, now: datetime) -> list[_Row]:
    by_id = {p.id: p for p in posters}
    if not by_id:
        return []
    found = session.scalars(select(QrResponse).where(
        QrResponse.poster_id.in_(by_id), QrResponse.started_at >= start, QrResponse.started_at < end,
    ).order_by(QrResponse.id))
    rows = []
    for response in found:
        poster = by_id[response.poster_id]
        status = response.status
        if _left(response, now):
            status = flow.disposition(registry.get(poster.questionnaire_key), responses_of(response),
                                      CHANNEL).value
        rows.append(_Row(poster, response, status))
    return rows


def _posters(session: Session, poster_id: int | None, agency_id: int | None,
             questionnaire: str | None) -> tuple[list[QrPoster], str]:
    if (poster_id is None) == (agency_id is None):
        raise ValueError("give a poster or an agency")
    if poster_id is not None:
        poster = get_poster(session, poster_id)
        return [poster], poster.questionnaire_key
    assert agency_id is not None
    posters = list_posters(session, agency_id)
    keys = sorted({p.questionnaire_key for p in posters})
    if questionnaire is None:
        if len(keys) > 1:
            raise invalid("questionnaire", f"the agency's posters use {keys}; name one")
        questionnaire = keys[0] if keys else DEFAULT_QUESTIONNAIRE
    return [p for p in posters if p.questionnaire_key == questionnaire], questionnaire


def _period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if end <= start:
        raise invalid("to", "the period must end after it starts")


def scores(session: Session, registry: QuestionnaireRegistry, *, start: datetime, end: datetime,
           now: datetime, poster_id: int | None = None, agency_id: int | None = None,
           questionnaire: str | None = None, aggregation: Aggregation = "mean_of_criteria") -> QrScores:
    """Indices over the complete and partial QR forms started in ``[start, end)`` at one
    poster or at every poster of one agency (with one questionnaire)."""
    _period(start, end)
    posters, key = _posters(session, poster_id, agency_id, questionnaire)
    q = registry.get(key)
    rows = _rows(session, registry, posters, start, end, now)
    return QrScores(report=_score(q, rows, aggregation), questionnaire=key, start=start, end=end,
                    statuses=_statuses(rows))


def scores_of(session: Session, registry: QuestionnaireRegistry, posters: Sequence[QrPoster], start: datetime,
              end: datetime, now: datetime) -> QrScores:
    """Indices over the complete and partial forms started in ``[start, end)`` at
    ``posters`` (all with one questionnaire), e.g. every poster of an agency's subtree."""
    _period(start, end)
    keys = {p.questionnaire_key for p in posters}
    if len(keys) != 1:
        raise ValueError(f"posters of one questionnaire expected, got {sorted(keys)}")
    rows = _rows(session, registry, posters, start, end, now)
    return QrScores(report=_score(registry.get(keys.pop()), rows), questionnaire=posters[0].questionnaire_key,
                    start=start, end=end, statuses=_statuses(rows))


def _score(q: Questionnaire, rows: Iterable[_Row], aggregation: Aggregation = "mean_of_criteria") -> ScoreReport:
    return score(q, [Respondent(responses_of(r.response)) for r in rows if r.status in COUNTED], aggregation)


def _statuses(rows: Iterable[_Row]) -> dict[str, int]:
    counts = {status.value: 0 for status in InterviewStatus}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


RESPONSE_COLUMNS = ("response", "poster", "field", "procedure", "started_on", "status")
CRITERIA_COLUMNS = ("item_id", "factor", "text", "n", "n_satisfied", "n_dissatisfied", "n_no_opinion",
                    "n_unanswered", "index", "ci_low", "ci_high", "mean", "dissatisfied_flag")


def export(session: Session, registry: QuestionnaireRegistry, export_dir: str | Path, *, start: datetime,
           end: datetime, now: datetime, poster_id: int | None = None, agency_id: int | None = None,
           questionnaire: str | None = None, lang: str = "vi") -> Path:
    """Write ``qr-self-selected-<poster|agency>-<id>-<time>.xlsx`` (summary, criteria,
    factors, responses) and CSVs of criteria and responses; returns the XLSX path.

    Nothing personal exists to leave out: a response is its counter, the field or procedure
    typed, the day it was started (UTC) and its answers. Every file is named, and the
    summary titled, as self-selected, not a probability sample.
    """
    _period(start, end)
    posters, key = _posters(session, poster_id, agency_id, questionnaire)
    q = registry.get(key)
    rows = _rows(session, registry, posters, start, end, now)
    report = _score(q, rows)
    statuses = _statuses(rows)
    agency = get_agency(session, agency_id if agency_id is not None else posters[0].agency_id)
    summary = pd.DataFrame([
        ("title", f"{SELF_SELECTED['vi']} / {SELF_SELECTED['en']}"), ("sample", "self-selected"),
        ("agency", agency.name), ("posters", "; ".join(p.label for p in posters)),
        ("questionnaire", q.key), ("period_start_utc", start.isoformat()), ("period_end_utc", end.isoformat()),
        ("forms_started", sum(statuses.values())),
        *((f"forms_{status}", count) for status, count in statuses.items()),
        ("aggregation", report.aggregation), ("respondents_scored", report.n_respondents),
        ("service_index", report.service_index),
        ("overall_index", report.overall.index if report.overall else None),
        ("generated_at_utc", now.isoformat()),
    ], columns=["key", "value"])
    scored = list(report.criteria) + ([report.overall] if report.overall else [])
    criteria = pd.DataFrame([{**{k: v for k, v in asdict(c).items() if k in CRITERIA_COLUMNS},
                              "text": q.item(c.item_id).text.get(lang)} for c in scored],
                            columns=list(CRITERIA_COLUMNS))
    factors = pd.DataFrame([{"factor": f.factor, "title": q.factor_title(f.factor).get(lang), "index": f.index,
                             "n_criteria": f.n_criteria, "n": f.n} for f in report.factors],
                           columns=["factor", "title", "index", "n_criteria", "n"])
    items = [item.id for item in q.items if CHANNEL in item.channels]
    responses = pd.DataFrame([
        {"response": number, "poster": row.poster.label, "field": row.response.field,
         "procedure": row.response.procedure, "started_on": row.response.started_at.date().isoformat(),
         "status": row.status,
         **{i: (answers[i].value if i in answers else None) for i in items}}
        for number, row in enumerate(rows, 1) for answers in [responses_of(row.response)]
    ], columns=[*RESPONSE_COLUMNS, *items])
    # Labels, fields and procedures are typed by people: no text may start a formula.
    summary, criteria, factors, responses = map(safe_frame, (summary, criteria, factors, responses))
    directory = private_dir(export_dir)
    scope = f"poster-{poster_id}" if poster_id is not None else f"agency-{agency_id}"
    stem = f"qr-self-selected-{scope}-{now:%Y%m%dT%H%M%SZ}"
    xlsx = private_file(directory / f"{stem}.xlsx")
    for suffix in ("criteria", "responses"):
        private_file(directory / f"{stem}-{suffix}.csv")
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        summary.to_excel(writer, sheet_name="summary", index=False)
        criteria.to_excel(writer, sheet_name="criteria", index=False)
        factors.to_excel(writer, sheet_name="factors", index=False)
        responses.to_excel(writer, sheet_name="responses", index=False)
    criteria.to_csv(directory / f"{stem}-criteria.csv", index=False, encoding="utf-8-sig")
    responses.to_csv(directory / f"{stem}-responses.csv", index=False, encoding="utf-8-sig")
    return xlsx
