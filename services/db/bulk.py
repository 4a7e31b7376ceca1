"""Fast bulk inserts of a DataFrame: executemany on SQLite, COPY on PostgreSQL.

Per-row ORM or Core binding costs more than the database does for large batches, so
datetimes are converted once per column here, in the same transaction as the session.
On SQLite a column that holds one value for the whole batch (the batch, the source, the
period of a PM file, the flags) is written as a literal in the statement instead of being
bound on every row: only integers, booleans, NULL and timestamps formatted here qualify,
so the stored values and their types are exactly those binding would store.
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
        literals = _sqlite_constants(frame)
        varying = [c for c in columns if c not in literals]
        rows = _sqlite_rows(frame[varying]) if varying else [()] * len(frame)
        values = ", ".join(literals.get(c, "?") for c in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608 - names come from the model; literals are numbers or timestamps formatted here
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
    return len(frame)


def _sqlite_constants(frame: pd.DataFrame) -> dict[str, str]:
    """SQL literals for the columns that hold a single value in every row.

    Only values whose literal is unambiguous qualify: integers, booleans (stored as 0/1,
    as binding stores them), timestamps (the text binding would store) and all-missing
    columns (NULL). Floats and text stay bound, so no value is ever re-parsed or quoted.
    """
    literals: dict[str, str] = {}
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            values = column.to_numpy(dtype="datetime64[ns]")
            if not np.isnat(values[0]) and (values == values[0]).all():
                literals[name] = f"'{column.iloc[0].tz_convert('UTC').strftime(SQLITE_DATETIME)}'"
        elif isinstance(dtype, np.dtype) and dtype.kind in "biu":
            values = column.to_numpy()
            if (values == values[0]).all():
                literals[name] = str(int(values[0]))
        elif column.isna().all():
            literals[name] = "NULL"
    return literals


def _sqlite_rows(frame: pd.DataFrame) -> list[tuple]:
    converted = {}
    for name, column in frame.items():
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            converted[name] = format_times(column, SQLITE_DATETIME)
        elif column.dtype == bool:
            converted[name] = column.astype("int64")
        elif column.dtype == object:
            converted[name] = pd.Series(_objects(column), index=column.index, dtype=object)
        elif (
            isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf" and not column.hasnans
        ):
            converted[name] = column  # tolist() gives Python numbers, nothing to replace
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
            values.append(_objects(column))
        elif isinstance(column.dtype, pd.DatetimeTZDtype):
            # Periods and arrival times repeat: build each distinct datetime once.
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            distinct = np.array([*uniques.to_pydatetime(), None], dtype=object)
            values.append(distinct[codes].tolist())
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
            if column.hasnans:
                values.append(column.astype(object).where(column.notna(), None).tolist())
            else:
                values.append(column.tolist())
        else:
            values.append([None if _is_nan(v) else v for v in column.tolist()])
    cursor = raw.cursor()  # type: ignore[attr-defined]
    try:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
    finally:
        cursor.close()


def _objects(column: pd.Series) -> list[object]:
    """Values of an object column as the driver should get them: containers as JSON, NaN as
    NULL, everything else as it is (Series.map would turn [1, None] into [1.0, nan])."""
    return [None if _is_nan(v) else _json_if_container(v) for v in column.tolist()]


def _json_if_container(value: object) -> object:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)
