"""The report workbook (XlsxWriter, native Excel charts): Vietnamese by default, English on
request. Every sheet has the same shape so people and programs can read it back: row 1 the
title, row 2 the scope and period, row 4 the column headers (frozen), data from row 5.
Indices are stored as fractions shown as percentages with one decimal; counts as integers.
Printable on A4 (landscape where wide, one page wide, headers repeated on every page).

Sheets, in order (English names in brackets); those marked * only when there is data:

1. Tổng quan (Cover): agency and its place in the tree, period, questionnaire, sample,
   fieldwork, contacts, completes, AAPOR rates, channels, the headline indices.
2. Chỉ số (Indices): service index, factors and criteria with n, 95 % intervals, weighted
   and rolled-up indices; criteria above 25 % dissatisfied highlighted; a bar chart per
   factor and one of the factors.
3. Cảnh báo (Flagged): the criteria above 25 % dissatisfied, for the node and per unit.
4. Đơn vị (Units)*: the units below the node ranked by their rolled-up service index.
5. Lĩnh vực, Thủ tục, Bộ phận, Công chức (Fields, Procedures, Units handling, Officers)*:
   breakdowns, groups below the minimum n suppressed and marked.
6. Nhu cầu (Needs)*: the 9 needs and expectations items ranked.
7. So sánh (Change)*: against the previous period, with z and p.
8. Chiến dịch (Campaigns) and Tầng mẫu (Strata): the sample design.
9. Phương pháp (Method): formulas, aggregation, weights, exclusions, rate definitions.
10. QR tự chọn (QR self-selected)*: never mixed into the indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from ..core.cells import safe_cell
from ..core.scoring import CriterionScore, ScoreReport
from ..persistence.files import private_dir, private_file

if TYPE_CHECKING:   # reports.py imports this module to write what it gathered
    from .reports import GroupRow, Report

HEADER_ROW = 3          # 0-based: row 4 in Excel
LANGS = ("vi", "en")

# Sheet names (at most 31 characters) and every label, Vietnamese first.
T: dict[str, tuple[str, str]] = {
    "sheet_cover": ("Tổng quan", "Cover"),
    "sheet_indices": ("Chỉ số", "Indices"),
    "sheet_flagged": ("Cảnh báo", "Flagged"),
    "sheet_units": ("Đơn vị", "Units"),
    "sheet_field": ("Lĩnh vực", "Fields"),
    "sheet_procedure": ("Thủ tục", "Procedures"),
    "sheet_unit": ("Bộ phận", "Handling units"),
    "sheet_officer": ("Công chức", "Officers"),
    "sheet_needs": ("Nhu cầu", "Needs"),
    "sheet_change": ("So sánh", "Change"),
    "sheet_campaigns": ("Chiến dịch", "Campaigns"),
    "sheet_strata": ("Tầng mẫu", "Strata"),
    "sheet_method": ("Phương pháp", "Method"),
    "sheet_qr": ("QR tự chọn", "QR self-selected"),
    "title": ("Báo cáo Chỉ số hài lòng về sự phục vụ hành chính (SIPAS)",
              "Report on satisfaction with public administrative services (SIPAS)"),
    "item": ("Mục", "Item"), "value": ("Giá trị", "Value"),
    "agency": ("Cơ quan, đơn vị", "Agency"), "agency_code": ("Mã cơ quan", "Agency code"),
    "tree": ("Thuộc", "Within"), "scope": ("Phạm vi", "Scope"),
    "scope_agency": ("Cơ quan và các đơn vị trực thuộc", "The agency and every unit below it"),
    "scope_campaign": ("Một chiến dịch khảo sát", "One survey campaign"),
    "period": ("Kỳ báo cáo", "Period"), "whole_campaign": ("Toàn bộ chiến dịch", "The whole campaign"),
    "kind_month": ("tháng", "month"), "kind_quarter": ("quý", "quarter"), "kind_half": ("6 tháng", "half-year"),
    "questionnaire": ("Bộ câu hỏi", "Questionnaire"), "campaigns": ("Số chiến dịch", "Campaigns"),
    "other_questionnaires": ("Chiến dịch dùng bộ câu hỏi khác (báo cáo riêng)",
                             "Campaigns on another questionnaire (reported separately)"),
    "design": ("Thiết kế mẫu", "Sample design"),
    "design_text": ("Chọn mẫu ngẫu nhiên phân tầng theo cơ quan × lĩnh vực; xem sheet Chiến dịch và Tầng mẫu",
                    "Stratified random sample by agency × field; see the Campaigns and Strata sheets"),
    "eligible": ("Tổng thể đủ điều kiện (N)", "Eligible population (N)"),
    "drawn": ("Cỡ mẫu (n)", "Sample drawn (n)"), "fieldwork": ("Thời gian khảo sát", "Fieldwork"),
    "contacts": ("Số người trong mẫu", "Sampled contacts"), "completes": ("Hoàn thành (I)", "Completes (I)"),
    "partials": ("Trả lời một phần (P)", "Partials (P)"),
    "respondents": ("Số phiếu được tính", "Responses counted"), "channels": ("Kênh khảo sát", "Channels"),
    "service_index": ("Chỉ số hài lòng về sự phục vụ hành chính", "Service-delivery satisfaction index"),
    "rollup_index": ("Chỉ số tổng hợp theo đơn vị (trọng số N)", "Rolled up by unit (weighted by N)"),
    "overall_index": ("Mức độ hài lòng chung", "Overall satisfaction"),
    "target": ("Mục tiêu", "Target"), "distance": ("Chênh lệch so với mục tiêu", "Distance to target"),
    "flagged_count": ("Số tiêu chí trên 25% không hài lòng", "Criteria above 25 % dissatisfied"),
    "generated": ("Thời điểm lập", "Generated at"),
    "code": ("Mã", "Code"), "factor": ("Yếu tố", "Factor"), "text": ("Nội dung", "Text"),
    "n": ("Số trả lời hợp lệ (n)", "Valid answers (n)"), "satisfied": ("Hài lòng", "Satisfied"),
    "dissatisfied": ("Không hài lòng", "Dissatisfied"), "no_opinion": ("Không ý kiến", "No opinion"),
    "unanswered": ("Không trả lời", "Unanswered"), "index": ("Chỉ số", "Index"),
    "ci_low": ("KTC 95% dưới", "95 % CI low"), "ci_high": ("KTC 95% trên", "95 % CI high"),
    "mean": ("Điểm trung bình", "Mean score"), "weighted": ("Chỉ số có trọng số", "Weighted index"),
    "rollup": ("Tổng hợp theo đơn vị", "Rolled up by unit"),
    "dissatisfied_share": ("Tỷ lệ không hài lòng", "Dissatisfied share"),
    "flag": ("Trên 25% không hài lòng", "Above 25 % dissatisfied"), "yes": ("Có", "Yes"), "no": ("Không", "No"),
    "overall_item": ("Mức độ hài lòng chung", "Overall satisfaction"),
    "whole": ("Toàn bộ", "All"), "unit": ("Đơn vị", "Unit"), "rank": ("Xếp hạng", "Rank"),
    "own": ("(các chiến dịch của chính cơ quan)", "(the agency's own campaigns)"),
    "flagged_criteria": ("Tiêu chí cảnh báo", "Flagged criteria"), "note": ("Ghi chú", "Note"),
    "suppressed": ("Ẩn: dưới %d phiếu", "Suppressed: fewer than %d responses"),
    "group": ("Nhóm", "Group"), "needs_rank_note": ("Xếp theo điểm trung bình (3 = rất nhiều, 1 = ít)",
                                                    "Ranked by mean (3 = a great deal, 1 = a little)"),
    "top_share": ("Tỷ lệ chọn mức cao nhất", "Share at the highest level"),
    "previous": ("Kỳ trước", "Previous"), "previous_n": ("n kỳ trước", "Previous n"),
    "current": ("Kỳ này", "This period"), "current_n": ("n kỳ này", "This n"),
    "difference": ("Chênh lệch (điểm %)", "Change (points)"), "significant": ("Khác biệt có ý nghĩa (p < 0,05)",
                                                                              "More than noise (p < 0.05)"),
    "measure": ("Chỉ tiêu", "Measure"), "campaign": ("Chiến dịch", "Campaign"), "name": ("Tên", "Name"),
    "status": ("Trạng thái", "Status"), "started": ("Bắt đầu", "Started"), "completed": ("Kết thúc", "Ended"),
    "seed": ("Hạt giống ngẫu nhiên", "Random seed"), "rule": ("Quy tắc cỡ mẫu", "Sample-size rule"),
    "in_period": ("Phiếu trong kỳ", "Responses in period"),
    "weight": ("Trọng số N_h/n_h", "Weight N_h/n_h"), "field": ("Lĩnh vực", "Field"),
    "topic": ("Nội dung", "Topic"), "statement": ("Cách tính", "Statement"),
    "qr_note": ("Phiếu tự chọn qua mã QR: không chọn mẫu, không gộp vào các chỉ số",
                "Self-selected QR answers: not a sample, never mixed into the indices"),
    "forms": ("Số phiếu theo trạng thái", "Forms by status"),
    "chart_factor": ("Chỉ số theo yếu tố", "Index by factor"),
    "no_data": ("Không có phiếu trong kỳ", "No responses in the period"),
}

METHOD: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("Phiếu được tính", "Responses counted"),
     ("Phiếu hoàn thành và trả lời một phần kết thúc trong kỳ (theo ngày địa phương); mỗi câu lấy câu trả lời "
      "sau cùng. Câu đồng ý tham gia không được tính điểm.",
      "Complete and partial interviews that ended in the period (local dates); for each item the latest "
      "answer counts. The consent question is not scored.")),
    (("Chỉ số tiêu chí", "Criterion index"),
     ("Tỷ lệ câu trả lời hài lòng (mức 4, 5 trên thang 5 mức) trên tổng số câu trả lời hợp lệ, tính bằng %.",
      "Share of valid answers that are satisfied (4 or 5 on the 5-level scale), in percent.")),
    (("Không ý kiến, không trả lời", "No opinion, unanswered"),
     ("Không tính vào mẫu số; được báo cáo riêng ở các cột Không ý kiến và Không trả lời.",
      "Left out of the denominator; reported separately in the No opinion and Unanswered columns.")),
    (("Chỉ số yếu tố và chỉ số chung", "Factor and service indices"),
     ("Chỉ số yếu tố = trung bình cộng các chỉ số tiêu chí của yếu tố; chỉ số hài lòng về sự phục vụ = "
      "trung bình cộng các chỉ số yếu tố (cách tổng hợp: {aggregation}).",
      "Factor index = mean of its criterion indices; service index = mean of the factor indices "
      "(aggregation: {aggregation}).")),
    (("Khoảng tin cậy 95%", "95 % intervals"),
     ("Tiêu chí: khoảng Wilson. Yếu tố và chỉ số chung: mỗi người trả lời là một cụm (tuyến tính hoá), "
      "khoảng Wilson tại cỡ mẫu hiệu dụng.",
      "Criteria: Wilson's interval. Factors and the service index: each respondent a cluster "
      "(linearisation), Wilson's interval at the effective sample size.")),
    (("Trọng số", "Weights"),
     ("Chỉ số có trọng số: mỗi phiếu nhân trọng số tầng N_h/n_h. Tổng hợp theo đơn vị: chỉ số của cơ quan = "
      "trung bình các chỉ số của các chiến dịch của chính cơ quan và của từng đơn vị trực thuộc, có trọng số "
      "là tổng thể đủ điều kiện N (cỡ khung mẫu sau loại trừ; với khảo sát sau giao dịch: số hồ sơ trả kết "
      "quả trong kỳ).",
      "Weighted index: each answer weighted by its stratum's N_h/n_h. Rolled up by unit: a node's index is "
      "the mean of its own campaigns' index and of each unit below it, weighted by eligible population N "
      "(the frame after exclusions; for post-transaction surveys, the dossiers returned in the period).")),
    (("Cảnh báo", "Flags"),
     ("Tiêu chí có tỷ lệ Không hài lòng + Rất không hài lòng trên 25% (Kế hoạch, seed 003).",
      "Criteria whose dissatisfied share (levels 1 and 2) is above 25 % (seed 003).")),
    (("Ẩn số liệu", "Suppression"),
     ("Nhóm (lĩnh vực, thủ tục, bộ phận, công chức, đơn vị) có ít hơn {min_n} phiếu: không hiển thị chỉ số, "
      "không xếp hạng.",
      "Groups (fields, procedures, units, officers) with fewer than {min_n} responses: indices not shown, "
      "not ranked.")),
    (("So sánh với kỳ trước", "Change against the previous period"),
     ("Tiêu chí: kiểm định z hai tỷ lệ. Yếu tố và chỉ số chung: sai số chuẩn lấy từ khoảng tin cậy 95% "
      "(nửa độ rộng / 1,96). Khác biệt có ý nghĩa khi p < 0,05 (hai phía).",
      "Criteria: two-proportion z-test. Factors and the service index: standard errors from the 95 % "
      "intervals (half-width / 1.96). More than noise when p < 0.05 (two-sided).")),
    (("Tỷ lệ phản hồi (AAPOR)", "Response rates (AAPOR)"),
     ("RR1 = I/((I+P)+(R+NC+O)+(UH+UO)); RR3 như RR1 với e·(UH+UO); COOP1 = I/((I+P)+R+O); "
      "REF1 = R/((I+P)+(R+NC+O)+(UH+UO)); CON1 = ((I+P)+R+O)/((I+P)+(R+NC+O)+(UH+UO)). Tính trên các "
      "người trong mẫu đã có kết quả cuối cùng.",
      "RR1 = I/((I+P)+(R+NC+O)+(UH+UO)); RR3 as RR1 with e·(UH+UO); COOP1 = I/((I+P)+R+O); "
      "REF1 = R/((I+P)+(R+NC+O)+(UH+UO)); CON1 = ((I+P)+R+O)/((I+P)+(R+NC+O)+(UH+UO)). Over the sampled "
      "contacts with a final disposition.")),
    (("Phiếu QR tự chọn", "Self-selected QR answers"),
     ("Báo cáo riêng ở sheet QR tự chọn; không bao giờ gộp vào các chỉ số.",
      "Reported on their own sheet; never mixed into the indices.")),
    (("Quyền riêng tư", "Privacy"),
     ("Báo cáo không chứa số điện thoại hay họ tên người dân.",
      "The report holds no phone number and no citizen's name.")),
)

RATES = ("RR1", "RR3", "COOP1", "REF1", "CON1")


class _Sheets:
    """Formats and helpers shared by every sheet of one workbook."""

    def __init__(self, book: Workbook, report: Report, lang: str) -> None:
        self.book, self.report, self.lang = book, report, lang
        base = {"font_name": "Arial", "font_size": 10, "valign": "top"}
        self.f: dict[str, Format] = {
            "title": book.add_format({**base, "bold": True, "font_size": 14}),
            "subtitle": book.add_format({**base, "italic": True, "font_color": "#444444"}),
            "header": book.add_format({**base, "bold": True, "text_wrap": True, "bg_color": "#DDE6F0",
                                       "border": 1}),
            "text": book.add_format({**base, "text_wrap": True}),
            "int": book.add_format({**base, "num_format": "#,##0"}),
            "pct": book.add_format({**base, "num_format": "0.0%"}),
            "pts": book.add_format({**base, "num_format": "+0.0;-0.0;0.0"}),
            "dec2": book.add_format({**base, "num_format": "0.00"}),
            "dec3": book.add_format({**base, "num_format": "0.000"}),
            "flag_text": book.add_format({**base, "text_wrap": True, "bg_color": "#F8D7DA"}),
            "flag_pct": book.add_format({**base, "num_format": "0.0%", "bg_color": "#F8D7DA"}),
            "bold_text": book.add_format({**base, "bold": True, "text_wrap": True}),
            "bold_pct": book.add_format({**base, "bold": True, "num_format": "0.0%"}),
            "muted": book.add_format({**base, "italic": True, "font_color": "#777777"}),
        }

    def t(self, key: str) -> str:
        vi, en = T[key]
        return en if self.lang == "en" else vi

    def text(self, pair: tuple[str, str]) -> str:
        return pair[1] if self.lang == "en" else pair[0]

    def sheet(self, key: str, columns: Sequence[tuple[str, int]], landscape: bool = False) -> Worksheet:
        """A sheet with the title, the scope line and the frozen header row."""
        ws = self.book.add_worksheet(self.t(key))
        ws.write(0, 0, self.t("title"), self.f["title"])
        ws.write(1, 0, self.subtitle(), self.f["subtitle"])
        for col, (label, width) in enumerate(columns):
            ws.set_column(col, col, width)
            ws.write(HEADER_ROW, col, self.t(label) if label in T else label, self.f["header"])
        ws.freeze_panes(HEADER_ROW + 1, 0)
        ws.set_paper(9)   # A4
        if landscape:
            ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(HEADER_ROW)
        ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
        return ws

    def subtitle(self) -> str:
        r = self.report
        return f"{r.agency_name} · {self.period_text()}"

    def period_text(self) -> str:
        r = self.report
        if r.period is None:
            return self.t("whole_campaign")
        kind = self.t(f"kind_{r.kind}") if r.kind else ""
        return (f"{r.period.label} ({kind}: {r.period.start:%d/%m/%Y} – {r.period.end:%d/%m/%Y})"
                if kind else f"{r.period.start:%d/%m/%Y} – {r.period.end:%d/%m/%Y}")

    def local(self, moment: datetime | None, fmt: str = "%d/%m/%Y") -> str:
        return moment.astimezone(ZoneInfo(self.report.timezone)).strftime(fmt) if moment else ""

    def cells(self, ws: Worksheet, row: int, cells: Sequence[tuple[Any, str]]) -> None:
        """Write (value, format) pairs across one row from column A."""
        for col, (value, fmt) in enumerate(cells):
            self.put(ws, row, col, value, fmt)

    def put(self, ws: Worksheet, row: int, col: int, value: Any, fmt: str = "text") -> None:
        """Write one cell: None as an empty cell; text made safe against formulas."""
        if value is None:
            ws.write_blank(row, col, None, self.f[fmt])
        elif isinstance(value, str):
            ws.write_string(row, col, str(safe_cell(value)), self.f[fmt])
        elif isinstance(value, bool):
            ws.write_string(row, col, self.t("yes" if value else "no"), self.f[fmt])
        else:
            ws.write_number(row, col, value, self.f[fmt])


def _pct(value: float | None) -> float | None:
    """An index in percent as the fraction Excel shows as a percentage."""
    return None if value is None else value / 100


def write(report: Report, path: str | Path, lang: str = "vi") -> Path:
    """Write the report's workbook to ``path`` (through a temporary name: a file present is
    whole) and return the path."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    target = Path(path)
    private_dir(target.parent)
    partial = private_file(target.with_name(target.name + ".part"))
    book = xlsxwriter.Workbook(str(partial), {"constant_memory": False, "strings_to_numbers": False,
                                              "strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties({"title": T["title"][1 if lang == "en" else 0], "author": "SIPAS survey service",
                         "comments": "No phone numbers or names."})
    s = _Sheets(book, report, lang)
    for writer in _SHEETS:
        writer(s)
    book.close()
    partial.replace(target)
    return target


