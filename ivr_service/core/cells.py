"""Spreadsheet cells that cannot run: the one rule every XLSX and CSV writer applies.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
by Excel and LibreOffice as a formula (CSV/formula injection): a campaign named
``=HYPERLINK("http://x","y")`` would become a live link in the export. Such text gets a
leading single quote, as OWASP recommends, so it is shown as written and never evaluated.
Numbers stay numbers: ``-3`` as a number is not text and is left alone.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text that a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and column name made safe (:func:`safe_cell`);
    numeric columns are not touched."""
    text = [column for column in frame.columns if not pd.api.types.is_numeric_dtype(frame[column])]
    safe = frame.copy()
    for column in text:
        safe[column] = frame[column].map(safe_cell)
    return safe.rename(columns=safe_cell)
