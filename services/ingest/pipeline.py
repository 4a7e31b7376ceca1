"""Batch -> raw store -> validate -> store or quarantine. Nothing is dropped silently.

Every record of a batch ends in exactly one bucket, so for each batch
received = accepted + duplicates + quarantined (corrections are accepted records
that replace an earlier value with a new revision).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db import Database
from services.db.bulk import format_times, insert_frame
from services.db.models import (
    IngestBatch,
    Kpi,
    Measurement,
    PeriodCount,
    QuarantinedRecord,
    Source,
    utcnow,
)
from services.db.upsert import add_counts
from services.ingest.elements import resolve_elements

KEY = ["element_id", "kpi_id", "period_end"]
FUTURE_SKEW = timedelta(minutes=5)
RETENTION = timedelta(days=400)
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"

REASONS: dict[str, str] = {
    "missing_dn": "the record names no network element",
    "bad_timestamp": "the period end is missing or not a timestamp",
    "future_timestamp": "the period end lies in the future beyond the allowed clock skew",
    "too_old": "the period end is older than the retention period",
    "unknown_counter": "the counter is not mapped to a Beacon KPI (kept; replay after mapping)",
    "missing_value": "the value is empty",
    "not_numeric": "the value is not a number",
    "out_of_range": "the value is outside the KPI's valid range",
}


@dataclass
class BatchSummary:
    """What happened to one batch, in the shape `beacon ingest` prints."""

    batch_id: int
    source: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    corrections: int = 0
    quarantined: int = 0
    late: int = 0
    new_elements: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "corrections": self.corrections,
            "quarantined": self.quarantined,
            "late": self.late,
            "new_elements": self.new_elements,
            "reasons": dict(self.reasons),
            "batch_id": self.batch_id,
            "source": self.source,
        }


def ingest_records(
    db: Database,
    *,
    source: str,
    records: pd.DataFrame,
    raw: bytes | None = None,
    raw_format: str = "records-csv",
    received_at: datetime | None = None,
) -> BatchSummary:
    """Store a batch raw, then validate and store its records in one transaction.

    `records` has columns dn, kpi, period_end, value and optionally vendor, sw_version.
    When `raw` is not given the records themselves (as CSV) are kept as the raw batch.
    """
    received_at = received_at or utcnow()
    payload = raw if raw is not None else _records_csv(records)
    batch_id = _store_raw(
        db,
        source=source,
        payload=payload,
        raw_format=raw_format,
        received_at=received_at,
        count=len(records),
    )
    try:
        with db.session(write=True) as session:
            summary = _process(
                session,
                batch_id=batch_id,
                source_name=source,
                records=records,
                received_at=received_at,
            )
    except Exception as exc:
        # The raw batch stays, marked failed, so it can be replayed once the cause is fixed.
        with db.session(write=True) as session:
            session.execute(
                update(IngestBatch)
                .where(IngestBatch.id == batch_id)
                .values(
                    status="failed",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    finished_at=utcnow(),
                )
            )
        raise
    return summary


def ensure_source(
    session: Session,
    *,
    name: str,
    kind: str,
    description: str = "",
    expected_cadence_s: int = 900,
    allowed_lateness_s: int = 3600,
    stale_after_s: int = 2700,
) -> Source:
    """The source with this name, created with the given cadence when new."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        source = Source(
            name=name,
            kind=kind,
            description=description,
            expected_cadence_s=expected_cadence_s,
            allowed_lateness_s=allowed_lateness_s,
            stale_after_s=stale_after_s,
        )
        session.add(source)
        session.flush()
    return source


def _store_raw(
    db: Database, *, source: str, payload: bytes, raw_format: str, received_at: datetime, count: int
) -> int:
    with db.session(write=True) as session:
        source_row = ensure_source(session, name=source, kind=raw_format)
        batch = IngestBatch(
            source_id=source_row.id,
            received_at=received_at,
            status="processing",
            raw_format=raw_format,
            checksum=hashlib.sha256(payload).hexdigest(),
            raw=gzip.compress(payload, compresslevel=5),
            raw_size=len(payload),
            received=count,
        )
        session.add(batch)
        session.flush()
        return batch.id


