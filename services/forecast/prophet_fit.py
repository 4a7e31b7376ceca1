"""One Prophet fit: the model set-up the history supports, warm start, one sampling pass."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.forecast.result import iso, periods_per_day

MODES = ("additive", "multiplicative")
WARM_KEYS = ("k", "m", "sigma_obs", "delta", "beta")
CHANGEPOINT_MIN_DELTA = 0.01  # Prophet's own plotting threshold on |delta| (scaled units)
SUBDAILY_DAILY_ORDER = 10  # network traffic has sharp daily shapes; 4 is too smooth


@dataclass
class ProphetFit:
    """Raw (uncalibrated) output of one fit on one history."""

    ds: pd.DatetimeIndex
    yhat: np.ndarray
    trend: np.ndarray
    samples: np.ndarray | None  # (horizon, n_samples), float64, before calibration
    components: dict[str, Any]
    changepoints: list[dict[str, Any]]
    params: dict[str, Any]
    warm: bool
    seconds: float


def silence() -> None:
    """Quiet cmdstanpy's per-fit chatter and Prophet's INFO notes (e.g. disabled seasonalities)."""
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("prophet.plot").disabled = True


def build(history: pd.DataFrame, *, freq: str, mode: str, country: str, n_samples: int) -> Any:
    """A Prophet model configured for this history (seasonalities left to what it supports)."""
    silence()
    from prophet import Prophet

    observed = history.dropna(subset=["y"])
    span = observed["ds"].iloc[-1] - observed["ds"].iloc[0]
    subdaily = periods_per_day(freq) > 1
    daily: Any = SUBDAILY_DAILY_ORDER if subdaily and span >= pd.Timedelta(days=2) else "auto"
    model = Prophet(
        seasonality_mode=mode,
        daily_seasonality=daily,
        uncertainty_samples=max(1, int(n_samples)),
    )
    if country:
        model.add_country_holidays(country_name=country)
    return model


def warm_init(params: dict[str, Any] | None, mode: str) -> dict[str, Any] | None:
    """Stan init from stored params, or None when absent or fitted in another mode."""
    if not params or params.get("mode", mode) != mode:
        return None
    if any(key not in params for key in WARM_KEYS):
        return None
    init = {key: np.asarray(params[key], dtype=np.float64) for key in ("delta", "beta")}
    init.update({key: float(params[key]) for key in ("k", "m", "sigma_obs")})
    return init


def extract_params(model: Any, mode: str) -> dict[str, Any]:
    """MAP parameters as plain floats/lists (Prophet docs: warm-start `stan_init`)."""
    p = model.params
    return {
        "k": float(p["k"][0][0]),
        "m": float(p["m"][0][0]),
        "sigma_obs": float(p["sigma_obs"][0][0]),
        "delta": [float(v) for v in np.ravel(p["delta"][0])],
        "beta": [float(v) for v in np.ravel(p["beta"][0])],
        "mode": mode,
    }


def _changepoints(model: Any) -> list[dict[str, Any]]:
    if model.changepoints is None or len(model.changepoints) == 0:
        return []
    deltas = np.ravel(model.params["delta"][0])
    per_day = float(model.y_scale) / (model.t_scale / pd.Timedelta(days=1))
    out = []
    for stamp, delta in zip(model.changepoints, deltas, strict=False):
        if abs(delta) >= CHANGEPOINT_MIN_DELTA:
            # Reported as the change of slope in the KPI's units per day.
            out.append({"ds": pd.Timestamp(stamp).isoformat(), "delta": float(delta * per_day)})
    return out


def _components(model: Any, predicted: pd.DataFrame) -> dict[str, Any]:
    trend = predicted["trend"].to_numpy(float)
    out: dict[str, Any] = {"ds": iso(predicted["ds"]), "trend": np.round(trend, 6).tolist()}
    names = list(model.seasonalities)
    if model.train_holiday_names is not None and "holidays" in predicted:
        names.append("holidays")
    for name in names:
        values = predicted[name].to_numpy(float)
        if name in model.component_modes["multiplicative"]:
            values = values * trend  # in the KPI's units, like additive components
        out[name] = np.round(values, 6).tolist()
    return out


def fit_prophet(
    history: pd.DataFrame,
    future: pd.DatetimeIndex,
    *,
    freq: str,
    mode: str = "additive",
    country: str = "",
    n_samples: int = 1000,
    seed: int = 0,
    warm_params: dict[str, Any] | None = None,
    components: bool = True,
    fit_kwargs: dict[str, Any] | None = None,
) -> ProphetFit:
    """Fit on `history` (ds, y with NaN gaps) and sample `future` once; raises on Prophet errors."""
    start = time.perf_counter()
    observed = history.dropna(subset=["y"])
    model = build(observed, freq=freq, mode=mode, country=country, n_samples=n_samples)
    kwargs = dict(fit_kwargs or {})
    init = warm_init(warm_params, mode)
    if init is not None:
        kwargs["init"] = init
    model.fit(observed[["ds", "y"]], **kwargs)
    params = extract_params(model, mode)
    warm = init is not None and all(
        len(np.ravel(init[key])) == len(params[key]) for key in ("delta", "beta")
    )
    future_df = pd.DataFrame({"ds": future})
    # Point forecast and components without sampling: sampling is most of predict's cost.
    model.uncertainty_samples = 0
    frame = pd.concat([observed[["ds"]], future_df]) if components else future_df
    predicted = model.predict(frame.reset_index(drop=True))
    model.uncertainty_samples = max(1, int(n_samples))
    tail = predicted.iloc[len(predicted) - len(future) :]
    samples = None
    if n_samples > 0:
        # Prophet draws from numpy's global generator; seeding makes paths reproducible.
        np.random.seed(seed)
        samples = model.predictive_samples(future_df)["yhat"][:, :n_samples]
    return ProphetFit(
        ds=pd.DatetimeIndex(future),
        yhat=tail["yhat"].to_numpy(float),
        trend=tail["trend"].to_numpy(float),
        samples=samples,
        components=_components(model, predicted) if components else {},
        changepoints=_changepoints(model),
        params=params,
        warm=warm,
        seconds=time.perf_counter() - start,
    )