def _cover(s: _Sheets) -> None:
    r = s.report
    ws = s.sheet("sheet_cover", [("item", 44), ("value", 70)])
    q = r.questionnaire
    rows: list[tuple[str, Any, str]] = [
        ("agency", r.agency_name, "text"), ("agency_code", r.agency_code, "text"),
        ("tree", " › ".join(r.agency_path), "text"),
        ("scope", s.t("scope_campaign") + f": {r.campaign.name}" if r.campaign else s.t("scope_agency"), "text"),
        ("period", s.period_text(), "text"),
        ("questionnaire", f"{q.key} — {q.title.get(s.lang)}", "text"),
        ("campaigns", len(r.campaigns), "int"),
        ("design", s.t("design_text"), "text"),
        ("rule", ", ".join(sorted({c.rule for c in r.campaigns})), "text"),
        ("eligible", sum(c.eligible for c in r.campaigns), "int"),
        ("drawn", sum(c.drawn for c in r.campaigns), "int"),
        ("fieldwork", f"{s.local(r.first_interview)} – {s.local(r.last_interview)}"
         if r.first_interview else s.t("no_data"), "text"),
        ("contacts", r.contacts, "int"),
        ("completes", r.dispositions.get("1.1", 0), "int"),
        ("partials", r.dispositions.get("1.2", 0), "int"),
        ("respondents", r.scores.n_respondents, "int"),
        *((rate, r.rates.get(rate), "pct") for rate in RATES),
        ("channels", ", ".join(r.channels), "text"),
        ("service_index", _pct(r.scores.service_index), "bold_pct"),
        ("rollup_index", _pct(r.rollup.service_index), "pct"),
        ("overall_index", _pct(r.scores.overall.index if r.scores.overall else None), "pct"),
        ("target", _pct(r.target), "pct"),
        ("distance", (r.scores.service_index - r.target) if r.scores.service_index is not None else None, "pts"),
        ("flagged_count", len(r.flagged), "int"),
        ("generated", s.local(r.generated_at, "%d/%m/%Y %H:%M"), "text"),
    ]
    if r.other_questionnaires:
        rows.append(("other_questionnaires", ", ".join(r.other_questionnaires), "text"))
    for offset, (label, value, fmt) in enumerate(rows):
        row = HEADER_ROW + 1 + offset
        s.put(ws, row, 0, s.t(label) if label in T else label, "text")
        s.put(ws, row, 1, value, fmt)


