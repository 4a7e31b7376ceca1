"""The managed network: elements, KPIs, counter mappings and measurements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, BigId, utcnow


class Element(Base):
    """A managed network object keyed by its 3GPP-style distinguished name."""

    __tablename__ = "elements"

    id: Mapped[int] = mapped_column(primary_key=True)
    dn: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # cell, site, link, router, core
    element_type: Mapped[str] = mapped_column(String(16), index=True)
    vendor: Mapped[str | None] = mapped_column(String(64))
    sw_version: Mapped[str | None] = mapped_column(String(64))
    technology: Mapped[str | None] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(16), index=True)  # RAN, Transport, Core
    region: Mapped[str | None] = mapped_column(String(64), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("elements.id", ondelete="SET NULL"))
    # True while the element has no baseline of its own (unknown when first seen).
    is_new: Mapped[bool] = mapped_column(default=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    parent: Mapped[Element | None] = relationship(remote_side=[id])


class Kpi(Base):
    """A key performance indicator with its valid range and capacity threshold."""

    __tablename__ = "kpis"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(32))
    element_type: Mapped[str] = mapped_column(String(16))
    valid_min: Mapped[float | None] = mapped_column(Float)
    valid_max: Mapped[float | None] = mapped_column(Float)
    higher_is_worse: Mapped[bool] = mapped_column(default=True)
    capacity_threshold: Mapped[float | None] = mapped_column(Float)
    criticality: Mapped[int] = mapped_column(default=2)  # 1 low .. 3 high
    description: Mapped[str] = mapped_column(Text, default="")


class CounterMapping(Base):
    """Maps a vendor counter name (from PM files or VES) to a Beacon KPI, with a scale."""

    __tablename__ = "counter_mappings"
    __table_args__ = (UniqueConstraint("vendor", "counter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64), default="*")
    counter: Mapped[str] = mapped_column(String(200))
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"))
    scale: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Measurement(Base):
    """One KPI value of one element for one period (event time = period end)."""

    __tablename__ = "measurements"
    # The natural key is the primary key, and on SQLite the table is stored in it (no rowid
    # tree): one B-tree fewer to maintain on every insert. Series reads (element, KPI, time)
    # use it directly; period reads (all elements of a KPI) use the (kpi, period) index.
    __table_args__ = (
        Index("ix_measurements_kpi_period", "kpi_id", "period_end"),
        {"sqlite_with_rowid": False},
    )

    element_id: Mapped[int] = mapped_column(
        ForeignKey("elements.id", ondelete="CASCADE"), primary_key=True
    )
    kpi_id: Mapped[int] = mapped_column(ForeignKey("kpis.id", ondelete="CASCADE"), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    # A correction is a new revision; the older row is kept (audit) and marked superseded.
    revision: Mapped[int] = mapped_column(primary_key=True, default=0)
    value: Mapped[float] = mapped_column(Float)
    superseded: Mapped[bool] = mapped_column(default=False)
    late: Mapped[bool] = mapped_column(default=False)
    # The source flagged the value as unreliable (3GPP `suspect`); kept, trusted less.
    suspect: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    batch_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ingest_batches.id", ondelete="SET NULL")
    )
