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
    assert app["rss_floor_slope_mb_per_min"] is not None
    assert report["loadavg"]["max"] is not None

    # The feeder's periods went through the drop folder into the database.
    assert report["ingest"]["periods_dropped"] >= 2
    assert report["ingest"]["files_ingested"] >= 1
    assert report["ingest"]["accepted"] > 0
    # Everything the run started is gone.
    left = psutil.Process().children(recursive=True)
    assert not [p for p in left if p.pid not in before and p.is_running()]
