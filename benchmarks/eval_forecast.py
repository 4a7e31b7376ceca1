"""Forecast accuracy and calibration: held-out MAPE vs seasonal naive, interval coverage.

Run from the repository root:

    .venv/bin/python benchmarks/eval_forecast.py [--sim-series 24] [--data ../shared/data/prophet]

For each series the last H periods are held out. On the rest, the rolling-origin backtest
(3 cutoffs) picks the model and the conformal scales; then Prophet is fitted once with the
scales switched off (raw) and once with them (calibrated), and the seasonal-naive baseline is
forecast on the same training data. Reported per series and pooled: held-out MAPE of Prophet,
of seasonal naive and of the model Beacon would serve ("ours" = backtest choice), and the
empirical coverage of the 80%/95% intervals before and after calibration (pooled over all
held-out points of a group). Series: Prophet's example data sets where a fit-and-holdout makes
sense, and simulator daily busy-hour series of the capacity KPIs (Europe/Berlin days, DE
holidays). Also times one cold and one warm-started fit on a simulator series.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.forecast import calibration as cal
from services.forecast.aggregate import busy_hour_matrix
from services.forecast.backtest import run_backtest
from services.forecast.baseline import seasonal_naive_forecast
from services.forecast.model import ForecastConfig, forecast_series
from services.forecast.prophet_fit import fit_prophet
from services.forecast.result import future_index
from services.ingest.simulator import NetworkSimulator, SimConfig

CAPACITY_KPIS = ("prb_util_dl", "prb_util_ul", "link_util", "cpu_util", "active_users")
# name, file, value column, freq, holdout periods, rows kept from the end (None = all)
PROPHET_SETS = (
    ("peyton_manning (daily, log)", "example_wp_log_peyton_manning.csv", "y", "D", 90, None),
    ("wp_log_R (daily, log)", "example_wp_log_R.csv", "y", "D", 90, None),
    ("pedestrians_covid (daily)", "example_pedestrians_covid.csv", "y", "D", 28, None),
    ("retail_sales (monthly)", "example_retail_sales.csv", "y", "MS", 12, None),
    ("air_passengers (monthly)", "example_air_passengers.csv", "y", "MS", 12, None),
    (
        "pedestrians loc 4 (hourly)",
        "example_pedestrians_multivariate.csv",
        "location_4",
        "h",
        48,
        None,
    ),
    (
        "pedestrians loc 41 (hourly)",
        "example_pedestrians_multivariate.csv",
        "location_41",
        "h",
        48,
        None,
    ),
    ("yosemite temps (5-min)", "example_yosemite_temps.csv", "y", "5min", 288, 288 * 28),
)


@dataclass
class Outcome:
    """Held-out figures of one series."""

    name: str
    choice: str
    mape_prophet: float
    mape_naive: float
    mape_ours: float
    n: int
    hits: dict[str, int] = field(default_factory=dict)  # e.g. "raw80" -> points inside
    seconds: float = 0.0


def _inside(actual: np.ndarray, frame: pd.DataFrame, level: int) -> int:
    ok = np.isfinite(actual)
    lower = frame[f"lower_{level}"].to_numpy()[ok]
    upper = frame[f"upper_{level}"].to_numpy()[ok]
    return int(np.sum((actual[ok] >= lower) & (actual[ok] <= upper)))


def evaluate(name: str, history: pd.DataFrame, config: ForecastConfig, holdout: int) -> Outcome:
    """Backtest on the training part, then score raw/calibrated forecasts on the holdout."""
    start = time.perf_counter()
    train, test = history.iloc[:-holdout], history.iloc[-holdout:]
    config = ForecastConfig(**{**config.__dict__, "horizon": holdout})
    backtest = run_backtest(train, config)
    own = backtest["prophet"] or {}
    forced = {
        **backtest,
        "choice": "prophet",
        "scale_80": own.get("scale_80", 1.0),
        "scale_95": own.get("scale_95", 1.0),
    }
    raw = forecast_series(train, config, backtest={**forced, "scale_80": 1.0, "scale_95": 1.0})
    calibrated = forecast_series(train, config, backtest=forced)
    naive_bt = {**backtest, "seasonal_naive": {**(backtest["seasonal_naive"] or {})}}
    naive_cal = seasonal_naive_forecast(train, config, backtest=naive_bt)
    naive_bt["seasonal_naive"].update(scale_80=1.0, scale_95=1.0)
    naive_raw = seasonal_naive_forecast(train, config, backtest=naive_bt)
    # Align on the held-out stamps (the training end defines the forecast grid).
    future = future_index(train.reset_index(drop=True), config)
    actual = test.set_index("ds")["y"].reindex(future).to_numpy(float)
    ours_cal, ours_raw = (
        (calibrated, raw) if backtest["choice"] == "prophet" else (naive_cal, naive_raw)
    )
    hits = {}
    for label, result in (
        ("p_raw", raw),
        ("p_cal", calibrated),
        ("o_raw", ours_raw),
        ("o_cal", ours_cal),
    ):
        for level in (80, 95):
            hits[f"{label}{level}"] = _inside(actual, result.frame, level)
    return Outcome(
        name=name,
        choice=backtest["choice"]
        + ("/" + backtest["prophet_mode"] if backtest["choice"] == "prophet" else ""),
        mape_prophet=cal.mape(actual, raw.frame["yhat"].to_numpy()),
        mape_naive=cal.mape(actual, naive_raw.frame["yhat"].to_numpy()),
        mape_ours=cal.mape(actual, ours_cal.frame["yhat"].to_numpy()),
        n=int(np.isfinite(actual).sum()),
        hits=hits,
        seconds=time.perf_counter() - start,
    )


def prophet_series(data_dir: Path) -> list[tuple[str, pd.DataFrame, ForecastConfig, int]]:
    """Prophet's example data sets as (name, history, config, holdout)."""
    out = []
    for name, file, column, freq, holdout, keep in PROPHET_SETS:
        path = data_dir / file
        if not path.is_file():
            print(f"skipped {name}: {path} missing", file=sys.stderr)
            continue
        raw = pd.read_csv(path)
        frame = pd.DataFrame({"ds": pd.to_datetime(raw["ds"]), "y": raw[column].astype(float)})
        if keep is not None:
            frame = frame.iloc[-keep:]
        out.append((name, frame.reset_index(drop=True), ForecastConfig(freq=freq), holdout))
    return out


