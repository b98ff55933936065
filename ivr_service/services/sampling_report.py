"""The sampling report (per stratum and in total) and the downloadable frame template."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.cells import safe_frame
from ..persistence.files import private_dir, private_file
from ..persistence.models import Campaign, Stratum

REASONS = ("invalid_phone", "invalid_date", "not_returned", "outside_period", "duplicate_phone", "do_not_contact",
           "surveyed_recently")


def sampling_table(session: Session, campaign: Campaign) -> pd.DataFrame:
    """One row per agency × field stratum plus a total row: frame rows, eligible,
    excluded by reason, drawn, reserve and weight."""
    rows = []
    for s in session.scalars(select(Stratum).where(Stratum.campaign_id == campaign.id)
                             .order_by(Stratum.agency, Stratum.field)):
        rows.append({"agency": s.agency, "field": s.field, "frame_rows": s.frame_rows, "eligible": s.eligible,
                     **{f"excluded_{r}": int(s.excluded.get(r, 0)) for r in REASONS},
                     "drawn": s.drawn, "reserve": s.reserve, "weight": s.weight})
    columns = ["agency", "field", "frame_rows", "eligible", *[f"excluded_{r}" for r in REASONS], "drawn",
               "reserve", "weight"]
    table = pd.DataFrame(rows, columns=columns)
    if not table.empty:
        total = table[columns[2:-1]].sum().to_dict()
        table = pd.concat([table, pd.DataFrame([{"agency": "TỔNG / TOTAL", "field": "", **total, "weight": None}])],
                          ignore_index=True)
    return table


def write_sampling_report(session: Session, campaign: Campaign, directory: str | Path, now: datetime) -> Path:
    directory = private_dir(directory)
    path = private_file(directory / f"campaign-{campaign.id}-sampling-{now:%Y%m%dT%H%M%SZ}.xlsx")
    private_file(path.with_suffix(".csv"))
    meta = pd.DataFrame([("campaign_id", campaign.id), ("campaign", campaign.name), ("seed", campaign.sample_seed),
                         ("eligible_frame", campaign.frame_size), ("generated_at_utc", now.isoformat())],
                        columns=["key", "value"])
    # Names typed by agencies, agencies and fields as the frame file wrote them: no text may
    # start a formula.
    meta, table = safe_frame(meta), safe_frame(sampling_table(session, campaign))
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        meta.to_excel(writer, sheet_name="summary", index=False)
        table.to_excel(writer, sheet_name="strata", index=False)
    table.to_csv(path.with_suffix(".csv"), index=False, encoding="utf-8-sig")
    return path


TEMPLATE_COLUMNS = [
    ("Mã hồ sơ", "000.00.20.H19-261005-0001", "Mã hồ sơ trên hệ thống một cửa"),
    ("Tên thủ tục", "Đăng ký biến động đất đai", ""),
    ("Lĩnh vực", "Đất đai", "Bắt buộc: dùng để phân tầng mẫu"),
    ("Cơ quan", "Sở Tài nguyên và Môi trường", "Không bắt buộc: nếu danh sách có nhiều cơ quan"),
    ("Chủ hồ sơ", "Nguyễn Văn An", ""),
    ("Số điện thoại", "0912 345 678", "Bắt buộc: di động 10 số hoặc cố định; chấp nhận +84, 84, số cũ 11 số"),
    ("Ngày tiếp nhận", "01/10/2026", "dd/mm/yyyy"),
    ("Ngày hẹn trả", "08/10/2026", "dd/mm/yyyy"),
    ("Ngày trả kết quả", "05/10/2026", "Bắt buộc (hoặc cột Trạng thái): dd/mm/yyyy"),
    ("Trạng thái", "Đã trả kết quả", ""),
]


def frame_template() -> bytes:
    """An XLSX template of the accepted layout, in Vietnamese, with one example row."""
    workbook = openpyxl.Workbook()
    sheet = workbook.create_sheet("Danh sách hồ sơ", 0)
    workbook.remove(workbook.worksheets[1])   # the default empty sheet
    sheet.append(["DANH SÁCH HỒ SƠ ĐÃ TRẢ KẾT QUẢ (mẫu nhập cho khảo sát SIPAS)"])
    sheet["A1"].font = Font(bold=True)
    sheet.append([])
    sheet.append([c[0] for c in TEMPLATE_COLUMNS])
    sheet.append([c[1] for c in TEMPLATE_COLUMNS])
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for index, (name, _example, _note) in enumerate(TEMPLATE_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(14, len(name) + 4)
    guide = workbook.create_sheet("Hướng dẫn")
    guide.append(["Cột", "Ghi chú"])
    for name, _example, note in TEMPLATE_COLUMNS:
        guide.append([name, note])
    guide.append([])
    guide.append(["Dòng tiêu đề phía trên, dòng trống và dòng tổng cộng ở cuối được bỏ qua và ghi vào báo cáo."])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
