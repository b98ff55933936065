"""Sampling frames: read a one-stop-shop transaction list, clean it, draw the sample."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core import sampling
from ..core.phones import normalise
from ..persistence.models import Campaign, CampaignStatus, Contact, OptOut

# Canonical column -> accepted headers (compared without diacritics, case or spaces).
HEADERS = {
    "transaction_code": ("ma ho so", "so ho so", "transaction code", "dossier code"),
    "field": ("linh vuc", "field"),
    "name": ("chu ho so", "nguoi nop", "ho ten", "name", "applicant"),
    "phone": ("so dien thoai", "sdt", "dien thoai", "phone", "phone number"),
    "returned_on": ("ngay tra ket qua", "ngay tra", "returned on", "return date"),
}
REQUIRED = ("phone", "field")


class FrameError(ValueError):
    """The file cannot be used as a sampling frame; nothing was imported."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FrameReport:
    rows: int = 0
    eligible: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)   # row, column, value, reason
    excluded: dict[str, int] = field(default_factory=dict)            # reason -> count
    drawn: int = 0
    strata: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> N, n, weight
    seed: int | None = None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", str(text).replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return " ".join(text.lower().replace("_", " ").split())


def read_frame(source: str | Path | IO[bytes]) -> pd.DataFrame:
    """Read a CSV or XLSX transaction list into canonical columns."""
    name = str(getattr(source, "name", source))
    try:
        if name.lower().endswith((".xlsx", ".xlsm")):
            raw = pd.read_excel(source, dtype=str)
        else:
            raw = pd.read_csv(source, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise FrameError(f"{Path(name).name}: cannot read the file: {exc}") from None
    mapping: dict[str, str] = {}
    for column in raw.columns:
        folded = _fold(column)
        for canonical, names in HEADERS.items():
            if folded in names and canonical not in mapping.values():
                mapping[column] = canonical
    missing = [c for c in REQUIRED if c not in mapping.values()]
    if missing:
        raise FrameError(
            f"{Path(name).name}: required column(s) missing: {', '.join(missing)}; "
            f"found columns: {', '.join(map(str, raw.columns))}"
        )
    frame = raw[list(mapping)].rename(columns=mapping)
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # spreadsheet row numbers (header is row 1)
    return frame


def clean_frame(frame: pd.DataFrame, session: Session, report: FrameReport) -> pd.DataFrame:
    """Normalise phones, keep returned transactions, drop duplicates and opted-out numbers."""
    report.rows = len(frame)
    phones = frame["phone"].fillna("").astype(str)
    parsed = {value: normalise(value) for value in phones.unique()}  # distinct values only
    e164 = phones.map(lambda v: parsed[v].e164)
    bad = e164.isna()
    for row in frame.index[bad]:
        report.rejected.append({"row": int(row), "column": "phone", "value": phones[row],
                                "reason": parsed[phones[row]].reason})
    frame = frame.assign(phone_e164=e164)[~bad]
    if "returned_on" in frame:
        returned = pd.to_datetime(frame["returned_on"], dayfirst=True, errors="coerce")
        not_returned = returned.isna()
        if not_returned.any():
            report.excluded["not_returned"] = int(not_returned.sum())
        frame = frame.assign(returned_on=returned.dt.date)[~not_returned]
        frame = frame.sort_values("returned_on", kind="stable")
    before = len(frame)
    frame = frame.drop_duplicates("phone_e164", keep="last")  # the most recent transaction
    if before - len(frame):
        report.excluded["duplicate_phone"] = before - len(frame)
    opted = set(session.scalars(select(OptOut.phone_e164)))
    blocked = frame["phone_e164"].isin(opted)
    if blocked.any():
        report.excluded["do_not_contact"] = int(blocked.sum())
    frame = frame[~blocked]
    frame = frame.assign(field=frame["field"].fillna("").astype(str).str.strip())
    report.eligible = len(frame)
    return frame


def import_and_sample(session: Session, campaign: Campaign, source: str | Path | IO[bytes],
                      rule: sampling.SampleRule, seed: int, now: datetime) -> FrameReport:
    """Import a frame into a draft campaign and draw its sample, in one transaction."""
    if campaign.status is not CampaignStatus.DRAFT:
        raise FrameError(f"campaign {campaign.id} is {campaign.status.value}; only draft campaigns take a frame",
                         status=409)
    if session.scalar(select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id)):
        raise FrameError(f"campaign {campaign.id} already has a sample", status=409)
    report = FrameReport(seed=seed)
    frame = clean_frame(read_frame(source), session, report)
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
    return value if isinstance(value, date) else None