INDEX_COLUMNS = [("code", 8), ("factor", 8), ("text", 50), ("n", 10), ("satisfied", 10), ("dissatisfied", 10),
                 ("no_opinion", 10), ("unanswered", 10), ("index", 9), ("ci_low", 9), ("ci_high", 9),
                 ("mean", 9), ("weighted", 10), ("rollup", 10), ("dissatisfied_share", 10), ("flag", 10)]


def _criterion_cells(c: CriterionScore, rollup: float | None) -> list[tuple[Any, str]]:
    flag = c.dissatisfied_flag
    return [
        (c.n, "int"), (c.n_satisfied, "int"), (c.n_dissatisfied, "int"), (c.n_no_opinion, "int"),
        (c.n_unanswered, "int"), (_pct(c.index), "pct"), (_pct(c.ci_low), "pct"), (_pct(c.ci_high), "pct"),
        (c.mean, "dec2"), (_pct(c.weighted_index), "pct"), (_pct(rollup), "pct"),
        (c.n_dissatisfied / c.n if c.n else None, "flag_pct" if flag else "pct"),
        (flag, "flag_text" if flag else "text"),
    ]


def _indices(s: _Sheets) -> None:
    r, q = s.report, s.report.questionnaire
    ws = s.sheet("sheet_indices", INDEX_COLUMNS, landscape=True)
    rep: ScoreReport = r.scores
    row = HEADER_ROW + 1
    service = [(None, "int")] * 5 + [(_pct(rep.service_index), "bold_pct"), (_pct(rep.service_ci_low), "pct"),
                                     (_pct(rep.service_ci_high), "pct"), (None, "text"),
                                     (_pct(rep.weighted_service_index), "pct"),
                                     (_pct(r.rollup.service_index), "pct"), (None, "text"), (None, "text")]
    _line(s, ws, row, ["SIPAS", None, s.t("service_index")], service, bold=True)
    factor_rows: list[tuple[str, int, int]] = []   # factor, first criterion row, last criterion row
    for factor in rep.factors:
        row += 1
        cells = [(factor.n, "int")] + [(None, "int")] * 4 + [
            (_pct(factor.index), "bold_pct"), (_pct(factor.ci_low), "pct"), (_pct(factor.ci_high), "pct"),
            (None, "text"), (_pct(factor.weighted_index), "pct"), (_pct(r.rollup.factors.get(factor.factor)), "pct"),
            (None, "text"), (None, "text")]
        _line(s, ws, row, [factor.factor, factor.factor, q.factor_title(factor.factor).get(s.lang)], cells, bold=True)
        first = row + 1
        for c in (c for c in rep.criteria if c.factor == factor.factor):
            row += 1
            flag = c.dissatisfied_flag
            _line(s, ws, row, [c.item_id, c.factor, q.item(c.item_id).text.get(s.lang)],
                  _criterion_cells(c, r.rollup.criteria.get(c.item_id)), flagged=flag)
        factor_rows.append((factor.factor, first, row))
    if rep.overall is not None:
        row += 1
        c = rep.overall
        _line(s, ws, row, [c.item_id, None, q.item(c.item_id).text.get(s.lang)],
              _criterion_cells(c, r.rollup.overall), flagged=c.dissatisfied_flag, bold=True)
    _charts(s, ws, rep, factor_rows, row + 3)


