"""Local executor: results come back, a hanging fit is killed, Stan honours its deadline."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from forecast_service_support import HANG, echo_or_hang, plain_prophet, slow_prophet

from services.forecast import executor
from services.forecast.executor import FitOutcome, FitTask, LocalExecutor, make_executor
from services.forecast.model import ForecastConfig, ForecastResult


def history(days: int = 60) -> pd.DataFrame:
    ds = pd.date_range("2026-01-01", periods=days, freq="D")
    y = 50 + 5 * np.sin(np.arange(days) * 2 * np.pi / 7)
    return pd.DataFrame({"ds": ds, "y": y})


def task(element: int, kpi: int = 1) -> FitTask:
    return FitTask(key=(element, kpi), history=history(), config=ForecastConfig(horizon=7))


def collect(ex: executor.ForecastExecutor, tasks: list[FitTask], timeout_s: float) -> dict:
    outcomes: dict[tuple[int, int], FitOutcome] = {}
    ex.run(tasks, timeout_s=timeout_s, on_done=lambda o: outcomes.__setitem__(o.key, o))
    return outcomes


def test_results_come_back_and_errors_are_reported() -> None:
    ex = make_executor("local", workers=2, fit=echo_or_hang)
    try:
        outcomes = collect(ex, [task(i) for i in (1, 2, 3, -4, 5)], timeout_s=20)
    finally:
        ex.close()
    assert set(outcomes) == {(1, 1), (2, 1), (3, 1), (-4, 1), (5, 1)}
    assert outcomes[(1, 1)].result == {"key": (1, 1), "pid": outcomes[(1, 1)].result["pid"],
                                       "rows": 60}  # fmt: skip
    assert outcomes[(1, 1)].error is None
    assert not outcomes[(1, 1)].timed_out
    assert outcomes[(-4, 1)].result is None
    assert "ValueError: bad series" in outcomes[(-4, 1)].error
    # Fitting happens in worker processes, never in the caller.
    assert {o.result["pid"] for o in outcomes.values() if o.result} - {os.getpid()}


def test_a_hanging_fit_is_killed_and_recorded_within_the_timeout() -> None:
    ex = LocalExecutor(workers=1, fit=echo_or_hang)
    try:
        collect(ex, [task(1)], timeout_s=20)  # workers up, so the clock below measures the kill
        started = time.monotonic()
        outcomes = collect(ex, [task(HANG), task(2), task(3)], timeout_s=1.5)
        elapsed = time.monotonic() - started
    finally:
        ex.close()
    hung = outcomes[(HANG, 1)]
    assert hung.timed_out
    assert hung.result is None
    assert "timeout" in hung.error
    assert 1.4 <= hung.seconds < 6
    # The single worker was replaced: the tasks queued behind the hang still ran.
    assert outcomes[(2, 1)].result is not None
    assert outcomes[(3, 1)].result is not None
    assert elapsed < 12


def test_stan_is_stopped_by_its_deadline_inside_a_worker_process() -> None:
    # In-process call of the worker entry point: the budget reaches cmdstanpy's `timeout`,
    # which terminates the Stan process ("1 of 1 processes timed out").
    executor.prepare_worker()
    started = time.monotonic()
    outcome = executor.execute(task(1), 0.5, slow_prophet)
    assert time.monotonic() - started < 4
    assert outcome.timed_out
    assert outcome.result is None
    assert "processes timed out" in outcome.error
    ok = executor.execute(task(1), 30.0, plain_prophet)
    assert ok.error is None
    assert not ok.timed_out
    assert np.isfinite(ok.result["k"])


def test_make_executor_rejects_unknown_specs() -> None:
    with pytest.raises(ValueError, match="local or dask"):
        make_executor("threads", workers=2)


def test_breach_risk_uses_every_path_and_only_the_stored_paths_travel_back() -> None:
    horizon, n = 90, 1000
    rng = np.random.default_rng(5)
    ds = pd.date_range("2026-12-01", periods=horizon, freq="D")

    def fit_with_paths(task: FitTask) -> ForecastResult:
        samples = (60 + rng.normal(0, 10, (horizon, n)).cumsum(axis=0) / 10).astype(np.float32)
        frame = pd.DataFrame({"ds": ds, "yhat": samples.mean(axis=1)})
        return ForecastResult("ok", "", "prophet", "test", frame, samples)

    base = task(1)
    capped = FitTask(key=base.key, history=base.history, config=ForecastConfig(capacity=80.0))
    outcome = executor.execute(capped, 60.0, fit_with_paths)
    assert outcome.result is not None
    assert outcome.result.samples.shape == (horizon, 100)
    assert outcome.risk is not None
    assert 0.0 < outcome.risk.p_by_horizon[90] < 1.0
