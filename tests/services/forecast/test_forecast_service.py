"""The forecasting service on SQLite and PostgreSQL: plan, fit, fall back, store, refit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from testkit import seeded_database, settings_for

from services.config import Settings
from services.db import Database
from services.db.models import CapacityRisk, DailyAggregate, Element, Forecast, Kpi
from services.errors import InvalidInput, NotFound
from services.forecast import progress, service, store
from services.forecast.executor import FitOutcome, FitTask, execute, fit_series
from services.forecast.model import ForecastConfig, ForecastResult, seasonal_naive_forecast
from services.ingest import pipeline

LAST_DAY = date(2026, 11, 24)
DAYS = 56  # eight weeks: enough for weekly seasonality and a three-cutoff backtest


def quick_fit(task: FitTask) -> ForecastResult:
    """The seasonal-naive model only: service behaviour without Prophet's cost."""
    return seasonal_naive_forecast(task.history, task.config)


class InlineExecutor:
    """Runs tasks in this process, with scripted timeouts and failures."""

    def __init__(self, *, fit: Callable[[FitTask], ForecastResult] = quick_fit,
                 timeouts: Iterable[tuple[int, int]] = (),
                 errors: Iterable[tuple[int, int]] = ()) -> None:  # fmt: skip
        self.fit = fit
        self.timeouts, self.errors = set(timeouts), set(errors)
        self.tasks: list[FitTask] = []

    def run(self, tasks, *, timeout_s, on_done) -> None:  # type: ignore[no-untyped-def]
        for task in tasks:
            self.tasks.append(task)
            if task.key in self.timeouts:
                on_done(FitOutcome(task.key, None, "killed", True, timeout_s))
            elif task.key in self.errors:
                on_done(FitOutcome(task.key, None, "RuntimeError: Stan crashed", False, 0.1))
            else:
                on_done(execute(task, timeout_s, self.fit))

    def close(self) -> None:
        pass


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        with database.session(write=True) as session:
            for i in (1, 2, 3):
                session.add(Element(dn=f"SubNetwork=North,ManagedElement=S1,EUtranCellFDD=C{i}",
                                    name=f"S1-C{i}", element_type="cell", domain="RAN",
                                    region="North", is_new=False))  # fmt: skip
        yield database


@pytest.fixture(autouse=True)
def small_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """One backtest cutoff and 200 sample paths: the same code paths at a fraction of the cost."""
    real = service._config

    def config(*args, **kwargs) -> ForecastConfig:  # type: ignore[no-untyped-def]
        return replace(real(*args, **kwargs), backtest_cutoffs=1, n_samples=200)

    monkeypatch.setattr(service, "_config", config)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path, BEACON_FORECAST_HORIZON_DAYS="60", BEACON_FORECAST_TIMEOUT_S="20")


def ids(db: Database) -> tuple[list[int], dict[str, int]]:
    with db.session() as session:
        elements = list(session.scalars(select(Element.id).order_by(Element.dn)))
        kpis = dict(session.execute(select(Kpi.name, Kpi.id)).all())
    return elements, kpis


def add_days(db: Database, element_id: int, kpi_id: int, *, days: int, last: date = LAST_DAY,
             level: float = 50.0, growth: float = 0.0) -> None:  # fmt: skip
    rng = np.random.default_rng(element_id * 100 + kpi_id)
    with db.session(write=True) as session:
        for n in range(days):
            day = last - timedelta(days=days - 1 - n)
            value = level + growth * n + 4 * np.sin(2 * np.pi * day.weekday() / 7)
            value += rng.normal(0, 1)
            session.merge(DailyAggregate(element_id=element_id, kpi_id=kpi_id, day=day,
                                         busy_hour_value=float(value), busy_hour=20,
                                         daily_mean=float(value) * 0.6, daily_max=float(value),
                                         samples=96, source="measurements"))  # fmt: skip


def current(db: Database) -> dict[tuple[int, int], Forecast]:
    with db.session() as session:
        rows = session.scalars(select(Forecast).where(Forecast.is_current.is_(True)))
        return {(f.element_id, f.kpi_id): f for f in rows}


