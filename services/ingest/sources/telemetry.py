"""CSV and JSON telemetry: the simple formats for systems that cannot speak PM XML or VES.

CSV: a header row and one record per line. JSON: a list of objects, or an object with a
`records` list. Field names (case-insensitive; common aliases accepted):

    dn (element, object, measObjLdn)   kpi (counter, metric)   value
    period_end (timestamp, time, end)  vendor, sw_version, unit   (optional)

Everything arrives as text and is typed by the validation rules, so a bad value refuses
one record, never the file. A file that is not CSV/JSON at all, or lacks a required
column, is refused as a whole with a reason.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pandas as pd

from services.ingest.records import ParsedPayload, Rejected, empty_records
from services.ingest.sources.alarms_common import clean

ALIASES = {
    "dn": ("dn", "element", "object", "measobjldn", "element_dn"),
    "kpi": ("kpi", "counter", "metric", "meastype"),
    "period_end": ("period_end", "timestamp", "time", "end", "ds"),
    "value": ("value", "y", "measvalue"),
    "vendor": ("vendor",),
    "sw_version": ("sw_version", "swversion", "software"),
    "unit": ("unit",),
}
REQUIRED = ("dn", "kpi", "period_end", "value")
MAX_ERROR_TEXT = 300


def parse_csv(payload: bytes, *, name: str = "") -> ParsedPayload:
    """Records from CSV text (UTF-8, optional BOM); the whole file refused when unreadable."""
    try:
        # The parser decodes as it reads: no decoded copy of the whole payload first.
        frame = pd.read_csv(
            io.BytesIO(payload),
            encoding="utf-8-sig",
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        return _refused("malformed_payload", name, payload, exc)
    if b"\x00" in payload:
        # PostgreSQL stores no NUL in text; the raw batch keeps the original bytes.
        frame = frame.rename(columns=lambda c: clean(str(c)))
        frame = frame.apply(lambda column: column.str.replace("\x00", "\ufffd", regex=False))
    return _from_frame(frame, name=name, payload=payload, fmt="csv")


def parse_json(payload: bytes, *, name: str = "") -> ParsedPayload:
    """Records from a JSON list (or `{"records": [...]}`); non-object items refused one by one."""
    try:
        document = json.loads(payload.decode("utf-8-sig"))
    except ValueError as exc:
        # Not UTF-8, not JSON, or an integer longer than Python converts (4300 digits).
        return _refused("malformed_payload", name, payload, exc)
    except RecursionError:
        # A few kilobytes of "[[[[..." exhaust the decoder's recursion: hostile, not a crash.
        error = ValueError("the JSON is nested too deeply")
        return _refused("malformed_payload", name, payload, error)
    items = document.get("records") if isinstance(document, dict) else document
    if not isinstance(items, list):
        return _refused(
            "unsupported_format", name, payload, ValueError("expected a list of records")
        )
    objects, rejected = [], []
    for position, item in enumerate(items):
        if isinstance(item, dict):
            objects.append({clean(str(k)): _text(v) for k, v in item.items()})
        else:
            rejected.append(
                Rejected(
                    "schema_invalid",
                    {"position": position, "item": _text(item)},
                    reason=f"item {position} is not an object",
                )
            )
    frame = pd.DataFrame(objects) if objects else pd.DataFrame()
    parsed = _from_frame(frame, name=name, payload=payload, fmt="json", allow_empty=True)
    parsed.rejected = rejected + parsed.rejected
    return parsed


def _from_frame(
    frame: pd.DataFrame, *, name: str, payload: bytes, fmt: str, allow_empty: bool = False
) -> ParsedPayload:
    renamed = _canonical_columns(frame)
    missing = [c for c in REQUIRED if c not in renamed.columns]
    if missing and not (allow_empty and frame.empty):
        error = ValueError(f"missing column(s): {', '.join(missing)}")
        return _refused("missing_field", name, payload, error)
    if frame.empty:
        return ParsedPayload(records=empty_records(), meta={"format": fmt, "file": name})
    keep = [c for c in ALIASES if c in renamed.columns]
    records = renamed[keep].copy()
    return ParsedPayload(
        records=records, meta={"format": fmt, "file": name, "columns": list(frame.columns)}
    )


def _canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    lookup = {alias: canonical for canonical, names in ALIASES.items() for alias in names}
    # A column already named canonically keeps its name; otherwise the first alias wins.
    # Renaming "Value" to "value" beside an existing "value" would make two columns of one
    # name, which no later step can read.
    taken = {str(column) for column in frame.columns if str(column) in ALIASES}
    mapping: dict[str, str] = {}
    for column in frame.columns:
        canonical = lookup.get(str(column).strip().lower())
        if canonical and canonical not in taken and str(column) != canonical:
            mapping[column] = canonical
            taken.add(canonical)
    return frame.rename(columns=mapping)


def _refused(code: str, name: str, payload: bytes, exc: Exception) -> ParsedPayload:
    record: dict[str, Any] = {
        "file": name,
        "error": str(exc)[:MAX_ERROR_TEXT],
        "head": payload[:200].decode("utf-8", "replace"),
    }
    return ParsedPayload(
        records=empty_records(),
        rejected=[Rejected(code, record, reason=f"{name or 'payload'}: {record['error']}")],
        meta={"file": name},
    )


def _text(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, str):
        # "\ud800" and "\u0000" are valid JSON escapes that no database stores.
        return clean(value)
    if isinstance(value, bool | int | float):
        return value
    return json.dumps(value)
