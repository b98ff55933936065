"""Sampling frames: read a one-stop-shop transaction list, clean it, draw the sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core import sampling
from ..core.phones import normalise
from ..persistence.models import Attempt, Campaign, CampaignStatus, Contact, OptOut
from .frame_reader import FrameError, fold, parse_dates, read_frame

__all__ = ["FrameError", "FrameReport", "clean_frame", "import_and_sample", "preview"]

RETURNED_STATUSES = ("da tra", "da tra ket qua", "tra ket qua", "hoan thanh", "da hoan thanh", "returned", "completed")
RECENT_SURVEY_DAYS = 90


@dataclass
class FrameReport:
    rows: int = 0                                                      # data rows read
    header_row: int = 0
    columns: dict[str, str] = field(default_factory=dict)             # canonical -> header as written
    ignored_rows: list[dict[str, object]] = field(default_factory=list)  # title, blank, totals rows
    rejected: list[dict[str, object]] = field(default_factory=list)   # row, column, value, reason
    excluded: dict[str, int] = field(default_factory=dict)            # reason -> count
    eligible: int = 0
    drawn: int = 0
    strata: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> N, n, weight
    seed: int | None = None


def clean_frame(frame: pd.DataFrame, session: Session, report: FrameReport, now: datetime,
                period: tuple[date | None, date | None] = (None, None),
                recent_days: int = RECENT_SURVEY_DAYS, exclude_campaign: int | None = None) -> pd.DataFrame:
    """Normalise phones, keep results returned in the period, drop duplicates, opted-out
    and recently surveyed numbers. Every dropped row is reported or counted by reason."""
    report.rows = len(frame)
    phones = frame["phone"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).strip())
    parsed = {value: normalise(value) for value in phones.unique()}  # distinct values only
    e164 = phones.map(lambda v: parsed[v].e164)
    bad = e164.isna()
    for row in frame.index[bad]:
        report.rejected.append({"row": int(row), "column": report.columns.get("phone", "phone"),
                                "value": phones[row], "reason": parsed[phones[row]].reason})
    frame = frame.assign(phone_e164=e164, phone_kind=phones.map(lambda v: parsed[v].kind))[~bad]

    returned = parse_dates(frame["returned_on"]) if "returned_on" in frame else pd.Series(pd.NaT, index=frame.index)
    if "returned_on" in frame:
        raw = frame["returned_on"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).strip())
        unreadable = returned.isna() & (raw != "")
        for row in frame.index[unreadable]:
            report.rejected.append({"row": int(row), "column": report.columns["returned_on"], "value": raw[row],
                                    "reason": "not a date (expected dd/mm/yyyy)"})
        frame, returned = frame[~unreadable], returned[~unreadable]
    done = returned.notna()
    if "status" in frame:
        status = frame["status"].map(lambda v: fold(v) if isinstance(v, str) else "")
        done |= status.isin(RETURNED_STATUSES)
    _exclude(report, "not_returned", ~done)
    frame, returned = frame[done], returned[done]
    start, end = period
    outside = pd.Series(False, index=frame.index)
    if start is not None:
        outside |= returned.notna() & (returned.dt.date < start)
    if end is not None:
        outside |= returned.notna() & (returned.dt.date > end)
    _exclude(report, "outside_period", outside)
    frame = frame[~outside].assign(returned_on=returned[~outside].dt.date)
    frame = frame.sort_values("returned_on", kind="stable", na_position="first")
    duplicate = frame.duplicated("phone_e164", keep="last")  # keep the most recent transaction
    _exclude(report, "duplicate_phone", duplicate)
    frame = frame[~duplicate]
    opted = set(session.scalars(select(OptOut.phone_e164)))
    blocked = frame["phone_e164"].isin(opted)
    _exclude(report, "do_not_contact", blocked)
    frame = frame[~blocked]
    if recent_days > 0:
        since = now - timedelta(days=recent_days)
        query = (select(Contact.phone_e164).join(Attempt, Attempt.contact_id == Contact.id)
                 .where(Attempt.created_at >= since))
        if exclude_campaign is not None:
            query = query.where(Contact.campaign_id != exclude_campaign)
        recent = frame["phone_e164"].isin(set(session.scalars(query)))
        _exclude(report, "surveyed_recently", recent)
        frame = frame[~recent]
    frame = frame.assign(field=frame["field"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v))
                                                  else str(v).strip()))
    report.eligible = len(frame)
    return frame


def _exclude(report: FrameReport, reason: str, mask: pd.Series) -> None:
    count = int(mask.sum())
    if count:
        report.excluded[reason] = report.excluded.get(reason, 0) + count


def preview(session: Session, source: str | Path | IO[bytes], now: datetime, encoding: str | None = None,
            column_map: dict[str, str] | None = None) -> FrameReport:
    """Validate a file and report what an import would do, without storing anything."""
    frame, read = read_frame(source, encoding, column_map)
    report = FrameReport(header_row=read.header_row, columns=read.columns, ignored_rows=read.ignored_rows)
    clean_frame(frame, session, report, now)
    return report


def import_and_sample(session: Session, campaign: Campaign, source: str | Path | IO[bytes],
                      rule: sampling.SampleRule, seed: int, now: datetime, encoding: str | None = None,
                      column_map: dict[str, str] | None = None) -> FrameReport:
    """Import a frame into a draft campaign and draw its sample, in one transaction."""
    if campaign.status is not CampaignStatus.DRAFT:
        raise FrameError(f"campaign {campaign.id} is {campaign.status.value}; only draft campaigns take a frame",
                         status=409)
    if session.scalar(select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id)):
        raise FrameError(f"campaign {campaign.id} already has a sample", status=409)
    frame, read = read_frame(source, encoding, column_map)
    report = FrameReport(seed=seed, header_row=read.header_row, columns=read.columns, ignored_rows=read.ignored_rows)
    frame = clean_frame(frame, session, report, now, (campaign.period_start, campaign.period_end),
                        exclude_campaign=campaign.id)
    n = sampling.sample_size(len(frame), rule)
    sample = sampling.draw(frame, "field", n, seed)
    sizes = frame["field"].value_counts()
    for stratum, group in sample.groupby("field"):
        report.strata[str(stratum)] = {"N": int(sizes[stratum]), "n": len(group),
                                       "weight": float(group["stratum_weight"].iloc[0])}
    contacts = [
        Contact(campaign_id=campaign.id, phone_e164=row.phone_e164,
                name=_text(getattr(row, "name", None)), transaction_code=_text(getattr(row, "transaction_code", None)),
                field=row.field or None, stratum_weight=float(row.stratum_weight),
                returned_on=_date(getattr(row, "returned_on", None)), next_attempt_at=now, created_at=now)
        for row in sample.itertuples(index=False)
    ]
    session.add_all(contacts)
    campaign.sample_seed = seed
    campaign.frame_size = len(frame)
    report.drawn = len(contacts)
    return report


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _date(value: object) -> date | None:
    return value if isinstance(value, date) and not pd.isna(value) else None