def test_run_fits_every_series_then_only_stale_ones_warm_started(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, e2, e3), kpi = ids(db)
    prb, users = kpi["prb_util_dl"], kpi["active_users"]
    add_days(db, e1, prb, days=DAYS, level=60, growth=0.5)  # heading for the 80% threshold
    add_days(db, e2, prb, days=DAYS, level=30)
    add_days(db, e1, users, days=DAYS, level=120)
    add_days(db, e3, prb, days=10)  # too short
    add_days(db, e2, kpi["rrc_setup_sr"], days=DAYS, level=95)  # not a forecast KPI
    seen: list[tuple[int, int]] = []
    ex = InlineExecutor(fit=fit_series)
    run = service.run_forecasts(
        db, settings, executor=ex, progress=lambda d, t: seen.append((d, t))
    )
    assert (run.fitted, run.insufficient, run.fallback, run.failed) == (3, 1, 0, 0)
    assert run.planned == 4
    assert seen[0] == (0, 4)
    assert seen[-1] == (4, 4)
    stored = current(db)
    assert set(stored) == {(e1, prb), (e2, prb), (e1, users), (e3, prb)}
    assert stored[(e3, prb)].status == "insufficient_history"
    assert stored[(e1, prb)].training_end.date() == LAST_DAY
    with db.session() as session:
        risks = {(r.element_id, r.kpi_id): r for r in session.scalars(select(CapacityRisk))}
    assert set(risks) == {(e1, prb), (e2, prb)}  # active_users has no threshold
    assert risks[(e1, prb)].p_breach_60 > 0.5 > risks[(e2, prb)].p_breach_60
    assert all(t.warm_params is None and t.backtest is None for t in ex.tasks)

    again = service.run_forecasts(db, settings, executor=InlineExecutor())
    assert again.planned == 0
    assert again.skipped == 4

    add_days(db, e2, prb, days=1, last=LAST_DAY + timedelta(days=1), level=31)
    ex = InlineExecutor(fit=fit_series)
    third = service.run_forecasts(db, settings, executor=ex)
    assert third.planned == 1
    assert third.fitted == 1
    (task,) = ex.tasks
    assert task.key == (e2, prb)
    assert task.warm_params
    assert "k" in task.warm_params
    assert task.backtest
    assert task.backtest["at"]
    refit = current(db)[(e2, prb)]
    assert refit.id != stored[(e2, prb)].id
    assert refit.params.get("warm_started") is True
    assert service.stale_series(db) == 0


def test_timeouts_and_failures_store_a_labelled_fallback_and_the_loop_goes_on(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, e2, e3), kpi = ids(db)
    prb = kpi["prb_util_dl"]
    for element in (e1, e2, e3):
        add_days(db, element, prb, days=35)
    ex = InlineExecutor(timeouts=[(e1, prb)], errors=[(e2, prb)])
    run = service.run_forecasts(db, settings, executor=ex)
    assert (run.fallback, run.timed_out, run.fitted, run.failed) == (2, 1, 1, 0)
    stored = current(db)
    timed_out, failed = stored[(e1, prb)], stored[(e2, prb)]
    assert timed_out.status == failed.status == "fallback"
    assert timed_out.model == failed.model == "seasonal_naive"
    assert "did not finish within the 20 s limit" in timed_out.status_detail
    assert "seasonal naive produced this forecast" in timed_out.status_detail
    assert "Prophet failed (RuntimeError: Stan crashed)" in failed.status_detail
    assert stored[(e3, prb)].status == "ok"
    assert stored[(e3, prb)].model == "seasonal_naive"
    with db.session() as session:
        # A fallback still has intervals and breach risk: never a silent gap.
        assert session.scalar(select(CapacityRisk).where(CapacityRisk.forecast_id == timed_out.id))


