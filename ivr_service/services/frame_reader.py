"""Read one-stop-shop transaction lists as agencies export them.

Real exports have title rows above the header (agency, report title, period), headers
merged over two rows, Vietnamese headers with or without diacritics, blank rows and a
totals row at the bottom. The header row is found by its contents; everything ignored is
reported. Row numbers in reports are the spreadsheet's own (1-based).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

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


@dataclass
class ReadReport:
    header_row: int = 0                                    # 1-based row of the header
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    ignored_rows: list[dict[str, object]] = field(default_factory=list)  # row, reason, text
    headers: list[str] = field(default_factory=list)       # every header cell, as written, in file order


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


def _decode(raw: bytes, name: str, encoding: str | None) -> str:
    # Legacy code pages (cp1258) write tone marks as combining characters: compose them so
    # "Trần" from any source compares equal.
    return unicodedata.normalize("NFC", _decode_raw(raw, name, encoding))


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
    name = Path(str(getattr(source, "filename", None) or getattr(source, "name", None) or source)).name
    raw = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput(f"{name}: old Excel 97-2003 (.xls) files are not supported; save it as .xlsx or CSV")
    if raw.startswith(b"PK\x03\x04"):
        try:
            table = pd.read_excel(io.BytesIO(raw), header=None, dtype=object)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise InvalidInput(f"{name}: not a readable XLSX workbook ({exc})") from None
        return table, name
    text = _decode(raw, name, encoding)
    if not text.strip():
        raise InvalidInput(f"{name}: the file is empty")
    sample = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        table = pd.read_csv(io.StringIO(text), header=None, dtype=str, sep=delimiter, keep_default_na=False,
                            skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidInput(f"{name}: not a readable CSV file ({exc})") from None
    return table, name


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

    whole = table.iloc[header_index + 1:]
    whole.index = pd.RangeIndex(header_index + 2, header_index + 2 + len(whole))
    body = whole.iloc[:, list(columns)]
    body.columns = [columns[p] for p in columns]
    # Vectorised: no Python call per cell. (pandas-stubs wrongly rejects a str for eq.)
    empty = whole.isna() | whole.eq("")  # type: ignore[arg-type]
    blank = empty.all(axis=1)
    for row in body.index[blank]:
        report.ignored_rows.append({"row": int(row), "reason": "blank row", "text": ""})
    # A totals row has no phone and says "Tổng cộng" / "Total" somewhere, often in a
    # column we do not import (STT), so look at the whole of those few rows.
    candidates = whole[empty.iloc[:, _position(columns, "phone")] & ~blank]
    texts = (candidates.map(lambda v: "" if _blank(v) else str(v)).agg(" ".join, axis=1) if len(candidates)
             else pd.Series([], dtype=object))
    totals = texts[texts.map(fold).map(lambda t: any(f" {t} ".startswith(f" {m} ") for m in TOTAL_MARKERS))]
    for row, text in zip(totals.index, totals, strict=True):   # the index holds file row numbers
        report.ignored_rows.append({"row": int(row), "reason": "totals row", "text": " ".join(text.split())[:120]})
    keep = ~blank
    keep[totals.index] = False
    return body[keep], report


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
