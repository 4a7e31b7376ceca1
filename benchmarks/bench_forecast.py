"""Capacity forecasting end to end: our service path against a plain Prophet loop.

The simulated network's daily busy-hour history (`--days`, default 180, stored through
`rollup.seed_simulator_archive` into a fresh SQLite file) gives `--series` series of the
forecast KPIs. In the same run, on the same series:

- plain: a plain loop in this process, `Prophet()` (+ the same country holidays) `.fit`
  then `.predict` over the same horizon (1,000 uncertainty samples, Prophet's default);
- first: `service.run_forecasts` with no stored forecasts (rolling-origin backtest with
  3 cutoffs, model choice, calibration, breach risk, storage), `--workers` processes
  (with `--skip first` a cheaper one-cutoff first run only primes the stored state);
- steady 1w / 2w: the nightly steady state (backtest reused, warm start from the stored
  parameters: one Prophet fit + one sampling pass per series, breach risk, storage), with
  one and with two worker processes, alternated `--repeat` times (medians); the overhead
  ratio is steady 1w against plain;
- cold 2w: the steady state without warm start (same worker count as steady 2w);
- dask 2w: the steady state through `dask://` on a `distributed.LocalCluster` of two
  single-threaded worker processes.

Each figure is wall time for all series, including reading histories, worker start-up and
writing forecasts. The machine's load average is printed with the table: on a shared machine
ratios taken in the same run are the figures to compare.

    python benchmarks/bench_forecast.py [--series 1000] [--days 180] [--workers 2]
        [--skip first,cold,dask] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.config import Settings, load_settings
from services.db import Database, connect, upgrade_to_head
from services.db.models import Forecast
from services.forecast import rollup, service, store
from services.forecast.executor import FitTask, LocalExecutor, fit_series, make_executor
from services.forecast.model import ForecastResult
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.seed import ensure_kpis, register_topology

ANCHOR = pd.Timestamp("2026-11-01", tz="UTC")
SERIES_PER_SITE = 10  # about: 3 cells x 3 forecast KPIs, plus a share of links and core


def cold_fit(task: FitTask) -> ForecastResult:
    """The steady-state fit without warm start (stored backtest still reused)."""
    return fit_series(replace(task, warm_params=None))


def prime_fit(task: FitTask) -> ForecastResult:
    """A first fit with a one-cutoff backtest: stores the parameters and backtest the
    steady-state runs reuse, at a third of the full first run's cost (`--skip first`)."""
    return fit_series(replace(task, config=replace(task.config, backtest_cutoffs=1)))


def build(directory: Path, *, series: int, days: int) -> tuple[Database, Settings, list]:
    """A SQLite database holding `days` of daily busy-hour history of at least `series`."""
    settings = load_settings(
        {
            "BEACON_DATA_DIR": str(directory),
            "BEACON_SIMULATOR": "0",
            "BEACON_HOLIDAYS_COUNTRY": "DE",
            "BEACON_FORECAST_TIMEOUT_S": "300",
            "BEACON_LOG_LEVEL": "WARNING",
        }
    )
    db = connect(settings.database_url)
    upgrade_to_head(db)
    sites = max(1, math.ceil(series / (4 * SERIES_PER_SITE)))
    sim = NetworkSimulator(SimConfig(start=ANCHOR, sites_per_region=sites))
    with db.session(write=True) as session:
        ensure_kpis(session)
        register_topology(session, sim.topology)
    rollup.seed_simulator_archive(db, sim, days=days, zone=settings.zone)
    with db.session() as session:
        kpis = [k.id for k in store.forecast_kpis(session)]
        frame = rollup.load_daily(session, kpi_ids=kpis)
    pairs = sorted({(int(e), int(k)) for e, k in zip(frame.element_id, frame.kpi_id, strict=True)})
    return db, settings, pairs[:series]


def plain_loop(db: Database, settings: Settings, pairs: list) -> float:
    """Plain Prophet fit + predict per series, in this process; returns wall seconds."""
    from prophet import Prophet

    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    with db.session() as session:
        frame = rollup.load_daily(session, pairs=pairs)
    histories = [g[["ds", "y"]] for _, g in frame.groupby(["element_id", "kpi_id"])]
    started = time.perf_counter()
    for history in histories:
        model = Prophet()
        if settings.holidays_country:
            model.add_country_holidays(country_name=settings.holidays_country)
        model.fit(history)
        model.predict(model.make_future_dataframe(periods=settings.forecast_horizon_days))
    return time.perf_counter() - started


