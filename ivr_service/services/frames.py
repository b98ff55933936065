"""Sampling frames: read a one-stop-shop transaction list, clean it, draw the sample.

A frame file is read and parsed before any transaction is opened (:func:`import_file`,
:func:`preview_file`): a 2 MB workbook takes seconds to parse, and on SQLite a transaction
holds the database's one write lock (``BEGIN IMMEDIATE``), on PostgreSQL the campaign's
row lock, so every webhook would wait behind the parse. Only cleaning against the
do-not-contact list and the recent calls, the draw and the inserts run in the transaction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ..core import sampling
from ..core.phones import normalise_distinct
from ..core.pseudonym import is_hashed, phone_hash
from ..persistence.db import Database
from ..persistence.models import Agency, Attempt, Campaign, CampaignStatus, Contact, ContactStatus, OptOut, Stratum
from . import audit, phone_match
from .audit import Actor
from .campaigns import get_campaign
from .errors import Conflict, InvalidInput, invalid
from .frame_reader import ReadReport, fold, parse_dates, read_frame

__all__ = ["FrameReport", "clean_frame", "frame_refusal", "import_and_sample", "import_file", "preview",
           "preview_file", "release_reserve", "sample_rule"]

Source = str | Path | IO[bytes]

RETURNED_STATUSES = ("da tra", "da tra ket qua", "tra ket qua", "hoan thanh", "da hoan thanh", "returned", "completed")
RECENT_SURVEY_DAYS = 90


@dataclass
class FrameReport:
    rows: int = 0                                                      # data rows read
    header_row: int = 0
    columns: dict[str, str] = field(default_factory=dict)             # canonical -> header as written
    headers: list[str] = field(default_factory=list)                  # every header cell of the file
    ignored_rows: list[dict[str, object]] = field(default_factory=list)  # title, blank, totals, signature rows
    footer_rows: int = 0                                               # signature block under the table
    rejected: list[dict[str, object]] = field(default_factory=list)   # row, column, value, reason
    excluded: dict[str, int] = field(default_factory=dict)            # reason -> count
    eligible: int = 0
    landlines: int = 0                                                 # eligible, callable, never sent SMS
    drawn: int = 0
    reserve: int = 0
    strata: list[dict[str, object]] = field(default_factory=list)     # per agency × field
    seed: int | None = None
    rule: dict[str, object] = field(default_factory=dict)
    _by_stratum: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict, repr=False)
    _rows_by_stratum: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class _Coded:
    """A text column as codes into its distinct values, stripped ("" when missing): columns
    repeat a lot (fields, agencies, dates), so each distinct value is cleaned once and rows
    are compared as integers."""

    def __init__(self, values: pd.Series | np.ndarray | None, rows: int, default: str = "",
                 strip: bool = True) -> None:
        if values is None:
            values = np.full(rows, None, dtype=object)
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        if not strip:   # labels as written, as text; the last, "", for missing cells
            self.codes: np.ndarray = codes
            self.labels: np.ndarray = np.array([v if v.__class__ is str else str(v) for v in uniques] + [""],
                                               dtype=object)
            return
        cleaned = [str(value).strip() or default for value in uniques] + [default]   # the last: missing
        remap, labels = pd.factorize(np.array(cleaned, dtype=object))
        self.codes = remap[codes]   # code -1 (missing) picks the last entry
        self.labels = np.asarray(labels, dtype=object)

    def text(self, positions: np.ndarray) -> np.ndarray:
        return self.labels[self.codes[positions]]


class _Strata:
    """Agency × field strata of the rows, as one integer code per row."""

    def __init__(self, agency: _Coded, field: _Coded) -> None:
        combined = agency.codes.astype(np.int64) * len(field.labels) + field.codes
        self.codes, distinct = pd.factorize(combined)
        self.keys = [(str(agency.labels[c // len(field.labels)]), str(field.labels[c % len(field.labels)]))
                     for c in distinct.tolist()]

    def count(self, positions: np.ndarray) -> dict[tuple[str, str], int]:
        """Rows per stratum among ``positions``."""
        counts = np.bincount(self.codes[positions], minlength=len(self.keys))
        return {self.keys[c]: int(counts[c]) for c in np.flatnonzero(counts).tolist()}


@dataclass
class _Eligible:
    """The rows of a frame left after cleaning, in the order the sample is drawn from:
    ``positions`` in the frame as read, with their cleaned values."""

    frame: pd.DataFrame
    positions: np.ndarray
    agency: np.ndarray
    field: np.ndarray
    phone_e164: np.ndarray
    phone_kind: np.ndarray
    carrier: np.ndarray
    returned: np.ndarray   # datetime64[D], NaT when the list has only a status
    sizes: dict[tuple[str, str], int]   # rows per agency × field stratum

    def __len__(self) -> int:
        return len(self.positions)

    def rows(self, chosen: np.ndarray) -> list[dict[str, object]]:
        """Eligible rows ``chosen`` (numbers in eligible order) as contacts need them."""
        source = self.positions[chosen]

        def cells(name: str) -> list[str | None]:
            if name not in self.frame:
                return [None] * len(chosen)
            return [_text(value) for value in self.frame[name].to_numpy(dtype=object)[source].tolist()]

        days = self.returned[chosen]
        return [{"agency": agency, "field": field, "phone_e164": phone, "phone_kind": kind, "carrier": carrier,
                 "name": name, "transaction_code": code, "returned_on": None if np.isnat(day) else day.item()}
                for agency, field, phone, kind, carrier, name, code, day in zip(
                    self.agency[chosen].tolist(), self.field[chosen].tolist(), self.phone_e164[chosen].tolist(),
                    self.phone_kind[chosen].tolist(), self.carrier[chosen].tolist(), cells("name"),
                    cells("transaction_code"), days, strict=True)]

    def to_frame(self) -> pd.DataFrame:
        returned = pd.Series(self.returned.astype("datetime64[ns]"), index=self.frame.index[self.positions])
        return self.frame.iloc[self.positions].assign(
            field=self.field, agency=self.agency, phone_e164=self.phone_e164, phone_kind=self.phone_kind,
            carrier=self.carrier, returned_on=returned.dt.date)


def clean_frame(frame: pd.DataFrame, session: Session, report: FrameReport, now: datetime,
                period: tuple[date | None, date | None] = (None, None),
                recent_days: int = RECENT_SURVEY_DAYS, exclude_campaign: int | None = None,
                default_agency: str = "") -> pd.DataFrame:
    """Normalise phones, keep results returned in the period, drop duplicates, opted-out
    and recently surveyed numbers. Every dropped row is reported or counted by reason,
    in total and per agency × field stratum. Returns the eligible rows, most recently
    returned last."""
    return _clean(frame, session, report, now, period, recent_days, exclude_campaign, default_agency).to_frame()


def _clean(frame: pd.DataFrame, session: Session, report: FrameReport, now: datetime,
           period: tuple[date | None, date | None] = (None, None), recent_days: int = RECENT_SURVEY_DAYS,
           exclude_campaign: int | None = None, default_agency: str = "") -> _Eligible:
    """:func:`clean_frame` over whole columns: each distinct value (phone, date, field) is
    read once, rows are carried as positions and compared as integer codes."""
    count = len(frame)
    report.rows = count
    numbers = frame.index.to_numpy()                         # spreadsheet row numbers
    agency = _Coded(frame["agency"] if "agency" in frame else None, count, default_agency)
    field = _Coded(frame["field"], count)
    strata = _Strata(agency, field)
    alive = np.arange(count)
    report._rows_by_stratum = strata.count(alive)

    def exclude(reason: str, mask: np.ndarray, total: bool = True) -> np.ndarray:
        """Count ``alive[mask]`` under ``reason`` and return the rows left."""
        dropped = alive[mask]
        if len(dropped):
            if total:  # rejected rows are listed one by one instead
                report.excluded[reason] = report.excluded.get(reason, 0) + len(dropped)
            for key, number in strata.count(dropped).items():
                counts = report._by_stratum.setdefault(key, {})
                counts[reason] = counts.get(reason, 0) + number
        return alive[~mask]

    # Phones are normalised as written (normalise() strips them): half a million distinct
    # numbers need no second pass to strip them.
    phones = _Coded(frame["phone"], count, strip=False)
    parsed = normalise_distinct(list(phones.labels))
    e164 = parsed["e164"].to_numpy(dtype=object)
    bad = pd.isna(e164)[phones.codes]
    column = report.columns.get("phone", "phone")
    reasons = parsed["reason"].to_numpy(dtype=object)
    report.rejected.extend({"row": int(numbers[i]), "column": column,
                            "value": phones.labels[phones.codes[i]].strip(), "reason": reasons[phones.codes[i]]}
                           for i in np.flatnonzero(bad).tolist())
    alive = exclude("invalid_phone", bad, total=False)

    returned = np.full(count, np.datetime64("NaT"), dtype="datetime64[ns]")
    day_rank: np.ndarray = np.zeros(count, dtype=np.int16)   # rank of the day returned, rows without one first
    if "returned_on" in frame:
        codes, uniques = pd.factorize(frame["returned_on"].to_numpy(dtype=object), use_na_sentinel=True)
        when = parse_dates(pd.Series(uniques, dtype=object)).to_numpy(dtype="datetime64[ns]")
        when = np.append(when, np.datetime64("NaT"))
        returned = when[codes]   # code -1 (missing) picks NaT
        # A few hundred distinct days: ranks that small sort stably by radix sort.
        days, rank = np.unique(when.astype("datetime64[D]").view(np.int64), return_inverse=True)  # NaT first
        day_rank = rank.astype(np.int16 if len(days) < 2**15 else np.int64)[codes]
        # XLSX cells may hold real dates: the message shows them as ISO dates.
        written = np.array([(value.isoformat() if isinstance(value, date | datetime) else str(value)).strip()
                            for value in uniques] + [""], dtype=object)
        unreadable = np.isnat(returned[alive]) & (written[codes[alive]] != "")
        for i in alive[unreadable].tolist():
            report.rejected.append({"row": int(numbers[i]), "column": report.columns["returned_on"],
                                    "value": written[codes[i]], "reason": "not a date (expected dd/mm/yyyy)"})
        alive = exclude("invalid_date", unreadable, total=False)
    done = ~np.isnat(returned[alive])
    if "status" in frame:
        statuses = _Coded(frame["status"], count)
        returned_status = np.array([fold(value) in RETURNED_STATUSES for value in statuses.labels], dtype=bool)
        done |= returned_status[statuses.codes[alive]]
    alive = exclude("not_returned", ~done)
    start, end = period
    outside = np.zeros(len(alive), dtype=bool)
    # NaT compares false: a list with only a status column has no date to be outside.
    if start is not None:
        outside |= returned[alive] < np.datetime64(start, "ns")
    if end is not None:
        outside |= returned[alive] >= np.datetime64(end, "ns") + np.timedelta64(1, "D")
    alive = exclude("outside_period", outside)
    # Most recently returned last (by day, rows without a date first, ties in file order),
    # so that dropping duplicates keeps each number's most recent transaction.
    alive = alive[np.argsort(day_rank[alive], kind="stable")]
    person = pd.factorize(e164)[0][phones.codes]
    duplicate = pd.Series(person[alive]).duplicated(keep="last").to_numpy()
    alive = exclude("duplicate_phone", duplicate)
    numbers_left = e164[phones.codes[alive]]
    opted = set(session.scalars(select(OptOut.phone_e164)))
    blocked = pd.Series(numbers_left).isin(opted).to_numpy()
    key = phone_match.hash_key(session)
    if key and any(is_hashed(phone) for phone in opted):
        # A purged or erased refusal is kept by the number's hash: compare those too.
        blocked = blocked | np.array([phone_hash(key, phone) in opted for phone in numbers_left], dtype=bool)
    alive = exclude("do_not_contact", blocked)
    if recent_days > 0:
        since = now - timedelta(days=recent_days)
        query = (select(Contact.phone_e164).join(Attempt, Attempt.contact_id == Contact.id)
                 .where(Attempt.created_at >= since))
        if exclude_campaign is not None:
            query = query.where(Contact.campaign_id != exclude_campaign)
        surveyed = set(session.scalars(query))
        numbers_left = e164[phones.codes[alive]]
        recent = pd.Series(numbers_left).isin(surveyed).to_numpy()
        if key and any(is_hashed(phone) for phone in surveyed):
            recent = recent | np.array([phone_hash(key, phone) in surveyed for phone in numbers_left], dtype=bool)
        alive = exclude("surveyed_recently", recent)
    kinds = parsed["kind"].to_numpy(dtype=object)
    eligible = _Eligible(frame=frame, positions=alive, agency=agency.text(alive), field=field.text(alive),
                         phone_e164=e164[phones.codes[alive]], phone_kind=kinds[phones.codes[alive]],
                         carrier=parsed["carrier"].to_numpy(dtype=object)[phones.codes[alive]],
                         returned=returned[alive].astype("datetime64[D]"), sizes=strata.count(alive))
    report.eligible = len(eligible)
    report.landlines = int((eligible.phone_kind == "landline").sum())
    return eligible


def preview_file(db: Database, source: Source, now: datetime, encoding: str | None = None,
                 column_map: dict[str, str] | None = None, recent_days: int = RECENT_SURVEY_DAYS,
                 max_rows: int | None = None,
                 period: tuple[date | None, date | None] = (None, None)) -> FrameReport:
    """Validate a file and report what an import would do, without storing anything; the
    file is parsed before the (read-only) transaction that checks opt-outs and recent calls.
    ``period``: a campaign's period, to count the results returned outside it as its import will."""
    frame, read = read_frame(source, encoding, column_map)
    _check_rows(len(frame), max_rows)
    with db.begin() as session:
        return _preview(session, frame, read, now, recent_days, period)


