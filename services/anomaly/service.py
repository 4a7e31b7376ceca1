"""The detection service: each new complete period is evaluated once and episodes persisted.

Runs from the scheduler (job "anomaly.detect"). A cursor in the kv table remembers the last
period evaluated; a period is complete once every live telemetry source has delivered past
it and one period has passed on the clock. Periods that late data or corrections
changed afterwards (ReevaluationMark rows) are evaluated again and the episodes they touch
are marked revised. Reads happen outside write transactions; each chunk of periods is
written in one short transaction, so ingest keeps flowing on SQLite.
"""

from __future__ import annotations

import logging
import time
import weakref
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services import kv
from services.anomaly import annotate, detect, history, revisions, scoring
from services.anomaly.episodes import DEFAULT_END_AFTER, EpisodeState, advance, results_at
from services.anomaly.history import detection_step
from services.anomaly.persist import Batch, load_ongoing, save, state_from_row
from services.anomaly.thresholds import effective_thresholds
from services.db import Database
from services.db.models import (
    Anomaly,
    Element,
    Measurement,
    PeriodCount,
    ReevaluationMark,
    Source,
    utcnow,
)

log = logging.getLogger(__name__)

JOB_ID = "anomaly.detect"
JOB_EVERY_S = 60
CURSOR_KEY = "anomaly.cursor"
# Without a cursor (fresh install), start this far back so the stored history shows episodes.
FIRST_LOOKBACK = timedelta(days=14)
# Per run: a backlog is worked off in bounded runs, so a run never blocks the scheduler long.
MAX_PERIODS_PER_RUN = 192
CHUNK_PERIODS = 48
MAX_MARKS_PER_RUN = 500


@dataclass
class DetectionRun:
    """What one run did."""

    periods: int = 0
    reevaluated: int = 0
    opened: int = 0
    ended: int = 0
    written: int = 0
    revised: int = 0
    rows_read: int = 0
    seconds: float = 0.0
    cursor: str | None = None
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary (job history, CLI)."""
        out = asdict(self)
        out["failures"] = self.failures[:20]
        return out


@dataclass(frozen=True)
class Context:
    """Shared lookups of one run."""

    step: timedelta
    kpis: dict[int, scoring.KpiInfo]
    inventory: annotate.Inventory
    zone: tzinfo
    end_after: int
    cache: history.LagCache | None = None


# The lag window kept in memory between runs, per Database object of this process (the
# scheduler's); a restart starts cold.
_CACHES: dict[int, tuple[weakref.ref[Database], history.LagCache]] = {}


def lag_cache(db: Database) -> history.LagCache:
    """This process's lag cache for `db` (created empty on first use)."""
    entry = _CACHES.get(id(db))
    if entry is None or entry[0]() is not db:
        for key in [k for k, (ref, _c) in _CACHES.items() if ref() is None]:
            del _CACHES[key]
        entry = (weakref.ref(db), history.LagCache())
        _CACHES[id(db)] = entry
    return entry[1]


def run_detection(
    db: Database,
    *,
    now: datetime | None = None,
    zone: tzinfo = UTC,
    max_periods: int = MAX_PERIODS_PER_RUN,
    end_after: int = DEFAULT_END_AFTER,
    budget_s: float | None = None,
    use_cache: bool = True,
) -> DetectionRun:
    """Evaluate re-marked periods, then new complete periods (at most `max_periods`).

    With `budget_s`, stops after the chunk that exhausts the time budget; the cursor keeps
    the place, so the next run continues from there. With `use_cache`, lag columns read by
    earlier runs of this process are taken from memory (see `history.LagCache`); the
    verdicts are the same as without.
    """
    started = time.monotonic()
    now = now or utcnow()
    run = DetectionRun()
    # The cache stays claimed until the run ends, and is released however it ends.
    with ExitStack() as stack:
        with db.session() as session:
            step = detection_step(session)
            ctx = Context(
                step=step,
                kpis={k.id: k for k in scoring.kpi_infos(session)},
                inventory=annotate.Inventory(scoring.element_frame(session)),
                zone=zone,
                end_after=end_after,
            )
            cursor = _cursor(session)
            limit = complete_until(session, now=now, step=step)
            if cursor is None and limit is not None:
                cursor = _first_cursor(session, limit=limit, step=step, kpi_ids=list(ctx.kpis))
            if use_cache and cursor is not None:
                cache = lag_cache(db)
                # Another run of this process holds it: this one loads cold.
                if stack.enter_context(cache.claimed()):
                    synced = _synced_cache(cache, session, step=step, cursor=cursor)
                    ctx = replace(ctx, cache=synced)
        _evaluate(db, ctx=ctx, cursor=cursor, limit=limit, now=now, run=run,
                  max_periods=max_periods, budget_s=budget_s, started=started)  # fmt: skip
    run.seconds = round(time.monotonic() - started, 3)
    return run


