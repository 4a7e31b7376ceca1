"""Daily busy-hour aggregates (`kpi_daily`): rolled up from measurements, or seeded from the
simulator's traffic model for the months before its live history begins.

Forecasts read these aggregates, never raw measurements: a year of one series is 365 rows
instead of 35,040. Only current revisions count (a correction replaces the value it
corrects), and every run re-does the last few days so late data lands in its day.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Table, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.db import Database
from services.db.bulk import insert_frame
from services.db.models import DailyAggregate, Element, Kpi, Measurement, utcnow
from services.forecast.aggregate import (
    busy_hour_daily,
    busy_hour_matrix,
    daily_frame,
    hourly_means,
)
from services.forecast.store import forecast_kpis
from services.ingest.simulator import NetworkSimulator

JOB_ID = "forecast.rollup"
JOB_EVERY_S = 3600
MEASURED = "measurements"
ARCHIVE = "simulator_archive"
MAX_CHUNK_DAYS = 7
# Rows read per KPI at a time (whole local days, at least one): bounds memory on large networks.
CHUNK_ROWS = 400_000
ARCHIVE_CHUNK_DAYS = 30
_WRITE_BATCH = 2_000
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_VALUE_COLUMNS = ("busy_hour_value", "busy_hour", "daily_mean", "daily_max", "samples")


@dataclass(frozen=True)
class RollupResult:
    """What one rollup did."""

    kpis: int
    days: int
    first_day: date | None
    last_day: date | None
    rows_read: int
    rows_written: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        """JSON-able summary (for job run details)."""
        out = asdict(self)
        for key in ("first_day", "last_day"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def rollup_days(
    db: Database,
    *,
    zone: ZoneInfo,
    days_back: int = 3,
    now: datetime | None = None,
    first_day: date | None = None,
    kpi_ids: Sequence[int] | None = None,
) -> RollupResult:
    """Aggregate the complete local days not yet rolled up, re-doing the last `days_back`.

    The first run covers every stored day. `first_day` forces a re-rollup from that day.
    Forecast KPIs only, unless `kpi_ids` names others.
    """
    started = time.perf_counter()
    moment = now or utcnow()
    last = pd.Timestamp(moment).tz_convert(zone).date() - timedelta(days=1)
    with db.session() as session:
        ids = list(kpi_ids) if kpi_ids is not None else [k.id for k in forecast_kpis(session)]
        first = first_day or _first_day_to_roll(session, ids, zone=zone, last=last, back=days_back)
    if first is None or first > last or not ids:
        return RollupResult(len(ids), 0, None, None, 0, 0, time.perf_counter() - started)
    rows_read = rows_written = 0
    for kpi_id in ids:
        with db.session() as session:
            chunk_days = _chunk_days(session, kpi_id)
        chunk_start = first
        while chunk_start <= last:
            chunk_end = min(last, chunk_start + timedelta(days=chunk_days - 1))
            with db.session(write=True) as session:
                measured = _read_span(
                    session,
                    kpi_id=kpi_id,
                    start=_local_midnight(chunk_start, zone),
                    end=_local_midnight(chunk_end + timedelta(days=1), zone),
                )
                rows_read += len(measured)
                daily = busy_hour_daily(measured, zone=zone)
                rows_written += upsert_daily(session, daily, source=MEASURED)
            chunk_start = chunk_end + timedelta(days=1)
    return RollupResult(
        kpis=len(ids),
        days=(last - first).days + 1,
        first_day=first,
        last_day=last,
        rows_read=rows_read,
        rows_written=rows_written,
        seconds=time.perf_counter() - started,
    )


def seed_simulator_archive(
    db: Database, simulator: NetworkSimulator, *, days: int, zone: ZoneInfo
) -> int:
    """Daily busy-hour values of the `days` local days before the simulator's anchor.

    Computed from the simulator's own traffic model (with its incidents), stored with
    source "simulator_archive". Idempotent: stored days are kept, except a measured day with
    fewer samples than the model's whole day (the day live data began part-way through).
    Returns the number of rows added or replaced.
    """
    if days <= 0:
        return 0
    anchor = pd.Timestamp(simulator.config.start)
    # Every local day that begins before the live history starts; the day the anchor falls
    # in is included whole (the model knows its later hours too).
    last = (anchor - pd.Timedelta(1, "ns")).tz_convert(zone).date()
    first = last - timedelta(days=days - 1)
    series = simulator.topology.series
    with db.session() as session:
        kpis = {k.name: k.id for k in forecast_kpis(session)}
        wanted = series["kpi"].isin(list(kpis)).to_numpy()
        element_of = _element_ids(session, series.loc[wanted, "dn"].unique().tolist())
        dn_ids = series["dn"].map(element_of)
        wanted = wanted & dn_ids.notna().to_numpy()
        if not wanted.any():
            return 0
        element_ids = dn_ids[wanted].to_numpy(dtype=np.int64)
        kpi_ids = series.loc[wanted, "kpi"].map(kpis).to_numpy(dtype=np.int64)
        existing = _existing(session, sorted(set(kpi_ids.tolist())), first, last)
    on_last = existing[existing.index.get_level_values("day") == last]
    if len(existing) >= int(wanted.sum()) * days and (on_last["source"] == ARCHIVE).all():
        return 0  # already seeded: skip the model entirely
    added = 0
    chunk_start = first
    while chunk_start <= last:
        chunk_end = min(last, chunk_start + timedelta(days=ARCHIVE_CHUNK_DAYS - 1))
        ends = _period_ends(simulator, chunk_start, chunk_end, zone)
        truth = simulator.truth(ends)
        n_series = len(series)
        if not (truth["dn"].iloc[:n_series].to_numpy() == series["dn"].to_numpy()).all():
            raise RuntimeError("simulator truth is not in topology series order")
        matrix = truth["value"].to_numpy(dtype=np.float64).reshape(len(ends), n_series).T
        daily = busy_hour_matrix(matrix[wanted], ends, zone=zone)
        frame = daily_frame(element_ids, kpi_ids, daily)
        frame = frame[(frame["day"] >= chunk_start) & (frame["day"] <= chunk_end)]
        keys = pd.MultiIndex.from_arrays([frame["element_id"], frame["kpi_id"], frame["day"]])
        stored = existing.reindex(keys)
        fresh = frame[stored["samples"].isna().to_numpy()]
        fuller = (stored["source"] != ARCHIVE) & (frame["samples"].to_numpy() > stored["samples"])
        with db.session(write=True) as session:
            added += upsert_daily(session, frame[fuller.to_numpy()], source=ARCHIVE)
            if len(fresh):
                fresh = fresh.assign(source=ARCHIVE, updated_at=pd.Timestamp(utcnow()))
                if session.get_bind().dialect.name == "sqlite":
                    # The text SQLAlchemy's Date stores on SQLite (bulk inserts bypass it).
                    fresh["day"] = [d.isoformat() for d in fresh["day"]]
                added += insert_frame(session, _table(), fresh)
        chunk_start = chunk_end + timedelta(days=1)
    return added


def upsert_daily(session: Session, frame: pd.DataFrame, *, source: str) -> int:
    """Write daily rows; a stored day is replaced unless it is an archive day with more samples.

    The exception keeps the simulator archive's whole day where live measurements cover only
    the part of the day after the live history began.
    """
    if frame.empty:
        return 0
    table = _table()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["element_id", "kpi_id", "day"],
        set_={
            **{name: excluded[name] for name in (*_VALUE_COLUMNS, "source", "updated_at")},
        },
        where=or_(table.c.source != ARCHIVE, excluded.samples >= table.c.samples),
    )
    stamp = utcnow()
    records = [
        {
            "element_id": int(row.element_id),
            "kpi_id": int(row.kpi_id),
            "day": row.day,
            "busy_hour_value": float(row.busy_hour_value),
            "busy_hour": int(row.busy_hour),
            "daily_mean": float(row.daily_mean),
            "daily_max": float(row.daily_max),
            "samples": int(row.samples),
            "source": source,
            "updated_at": stamp,
        }
        for row in frame.itertuples(index=False)
    ]
    for start in range(0, len(records), _WRITE_BATCH):
        session.execute(statement, records[start : start + _WRITE_BATCH])
    return len(records)


def load_daily(
    session: Session,
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    kpi_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Stored daily busy-hour series: element_id, kpi_id, ds (tz-naive local day), y."""
    query = select(
        DailyAggregate.element_id,
        DailyAggregate.kpi_id,
        DailyAggregate.day,
        DailyAggregate.busy_hour_value,
    )
    wanted = {(int(e), int(k)) for e, k in pairs} if pairs is not None else None
    if wanted is not None:
        if not wanted:
            return _empty_series(("element_id", "kpi_id", "ds", "y"))
        if len(wanted) <= 500:
            query = query.where(
                tuple_(DailyAggregate.element_id, DailyAggregate.kpi_id).in_(sorted(wanted))
            )
        else:
            # A long row-value list costs more to plan than reading the KPIs and filtering.
            query = query.where(DailyAggregate.kpi_id.in_(sorted({k for _e, k in wanted})))
    if kpi_ids is not None:
        query = query.where(DailyAggregate.kpi_id.in_([int(k) for k in kpi_ids]))
    rows = session.execute(
        query.order_by(DailyAggregate.element_id, DailyAggregate.kpi_id, DailyAggregate.day)
    ).all()
    frame = pd.DataFrame(rows, columns=["element_id", "kpi_id", "ds", "y"])
    if wanted is not None and len(wanted) > 500:
        keys = pd.MultiIndex.from_arrays([frame["element_id"], frame["kpi_id"]])
        frame = frame[keys.isin(list(wanted))].reset_index(drop=True)
    if frame.empty:
        return _empty_series(("element_id", "kpi_id", "ds", "y"))
    frame["ds"] = pd.to_datetime(frame["ds"])
    frame["y"] = frame["y"].astype(float)
    return frame