def _line(s: _Sheets, ws: Worksheet, row: int, labels: list[Any], cells: list[tuple[Any, str]],
          bold: bool = False, flagged: bool = False) -> None:
    text_fmt = "flag_text" if flagged else ("bold_text" if bold else "text")
    for col, value in enumerate(labels):
        s.put(ws, row, col, value, text_fmt)
    for offset, (value, fmt) in enumerate(cells):
        s.put(ws, row, len(labels) + offset, value, fmt)


def _charts(s: _Sheets, ws: Worksheet, rep: ScoreReport, factor_rows: list[tuple[str, int, int]], at: int) -> None:
    """A column chart of the factor indices, and a bar chart of each factor's criteria."""
    name = s.t("sheet_indices")
    index_col = 8
    if factor_rows:
        chart = s.book.add_chart({"type": "column"})
        rows = [first - 1 for _f, first, _l in factor_rows]
        # The factor rows are not contiguous: one series point per factor row.
        chart.add_series({
            "name": s.t("chart_factor"),
            "categories": "=(" + ",".join(f"'{name}'!$A${r + 1}" for r in rows) + ")",
            "values": "=(" + ",".join(f"'{name}'!${'I'}${r + 1}" for r in rows) + ")",
            "data_labels": {"value": True, "num_format": "0.0%"},
        })
        chart.set_title({"name": s.t("chart_factor")})
        chart.set_y_axis({"min": 0, "max": 1, "num_format": "0%"})
        chart.set_legend({"none": True})
        ws.insert_chart(at, 0, chart, {"x_scale": 1.6, "y_scale": 1.2})
        at += 20
    for factor, first, last in factor_rows:
        if last < first:
            continue
        chart = s.book.add_chart({"type": "bar"})
        chart.add_series({
            "name": f"{s.t('factor')} {factor}",
            "categories": [name, first, 0, last, 0],
            "values": [name, first, index_col, last, index_col],
            "data_labels": {"value": True, "num_format": "0.0%"},
        })
        title = s.report.questionnaire.factor_title(factor).get(s.lang)
        chart.set_title({"name": f"{s.t('factor')} {factor}: {title}"})
        chart.set_x_axis({"min": 0, "max": 1, "num_format": "0%"})
        chart.set_y_axis({"reverse": True})
        chart.set_legend({"none": True})
        ws.insert_chart(at, 0, chart, {"x_scale": 1.6, "y_scale": 0.9})
        at += 16