def _evaluate(
    db: Database,
    *,
    ctx: Context,
    cursor: datetime | None,
    limit: datetime | None,
    now: datetime,
    run: DetectionRun,
    max_periods: int,
    budget_s: float | None,
    started: float,
) -> None:
    step = ctx.step
    if cursor is not None:
        revisions.reevaluate(db, ctx=ctx, cursor=cursor, now=now, run=run, limit=MAX_MARKS_PER_RUN)
    targets = _targets(cursor, limit, step=step, max_periods=max_periods)
    for i in range(0, len(targets), CHUNK_PERIODS):
        chunk = targets[i : i + CHUNK_PERIODS]
        batch = _score(db, ctx=ctx, targets=chunk, now=now, run=run)
        with db.session(write=True) as session:
            _apply(session, batch=batch, ctx=ctx, periods=chunk, run=run)
            kv.set_value(
                session, CURSOR_KEY, chunk[-1].isoformat(), description="last period evaluated"
            )
        run.periods += len(chunk)
        run.cursor = chunk[-1].isoformat()
        if budget_s is not None and time.monotonic() - started > budget_s:
            break


def _synced_cache(
    cache: history.LagCache, session: Session, *, step: timedelta, cursor: datetime
) -> history.LagCache | None:
    """The claimed lag cache with every column that may have changed dropped; None on doubt."""
    try:
        lags = detect.required_lags(detect.DetectorConfig(), pd.Timedelta(step))
        # Before re-evaluation marks are processed and before any column is read.
        cache.sync(session, step=step, lags=lags, since=cursor + step - step * max(lags))
    except Exception:
        log.warning("lag cache check failed; cold load", exc_info=True)
        cache.clear()
        return None
    return cache


def backfill(
    db: Database, *, days: float, now: datetime | None = None, zone: tzinfo = UTC
) -> DetectionRun:
    """Evaluate the last `days` of stored history (idempotent: covered periods add nothing)."""
    now = now or utcnow()
    with db.session(write=True) as session:
        step = detection_step(session)
        start = _floor(now - timedelta(days=days), step) - step
        cursor = _cursor(session)
        if cursor is None or cursor > start:
            kv.set_value(
                session, CURSOR_KEY, start.isoformat(), description="last period evaluated"
            )
    total = DetectionRun()
    while True:
        run = run_detection(db, now=now, zone=zone)
        for name in (
            "periods",
            "reevaluated",
            "opened",
            "ended",
            "written",
            "revised",
            "rows_read",
        ):
            setattr(total, name, getattr(total, name) + getattr(run, name))
        total.seconds = round(total.seconds + run.seconds, 3)
        total.failures += run.failures
        total.cursor = run.cursor or total.cursor
        if run.periods == 0:
            return total


def complete_until(session: Session, *, now: datetime, step: timedelta) -> datetime | None:
    """The newest period every live telemetry source has delivered and the clock has passed.

    Only sources that deliver measurements count (per-period counts exist), so a quiet
    alarm feed never holds detection back; a stale source is left out until it recovers.
    """
    live = session.scalars(
        select(Source.id).where(Source.enabled.is_(True), Source.status != "stale")
    ).all()
    newest = [
        session.scalar(select(func.max(PeriodCount.period_end)).where(PeriodCount.source_id == i))
        for i in live
    ]
    delivered = [n for n in newest if n is not None]
    if not delivered:
        return None
    # A period is judged once the slowest live source is past it, never from half the data.
    return min(_floor(min(delivered), step), _floor(now - step, step))


def _score(
    db: Database, *, ctx: Context, targets: list[datetime], now: datetime, run: DetectionRun
) -> Batch:
    with db.session() as session:
        scored = scoring.score_periods(
            session,
            targets=targets,
            step=ctx.step,
            kpis=list(ctx.kpis.values()),
            elements=ctx.inventory.frame,
            thresholds=effective_thresholds(session),
            now=now,
            cache=ctx.cache,
        )
        windows = annotate.change_windows(
            session, start=targets[0] - timedelta(days=1), end=targets[-1] + timedelta(days=1)
        )
    run.rows_read += scored.rows_read
    run.failures += scored.failures
    return Batch(
        verdicts=scored.verdicts,
        inventory=ctx.inventory,
        kpis=ctx.kpis,
        zone=ctx.zone,
        step=ctx.step,
        windows=windows,
    )