def preview(session: Session, source: Source, now: datetime, encoding: str | None = None,
            column_map: dict[str, str] | None = None, recent_days: int = RECENT_SURVEY_DAYS) -> FrameReport:
    """:func:`preview_file` inside the caller's transaction (the file is parsed in it: for
    small files only; the API and the command line use :func:`preview_file`)."""
    frame, read = read_frame(source, encoding, column_map)
    return _preview(session, frame, read, now, recent_days)


def _preview(session: Session, frame: pd.DataFrame, read: ReadReport, now: datetime,
             recent_days: int, period: tuple[date | None, date | None] = (None, None)) -> FrameReport:
    report = FrameReport(header_row=read.header_row, columns=read.columns, headers=read.headers,
                         ignored_rows=read.ignored_rows, footer_rows=read.footer_rows)
    clean_frame(frame, session, report, now, period, recent_days=recent_days)
    return report


# Bounds of the import parameters (the API's schema states them too).
MAX_SEED = 2**31 - 1          # stored in an INTEGER column
MAX_REPLICATES = 20
MAX_RECENT_DAYS = 3650


def import_file(db: Database, campaign_id: int, source: Source, rule: sampling.SampleRule | None, seed: int,
                now: datetime, encoding: str | None = None, column_map: dict[str, str] | None = None,
                reserve_share: float = 0.0, replicates: int = 1,
                recent_days: int = RECENT_SURVEY_DAYS, max_rows: int | None = None,
                actor: Actor | None = None, file_name: str | None = None) -> FrameReport:
    """Import a frame file into a draft campaign and draw its sample (see
    :func:`import_and_sample`), parsing the file while no transaction is open.

    The parameters and the campaign are checked first (a short transaction, so a campaign
    that cannot take a frame answers before a large file is parsed); then the file is read
    and parsed with nothing open; then one transaction locks the campaign, checks it again,
    cleans, draws and stores, with the audit entry of ``actor`` when given.
    """
    _check_parameters(seed, reserve_share, replicates, recent_days)
    with db.begin() as session:
        _check_campaign(session, get_campaign(session, campaign_id))
    frame, read = read_frame(source, encoding, column_map)
    _check_rows(len(frame), max_rows)
    with db.begin() as session:
        campaign = get_campaign(session, campaign_id, lock=True)
        _check_campaign(session, campaign)
        report = _sample(session, campaign, frame, read, rule, seed, now, reserve_share, replicates, recent_days)
        if actor is not None:
            audit.record(session, actor, "frame_imported", now, target=f"campaign:{campaign_id}",
                         agency_id=campaign.agency_id, file=(file_name or "")[:100], rows=report.rows,
                         drawn=report.drawn, reserve=report.reserve, seed=seed)
        return report


