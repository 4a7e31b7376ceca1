"""The forecasting service: which series to refit, fan-out to an executor, storing results.

Every series that is fitted ends with a stored forecast: Prophet's (or the seasonal-naive
model the backtest preferred), or, when the fit timed out or failed, a seasonal-naive
forecast labelled `fallback` with the cause in plain language. Per-series problems are
logged and counted; the loop always continues.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database
from services.db.models import DailyAggregate, Element, Forecast, Kpi, utcnow
from services.errors import InvalidInput, NotFound
from services.forecast import rollup, store
from services.forecast.breach import BreachRisk, breach_risk
from services.forecast.executor import FitOutcome, FitTask, ForecastExecutor, make_executor
from services.forecast.model import (
    MODEL_VERSION,
    ForecastConfig,
    ForecastResult,
    seasonal_naive_forecast,
)

log = logging.getLogger(__name__)

JOB_ID = "forecast.nightly"
DAILY = store.DAILY
HOURLY = store.HOURLY
GRANULARITIES = (DAILY, HOURLY)
BACKTEST_MAX_AGE = timedelta(days=7)  # older backtests are re-run with the next fit
# Series first fitted together would all re-run their backtests on the same night; up to
# three days' stagger per series spreads that cost over several nights.
BACKTEST_STAGGER_H = 72
HOURLY_HORIZON_DAYS = 14  # hourly paths beyond two weeks add cost, not planning value
HOURLY_HISTORY_DAYS = 28
LOAD_CHUNK = 200  # series whose history is read at a time (memory stays flat on big networks)
SAVE_EVERY = 25  # results stored per transaction (SQLite: few, larger transactions)
SAVE_EVERY_S = 2.0

Progress = Callable[[int, int], None]


@dataclass
class ForecastRun:
    """What one run did, by outcome; `deferred` series wait for the next run (time budget)."""

    fitted: int = 0
    fallback: int = 0
    failed: int = 0
    insufficient: int = 0
    skipped: int = 0
    deferred: int = 0
    timed_out: int = 0
    planned: int = 0
    seconds: float = 0.0
    forecast_ids: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (job run detail, CLI output)."""
        out = asdict(self)
        del out["forecast_ids"]
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class _Target:
    key: tuple[int, int]
    kpi: Kpi


def run_forecasts(
    db: Database,
    settings: Settings,
    *,
    pairs: list[tuple[int, int]] | None = None,
    granularity: str = DAILY,
    executor: ForecastExecutor | None = None,
    progress: Progress | None = None,
    force: bool = False,
    limit: int | None = None,
    budget_s: float | None = None,
) -> ForecastRun:
    """Fit and store forecasts of every stale series (all with `force`, or the given pairs).

    A series is stale when its current forecast ended training before its newest stored day
    or came from another model version. `budget_s` stops handing out new fits once spent;
    the rest (`deferred`) are still stale, so the next run picks them up.
    """
    started = time.monotonic()
    if granularity not in GRANULARITIES:
        raise InvalidInput(f"granularity must be one of {', '.join(GRANULARITIES)}")
    if granularity == HOURLY and pairs is None:
        raise InvalidInput("hourly forecasts are made for named series only")
    run = ForecastRun()
    with db.session() as session:
        kpis = {k.id: k for k in store.forecast_kpis(session)}
        targets, run.skipped = _plan(
            session, kpis=kpis, pairs=pairs, granularity=granularity, force=force
        )
    if limit is not None:
        run.skipped += max(0, len(targets) - limit)
        targets = targets[: max(0, limit)]
    run.planned = len(targets)
    if progress is not None:
        progress(0, len(targets))
    if targets:
        own = executor is None
        executor = executor or make_executor(
            settings.forecast_executor, workers=settings.forecast_workers
        )
        try:
            _fan_out(db, settings, executor, targets, granularity, run, progress, started,
                     budget_s)  # fmt: skip
        finally:
            if own:
                executor.close()
    run.seconds = time.monotonic() - started
    log.info("forecast run: %s", run.as_dict())
    return run