def simulator_series(n: int, days: int, seed: int) -> list[tuple[str, pd.DataFrame]]:
    """Daily busy-hour histories (local days) of capacity KPIs from the network simulator."""
    tz = "Europe/Berlin"
    start = pd.Timestamp("2025-03-01", tz="UTC")
    sim = NetworkSimulator(
        SimConfig(
            start=start,
            seed=seed,
            regions=("North", "South"),
            sites_per_region=3,
            period=pd.Timedelta("1h"),
            tz=tz,
        )
    )
    series = sim.topology.series.reset_index(drop=True)
    wanted = series[series["kpi"].isin(CAPACITY_KPIS)]
    # Round-robin over KPIs so links and routers are in the sample, not only cells.
    rank = wanted.groupby("kpi").cumcount()
    picked = wanted.assign(rank=rank).sort_values(["rank", "kpi"]).index.to_numpy()[:n]
    ends = pd.date_range(start + pd.Timedelta("1h"), periods=days * 24, freq="h")
    truth = sim.truth(ends)
    values = truth["value"].to_numpy().reshape(len(ends), len(series)).T[picked]
    daily = busy_hour_matrix(values, ends, zone=ZoneInfo(tz))
    days_index = pd.to_datetime(pd.Series(daily.days))
    out = []
    for row, pos in enumerate(picked):
        history = pd.DataFrame({"ds": days_index, "y": daily.busy_hour_value[row]})
        history = history.iloc[1:-1]  # the first and last local days are partial in UTC hours
        out.append((f"{series.loc[pos, 'kpi']} {series.loc[pos, 'dn'][-28:]}", history))
    return out


