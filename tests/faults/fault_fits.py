"""Fit functions for forecast fault tests; worker processes import this module to run them.

It stays light (no pytest, no app) so a worker starts quickly.
"""

from __future__ import annotations

import time

from services.forecast.executor import FitTask
from services.forecast.model import ForecastResult, seasonal_naive_forecast

# A series whose first day has this busy-hour value hangs its fit.
HANG_MARKER = 77.125


def hang_on_marked_series(task: FitTask) -> ForecastResult:
    """A stand-in for a Prophet fit that never returns (prophet#2524) on the marked series;
    the seasonal-naive model for every other series."""
    if float(task.history["y"].iloc[0]) == HANG_MARKER:
        while True:
            time.sleep(60)
    return seasonal_naive_forecast(task.history, task.config)