def forecast_one(
    db: Database, settings: Settings, *, element_id: int, kpi_id: int, granularity: str = DAILY
) -> int:
    """Fit one series now (in a worker process, with the timeout); returns its forecast id."""
    with db.session() as session:
        if session.get(Element, element_id) is None:
            raise NotFound(f"no element with id {element_id}")
        kpi = session.get(Kpi, kpi_id)
        if kpi is None:
            raise NotFound(f"no KPI with id {kpi_id}")
        if kpi_id not in {k.id for k in store.forecast_kpis(session)}:
            raise InvalidInput(f"{kpi.name} is not forecast (it has no capacity threshold)")
    executor = make_executor(settings.forecast_executor, workers=1)
    try:
        run = run_forecasts(db, settings, pairs=[(element_id, kpi_id)], granularity=granularity,
                            executor=executor)  # fmt: skip
    finally:
        executor.close()
    forecast_id = run.forecast_ids.get((element_id, kpi_id))
    if forecast_id is None:
        raise InvalidInput("the forecast could not be stored; see the log for the cause")
    return forecast_id


def stale_series(db: Database, *, granularity: str = DAILY) -> int:
    """How many series have newer daily data (or a newer model) than their current forecast."""
    with db.session() as session:
        kpis = {k.id: k for k in store.forecast_kpis(session)}
        targets, _ = _plan(session, kpis=kpis, pairs=None, granularity=granularity, force=False)
    return len(targets)


def _plan(
    session: Session,
    *,
    kpis: dict[int, Kpi],
    pairs: Sequence[tuple[int, int]] | None,
    granularity: str,
    force: bool,
) -> tuple[list[_Target], int]:
    """The series to fit, never-forecast ones first; and how many were skipped."""
    if pairs is not None:
        wanted = list(dict.fromkeys((int(e), int(k)) for e, k in pairs))
        targets = [_Target(key, kpis[key[1]]) for key in wanted if key[1] in kpis]
        for e, k in wanted:
            if k not in kpis:
                log.warning("series (%s, %s) skipped: KPI %s is not forecast", e, k, k)
        return targets, len(wanted) - len(targets)
    if not kpis:
        return [], 0
    newest = session.execute(
        select(DailyAggregate.element_id, DailyAggregate.kpi_id, func.max(DailyAggregate.day))
        .where(DailyAggregate.kpi_id.in_(list(kpis)))
        .group_by(DailyAggregate.element_id, DailyAggregate.kpi_id)
    ).all()
    current = {
        (e, k): (end, version)
        for e, k, end, version in session.execute(
            select(
                Forecast.element_id, Forecast.kpi_id, Forecast.training_end, Forecast.model_version
            ).where(
                Forecast.is_current.is_(True),
                Forecast.granularity == granularity,
                Forecast.kpi_id.in_(list(kpis)),
            )
        )
    }
    fresh, stale, skipped = [], [], 0
    for e, k, last_day in newest:
        known = current.get((e, k))
        if known is None:
            fresh.append(_Target((e, k), kpis[k]))
        elif force or known[1] != MODEL_VERSION or _day(known[0]) < _as_date(last_day):
            stale.append(_Target((e, k), kpis[k]))
        else:
            skipped += 1
    order = sorted(fresh, key=lambda t: t.key) + sorted(stale, key=lambda t: t.key)
    return order, skipped


