"""Telemetry push: CSV or JSON records for systems that cannot send PM files or VES."""

from __future__ import annotations

from flask import request

from services.api.blueprint import api, endpoint
from services.api.errors import UnsupportedMediaType
from services.api.schemas.telemetry import IngestSummary, TelemetryQuery
from services.api.security import caller
from services.auth import Scope
from services.ingest.pipeline import ingest_records
from services.ingest.sources.telemetry import parse_csv, parse_json
from services.web.context import beacon

RECORD_FIELDS = {
    "dn": {"type": "string", "example": "SubNetwork=North,ManagedElement=SITE-0042"},
    "kpi": {"type": "string", "example": "prb_util_dl"},
    "period_end": {"type": "string", "format": "date-time"},
    "value": {"type": "number"},
    "vendor": {"type": "string"},
    "sw_version": {"type": "string"},
    "unit": {"type": "string"},
}
RAW_BODY = {
    "required": True,
    "description": 'Records as CSV (header row) or JSON (a list, or {"records": [...]}).',
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["dn", "kpi", "period_end", "value"],
                    "properties": RECORD_FIELDS,
                },
            }
        },
    },
}


@api.post("/telemetry")
@endpoint(
    scope=Scope.INGEST,
    resp=IngestSummary,
    status=202,
    errors=(400, 413, 415),
    tags=["ingest"],
    raw_body=RAW_BODY,
)
def push_telemetry(query: TelemetryQuery) -> tuple[IngestSummary, int]:
    """Store the body raw, validate every record, store or quarantine each with a reason."""
    payload = request.get_data(cache=False)
    kind = (request.mimetype or "").lower()
    if kind in ("text/csv", "application/csv"):
        parsed, fmt = parse_csv(payload, name="push"), "csv"
    elif kind == "application/json" or kind.endswith("+json"):
        parsed, fmt = parse_json(payload, name="push"), "json"
    else:
        raise UnsupportedMediaType("send text/csv or application/json")
    source = query.source or f"push:{caller().name}"
    summary = ingest_records(
        beacon().db,
        source=source,
        records=parsed.records,
        raw=payload,
        raw_format=fmt,
        rejected=parsed.rejected,
        source_kind="push",
    )
    return IngestSummary(**summary.as_dict()), 202