def _flagged(s: _Sheets) -> None:
    r, q = s.report, s.report.questionnaire
    ws = s.sheet("sheet_flagged", [("unit", 30), ("code", 8), ("text", 60), ("n", 10), ("dissatisfied", 10),
                                   ("dissatisfied_share", 12)], landscape=True)

    def flagged_row(unit: str, c: CriterionScore) -> list[tuple[Any, str]]:
        return [(unit, "text"), (c.item_id, "text"), (q.item(c.item_id).text.get(s.lang), "text"), (c.n, "int"),
                (c.n_dissatisfied, "int"), (c.n_dissatisfied / c.n, "flag_pct")]

    row = HEADER_ROW + 1
    scored = list(r.scores.criteria) + ([r.scores.overall] if r.scores.overall else [])
    for c in scored:
        if c.dissatisfied_flag:
            s.cells(ws, row, flagged_row(s.t("whole"), c))
            row += 1
    for unit in r.units:
        if unit.suppressed:
            continue   # too few answers to read a share on its own
        label = f"{unit.name} {s.t('own')}" if unit.own and len(r.units) > 1 else unit.name
        for c in unit.flagged:
            s.cells(ws, row, flagged_row(label, c))
            row += 1


def _units(s: _Sheets) -> None:
    r = s.report
    if len(r.units) < 2 and not any(not u.own for u in r.units):
        return
    factors = [f.factor for f in r.scores.factors]
    ws = s.sheet("sheet_units", [("rank", 8), ("agency_code", 12), ("unit", 34), ("eligible", 12),
                                 ("respondents", 10), ("service_index", 12), ("overall_index", 12),
                                 *((f"{s.t('factor')} {f}", 10) for f in factors), ("flagged_criteria", 14),
                                 ("note", 26)], landscape=True)
    row = HEADER_ROW + 1
    for unit in sorted(r.units, key=lambda u: (u.rank is None, u.rank or 0, u.name)):
        label = f"{unit.name} {s.t('own')}" if unit.own else unit.name
        hidden = unit.suppressed
        cells: list[tuple[Any, str]] = [(unit.rank, "int"), (unit.code, "text"), (label, "text"),
                                        (unit.eligible, "int"), (unit.respondents, "int")]
        figures = [_pct(unit.figures.service_index), _pct(unit.figures.overall),
                   *(_pct(unit.figures.factors.get(f)) for f in factors)]
        cells += [(None if hidden else v, "pct") for v in figures]
        cells += [(len(unit.flagged), "int"), (s.t("suppressed") % r.min_n if hidden else None, "muted")]
        s.cells(ws, row, cells)
        row += 1
    total = [(None, "int"), (r.agency_code, "bold_text"), (s.t("whole"), "bold_text"),
             (sum(u.eligible for u in r.units), "int"), (sum(u.respondents for u in r.units), "int"),
             (_pct(r.rollup.service_index), "bold_pct"), (_pct(r.rollup.overall), "bold_pct"),
             *((_pct(r.rollup.factors.get(f)), "bold_pct") for f in factors)]
    s.cells(ws, row, total)


