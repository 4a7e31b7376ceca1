"""Where data came from: sources, raw batches, quarantine, gaps, data-health events, alarms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, utcnow


class Source(Base):
    """A feed of telemetry or alarms with its expected cadence and watermark."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # simulator, pm_xml, ves, csv, alertmanager, ...
    description: Mapped[str] = mapped_column(Text, default="")
    expected_cadence_s: Mapped[int] = mapped_column(default=900)
    allowed_lateness_s: Mapped[int] = mapped_column(default=3600)
    stale_after_s: Mapped[int] = mapped_column(default=2700)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Highest period end accepted so far: data older than watermark - lateness is `late`.
    watermark: Mapped[datetime | None]
    last_received_at: Mapped[datetime | None]
    last_good_batch_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # ok, stale, failing
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestBatch(Base):
    """One delivery from a source, stored raw (compressed) before it is parsed."""

    __tablename__ = "ingest_batches"
    __table_args__ = (Index("ix_ingest_batches_source_received", "source_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="received")  # processing, done, failed
    raw_format: Mapped[str] = mapped_column(String(32))
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_size: Mapped[int] = mapped_column(default=0)
    received: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    corrections: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    late: Mapped[int] = mapped_column(default=0)
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)
    period_min: Mapped[datetime | None]
    period_max: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class PeriodCount(Base):
    """Records accepted per source and data period: completeness at a glance, at any scale."""

    __tablename__ = "period_counts"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    accepted: Mapped[int] = mapped_column(default=0)
    late: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReevaluationMark(Base):
    """A KPI period whose data changed after the fact (late data or a correction).

    Detectors that already judged this period re-run it and mark their results revised;
    `processed_at` is set once they have.
    """

    __tablename__ = "reevaluation_marks"

    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    records: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(String(16), default="late")  # late, correction
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)


class QuarantinedRecord(Base):
    """A record Beacon refused, kept verbatim with a machine reason and a human sentence."""

    __tablename__ = "quarantined_records"
    __table_args__ = (
        Index("ix_quarantine_source_reason", "source_id", "reason_code"),
        Index("ix_quarantine_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ingest_batches.id", ondelete="SET NULL")
    )
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason_code: Mapped[str] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(100))
    record: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # replayed, discarded
    replayed_at: Mapped[datetime | None]
    replay_batch_id: Mapped[int | None] = mapped_column(BigId)


class DataGap(Base):
    """Periods a source was expected to deliver for an element but did not."""

    __tablename__ = "data_gaps"
    __table_args__ = (
        Index("ix_data_gaps_source_start", "source_id", "period_start"),
        Index("ix_data_gaps_end", "period_end"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    element_id: Mapped[int | None] = mapped_column(ForeignKey("elements.id", ondelete="CASCADE"))
    kpi_id: Mapped[int | None] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    filled_at: Mapped[datetime | None]


class DataHealthEvent(Base):
    """Schema drift, value drift, staleness and recovery events that lower AI confidence."""

    __tablename__ = "data_health_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # schema_drift, value_drift, stale
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    element_id: Mapped[int | None] = mapped_column(ForeignKey("elements.id", ondelete="CASCADE"))
    kpi_id: Mapped[int | None] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    vendor: Mapped[str | None] = mapped_column(String(64))
    sw_version: Mapped[str | None] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Alarm(Base):
    """A fault from fault management (Alertmanager, TMF642, VES fault); cleared, not deleted."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_state_raised", "state", "raised_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    # Stable hash of the identifying labels: a clear matches the raise with the same labels.
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    element_id: Mapped[int | None] = mapped_column(ForeignKey("elements.id", ondelete="SET NULL"))
    element_ref: Mapped[str | None] = mapped_column(String(512))
    severity: Mapped[str] = mapped_column(String(16))
    probable_cause: Mapped[str | None] = mapped_column(String(200))
    specific_problem: Mapped[str | None] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="active")  # active, cleared
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
