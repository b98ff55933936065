"""An independent check of the CCHC report workbook (issue 16, part 5).

The seeded province (``tests/report_data.py``) is reported twice, for the quarter 2026-Q3
at the province node and for the campaign of XA1 as a whole; each workbook is read back
with openpyxl and every figure is recomputed here, from the stored rows read with
``pd.read_sql``, by plain pandas. Nothing from ``core.scoring``, ``core.report`` or
``services.reports``/``results`` is used for the expected values: ``reports.generate`` is
only the thing under test. The questionnaire registry gives item ids, factors and scale
values; the models give table names and let the test add what the seed lacks (a second
answer to an item on a later attempt, so "the latest answer counts" is exercised, and
citizens' names, so their absence from the workbook means something).

Rules applied here, as the report's documentation states them:

* counted interviews: status complete or partial, ended in [2026-07-01 00:00, 2026-10-01
  00:00) Asia/Ho_Chi_Minh; per (interview, item) the answer with the highest id; consent
  never scored; valid = status "answered" with a value; satisfied 4-5, dissatisfied 1-2;
* criterion index = satisfied / valid; Wilson 95 %; factor = mean of its criteria with
  answers, service = mean of the factors; clustered 95 % intervals by linearisation with
  each respondent a cluster, Wilson at the effective n; weights = contacts.stratum_weight;
* rollup along the tree weighted by eligible N (own campaigns pooled, each child's rollup);
* AAPOR RR1/RR3/COOP1/REF1/CON1 over the in-scope campaigns' contacts with a disposition.

Every disagreement is collected and reported at once (sheet, row, column, expected, got).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from openpyxl import load_workbook
from sqlalchemy import String, cast, insert, literal, update

from ivr_service.core.questionnaire import Questionnaire
from ivr_service.persistence.models import Answer, Attempt, AttemptStatus, Contact, Interview
from ivr_service.services import reports  # the code under test: only ``generate`` is called
from tests.report_data import seed_province

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
Z = NormalDist().inv_cdf(0.975)
MIN_N = 30
NOW = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)     # the conftest clock
IDLE = timedelta(hours=1)                           # a QR form idle longer has been left
REL = 1e-9
NAME = "Lê Thị Thu Mẫu"                             # every contact's name starts with this
TABLES = ("agencies", "campaigns", "strata", "contacts", "interviews", "answers", "transactions",
          "qr_posters", "qr_responses")


def _local(day: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(day).replace(tzinfo=ZONE)).tz_convert("UTC")


Q3 = (_local("2026-07-01"), _local("2026-10-01"))
Q2 = (_local("2026-04-01"), _local("2026-07-01"))


# ============================================================================ reading

def _read(engine: Any) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        frames = {t: pd.read_sql(f"SELECT * FROM {t}", conn) for t in TABLES}
    for name, frame in frames.items():
        for col in ("ended_at", "started_at", "updated_at"):
            if col in frame.columns and name in ("interviews", "qr_responses"):
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frames


# ============================================================================ scoring

def wilson(p: float, n: float) -> tuple[float, float]:
    """Wilson's 95 % interval, percent, of a share p on n (possibly effective) answers."""
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return 100 * low, 100 * high


def clustered(index: float | None, influence: pd.Series) -> tuple[float | None, float | None]:
    n = len(influence)
    if index is None or n == 0:
        return None, None
    p = min(1.0, max(0.0, index / 100))
    variance = n / (n - 1) * float(((influence / 100) ** 2).sum()) if n > 1 else 0.0
    effective = p * (1 - p) / variance if variance > 0 and 0 < p < 1 else float(n)
    return wilson(p, max(effective, 1.0))


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass
class Scores:
    respondents: int
    criteria: dict[str, dict[str, Any]]     # criteria and the overall item
    factors: dict[str, dict[str, Any]]
    service: dict[str, Any]

    def figures(self) -> dict[str, float | None]:
        """The indices a rollup combines: service, factors, criteria, overall."""
        out: dict[str, float | None] = {"service": self.service["index"]}
        out.update({f"F:{f}": v["index"] for f, v in self.factors.items()})
        out.update({k: v["index"] for k, v in self.criteria.items()})
        return out

    def flagged(self) -> list[str]:
        return [k for k, v in self.criteria.items() if v["flag"]]