def _check_rows(rows: int, max_rows: int | None) -> None:
    if max_rows is not None and rows > max_rows:
        raise InvalidInput(f"file: {rows} rows is more than the {max_rows} a frame may hold "
                           "(SIPAS_MAX_FRAME_ROWS); split the list by agency or period", field="file")


def import_and_sample(session: Session, campaign: Campaign, source: Source,
                      rule: sampling.SampleRule | None, seed: int, now: datetime, encoding: str | None = None,
                      column_map: dict[str, str] | None = None, reserve_share: float = 0.0,
                      replicates: int = 1, recent_days: int = RECENT_SURVEY_DAYS) -> FrameReport:
    """Import a frame into a draft campaign and draw its sample, in the caller's transaction
    (the file is parsed in it: for small files, such as the demo's; the API and the command
    line use :func:`import_file`).

    ``rule`` defaults to the agency's configured rule (seed-002 tiers when none). With
    ``reserve_share`` > 0 a reserve pool of that share of the sample is drawn too, split
    into ``replicates`` waves that stay undialled until released.
    """
    _check_parameters(seed, reserve_share, replicates, recent_days)
    _check_campaign(session, campaign)
    frame, read = read_frame(source, encoding, column_map)
    return _sample(session, campaign, frame, read, rule, seed, now, reserve_share, replicates, recent_days)