def test_a_storage_error_is_counted_and_the_other_series_are_stored(
    db, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    (e1, e2, _), kpi = ids(db)
    prb = kpi["prb_util_dl"]
    add_days(db, e1, prb, days=10)
    add_days(db, e2, prb, days=10)
    real = store.save_forecast

    def flaky(session, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["element_id"] == e1:
            raise RuntimeError("disk full")
        return real(session, **kwargs)

    monkeypatch.setattr(store, "save_forecast", flaky)
    run = service.run_forecasts(db, settings, executor=InlineExecutor())
    assert (run.failed, run.insufficient) == (1, 1)
    assert set(current(db)) == {(e2, prb)}


def test_time_budget_defers_the_rest_to_the_next_run(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, e2, e3), kpi = ids(db)
    for element in (e1, e2, e3):
        add_days(db, element, kpi["prb_util_dl"], days=5)
    run = service.run_forecasts(db, settings, executor=InlineExecutor(), budget_s=0)
    assert run.deferred == 3
    assert run.planned == 3
    assert not current(db)
    run = service.run_forecasts(db, settings, executor=InlineExecutor(), limit=2)
    assert (run.planned, run.skipped, run.insufficient) == (2, 1, 2)
    assert service.stale_series(db) == 1


def test_forecast_one_fits_in_a_worker_process(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, _, _), kpi = ids(db)
    prb = kpi["prb_util_dl"]
    add_days(db, e1, prb, days=35)
    forecast_id = service.forecast_one(db, settings, element_id=e1, kpi_id=prb)
    with db.session() as session:
        forecast = session.get(Forecast, forecast_id)
        assert forecast.is_current
        assert forecast.status == "ok"
        assert forecast.model
    assert set(current(db)) == {(e1, prb)}  # only the series asked for
    with pytest.raises(NotFound):
        service.forecast_one(db, settings, element_id=999_999, kpi_id=prb)
    with pytest.raises(InvalidInput, match="not forecast"):
        service.forecast_one(db, settings, element_id=e1, kpi_id=kpi["rrc_setup_sr"])


def test_status_summarises_current_forecasts(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, e2, _), kpi = ids(db)
    prb = kpi["prb_util_dl"]
    add_days(db, e1, prb, days=35, level=85)
    add_days(db, e2, prb, days=5)
    service.run_forecasts(db, settings, executor=InlineExecutor())
    summary = progress.status(db)
    assert summary["forecasts"]["ok"] == 1
    assert summary["forecasts"]["insufficient_history"] == 1
    assert summary["at_risk_30"] == summary["at_risk_90"] == 1
    assert summary["stale"] == 0
    assert summary["last_run"] is None


def test_hourly_forecast_of_one_series_from_measurements(db, settings) -> None:  # type: ignore[no-untyped-def]
    (e1, _, _), kpi = ids(db)
    with db.session() as session:
        dn = session.get(Element, e1).dn
    end = pd.Timestamp("2026-11-24T00:00Z")
    stamps = pd.date_range(end - pd.Timedelta(days=15), end, freq="15min", inclusive="right")
    hours = stamps.hour.to_numpy()
    values = 40 + 30 * np.exp(-((hours - 20) ** 2) / 8)  # an evening busy hour
    records = pd.DataFrame({"dn": dn, "kpi": "prb_util_dl", "period_end": stamps,
                            "value": values.round(2)})  # fmt: skip
    pipeline.ingest_records(db, source="test", records=records, received_at=end.to_pydatetime())
    with pytest.raises(InvalidInput, match="named series"):
        service.run_forecasts(db, settings, granularity=service.HOURLY)
    run = service.run_forecasts(db, settings, pairs=[(e1, kpi["prb_util_dl"])],
                                granularity=service.HOURLY, executor=InlineExecutor())  # fmt: skip
    assert run.fitted == 1
    with db.session() as session:
        forecast = session.scalar(select(Forecast).where(Forecast.granularity == "hourly"))
        assert forecast.horizon_days == service.HOURLY_HORIZON_DAYS
        # Fourteen hourly days reach none of the 30/60/90-day horizons: no risk is claimed.
        assert not session.scalar(
            select(CapacityRisk).where(CapacityRisk.forecast_id == forecast.id)
        )
    assert not current(db).keys() - {(e1, kpi["prb_util_dl"])}


def test_stored_backtests_expire_after_a_week_staggered_per_series() -> None:
    aged = {"at": (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=6, hours=12)).isoformat()}
    assert service._recent(aged, (0, 0))  # no stagger: a week
    assert not service._recent(aged, (0, 71))  # 71 h stagger: four days and a bit
    assert not service._recent({}, (0, 0))
    assert not service._recent({"at": "not a time"}, (0, 0))
