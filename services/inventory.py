"""The live network inventory: what elements exist, what they report, how loaded they are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.db.models import (
    Element,
    IngestBatch,
    Kpi,
    Measurement,
    PeriodCount,
    Source,
    utcnow,
)

ELEMENT_COLUMNS = (
    "id",
    "dn",
    "name",
    "element_type",
    "vendor",
    "sw_version",
    "technology",
    "domain",
    "region",
    "is_new",
    "first_seen",
    "last_seen",
)


@dataclass(frozen=True)
class InventorySummary:
    """Counts for the overview tiles."""

    by_type: dict[str, int]
    by_domain: dict[str, int]
    new_elements: int
    vendors: dict[str, int]
    measurements_24h: int  # accepted in the last 24 h
    newest_period: datetime | None


def summary(session: Session, *, now: datetime | None = None) -> InventorySummary:
    """Element counts by type, domain and vendor, plus the last day's measurement volume."""
    now = now or utcnow()
    by_type = dict(
        session.execute(
            select(Element.element_type, func.count()).group_by(Element.element_type)
        ).all()
    )
    by_domain = dict(
        session.execute(select(Element.domain, func.count()).group_by(Element.domain)).all()
    )
    vendors = dict(
        session.execute(
            select(Element.vendor, func.count())
            .where(Element.element_type == "cell", Element.vendor.is_not(None))
            .group_by(Element.vendor)
        ).all()
    )
    new_elements = session.scalar(select(func.count()).where(Element.is_new.is_(True))) or 0
    # Batch counts, not a scan of the measurements table: cheap at any network size.
    measurements_24h = (
        session.scalar(
            select(func.coalesce(func.sum(IngestBatch.accepted), 0)).where(
                IngestBatch.received_at >= now - timedelta(hours=24)
            )
        )
        or 0
    )
    newest = session.scalar(select(func.max(Source.watermark)))
    return InventorySummary(
        by_type=by_type,
        by_domain=by_domain,
        new_elements=int(new_elements),
        vendors=vendors,
        measurements_24h=int(measurements_24h),
        newest_period=newest,
    )


def region_table(session: Session) -> pd.DataFrame:
    """Elements per region and type (rows: regions; columns: sites, cells, links, new)."""
    rows = session.execute(
        select(
            func.coalesce(Element.region, Element.domain).label("region"),
            func.sum(case((Element.element_type == "site", 1), else_=0)).label("sites"),
            func.sum(case((Element.element_type == "cell", 1), else_=0)).label("cells"),
            func.sum(case((Element.element_type == "link", 1), else_=0)).label("links"),
            func.sum(case((Element.element_type.in_(("router", "core")), 1), else_=0)).label(
                "nodes"
            ),
            func.sum(case((Element.is_new.is_(True), 1), else_=0)).label("new"),
        )
        .group_by(func.coalesce(Element.region, Element.domain))
        .order_by(func.coalesce(Element.region, Element.domain))
    ).all()
    return pd.DataFrame(rows, columns=["region", "sites", "cells", "links", "nodes", "new"])


def elements_frame(session: Session, *, limit: int = 50_000) -> pd.DataFrame:
    """The inventory as a frame for the grid (newest-seen first)."""
    columns = [getattr(Element, name) for name in ELEMENT_COLUMNS]
    rows = session.execute(select(*columns).order_by(Element.dn).limit(limit)).all()
    return pd.DataFrame(rows, columns=list(ELEMENT_COLUMNS))


def kpi_trend_by_region(
    session: Session, *, kpi: str, hours: int = 48, now: datetime | None = None
) -> pd.DataFrame:
    """Hourly mean of one KPI per region over the last `hours` (current revisions only).

    The database averages per region and period, so the page reads a few hundred rows
    whatever the size of the network.
    """
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    rows = session.execute(
        select(Element.region, Measurement.period_end, func.avg(Measurement.value))
        .join(Element, Element.id == Measurement.element_id)
        .join(Kpi, Kpi.id == Measurement.kpi_id)
        .where(
            Kpi.name == kpi,
            Measurement.period_end >= since,
            Measurement.superseded.is_(False),
        )
        .group_by(Element.region, Measurement.period_end)
    ).all()
    frame = pd.DataFrame(rows, columns=["region", "period_end", "value"])
    if frame.empty:
        return pd.DataFrame(columns=["region", "hour", "value"])
    frame["hour"] = pd.to_datetime(frame["period_end"], utc=True).dt.floor("h")
    frame["region"] = frame["region"].fillna("—")
    return frame.groupby(["region", "hour"], as_index=False)["value"].mean()


def period_volume(
    session: Session, *, hours: int = 24, now: datetime | None = None
) -> pd.DataFrame:
    """Records accepted per source and data period over the last `hours` (event time).

    Read from the per-period counters the pipeline keeps, so it costs the same at any
    network size; a dip below a source's usual level is missing data.
    """
    now = now or utcnow()
    rows = session.execute(
        select(Source.name, PeriodCount.period_end, PeriodCount.accepted, PeriodCount.late)
        .join(Source, Source.id == PeriodCount.source_id)
        .where(PeriodCount.period_end >= now - timedelta(hours=hours))
        .order_by(PeriodCount.period_end)
    ).all()
    frame = pd.DataFrame(rows, columns=["source", "period_end", "accepted", "late"])
    frame["period_end"] = pd.to_datetime(frame["period_end"], utc=True)
    return frame
