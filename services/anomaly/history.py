"""Loads what the detector reads: per KPI, only the lag columns it asks for.

A target period needs its own value plus the values `required_lags` steps back. Reading
just those period ends through the (kpi_id, period_end) index keeps one period's work
independent of how much history is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import Source

# Above this many distinct period ends one range scan is cheaper than a long IN list.
MAX_IN_LIST = 400
DEFAULT_STEP = timedelta(minutes=15)
META_COLUMNS = ["element_id", "period_end", "source_id", "late", "suspect"]


@dataclass(frozen=True)
class KpiHistory:
    """One KPI's values: a matrix (element_id x period_end) and the targets' row details."""

    kpi_id: int
    matrix: pd.DataFrame
    meta: pd.DataFrame  # META_COLUMNS for the target periods only
    rows_read: int


def detection_step(session: Session) -> timedelta:
    """The period length: the shortest cadence of the enabled sources (15 min by default)."""
    seconds = session.scalar(
        select(func.min(Source.expected_cadence_s)).where(Source.enabled.is_(True))
    )
    return timedelta(seconds=int(seconds)) if seconds else DEFAULT_STEP


def needed_periods(
    targets: Sequence[datetime], lags: Iterable[int], step: timedelta
) -> list[datetime]:
    """Every period end the targets and their lags touch, sorted."""
    lag_list = sorted({int(lag) for lag in lags})
    wanted = {t for t in targets}
    for target in targets:
        wanted.update(target - step * lag for lag in lag_list)
    return sorted(wanted)


def load_lags(
    session: Session,
    *,
    kpi_id: int,
    targets: Sequence[datetime],
    lags: Iterable[int],
    step: timedelta,
    element_ids: Sequence[int] | None = None,
) -> KpiHistory:
    """The KPI's current values at the targets and their lag periods (NaN where missing)."""
    periods = needed_periods(targets, lags, step)
    if not periods:
        return _empty(kpi_id)
    if len(periods) <= MAX_IN_LIST:
        frame = _read(session, kpi_id=kpi_id, periods=periods, element_ids=element_ids)
    else:
        frame = _read(
            session, kpi_id=kpi_id, span=(periods[0], periods[-1]), element_ids=element_ids
        )
        if len(frame):
            frame = frame[frame["period_end"].isin(pd.DatetimeIndex(periods))]
    return _shape(kpi_id, frame, targets)


def load_range(
    session: Session,
    *,
    kpi_id: int,
    start: datetime,
    end: datetime,
    targets: Sequence[datetime],
) -> KpiHistory:
    """Every stored value of the KPI in [start, end] (the naive loader benchmarks compare)."""
    return _shape(kpi_id, _read(session, kpi_id=kpi_id, span=(start, end)), targets)


def _read(
    session: Session,
    *,
    kpi_id: int,
    periods: Sequence[datetime] | None = None,
    span: tuple[datetime, datetime] | None = None,
    element_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Current rows of one KPI at the given periods (or in a span), as a frame.

    Reads through the driver's own cursor: at tens of thousands of rows per KPI the
    per-row work of SQLAlchemy's result objects costs several times the query itself.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"

    def bind(moment: datetime) -> object:
        # SQLite stores naive UTC text (see UTCDateTime); PostgreSQL takes aware datetimes.
        utc = moment.astimezone(UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else utc

    # Only placeholders are interpolated; every value travels as a bound parameter.
    sql = (
        "SELECT element_id, period_end, value, source_id, late, suspect FROM measurements "  # noqa: S608
        f"WHERE kpi_id = {mark} AND superseded = {mark}"
    )
    params: list[object] = [int(kpi_id), False]
    if periods is not None:
        sql += f" AND period_end IN ({', '.join([mark] * len(periods))})"
        params += [bind(p) for p in periods]
    if span is not None:
        sql += f" AND period_end >= {mark} AND period_end <= {mark}"
        params += [bind(span[0]), bind(span[1])]
    if element_ids is not None:
        sql += f" AND element_id IN ({', '.join([mark] * len(element_ids))})"
        params += [int(e) for e in element_ids]
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    names = ["element_id", "period_end", "value", "source_id", "late", "suspect"]
    if not rows:
        return pd.DataFrame(columns=names)
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "element_id": np.asarray(columns[0], dtype=np.int64),
            "period_end": _timestamps(columns[1]),
            "value": np.asarray(columns[2], dtype=np.float64),
            "source_id": np.asarray(columns[3], dtype=np.float64),  # None -> NaN
            "late": np.asarray(columns[4], dtype=bool),
            "suspect": np.asarray(columns[5], dtype=bool),
        }
    )