def ours(db: Database, settings: Settings, pairs: list, spec: str, workers: int,
         fit: Any = None) -> tuple[float, dict]:  # fmt: skip
    """run_forecasts over the pairs; returns wall seconds and the run summary."""
    if spec == "local":
        # Workers at normal priority, like the plain loop (production niceness yields to
        # every other process on this shared machine, which is not what is measured here).
        executor = LocalExecutor(workers=workers, fit=fit or fit_series, nice=0)
    else:
        executor = make_executor(spec, workers=workers, fit=fit)
    started = time.perf_counter()
    try:
        run = service.run_forecasts(db, settings, pairs=pairs, executor=executor)
    finally:
        executor.close()
    seconds = time.perf_counter() - started
    with db.session() as session:
        models = session.execute(
            select(Forecast.model, func.count())
            .where(Forecast.is_current.is_(True))
            .group_by(Forecast.model)
        ).all()
    return seconds, {**run.as_dict(), "models": dict(models)}


def dask_run(db: Database, settings: Settings, pairs: list) -> tuple[float, dict]:
    """The steady state on a two-process LocalCluster (cluster start-up not timed)."""
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        spec = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        return ours(db, settings, pairs, spec, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma list of: first, cold, dask")
    parser.add_argument("--repeat", type=int, default=1, help="alternating 1w/2w steady runs")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    logging.basicConfig(level=logging.WARNING)
    rows: list[tuple[str, float, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        db, settings, pairs = build(Path(tmp), series=args.series, days=args.days)
        n = len(pairs)
        print(f"data: {n} series x {args.days} days in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip

        def record(name: str, seconds: float, summary: dict | None = None) -> None:
            rows.append((name, seconds, summary or {}))
            print(f"{name}: {seconds:.1f} s ({seconds / n * 1000:.0f} ms/series) {summary or ''}",
                  file=sys.stderr, flush=True)  # fmt: skip

        record("plain Prophet loop (1 process)", plain_loop(db, settings, pairs))
        if "first" not in skip:
            record(f"ours, first run with backtest ({args.workers}w)",
                   *ours(db, settings, pairs, "local", args.workers))  # fmt: skip
        else:
            ours(db, settings, pairs, "local", args.workers, fit=prime_fit)
        # 1 and 2 workers alternate; medians damp drift in what else the machine runs.
        runs_1w, runs_2w = [], []
        for _ in range(args.repeat):
            runs_1w.append(ours(db, settings, pairs, "local", 1))
            runs_2w.append(ours(db, settings, pairs, "local", 2))
        for name, runs in (("1w", runs_1w), ("2w", runs_2w)):
            seconds = statistics.median(r[0] for r in runs)
            record(f"ours, steady state ({name})", seconds,
                   {**runs[-1][1], "all_seconds": [round(r[0], 1) for r in runs]})  # fmt: skip
        if "cold" not in skip:
            record("ours, steady state without warm start (2w)",
                   *ours(db, settings, pairs, "local", 2, fit=cold_fit))  # fmt: skip
        if "dask" not in skip:
            record("ours, steady state on Dask LocalCluster (2w)", *dask_run(db, settings, pairs))
        db.dispose()
    report(rows, n=n, days=args.days, as_json=args.json)


def report(rows: list[tuple[str, float, dict]], *, n: int, days: int, as_json: bool) -> None:
    """A markdown table (or one JSON line) with the ratios the targets are stated in."""
    times = {name: seconds for name, seconds, _ in rows}
    plain = times["plain Prophet loop (1 process)"]
    w1, w2 = times["ours, steady state (1w)"], times["ours, steady state (2w)"]
    ratios = {
        "overhead_1w_vs_plain": w1 / plain,
        "speedup_2w_vs_1w": w1 / w2,
    }
    cold = times.get("ours, steady state without warm start (2w)")
    if cold:
        ratios["warm_start_speedup_2w"] = cold / w2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if as_json:
        print(json.dumps({"series": n, "days": days, "load_1m": load, "seconds": times,
                          "ratios": ratios, "runs": {k: s for k, _, s in rows}}))  # fmt: skip
        return
    print(f"\n{n} series x {days} days; {os.cpu_count()} CPUs; load average {load:.1f}\n")
    print("| run | wall s | ms / series | fitted | fallback | insufficient | model mix |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, seconds, summary in rows:
        counts = [str(summary.get(k, "")) for k in ("fitted", "fallback", "insufficient")]
        mix = ", ".join(f"{m} {c}" for m, c in sorted(summary.get("models", {}).items()))
        print(f"| {name} | {seconds:.1f} | {seconds / n * 1000:.0f} | {' | '.join(counts)} "
              f"| {mix} |")  # fmt: skip
    print()
    for name, value in ratios.items():
        print(f"- {name}: {value:.2f}x")


if __name__ == "__main__":
    main()