def _process(
    session: Session,
    *,
    batch_id: int,
    source_name: str,
    records: pd.DataFrame,
    received_at: datetime,
) -> BatchSummary:
    source = session.scalar(select(Source).where(Source.name == source_name))
    assert source is not None  # created by _store_raw
    kpis = {k.name: k for k in session.scalars(select(Kpi))}
    summary = BatchSummary(batch_id=batch_id, source=source_name, received=len(records))
    frame, rejected = _validate(records, kpis=kpis, now=received_at)
    _quarantine(session, rejected, batch_id=batch_id, source_id=source.id, at=received_at)
    summary.quarantined = len(rejected)
    summary.reasons = dict(Counter(rejected["reason_code"])) if len(rejected) else {}

    if len(frame):
        attrs = _element_attributes(frame)
        ids, new = resolve_elements(session, frame["dn"].unique(), attributes=attrs)
        summary.new_elements = len(new)
        frame["element_id"] = frame["dn"].map(ids).astype("int64")
        frame["kpi_id"] = frame["kpi"].map({name: k.id for name, k in kpis.items()})
        frame = _classify(session, frame)
        late_mask = _late(frame, source=source).loc[frame["status"] != "duplicate"]
        written = frame[frame["status"] != "duplicate"]
        _write_measurements(
            session,
            written,
            late_mask=late_mask,
            batch_id=batch_id,
            source_id=source.id,
            received_at=received_at,
        )
        summary.accepted = len(written)
        summary.duplicates = int((frame["status"] == "duplicate").sum())
        summary.corrections = int((frame["status"] == "correction").sum())
        summary.late = int(late_mask.sum())
        newest = frame["period_end"].max().to_pydatetime()
        if source.watermark is None or newest > source.watermark:
            source.watermark = newest
        source.last_good_batch_at = received_at
        period_min, period_max = frame["period_end"].min(), frame["period_end"].max()
    else:
        period_min = period_max = None

    if summary.corrections:
        _audit_corrections(session, frame, source_name=source_name, batch_id=batch_id)
    source.last_received_at = received_at
    source.status = "ok"
    batch = session.get(IngestBatch, batch_id)
    assert batch is not None
    batch.status = "done"
    batch.finished_at = utcnow()
    batch.accepted = summary.accepted
    batch.duplicates = summary.duplicates
    batch.corrections = summary.corrections
    batch.quarantined = summary.quarantined
    batch.late = summary.late
    batch.reasons = summary.reasons
    batch.period_min = None if period_min is None else period_min.to_pydatetime()
    batch.period_max = None if period_max is None else period_max.to_pydatetime()
    return summary


def _audit_corrections(
    session: Session, frame: pd.DataFrame, *, source_name: str, batch_id: int
) -> None:
    """One audit event per batch that replaced stored values (with a few examples)."""
    corrected = frame[frame["status"] == "correction"]
    examples = [
        {
            "dn": row.dn,
            "kpi": row.kpi,
            "period_end": row.period_end.isoformat(),
            "old": None if pd.isna(row.existing_value) else float(row.existing_value),
            "new": float(row.value),
            "revision": int(row.revision),
        }
        for row in corrected.head(5).itertuples(index=False)
    ]
    audit.record(
        session,
        actor=Actor(name=f"source:{source_name}", kind="system"),
        action="ingest.correction",
        object_type="ingest_batch",
        object_id=batch_id,
        after={"corrections": len(corrected), "examples": examples},
    )


