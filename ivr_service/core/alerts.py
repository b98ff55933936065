"""Alerts to a unit's leaders (seeds 001 and 003): which criteria of a unit cross the
dissatisfied threshold in a reporting period, and what the mail and the webhook say.

A criterion (one of the 16, or the overall item) crosses when more than 25 % of its valid
answers are dissatisfied (:data:`core.scoring.DISSATISFIED_FLAG_SHARE`, the score's own
``dissatisfied_flag``) and it has at least ``min_answers`` valid answers: below that a share
moves too much from one answer to the next to wake anyone (:data:`scoring.SMALL_CELL`).

The texts hold the unit, the criterion and the counts; never a citizen's number or name
(an alert has none to give).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .programmes import Period, period_of
from .questionnaire import Questionnaire
from .scoring import DISSATISFIED_FLAG_SHARE, CriterionScore, Respondent, score_item

SIGNATURE_HEADER = "X-SIPAS-Signature"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def item_scores(q: Questionnaire, respondents: Sequence[Respondent]) -> list[CriterionScore]:
    """The score of every rated item (the criteria, then the overall item)."""
    return [score_item(item, respondents) for item in q.rated_items]


def crossings(scores: Iterable[CriterionScore], min_answers: int) -> list[CriterionScore]:
    """The scores that call for an alert: more than 25 % dissatisfied (exactly 25 % does
    not) on at least ``min_answers`` valid answers."""
    return [s for s in scores if s.n >= min_answers and s.dissatisfied_flag]


@dataclass(frozen=True)
class AlertFacts:
    """What an alert tells: the unit, the criterion, the period and the counts."""

    alert_id: int
    agency_id: int
    agency_name: str
    agency_code: str
    item_id: str
    text_vi: str
    text_en: str | None
    questionnaire: str
    period: str                 # 2026-11, 2026-Q4, 2026-H2
    n: int
    n_dissatisfied: int
    share: float                # 0..1
    min_answers: int
    created_at: datetime
    url: str                    # the alert's console page

    @property
    def text(self) -> str:
        return self.text_en or self.text_vi


def period_from_label(label: str) -> Period:
    """The period a label names: 2026-11, 2026-Q4, 2026-H2 (``core.programmes.period_of``'s labels)."""
    year, _, part = label.partition("-")
    if part.startswith("Q"):
        return period_of("quarter", date(int(year), 3 * int(part[1:]) - 2, 1))
    if part.startswith("H"):
        return period_of("half", date(int(year), 6 * int(part[1:]) - 5, 1))
    return period_of("month", date(int(year), int(part), 1))


def percent(share: float, lang: str) -> str:
    """``0.3125`` → ``31,3%`` (vi) / ``31.3%`` (en)."""
    shown = f"{100 * share:.1f}"
    return (shown.replace(".", ",") if lang == "vi" else shown) + "%"


def period_text(label: str, lang: str) -> str:
    """A period label in words: 2026-11 → "tháng 11/2026" / "November 2026"."""
    year, _, part = label.partition("-")
    if part.startswith("Q"):
        return f"quý {part[1:]}/{year}" if lang == "vi" else f"Q{part[1:]} {year}"
    if part.startswith("H"):
        if lang == "vi":
            return f"6 tháng {'đầu' if part == 'H1' else 'cuối'} năm {year}"
        return f"{'first' if part == 'H1' else 'second'} half of {year}"
    month = int(part)
    if lang == "vi":
        return f"tháng {month}/{year}"
    return f"{MONTHS[month - 1]} {year}"


def subject(f: AlertFacts) -> str:
    return (f"[SIPAS] Cảnh báo: {percent(f.share, 'vi')} không hài lòng, tiêu chí {f.item_id}, "
            f"{f.agency_name}, {period_text(f.period, 'vi')} / Alert: {percent(f.share, 'en')} dissatisfied")


def body(f: AlertFacts) -> str:
    """The mail: Vietnamese first, English below."""
    threshold_vi, threshold_en = percent(DISSATISFIED_FLAG_SHARE, "vi"), percent(DISSATISFIED_FLAG_SHARE, "en")
    return "\n".join([
        "CẢNH BÁO MỨC ĐỘ HÀI LÒNG (SIPAS)",
        "",
        f"Đơn vị: {f.agency_name} (mã {f.agency_code})",
        f"Kỳ: {period_text(f.period, 'vi')} ({f.period})",
        f"Tiêu chí {f.item_id}: {f.text_vi}",
        f"Tỷ lệ không hài lòng: {percent(f.share, 'vi')} ({f.n_dissatisfied}/{f.n} câu trả lời hợp lệ), "
        f"vượt ngưỡng {threshold_vi}.",
        "",
        "Chỉ tính các cuộc khảo sát theo mẫu kết thúc trong kỳ (hoàn thành hoặc trả lời một phần), không tính "
        "phiếu tự nguyện qua mã QR; chỉ cảnh báo khi có từ "
        f"{f.min_answers} câu trả lời hợp lệ. Mỗi tiêu chí chỉ được cảnh báo một lần trong một kỳ.",
        "",
        f"Xem chi tiết: {f.url}",
        "",
        "--- English ---",
        "",
        "SATISFACTION ALERT (SIPAS)",
        "",
        f"Unit: {f.agency_name} (code {f.agency_code})",
        f"Period: {period_text(f.period, 'en')} ({f.period})",
        f"Criterion {f.item_id}: {f.text}",
        f"Dissatisfied: {percent(f.share, 'en')} ({f.n_dissatisfied} of {f.n} valid answers), "
        f"above the {threshold_en} threshold.",
        "",
        "Only sampled interviews that ended in the period count (complete or partial), not the self-selected "
        f"QR forms; an alert needs at least {f.min_answers} valid answers. Each criterion is alerted at most "
        "once per period.",
        "",
        f"Details: {f.url}",
        "",
    ])


def payload(f: AlertFacts) -> dict[str, Any]:
    """The webhook's JSON body."""
    return {
        "event": "sipas.alert",
        "id": f.alert_id,
        "agency": {"id": f.agency_id, "code": f.agency_code, "name": f.agency_name},
        "criterion": {"id": f.item_id, "text_vi": f.text_vi, "text_en": f.text_en},
        "questionnaire": f.questionnaire,
        "period": f.period,
        "n": f.n,
        "n_dissatisfied": f.n_dissatisfied,
        "share": f.share,
        "threshold": DISSATISFIED_FLAG_SHARE,
        "min_answers": f.min_answers,
        "created_at": f.created_at.isoformat(),
        "url": f.url,
    }


def signature(secret: str, raw: bytes) -> str:
    """The ``X-SIPAS-Signature`` value of a webhook body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
