"""Telemetry for the load test: one simulated 15-minute period dropped every `--every-s`.

Run as its own process by bench_load.py, so generating and writing the files costs the
load client nothing. Each delivery is what the simulated network sends in one period
window (every source, defects included), written as CSV into the scheduler's drop folder
(`<drop>/<source>/…csv`, written under a dot name and renamed, so a half-written file is
never taken). The scheduler ingests it exactly as it would a legacy system's files. The
periods are the last ones before now, oldest first: time is compressed (a period every
minute instead of every 15), but no period lies in the future.

    python benchmarks/load_feed.py --drop DIR --anchor ISO --sites N --periods K [--every-s 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.ingest.simfeed import RECORD_COLUMNS
from services.ingest.simulator import NetworkSimulator, SimConfig

PERIOD = pd.Timedelta(minutes=15)


def period_windows(now: pd.Timestamp, count: int) -> list[pd.Timestamp]:
    """The `count` latest complete period windows before `now`, oldest first."""
    last = now.floor(PERIOD) - PERIOD
    return [last - PERIOD * (count - 1 - i) for i in range(count)]


def write_delivery(sim: NetworkSimulator, window: pd.Timestamp, drop: Path) -> dict[str, object]:
    """Write every source's batches of one window as one CSV file per source."""
    by_source: dict[str, list[pd.DataFrame]] = {}
    for batch in sim.batches(window):
        by_source.setdefault(batch.source, []).append(batch.records[RECORD_COLUMNS])
    rows = 0
    stamp = window.strftime("%Y%m%dT%H%M")
    for source, frames in by_source.items():
        frame = pd.concat(frames, ignore_index=True)
        frame["period_end"] = pd.to_datetime(frame["period_end"], utc=True).map(
            lambda ts: ts.isoformat()
        )
        folder = drop / source
        folder.mkdir(parents=True, exist_ok=True)
        hidden = folder / f".{stamp}.csv"
        frame.to_csv(hidden, index=False)
        hidden.rename(folder / f"{stamp}.csv")
        rows += len(frame)
    return {"window": window.isoformat(), "rows": rows, "sources": sorted(by_source)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drop", type=Path, required=True)
    parser.add_argument("--anchor", required=True, help="the simulated network's anchor (ISO)")
    parser.add_argument("--sites", type=int, required=True, help="simulated sites per region")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--periods", type=int, required=True)
    parser.add_argument("--every-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    sim = NetworkSimulator(
        SimConfig(start=pd.Timestamp(args.anchor), seed=args.seed, sites_per_region=args.sites)
    )
    started = time.monotonic()
    for i, window in enumerate(period_windows(pd.Timestamp.now(tz="UTC"), args.periods)):
        # Deliveries on a fixed beat from the start, not drifting by the time writing takes.
        time.sleep(max(0.0, started + i * args.every_s - time.monotonic()))
        t0 = time.perf_counter()
        done = write_delivery(sim, window, args.drop)
        done.update(
            at_s=round(time.monotonic() - started, 1), write_s=round(time.perf_counter() - t0, 2)
        )
        print(json.dumps(done), flush=True)


if __name__ == "__main__":
    main()