def _breakdown(dim: str) -> Callable[[_Sheets], None]:
    def write_sheet(s: _Sheets) -> None:
        r = s.report
        groups: Sequence[GroupRow] = r.breakdowns.get(dim, ())
        if not groups:
            return
        factors = [f.factor for f in r.scores.factors]
        ws = s.sheet(f"sheet_{dim}", [("group", 36), ("respondents", 10), ("service_index", 12), ("ci_low", 9),
                                      ("ci_high", 9), ("overall_index", 12),
                                      *((f"{s.t('factor')} {f}", 10) for f in factors),
                                      ("flagged_criteria", 24), ("note", 26)], landscape=True)
        for offset, group in enumerate(groups):
            row = HEADER_ROW + 1 + offset
            rep = group.scores
            s.put(ws, row, 0, group.value)
            s.put(ws, row, 1, group.respondents, "int")
            values = [_pct(rep.service_index), _pct(rep.service_ci_low), _pct(rep.service_ci_high),
                      _pct(rep.overall.index if rep.overall else None),
                      *(_pct(f.index) for f in rep.factors)]
            for col, value in enumerate(values, start=2):
                if group.suppressed:
                    s.put(ws, row, col, f"<{r.min_n}", "muted")
                else:
                    s.put(ws, row, col, value, "pct")
            flagged = [c.item_id for c in list(rep.criteria) + ([rep.overall] if rep.overall else [])
                       if c.dissatisfied_flag]
            s.put(ws, row, 2 + len(values), None if group.suppressed else ", ".join(flagged), "text")
            s.put(ws, row, 3 + len(values), s.t("suppressed") % r.min_n if group.suppressed else None, "muted")
    return write_sheet