def score(q: Questionnaire, answers: pd.DataFrame, respondents: int) -> Scores:
    """Scores of one group: ``answers`` holds the counted answers (interview_id, item_id,
    value, status, weight) of the group's interviews, the latest per item."""
    rated = [i for i in q.items if i.kind in ("factor", "overall")]
    a = answers[answers["item_id"].isin([i.id for i in rated])].copy()
    satisfied = {i.id: set(i.scale.satisfied) for i in rated}
    dissatisfied = {i.id: set(i.scale.dissatisfied) for i in rated}
    a["valid"] = (a["status"] == "answered") & a["value"].notna()
    a["no_opinion"] = a["status"] == "no_opinion"
    a["unanswered"] = ~a["valid"] & ~a["no_opinion"]
    a["sat"] = [bool(v) and val in satisfied[i] for i, val, v in zip(a["item_id"], a["value"], a["valid"],
                                                                       strict=True)]
    a["dis"] = [bool(v) and val in dissatisfied[i] for i, val, v in zip(a["item_id"], a["value"], a["valid"],
                                                                          strict=True)]
    criteria: dict[str, dict[str, Any]] = {}
    for item in rated:
        rows = a[a["item_id"] == item.id]
        valid = rows[rows["valid"]]
        n, sat, dis = len(valid), int(valid["sat"].sum()), int(valid["dis"].sum())
        low, high = wilson(sat / n, n) if n else (None, None)
        weight = float(valid["weight"].sum())
        criteria[item.id] = {
            "factor": item.factor, "n": n, "sat": sat, "dis": dis, "no_opinion": int(rows["no_opinion"].sum()),
            "unanswered": int(rows["unanswered"].sum()), "index": 100 * sat / n if n else None,
            "low": low, "high": high, "mean": float(valid["value"].mean()) if n else None,
            "weighted": 100 * float(valid.loc[valid["sat"], "weight"].sum()) / weight if weight else None,
            "share": dis / n if n else None, "flag": bool(n) and dis / n > 0.25,
        }
    factors: dict[str, dict[str, Any]] = {}
    influences: list[pd.Series] = []
    for factor in dict.fromkeys(i.factor for i in q.items if i.kind == "factor"):
        members = [k for k, c in criteria.items() if c["factor"] == factor and c["n"]]
        index = _mean(criteria[k]["index"] for k in members)
        rows = a[a["item_id"].isin(members) & a["valid"]].copy()
        rows["u"] = [(100.0 * s - criteria[k]["index"]) / (criteria[k]["n"] * len(members))
                     for k, s in zip(rows["item_id"], rows["sat"], strict=True)]
        influence = rows.groupby("interview_id")["u"].sum()
        if index is not None:
            influences.append(influence)
        low, high = clustered(index, influence)
        factors[factor] = {"index": index, "weighted": _mean(criteria[k]["weighted"] for k in members),
                           "n": sum(criteria[k]["n"] for k in members), "low": low, "high": high,
                           "respondents": len(influence)}
    service = _mean(f["index"] for f in factors.values())
    if influences:
        together = pd.concat(influences).groupby(level=0).sum() / len(influences)
    else:
        together = pd.Series(dtype=float)
    low, high = clustered(service, together)
    return Scores(respondents, criteria, factors, {
        "index": service, "low": low, "high": high,
        "weighted": _mean(f["weighted"] for f in factors.values())})


# ============================================================================ the data

@dataclass
class Data:
    q: Questionnaire
    t: dict[str, pd.DataFrame]
    people: pd.DataFrame = field(default_factory=pd.DataFrame)     # counted interviews of the scope
    answers: pd.DataFrame = field(default_factory=pd.DataFrame)    # their latest scored answers

    def group(self, interviews: Iterable[int]) -> Scores:
        ids = set(interviews)
        return score(self.q, self.answers[self.answers["interview_id"].isin(ids)], len(ids))


def counted(q: Questionnaire, t: dict[str, pd.DataFrame], campaigns: Iterable[int],
            period: tuple[pd.Timestamp, pd.Timestamp] | None) -> Data:
    iv = t["interviews"]
    keep = iv["campaign_id"].isin(list(campaigns)) & iv["status"].isin(["complete", "partial"])
    if period is not None:
        keep &= (iv["ended_at"] >= period[0]) & (iv["ended_at"] < period[1])
    contacts = t["contacts"][["id", "field", "procedure", "stratum_id", "stratum_weight"]].rename(
        columns={"id": "contact_id"})
    strata = t["strata"][["id", "agency"]].rename(columns={"id": "stratum_id", "agency": "unit"})
    officers = t["transactions"].dropna(subset=["contact_id"])[["contact_id", "officer"]]
    officers = officers.assign(contact_id=officers["contact_id"].astype("int64"))
    agencies = t["campaigns"][["id", "agency_id"]].rename(columns={"id": "campaign_id"})
    people = (iv.loc[keep, ["id", "campaign_id", "contact_id", "channel", "ended_at"]]
              .rename(columns={"id": "interview_id"})
              .merge(contacts, on="contact_id", how="left").merge(strata, on="stratum_id", how="left")
              .merge(officers, on="contact_id", how="left").merge(agencies, on="campaign_id", how="left"))
    assert people["interview_id"].is_unique
    consent = [i.id for i in q.items if i.kind == "consent"]
    latest = (t["answers"].sort_values("id").drop_duplicates(["interview_id", "item_id"], keep="last"))
    latest = latest[latest["interview_id"].isin(people["interview_id"]) & ~latest["item_id"].isin(consent)]
    latest = latest.merge(people[["interview_id", "stratum_weight"]], on="interview_id").rename(
        columns={"stratum_weight": "weight"})
    return Data(q, t, people, latest[["interview_id", "item_id", "value", "status", "weight"]])


