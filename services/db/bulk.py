"""Fast bulk inserts of a DataFrame: executemany on SQLite, COPY on PostgreSQL.

Per-row ORM or Core binding costs more than the database does for large batches, so
datetimes are converted once per column here, in the same transaction as the session.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sqlalchemy import Table
from sqlalchemy.orm import Session

# What SQLAlchemy's SQLite DateTime stores (naive UTC, always with microseconds).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def insert_frame(session: Session, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of `frame` (columns named like the table's) into `table`."""
    if frame.empty:
        return 0
    columns = list(frame.columns)
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        _copy(raw, table.name, columns, frame)
    else:
        rows = _sqlite_rows(frame)
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - names come from the model, values are bound
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
    return len(frame)


def _sqlite_rows(frame: pd.DataFrame) -> list[tuple]:
    converted = {}
    for name, column in frame.items():
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            converted[name] = format_times(column, SQLITE_DATETIME)
        elif column.dtype == bool:
            converted[name] = column.astype("int64")
        elif column.dtype == object:
            converted[name] = column.map(_json_if_container)
        else:
            converted[name] = column.astype(object).where(column.notna(), None)
    return list(zip(*(converted[c].tolist() for c in frame.columns), strict=True))


def format_times(column: pd.Series, pattern: str) -> pd.Series:
    """Format timestamps as text; each distinct time is formatted once (periods repeat)."""
    codes, uniques = pd.factorize(column.dt.tz_convert("UTC"))
    texts = np.array([t.strftime(pattern) for t in uniques] + [None], dtype=object)
    return pd.Series(texts[codes], index=column.index)  # code -1 (missing) -> None


def _copy(raw: object, table: str, columns: list[str], frame: pd.DataFrame) -> None:
    values = []
    for _name, column in frame.items():
        if column.dtype == object:
            values.append(column.map(_json_if_container).tolist())
        elif isinstance(column.dtype, pd.DatetimeTZDtype):
            values.append(column.dt.to_pydatetime().tolist())
        else:
            values.append([None if _is_nan(v) else v for v in column.tolist()])
    cursor = raw.cursor()  # type: ignore[attr-defined]
    try:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
    finally:
        cursor.close()


def _json_if_container(value: object) -> object:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)
