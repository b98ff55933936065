"""Read one-stop-shop transaction lists as agencies export them.

Real exports have title rows above the header (agency, report title, period), headers
merged over two rows, Vietnamese headers with or without diacritics, blank rows, a totals
row at the bottom and often a signature block under the table (who drew it up, the head
of the office, place and date of signing, names). The header row is found by its
contents; everything ignored is reported. Row numbers in reports are the spreadsheet's
own (1-based).

Lists run to a million rows, so a file is read as columns, never row by row: CSV by
pandas' C parser straight from UTF-8 bytes, XLSX by calamine (a Rust reader, through
``python-calamine``) instead of openpyxl, which builds a Python object per cell and took
30 s and 460 MB for 100,000 rows. Calamine reads the same values (numbers, dates, text,
empty cells) and keeps the sheet's row numbers, as the reports need.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import python_calamine

from .errors import InvalidInput

# Canonical column -> accepted headers, compared folded (no diacritics, lower case).
HEADERS: Mapping[str, tuple[str, ...]] = {
    "transaction_code": ("ma ho so", "so ho so", "ma so ho so", "transaction code", "dossier code", "dossier no"),
    "procedure": ("ten thu tuc", "thu tuc", "ten thu tuc hanh chinh", "procedure", "procedure name"),
    "field": ("linh vuc", "ten linh vuc", "field", "sector"),
    "agency": ("co quan", "don vi", "co quan giai quyet", "don vi xu ly", "agency", "unit"),
    "name": ("chu ho so", "nguoi nop", "ten nguoi nop", "ho ten", "ho va ten", "to chuc ca nhan", "name",
             "applicant"),
    "phone": ("so dien thoai", "sdt", "dien thoai", "so dt", "dien thoai lien he", "phone", "phone number",
              "mobile"),
    "received_on": ("ngay tiep nhan", "ngay nop", "received on", "received date"),
    "due_on": ("ngay hen tra", "ngay hen tra ket qua", "due date"),
    "returned_on": ("ngay tra ket qua", "ngay tra", "ngay tra kq", "returned on", "return date"),
    "status": ("trang thai", "tinh trang", "status"),
}
REQUIRED = ("phone", "field")
TOTAL_MARKERS = ("tong", "tong cong", "cong", "total")
HEADER_SCAN_ROWS = 30
# A cell of a signature block, folded: a signatory's title, a signing instruction, or the
# place and date of signing ("Hà Nội, ngày 15 tháng 11 năm 2026", "ngày ... tháng ... năm").
SIGNATURE = re.compile(
    r"^(?:(?:tm|kt|tl|tuq) (?:ubnd|uy ban|chu tich|giam doc|thu truong|truong)"
    r"|nguoi (?:lap|duyet|kiem tra|ky)|ke toan|thu truong|lanh dao|(?:pho )?giam doc|(?:pho )?chu tich"
    r"|truong (?:phong|ban|bo phan)|van thu|xac nhan|ky (?:va )?(?:ghi ro )?(?:ho )?ten"
    r"|prepared by|approved by|signature|director|head of)\b"
    r"|\bngay\b.*\bthang\b.*\bnam\b")
# Text cells of a workbook that pandas' read_excel read as missing (its default NA strings).
EXCEL_MISSING = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                           "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
FOOTER_SCAN_ROWS = 40   # a signature block is a few rows; only the last rows are looked at


@dataclass
class ReadReport:
    header_row: int = 0                                    # 1-based row of the header
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    ignored_rows: list[dict[str, object]] = field(default_factory=list)  # row, reason, text
    headers: list[str] = field(default_factory=list)       # every header cell, as written, in file order
    footer_rows: int = 0                                   # rows of the signature block under the table


class MissingColumns(InvalidInput):
    """The file has no usable header row. ``headers`` are the cells of the row that looks
    most like one (or of the header row found), so a person can say which column is which
    (``column_map``) and read the file again."""

    def __init__(self, message: str, headers: list[str]) -> None:
        super().__init__(message, field="file")
        self.headers = headers


def fold(text: object) -> str:
    """Lower case, no diacritics, single spaces: 'Số Điện thoại' -> 'so dien thoai'."""
    value = str(text).replace("đ", "d").replace("Đ", "D")
    value = unicodedata.normalize("NFD", value)
    value = "".join(c for c in value if unicodedata.category(c) != "Mn")
    value = "".join(c if c.isalnum() else " " for c in value.lower())
    return " ".join(value.split())


def _utf8(raw: bytes, name: str, encoding: str | None) -> tuple[bytes, str]:
    """The file as NFC-composed UTF-8 without a byte-order mark, for pandas' C parser, and
    its first lines as text.

    Legacy code pages (cp1258) write tone marks as combining characters: compose them so
    "Trần" from any source compares equal. A UTF-8 file that is composed already (the usual
    case) is passed on as it is, without another copy of a large file.
    """
    text = _decode_raw(raw, name, encoding)
    if not text or text.isspace():
        raise InvalidInput(f"{name}: the file is empty")
    end = -1
    for _ in range(50):
        end = text.find("\n", end + 1)
        if end < 0:
            break
    head = unicodedata.normalize("NFC", text if end < 0 else text[:end])
    if encoding is None and not raw.startswith((b"\xff\xfe", b"\xfe\xff")) and unicodedata.is_normalized("NFC", text):
        return (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw), head
    return unicodedata.normalize("NFC", text).encode("utf-8"), head


def _decode_raw(raw: bytes, name: str, encoding: str | None) -> str:
    if encoding:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise InvalidInput(f"{name}: unknown encoding {encoding!r}; "
                               "try utf-8, utf-16 or cp1258 (Windows Vietnamese)") from None
        except UnicodeDecodeError as exc:
            bad = raw[exc.start:exc.start + 1]
            raise InvalidInput(f"{name}: cannot decode with {encoding}: byte {exc.start} ({bad!r}) "
                               "is not valid; choose another --encoding") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")  # Excel's "Unicode text"
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name}: not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}); "
                           "if the file uses a legacy Vietnamese code page, pass --encoding cp1258") from None


def _read_table(source: str | Path | IO[bytes], encoding: str | None) -> tuple[pd.DataFrame, str]:
    """Every cell of the file (object columns, row i of the frame = spreadsheet row i + 1)."""
    name = Path(str(getattr(source, "filename", None) or getattr(source, "name", None) or source)).name
    raw = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput(f"{name}: old Excel 97-2003 (.xls) files are not supported; save it as .xlsx or CSV")
    if raw.startswith(b"PK\x03\x04"):
        return _read_workbook(raw, name), name
    data, head = _utf8(raw, name, encoding)
    del raw   # a large file: keep one copy
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        # object, not str: plain Python strings in numpy arrays, no per-cell checks by pandas.
        table = pd.read_csv(io.BytesIO(data), header=None, dtype=object, sep=delimiter, keep_default_na=False,
                            skip_blank_lines=False, encoding="utf-8")
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidInput(f"{name}: not a readable CSV file ({exc})") from None
    return table, name


def _read_workbook(raw: bytes, name: str) -> pd.DataFrame:
    """The first worksheet, as openpyxl gave it through pandas: empty cells NaN, whole
    numbers int, dates datetime, and the rows above the first filled cell kept."""
    try:
        workbook = python_calamine.load_workbook(io.BytesIO(raw))
        sheets = [sheet.name for sheet in workbook.sheets_metadata
                  if sheet.typ == python_calamine.SheetTypeEnum.WorkSheet]
        rows = workbook.get_sheet_by_name(sheets[0]).to_python(skip_empty_area=False) if sheets else []
    except Exception as exc:  # calamine raises several kinds (zip, XML, password) for a damaged workbook
        raise InvalidInput(f"{name}: not a readable XLSX workbook ({exc})") from None
    while rows and all(cell == "" for cell in rows[-1]):
        rows.pop()   # formatted but empty rows at the end
    if not rows:
        return pd.DataFrame()
    columns = {}
    for position, column in enumerate(zip(*rows, strict=True)):
        # Most cells are text: only the others go through _excel_cell.
        columns[position] = np.array([v if v.__class__ is str and v not in EXCEL_MISSING else _excel_cell(v)
                                      for v in column], dtype=object)
    return pd.DataFrame(columns)


def _excel_cell(value: object) -> object:
    if value is None or value in EXCEL_MISSING:
        return np.nan
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return value


def _match(cell: object, headers: Mapping[str, tuple[str, ...]] = HEADERS) -> str | None:
    folded = fold(cell) if cell is not None and not (isinstance(cell, float) and np.isnan(cell)) else ""
    for canonical, names in headers.items():
        if folded in names:
            return canonical
    return None


def recognise(header: object) -> str | None:
    """The column a header names when we know it: ``"SĐT"`` → ``"phone"``."""
    return _match(header)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def read_frame(source: str | Path | IO[bytes], encoding: str | None = None,
               column_map: Mapping[str, str] | None = None, headers: Mapping[str, tuple[str, ...]] = HEADERS,
               required: tuple[str, ...] = REQUIRED) -> tuple[pd.DataFrame, ReadReport]:
    """Read a CSV/XLSX transaction list into canonical columns (object dtype).

    ``column_map`` maps canonical names to headers as written, for headers we do not know.
    ``headers`` and ``required``: another layout's columns (the transaction feed's file
    import); it must have a phone column, by which the header row is found.
    The index is the spreadsheet row number.
    """
    table, name = _read_table(source, encoding)
    report = ReadReport()
    wanted = {fold(v): k for k, v in (column_map or {}).items()}
    unknown = set(column_map or {}) - set(headers)
    if unknown:
        raise InvalidInput(f"column mapping: unknown column(s) {sorted(unknown)}; known: {', '.join(headers)}")

    def classify(cell: object) -> str | None:
        if not _blank(cell) and fold(cell) in wanted:
            return wanted[fold(cell)]
        return _match(cell, headers)

    header_index = None
    for index in range(min(HEADER_SCAN_ROWS, len(table))):
        found = {classify(cell) for cell in table.iloc[index]} - {None}
        if "phone" in found and len(found) >= 2:
            header_index = index
            break
    if header_index is None:
        seen = ", ".join(str(c) for c in (table.iloc[0] if len(table) else []) if not _blank(c)) or "(nothing)"
        raise MissingColumns(f"{name}: no header row with a phone column in the first {HEADER_SCAN_ROWS} rows; "
                             f"required columns: {', '.join(required)}; first row holds: {seen}",
                             _likely_header(table))
    header = list(table.iloc[header_index])
    above = list(table.iloc[header_index - 1]) if header_index else [None] * len(header)
    located: list[tuple[int, str, object]] = []   # position, canonical, header as written
    for position, cell in enumerate(header):
        canonical = classify(cell)
        written = cell
        if canonical is None and _blank(cell):
            canonical, written = classify(above[position]), above[position]  # header merged over two rows
        if canonical is not None:
            located.append((position, canonical, written))
    # A column a person named wins over one we recognised by its header; otherwise the
    # leftmost column of a kind is used.
    located.sort(key=lambda f: fold(f[2]) not in wanted)
    columns: dict[int, str] = {}
    for position, canonical, written in located:
        if canonical not in columns.values():
            columns[position] = canonical
            report.columns[canonical] = str(written)
    missing = [c for c in required if c not in columns.values()]
    if headers is HEADERS and "returned_on" not in columns.values() and "status" not in columns.values():
        missing.append("returned_on or status")
    present = [str(c).strip() for c in header if not _blank(c)]
    if missing:
        raise MissingColumns(f"{name}: required column(s) missing: {', '.join(missing)}; "
                             f"found columns: {', '.join(present)}", present)
    report.header_row = header_index + 1
    report.headers = present
    for index in range(header_index):
        text = " ".join(str(c) for c in table.iloc[index] if not _blank(c))
        if text:
            report.ignored_rows.append({"row": index + 1, "reason": "above the header", "text": text[:120]})

    first = header_index + 1
    cells = [table[c].to_numpy(dtype=object)[first:] for c in table.columns]
    numbers = np.arange(first + 1, first + 1 + len(table) - first)   # spreadsheet row numbers
    # Vectorised, no Python call per cell; a blank row has no phone, so only the rows
    # without one are looked at in the other columns.
    phone = _position(columns, "phone")
    no_phone = _empty(cells[phone])
    maybe = np.flatnonzero(no_phone)
    blank = np.zeros(len(numbers), dtype=bool)
    blank[maybe[np.logical_and.reduce([_empty(values[maybe]) for values in cells])]] = True
    for row in numbers[blank].tolist():
        report.ignored_rows.append({"row": row, "reason": "blank row", "text": ""})
    # A totals row has no phone and says "Tổng cộng" / "Total" somewhere, often in a
    # column we do not import (STT), so look at the whole of those few rows.
    without_phone = np.flatnonzero(no_phone & ~blank)
    texts = {int(i): _row_text(cells, int(i)) for i in without_phone}
    totals = [i for i, text in texts.items()
              if any(f" {fold(text)} ".startswith(f" {m} ") for m in TOTAL_MARKERS)]
    for i in totals:
        report.ignored_rows.append({"row": int(numbers[i]), "reason": "totals row", "text": texts[i][:120]})
    keep = ~blank
    keep[totals] = False
    footer = _footer(cells, no_phone, keep, columns)
    if footer is not None:
        for i in range(footer, len(keep)):
            if keep[i]:
                report.ignored_rows.append({"row": int(numbers[i]), "reason": "signature block",
                                            "text": _row_text(cells, i)[:120]})
        last = footer + int(np.flatnonzero(keep[footer:])[-1])
        report.footer_rows = last - footer + 1
        keep[footer:] = False
    body = pd.DataFrame({columns[p]: cells[p][keep] for p in columns}, index=pd.Index(numbers[keep]))
    return body, report


def _empty(values: np.ndarray) -> np.ndarray:
    return pd.isna(values) | (values == "")


def _row_text(cells: list[np.ndarray], i: int) -> str:
    """The filled cells of one row, joined by single spaces."""
    return " ".join(" ".join(str(values[i]) for values in cells if not _blank(values[i])).split())


def _footer(cells: list[np.ndarray], no_phone: np.ndarray, keep: np.ndarray,
            columns: Mapping[int, str]) -> int | None:
    """Where the signature block under the table begins (a position in ``cells``), if
    there is one.

    Walking up from the last row, the block is the rows after the last row that looks like
    data, from the first row with a signatory's title, a signing instruction or the place
    and date of signing; names under the titles come with it. A row looks like data when
    it has a phone (digits that are not the date of signing: the block may sit under the
    phone column), a readable date in a date column, or the agency, field or procedure of
    a row with a phone. So a transaction whose phone is missing is still reported as
    rejected, even at the end of the list, and so is everything above it.
    """
    phone = _position(columns, "phone")
    dates = [p for p, name in columns.items() if name.endswith(("_on", "_at"))]
    named = [p for p, name in columns.items() if name in ("agency", "field", "procedure")]
    rows = np.flatnonzero(keep)[-FOOTER_SCAN_ROWS:]
    signed = {i for i in rows.tolist() if any(SIGNATURE.search(fold(values[i])) for values in cells
                                              if not _blank(values[i]))}
    if not signed:
        return None

    def has_phone(i: int) -> bool:
        number = cells[phone][i]
        return not no_phone[i] and any(c.isdigit() for c in str(number)) and not SIGNATURE.search(fold(number))

    # Agencies, fields and procedures of the rows with a phone (in the scanned rows, a
    # title or a name under the phone column is not a phone).
    above = ~no_phone
    above[rows[0]:] = False
    with_phone = [i for i in rows.tolist() if has_phone(i)]
    known: dict[int, set[object]] = {}
    for p in named:
        candidates = {cells[p][i] for i in rows.tolist() if not _blank(cells[p][i])}
        seen = pd.Series(cells[p][above]).isin(candidates) if candidates else pd.Series([], dtype=bool)
        known[p] = set(cells[p][above][seen.to_numpy()].tolist()) | {cells[p][i] for i in with_phone}

    def looks_like_data(i: int) -> bool:
        if has_phone(i) or any(not _blank(cells[p][i]) and cells[p][i] in known[p] for p in named):
            return True
        readable = [cells[p][i] for p in dates if not _blank(cells[p][i])]
        return bool(readable) and bool(parse_dates(pd.Series(readable, dtype=object)).notna().any())

    start = None
    for i in rows[::-1].tolist():
        if looks_like_data(i):
            break
        if i in signed:
            start = i
    return start


def _likely_header(table: pd.DataFrame) -> list[str]:
    """The cells of the first row, among those scanned, with the most filled cells: title
    rows above a header fill one cell, the header fills them all."""
    best: list[str] = []
    for index in range(min(HEADER_SCAN_ROWS, len(table))):
        cells = [str(c).strip() for c in table.iloc[index] if not _blank(c)]
        if len(cells) > len(best):
            best = cells
    return best


def _position(columns: Mapping[int, str], canonical: str) -> int:
    return next(p for p, name in columns.items() if name == canonical)


def parse_dates(values: pd.Series) -> pd.Series:
    """Dates as Vietnamese exports write them: dd/mm/yyyy, dd-mm-yyyy, ISO, Excel serials,
    or real date cells. Unparseable values become NaT."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if isinstance(values.dtype, pd.StringDtype):  # CSV: text only
        is_date = pd.Series(False, index=values.index)
    else:
        is_date = values.map(lambda v: isinstance(v, (datetime, date, pd.Timestamp)))
    if is_date.any():
        result[is_date] = pd.to_datetime(values[is_date].map(pd.Timestamp))
    filled = values[~is_date].fillna("")
    distinct = pd.unique(filled)
    if len(distinct) < len(filled):  # dates repeat: parse each distinct value once
        parsed = parse_dates(pd.Series(distinct, dtype=object)).set_axis(distinct)
        result.loc[filled.index] = filled.map(parsed).to_numpy()
        return result
    text = filled.astype(str).str.strip()
    for fmt in ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
                "%Y-%m-%d %H:%M:%S"):
        todo = result.loc[text.index].isna()
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        result.loc[parsed.index] = result.loc[parsed.index].fillna(parsed)
    todo = result.loc[text.index].isna() & text.str.fullmatch(r"\d{5}(\.0+)?")
    if todo.any():
        serial = text[todo].astype(float)
        serial = serial[(serial > 20000) & (serial < 80000)]  # 1954..2119
        result.loc[serial.index] = pd.to_datetime(serial, unit="D", origin="1899-12-30")
    return result