def _fan_out(
    db: Database,
    settings: Settings,
    executor: ForecastExecutor,
    targets: list[_Target],
    granularity: str,
    run: ForecastRun,
    progress: Progress | None,
    started: float,
    budget_s: float | None,
) -> None:
    deadline = started + budget_s if budget_s is not None else None
    pending: dict[tuple[int, int], tuple[FitTask, _Target]] = {}
    batch = _Batch(db, settings, granularity, run)
    done = 0

    def on_done(outcome: FitOutcome) -> None:
        nonlocal done
        task, target = pending.pop(outcome.key)
        result, risk = outcome.result, outcome.risk
        if result is None:
            run.timed_out += int(outcome.timed_out)
            cause = (
                f"Prophet did not finish within the {settings.forecast_timeout_s:g} s limit"
                if outcome.timed_out
                else f"Prophet failed ({outcome.error})"
            )
            log.warning("forecast %s: %s", outcome.key, cause)
            result = _fallback(task, cause)
        batch.add(task, target, result, risk)
        done += 1
        if progress is not None:
            progress(done, len(targets))

    tasks = _tasks(db, settings, targets, granularity, pending, deadline, run)
    try:
        executor.run(tasks, timeout_s=settings.forecast_timeout_s, on_done=on_done)
    finally:
        batch.flush()


def _tasks(
    db: Database,
    settings: Settings,
    targets: list[_Target],
    granularity: str,
    pending: dict[tuple[int, int], tuple[FitTask, _Target]],
    deadline: float | None,
    run: ForecastRun,
) -> Iterator[FitTask]:
    """Fit tasks, history read a chunk at a time; stops handing out work past the deadline."""
    handed = 0
    for start in range(0, len(targets), LOAD_CHUNK):
        chunk = targets[start : start + LOAD_CHUNK]
        if deadline is not None and time.monotonic() >= deadline:
            break
        histories, stored = _load(db, settings, chunk, granularity)
        for target in chunk:
            if deadline is not None and time.monotonic() >= deadline:
                break
            params, backtest = stored.get(target.key, ({}, {}))
            task = FitTask(
                key=target.key,
                history=histories.get(target.key, _EMPTY),
                config=_config(settings, target.kpi, granularity),
                warm_params=params or None,
                backtest=backtest if _recent(backtest, target.key) else None,
            )
            pending[target.key] = (task, target)
            handed += 1
            yield task
    run.deferred = len(targets) - handed
    if run.deferred:
        log.info("forecast time budget spent: %d series left for the next run", run.deferred)


_EMPTY = pd.DataFrame({"ds": pd.Series(dtype="datetime64[ns]"), "y": pd.Series(dtype=float)})


def _load(
    db: Database, settings: Settings, chunk: list[_Target], granularity: str
) -> tuple[dict[tuple[int, int], pd.DataFrame], dict[tuple[int, int], tuple[dict, dict]]]:
    keys = [t.key for t in chunk]
    with db.session() as session:
        if granularity == HOURLY:
            histories = {
                (e, k): rollup.load_hourly(
                    session, element_id=e, kpi_id=k, days=HOURLY_HISTORY_DAYS, zone=settings.zone
                )
                for e, k in keys
            }
            return histories, {}  # daily fits' parameters do not fit an hourly model
        frame = rollup.load_daily(session, pairs=keys)
        stored = store.current_params(session, keys, granularity=DAILY)
    histories = {
        (int(e), int(k)): group[["ds", "y"]].reset_index(drop=True)
        for (e, k), group in frame.groupby(["element_id", "kpi_id"], sort=False)
    }
    return histories, stored


def _config(settings: Settings, kpi: Kpi, granularity: str) -> ForecastConfig:
    hourly = granularity == HOURLY
    return ForecastConfig(
        horizon=HOURLY_HORIZON_DAYS * 24 if hourly else settings.forecast_horizon_days,
        freq="h" if hourly else "D",
        country=settings.holidays_country,
        capacity=kpi.capacity_threshold,
        higher_is_worse=kpi.higher_is_worse,
    )


def _recent(backtest: dict[str, Any] | None, key: tuple[int, int]) -> bool:
    """A stored backtest young enough to reuse (model choice and interval scales)."""
    if not backtest or not backtest.get("at"):
        return False
    try:
        at = pd.Timestamp(backtest["at"])
    except (TypeError, ValueError):
        return False
    at = at.tz_localize("UTC") if at.tzinfo is None else at
    stagger = timedelta(hours=(key[0] * 31 + key[1]) % BACKTEST_STAGGER_H)
    return utcnow() - at.to_pydatetime() < BACKTEST_MAX_AGE - stagger