def warm_vs_cold(history: pd.DataFrame, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of a cold fit and of a fit warm-started from yesterday's parameters."""
    config = ForecastConfig(horizon=90)
    yesterday = fit_prophet(
        history.iloc[:-1], future_index(history.iloc[:-1], config), freq="D", n_samples=10
    )
    future = future_index(history, config)
    cold, warm = [], []
    for _ in range(repeats):
        cold.append(fit_prophet(history, future, freq="D", n_samples=10).seconds)
        warm.append(
            fit_prophet(
                history, future, freq="D", n_samples=10, warm_params=yesterday.params
            ).seconds
        )
    return float(np.median(cold)), float(np.median(warm))


def _pct(hit: int, n: int) -> str:
    return f"{100 * hit / n:.1f}" if n else "n/a"


def _m(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def report(title: str, outcomes: list[Outcome]) -> None:
    """Markdown table per series plus the pooled row."""
    print(f"\n### {title}\n")
    print(
        "| series | choice | MAPE prophet | MAPE naive | MAPE ours | n | cov80 raw→cal | "
        "cov95 raw→cal | ours cov80 raw→cal | ours cov95 raw→cal | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        h = o.hits
        print(
            f"| {o.name} | {o.choice} | {_m(o.mape_prophet)} | {_m(o.mape_naive)} | "
            f"{_m(o.mape_ours)} | {o.n} | {_pct(h['p_raw80'], o.n)}→{_pct(h['p_cal80'], o.n)} | "
            f"{_pct(h['p_raw95'], o.n)}→{_pct(h['p_cal95'], o.n)} | "
            f"{_pct(h['o_raw80'], o.n)}→{_pct(h['o_cal80'], o.n)} | "
            f"{_pct(h['o_raw95'], o.n)}→{_pct(h['o_cal95'], o.n)} | {o.seconds:.1f} |"
        )
    n = sum(o.n for o in outcomes)
    tot = {k: sum(o.hits[k] for o in outcomes) for k in outcomes[0].hits} if outcomes else {}

    def mean(attr: str) -> float:
        values = [getattr(o, attr) for o in outcomes if np.isfinite(getattr(o, attr))]
        return float(np.mean(values)) if values else float("nan")

    wins = sum(o.mape_ours <= o.mape_naive for o in outcomes)
    print(
        f"| **all ({len(outcomes)})** | ours ≤ naive on {wins} | {_m(mean('mape_prophet'))} | "
        f"{_m(mean('mape_naive'))} | {_m(mean('mape_ours'))} | {n} | "
        f"{_pct(tot.get('p_raw80', 0), n)}→{_pct(tot.get('p_cal80', 0), n)} | "
        f"{_pct(tot.get('p_raw95', 0), n)}→{_pct(tot.get('p_cal95', 0), n)} | "
        f"{_pct(tot.get('o_raw80', 0), n)}→{_pct(tot.get('o_cal80', 0), n)} | "
        f"{_pct(tot.get('o_raw95', 0), n)}→{_pct(tot.get('o_cal95', 0), n)} | |"
    )


def main() -> None:
    """Parse arguments, run both groups, print markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/prophet"
    )
    parser.add_argument("--sim-series", type=int, default=24)
    parser.add_argument("--sim-days", type=int, default=270)
    parser.add_argument("--sim-holdout", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-prophet-data", action="store_true")
    args = parser.parse_args()
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("services.forecast").setLevel(logging.ERROR)
    started = time.perf_counter()
    if not args.skip_prophet_data:
        outcomes = [
            evaluate(name, h, cfg, hold) for name, h, cfg, hold in prophet_series(args.data)
        ]
        report("Prophet example data (holdout = last H periods)", outcomes)
    sims = simulator_series(args.sim_series, args.sim_days, args.seed)
    sim_config = ForecastConfig(freq="D", country="DE")
    outcomes = [evaluate(name, h, sim_config, args.sim_holdout) for name, h in sims]
    report(
        f"Simulator daily busy hour ({args.sim_days} days, last {args.sim_holdout} held out)",
        outcomes,
    )
    cold, warm = warm_vs_cold(sims[0][1])
    print(
        f"\nWarm start ({sims[0][0]}, {len(sims[0][1])} days): cold fit {1000 * cold:.0f} ms, "
        f"warm {1000 * warm:.0f} ms ({cold / warm:.1f}x)"
    )
    print(f"\nTotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
