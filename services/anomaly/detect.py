"""Pure, vectorised anomaly detection: DataFrame in, DataFrame out, no I/O, no look-ahead.

The method ("seasonal_robust", details in services/anomaly/baseline.py): the expected value
of a period is the recent level (median of the last points) or, where the past cycles show
it predicts clearly better, the daily or weekly profile (median over past cycles) shifted
to the recent level. The spread is a robust sigma of the predictor's own past errors (MAD,
widened by the error tail at the same time of day/week, floored), the score is
(observed - expected) / spread. A slower statistic, `shift`, compares the level of the last
few periods with a long-run reference that does not follow the level (sustained shifts,
build-ups, changes of shape); while the periods before t are shifted, the expectation stays
on the long-run reference instead of absorbing the anomaly. Cold start: the first day of
history ramps the confidence down, and the slower statistic and the hold wait for a week (a
weekly pattern is unseen before); the point score alone judges that first week. Until the
weekly profile is usable (three past weeks), a past day at the same time that matches the
recent level (last Saturday for this Saturday) explains it: no hold, and the shift is
measured against that day, so later weekends are not shifts against weekday references. The
confidence is the calibrated probability of a true anomaly for the evidence
max(|score|, shift_weight * |shift|) (services/anomaly/calibration.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.anomaly.baseline import DetectorConfig, LagPlan, lag_plan, score_lag_matrix
from services.anomaly.calibration import calibrated, load_episode_table, load_table
from services.anomaly.corroborate import corroborate
from services.anomaly.peers import peer_scores
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

__all__ = [
    "DEFAULT_CONFIG",
    "DETECTOR",
    "MODEL_VERSION",
    "NORMAL_COVERAGE",
    "NORMAL_SIGMA",
    "DetectorConfig",
    "band_for_series",
    "band_sigma",
    "corroborate",
    "detect_series_matrix",
    "infer_step",
    "normal_range",
    "peer_scores",
    "required_lags",
]

DETECTOR = "seasonal_robust"
DEFAULT_CONFIG = DetectorConfig()
CHUNK_ROWS = 20_000  # series scored together; larger chunks fall out of the CPU cache
STEP_SAMPLE = 50  # rows that fix a stream's step (its most common gap)
DEFAULT_STEP = pd.Timedelta(minutes=5)  # only for streams whose first rows share one stamp
# Detector 2.2; period calibration table; episode calibration table (calibration.json).
MODEL_VERSION = f"2.2+cal.{load_table().version}+{load_episode_table().version}"
# The "normal range" people see: expected +- NORMAL_SIGMA robust sigma. The alert threshold
# (band_sigma, ~28 sigma) is where one period alone is more likely than not an anomaly; far
# too wide to show what normal looks like. NORMAL_COVERAGE is the share of ordinary periods
# (outside injected incidents) inside the normal range on simulator seeds 1-3 (held-out
# seed 7 agrees; benchmarks/eval_anomaly.py --normal-range).
NORMAL_SIGMA = 3.0
NORMAL_COVERAGE = 0.95
SERIES_COLUMNS = [
    "observed",
    "expected",
    "band_low",
    "band_high",
    "score",
    "confidence",
    "status",
    "spread",
    "history",
    "season",
    "shift",
]
RESULT_COLUMNS = [
    "series",
    "period_end",
    "observed",
    "expected",
    "band_low",
    "band_high",
    "spread",
    "score",
    "history",
    "status",
    "confidence",
    "season",
    "shift",
]


def required_lags(config: DetectorConfig, step: pd.Timedelta) -> list[int]:
    """Steps back from a target period that the detector reads (all >= 1)."""
    return list(lag_plan(config, pd.Timedelta(step)).lags)


def band_sigma(config: DetectorConfig) -> float:
    """Half-width of the expected band in robust sigma."""
    if config.band_sigma is not None:
        return float(config.band_sigma)
    edge = load_table().score_for(DEFAULT_MIN_CONFIDENCE)
    return edge if np.isfinite(edge) else 3.0


def normal_range(
    expected: np.ndarray | float,
    band_low: np.ndarray | float,
    band_high: np.ndarray | float,
    config: DetectorConfig = DEFAULT_CONFIG,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected +- NORMAL_SIGMA robust sigma, recovered from the alert band around `expected`."""
    expected = np.asarray(expected, dtype=np.float64)
    ratio = NORMAL_SIGMA / band_sigma(config)
    low = expected - (expected - np.asarray(band_low, dtype=np.float64)) * ratio
    high = expected + (np.asarray(band_high, dtype=np.float64) - expected) * ratio
    return low, high