def _fallback(task: FitTask, cause: str) -> ForecastResult:
    """The labelled seasonal-naive forecast stored when Prophet timed out or failed."""
    detail = f"{cause}; seasonal naive produced this forecast."
    stored = task.backtest if task.backtest and task.backtest.get("seasonal_naive") else None
    try:
        return seasonal_naive_forecast(
            task.history, task.config, detail=detail, status="fallback", backtest=stored
        )
    except Exception as exc:  # the baseline itself failed: store the failure, not a gap
        log.exception("seasonal naive fallback failed for %s", task.key)
        return ForecastResult(
            status="failed",
            status_detail=f"{cause}; the seasonal naive fallback failed too ({exc}).",
            model="seasonal_naive",
            model_version=MODEL_VERSION,
            frame=_EMPTY.copy(),
            samples=None,
        )


class _Batch:
    """Results waiting to be stored: a few per transaction, one savepoint per series."""

    def __init__(self, db: Database, settings: Settings, granularity: str, run: ForecastRun):
        self.db, self.settings, self.granularity, self.run = db, settings, granularity, run
        self.items: list[tuple[FitTask, _Target, ForecastResult, BreachRisk | None]] = []
        self.flushed_at = time.monotonic()

    def add(
        self, task: FitTask, target: _Target, result: ForecastResult, risk: BreachRisk | None
    ) -> None:
        self.items.append((task, target, result, risk))
        if len(self.items) >= SAVE_EVERY or time.monotonic() - self.flushed_at >= SAVE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        items, self.items = self.items, []
        self.flushed_at = time.monotonic()
        if not items:
            return
        with self.db.session(write=True) as session:
            for task, target, result, risk in items:
                try:
                    with session.begin_nested():
                        forecast_id = self._save(session, task, target, result, risk)
                except Exception:  # one bad series never stops the others
                    log.exception("could not store the forecast of %s", task.key)
                    self.run.failed += 1
                    continue
                self.run.forecast_ids[task.key] = forecast_id
                self._count(result.status)

    def _save(
        self,
        session: Session,
        task: FitTask,
        target: _Target,
        result: ForecastResult,
        risk: BreachRisk | None,
    ) -> int:
        observed = task.history.dropna(subset=["y"])
        hourly = self.granularity == HOURLY
        return store.save_forecast(
            session,
            element_id=task.key[0],
            kpi_id=task.key[1],
            granularity=self.granularity,
            result=result,
            risk=risk or _risk(task, target, result),
            threshold=target.kpi.capacity_threshold,
            horizon_days=HOURLY_HORIZON_DAYS if hourly else self.settings.forecast_horizon_days,
            training_start=observed["ds"].min() if len(observed) else None,
            training_end=observed["ds"].max() if len(observed) else None,
        )

    def _count(self, status: str) -> None:
        if status == "ok":
            self.run.fitted += 1
        elif status == "fallback":
            self.run.fallback += 1
        elif status == "insufficient_history":
            self.run.insufficient += 1
        else:
            self.run.failed += 1


def _risk(task: FitTask, target: _Target, result: ForecastResult) -> BreachRisk | None:
    """Breach risk from the sample paths (fallbacks made here); stored even if this fails."""
    threshold = target.kpi.capacity_threshold
    if threshold is None or result.samples is None or result.frame.empty:
        return None
    try:
        return breach_risk(
            result.samples,
            pd.DatetimeIndex(result.frame["ds"]),
            threshold=float(threshold),
            higher_is_worse=target.kpi.higher_is_worse,
        )
    except Exception:
        log.exception("breach risk of %s could not be computed", task.key)
        return None


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _day(moment: datetime | None) -> date:
    """The calendar day a stored training end labels (naive days are stored as UTC)."""
    if moment is None:
        return date.min
    return pd.Timestamp(moment).tz_convert("UTC").date() if moment.tzinfo else moment.date()
