"""VES measurement events (7.x `measurement`, 5.x `measurementsForVfScaling`) -> counter records.

Naming (one mapping in `counter_mappings` then serves both VES versions):

- numbers at the top of the block: counter `measurement.<field>`, on dn = sourceName
  (5.x `vnfcScalingMetric` is read as 7.x `nfcScalingMetric`);
- array items (cpuUsageArray, memoryUsageArray, nicPerformanceArray / 5.x
  vNicPerformanceArray, diskUsageArray, ...): counter `<group>.<field>` for every number in
  the item, on dn = `<sourceName>,<group>=<identifier>` (e.g.
  `vnf01,cpuUsage=cpu0` / `cpuUsage.percentUsage`), because each CPU, NIC or disk is its
  own series; an item without identifier uses its position, and a lone item the sourceName;
- additionalMeasurements (7.x `{name, hashMap}`, 5.x `{name, arrayOfFields}`): counter
  `<name>.<key>` on dn = sourceName, the value as sent (the pipeline types it).

period_end is lastEpochMicrosec as UTC; vendor is the header's nfVendorName; an item with
valuesAreSuspect true marks its records suspect. Strings in fixed arrays (states, names)
are not values and are not read; nor are additionalFields, additionalObjects and ipmi.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from services.ingest.records import ParsedPayload, Rejected, empty_records
from services.ingest.sources.ves_errors import VesRefusal
from services.ingest.sources.ves_models import (
    MEASUREMENT_BLOCKS,
    MeasurementFields,
    epoch_datetime,
)
from services.ingest.sources.ves_parse import VesEvent, parse_stored

# Array -> (counter group, identifier field). 5.x and 7.x NIC arrays share one group.
ARRAYS: dict[str, tuple[str, str | None]] = {
    "cpuUsageArray": ("cpuUsage", "cpuIdentifier"),
    "memoryUsageArray": ("memoryUsage", "vmIdentifier"),
    "nicPerformanceArray": ("nicPerformance", "nicIdentifier"),
    "vNicPerformanceArray": ("nicPerformance", "vNicIdentifier"),
    "diskUsageArray": ("diskUsage", "diskIdentifier"),
    "filesystemUsageArray": ("filesystemUsage", "filesystemName"),
    "hugePagesArray": ("hugePages", "hugePagesIdentifier"),
    "processStatsArray": ("processStats", "processIdentifier"),
    "machineCheckExceptionArray": ("machineCheckException", "vmIdentifier"),
    "loadArray": ("load", None),
    "codecUsageArray": ("codecUsage", "codecIdentifier"),
}
NOT_VALUES = frozenset(
    {"measurementInterval", "measurementFieldsVersion", "measurementsForVfScalingVersion"}
)
RENAMED = {"vnfcScalingMetric": "nfcScalingMetric"}
COLUMNS = ("dn", "kpi", "period_end", "value", "vendor", "suspect", "event_id")
MAX_RDN = 200


def measurement_records(event: VesEvent) -> list[dict[str, Any]]:
    """The counter records of one measurement event (empty when it carries no values)."""
    header = event.header
    block = event.raw.get(MEASUREMENT_BLOCKS[header.domain], {})
    fields = event.block if isinstance(event.block, MeasurementFields) else None
    moment = epoch_datetime(header.lastEpochMicrosec)
    base = {
        "period_end": None if moment is None else moment.isoformat(),
        "vendor": (header.nfVendorName or "").strip()[:64] or None,  # the element's column size
        "event_id": header.eventId,
    }
    source = header.sourceName
    rows: list[dict[str, Any]] = []
    for key, value in block.items():
        if key not in NOT_VALUES and _is_number(value):
            counter = f"measurement.{RENAMED.get(key, key)}"
            rows.append(_row(base, source, counter, value, suspect=False))
    for key, (group, identifier) in ARRAYS.items():
        items = block.get(key)
        if not isinstance(items, list):
            continue
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            dn = _instance_dn(source, group, item.get(identifier or ""), position, len(items))
            suspect = str(item.get("valuesAreSuspect", "")).strip().lower() == "true"
            for name, value in item.items():
                if name != identifier and _is_number(value):
                    rows.append(_row(base, dn, f"{group}.{name}", value, suspect=suspect))
    for named in (fields.additionalMeasurements if fields else None) or []:
        for key, value in named.pairs():
            rows.append(_row(base, source, f"{named.name}.{key}", value, suspect=False))
    return rows


def records_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as the frame the pipeline takes (the record columns even when empty)."""
    if not rows:
        return empty_records()
    return pd.DataFrame(rows, columns=list(COLUMNS))


def measurement_payload(events: Sequence[VesEvent]) -> ParsedPayload:
    """Records of every event, and one refusal for each event that carries no values."""
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for event in events:
        found = measurement_records(event)
        if found:
            rows += found
        else:
            rejected.append(
                Rejected(
                    "no_measurements",
                    record=event.summary(),
                    field=MEASUREMENT_BLOCKS[event.domain],
                )
            )
    return ParsedPayload(records_frame(rows), rejected, {"format": "ves"})


def parse_ves_measurements(payload: bytes, *, name: str = "") -> ParsedPayload:
    """Replay parser for stored `ves` batches: the same records as when they arrived.

    A stored batch is a measurement request accepted once, so it is read without the
    schema folder (see `parse_stored`).
    """
    meta = {"format": "ves", "file": name}
    try:
        request = parse_stored(payload)
    except VesRefusal as refusal:
        refused = Rejected(
            refusal.reason_code,
            record=dict(refusal.facts),
            reason=refusal.error.sentence(),
            field=refusal.field,
        )
        return ParsedPayload(empty_records(), [refused], meta)
    if request.domain not in MEASUREMENT_BLOCKS:
        refusals = [Rejected("unsupported_event", record=e.summary()) for e in request.events]
        return ParsedPayload(empty_records(), refusals, meta)
    parsed = measurement_payload(request.events)
    parsed.meta.update(meta)
    return parsed


def _row(
    base: dict[str, Any], dn: str, counter: str, value: Any, *, suspect: bool
) -> dict[str, Any]:
    return {**base, "dn": dn, "kpi": counter, "value": _value(value), "suspect": suspect}


def _value(value: Any) -> Any:
    """Numbers as floats; an integer too large for a float stays text (refused as not_numeric)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return float(value)
    except OverflowError:
        return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _instance_dn(source: str, group: str, identifier: Any, position: int, count: int) -> str:
    """`<sourceName>,<group>=<identifier>`; the sourceName itself for a lone unnamed item."""
    label = (
        str(identifier).strip()
        if isinstance(identifier, str | int | float) and not isinstance(identifier, bool)
        else ""
    )
    if not label:
        if count == 1:
            return source
        label = str(position)
    # `,` and `=` would split the distinguished name into the wrong parts.
    label = label.replace(",", "_").replace("=", "_")[:MAX_RDN]
    return f"{source},{group}={label}"
