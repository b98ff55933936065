"""Importing transaction lists as agencies really export them. Fixture files are built here."""

from __future__ import annotations

import csv
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select

from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import Contact, OptOut, Stratum
from ivr_service.services import campaigns, frames
from ivr_service.services.errors import Conflict, InvalidInput
from ivr_service.services.frame_reader import parse_dates, read_frame

from .conftest import scalars

HEADER = ["STT", "Số hồ sơ", "Tên thủ tục", "Lĩnh vực", "Người nộp", "SĐT", "Ngày tiếp nhận", "Ngày trả kết quả"]
ROWS = [
    [1, "HS-1", "Cấp GCN", "Đất đai", "Nguyễn Văn An", "0912 345 678", "01/10/2026", "05/10/2026"],
    [2, "HS-2", "Cấp phép", "Môi trường", "Trần Thị Bình", "84987654321", "02/10/2026", "06-10-2026"],
    [3, "HS-3", "Cấp GCN", "Đất đai", "Lê Văn Chi", "(+84) 352.222.333", "03/10/2026", ""],
    [4, "HS-4", "Cấp GCN", "Đất đai", "Phạm Văn Dũng", "không có", "03/10/2026", "09/10/2026"],
]


def to_cp1258(text: str) -> bytes:
    """Windows-1258 has precomposed vowels (ô, ư, ă …) but combining tone marks."""
    out = []
    for char in text:
        try:
            char.encode("cp1258")
            out.append(char)
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", char)
            tones = [p for p in parts if p in "\u0300\u0301\u0303\u0309\u0323"]
            base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in tones))
            out.append(base + "".join(tones))
    return "".join(out).encode("cp1258")