def children_of(t: dict[str, pd.DataFrame]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for agency, parent in zip(t["agencies"]["id"], t["agencies"]["parent_id"], strict=True):
        if pd.notna(parent):
            out.setdefault(int(parent), []).append(int(agency))
    return out


def below(children: Mapping[int, list[int]], root: int) -> list[int]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(children.get(node, ()))
    return found


def eligible_of(t: dict[str, pd.DataFrame], campaigns: Iterable[int]) -> int:
    strata = t["strata"]
    return int(strata.loc[strata["campaign_id"].isin(list(campaigns)), "eligible"].sum())


def rollup(d: Data, children: Mapping[int, list[int]], node: int, campaigns: list[int]
           ) -> tuple[dict[str, float | None], int]:
    """A node's rolled-up indices and eligible N: its own campaigns pooled (N their strata)
    and each child's rollup (N its subtree's), Σ N·x / Σ N over components with a value."""
    parts: list[tuple[int, dict[str, float | None]]] = []
    own = d.people[d.people["agency_id"] == node]
    if len(own):
        mine = [c for c in campaigns if c in set(own["campaign_id"])]
        parts.append((eligible_of(d.t, mine), d.group(own["interview_id"]).figures()))
    for child in children.get(node, ()):
        figures, n_eligible = rollup(d, children, child, campaigns)
        parts.append((n_eligible, figures))
    keys = {k for _n, f in parts for k in f}
    combined: dict[str, float | None] = {}
    for key in keys:
        kept = [(n, f[key]) for n, f in parts if f.get(key) is not None and n > 0]
        total = sum(n for n, _ in kept)
        combined[key] = sum(n * x for n, x in kept) / total if total else None
    return combined, sum(n for n, _ in parts)


def competition_rank(values: Mapping[str, float | None]) -> dict[str, int]:
    ordered = sorted((v for v in values.values() if v is not None), reverse=True)
    return {k: 1 + ordered.index(v) for k, v in values.items() if v is not None}


# ============================================================================ comparing

class Checker:
    def __init__(self, path: Path) -> None:
        self.book = load_workbook(path)
        self.problems: list[str] = []
        self.checked = 0

    def rows(self, sheet: str) -> list[tuple[Any, ...]]:
        """The data rows (row 5 on) of a sheet; the header row is checked to be row 4."""
        ws = self.book[sheet]
        assert ws.cell(1, 1).value and ws.cell(4, 1).value, f"{sheet}: title in row 1, headers in row 4"
        return [tuple(r) for r in ws.iter_rows(min_row=5, values_only=True)]

    def by_key(self, sheet: str, col: int = 0) -> dict[Any, tuple[Any, ...]]:
        return {r[col]: r for r in self.rows(sheet) if r[col] is not None}

    def eq(self, where: str, expected: Any, got: Any) -> None:
        self.checked += 1
        if isinstance(expected, float) or isinstance(got, float):
            if expected is None or got is None or not isinstance(got, int | float) or not math.isclose(
                    float(expected), float(got), rel_tol=REL, abs_tol=1e-12):
                self.problems.append(f"{where}: expected {expected!r}, got {got!r}")
        elif expected != got:
            self.problems.append(f"{where}: expected {expected!r}, got {got!r}")

    def pct(self, where: str, expected: float | None, got: Any) -> None:
        """An index in percent against the fraction the workbook stores."""
        self.eq(where, None if expected is None else expected / 100, got)


YES, NO = "Có", "Không"


def check_indices(c: Checker, q: Questionnaire, s: Scores, roll: Mapping[str, float | None]) -> None:
    rows = c.rows("Chỉ số")
    sheet = "Chỉ số"
    expected_order = ["SIPAS"]
    for factor in s.factors:
        expected_order.append(factor)
        expected_order += [k for k, v in s.criteria.items() if v["factor"] == factor]
    expected_order += [i.id for i in q.items if i.kind == "overall"]
    c.eq(f"{sheet} codes in column A", expected_order, [r[0] for r in rows[:len(expected_order)]])
    found = {r[0]: r for r in rows[:len(expected_order)]}
    sip = found["SIPAS"]
    c.pct(f"{sheet} SIPAS index", s.service["index"], sip[8])
    c.pct(f"{sheet} SIPAS CI low", s.service["low"], sip[9])
    c.pct(f"{sheet} SIPAS CI high", s.service["high"], sip[10])
    c.pct(f"{sheet} SIPAS weighted", s.service["weighted"], sip[12])
    c.pct(f"{sheet} SIPAS rolled up", roll["service"], sip[13])
    for factor, f in s.factors.items():
        r = found[factor]
        c.eq(f"{sheet} factor {factor} n", f["n"], r[3])
        c.pct(f"{sheet} factor {factor} index", f["index"], r[8])
        c.pct(f"{sheet} factor {factor} CI low", f["low"], r[9])
        c.pct(f"{sheet} factor {factor} CI high", f["high"], r[10])
        c.pct(f"{sheet} factor {factor} weighted", f["weighted"], r[12])
        c.pct(f"{sheet} factor {factor} rolled up", roll[f"F:{factor}"], r[13])
    for key, v in s.criteria.items():
        r = found[key]
        for col, name in ((3, "n"), (4, "sat"), (5, "dis"), (6, "no_opinion"), (7, "unanswered")):
            c.eq(f"{sheet} {key} {name}", v[name], r[col])
        c.pct(f"{sheet} {key} index", v["index"], r[8])
        c.pct(f"{sheet} {key} Wilson low", v["low"], r[9])
        c.pct(f"{sheet} {key} Wilson high", v["high"], r[10])
        c.eq(f"{sheet} {key} mean", v["mean"], r[11])
        c.pct(f"{sheet} {key} weighted", v["weighted"], r[12])
        c.pct(f"{sheet} {key} rolled up", roll[key], r[13])
        c.eq(f"{sheet} {key} dissatisfied share", v["share"], r[14])
        c.eq(f"{sheet} {key} flag", YES if v["flag"] else NO, r[15])
    ws = c.book[sheet]
    assert len(ws._charts) >= len(s.factors) + 1, f"{sheet}: {len(ws._charts)} charts"


def rates(t: dict[str, pd.DataFrame], campaigns: list[int]) -> dict[str, float | None]:
    codes = t["contacts"].loc[t["contacts"]["campaign_id"].isin(campaigns), "disposition"].dropna()
    kinds = codes.map(lambda d: "I" if d == "1.1" else "P" if d == "1.2" else "R" if d.startswith("2.1") else
                      "NC" if d.startswith("2.2") else "O" if d.startswith("2.3") else "U" if d.startswith("3")
                      else "NE" if d.startswith("4") else "?")
    n = kinds.value_counts()
    i, p, r, nc, o, u, ne = (int(n.get(k, 0)) for k in ("I", "P", "R", "NC", "O", "U", "NE"))
    assert int(n.get("?", 0)) == 0
    base = (i + p) + (r + nc + o)
    e = base / (base + ne) if base + ne else 1.0
    return {"RR1": i / (base + u), "RR3": i / (base + e * u), "COOP1": i / ((i + p) + r + o),
            "REF1": r / (base + u), "CON1": ((i + p) + r + o) / (base + u),
            "completes": i, "partials": p}


def check_cover(c: Checker, d: Data, campaigns: list[int], s: Scores, roll: Mapping[str, float | None]) -> None:
    cover = {r[0]: r[1] for r in c.rows("Tổng quan")}
    strata = d.t["strata"][d.t["strata"]["campaign_id"].isin(campaigns)]
    contacts = d.t["contacts"][d.t["contacts"]["campaign_id"].isin(campaigns)]
    r = rates(d.t, campaigns)
    where = "Tổng quan"
    c.eq(f"{where} campaigns", len(campaigns), cover["Số chiến dịch"])
    c.eq(f"{where} N eligible", int(strata["eligible"].sum()), cover["Tổng thể đủ điều kiện (N)"])
    c.eq(f"{where} n drawn", int(strata["drawn"].sum()), cover["Cỡ mẫu (n)"])
    c.eq(f"{where} contacts", len(contacts), cover["Số người trong mẫu"])
    c.eq(f"{where} completes", r["completes"], cover["Hoàn thành (I)"])
    c.eq(f"{where} partials", r["partials"], cover["Trả lời một phần (P)"])
    c.eq(f"{where} responses counted", len(d.people), cover["Số phiếu được tính"])
    for rate in ("RR1", "RR3", "COOP1", "REF1", "CON1"):
        c.eq(f"{where} {rate}", r[rate], cover[rate])
    c.pct(f"{where} service index", s.service["index"], cover["Chỉ số hài lòng về sự phục vụ hành chính"])
    c.pct(f"{where} rolled-up service index", roll["service"], cover["Chỉ số tổng hợp theo đơn vị (trọng số N)"])
    overall = next(i.id for i in d.q.items if i.kind == "overall")
    c.pct(f"{where} overall index", s.criteria[overall]["index"], cover["Mức độ hài lòng chung"])
    c.eq(f"{where} distance to target", s.service["index"] - 80.0, cover["Chênh lệch so với mục tiêu"])
    c.eq(f"{where} criteria flagged", len(s.flagged()), cover["Số tiêu chí trên 25% không hài lòng"])
    local = d.people["ended_at"].dt.tz_convert(ZONE)
    c.eq(f"{where} fieldwork", f"{local.min():%d/%m/%Y} – {local.max():%d/%m/%Y}", cover["Thời gian khảo sát"])
    channels = ", ".join(sorted(set(d.people["channel"])))
    c.eq(f"{where} channels", channels, cover["Kênh khảo sát"])


def unit_entries(d: Data, children: Mapping[int, list[int]], root: int, campaigns: list[int]
                 ) -> dict[str, dict[str, Any]]:
    """The node's own campaigns (if they have respondents) and each unit directly below it
    with respondents in its subtree: N, respondents, rolled-up figures, flagged criteria
    (the unit's answers pooled)."""
    agencies = d.t["agencies"]
    codes = dict(zip(agencies["id"], agencies["code"], strict=True))
    names = dict(zip(agencies["id"], agencies["name"], strict=True))
    entries: dict[str, dict[str, Any]] = {}
    own = d.people[d.people["agency_id"] == root]
    if len(own):
        mine = [k for k in campaigns if k in set(own["campaign_id"])]
        s = d.group(own["interview_id"])
        entries[codes[root]] = {"N": eligible_of(d.t, mine), "n": len(own), "fig": s.figures(), "scores": s,
                                "name": names[root], "own": True}
    for child in sorted(children.get(root, ()), key=lambda a: names[a]):
        members = d.people[d.people["agency_id"].isin(below(children, child))]
        if not len(members):
            continue
        fig, n_eligible = rollup(d, children, child, campaigns)
        entries[codes[child]] = {"N": n_eligible, "n": len(members), "fig": fig, "name": names[child],
                                 "scores": d.group(members["interview_id"]), "own": False}
    for e in entries.values():
        e["flags"] = e["scores"].flagged()
    return entries


def check_flagged(c: Checker, s: Scores, entries: Mapping[str, dict[str, Any]]) -> None:
    """Cảnh báo: the node's criteria above 25 % dissatisfied, then each unit's (units below
    the minimum left out)."""
    expected = [("Toàn bộ", k, v["n"], v["dis"], v["share"]) for k, v in s.criteria.items() if v["flag"]]
    for e in entries.values():
        if e["n"] < MIN_N:
            continue
        label = f"{e['name']} (các chiến dịch của chính cơ quan)" if e["own"] and len(entries) > 1 else e["name"]
        expected += [(label, k, v["n"], v["dis"], v["share"]) for k, v in e["scores"].criteria.items() if v["flag"]]
    got = [(r[0], r[1], r[3], r[4], r[5]) for r in c.rows("Cảnh báo") if r[0] is not None]
    c.eq("Cảnh báo rows (unit, item)", [e[:2] for e in expected], [g[:2] for g in got])
    for e, g in zip(expected, got, strict=False):
        c.eq(f"Cảnh báo {e[0]} {e[1]} n", e[2], g[2])
        c.eq(f"Cảnh báo {e[0]} {e[1]} dissatisfied", e[3], g[3])
        c.eq(f"Cảnh báo {e[0]} {e[1]} share", e[4], g[4])


def check_design(c: Checker, d: Data, campaigns: list[int]) -> None:
    """Chiến dịch (eligible, drawn, contacts, responses in the period) and Tầng mẫu."""
    strata = d.t["strata"][d.t["strata"]["campaign_id"].isin(campaigns)]
    rows = c.by_key("Chiến dịch")
    c.eq("Chiến dịch ids", sorted(campaigns), sorted(rows))
    per = d.people["campaign_id"].value_counts()
    for k in campaigns:
        r = rows.get(k)
        if r is None:
            continue
        mine = strata[strata["campaign_id"] == k]
        c.eq(f"Chiến dịch {k} N", int(mine["eligible"].sum()), r[7])
        c.eq(f"Chiến dịch {k} n drawn", int(mine["drawn"].sum()), r[8])
        c.eq(f"Chiến dịch {k} contacts", int((d.t["contacts"]["campaign_id"] == k).sum()), r[9])
        c.eq(f"Chiến dịch {k} responses in period", int(per.get(k, 0)), r[10])
    expected = sorted((int(a), str(b), str(f), int(e), int(n)) for a, b, f, e, n in zip(
        strata["campaign_id"], strata["agency"], strata["field"], strata["eligible"], strata["drawn"], strict=True))
    got = [(r[0], r[1], r[2], r[3], r[4]) for r in c.rows("Tầng mẫu") if r[0] is not None]
    c.eq("Tầng mẫu rows", expected, got)
    weights = dict(zip(zip(strata["campaign_id"], strata["field"], strict=True), strata["weight"], strict=True))
    for r in c.rows("Tầng mẫu"):
        if r[0] is not None:
            c.eq(f"Tầng mẫu {r[0]} {r[2]} weight", float(weights[(r[0], r[2])]), r[5])


def check_units(c: Checker, d: Data, entries: Mapping[str, dict[str, Any]], root_code: str,
                roll: Mapping[str, float | None]) -> None:
    ranks = competition_rank({k: (None if e["n"] < MIN_N else e["fig"]["service"]) for k, e in entries.items()})
    where = "Đơn vị"
    rows = {r[1]: r for r in c.rows(where) if r[1] is not None and r[2] != "Toàn bộ"}
    c.eq(f"{where} units listed", sorted(entries), sorted(rows))
    factors = list(dict.fromkeys(i.factor for i in d.q.items if i.kind == "factor"))
    overall = next(i.id for i in d.q.items if i.kind == "overall")
    for code, e in entries.items():
        r = rows.get(code)
        if r is None:
            c.problems.append(f"{where}: no row for {code}")
            continue
        hidden = e["n"] < MIN_N
        c.eq(f"{where} {code} rank", ranks.get(code), r[0])
        c.eq(f"{where} {code} N", e["N"], r[3])
        c.eq(f"{where} {code} respondents", e["n"], r[4])
        c.pct(f"{where} {code} service (rolled up)", None if hidden else e["fig"]["service"], r[5])
        c.pct(f"{where} {code} overall (rolled up)", None if hidden else e["fig"][overall], r[6])
        for k, factor in enumerate(factors):
            c.pct(f"{where} {code} factor {factor}", None if hidden else e["fig"][f"F:{factor}"], r[7 + k])
        c.eq(f"{where} {code} criteria flagged", len(e["flags"]), r[7 + len(factors)])
    order = sorted(entries, key=lambda k: (ranks.get(k) is None, ranks.get(k) or 0, entries[k]["name"]))
    c.eq(f"{where} order", order, [r[1] for r in c.rows(where) if r[1] is not None and r[2] != "Toàn bộ"])
    total = [r for r in c.rows(where) if r[2] == "Toàn bộ"]
    assert len(total) == 1
    c.eq(f"{where} total code", root_code, total[0][1])
    c.eq(f"{where} total N", sum(e["N"] for e in entries.values()), total[0][3])
    c.eq(f"{where} total respondents", sum(e["n"] for e in entries.values()), total[0][4])
    c.pct(f"{where} total service", roll["service"], total[0][5])
    c.pct(f"{where} total overall", roll[overall], total[0][6])


def check_breakdown(c: Checker, d: Data, sheet: str, column: str) -> None:
    factors = list(dict.fromkeys(i.factor for i in d.q.items if i.kind == "factor"))
    overall = next(i.id for i in d.q.items if i.kind == "overall")
    values = d.people[column].where(d.people[column].notna() & (d.people[column] != ""))
    groups = {str(v): g["interview_id"] for v, g in d.people[values.notna()].groupby(column)}
    if not groups:
        assert sheet not in c.book.sheetnames, f"{sheet}: a sheet without groups"
        return
    rows = c.by_key(sheet)
    c.eq(f"{sheet} groups", sorted(groups), sorted(rows))
    order = sorted(groups, key=lambda v: (-len(groups[v]), v))
    c.eq(f"{sheet} order", order, [r[0] for r in c.rows(sheet) if r[0] is not None])
    for value, ids in groups.items():
        r = rows.get(value)
        if r is None:
            continue
        c.eq(f"{sheet} {value!r} respondents", len(ids), r[1])
        cells = r[2:6 + len(factors)]
        if len(ids) < MIN_N:
            c.eq(f"{sheet} {value!r} suppressed", [f"<{MIN_N}"] * len(cells), list(cells))
            continue
        s = d.group(ids)
        c.pct(f"{sheet} {value!r} service index", s.service["index"], r[2])
        c.pct(f"{sheet} {value!r} service CI low", s.service["low"], r[3])
        c.pct(f"{sheet} {value!r} service CI high", s.service["high"], r[4])
        c.pct(f"{sheet} {value!r} overall index", s.criteria[overall]["index"], r[5])
        for k, factor in enumerate(factors):
            c.pct(f"{sheet} {value!r} factor {factor}", s.factors[factor]["index"], r[6 + k])
        c.eq(f"{sheet} {value!r} flagged", ", ".join(s.flagged()), r[6 + len(factors)] or "")


def check_needs(c: Checker, d: Data) -> None:
    items = [i for i in d.q.items if i.kind == "needs"]
    a = d.answers[d.answers["item_id"].isin([i.id for i in items]) & (d.answers["status"] == "answered")
                  & d.answers["value"].notna()]
    expected: dict[str, dict[str, Any]] = {}
    for item in items:
        values = a.loc[a["item_id"] == item.id, "value"].astype(int)
        n = len(values)
        top = max(item.scale.values)
        expected[item.id] = {"n": n, "counts": values.value_counts().to_dict(),
                             "mean": float(values.mean()) if n else None,
                             "top": 100 * int((values == top).sum()) / n if n else None,
                             "levels": sorted(item.scale.values, reverse=True)}
    ranks = competition_rank({k: v["mean"] for k, v in expected.items()})
    rows = c.by_key("Nhu cầu", col=1)
    c.eq("Nhu cầu items", sorted(expected), sorted(rows))
    for key, e in expected.items():
        r = rows[key]
        c.eq(f"Nhu cầu {key} rank", ranks.get(key), r[0])
        c.eq(f"Nhu cầu {key} n", e["n"], r[3])
        for k, level in enumerate(e["levels"]):
            c.eq(f"Nhu cầu {key} answers at {level}", int(e["counts"].get(level, 0)), r[4 + k])
        c.eq(f"Nhu cầu {key} mean", e["mean"], r[4 + len(e["levels"])])
        c.pct(f"Nhu cầu {key} share at the top level", e["top"], r[5 + len(e["levels"])])


def _p(z: float) -> float:
    return 2 * (1 - NormalDist().cdf(abs(z)))


def check_change(c: Checker, now: Scores, before: Scores) -> None:
    rows = c.by_key("So sánh")
    sheet = "So sánh"

    def line(key: str, prev: float | None, prev_n: int, cur: float | None, cur_n: int,
             zp: tuple[float | None, float | None]) -> None:
        r = rows.get(key)
        if r is None:
            c.problems.append(f"{sheet}: no row {key}")
            return
        c.pct(f"{sheet} {key} previous", prev, r[2])
        c.eq(f"{sheet} {key} previous n", prev_n, r[3])
        c.pct(f"{sheet} {key} current", cur, r[4])
        c.eq(f"{sheet} {key} current n", cur_n, r[5])
        c.eq(f"{sheet} {key} difference (points)", None if prev is None or cur is None else cur - prev, r[6])
        # z and p are printed with 2 and 3 decimals: compared to 1e-6 (the test's own normal
        # distribution, not the report's erfc)
        for col, name, value in ((7, "z", zp[0]), (8, "p", zp[1])):
            c.checked += 1
            if value is None or r[col] is None or abs(value - r[col]) > 1e-6:
                c.problems.append(f"{sheet} {key} {name}: expected {value!r}, got {r[col]!r}")
        c.eq(f"{sheet} {key} significant", None if zp[1] is None else (YES if zp[1] < 0.05 else NO), r[9])

    def from_ci(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float | None, float | None]:
        se = math.hypot((a["high"] - a["low"]) / (2 * Z), (b["high"] - b["low"]) / (2 * Z))
        z = (b["index"] - a["index"]) / se
        return z, _p(z)

    line("SIPAS", before.service["index"], before.respondents, now.service["index"], now.respondents,
         from_ci(before.service, now.service))
    for factor, f in now.factors.items():
        old = before.factors[factor]
        line(factor, old["index"], old["respondents"], f["index"], f["respondents"], from_ci(old, f))
    for key, v in now.criteria.items():
        old = before.criteria[key]
        x1, n1, x2, n2 = old["sat"], old["n"], v["sat"], v["n"]
        pooled = (x1 + x2) / (n1 + n2)
        z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        line(key, old["index"], n1, v["index"], n2, (z, _p(z)))
    c.eq(f"{sheet} rows", 1 + len(now.factors) + len(now.criteria), len([r for r in c.rows(sheet) if r[0]]))


def qr_status(q: Questionnaire, answers: Mapping[str, Any], status: str, updated: pd.Timestamp) -> str:
    """A QR form's status as scored at NOW: one idle longer than an hour has been left and
    counts as complete (flow at its end, ≥ 80 % of the applicable rated items responded to),
    partial (≥ 50 %) or break-off; consent is asked by voice only."""
    if status != "in_progress" or pd.Timestamp(NOW) - updated <= IDLE:
        return status

    def applies(item: Any) -> bool:
        cond = item.condition
        return cond is None or (cond.item in answers and answers[cond.item].get("value") in cond.values)

    web = [i for i in q.items if "web" in i.channels and applies(i)]
    at_end = all(i.id in answers for i in web)
    rated = [i for i in web if i.kind in ("factor", "overall")]
    responded = [i for i in rated if i.id in answers and answers[i.id].get("status") != "unanswered"]
    share = len(responded) / len(rated) if rated else 1.0
    if at_end and share >= 0.8:
        return "complete"
    return "partial" if rated and share >= 0.5 else "break_off"


def check_qr(c: Checker, q: Questionnaire, t: dict[str, pd.DataFrame], agencies: list[int]) -> None:
    posters = t["qr_posters"][t["qr_posters"]["agency_id"].isin(agencies)]
    r = t["qr_responses"]
    r = r[r["poster_id"].isin(posters["id"]) & (r["started_at"] >= Q3[0]) & (r["started_at"] < Q3[1])].copy()
    r["answers"] = [a if isinstance(a, dict) else json.loads(a) for a in r["answers"]]
    r["settled"] = [qr_status(q, a, s, u) for a, s, u in zip(r["answers"], r["status"], r["updated_at"],
                                                              strict=True)]
    kept = r[r["settled"].isin(["complete", "partial"])]
    long = pd.DataFrame([{"interview_id": rid, "item_id": k, "value": v.get("value"), "status": v.get("status"),
                          "weight": 1.0} for rid, a in zip(kept["id"], kept["answers"], strict=True)
                         for k, v in a.items()], columns=["interview_id", "item_id", "value", "status", "weight"])
    s = score(q, long, len(kept))
    rows = c.rows("QR tự chọn")
    items = {row[1]: row for row in rows if row[1] in s.criteria}
    c.eq("QR tự chọn items", sorted(s.criteria), sorted(items))
    for key, v in s.criteria.items():
        row = items.get(key)
        if row is None:
            continue
        c.eq(f"QR tự chọn {key} n", v["n"], row[3])
        c.eq(f"QR tự chọn {key} satisfied", v["sat"], row[4])
        c.pct(f"QR tự chọn {key} index", v["index"], row[5])
    service = [row for row in rows if row[1] == "SIPAS"]
    c.eq("QR tự chọn SIPAS n", s.respondents, service[0][3])
    c.pct("QR tự chọn SIPAS index", s.service["index"], service[0][5])
    counts = r["settled"].value_counts().to_dict()
    statuses = ["in_progress", "complete", "partial", "break_off", "refused"]
    text = ", ".join(f"{k}: {counts.get(k, 0)}" for k in sorted(statuses))
    c.eq("QR tự chọn forms by status", text, next(row[2] for row in rows if row[0] == "Số phiếu theo trạng thái"))
    # the seed's in-progress forms are all left by NOW, so both statuses are exercised
    assert counts.get("complete", 0) and counts.get("partial", 0), counts


def check_privacy(c: Checker, t: dict[str, pd.DataFrame]) -> None:
    phones = set(t["contacts"]["phone_e164"]) | set(t["transactions"]["phone_e164"])
    forms = set(phones) | {"0" + p.removeprefix("+84") for p in phones} | {p.removeprefix("+") for p in phones}
    numbers = {int(p.removeprefix("+")) for p in phones} | {int(p.removeprefix("+84")) for p in phones}
    names = set(t["contacts"]["name"].dropna())
    assert names
    for ws in c.book.worksheets:
        for row in ws.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, str):
                    assert NAME not in value, f"{ws.title}: a citizen's name in {value!r}"
                    assert not any(f in value for f in forms), f"{ws.title}: a phone number in {value!r}"
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    assert value not in numbers, f"{ws.title}: a phone number as a number, {value!r}"