def infer_step(stamps: pd.DatetimeIndex) -> pd.Timedelta:
    """The grid step: the most common positive gap between sorted unique timestamps."""
    unique = pd.DatetimeIndex(stamps).unique().sort_values()
    if len(unique) < 2:
        raise ValueError("at least two distinct timestamps are needed to infer the step")
    gaps = np.diff(unique.as_unit("ns").asi8)
    values, counts = np.unique(gaps[gaps > 0], return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")


def _season_label(period: np.ndarray, step: pd.Timedelta) -> np.ndarray:
    per_day = pd.Timedelta(days=1) / step
    labels = np.full(period.shape, "none", dtype=object)
    labels[(period > 0) & np.isclose(period, per_day)] = "daily"
    labels[(period > 0) & np.isclose(period, 7 * per_day)] = "weekly"
    return labels


def _frame(
    raw: dict[str, np.ndarray], observed: np.ndarray, config: DetectorConfig, step: pd.Timedelta
) -> dict[str, np.ndarray]:
    width = band_sigma(config) * raw["spread"]
    ok = raw["status"] == "ok"
    return {
        "observed": observed,
        "expected": raw["expected"],
        "band_low": raw["expected"] - width,
        "band_high": raw["expected"] + width,
        "spread": raw["spread"],
        "score": raw["score"],
        "history": raw["history"].astype(np.int64),
        "status": raw["status"].astype(object),
        # Less than a day of history: the calibrated confidence ramps with the share seen.
        "confidence": np.where(ok, calibrated(evidence(raw, config)) * raw["ramp"], 0.0),
        "season": _season_label(raw["season"], step),
        "shift": raw["shift"],
    }


def evidence(raw: dict[str, np.ndarray] | pd.DataFrame, config: DetectorConfig) -> np.ndarray:
    """The statistic the confidence calibrates: the larger of |score| and weighted |shift|."""
    point = np.abs(np.asarray(raw["score"], dtype=np.float64))
    shift = np.abs(np.asarray(raw["shift"], dtype=np.float64)) * config.shift_weight
    # A point score without a shift (too little history for it) still counts on its own.
    return np.where(np.isnan(point), np.nan, np.fmax(point, shift))


def _utc_index(stamps: pd.Index) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(stamps).as_unit("ns")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _chunked(
    observed: np.ndarray,
    values: np.ndarray,
    index: np.ndarray,
    plan: LagPlan,
    config: DetectorConfig,
) -> dict[str, np.ndarray]:
    """Score in row chunks: bounded memory and cache-sized work on very wide networks."""
    parts = [
        score_lag_matrix(
            observed[lo : lo + CHUNK_ROWS], values[lo : lo + CHUNK_ROWS][:, index], plan, config
        )
        for lo in range(0, max(len(observed), 1), CHUNK_ROWS)
    ]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def detect_series_matrix(
    matrix: pd.DataFrame, targets: pd.DatetimeIndex, config: DetectorConfig = DEFAULT_CONFIG
) -> pd.DataFrame:
    """Score each series (row) at each target period from the columns strictly before it."""
    columns = _utc_index(matrix.columns)
    targets = _utc_index(targets)
    step = config.step if config.step is not None else infer_step(columns.append(targets))
    step = pd.Timedelta(step)
    plan: LagPlan = lag_plan(config, step)
    values = matrix.to_numpy(dtype=np.float64, na_value=np.nan)
    # One trailing all-NaN column stands in for every lag the matrix does not hold.
    padded = np.concatenate([values, np.full((len(values), 1), np.nan)], axis=1)
    missing = values.shape[1]
    where = {int(ns): i for i, ns in enumerate(columns.asi8)}
    step_ns = step.value
    lags = np.asarray(plan.lags, dtype=np.int64)
    parts = []
    for target in targets:
        t_ns = int(target.value)
        index = np.array([where.get(t_ns - lag * step_ns, missing) for lag in lags], dtype=np.intp)
        observed = padded[:, where.get(t_ns, missing)]
        raw = _chunked(observed, padded, index, plan, config)
        block = _frame(raw, observed, config, step)
        block["series"] = np.asarray(matrix.index, dtype=object)
        block["period_end"] = pd.DatetimeIndex([target]).repeat(len(values))
        parts.append(pd.DataFrame(block, columns=RESULT_COLUMNS))
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def stream_step(stamps: pd.DatetimeIndex) -> pd.Timedelta:
    """The grid step of a stream, fixed by its first rows so later rows cannot change it."""
    head = stamps[:STEP_SAMPLE]
    if head.nunique() > 1:
        return infer_step(head)
    return DEFAULT_STEP


def _stream_lags(position: np.ndarray, values: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Lag matrix where row i sees, at each lagged position, the latest earlier row there."""
    n = len(position)
    rows = np.arange(n, dtype=np.int64)
    # Writes ordered by (position, row): for row i and position q, the value it may see is
    # the last write at q by a row before i. Out-of-order and duplicate rows stay causal.
    key = (position - position.min()) * (n + 1) + rows if n else rows
    order = np.argsort(key, kind="stable")
    sorted_key, sorted_pos = key[order], position[order]
    wanted = position[:, None] - lags[None, :]
    probe = (wanted - (position.min() if n else 0)) * (n + 1) + rows[:, None]
    at = np.searchsorted(sorted_key, probe, side="left") - 1
    hit = (at >= 0) & (sorted_pos[np.clip(at, 0, None)] == wanted) if n else at >= 0
    return np.where(hit, values[order][np.clip(at, 0, None)], np.nan)


def band_for_series(values: pd.Series, config: DetectorConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Score every row of one series as a stream: row i sees rows 0..i-1 only."""
    stamps = _utc_index(values.index)
    observed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    step = pd.Timedelta(config.step) if config.step is not None else stream_step(stamps)
    plan = lag_plan(config, step)
    # Positions on an epoch-anchored grid, so a prefix of the stream maps exactly the same.
    position = np.rint(stamps.asi8 / step.value).astype(np.int64)
    lags = np.asarray(plan.lags, dtype=np.int64)
    lagged = _stream_lags(position, observed, lags).reshape(len(observed), len(lags))
    raw = score_lag_matrix(observed, lagged, plan, config)
    out = pd.DataFrame(_frame(raw, observed, config, step), index=values.index)
    return out[SERIES_COLUMNS]
