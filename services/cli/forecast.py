"""`beacon forecast`: fit one series from a CSV file and print its forecast as CSV."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click
import numpy as np
import orjson
import pandas as pd

from services.cli.detect import InputError, read_series
from services.csv_safe import safe_frame

STORED_LEVELS = (0.8, 0.95)


def _check_freq(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        pd.tseries.frequencies.to_offset(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not a pandas frequency (e.g. D, h, 15min, MS)"
        ) from exc
    return value


def interval(
    frame: pd.DataFrame, samples: np.ndarray | None, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper bounds at `level`: the stored 80/95% bands, other levels from the paths."""
    for stored in STORED_LEVELS:
        if abs(level - stored) < 1e-9:
            tag = round(stored * 100)
            return frame[f"lower_{tag}"].to_numpy(), frame[f"upper_{tag}"].to_numpy()
    if samples is None:
        raise click.UsageError("this model has no sample paths; use --interval 0.8 or 0.95")
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(samples.astype(np.float64), [tail, 1.0 - tail], axis=1)
    return lower, upper


@click.command("forecast", short_help="Forecast one series from a CSV: CSV out.")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--horizon", type=click.IntRange(1, 100_000), required=True, help="Future periods.")
@click.option(
    "--freq",
    default="D",
    show_default=True,
    callback=_check_freq,
    help="Period of the series as a pandas frequency (D, h, 15min, MS ...).",
)
@click.option("--time-col", default=None, help="Timestamp column (default: ds, or timestamp).")
@click.option("--value-col", default=None, help="Value column (default: y, or value).")
@click.option(
    "--interval",
    "level",
    type=click.FloatRange(0.01, 0.999),
    default=0.8,
    show_default=True,
    help="Interval level of yhat_lower/yhat_upper.",
)
@click.option(
    "--capacity",
    type=float,
    default=None,
    help="Capacity threshold: adds a breach-risk JSON line on stderr.",
)
@click.option("--lower-is-worse", is_flag=True, help="The threshold is breached from above.")
@click.option("--country", default="", help="Country code for holidays (e.g. DE).")
@click.option(
    "--samples",
    "n_samples",
    type=click.IntRange(10, 10_000),
    default=1000,
    show_default=True,
    help="Predictive sample paths.",
)
@click.option(
    "--cutoffs",
    type=click.IntRange(0, 20),
    default=3,
    show_default=True,
    help="Backtest cutoffs used to choose the model and calibrate intervals (0 = none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the paths.")
def forecast(
    csv_path: Path,
    horizon: int,
    freq: str,
    time_col: str | None,
    value_col: str | None,
    level: float,
    capacity: float | None,
    lower_is_worse: bool,
    country: str,
    n_samples: int,
    cutoffs: int,
    seed: int,
) -> None:
    """Fit Beacon's forecaster on the whole of CSV and print the next HORIZON periods.

    Output columns: ds, yhat, yhat_lower, yhat_upper (the --interval band, calibrated by a
    rolling-origin backtest) and model (prophet, or seasonal_naive when it won the backtest or
    Prophet failed). The model's status and backtest note go to stderr; with --capacity a
    JSON line with breach probabilities within 30/60/90 days and the likely breach date.
    """
    from services.forecast.breach import breach_risk
    from services.forecast.model import ForecastConfig, forecast_series

    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such file")
    series, _ = read_series(csv_path, time_col, value_col)
    if series.empty:
        raise InputError(f"{csv_path}: no rows")
    stamps = series.index.tz_convert("UTC").tz_localize(None)
    history = pd.DataFrame({"ds": stamps, "y": series.to_numpy()})
    config = ForecastConfig(
        horizon=horizon,
        freq=freq,
        country=country.strip().upper(),
        capacity=capacity,
        higher_is_worse=not lower_is_worse,
        n_samples=n_samples,
        backtest_cutoffs=cutoffs,
        seed=seed,
    )
    result = forecast_series(history, config)
    click.echo(f"{result.status} ({result.model}): {result.status_detail}", err=True)
    if result.frame.empty:
        raise click.ClickException(result.status_detail)
    lower, upper = interval(result.frame, result.samples, level)
    out = pd.DataFrame(
        {
            "ds": result.frame["ds"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "yhat": result.frame["yhat"].to_numpy(),
            "yhat_lower": lower,
            "yhat_upper": upper,
            "model": result.model,
        }
    )
    safe_frame(out).to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n")
    if capacity is not None and result.samples is not None:
        risk = breach_risk(
            result.samples,
            pd.DatetimeIndex(result.frame["ds"]),
            threshold=capacity,
            higher_is_worse=not lower_is_worse,
        )
        day = lambda t: None if t is None else t.date().isoformat()  # noqa: E731
        summary = {
            "capacity": capacity,
            **{
                f"p_breach_{h}": None if math.isnan(p) else round(p, 4)
                for h, p in risk.p_by_horizon.items()
            },
            "breach_date": day(risk.date),
            "breach_date_low": day(risk.date_low),
            "breach_date_high": day(risk.date_high),
            "model": result.model,
            "status": result.status,
        }
        click.echo(orjson.dumps(summary).decode(), err=True)
