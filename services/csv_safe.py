"""Spreadsheet-safe CSV: text a spreadsheet would run as a formula is exported as text.

A cell starting with = + - @ (or a tab or line break, which some spreadsheets skip
before looking for those) is evaluated when the file is opened: an element or user name
like `=HYPERLINK(...)` becomes a live link or worse (OWASP "CSV injection"). Such cells
get a leading apostrophe, which spreadsheets show as text and do not display. Plain
numbers (-5, +1.5e3) are left alone: they are values, not formulas, and stay numeric.

The grids' client-side export applies the same rule (assets/grid_functions.js).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value` unchanged unless it is text a spreadsheet would evaluate: then quoted.

    A carriage return inside text becomes a line feed: CSV writers ending lines with "\n"
    leave a lone "\r" unquoted, and readers split the row there, so "x\r=1+1" would put
    a formula at the start of a new row. A line feed makes the writer quote the cell.
    """
    if not isinstance(value, str):
        return value
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.startswith(FORMULA_PREFIXES):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names are safe to export."""
    out = frame.rename(columns=safe_cell)
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            out.isetitem(position, column.map(safe_cell))
    return out


def safe_csv_text(text: str) -> str:
    """CSV text rewritten with every cell made safe (for CSV built elsewhere)."""
    rows = csv.reader(io.StringIO(text, newline=""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()