def load_hourly(
    session: Session, *, element_id: int, kpi_id: int, days: int = 28, zone: ZoneInfo
) -> pd.DataFrame:
    """Hourly means of one series over its newest `days` days: ds (tz-naive local hour), y."""
    newest = session.scalar(
        select(func.max(Measurement.period_end)).where(
            Measurement.element_id == element_id, Measurement.kpi_id == kpi_id
        )
    )
    if newest is None:
        return _empty_series(("ds", "y"))
    rows = session.execute(
        select(Measurement.period_end, Measurement.value).where(
            Measurement.element_id == element_id,
            Measurement.kpi_id == kpi_id,
            Measurement.superseded.is_(False),
            Measurement.period_end > newest - timedelta(days=days),
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["period_end", "value"])
    frame = frame.assign(element_id=element_id, kpi_id=kpi_id)
    hourly = hourly_means(frame, zone=zone)
    return hourly[["ds", "y"]].reset_index(drop=True)


def _chunk_days(session: Session, kpi_id: int) -> int:
    """Days per read so that one read holds about CHUNK_ROWS 15-minute values."""
    element_type = select(Kpi.element_type).where(Kpi.id == kpi_id).scalar_subquery()
    elements = session.scalar(
        select(func.count(Element.id)).where(Element.element_type == element_type)
    )
    per_day = max(1, int(elements or 0)) * 96
    return max(1, min(MAX_CHUNK_DAYS, CHUNK_ROWS // per_day))


def _first_day_to_roll(
    session: Session, kpi_ids: Sequence[int], *, zone: ZoneInfo, last: date, back: int
) -> date | None:
    """The newest rolled-up day minus `back` (or the first measured day on a first run)."""
    if not kpi_ids:
        return None
    newest = session.scalar(
        select(func.max(DailyAggregate.day)).where(
            DailyAggregate.kpi_id.in_(kpi_ids), DailyAggregate.source == MEASURED
        )
    )
    earliest = _earliest_measurement(session, kpi_ids)
    if earliest is None:
        return None
    first_measured = (pd.Timestamp(earliest) - pd.Timedelta(1, "ns")).tz_convert(zone).date()
    if newest is None:
        return first_measured
    return max(first_measured, min(newest, last) - timedelta(days=max(1, back) - 1))


def _earliest_measurement(session: Session, kpi_ids: Sequence[int]) -> datetime | None:
    # One MIN per KPI walks the (kpi_id, period_end) index; a MIN over all KPIs would scan.
    found = [
        session.scalar(select(func.min(Measurement.period_end)).where(Measurement.kpi_id == k))
        for k in kpi_ids
    ]
    found = [f for f in found if f is not None]
    return min(found) if found else None


def _read_span(session: Session, *, kpi_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """Current values of one KPI with period ends in (start, end], through the driver cursor.

    At hundreds of thousands of rows per KPI, SQLAlchemy's per-row result objects would cost
    several times the query.
    """
    connection = session.connection()
    is_sqlite = connection.dialect.name == "sqlite"
    mark = "?" if is_sqlite else "%s"

    def bind(moment: datetime) -> object:
        utc = moment.astimezone(UTC)
        return utc.strftime(_SQLITE_TIME) if is_sqlite else utc

    sql = (
        "SELECT element_id, period_end, revision, value FROM measurements "  # noqa: S608 - placeholders only
        f"WHERE kpi_id = {mark} AND superseded = {mark} "
        f"AND period_end > {mark} AND period_end <= {mark}"
    )
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, [int(kpi_id), False, bind(start), bind(end)])
        rows = cursor.fetchall()
    finally:
        cursor.close()
    columns = ["element_id", "kpi_id", "period_end", "value"]
    if not rows:
        return pd.DataFrame(columns=columns)
    element, period, revision, value = zip(*rows, strict=True)
    ends = pd.Series(period)
    ends = pd.to_datetime(ends, utc=True, format="ISO8601" if is_sqlite else None)
    frame = pd.DataFrame(
        {
            "element_id": np.asarray(element, dtype=np.int64),
            "kpi_id": int(kpi_id),
            "period_end": ends,
            "revision": np.asarray(revision, dtype=np.int64),
            "value": np.asarray(value, dtype=np.float64),
        }
    )
    # One current revision per key is the rule; should two exist, the latest wins.
    frame = frame.sort_values(["element_id", "period_end", "revision"], kind="stable")
    frame = frame.drop_duplicates(["element_id", "period_end"], keep="last")
    return frame[columns].reset_index(drop=True)


def _existing(session: Session, kpi_ids: Sequence[int], first: date, last: date) -> pd.DataFrame:
    """Samples and source of the stored days, indexed by (element_id, kpi_id, day)."""
    rows = session.execute(
        select(
            DailyAggregate.element_id,
            DailyAggregate.kpi_id,
            DailyAggregate.day,
            DailyAggregate.samples,
            DailyAggregate.source,
        ).where(
            DailyAggregate.kpi_id.in_(kpi_ids),
            DailyAggregate.day >= first,
            DailyAggregate.day <= last,
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["element_id", "kpi_id", "day", "samples", "source"])
    return frame.set_index(["element_id", "kpi_id", "day"])


def _element_ids(session: Session, dns: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(dns), 500):
        part = dns[start : start + 500]
        rows = session.execute(select(Element.dn, Element.id).where(Element.dn.in_(part)))
        found.update((dn, element_id) for dn, element_id in rows)
    return found


def _period_ends(
    simulator: NetworkSimulator, first: date, last: date, zone: ZoneInfo
) -> pd.DatetimeIndex:
    """The simulator's period ends in (local midnight of first, local midnight after last]."""
    period = simulator.config.period
    start = simulator.align(pd.Timestamp(_local_midnight(first, zone))) + period
    end = simulator.align(pd.Timestamp(_local_midnight(last + timedelta(days=1), zone)))
    return pd.date_range(start, end, freq=period)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant a local calendar day begins, in UTC (DST-safe)."""
    local = pd.Timestamp(day).tz_localize(zone, nonexistent="shift_forward", ambiguous=True)
    return local.tz_convert(UTC).to_pydatetime()


def _table() -> Table:
    return DailyAggregate.__table__  # type: ignore[return-value]


def _empty_series(columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in columns})
    if "ds" in frame:
        frame["ds"] = pd.Series(dtype="datetime64[ns]")
    for column in ("element_id", "kpi_id"):
        if column in frame:
            frame[column] = frame[column].astype(np.int64)
    return frame