def write_csv(path: Path, rows: list[list[Any]], header: list[str] = HEADER, encoding: str = "utf-8",
              title: bool = False) -> Path:
    lines = []
    if title:
        lines += ["UBND TỈNH ĐẮK NÔNG,,,,,,,", "BÁO CÁO HỒ SƠ ĐÃ TRẢ KẾT QUẢ,,,,,,,", "Từ 01/10/2026 đến 31/10/2026,,,,,,,",
                  ",,,,,,,"]
    lines.append(",".join(header))
    lines += [",".join(str(c) for c in row) for row in rows]
    if title:
        lines += [",,,,,,,", f"Tổng cộng,,,,,,,{len(rows)}"]
    text = "\n".join(lines) + "\n"
    path.write_bytes(to_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return path


def test_government_spreadsheet_with_title_rows_merged_header_and_totals(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG"])
    sheet.append(["DANH SÁCH HỒ SƠ ĐÃ TRẢ KẾT QUẢ QUÝ IV/2026"])
    sheet.append([])
    sheet.append(["Mã hồ sơ", "Lĩnh vực", "Thông tin người nộp", None, "Ngày trả kết quả"])
    sheet.append([None, None, "Họ tên", "Số điện thoại", None])     # header merged over two rows
    sheet.merge_cells("C4:D4")
    sheet.append(["HS-1", "Đất đai", "Nguyễn Văn An", 912345678, datetime(2026, 10, 5)])  # number lost its 0
    sheet.append([])
    sheet.append(["HS-2", "Môi trường", "Trần Thị Bình", "0987.654.321", 46300])          # Excel serial
    sheet.append(["Tổng cộng: 2 hồ sơ", None, None, None, None])
    path = tmp_path / "ds.xlsx"
    workbook.save(path)

    frame, report = read_frame(path)
    assert report.header_row == 5
    assert report.columns["name"] == "Họ tên" and report.columns["returned_on"] == "Ngày trả kết quả"
    assert list(frame["transaction_code"]) == ["HS-1", "HS-2"]
    assert list(frame.index) == [6, 8]
    reasons = {(r["row"], r["reason"]) for r in report.ignored_rows}
    assert {(1, "above the header"), (2, "above the header"), (7, "blank row"), (9, "totals row")} <= reasons
    assert list(parse_dates(frame["returned_on"]).dt.date) == [date(2026, 10, 5), date(2026, 10, 5)]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    frame, _ = read_frame(write_csv(tmp_path / "ds.csv", ROWS, encoding=encoding))
    assert list(frame["field"]) == ["Đất đai", "Môi trường", "Đất đai", "Đất đai"]


def test_legacy_code_page_needs_to_be_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ds.csv", ROWS, encoding="cp1258")
    with pytest.raises(InvalidInput, match="not UTF-8.*--encoding cp1258"):
        read_frame(path)
    frame, _ = read_frame(path, encoding="cp1258")
    assert frame["name"].iloc[1] == "Trần Thị Bình"
    with pytest.raises(InvalidInput, match="unknown encoding"):
        read_frame(path, encoding="viscii-9")


def test_headers_without_diacritics_semicolons_and_an_explicit_mapping(tmp_path: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_text("MA HO SO;LINH VUC;DIEN THOAI DI DONG;TRANG THAI\nHS-1;Dat dai;0912345678;Đã trả kết quả\n",
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match="no header row with a phone column"):
        read_frame(path)
    frame, report = read_frame(path, column_map={"phone": "Điện thoại di động"})
    assert report.columns["phone"] == "DIEN THOAI DI DONG" and frame["status"].iloc[0] == "Đã trả kết quả"
    with pytest.raises(InvalidInput, match="unknown column"):
        read_frame(path, column_map={"telephone": "x"})


@pytest.mark.parametrize("content, words", [
    (b"", ("empty",)),
    (b"\xd0\xcf\x11\xe0garbage", (".xls", "xlsx")),
    ("Mã hồ sơ,Lĩnh vực,Ngày trả\nHS-1,Đất đai,01/10/2026\n".encode(), ("phone",)),
    ("Mã hồ sơ,Số điện thoại,Ngày trả\nHS-1,0912345678,01/10/2026\n".encode(), ("field", "Số điện thoại")),
    ("Lĩnh vực,Số điện thoại\nĐất đai,0912345678\n".encode(), ("returned_on or status",)),
    (b"PK\x03\x04not really a workbook", ("XLSX",)),
])
def test_unusable_files_say_why(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "ds.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as error:
        read_frame(path)
    for word in words:
        assert word in str(error.value)


def test_dates_in_the_usual_vietnamese_forms() -> None:
    values = pd.Series(["05/10/2026", "06-10-2026", "2026-10-07", "08.10.2026", "46300", "46301.0",
                        datetime(2026, 10, 9, 14, 30), "", None, "hôm qua", "31/02/2026"])
    parsed = parse_dates(values)
    assert [d.date() if not pd.isna(d) else None for d in parsed] == [
        date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7), date(2026, 10, 8), date(2026, 10, 5),
        date(2026, 10, 6), date(2026, 10, 9), None, None, None, None]


@pytest.fixture
def draft(make_campaign: Any) -> int:
    """A draft campaign for transactions returned in October 2026."""
    return make_campaign(period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))


def test_import_reports_every_row_it_does_not_use(app: Any, draft: int, import_frame: Any, tmp_path: Path) -> None:
    rows = ROWS + [
        [5, "HS-5", "Cấp GCN", "Khoáng sản", "Đỗ Văn Em", "0912345678", "04/10/2026", "12/10/2026"],   # same person
        [6, "HS-6", "Cấp GCN", "Đất đai", "Hồ Thị Giang", "024 3825 1234", "04/10/2026", "30/09/2026"],  # before period
        [7, "HS-7", "Cấp GCN", "Đất đai", "Vũ Văn Hải", "0398765432", "05/10/2026", "ngày mai"],      # bad date
        [8, "HS-8", "Cấp GCN", "Đất đai", "Bùi Văn Khánh", "01662345678", "05/10/2026", "15/10/2026"],  # legacy 11-digit
        [9, "HS-9", "Cấp GCN", "Đất đai", "Đặng Thị Lan", "0935111222", "05/10/2026", "16/10/2026"],  # opted out
    ]
    path = write_csv(tmp_path / "ds.csv", rows, title=True)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        session.add(OptOut(phone_e164="+84935111222", source="operator", created_at=svc.clock()))
    report = import_frame(draft, path)
    assert report.header_row == 5 and report.rows == 9
    assert [(r["row"], r["column"], r["value"]) for r in report.rejected] == [
        (9, "SĐT", "không có"), (12, "Ngày trả kết quả", "ngày mai")]
    assert report.excluded == {"not_returned": 1, "outside_period": 1, "duplicate_phone": 1, "do_not_contact": 1}
    assert {r["reason"] for r in report.ignored_rows} == {"above the header", "totals row", "blank row"}
    with svc.db.begin() as session:
        contacts = {c.phone_e164: c for c in session.scalars(select(Contact))}
    assert set(contacts) == {"+84912345678", "+84987654321", "+84362345678"}
    assert contacts["+84912345678"].transaction_code == "HS-5"   # the most recent transaction is kept
    assert (contacts["+84912345678"].phone_kind, contacts["+84912345678"].carrier) == ("mobile", "Vinaphone")
    assert report.drawn == report.eligible == 3


def test_a_failed_import_changes_nothing(app: Any, draft: int, tmp_path: Path) -> None:
    svc = app.extensions["sipas"]
    good = write_csv(tmp_path / "good.csv", ROWS)
    with pytest.raises(Conflict):
        with svc.db.begin() as session:
            campaign = campaigns.get_campaign(session, draft)
            frames.import_and_sample(session, campaign, good, SampleRule("census"), 1, svc.clock())
            frames.import_and_sample(session, campaign, good, SampleRule("census"), 1, svc.clock())  # twice
    with svc.db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
        assert campaigns.get_campaign(session, draft).sample_seed is None


def test_preview_stores_nothing(app: Any, tmp_path: Path) -> None:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        report = frames.preview(session, write_csv(tmp_path / "ds.csv", ROWS), svc.clock())
    assert (report.rows, report.eligible, len(report.rejected)) == (4, 2, 1)
    with svc.db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def multi_agency_frame(path: Path) -> Path:
    lines = ["Cơ quan,Lĩnh vực,Số điện thoại,Ngày trả kết quả"]
    number = 912000000
    for agency, fields in (("Sở Tư pháp", {"Hộ tịch": 300, "Công chứng": 30}),
                           ("UBND xã Nam Dong", {"Đất đai": 120, "Hộ tịch": 20})):
        for field, count in fields.items():
            for _ in range(count):
                number += 1
                lines.append(f"{agency},{field},0{number},15/10/2026")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_strata_are_agency_by_field_with_sizes_and_weights_stored(app: Any, draft: int, import_frame: Any,
                                                                   tmp_path: Path) -> None:
    svc = app.extensions["sipas"]
    report = import_frame(draft, multi_agency_frame(tmp_path / "ds.csv"), None, 11, reserve_share=0.2, replicates=2)
    # seed-002 tiers per agency: Sở Tư pháp 330 → 100, UBND xã 140 → 30
    assert report.drawn == 130 and report.reserve == 26
    with svc.db.begin() as session:
        strata = {(s.agency, s.field): s for s in session.scalars(select(Stratum))}
        assert {k: (s.eligible, s.drawn) for k, s in strata.items()} == {
            ("Sở Tư pháp", "Hộ tịch"): (300, 91), ("Sở Tư pháp", "Công chứng"): (30, 9),
            ("UBND xã Nam Dong", "Đất đai"): (120, 26), ("UBND xã Nam Dong", "Hộ tịch"): (20, 4)}
        assert strata[("Sở Tư pháp", "Công chứng")].weight == 30 / 9
        reserve = session.scalars(select(Contact).where(Contact.status == "reserve")).all()
        assert len(reserve) == 26 and {c.replicate for c in reserve} == {1, 2}
        assert all(c.next_attempt_at is None for c in reserve)


def test_same_frame_rule_and_seed_give_the_same_sample(app: Any, make_campaign: Any, tmp_path: Path) -> None:
    path = multi_agency_frame(tmp_path / "ds.csv")
    phones = []
    for i in range(3):
        campaign_id = make_campaign(path, rule=SampleRule("fixed", n=40), seed=5 if i < 2 else 6, start=False,
                                    sampling={"recent_days": 0})
        phones.append(set(scalars(app, select(Contact.phone_e164).where(Contact.campaign_id == campaign_id))))
    assert phones[0] == phones[1] != phones[2]


def test_releasing_reserve_waves_updates_weights(app: Any, draft: int, import_frame: Any, tmp_path: Path) -> None:
    svc = app.extensions["sipas"]
    import_frame(draft, multi_agency_frame(tmp_path / "ds.csv"), None, 11, reserve_share=0.2, replicates=2)
    released = []
    for _ in range(2):
        with svc.db.begin() as session:
            released.append(frames.release_reserve(session, campaigns.get_campaign(session, draft), svc.clock()))
    assert sum(released) == 26 and all(released)
    with svc.db.begin() as session:
        stratum = session.scalars(select(Stratum).where(Stratum.field == "Đất đai")).one()
        assert (stratum.reserve, stratum.weight) == (0, stratum.eligible / stratum.drawn)
        weights = set(session.scalars(select(Contact.stratum_weight).where(Contact.stratum_id == stratum.id)))
        assert weights == {stratum.weight}
        with pytest.raises(Conflict, match="no reserve"):
            frames.release_reserve(session, campaigns.get_campaign(session, draft), svc.clock())


def test_numbers_surveyed_recently_are_excluded(make_campaign: Any, import_frame: Any, claim: Any,
                                                tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ds.csv", ROWS)
    make_campaign(path, calls_per_second=10)                         # called first
    later = make_campaign(calls_per_second=10)
    assert len(claim(batch=10)) == 2
    report = import_frame(later, path)
    assert report.excluded["surveyed_recently"] == 2 and report.drawn == 0


@pytest.mark.parametrize("headers, canonical", [
    (["Mã hồ sơ", "Lĩnh vực", "Số điện thoại", "Ngày trả kết quả"], "transaction_code"),
    (["SỐ HỒ SƠ", "LĨNH VỰC", "SĐT", "NGÀY TRẢ KẾT QUẢ"], "transaction_code"),
    (["Tên thủ tục", "Lĩnh vực", "Điện thoại", "Trạng thái"], "procedure"),
    (["Cơ quan", "Lĩnh vực", "Số điện thoại", "Ngày trả kết quả"], "agency"),
    (["Đơn vị", "linh vuc", "so dien thoai", "ngay tra ket qua"], "agency"),
    (["Chủ hồ sơ", "Lĩnh vực", "Số điện thoại", "Trạng thái"], "name"),
    (["Người nộp", "Field", "Phone", "Status"], "name"),
    (["Ngày tiếp nhận", "Lĩnh vực", "SĐT", "Ngày trả kết quả"], "received_on"),
    (["Ngày hẹn trả", "Lĩnh vực", "SĐT", "Ngày trả kết quả"], "due_on"),
    (["Dossier code", "Field", "Phone number", "Return date"], "transaction_code"),
])
def test_header_names_in_vietnamese_and_english(tmp_path: Path, headers: list[str], canonical: str) -> None:
    path = tmp_path / "ds.csv"
    path.write_text(",".join(headers) + "\nX,Đất đai,0912345678,05/10/2026\n", encoding="utf-8")
    frame, report = read_frame(path)
    assert report.columns[canonical] == headers[0]
    assert {"field", "phone"} <= set(frame.columns) and frame["phone"].iloc[0] == "0912345678"


# --- the signature block under the table ------------------------------------------------------

# As one-stop-shop exports end: a blank row, who drew the list up and the place and date of
# signing (under the phone column), the signing instructions and the head of the office,
# blank rows for the signatures, then the names.
SIGNATURE_BLOCK: list[list[Any]] = [
    [],
    ["", "Người lập biểu", "", "", "", "Hà Nội, ngày 15 tháng 11 năm 2026", "", ""],
    ["", "(Ký, ghi rõ họ tên)", "", "", "", "Thủ trưởng đơn vị", "", ""],
    [],
    [],
    ["", "Nguyễn Văn Lập", "", "", "", "Trần Thị Trưởng", "", ""],
]
TOTALS: list[Any] = ["Tổng cộng", "", "", "", "", "", "", "4"]


def write_rows(path: Path, rows: list[list[Any]]) -> Path:
    """A CSV with quoting (the place and date of signing holds a comma), or an XLSX."""
    if path.suffix == ".xlsx":
        workbook = openpyxl.Workbook()
        for row in rows:
            workbook.active.append([None if cell == "" else cell for cell in row])
        workbook.save(path)
        return path
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(row + [""] * (len(HEADER) - len(row)) for row in rows)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_signature_block_is_skipped_not_rejected_and_makes_no_stratum(app: Any, draft: int, import_frame: Any,
                                                                        tmp_path: Path, suffix: str) -> None:
    path = write_rows(tmp_path / f"ds{suffix}", [HEADER, *ROWS, TOTALS, *SIGNATURE_BLOCK])
    frame, read = read_frame(path)
    assert list(frame.index) == [2, 3, 4, 5] and read.footer_rows == 5   # rows 8 to 12
    assert [(r["row"], r["reason"]) for r in read.ignored_rows if r["reason"] != "blank row"] == [
        (6, "totals row"), (8, "signature block"), (9, "signature block"), (12, "signature block")]
    assert read.ignored_rows[-1]["text"] == "Nguyễn Văn Lập Trần Thị Trưởng"
    report = import_frame(draft, path)
    assert report.rows == 4 and report.footer_rows == 5
    assert [(r["row"], r["value"], r["reason"]) for r in report.rejected] == [
        (5, "không có", "not a phone number: 'không có'")]
    assert {(s["field"], s["frame_rows"]) for s in report.strata} == {("Đất đai", 3), ("Môi trường", 1)}
    with app.extensions["sipas"].db.begin() as session:
        assert set(session.scalars(select(Stratum.field))) == {"Đất đai", "Môi trường"}


# The last transaction has no phone; its applicant is a company's director, so its name
# reads like a signatory's title. It is known as data by its field or by its dates.
LAST_WITHOUT_PHONE = {
    "known field": [5, "HS-5", "Cấp GCN", "Đất đai", "Giám đốc Công ty An Phát", "", "", ""],
    "dates": [5, "HS-5", "Khai thác", "Khoáng sản", "Giám đốc Công ty An Phát", "", "04/10/2026", "10/10/2026"],
}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("footer", [False, True], ids=["no footer", "then a footer"])
@pytest.mark.parametrize("last", sorted(LAST_WITHOUT_PHONE))
def test_a_last_transaction_without_a_phone_is_still_rejected(tmp_path: Path, suffix: str, footer: bool,
                                                              last: str) -> None:
    rows = [HEADER, *ROWS, LAST_WITHOUT_PHONE[last], *(SIGNATURE_BLOCK if footer else [])]
    frame, read = read_frame(write_rows(tmp_path / f"ds{suffix}", rows))
    assert list(frame.index) == [2, 3, 4, 5, 6] and frame.loc[6, "name"] == "Giám đốc Công ty An Phát"
    assert read.footer_rows == (5 if footer else 0)
    assert [r["row"] for r in read.ignored_rows if r["reason"] == "signature block"] == ([8, 9, 12] if footer else [])


def test_rows_without_a_title_or_place_and_date_are_not_a_footer(tmp_path: Path) -> None:
    # Two names under the table, nothing that says who signs: rows of data without a phone.
    path = write_rows(tmp_path / "ds.csv", [HEADER, *ROWS, [], ["", "Nguyễn Văn Lập", "", "", "", "Trần Thị B"]])
    frame, read = read_frame(path)
    assert list(frame.index) == [2, 3, 4, 5, 7] and read.footer_rows == 0