def _check_parameters(seed: int, reserve_share: float, replicates: int, recent_days: int) -> None:
    if not 0 <= reserve_share <= 1:
        raise invalid("reserve", f"expected a share between 0 and 1, got {reserve_share}")
    for name, value, low, high in (("seed", seed, 0, MAX_SEED), ("replicates", replicates, 1, MAX_REPLICATES),
                                   ("recent_days", recent_days, 0, MAX_RECENT_DAYS)):
        if not low <= value <= high:
            raise invalid(name, f"expected {low} to {high}, got {value}")


def frame_refusal(session: Session, campaign: Campaign) -> str | None:
    """Why ``campaign`` cannot take a frame now (not a draft, or sampled already); None when it can."""
    try:
        _check_campaign(session, campaign)
    except Conflict as exc:
        return exc.message
    return None


def _check_campaign(session: Session, campaign: Campaign) -> None:
    if campaign.status is not CampaignStatus.DRAFT:
        raise Conflict(f"campaign {campaign.id} is {campaign.status.value}; only draft campaigns take a frame")
    if session.scalar(select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id)):
        raise Conflict(f"campaign {campaign.id} already has a sample")


def _sample(session: Session, campaign: Campaign, frame: pd.DataFrame, read: ReadReport,
            rule: sampling.SampleRule | None, seed: int, now: datetime, reserve_share: float, replicates: int,
            recent_days: int) -> FrameReport:
    """Clean a parsed frame, draw the sample and store strata and contacts."""
    if rule is None:
        rule = agency_rule(campaign.agency)
    report = FrameReport(seed=seed, header_row=read.header_row, columns=read.columns, headers=read.headers,
                         ignored_rows=read.ignored_rows, footer_rows=read.footer_rows)
    eligible = _clean(frame, session, report, now, (campaign.period_start, campaign.period_end),
                      recent_days=recent_days, exclude_campaign=campaign.id, default_agency=campaign.agency.name)
    # The draw needs only the strata: rows are numbered 0.. in eligible order, and the
    # other values are looked up for the rows drawn.
    strata_frame = pd.DataFrame({"agency": eligible.agency, "field": eligible.field})
    rng = np.random.default_rng(seed)
    samples = []
    for _agency, group in strata_frame.groupby("agency", sort=True):   # sample size per agency
        n = sampling.sample_size(len(group), rule)
        extra = math.ceil(n * reserve_share) if reserve_share > 0 else 0
        try:
            samples.append(sampling.draw(group, "field", n, rng, reserve=extra, replicates=replicates))
        except ValueError as exc:   # a sample too small for its strata, no replicates
            raise InvalidInput(f"sample: {exc}") from None
    sample = (pd.concat(samples) if samples
              else strata_frame.iloc[0:0].assign(stratum_weight=1.0, replicate=0))
    sizes = eligible.sizes
    keys = set(sizes) | set(report._rows_by_stratum)
    strata: dict[tuple[str, str], Stratum] = {}
    for key in sorted(keys):
        chosen = sample[(sample["agency"] == key[0]) & (sample["field"] == key[1])]
        drawn = int((chosen["replicate"] == 0).sum())
        stratum = Stratum(campaign_id=campaign.id, agency=key[0], field=key[1],
                          frame_rows=int(report._rows_by_stratum.get(key, 0)), eligible=int(sizes.get(key, 0)),
                          excluded=report._by_stratum.get(key, {}), drawn=drawn,
                          reserve=int((chosen["replicate"] > 0).sum()),
                          weight=sizes[key] / drawn if drawn else None)
        session.add(stratum)
        strata[key] = stratum
        report.strata.append({"agency": key[0], "field": key[1], "frame_rows": stratum.frame_rows,
                              "eligible": stratum.eligible, "excluded": stratum.excluded, "drawn": drawn,
                              "reserve": stratum.reserve, "weight": stratum.weight})
    session.flush()
    replicate = sample["replicate"].to_numpy()
    contacts = []
    for row, wave in zip(eligible.rows(sample.index.to_numpy()), replicate.tolist(), strict=True):
        stratum = strata[(str(row["agency"]), str(row["field"]))]
        contacts.append({
            "campaign_id": campaign.id, "phone_e164": row["phone_e164"], "phone_kind": row["phone_kind"],
            "carrier": row["carrier"], "name": row["name"], "transaction_code": row["transaction_code"],
            "field": row["field"] or None, "stratum_id": stratum.id, "stratum_weight": stratum.weight or 1.0,
            "replicate": int(wave), "status": ContactStatus.PENDING if wave == 0 else ContactStatus.RESERVE,
            "returned_on": row["returned_on"], "next_attempt_at": now if wave == 0 else None, "created_at": now})
    if contacts:
        # One multi-row INSERT per batch instead of one ORM object (and statement) per contact.
        session.execute(insert(Contact), contacts)
    campaign.sample_seed = seed
    campaign.frame_size = len(eligible)
    report.drawn = int((replicate == 0).sum())
    report.reserve = len(contacts) - report.drawn
    report.rule = {"kind": rule.kind, "n": rule.n, "margin": rule.margin}
    return report


