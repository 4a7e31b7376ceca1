"""Forecast configuration, result and the history clean-up every model shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MODEL_VERSION = "prophet-1.5.0+conf-1"
STATUSES = ("ok", "insufficient_history", "fallback", "failed")
FRAME_COLUMNS = ("ds", "yhat", "lower_80", "upper_80", "lower_95", "upper_95", "trend")


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast and how; one config per series."""

    horizon: int = 90
    freq: str = "D"
    country: str = ""
    capacity: float | None = None
    higher_is_worse: bool = True
    n_samples: int = 1000
    min_history: int | None = None
    backtest_cutoffs: int = 3
    seed: int = 0

    def required_history(self) -> int:
        """Minimum number of observed periods before a forecast is attempted."""
        if self.min_history is not None:
            return int(self.min_history)
        return 14 * 24 if periods_per_day(self.freq) >= 24 else 28


KEEP_PATHS = 100  # sample paths stored per forecast (what-if and the breach histogram)


def thin_samples(samples: np.ndarray | None, keep: int = KEEP_PATHS) -> np.ndarray | None:
    """Up to `keep` of the (horizon, n_samples) paths, evenly chosen (paths are exchangeable)."""
    if samples is None or keep <= 0:
        return None
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim != 2 or array.size == 0:
        return None
    if array.shape[1] > keep:
        array = array[:, np.linspace(0, array.shape[1] - 1, keep).round().astype(int)]
    return np.ascontiguousarray(array)


@dataclass
class ForecastResult:
    """One fitted forecast: future frame, calibrated sample paths and everything to explain it."""

    status: str
    status_detail: str
    model: str
    model_version: str
    frame: pd.DataFrame
    samples: np.ndarray | None
    components: dict[str, Any] = field(default_factory=dict)
    changepoints: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    backtest: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0


def offset(freq: str) -> pd.DateOffset:
    """The pandas offset of a frequency string ("D", "h", "MS", "5min" ...)."""
    return pd.tseries.frequencies.to_offset(freq)


def periods_per_day(freq: str) -> float:
    """How many periods of `freq` fit in a day (fractions for weekly/monthly)."""
    off = offset(freq)
    try:
        return pd.Timedelta(days=1) / pd.Timedelta(off)
    except ValueError:
        # Calendar offsets (month, quarter, year) have no fixed length.
        name = off.rule_code.upper()
        if name.startswith(("M", "BM", "SM")):
            return 12 / 365.25
        if name.startswith(("Q", "BQ")):
            return 4 / 365.25
        if name.startswith(("Y", "A", "BY", "BA")):
            return 1 / 365.25
        return 1 / 7


def season_length(freq: str) -> int:
    """Seasonal-naive period: a week for daily, a day for sub-daily, a year for monthly."""
    per_day = periods_per_day(freq)
    if per_day > 1:
        return max(1, round(per_day))
    if per_day == 1:
        return 7
    if abs(per_day - 1 / 7) < 1e-9:
        return 52
    if abs(per_day - 12 / 365.25) < 1e-9:
        return 12
    if abs(per_day - 4 / 365.25) < 1e-9:
        return 4
    return 1


def clean_history(history: pd.DataFrame) -> pd.DataFrame:
    """ds as tz-naive datetimes, sorted, one row per ds (last wins), y float (NaN = gap)."""
    try:
        ds = pd.to_datetime(history["ds"])
    except (ValueError, TypeError):
        # Mixed offsets or stray text: normalise to UTC and drop what cannot be read.
        ds = pd.to_datetime(history["ds"], utc=True, errors="coerce", format="mixed")
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    frame = pd.DataFrame(
        {"ds": ds.to_numpy(), "y": pd.to_numeric(history["y"], errors="coerce").to_numpy(float)}
    )
    frame = frame.dropna(subset=["ds"]).sort_values("ds", kind="stable")
    frame = frame.drop_duplicates("ds", keep="last").reset_index(drop=True)
    frame.loc[~np.isfinite(frame["y"]), "y"] = np.nan
    return frame


def regular_grid(history: pd.DataFrame, freq: str) -> pd.DataFrame:
    """History on a regular `freq` grid from first to last observation (missing periods = NaN)."""
    if history.empty:
        return history.copy()
    grid = pd.date_range(history["ds"].iloc[0], history["ds"].iloc[-1], freq=freq)
    if len(grid) == 0 or grid[-1] != history["ds"].iloc[-1]:
        # Stamps off the grid (e.g. month ends for "MS"): keep the observed stamps.
        return history.copy()
    y = history.set_index("ds")["y"].reindex(grid)
    return pd.DataFrame({"ds": grid, "y": y.to_numpy(float)})


def future_index(history: pd.DataFrame, config: ForecastConfig) -> pd.DatetimeIndex:
    """The `horizon` periods after the last observation."""
    last = pd.Timestamp(history["ds"].iloc[-1])
    return pd.date_range(last, periods=config.horizon + 1, freq=config.freq)[1:]


def empty_frame() -> pd.DataFrame:
    """A future frame with the contract's columns and no rows."""
    frame = pd.DataFrame({name: pd.Series(dtype=float) for name in FRAME_COLUMNS})
    frame["ds"] = pd.Series(dtype="datetime64[ns]")
    return frame


def insufficient(history: pd.DataFrame, config: ForecastConfig, observed: int) -> ForecastResult:
    """The result for a series too short to forecast (no frame, no samples)."""
    need = config.required_history()
    unit = "days" if config.freq.upper() == "D" else "periods"
    detail = (
        f"Only {observed} {unit} of history; a forecast needs at least {need}. "
        "It will be produced once enough data has arrived."
    )
    return ForecastResult(
        status="insufficient_history",
        status_detail=detail,
        model="prophet",
        model_version=MODEL_VERSION,
        frame=empty_frame(),
        samples=None,
    )


def iso(stamps: pd.DatetimeIndex | pd.Series) -> list[str]:
    """ISO-8601 strings of timestamps (JSON-able)."""
    return [pd.Timestamp(s).isoformat() for s in stamps]


def backtest_horizon(n_periods: int, config: ForecastConfig) -> int:
    """Periods ahead scored in the backtest: the horizon, capped so cutoffs fit the history."""
    return max(1, min(config.horizon, max(7, n_periods // 5)))


def cutoff_positions(n_periods: int, horizon: int, cutoffs: int, min_train: int) -> list[int]:
    """Training lengths of a rolling-origin backtest, oldest first (half a horizon apart)."""
    step = max(1, horizon // 2)
    out = [n_periods - horizon - k * step for k in range(max(0, cutoffs))]
    return sorted(c for c in out if c >= min_train)
