"""A province's survey data written straight into the database, for the CCHC report's tests
and its benchmark: an agency tree, finished campaigns with strata, contacts with final
dispositions, interviews that ended in two reporting periods (and some just outside, and
some exactly at the local-midnight boundaries), their answers, officers on transactions,
and self-selected QR responses. Everything is reproducible from ``seed``.

Tree (codes): PROV (own campaign) → SO1 → PH11; PROV → SO2 (few respondents); PROV → XA1.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from ivr_service.core.questionnaire import Questionnaire
from ivr_service.persistence.db import Database
from ivr_service.persistence.models import (
    Agency,
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Interview,
    InterviewStatus,
    QrPoster,
    QrResponse,
    Stratum,
    Transaction,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PERIOD, PREVIOUS = "2026-Q3", "2026-Q2"
# code, name, parent code, respondents this period, share dissatisfied (levels 1-2)
UNITS: tuple[tuple[str, str, str | None, int, float], ...] = (
    ("PROV", "Tỉnh Mẫu", None, 60, 0.10),
    ("SO1", "Sở Tư pháp", "PROV", 70, 0.20),
    ("PH11", "Phòng Hộ tịch", "SO1", 45, 0.35),
    ("SO2", "Sở Xây dựng", "PROV", 12, 0.15),
    ("XA1", "Xã An Bình", "PROV", 80, 0.28),
)
FIELDS = ("Hộ tịch", "Đất đai", "Xây dựng")
PROCEDURES = ("Đăng ký khai sinh", "Cấp giấy chứng nhận", "Cấp phép xây dựng", "Chứng thực")
OFFICERS = ("Cán bộ A", "Cán bộ B")


@dataclass
class Seeded:
    agencies: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    interviews: int = 0
    answers: int = 0


def _local(day: str, hour: float) -> datetime:
    base = datetime.fromisoformat(day).replace(tzinfo=ZONE)
    return (base + timedelta(hours=hour)).astimezone(UTC)


def _value(rng: random.Random, dissatisfied: float) -> tuple[int | None, str, str]:
    """(value, status, digits) of one 5-level answer."""
    roll = rng.random()
    if roll < 0.04:
        return None, "no_opinion", "0"
    if roll < 0.06:
        return None, "unanswered", ""
    if rng.random() < dissatisfied:
        value = rng.choice((1, 2))
    else:
        value = rng.choice((3, 4, 4, 5, 5))
    return value, "answered", str(value)


def _ended(rng: random.Random, which: str, k: int) -> datetime:
    """When an interview ended: in the report's quarter, the one before, or just outside."""
    if which == "edge":   # the local-midnight boundaries, both sides
        return (_local("2026-07-01", 0.0), _local("2026-06-30", 23.99), _local("2026-10-01", 0.0) - timedelta(
            seconds=1), _local("2026-10-01", 0.0))[k % 4]
    start, days = {"current": ("2026-07-01", 92), "previous": ("2026-04-01", 91), "older": ("2026-01-01", 90)}[which]
    return _local(start, rng.uniform(0, days * 24 - 0.01))


def seed_province(db: Database, q: Questionnaire, *, scale: int = 1, seed: int = 7,
                  qr_responses: int = 25) -> Seeded:
    """Write the province; ``scale`` multiplies the respondents (the benchmark's knob)."""
    rng = random.Random(seed)
    out = Seeded()
    rated = [i for i in q.items if i.kind in ("factor", "overall")]
    needs = [i for i in q.items if i.kind == "needs"]
    screening = next(i for i in q.items if i.kind == "screening")
    consent = next(i for i in q.items if i.kind == "consent")
    with db.begin() as session:
        for code, name, parent, _n, _d in UNITS:
            agency = Agency(code=code, name=name, parent_id=out.agencies.get(parent) if parent else None)
            session.add(agency)
            session.flush()
            out.agencies[code] = agency.id
        for code, name, _parent, _n, _d in UNITS:
            campaign = Campaign(agency_id=out.agencies[code], name=f"Khảo sát {name}", questionnaire_key=q.key,
                                status=CampaignStatus.COMPLETED, sample_seed=1000 + len(out.campaigns),
                                started_at=_local("2026-04-01", 8), completed_at=_local("2026-09-30", 20))
            session.add(campaign)
            session.flush()
            out.campaigns[code] = campaign.id
    for code, _name, _parent, respondents, dissatisfied in UNITS:
        _campaign(db, q, rng, out, code, respondents * scale, dissatisfied, rated, needs, screening, consent)
    _qr(db, q, rng, out, qr_responses, rated)
    return out


