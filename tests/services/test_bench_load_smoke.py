"""The load benchmark still runs end to end: a tiny load for 12 seconds on embedded SQLite.

It starts `python app.py`, seeds it, drives two wall screens and one engineer against it
while the feeder drops telemetry, and stops everything. The figures are meaningless at
this size; what is checked is that the report keeps its shape (percentiles per endpoint
and callback, process metrics) and that nothing failed, so the benchmark cannot rot.
"""

from __future__ import annotations

import psutil
import pytest

from benchmarks import bench_load
from benchmarks.load_procs import _floor_slope

pytestmark = pytest.mark.timeout(120)


def test_bench_load_runs_on_embedded_sqlite(tmp_path):
    tiny = {
        "--db": "sqlite",
        "--screens": "2",
        "--engineers": "1",
        "--duration-s": "12",
        "--cells": "60",
        "--open-episodes": "20",
        "--refresh-s": "2",
        "--ingest-every-s": "4",
        "--drop-poll-s": "5",
        "--think-s": "2,3",
        "--sample-s": "1",
        "--warmup-s": "0",
        "--out": str(tmp_path / "load.json"),
    }
    args = bench_load.parse_args([part for pair in tiny.items() for part in pair])
    # Other tests in this worker may keep helpers alive (multiprocessing's forkserver).
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    report = bench_load.run(args)

    results = report["results"]
    for name in (
        "GET /kiosk/<token>",
        "GET /_dash-layout",
        "GET /_dash-dependencies",
        "POST /login",
        "cb _pages_content",
        "cb overview-wall-view",
        "cb overview-wall-oncall-view",
        bench_load.WALL_GROUP,
    ):
        assert name in results, sorted(results)
        row = results[name]
        assert row["count"] >= 1
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    # Two screens refreshing every 2 s for 10 s: several refreshes each, not just the load.
    assert results[bench_load.WALL_GROUP]["count"] >= 4
    assert report["errors"]["requests"] > 20
    assert report["errors"]["failed"] == 0, report["errors"]["samples"]
    assert report["server_tracebacks"]["count"] == 0, report["server_tracebacks"]["first"]
    assert report["targets"]["zero_errors_met"] is True

    processes = report["processes"]
    assert {"embedded app.py", "feeder", "load client"} <= set(processes)
    app = processes["embedded app.py"]
    assert app["samples"] >= 3
    assert app["rss_max_mb"] > 50
    assert app["cpu_max_pct"] > 0
    assert app["rss_slope_mb_per_min"] is not None
    # 12 s hold no three whole minutes: the floor slope is rightly not computed.
    assert app["rss_floor_slope_mb_per_min"] is None
    assert report["loadavg"]["max"] is not None

    # The feeder's periods went through the drop folder into the database.
    assert report["ingest"]["periods_dropped"] >= 2
    assert report["ingest"]["files_ingested"] >= 1
    assert report["ingest"]["accepted"] > 0
    # Everything the run started is gone.
    left = psutil.Process().children(recursive=True)
    assert not [p for p in left if p.pid not in before and p.is_running()]


def test_floor_slope_follows_the_lowest_point_of_a_saw_tooth() -> None:
    # Ten minutes sampled every 5 s: a job lifts RSS by 150 MB for 20 s each minute while
    # the floor between jobs rises 2 MB a minute. The floor slope sees the 2 MB, whatever
    # the peaks do; a flat floor under the same peaks reads as flat.
    minutes = [i * 5 / 60 for i in range(120)]
    peaks = [150.0 if (i % 12) < 4 else 0.0 for i in range(120)]
    rising = [300 + 2 * int(m) + p for m, p in zip(minutes, peaks, strict=True)]
    flat = [300 + p for p in peaks]
    assert _floor_slope(minutes, rising) == pytest.approx(2.0)
    assert _floor_slope(minutes, flat) == pytest.approx(0.0, abs=1e-9)
    assert _floor_slope(minutes[:24], rising[:24]) is None  # two minutes: no slope
