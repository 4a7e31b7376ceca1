"""Dask executor on a LocalCluster of two worker processes: results, errors and timeouts."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest
from distributed import LocalCluster
from forecast_service_support import HANG, SLOW, echo_or_hang
from test_executor import collect, task

from services.forecast.executor import DaskExecutor, make_executor


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    # Dask's own INFO lines about starting and stopping workers are noise in test output.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def test_tasks_run_on_the_cluster_workers_and_stan_honours_the_timeout(
    cluster_address: str,
) -> None:
    spec = "dask://" + cluster_address.removeprefix("tcp://")
    ex = make_executor(spec, workers=2, fit=echo_or_hang)
    try:
        collect(ex, [task(0), task(1)], timeout_s=30)  # Prophet imported on both workers
        # 1 s is plenty for the stand-in tasks and far too little for SLOW's real fit: the
        # worker passes the time left to cmdstanpy, which terminates the Stan process.
        outcomes = collect(ex, [task(i) for i in (1, 2, 3, -4, SLOW)], timeout_s=1.0)
    finally:
        ex.close()
    assert set(outcomes) == {(1, 1), (2, 1), (3, 1), (-4, 1), (SLOW, 1)}
    assert outcomes[(2, 1)].result["rows"] == 60
    assert not outcomes[(2, 1)].timed_out
    assert "ValueError: bad series" in outcomes[(-4, 1)].error
    assert os.getpid() not in {o.result["pid"] for o in outcomes.values() if o.result}
    slow = outcomes[(SLOW, 1)]
    assert slow.timed_out
    assert slow.result is None
    assert "processes timed out" in slow.error
    assert slow.seconds < 5


def test_a_hanging_task_is_recorded_as_timed_out_and_its_worker_restarted(
    cluster_address: str,
) -> None:
    ex = DaskExecutor(address=cluster_address, fit=echo_or_hang, grace_s=0.5)
    try:
        # Both workers warm (imports done), so the 1.5 s limit measures the task alone.
        collect(ex, [task(3), task(4)], timeout_s=30)
        started = time.monotonic()
        outcomes = collect(ex, [task(HANG), task(2)], timeout_s=1.5)
        elapsed = time.monotonic() - started
        after = collect(ex, [task(i) for i in (5, 6, 7)], timeout_s=30)
    finally:
        ex.close()
    hung = outcomes[(HANG, 1)]
    assert hung.timed_out
    assert hung.result is None
    assert "worker was restarted" in hung.error
    assert hung.seconds < 4
    assert outcomes[(2, 1)].result is not None
    assert elapsed < 20  # includes restarting the stuck worker
    # Both workers serve again: the stuck thread went with its process.
    assert all(o.result is not None for o in after.values())
