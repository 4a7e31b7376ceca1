"""Interval calibration: conformal scaling of predictive spread from backtest residuals.

Each backtest point gives a normalised score: the error divided by the model's own interval
half-width on the side the actual fell (so skewed intervals stay skewed). The split-conformal
quantile of those scores at level L is the factor that makes the L interval cover about L of
the backtest points; 1.0 means the model was already calibrated, 1.4 that it was 40% too
narrow. Sample paths are stretched around yhat by the factor of their own quantile level, so
bands read from the calibrated paths and breach probabilities agree with the scaled intervals.
"""

from __future__ import annotations

import numpy as np

LEVELS = (0.8, 0.95)
SCALE_BOUNDS = (0.2, 20.0)  # guard against degenerate backtests (constant series, few points)
MIN_SCORES = 10  # fewer backtest points than this -> no scaling


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction, over points with a non-zero actual."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    ok = np.isfinite(actual) & np.isfinite(predicted) & (np.abs(actual) > 1e-9)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(actual[ok] - predicted[ok]) / np.abs(actual[ok])))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of finite actuals inside [lower, upper]."""
    actual = np.asarray(actual, dtype=np.float64)
    ok = np.isfinite(actual)
    if not ok.any():
        return float("nan")
    inside = (actual[ok] >= np.asarray(lower)[ok]) & (actual[ok] <= np.asarray(upper)[ok])
    return float(np.mean(inside))


def quantile_bands(
    samples: np.ndarray, level: float, axis: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed `level` interval of sample paths (rows = periods)."""
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(samples, [tail, 1.0 - tail], axis=axis)
    return lower, upper


def normalised_scores(
    actual: np.ndarray, yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """|error| / half-width on the side the actual fell; NaN where the actual is missing."""
    actual = np.asarray(actual, dtype=np.float64)
    err = actual - yhat
    above = np.maximum(upper - yhat, 1e-12)
    below = np.maximum(yhat - lower, 1e-12)
    scores = np.where(err >= 0, err / above, -err / below)
    return np.where(np.isfinite(actual), scores, np.nan)


def conformal_scale(scores: np.ndarray, level: float) -> float:
    """Split-conformal factor for `level` from normalised scores (1.0 when too few)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    n = scores.size
    if n < MIN_SCORES:
        return 1.0
    # The finite-sample corrected rank keeps coverage >= level on exchangeable data.
    q = min(1.0, np.ceil((n + 1) * level) / n)
    factor = float(np.quantile(scores, q, method="higher"))
    if not np.isfinite(factor) or factor <= 0:
        return 1.0
    return float(np.clip(factor, *SCALE_BOUNDS))


def calibrate_samples(
    samples: np.ndarray, yhat: np.ndarray, scale_80: float, scale_95: float
) -> np.ndarray:
    """Stretch paths around yhat: the central 80% by scale_80, the 95% tails by scale_95."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0 or (scale_80 == 1.0 and scale_95 == 1.0):
        return samples.copy()
    n = samples.shape[1]
    ranks = samples.argsort(axis=1).argsort(axis=1)
    central = np.abs(2.0 * (ranks + 0.5) / n - 1.0)
    # Interpolating the factor between the two calibrated levels keeps the stretch smooth.
    factor = np.interp(central, LEVELS, (scale_80, scale_95))
    centre = np.asarray(yhat, dtype=np.float64)[:, None]
    return centre + factor * (samples - centre)


def bands(samples: np.ndarray) -> dict[str, np.ndarray]:
    """lower/upper 80 and 95 columns read from sample paths."""
    lo80, hi80 = quantile_bands(samples, 0.8)
    lo95, hi95 = quantile_bands(samples, 0.95)
    return {"lower_80": lo80, "upper_80": hi80, "lower_95": lo95, "upper_95": hi95}