def sample_rule(kind: str | None, n: int | None = None, margin: float = 0.05) -> sampling.SampleRule | None:
    """The sample-size rule a request names, or None for the agency's own rule."""
    if kind is None:
        return None
    try:
        return sampling.SampleRule(kind=kind, n=n, margin=margin)
    except sampling.SampleRuleError as exc:
        raise invalid("rule" if exc.part == "kind" else exc.part, str(exc)) from None


def agency_rule(agency: Agency) -> sampling.SampleRule:
    data = agency.sample_rule or {}
    try:
        return sampling.SampleRule(kind=data.get("kind", "seed002"), n=data.get("n"), margin=data.get("margin", 0.05))
    except ValueError as exc:
        raise InvalidInput(f"agency {agency.code}: sample_rule: {exc}", field="sample_rule") from None


def release_reserve(session: Session, campaign: Campaign, now: datetime, actor: Actor | None = None) -> int:
    """Release the next reserve wave: its contacts become due now and stratum weights are
    recomputed with the larger n_h. Returns how many contacts were released; with ``actor``
    the release is written to the audit log in the same transaction."""
    wave = session.scalar(select(func.min(Contact.replicate)).where(
        Contact.campaign_id == campaign.id, Contact.status == ContactStatus.RESERVE))
    if wave is None:
        raise Conflict(f"campaign {campaign.id} has no reserve left to release")
    released = session.scalars(select(Contact).where(
        Contact.campaign_id == campaign.id, Contact.status == ContactStatus.RESERVE, Contact.replicate == wave)).all()
    for contact in released:
        contact.status = ContactStatus.PENDING
        contact.next_attempt_at = now
    session.flush()
    for stratum in session.scalars(select(Stratum).where(Stratum.campaign_id == campaign.id)):
        counts = dict(session.execute(select(Contact.status, func.count())
                                      .where(Contact.stratum_id == stratum.id).group_by(Contact.status)).all())
        stratum.reserve = int(counts.pop(ContactStatus.RESERVE, 0))
        stratum.drawn = int(sum(counts.values()))
        stratum.weight = stratum.eligible / stratum.drawn if stratum.drawn else None
        session.execute(update(Contact).where(Contact.stratum_id == stratum.id)
                        .values(stratum_weight=stratum.weight or 1.0))
    if actor is not None:
        audit.record(session, actor, "reserve_released", now, target=f"campaign:{campaign.id}",
                     agency_id=campaign.agency_id, released=len(released))
    return len(released)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _date(value: object) -> date | None:
    return value if isinstance(value, date) and not pd.isna(value) else None
