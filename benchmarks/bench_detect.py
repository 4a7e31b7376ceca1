"""Speed of the pure detector: one period of a 20k-cell × 20-KPI network, and a backfill.

One period: 400,000 series with exactly the lag columns the detector reads (as the live
service loads them), scored by `detect_series_matrix`. The naive baseline in the same run
is a pandas groupby rolling z-score over the previous day of each series (long format),
i.e. what a first implementation would do. Backfill: 30 days of 15-minute periods for a
slice of the network with its full history in memory, extrapolated linearly to 400k series
(the work per series and period is independent).

    python benchmarks/bench_detect.py [--cells 20000] [--kpis 20] [--backfill-series 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.anomaly.detect import DetectorConfig, detect_series_matrix, required_lags  # noqa: E402

STEP = pd.Timedelta(minutes=15)
PER_DAY = 96
TARGET = pd.Timestamp("2026-03-30 18:00", tz="UTC")


def synthetic(series: int, columns: pd.DatetimeIndex, seed: int = 7) -> np.ndarray:
    """KPI-like values: per-series level and daily amplitude, noise, a few spikes."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 1000, (series, 1))
    amplitude = rng.uniform(0.1, 0.6, (series, 1))
    phase = (columns.hour * 4 + columns.minute // 15).to_numpy() / PER_DAY
    shape = 1 + amplitude * np.sin(2 * np.pi * (phase - 0.3))[None, :]
    values = level * shape * (1 + rng.normal(0, 0.03, (series, len(columns))))
    spikes = rng.uniform(size=values.shape) < 1e-4
    values[spikes] *= 3
    return values.astype(np.float64)


def one_period(series: int) -> tuple[float, int, pd.DataFrame]:
    """Seconds to score one period of `series` series from their lag columns."""
    config = DetectorConfig(step=STEP)
    lags = required_lags(config, STEP)
    columns = pd.DatetimeIndex([TARGET - lag * STEP for lag in reversed(lags)] + [TARGET])
    matrix = pd.DataFrame(synthetic(series, columns), columns=columns)
    started = time.perf_counter()
    result = detect_series_matrix(matrix, pd.DatetimeIndex([TARGET]), config)
    return time.perf_counter() - started, len(lags), result


def naive_period(series: int, window: int = PER_DAY) -> float:
    """Seconds for a pandas groupby rolling z-score of the last period over `window` points."""
    columns = pd.date_range(end=TARGET, periods=window + 1, freq=STEP)
    values = synthetic(series, columns)
    long = pd.DataFrame(
        {
            "series": np.repeat(np.arange(series), len(columns)),
            "period_end": np.tile(columns, series),
            "value": values.ravel(),
        }
    )
    started = time.perf_counter()
    grouped = long.groupby("series")["value"]
    past = grouped.shift(1)
    stats = past.groupby(long["series"]).rolling(window, min_periods=8)
    mean = stats.mean().reset_index(level=0, drop=True)
    std = stats.std().reset_index(level=0, drop=True)
    z = (long["value"] - mean) / std
    _ = z[long["period_end"] == TARGET]
    return time.perf_counter() - started


def backfill(series: int, days: int) -> tuple[float, int]:
    """Seconds to score every period of `days` days for `series` series (full history)."""
    config = DetectorConfig(step=STEP)
    history = max(required_lags(config, STEP))
    periods = days * PER_DAY
    columns = pd.date_range(end=TARGET, periods=periods + history, freq=STEP)
    matrix = pd.DataFrame(synthetic(series, columns), columns=columns)
    targets = columns[-periods:]
    started = time.perf_counter()
    detect_series_matrix(matrix, targets, config)
    return time.perf_counter() - started, periods


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--kpis", type=int, default=20)
    parser.add_argument("--backfill-series", type=int, default=5_000)
    parser.add_argument("--backfill-days", type=int, default=30)
    args = parser.parse_args()
    series = args.cells * args.kpis

    seconds, lag_count, result = one_period(series)
    print(f"one period, {series:,} series x {lag_count} lag columns: {seconds:.2f} s")
    print(f"  statuses: {result['status'].value_counts().to_dict()}")
    naive = naive_period(series)
    print(f"naive pandas groupby rolling z-score (1 day window), same series: {naive:.2f} s")
    print(f"  ratio naive / ours: {naive / seconds:.1f}x")

    spent, periods = backfill(args.backfill_series, args.backfill_days)
    per_series_period = spent / (args.backfill_series * periods)
    print(
        f"backfill {args.backfill_days} days ({periods} periods) x {args.backfill_series:,} "
        f"series: {spent:.1f} s ({per_series_period * 1e6:.2f} µs per series-period)"
    )
    print(
        f"  extrapolated to {series:,} series: {per_series_period * series * periods / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