def _timestamps(values: tuple) -> pd.Series:  # type: ignore[type-arg]
    """UTC timestamps from SQLite text or PostgreSQL datetimes."""
    series = pd.Series(values)
    if isinstance(values[0], str):
        return pd.to_datetime(series, utc=True, format="ISO8601")
    return pd.to_datetime(series, utc=True)


def _shape(kpi_id: int, frame: pd.DataFrame, targets: Sequence[datetime]) -> KpiHistory:
    if frame.empty:
        return _empty(kpi_id, rows=0)
    # Only one current revision exists per key; keep the last defensively all the same.
    frame = frame.drop_duplicates(["element_id", "period_end"], keep="last")
    matrix = frame.pivot(index="element_id", columns="period_end", values="value").astype(float)
    target_index = pd.DatetimeIndex(pd.to_datetime(list(targets), utc=True))
    meta = frame.loc[frame["period_end"].isin(target_index), META_COLUMNS]
    meta = meta.sort_values(["period_end", "element_id"], kind="stable").reset_index(drop=True)
    return KpiHistory(kpi_id=kpi_id, matrix=matrix, meta=meta, rows_read=len(frame))


def _empty(kpi_id: int, rows: int = 0) -> KpiHistory:
    return KpiHistory(
        kpi_id=kpi_id,
        matrix=pd.DataFrame(dtype=float),
        meta=pd.DataFrame(columns=META_COLUMNS),
        rows_read=rows,
    )


# --- In-memory lag window between scheduler runs -------------------------------------------


class _KpiWindow:
    """One KPI's cached columns in one preallocated block: element rows x `width` slots.

    The block is allocated at full width on the KPI's first load, even while little history
    exists, and columns then move through its slots in place. So a scheduler reaches its
    steady memory at its first detection run instead of growing for weeks while the lag
    window fills (one column per period, up to the 28-day lag), and a run allocates only
    its transient view, which is freed and trimmed after the job.
    """

    def __init__(self, elements: pd.Index, width: int) -> None:
        self.elements = pd.Index(elements, dtype=np.int64, name="element_id")
        self.values = np.full((len(self.elements), width), np.nan)
        self.slots: dict[pd.Timestamp, int] = {}  # period -> column of `values`

    @property
    def loaded(self) -> set[pd.Timestamp]:
        """The periods held (a period read with no values is held as a column of NaN)."""
        return set(self.slots)

    def drop(self, periods: Iterable[pd.Timestamp]) -> None:
        for period in periods:
            self.slots.pop(period, None)

    def include(self, elements: pd.Index) -> None:
        """Add rows for elements not held yet (one with no value in the window until now)."""
        extra = pd.Index(elements).difference(self.elements)
        if extra.empty:
            return
        grown = self.elements.append(extra).sort_values()
        values = np.full((len(grown), self.values.shape[1]), np.nan)
        values[grown.get_indexer(self.elements)] = self.values
        self.elements = pd.Index(grown, dtype=np.int64, name="element_id")
        self.values = values

    def column(self, period: pd.Timestamp) -> np.ndarray:
        return self.values[:, self.slots[period]]

    def store(self, period: pd.Timestamp, column: np.ndarray) -> None:
        """Hold `column` (one value per element row) for `period`, in a free slot."""
        slot = self.slots.get(period)
        if slot is None:
            used = set(self.slots.values())
            slot = next(s for s in range(self.values.shape[1]) if s not in used)
            self.slots[period] = slot
        self.values[:, slot] = column

    def keep_only(self, periods: set[pd.Timestamp]) -> None:
        self.drop([p for p in self.slots if p not in periods])


