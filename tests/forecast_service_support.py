"""Stand-in fit functions for executor and service tests.

They run inside worker processes, which import this module to unpickle them: it stays
light (no pytest, no app) so a worker starts in well under a second.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from services.forecast.executor import FitTask
from services.forecast.model import ForecastResult, seasonal_naive_forecast

HANG = 99  # element id whose task never returns
SLOW = 98  # element id whose task runs a Stan optimisation of many seconds


def echo_or_hang(task: FitTask) -> dict:
    """Answers at once with the worker's pid; HANG sleeps forever, SLOW runs a slow fit."""
    if task.key[0] == HANG:
        while True:
            time.sleep(60)
    if task.key[0] == SLOW:
        return slow_prophet(task)
    if task.key[0] < 0:
        raise ValueError("bad series")
    return {"key": task.key, "pid": os.getpid(), "rows": len(task.history)}


def slow_prophet(task: FitTask) -> dict:
    """A real Prophet fit that keeps Stan busy for many seconds (Newton, 120 days hourly)."""
    from prophet import Prophet

    n = 24 * 120
    ds = pd.date_range("2026-01-01", periods=n, freq="h")
    y = 50 + 5 * np.sin(np.arange(n) * 2 * np.pi / 24) + np.random.default_rng(0).normal(0, 2, n)
    Prophet(uncertainty_samples=0).fit(pd.DataFrame({"ds": ds, "y": y}), algorithm="Newton")
    return {"fitted": True}


def plain_prophet(task: FitTask) -> dict:
    """A real, quick Prophet fit of the task's history."""
    from prophet import Prophet

    model = Prophet().fit(task.history)
    return {"k": float(model.params["k"][0, 0])}


def quick_fit(task: FitTask) -> ForecastResult:
    """The seasonal-naive model only: service behaviour without Prophet's cost."""
    return seasonal_naive_forecast(task.history, task.config)