def _validate(
    records: pd.DataFrame, *, kpis: dict[str, Kpi], now: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split records into valid ones (typed) and rejected ones (with reason codes)."""
    frame = records.reset_index(drop=True).copy()
    for column in ("dn", "kpi", "period_end", "value"):
        if column not in frame:
            frame[column] = None
    reason = pd.Series(None, index=frame.index, dtype="object")
    detail = pd.Series(None, index=frame.index, dtype="object")

    def reject(mask: pd.Series, code: str, text: pd.Series | str | None = None) -> None:
        fresh = mask & reason.isna()
        reason[fresh] = code
        detail[fresh] = (
            REASONS[code]
            if text is None
            else (text[fresh] if isinstance(text, pd.Series) else text)
        )

    dn = frame["dn"].astype("string").str.strip()
    reject(dn.isna() | (dn == ""), "missing_dn")
    period = pd.to_datetime(frame["period_end"], utc=True, errors="coerce")
    reject(period.isna(), "bad_timestamp")
    now_ts = pd.Timestamp(now)
    reject(period > now_ts + FUTURE_SKEW, "future_timestamp")
    reject(period < now_ts - RETENTION, "too_old")
    kpi_name = frame["kpi"].astype("string").str.strip()
    known = kpi_name.isin(list(kpis))
    reject(
        ~known,
        "unknown_counter",
        "counter " + kpi_name.fillna("<empty>") + " is not mapped to a Beacon KPI",
    )
    raw_value = frame["value"]
    blank = raw_value.isna() | (raw_value.astype("string").str.strip() == "")
    reject(blank, "missing_value")
    value = pd.to_numeric(raw_value, errors="coerce")
    reject(
        value.isna() | ~np.isfinite(value.fillna(0)),
        "not_numeric",
        "value " + raw_value.astype("string").fillna("") + " is not a number",
    )
    low = kpi_name.map({n: k.valid_min for n, k in kpis.items()}).astype("float64")
    high = kpi_name.map({n: k.valid_max for n, k in kpis.items()}).astype("float64")
    out = (low.notna() & (value < low)) | (high.notna() & (value > high))
    reject(
        out,
        "out_of_range",
        "value "
        + value.astype("string").fillna("")
        + " outside "
        + low.astype("string")
        + ".."
        + high.astype("string")
        + " for "
        + kpi_name.fillna(""),
    )

    bad = reason.notna()
    rejected = frame[bad].copy()
    rejected["reason_code"] = reason[bad]
    rejected["reason"] = detail[bad]
    good = frame[~bad].copy()
    good["dn"] = dn[~bad].astype(str)
    good["kpi"] = kpi_name[~bad].astype(str)
    good["period_end"] = period[~bad]
    good["value"] = value[~bad].astype("float64")
    return good, rejected


def _classify(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    """Mark each record new, duplicate (same key and value) or correction (new value)."""
    frame = frame.reset_index(drop=True)
    frame["arrival"] = np.arange(len(frame))
    existing = _current_values(session, frame)
    frame = frame.merge(existing, on=KEY, how="left")
    frame = frame.sort_values("arrival", kind="stable").reset_index(drop=True)
    previous = frame.groupby(KEY, sort=False)["value"].shift(1)
    first = previous.isna() & ~frame.duplicated(KEY, keep="first")
    reference = previous.where(~first, frame["existing_value"]).astype("float64")
    same = np.isclose(frame["value"], reference, rtol=0, atol=1e-9) & reference.notna()
    frame["status"] = np.where(same, "duplicate", np.where(reference.isna(), "new", "correction"))
    writes = (frame["status"] != "duplicate").astype("int64")
    base = frame["existing_revision"].fillna(-1).astype("int64")
    frame["revision"] = base + writes.groupby([frame[k] for k in KEY]).cumsum()
    return frame


def _current_values(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    periods = [p.to_pydatetime() for p in frame["period_end"].unique()]
    kpi_ids = [int(k) for k in frame["kpi_id"].unique()]
    rows = session.execute(
        select(
            Measurement.element_id,
            Measurement.kpi_id,
            Measurement.period_end,
            Measurement.value,
            Measurement.revision,
        ).where(
            Measurement.period_end.in_(periods),
            Measurement.kpi_id.in_(kpi_ids),
            Measurement.superseded.is_(False),
        )
    ).all()
    existing = pd.DataFrame(rows, columns=[*KEY, "existing_value", "existing_revision"])
    existing["period_end"] = pd.to_datetime(existing["period_end"], utc=True)
    existing["element_id"] = existing["element_id"].astype("int64")
    existing["kpi_id"] = existing["kpi_id"].astype("int64")
    existing["existing_value"] = existing["existing_value"].astype("float64")
    existing["existing_revision"] = existing["existing_revision"].astype("float64")
    return existing


def _write_measurements(
    session: Session,
    written: pd.DataFrame,
    *,
    late_mask: pd.Series,
    batch_id: int,
    source_id: int,
    received_at: datetime,
) -> None:
    if written.empty:
        return
    corrected_keys = written.loc[written["existing_revision"].notna(), KEY].drop_duplicates()
    for row in corrected_keys.itertuples(index=False):
        session.execute(
            update(Measurement)
            .where(
                Measurement.element_id == int(row.element_id),
                Measurement.kpi_id == int(row.kpi_id),
                Measurement.period_end == row.period_end.to_pydatetime(),
                Measurement.superseded.is_(False),
            )
            .values(superseded=True)
        )
    last_write = ~written.duplicated(KEY, keep="last")
    rows = pd.DataFrame(
        {
            "element_id": written["element_id"].astype("int64").to_numpy(),
            "kpi_id": written["kpi_id"].astype("int64").to_numpy(),
            "period_end": written["period_end"].to_numpy(),
            "value": written["value"].astype("float64").to_numpy(),
            "revision": written["revision"].astype("int64").to_numpy(),
            "superseded": ~last_write.to_numpy(),
            "late": late_mask.to_numpy(dtype=bool),
            "source_id": source_id,
            "batch_id": batch_id,
        }
    )
    rows["period_end"] = pd.to_datetime(rows["period_end"], utc=True)
    rows["received_at"] = pd.Timestamp(received_at)
    insert_frame(session, Measurement.__table__, rows)
    per_period = rows.groupby("period_end", as_index=False).agg(
        accepted=("value", "size"), late=("late", "sum")
    )
    add_counts(
        session,
        PeriodCount.__table__,
        [
            {
                "source_id": source_id,
                "period_end": row.period_end.to_pydatetime(),
                "accepted": int(row.accepted),
                "late": int(row.late),
                "updated_at": received_at,
            }
            for row in per_period.itertuples(index=False)
        ],
        keys=("source_id", "period_end"),
        counters=("accepted", "late"),
        touch={"updated_at": received_at},
    )


def _quarantine(
    session: Session, rejected: pd.DataFrame, *, batch_id: int, source_id: int, at: datetime
) -> None:
    if rejected.empty:
        return
    columns = [c for c in rejected.columns if c not in ("reason_code", "reason")]
    rows = [
        {
            "batch_id": batch_id,
            "source_id": source_id,
            "received_at": at,
            "reason_code": row["reason_code"],
            "reason": str(row["reason"]),
            "field": _field_of(row["reason_code"]),
            "record": {c: _jsonable(row[c]) for c in columns},
        }
        for row in rejected.to_dict("records")
    ]
    session.execute(insert(QuarantinedRecord), rows)


def _element_attributes(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    cols = [c for c in ("vendor", "sw_version") if c in frame]
    if not cols:
        return {}
    first = frame.drop_duplicates("dn")[["dn", *cols]]
    first = first.astype(object).where(first.notna(), None)
    return {row.pop("dn"): row for row in first.to_dict("records")}


def _late(frame: pd.DataFrame, *, source: Source) -> pd.Series:
    """Records older than the running watermark minus the allowed lateness, in arrival order.

    The watermark advances record by record, so a batch that spans many periods (a
    backlog or a bulk load) flags the same records a stream of small batches would.
    """
    running = frame["period_end"].cummax().shift(1)
    if source.watermark is not None:
        floor = pd.Timestamp(source.watermark)
        running = running.fillna(floor).where(running.fillna(floor) > floor, floor)
    lateness = pd.Timedelta(seconds=source.allowed_lateness_s)
    return (frame["period_end"] < running - lateness).fillna(False).astype(bool)


def _field_of(code: str) -> str:
    return {
        "missing_dn": "dn",
        "unknown_counter": "kpi",
        "bad_timestamp": "period_end",
        "future_timestamp": "period_end",
        "too_old": "period_end",
    }.get(code, "value")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if not np.isfinite(value) else value
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _records_csv(records: pd.DataFrame) -> bytes:
    """The records as CSV, the raw form kept for batches that arrive as frames."""
    frame = records
    if "period_end" in records and isinstance(records["period_end"].dtype, pd.DatetimeTZDtype):
        frame = records.assign(period_end=format_times(records["period_end"], ISO_UTC))
    return frame.to_csv(index=False).encode()


def read_raw(batch: IngestBatch) -> bytes:
    """The batch exactly as received."""
    return gzip.decompress(batch.raw or b"")


def raw_records(batch: IngestBatch) -> pd.DataFrame:
    """A stored records-csv batch back as a frame (for replay)."""
    return pd.read_csv(io.BytesIO(read_raw(batch)), dtype={"value": "object"})
