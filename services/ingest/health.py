"""Freshness of every source: how old its newest data is and whether it has gone stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import DataHealthEvent, IngestBatch, QuarantinedRecord, Source, utcnow


@dataclass(frozen=True)
class SourceFreshness:
    """One source's state as the shell, overview and data-health pages show it."""

    source_id: int
    name: str
    kind: str
    status: str  # fresh, stale, unknown, disabled
    newest_period: datetime | None
    last_received_at: datetime | None
    age_seconds: float | None
    stale_after_s: int
    batches_24h: int
    records_24h: int
    quarantined_24h: int


def source_freshness(session: Session, *, now: datetime | None = None) -> list[SourceFreshness]:
    """Every source with its freshness and the last 24 hours' volume."""
    now = now or utcnow()
    since = now - timedelta(hours=24)
    volume = dict(
        (row.source_id, (row.batches, row.records))
        for row in session.execute(
            select(
                IngestBatch.source_id,
                func.count().label("batches"),
                func.coalesce(func.sum(IngestBatch.received), 0).label("records"),
            )
            .where(IngestBatch.received_at >= since)
            .group_by(IngestBatch.source_id)
        )
    )
    quarantined = dict(
        session.execute(
            select(QuarantinedRecord.source_id, func.count())
            .where(QuarantinedRecord.received_at >= since)
            .group_by(QuarantinedRecord.source_id)
        ).all()
    )
    result = []
    for source in session.scalars(select(Source).order_by(Source.name)):
        batches, records = volume.get(source.id, (0, 0))
        result.append(
            SourceFreshness(
                source_id=source.id,
                name=source.name,
                kind=source.kind,
                status=_status(source, now),
                newest_period=source.watermark,
                last_received_at=source.last_received_at,
                age_seconds=_age(source.last_received_at, now),
                stale_after_s=source.stale_after_s,
                batches_24h=int(batches),
                records_24h=int(records),
                quarantined_24h=int(quarantined.get(source.id, 0)),
            )
        )
    return result


def update_staleness(session: Session, *, now: datetime | None = None) -> list[str]:
    """Mark sources stale or fresh again; raise and resolve `stale` data-health events.

    Returns human lines describing what changed, for the job history.
    """
    now = now or utcnow()
    changes = []
    for source in session.scalars(select(Source).where(Source.enabled.is_(True))):
        state = _status(source, now)
        if state == "unknown":
            continue
        open_event = session.scalar(
            select(DataHealthEvent).where(
                DataHealthEvent.kind == "stale",
                DataHealthEvent.source_id == source.id,
                DataHealthEvent.resolved_at.is_(None),
            )
        )
        if state == "stale" and open_event is None:
            silent = _age(source.last_received_at, now) or 0
            session.add(
                DataHealthEvent(
                    kind="stale",
                    severity="major",
                    source_id=source.id,
                    detected_at=now,
                    summary=(
                        f"{source.name} silent for {int(silent // 60)} min "
                        f"(threshold {source.stale_after_s // 60} min)"
                    ),
                    details={"last_received_at": _iso(source.last_received_at)},
                )
            )
            changes.append(f"{source.name} went stale")
        elif state == "fresh" and open_event is not None:
            open_event.resolved_at = now
            changes.append(f"{source.name} delivers again")
        source.status = "stale" if state == "stale" else "ok"
    return changes


def stale_sources(freshness: list[SourceFreshness]) -> list[str]:
    """Names of enabled sources whose newest delivery is older than their threshold."""
    return [f.name for f in freshness if f.status == "stale"]


def _status(source: Source, now: datetime) -> str:
    if not source.enabled:
        return "disabled"
    if source.last_received_at is None:
        return "unknown"
    if (now - source.last_received_at).total_seconds() > source.stale_after_s:
        return "stale"
    return "fresh"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())
