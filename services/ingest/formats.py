"""Which parser reads which raw format: used by `beacon ingest`, the drop folder and replay."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pandas as pd

from services.ingest.records import ParsedPayload, Rejected, empty_records
from services.ingest.sources import telemetry

Parser = Callable[..., ParsedPayload]


def parse_records_csv(payload: bytes, *, name: str = "") -> ParsedPayload:
    """The CSV Beacon itself keeps as raw for batches that arrived as frames (simulator).

    Beacon wrote it, but a replayed raw batch is still input: anything unreadable becomes
    one refusal with a reason, like every other parser, never an exception.
    """
    try:
        frame = pd.read_csv(io.BytesIO(payload), dtype={"value": "object"}, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        # ValueError covers UnicodeDecodeError and pandas' own dtype complaints.
        return _refused_records_csv(name, payload, exc)
    if "value" not in frame.columns:
        return _refused_records_csv(name, payload, ValueError("no value column"))
    frame["value"] = frame["value"].replace("", None)
    return ParsedPayload(records=frame, meta={"format": "records-csv", "file": name})


def _refused_records_csv(name: str, payload: bytes, exc: Exception) -> ParsedPayload:
    error = str(exc)[:300]
    record = {"file": name, "error": error, "head": payload[:200].decode("utf-8", "replace")}
    return ParsedPayload(
        records=empty_records(),
        rejected=[Rejected("malformed_payload", record, reason=f"{name or 'payload'}: {error}")],
        meta={"format": "records-csv", "file": name},
    )


def parsers() -> dict[str, Parser]:
    """raw_format -> parser; formats whose parser is not installed are simply absent."""
    table: dict[str, Parser] = {
        "csv": telemetry.parse_csv,
        "json": telemetry.parse_json,
        "records-csv": parse_records_csv,
        "simulator": parse_records_csv,
    }
    try:
        from services.ingest.sources.pm_xml import parse_pm_xml
    except ImportError:  # pragma: no cover - the PM parser ships with Beacon
        pass
    else:
        table["pm-xml"] = parse_pm_xml
    from services.ingest.sources.ves_measurements import parse_ves_measurements

    table["ves"] = parse_ves_measurements
    return table


def reprocessors() -> dict[str, Callable[..., object]]:
    """raw_format -> a function(db, batch_id=...) for batches that are not plain records."""
    from services.ingest.sources.alarms_batch import PARSERS as ALARM_PARSERS
    from services.ingest.sources.alarms_batch import replay_alarm_batch
    from services.ingest.sources.ves_store import EVENTS_FORMAT, reprocess_event_batch

    table: dict[str, Callable[..., object]] = {EVENTS_FORMAT: reprocess_event_batch}
    for fmt in ALARM_PARSERS:
        table[fmt] = replay_alarm_batch
    return table


def guess_format(name: str, payload: bytes) -> str | None:
    """A format from a file name, falling back to the first bytes; None when unknown."""
    lower = name.lower()
    if lower.endswith((".xml", ".xml.gz")) or payload[:2] == b"\x1f\x8b":
        return "pm-xml"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".json"):
        return "json"
    head = payload.lstrip()[:1]
    if head == b"<":
        return "pm-xml"
    if head in (b"[", b"{"):
        return "json"
    return None