def _apply(
    session: Session, *, batch: Batch, ctx: Context, periods: list[datetime], run: DetectionRun
) -> None:
    """Step every period through the ongoing episodes, then write what changed."""
    states = load_ongoing(session)
    hits = batch.anomalous
    covered = _covered(session, hits, start=periods[0], end=periods[-1])
    groups = revisions.group_spans(session, ctx.inventory, since=periods[0] - ctx.step)
    names = hits.groupby(["element_id", "period_end"])["kpi"].agg(set) if len(hits) else None
    finished: list[EpisodeState] = []
    for period in periods:
        stamp = pd.Timestamp(period)
        part = hits[hits["period_end"] == stamp] if len(hits) else hits
        results = {
            key: result
            for key, result in (results_at(part).items() if len(part) else [])
            if not any(s <= period <= e for s, e in covered.get(key, ()))
        }
        before = set(states)
        flags = _flags_by_key(part)
        ended = advance(states, results, period=period, step=ctx.step, end_after=ctx.end_after)
        for key, result in results.items():
            state = states.get(key) or next((s for s in ended if s.key == key), None)
            if state is None:
                continue
            if key not in before:
                run.opened += 1
                state.group_key = revisions.assign_group(
                    groups, ctx.inventory, state=state, step=ctx.step
                )
            state.flags |= flags.get(key, set())
            if state.peak.period_end == result.period_end:
                state.history_points = _history(part, key)
            if names is not None and (key[0], stamp) in names.index:
                state.related_kpis |= set(names.loc[(key[0], stamp)])
        for state in ended:
            revisions.close_group(groups, state)
        run.ended += len(ended)
        finished += ended
    run.written += save(session, [*finished, *states.values()], batch)
    _graduate(session, batch.verdicts)


def _graduate(session: Session, verdicts: pd.DataFrame) -> None:
    """New elements scored on their own history have a baseline now: no longer cold starts."""
    if verdicts.empty:
        return
    own = verdicts[(verdicts["status"] == "ok") & (verdicts["baseline"] == "own")]
    ids = sorted({int(e) for e in own["element_id"]})
    if ids:
        session.execute(
            update(Element)
            .where(Element.id.in_(ids), Element.is_new.is_(True))
            .values(is_new=False)
        )


def _covered(
    session: Session, hits: pd.DataFrame, *, start: datetime, end: datetime
) -> dict[tuple[int, int], list[tuple[datetime, datetime]]]:
    """Spans of ended episodes already stored in this range (re-running adds nothing)."""
    if hits.empty:
        return {}
    rows = session.scalars(
        select(Anomaly).where(
            Anomaly.ended_at.is_not(None), Anomaly.ended_at >= start, Anomaly.started_at <= end
        )
    )
    out: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
    for row in rows:
        state = state_from_row(row)
        # The swing back to normal after the deviation is part of the episode's span too.
        last = max(state.ended_at or end, state.last_anomalous_at)
        out.setdefault(state.key, []).append((state.started_at, last))
    return out


def _flags_by_key(part: pd.DataFrame) -> dict[tuple[int, int], set[str]]:
    if part.empty:
        return {}
    return {
        (int(e), int(k)): set(f)
        for e, k, f in zip(part["element_id"], part["kpi_id"], part["flags"], strict=True)
    }


def _history(part: pd.DataFrame, key: tuple[int, int]) -> int:
    rows = part[(part["element_id"] == key[0]) & (part["kpi_id"] == key[1])]
    return int(rows["history"].iloc[0]) if len(rows) else 0


def _cursor(session: Session) -> datetime | None:
    value = kv.get_value(session, CURSOR_KEY)
    return None if value is None else datetime.fromisoformat(value)


def _first_cursor(
    session: Session, *, limit: datetime, step: timedelta, kpi_ids: list[int]
) -> datetime | None:
    """Just before the oldest stored period (at most FIRST_LOOKBACK back)."""
    oldest = [
        session.scalar(select(func.min(Measurement.period_end)).where(Measurement.kpi_id == k))
        for k in kpi_ids
    ]
    present = [o for o in oldest if o is not None]
    if not present:
        return None
    return max(min(present), _floor(limit - FIRST_LOOKBACK, step)) - step


def _targets(
    cursor: datetime | None, limit: datetime | None, *, step: timedelta, max_periods: int
) -> list[datetime]:
    if cursor is None or limit is None or limit <= cursor:
        return []
    count = min(max_periods, int((limit - cursor) / step))
    return [cursor + step * (i + 1) for i in range(count)]


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return moment - ((moment - epoch) % step)


def pending_marks(session: Session) -> int:
    """Periods waiting for re-evaluation."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ReevaluationMark)
            .where(ReevaluationMark.processed_at.is_(None))
        )
        or 0
    )