class LagCache:
    """The recent lag columns of every KPI, kept between runs of one scheduler process.

    An optimisation only: every run first checks what may have changed since the columns
    were read and drops those columns (or everything), so a cached run reads exactly the
    values a cold load reads. A column is dropped when its period's delivery counts
    (`period_counts`: every ingest write touches them) differ from the snapshot taken
    before it was read, or when a ReevaluationMark is pending for it; everything is dropped
    when the step, the lag set, the KPIs or the element inventory change. After each run
    only the columns the next period needs are kept (memory: ~136 float columns per series).
    """

    def __init__(self) -> None:
        self.step: timedelta | None = None
        self.lags: tuple[int, ...] = ()
        self.kpis: dict[int, _KpiWindow] = {}
        self.counts: dict[pd.Timestamp, tuple] = {}  # type: ignore[type-arg]
        self.inventory: tuple | None = None  # type: ignore[type-arg]
        self.cold_loads = 0
        self.columns_read = 0
        self.lock = threading.Lock()  # one run at a time uses it: take it with claimed()

    @contextmanager
    def claimed(self) -> Iterator[bool]:
        """Hold the cache for one run; False (nothing held) when another run holds it.

        The lock is released when the block ends, whatever ends it: an exception anywhere in
        a run must never leave the cache locked (every later run would load cold for good).
        """
        held = self.lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                self.lock.release()

    def clear(self) -> None:
        self.kpis.clear()
        self.counts.clear()

    def sync(
        self,
        session: Session,
        *,
        step: timedelta,
        lags: Iterable[int],
        since: datetime | None = None,
    ) -> None:
        """Drop every cached column that may differ from the database now (call before reads).

        `since`: the oldest period this run may read (the snapshot taken now covers it).
        """
        from services.db.models import Element, Kpi, PeriodCount, ReevaluationMark

        lag_tuple = tuple(sorted({int(lag) for lag in lags}))
        inventory = (
            tuple(session.execute(select(func.count(Element.id), func.max(Element.id))).one()),
            tuple(session.scalars(select(Kpi.id).order_by(Kpi.id))),
        )
        if step != self.step or lag_tuple != self.lags or inventory != self.inventory:
            self.clear()
        self.step, self.lags, self.inventory = step, lag_tuple, inventory
        cached = [min(w.loaded) for w in self.kpis.values() if w.loaded]
        oldest = _stamp(since) if since is not None else None
        if cached:
            oldest = min(cached) if oldest is None else min(oldest, min(cached))
        # Snapshot of the delivery counts from the oldest cached column on (absent = no data).
        query = select(
            PeriodCount.period_end,
            PeriodCount.source_id,
            PeriodCount.accepted,
            PeriodCount.late,
            PeriodCount.updated_at,
        )
        if oldest is not None:
            query = query.where(PeriodCount.period_end >= oldest.to_pydatetime())
        counts: dict[pd.Timestamp, list] = {}  # type: ignore[type-arg]
        for period, *rest in session.execute(query):
            counts.setdefault(_stamp(period), []).append(tuple(rest))
        snapshot = {p: tuple(sorted(v, key=repr)) for p, v in counts.items()}
        cached_periods = set().union(*(w.loaded for w in self.kpis.values()))
        stale = {p for p in cached_periods if snapshot.get(p) != self.counts.get(p)}
        marks = session.execute(
            select(ReevaluationMark.kpi_id, ReevaluationMark.period_end).where(
                ReevaluationMark.processed_at.is_(None)
            )
        ).all()
        stale.update(_stamp(period) for _kpi, period in marks)
        for window in self.kpis.values():
            window.drop(stale)  # periods it does not hold are passed over
        self.counts = snapshot

    def load(
        self,
        session: Session,
        *,
        kpi_id: int,
        targets: Sequence[datetime],
        lags: Iterable[int],
        step: timedelta,
    ) -> KpiHistory:
        """What `load_lags` returns, reading only the columns not cached (targets always)."""
        lag_list = sorted({int(lag) for lag in lags})
        if self.step != step or tuple(lag_list) != self.lags:
            raise RuntimeError("lag cache used without sync for this step and lag set")
        needed = pd.DatetimeIndex(pd.to_datetime(needed_periods(targets, lag_list, step), utc=True))
        target_index = pd.DatetimeIndex(pd.to_datetime(list(targets), utc=True))
        following = max(targets) + step
        keep = set(
            pd.DatetimeIndex(pd.to_datetime(needed_periods([following], lag_list, step), utc=True))
        )
        width = len(lag_list) + 1  # the next period and its lags
        window = self.kpis.get(kpi_id)
        if window is None:
            # Nothing cached for this KPI: the cold load, whose columns then seed the cache.
            self.cold_loads += 1
            cold = load_lags(session, kpi_id=kpi_id, targets=targets, lags=lag_list, step=step)
            self.columns_read += len(needed)
            window = _KpiWindow(cold.matrix.index, width)
            for period in (p for p in needed if p in keep):
                window.store(period, _column(cold.matrix, period, window.elements))
            self.kpis[kpi_id] = window
            return cold
        # The targets are always read: their row details (meta) come from the database.
        target_set = set(target_index)
        missing = [p for p in needed if p not in window.slots or p in target_set]
        frame = pd.DataFrame(columns=["element_id", "period_end", "value", *META_COLUMNS[2:]])
        if missing:
            if len(missing) <= MAX_IN_LIST:
                frame = _read(session, kpi_id=kpi_id, periods=[p.to_pydatetime() for p in missing])
            else:
                frame = _read(
                    session,
                    kpi_id=kpi_id,
                    span=(missing[0].to_pydatetime(), missing[-1].to_pydatetime()),
                )
                if len(frame):
                    frame = frame[frame["period_end"].isin(pd.DatetimeIndex(missing))]
        self.columns_read += len(missing)
        fresh = _shape(kpi_id, frame, targets)
        window.include(fresh.matrix.index)
        read = set(missing)
        view = pd.DataFrame(
            np.column_stack(
                [
                    _column(fresh.matrix, p, window.elements) if p in read else window.column(p)
                    for p in needed
                ]
            ),
            index=window.elements,
            columns=pd.DatetimeIndex(needed, name="period_end"),
        )
        # Keep only what the next period needs (the bounded lag window), in place.
        window.keep_only(keep)
        for period in (p for p in missing if p in keep):
            window.store(period, view[period].to_numpy())
        # The shape a cold load gives: only elements and periods with a value, sorted.
        view = view.dropna(axis=0, how="all").dropna(axis=1, how="all")
        if view.empty:
            return KpiHistory(kpi_id, pd.DataFrame(dtype=float), fresh.meta, len(frame))
        return KpiHistory(kpi_id=kpi_id, matrix=view, meta=fresh.meta, rows_read=len(frame))

    def forget(self, kpi_id: int) -> None:
        self.kpis.pop(kpi_id, None)


def _column(matrix: pd.DataFrame, period: pd.Timestamp, elements: pd.Index) -> np.ndarray:
    """One period of a (element x period) matrix on the given element rows (NaN if absent)."""
    if period not in matrix.columns:
        return np.full(len(elements), np.nan)
    return matrix[period].reindex(elements).to_numpy(dtype=np.float64)


def _stamp(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
