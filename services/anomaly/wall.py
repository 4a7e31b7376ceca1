"""Read queries for the NOC wall screen: open-episode counts, the top feed, health by area.

Every query filters on the indexed (status, started_at) pair and aggregates in SQL, so a
refresh reads a few dozen rows whatever the size of the network or of the episode history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from services.anomaly.service import JOB_ID
from services.anomaly.severity import SEVERITIES
from services.db.models import Anomaly, Element, JobRun, Kpi, utcnow

# Open on the wall = still needs eyes: not yet resolved, whether or not someone acknowledged it.
OPEN_STATUSES = ("open", "acknowledged")
# An ended episode stays on the wall this long, so the NOC sees what just happened; older
# ones wait on /anomalies (acknowledge or give feedback there) instead of drowning the feed.
RECENTLY_ENDED = timedelta(hours=1)
FEED_LIMIT = 12


@dataclass(frozen=True)
class EpisodeRow:
    """One open episode as the wall feed shows it."""

    id: int
    element: str
    area: str
    kpi: str
    severity: str
    confidence: float
    started_at: datetime
    ended_at: datetime | None
    status: str
    revised: bool


@dataclass(frozen=True)
class AreaHealth:
    """Elements with open episodes in one region or domain, and the worst severity there."""

    name: str
    affected: int
    total: int
    worst: str | None


@dataclass(frozen=True)
class DetectorRun:
    """The newest run of the detection job, so an empty feed can say whether it is working."""

    started_at: datetime
    status: str


@dataclass(frozen=True)
class WallSnapshot:
    """Everything the wall screen shows apart from source freshness."""

    counts: dict[str, int]
    suppressed: int
    episodes: list[EpisodeRow]
    regions: list[AreaHealth]
    domains: list[AreaHealth]
    detector: DetectorRun | None
    as_of: datetime

    @property
    def open_total(self) -> int:
        return sum(self.counts.values())

    @property
    def affected_elements(self) -> int:
        return sum(area.affected for area in self.domains)


def _severity_rank() -> ColumnElement[int]:
    """0 for critical .. 3 for warning, so MIN() is the worst and ORDER BY puts it first."""
    return case(
        *((Anomaly.severity == name, rank) for rank, name in enumerate(SEVERITIES)),
        else_=len(SEVERITIES),
    )


def _feed_order() -> tuple[ColumnElement[Any], ...]:
    """Worst severity first, then ongoing before ended, most confident, newest."""
    return (
        _severity_rank(),
        Anomaly.ended_at.is_not(None),
        Anomaly.confidence.desc(),
        Anomaly.started_at.desc(),
        Anomaly.id.desc(),
    )


def _open(now: datetime) -> ColumnElement[bool]:
    """Needs eyes now: not resolved, and ongoing or ended within the last hour."""
    return Anomaly.status.in_(OPEN_STATUSES) & (
        Anomaly.ended_at.is_(None) | (Anomaly.ended_at >= now - RECENTLY_ENDED)
    )


def severity_counts(session: Session, *, now: datetime) -> tuple[dict[str, int], int]:
    """Open, unsuppressed episodes per severity, and how many open ones are suppressed."""
    counts = dict.fromkeys(SEVERITIES, 0)
    suppressed = 0
    rows = session.execute(
        select(Anomaly.severity, Anomaly.suppressed, func.count())
        .where(_open(now))
        .group_by(Anomaly.severity, Anomaly.suppressed)
    )
    for severity, is_suppressed, n in rows:
        if is_suppressed:
            suppressed += int(n)
        elif severity in counts:
            counts[severity] += int(n)
    return counts, suppressed


def top_episodes(session: Session, *, now: datetime, limit: int = FEED_LIMIT) -> list[EpisodeRow]:
    """The open episodes that matter most: worst severity, ongoing, most confident, newest."""
    # Rank and cut on the anomalies alone, then join names for the few kept: joining first
    # makes the planner hash the whole inventory on every refresh.
    top = (
        select(Anomaly.id)
        .where(_open(now), Anomaly.suppressed.is_(False))
        .order_by(*_feed_order())
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        select(
            Anomaly.id,
            Element.name,
            func.coalesce(Element.region, Element.domain),
            Element.domain,
            Kpi.name,
            Anomaly.severity,
            Anomaly.confidence,
            Anomaly.started_at,
            Anomaly.ended_at,
            Anomaly.status,
            Anomaly.revised,
        )
        .join(top, top.c.id == Anomaly.id)
        .join(Element, Element.id == Anomaly.element_id)
        .join(Kpi, Kpi.id == Anomaly.kpi_id)
        .order_by(*_feed_order())
    )
    return [
        EpisodeRow(
            id=int(row[0]),
            element=row[1],
            area=row[2] if row[2] == row[3] else f"{row[2]} · {row[3]}",
            kpi=row[4],
            severity=row[5],
            confidence=float(row[6]),
            started_at=row[7],
            ended_at=row[8],
            status=row[9],
            revised=bool(row[10]),
        )
        for row in rows
    ]


def area_health(session: Session, *, now: datetime) -> tuple[list[AreaHealth], list[AreaHealth]]:
    """Health by region and by domain: elements with open episodes / all elements, worst severity.

    Both come from one (region, domain) grid; an element sits in one cell of the
    grid, so per-region and per-domain sums of distinct elements are exact.
    """
    region = func.coalesce(Element.region, Element.domain)
    # Per element first (a few thousand open rows at most); one pass over the inventory then
    # counts every element and the affected ones together, hashing only the small side.
    per_element = (
        select(Anomaly.element_id, func.min(_severity_rank()).label("rank"))
        .where(_open(now), Anomaly.suppressed.is_(False))
        .group_by(Anomaly.element_id)
        .subquery()
    )
    grid = session.execute(
        select(
            region,
            Element.domain,
            func.count(),
            func.count(per_element.c.element_id),
            func.min(per_element.c.rank),
        )
        .outerjoin(per_element, per_element.c.element_id == Element.id)
        .group_by(region, Element.domain)
    ).all()
    by_region: dict[str, list[int]] = {}
    by_domain: dict[str, list[int]] = {}
    for r, d, total, n, rank in grid:
        worst = len(SEVERITIES) if rank is None else int(rank)
        for key, bucket in ((r, by_region), (d, by_domain)):
            entry = bucket.setdefault(key, [0, 0, len(SEVERITIES)])
            entry[0] += int(n)
            entry[1] += int(total)
            entry[2] = min(entry[2], worst)
    return _areas(by_region), _areas(by_domain)


def _areas(bucket: dict[str, list[int]]) -> list[AreaHealth]:
    return [
        AreaHealth(
            name=name,
            affected=affected,
            total=total,
            worst=SEVERITIES[rank] if rank < len(SEVERITIES) else None,
        )
        for name, (affected, total, rank) in sorted(bucket.items())
    ]


def last_detector_run(session: Session) -> DetectorRun | None:
    """The newest run of the detection job (read through the job/started index)."""
    row = session.execute(
        select(JobRun.started_at, JobRun.status)
        .where(JobRun.job_id == JOB_ID)
        .order_by(JobRun.started_at.desc())
        .limit(1)
    ).first()
    return None if row is None else DetectorRun(started_at=row[0], status=row[1])


def wall_snapshot(
    session: Session, *, limit: int = FEED_LIMIT, now: datetime | None = None
) -> WallSnapshot:
    """All wall-screen figures, read in one session."""
    now = now or utcnow()
    counts, suppressed = severity_counts(session, now=now)
    regions, domains = area_health(session, now=now)
    return WallSnapshot(
        counts=counts,
        suppressed=suppressed,
        episodes=top_episodes(session, now=now, limit=limit),
        regions=regions,
        domains=domains,
        detector=last_detector_run(session),
        as_of=now,
    )