# ============================================================================ the tests

def _seed(app: Any) -> tuple[Any, Any, Any, dict[str, int], dict[str, int]]:
    svc = app.extensions["sipas"]
    q = svc.registry.get("sipas-2024")
    seeded = seed_province(svc.db, q)
    with svc.db.begin() as session:
        # Citizens' names on every contact (the seed leaves them empty).
        session.execute(update(Contact).values(name=literal(f"{NAME} ") + cast(Contact.id, String)))
        # A later call answered some items again: the later answer must count. A few
        # interviews per unit, in both periods; values chosen to move the figures.
        iv = session.execute(Interview.__table__.select().order_by(Interview.id)).mappings().all()
        again = [r for r in iv if r["status"] in ("complete", "partial")][::13]
        for k, r in enumerate(again):
            attempt = session.scalar(insert(Attempt).returning(Attempt.id).values(
                contact_id=r["contact_id"], campaign_id=r["campaign_id"], channel="voice", number=2,
                status=AttemptStatus.COMPLETED, outcome="completed", provider="simulator",
                token=f"x{r['contact_id']:031d}"))
            redo = [("C01", 5, "answered"), ("C05", 1, "answered"), ("OVERALL", None, "no_opinion"),
                    ("C09", 2 if k % 2 else 4, "answered")]
            session.execute(insert(Answer), [
                {"interview_id": r["id"], "attempt_id": attempt, "item_id": item, "value": value, "status": status,
                 "digits": str(value or 0)} for item, value, status in redo])
    return svc, q, seeded, seeded.agencies, seeded.campaigns


