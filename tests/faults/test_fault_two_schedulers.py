"""Two `beacon scheduler` processes on one database: only one runs jobs, the other stands by.

Real processes, as an operator would start them on two hosts, on SQLite and PostgreSQL.
While both live, every job run comes from the lease holder; when it stops, the standby
takes over without a manual step.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
from fault_support import beacon_env, start_beacon, stop, tail, wait_until
from sqlalchemy import select

from services.db import Database, connect
from services.db.models import JobRun, SchedulerLease, utcnow

pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(120)]

OBSERVE_S = 8.0


def runs_since(db: Database, moment: datetime) -> list[JobRun]:
    with db.session() as session:
        return list(
            session.scalars(
                select(JobRun).where(JobRun.started_at >= moment).order_by(JobRun.started_at)
            )
        )


def holder_pid(db: Database) -> int | None:
    """The pid of the scheduler holding an unexpired lease (holder is host:pid:nonce)."""
    with db.session() as session:
        lease = session.get(SchedulerLease, "scheduler")
    if lease is None or lease.expires_at <= utcnow():
        return None
    return int(lease.holder.split(":")[1])


def test_only_one_of_two_schedulers_runs_jobs(database_url: str, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    # The drop folder job runs every 5 s: a steady stream of runs to attribute.
    env = beacon_env(
        tmp_path / "data", database_url, BEACON_DROP_DIR=str(drop), BEACON_DROP_POLL_S="5"
    )
    db = connect(database_url)
    logs = [tmp_path / "scheduler-a.log", tmp_path / "scheduler-b.log"]
    processes = [start_beacon(["scheduler"], env, logs[0])]
    if db.dialect == "sqlite":
        # SQLite has no advisory lock to serialise two migrations of a brand-new file, so
        # the second starts once the first created the schema. On PostgreSQL both start
        # at the same instant, as two hosts booting together would.
        wait_until(lambda: holder_pid(db), timeout=60)
    processes.append(start_beacon(["scheduler"], env, logs[1]))
    try:
        by_pid = {p.pid: (p, log) for p, log in zip(processes, logs, strict=True)}
        active_pid = wait_until(lambda: holder_pid(db), timeout=60)
        assert active_pid in by_pid, f"lease held by an unknown process {active_pid}"
        (standby_pid,) = set(by_pid) - {active_pid}
        # Both up: the standby printed its start line (it runs, it just holds no lease).
        wait_until(lambda: "started with" in by_pid[standby_pid][1].read_text(), timeout=60)
        watch_from = utcnow()
        time.sleep(OBSERVE_S)
        both_alive = runs_since(db, watch_from)
        assert all(p.poll() is None for p in processes), [tail(log) for log in logs]
        host = socket.gethostname()
        assert both_alive, "no job ran while both schedulers were up"
        assert {run.host for run in both_alive} == {f"{host}:{active_pid}"}

        # The active one stops (deploy, host maintenance): the standby takes over by itself.
        active, active_log = by_pid[active_pid]
        assert stop(active) == 0, tail(active_log)
        stopped_at = utcnow()
        assert "lease released" in active_log.read_text()
        wait_until(lambda: holder_pid(db) == standby_pid, timeout=20)
        wait_until(
            lambda: any(r.host == f"{host}:{standby_pid}" for r in runs_since(db, stopped_at)),
            timeout=20,
        )
        after = runs_since(db, stopped_at)
        assert {run.host for run in after} == {f"{host}:{standby_pid}"}
        with db.session() as session:
            standby_runs = session.scalars(
                select(JobRun.started_at).where(JobRun.host == f"{host}:{standby_pid}")
            ).all()
        # The standby never ran a job while the other held the lease.
        assert min(standby_runs) >= stopped_at
    finally:
        for process in processes:
            stop(process)
        db.dispose()