def _needs(s: _Sheets) -> None:
    r, q = s.report, s.report.questionnaire
    if not r.needs:
        return
    levels = sorted(q.item(r.needs[0].item_id).scale.options, key=lambda o: -o.value)
    ws = s.sheet("sheet_needs", [("rank", 8), ("code", 8), ("text", 60), ("n", 10),
                                 *((o.label.get(s.lang), 10) for o in levels), ("mean", 10), ("top_share", 12)],
                 landscape=True)
    ws.write(2, 0, s.t("needs_rank_note"), s.f["muted"])
    ordered = sorted(r.needs, key=lambda n: (n.rank is None, n.rank or 0, n.item_id))
    for offset, need in enumerate(ordered):
        row = HEADER_ROW + 1 + offset
        cells: list[tuple[Any, str]] = [(need.rank, "int"), (need.item_id, "text"),
                                        (q.item(need.item_id).text.get(s.lang), "text"), (need.n, "int"),
                                        *((need.counts.get(o.value, 0), "int") for o in levels),
                                        (need.mean, "dec2"), (_pct(need.top_share), "pct")]
        s.cells(ws, row, cells)


def _change(s: _Sheets) -> None:
    r, q = s.report, s.report.questionnaire
    if r.previous is None or r.previous_scores is None:
        return
    ws = s.sheet("sheet_change", [("measure", 9), ("text", 50), ("previous", 10), ("previous_n", 10),
                                  ("current", 10), ("current_n", 10), ("difference", 12), ("z", 8), ("p", 8),
                                  ("significant", 14)], landscape=True)
    ws.write(2, 0, f"{s.t('previous')}: {r.previous.label} ({r.previous.start:%d/%m/%Y} – "
                   f"{r.previous.end:%d/%m/%Y})", s.f["muted"])
    for offset, change in enumerate(r.changes):
        row = HEADER_ROW + 1 + offset
        if change.kind == "service":
            label, code = s.t("service_index"), "SIPAS"
        elif change.kind == "factor":
            label, code = q.factor_title(change.key).get(s.lang), change.key
        else:
            label, code = q.item(change.key).text.get(s.lang), change.key
        cells: list[tuple[Any, str]] = [(code, "text"), (label, "text"), (_pct(change.previous), "pct"),
                                        (change.previous_n, "int"), (_pct(change.current), "pct"),
                                        (change.current_n, "int"), (change.difference, "pts"), (change.z, "dec2"),
                                        (change.p, "dec3"),
                                        (change.significant if change.p is not None else None, "text")]
        s.cells(ws, row, cells)


