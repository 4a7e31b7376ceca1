"""`beacon detect`: run the anomaly detector on one series from a CSV file, as a stream."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
import pandas as pd

from services.anomaly.stream import decide

TIME_DEFAULTS = ("timestamp", "ds")
VALUE_DEFAULTS = ("value", "y")


class InputError(click.ClickException):
    """Bad input file: one `error: …` line on stderr and exit status 2 (usage error)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _pick(columns: list[str], given: str | None, defaults: tuple[str, ...], what: str) -> str:
    if given is not None:
        if given not in columns:
            raise InputError(f"no {what} column {given!r}; the file has: {', '.join(columns)}")
        return given
    for name in defaults:
        if name in columns:
            return name
    raise InputError(
        f"no {what} column: pass --{what}-col (looked for {' or '.join(defaults)}; "
        f"the file has: {', '.join(columns)})"
    )


def read_series(
    path: Path, time_col: str | None, value_col: str | None
) -> tuple[pd.Series, list[str]]:
    """The value series (index = UTC timestamps, input order) and the raw timestamp texts."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from exc
    columns = [str(c) for c in frame.columns]
    if time_col is None and value_col is None and not set(TIME_DEFAULTS) & set(columns):
        raise InputError(
            f"no time column: pass --time-col (looked for timestamp or ds; the file has: "
            f"{', '.join(columns)})"
        )
    t_name = _pick(columns, time_col, TIME_DEFAULTS, "time")
    v_name = _pick(columns, value_col, VALUE_DEFAULTS, "value")
    texts = frame[t_name].str.strip()
    stamps = pd.to_datetime(texts, errors="coerce", utc=True, format="mixed")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"line {row + 2}: cannot read timestamp {texts.iloc[row]!r}")
    raw = frame[v_name].str.strip()
    values = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
    # Empty cells and NaN are gaps (reported as missing); any other text is an input error.
    not_number = values.isna() & (raw != "") & (raw.str.lower() != "nan")
    if not_number.any():
        row = int(np.flatnonzero(not_number.to_numpy())[0])
        raise InputError(f"line {row + 2}: value {raw.iloc[row]!r} is not a number")
    series = pd.Series(values.to_numpy(dtype=np.float64), index=pd.DatetimeIndex(stamps))
    return series, texts.tolist()


def _number(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(float(value), digits)


@click.command("detect", short_help="Score one series from a CSV: one JSON line per row.")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--time-col", default=None, help="Timestamp column (default: timestamp, or ds).")
@click.option("--value-col", default=None, help="Value column (default: value, or y).")
def detect(csv_path: Path, time_col: str | None, value_col: str | None) -> None:
    """Run Beacon's anomaly detector over CSV as a stream (row t sees rows up to t only).

    Prints one JSON object per input row, in input order: timestamp, value, score (robust
    sigma), confidence (calibrated 0-1), anomaly (confidence at the product default
    threshold) and status (ok, insufficient_data or missing).
    """
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such file")
    series, texts = read_series(csv_path, time_col, value_col)
    out = decide(series)
    lines = []
    for text, value, score, confidence, anomaly, status in zip(
        texts,
        series.to_numpy(),
        out["score"].to_numpy(),
        out["confidence"].to_numpy(),
        out["anomaly"].to_numpy(),
        out["status"].to_numpy(),
        strict=True,
    ):
        row = {
            "timestamp": text,
            "value": _number(value, 12),
            "score": _number(score, 4),
            "confidence": round(float(confidence), 4),
            "anomaly": bool(anomaly),
            "status": str(status),
        }
        lines.append(orjson.dumps(row).decode())
    if lines:
        click.echo("\n".join(lines))