def _campaign(db: Database, q: Questionnaire, rng: random.Random, out: Seeded, code: str, respondents: int,
              dissatisfied: float, rated: list[Any], needs: list[Any], screening: Any, consent: Any) -> None:
    campaign_id, agency_id = out.campaigns[code], out.agencies[code]
    with db.begin() as session:
        strata = []
        for f in FIELDS[:2] if code != "SO2" else FIELDS[2:]:
            eligible = rng.randint(300, 3000)
            drawn = rng.randint(80, 200)
            stratum = Stratum(campaign_id=campaign_id, agency=f"Bộ phận {code}", field=f, frame_rows=eligible + 7,
                              eligible=eligible, excluded={"duplicate": 7}, drawn=drawn, weight=eligible / drawn)
            session.add(stratum)
            strata.append(stratum)
        session.flush()
        plan: list[str] = (["current"] * respondents + ["previous"] * (respondents * 3 // 4)
                           + ["older"] * 5 + ["edge"] * 4)
        rng.shuffle(plan)
        refusals = max(3, respondents // 5)
        contact_rows = []
        for k in range(len(plan) + refusals):
            stratum = strata[k % len(strata)]
            contact_rows.append({
                "campaign_id": campaign_id, "respondent_id": f"r{campaign_id:03d}{k:07d}",
                "phone_e164": f"+8490{campaign_id:02d}{k:05d}", "field": stratum.field,
                "procedure": PROCEDURES[k % len(PROCEDURES)] if code in ("XA1", "SO1") else None,
                "stratum_id": stratum.id, "stratum_weight": stratum.weight, "status": ContactStatus.DONE,
                "disposition": ("1.1" if k < len(plan) else rng.choice(("2.11", "3.13", "2.12", "4.30")))
                if k % 11 else ("1.2" if k < len(plan) else "3.12"),
                "attempt_count": 1, "channel": "voice",
            })
        contact_ids = list(session.scalars(insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
                                           contact_rows))
        attempt_rows = [{"contact_id": cid, "campaign_id": campaign_id, "channel": "voice", "number": 1,
                         "status": AttemptStatus.COMPLETED, "outcome": "completed", "provider": "simulator",
                         "token": f"t{cid:031d}"} for cid in contact_ids[:len(plan)]]
        attempt_ids = list(session.scalars(insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True),
                                           attempt_rows))
        interview_rows = []
        for k, which in enumerate(plan):
            ended = _ended(rng, which, k)
            status = InterviewStatus.PARTIAL if contact_rows[k]["disposition"] == "1.2" else InterviewStatus.COMPLETE
            interview_rows.append({"contact_id": contact_ids[k], "campaign_id": campaign_id,
                                   "questionnaire_key": q.key, "channel": "web" if k % 3 == 0 else "voice",
                                   "status": status, "started_at": ended - timedelta(minutes=4), "ended_at": ended})
        interview_ids = list(session.scalars(insert(Interview).returning(Interview.id,
                                                                         sort_by_parameter_order=True),
                                             interview_rows))
        if code in ("XA1", "SO1"):
            session.execute(insert(Transaction), [
                {"agency_id": agency_id, "code": f"HS-{campaign_id}-{k}", "procedure": contact_rows[k]["procedure"],
                 "field": contact_rows[k]["field"], "phone_e164": contact_rows[k]["phone_e164"],
                 "officer": OFFICERS[k % 2] if k % 5 else None, "returned_at": interview_rows[k]["ended_at"],
                 "source": "file", "decision": "invited", "decided_at": interview_rows[k]["ended_at"],
                 "contact_id": contact_ids[k]} for k in range(len(plan))])
        answers = list(_answers(rng, plan, interview_ids, attempt_ids, interview_rows, dissatisfied, rated, needs,
                                screening, consent))
        for start in range(0, len(answers), 20_000):
            session.execute(insert(Answer), answers[start:start + 20_000])
        out.interviews += len(interview_rows)
        out.answers += len(answers)


def _answers(rng: random.Random, plan: list[str], interview_ids: list[int], attempt_ids: list[int],
             interview_rows: list[dict[str, Any]], dissatisfied: float, rated: list[Any], needs: list[Any],
             screening: Any, consent: Any) -> Iterator[dict[str, Any]]:
    for k, which in enumerate(plan):
        interview, attempt = interview_ids[k], attempt_ids[k]
        share = dissatisfied * (0.7 if which == "previous" else 1.0)
        yield {"interview_id": interview, "attempt_id": attempt, "item_id": consent.id, "value": 1,
               "status": "answered", "digits": "1"}
        gave_feedback = rng.random() < 0.3
        yield {"interview_id": interview, "attempt_id": attempt, "item_id": screening.id,
               "value": 1 if gave_feedback else 0, "status": "answered", "digits": "1" if gave_feedback else "2"}
        partial = interview_rows[k]["status"] is InterviewStatus.PARTIAL
        for position, item in enumerate(rated):
            if item.condition is not None and not gave_feedback:
                continue
            if partial and position > 8:
                break
            value, status, digits = _value(rng, share)
            yield {"interview_id": interview, "attempt_id": attempt, "item_id": item.id, "value": value,
                   "status": status, "digits": digits}
        if interview_rows[k]["channel"] == "web" and not partial:
            for item in needs:
                level = rng.choice((3, 3, 2, 2, 2, 1))
                yield {"interview_id": interview, "attempt_id": attempt, "item_id": item.id, "value": level,
                       "status": "answered", "digits": str(4 - level)}


def _qr(db: Database, q: Questionnaire, rng: random.Random, out: Seeded, count: int, rated: list[Any]) -> None:
    if not count:
        return
    with db.begin() as session:
        poster = QrPoster(code=f"QR{out.agencies['XA1']:06d}", agency_id=out.agencies["XA1"], label="Quầy 1",
                          questionnaire_key=q.key, public_host="sipas.test")
        session.add(poster)
        session.flush()
        for k in range(count):
            started = _ended(rng, "current", k)
            answers = {}
            for item in rated:
                if item.condition is not None:
                    continue
                value, status, _digits = _value(rng, 0.5)
                answers[item.id] = {"value": value, "status": status}
            session.add(QrResponse(poster_id=poster.id, field=FIELDS[0], answers=answers,
                                   status="complete" if k % 6 else "in_progress", started_at=started,
                                   updated_at=started, ended_at=started if k % 6 else None))


def agency_ids(db: Database) -> dict[str, int]:
    with db.begin() as session:
        return dict(session.execute(select(Agency.code, Agency.id)).all())
