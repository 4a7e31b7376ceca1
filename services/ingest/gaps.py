"""Gap detection: periods a source should have delivered for an element but did not.

A period is judged only once it is closed — its end is older than the source's allowed
lateness — so late data is not mistaken for a gap. An element is expected in a period
when it reported in the period before; a source that delivered nothing at all gets one
source-level gap instead of one per element. Consecutive missing periods extend one gap
record, and a gap that late data fills afterwards is marked filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from services import kv
from services.db.models import DataGap, Kpi, Measurement, PeriodCount, Source, utcnow

# On first run, look back this far (history loaded before the detector existed).
FIRST_LOOKBACK = timedelta(days=3)
# At most this many periods per source per run, so one run stays short.
MAX_PERIODS_PER_RUN = 400


@dataclass(frozen=True)
class GapScan:
    """What one scan found across all sources."""

    periods_checked: int
    gaps_opened: int
    gaps_extended: int
    gaps_filled: int


def scan_gaps(session: Session, *, now: datetime | None = None) -> GapScan:
    """Check every enabled source's closed periods since its cursor; mark filled gaps."""
    now = now or utcnow()
    checked = opened = extended = 0
    for source in session.scalars(select(Source).where(Source.enabled.is_(True))):
        c, o, e = _scan_source(session, source, now=now)
        checked, opened, extended = checked + c, opened + o, extended + e
    filled = _mark_filled(session, now=now)
    return GapScan(checked, opened, extended, filled)


def open_gaps(session: Session, *, since: datetime) -> list[DataGap]:
    """Gaps overlapping the time since `since`, newest first."""
    return list(
        session.scalars(
            select(DataGap).where(DataGap.period_end >= since).order_by(DataGap.period_end.desc())
        )
    )


def _scan_source(session: Session, source: Source, *, now: datetime) -> tuple[int, int, int]:
    cadence = timedelta(seconds=source.expected_cadence_s)
    closed_until = _floor(now - timedelta(seconds=source.allowed_lateness_s), cadence)
    key = f"gaps.cursor.{source.id}"
    cursor_text = kv.get_value(session, key)
    if cursor_text is None:
        first = session.scalar(
            select(PeriodCount.period_end)
            .where(PeriodCount.source_id == source.id)
            .order_by(PeriodCount.period_end)
            .limit(1)
        )
        if first is None:
            return 0, 0, 0  # never delivered: nothing to expect yet
        cursor = max(first, _floor(now - FIRST_LOOKBACK, cadence))
    else:
        cursor = datetime.fromisoformat(cursor_text)
    checked = opened = extended = 0
    period = cursor + cadence
    previous = _present(session, source.id, cursor)
    while period <= closed_until and checked < MAX_PERIODS_PER_RUN:
        present = _present(session, source.id, period)
        # Still expected: elements seen one period earlier, and those already in a gap.
        running = _running_gaps(session, source.id, period - cadence)
        if not present:
            if previous or None in running:
                o, e = _record(session, source.id, None, period, cadence)
                opened, extended = opened + o, extended + e
        else:
            expected = previous | {element for element in running if element is not None}
            for element_id in sorted(expected - present):
                o, e = _record(session, source.id, element_id, period, cadence)
                opened, extended = opened + o, extended + e
        previous = present
        kv.set_value(session, key, period.isoformat())
        session.flush()
        checked += 1
        period += cadence
    return checked, opened, extended


def _present(session: Session, source_id: int, period: datetime) -> set[int]:
    return set(
        session.scalars(
            select(Measurement.element_id)
            .where(
                # Naming the KPIs lets the (kpi, period) index serve a per-period read.
                Measurement.kpi_id.in_(all_kpi_ids(session)),
                Measurement.source_id == source_id,
                Measurement.period_end == period,
            )
            .distinct()
        )
    )


def all_kpi_ids(session: Session) -> list[int]:
    """Every KPI id (few): lets period-range reads use the (kpi, period) index."""
    return list(session.scalars(select(Kpi.id)))


def _running_gaps(session: Session, source_id: int, period: datetime) -> set[int | None]:
    """Elements (None: the whole source) whose open gap reaches up to `period`."""
    return set(
        session.scalars(
            select(DataGap.element_id).where(
                DataGap.source_id == source_id,
                DataGap.period_end == period,
                DataGap.filled_at.is_(None),
            )
        )
    )


def _record(
    session: Session, source_id: int, element_id: int | None, period: datetime, cadence: timedelta
) -> tuple[int, int]:
    """Extend the element's gap ending one period earlier, or open a new one."""
    element_match = (
        DataGap.element_id.is_(None) if element_id is None else DataGap.element_id == element_id
    )
    running = session.scalar(
        select(DataGap).where(
            DataGap.source_id == source_id,
            element_match,
            DataGap.period_end == period - cadence,
            DataGap.filled_at.is_(None),
        )
    )
    if running is not None:
        running.period_end = period
        return 0, 1
    session.add(
        DataGap(source_id=source_id, element_id=element_id, period_start=period, period_end=period)
    )
    return 1, 0


def _mark_filled(session: Session, *, now: datetime) -> int:
    """Gaps (of the last week) for which late data has since arrived."""
    candidates = session.scalars(
        select(DataGap).where(
            DataGap.filled_at.is_(None), DataGap.period_end >= now - timedelta(days=7)
        )
    ).all()
    cadence = {
        source.id: timedelta(seconds=source.expected_cadence_s)
        for source in session.scalars(select(Source))
    }
    kpi_ids = all_kpi_ids(session)
    filled = 0
    for gap in candidates:
        conditions = [
            Measurement.kpi_id.in_(kpi_ids),
            Measurement.source_id == gap.source_id,
            Measurement.period_end >= gap.period_start,
            Measurement.period_end <= gap.period_end,
        ]
        if gap.element_id is not None:
            conditions.append(Measurement.element_id == gap.element_id)
        periods = session.scalar(
            select(func.count(func.distinct(Measurement.period_end))).where(and_(*conditions))
        )
        wanted = int((gap.period_end - gap.period_start) / cadence[gap.source_id]) + 1
        # Filled only when every missing period has arrived since; partly filled stays open.
        if periods and periods >= wanted:
            gap.filled_at = now
            filled += 1
    return filled


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return moment - ((moment - epoch) % step)