def test_province_report_recomputed(app: Any, tmp_path: Path) -> None:
    svc, q, _seeded, agencies, _campaigns = _seed(app)
    root = agencies["PROV"]
    with svc.db.begin() as session:
        path = reports.generate(session, svc.registry, NOW, tmp_path, agency_id=root, period="2026-Q3")
    t = _read(svc.db.engine)
    children = children_of(t)
    tree = below(children, root)
    in_tree = t["campaigns"][t["campaigns"]["agency_id"].isin(tree)]["id"].tolist()
    d = counted(q, t, in_tree, Q3)
    campaigns = sorted(set(d.people["campaign_id"]))          # those with counted interviews
    assert len(d.people) > 200 and len(campaigns) == 5
    # the seed's interviews exactly at both local midnights (and just inside, just outside)
    ended = t["interviews"]["ended_at"]
    assert (ended == Q3[0]).any() and (ended == Q3[1]).any()
    assert ((ended == Q3[0]) & t["interviews"]["id"].isin(d.people["interview_id"])).any()
    assert not ((ended == Q3[1]) & t["interviews"]["id"].isin(d.people["interview_id"])).any()
    s = d.group(d.people["interview_id"])
    roll, _n = rollup(d, children, root, campaigns)
    before = counted(q, t, in_tree, Q2)
    c = Checker(path)
    check_indices(c, q, s, roll)
    check_cover(c, d, campaigns, s, roll)
    entries = unit_entries(d, children, root, campaigns)
    check_units(c, d, entries, "PROV", roll)
    check_flagged(c, s, entries)
    check_design(c, d, campaigns)
    for sheet, column in (("Lĩnh vực", "field"), ("Thủ tục", "procedure"), ("Bộ phận", "unit"),
                          ("Công chức", "officer")):
        check_breakdown(c, d, sheet, column)
    check_needs(c, d)
    check_change(c, s, before.group(before.people["interview_id"]))
    check_qr(c, q, t, tree)
    check_privacy(c, t)
    assert c.checked > 850   # 909 figures at this seed
    assert not c.problems, f"{len(c.problems)} of {c.checked} figures differ:\n" + "\n".join(c.problems)