def _campaigns(s: _Sheets) -> None:
    r = s.report
    ws = s.sheet("sheet_campaigns", [("campaign", 10), ("name", 34), ("agency", 30), ("status", 12),
                                     ("started", 12), ("completed", 12), ("seed", 12), ("eligible", 12),
                                     ("drawn", 10), ("contacts", 10), ("in_period", 10), ("rule", 22)],
                         landscape=True)
    for offset, c in enumerate(r.campaigns):
        row = HEADER_ROW + 1 + offset
        cells: list[tuple[Any, str]] = [(c.id, "int"), (c.name, "text"), (c.agency, "text"), (c.status, "text"),
                                        (s.local(c.started_at), "text"), (s.local(c.completed_at), "text"),
                                        (c.sample_seed, "int"), (c.eligible, "int"), (c.drawn, "int"),
                                        (c.contacts, "int"), (c.respondents, "int"), (c.rule, "text")]
        s.cells(ws, row, cells)


def _strata(s: _Sheets) -> None:
    r = s.report
    ws = s.sheet("sheet_strata", [("campaign", 10), ("unit", 34), ("field", 34), ("eligible", 12),
                                  ("drawn", 10), ("weight", 12)])
    for offset, st in enumerate(r.strata):
        row = HEADER_ROW + 1 + offset
        cells: list[tuple[Any, str]] = [(st.campaign_id, "int"), (st.agency, "text"), (st.field, "text"),
                                        (st.eligible, "int"), (st.drawn, "int"), (st.weight, "dec2")]
        s.cells(ws, row, cells)


def _method(s: _Sheets) -> None:
    r = s.report
    ws = s.sheet("sheet_method", [("topic", 30), ("statement", 100)])
    values = {"aggregation": r.scores.aggregation, "min_n": r.min_n}
    for offset, (topic, statement) in enumerate(METHOD):
        row = HEADER_ROW + 1 + offset
        s.put(ws, row, 0, s.text(topic), "bold_text")
        s.put(ws, row, 1, s.text(statement).format(**values), "text")


def _qr(s: _Sheets) -> None:
    r = s.report
    if not r.qr:
        return
    ws = s.sheet("sheet_qr", [("questionnaire", 18), ("code", 8), ("text", 60), ("n", 10), ("satisfied", 10),
                              ("index", 10)], landscape=True)
    ws.write(2, 0, s.t("qr_note"), s.f["muted"])
    row = HEADER_ROW + 1
    for block in r.qr:
        rep = block.scores
        q_items = {c.item_id: c for c in list(rep.criteria) + ([rep.overall] if rep.overall else [])}
        for item_id, c in q_items.items():
            text = block.q.item(item_id).text.get(s.lang)
            s.cells(ws, row, [(block.questionnaire, "text"), (item_id, "text"), (text, "text"), (c.n, "int"),
                              (c.n_satisfied, "int"), (_pct(c.index), "pct")])
            row += 1
        s.put(ws, row, 0, block.questionnaire, "bold_text")
        s.put(ws, row, 1, "SIPAS", "bold_text")
        s.put(ws, row, 2, s.t("service_index"), "bold_text")
        s.put(ws, row, 3, rep.n_respondents, "int")
        s.put(ws, row, 5, _pct(rep.service_index), "bold_pct")
        row += 1
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(block.statuses.items()))
        s.put(ws, row, 0, s.t("forms"), "muted")
        s.put(ws, row, 2, statuses, "muted")
        row += 2


_SHEETS: tuple[Callable[[_Sheets], None], ...] = (
    _cover, _indices, _flagged, _units, _breakdown("field"), _breakdown("procedure"), _breakdown("unit"),
    _breakdown("officer"), _needs, _change, _campaigns, _strata, _method, _qr,
)