def test_campaign_report_recomputed(app: Any, tmp_path: Path) -> None:
    svc, q, _seeded, agencies, campaigns = _seed(app)
    campaign = campaigns["XA1"]
    with svc.db.begin() as session:
        path = reports.generate(session, svc.registry, NOW, tmp_path, campaign_id=campaign)
    t = _read(svc.db.engine)
    d = counted(q, t, [campaign], None)        # the whole campaign: no period
    s = d.group(d.people["interview_id"])
    # One campaign, one agency: the rollup is the campaign's own figures.
    roll, n_eligible = rollup(d, {}, agencies["XA1"], [campaign])
    assert n_eligible == eligible_of(t, [campaign])
    c = Checker(path)
    check_indices(c, q, s, roll)
    check_cover(c, d, [campaign], s, roll)
    check_flagged(c, s, unit_entries(d, {}, agencies["XA1"], [campaign]))
    check_design(c, d, [campaign])
    assert "Đơn vị" not in c.book.sheetnames and "So sánh" not in c.book.sheetnames
    assert "QR tự chọn" not in c.book.sheetnames      # QR answers belong to agency reports only
    for sheet, column in (("Lĩnh vực", "field"), ("Thủ tục", "procedure"), ("Bộ phận", "unit"),
                          ("Công chức", "officer")):
        check_breakdown(c, d, sheet, column)
    check_needs(c, d)
    check_privacy(c, t)
    assert c.checked > 480   # 516 figures at this seed
    assert not c.problems, f"{len(c.problems)} of {c.checked} figures differ:\n" + "\n".join(c.problems)
