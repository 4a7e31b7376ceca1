"""Scale-out end to end: `beacon serve --workers 2`, one `beacon scheduler`, PostgreSQL, Dask.

The production layout on one machine: two gunicorn workers and a scheduler share a fresh
PostgreSQL database; forecasts fan out to a Dask LocalCluster. Telemetry is pushed through
the API, the scheduler fits a forecast on the cluster, and both workers serve signed-in
pages, callbacks and API reads with the same answers.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import psutil
import pytest
from distributed import LocalCluster
from fault_support import beacon_env, free_port, start_beacon, stop, tail, wait_until
from sqlalchemy import select
from testkit import (
    USER_PASSWORD,
    add_user,
    drop_postgres_database,
    fresh_postgres_database,
    seeded_database,
    skip_or_fail_without_postgres,
    well_formed_request,
)

from services import audit, auth
from services.db.models import DailyAggregate, Element, Forecast, JobRun, Kpi

pytestmark = [
    pytest.mark.xdist_group("faults"),
    pytest.mark.postgres,
    pytest.mark.timeout(240),
]

CELL = "SubNetwork=North,ManagedElement=SCALE-1,EUtranCellFDD=C1"
HISTORY_DAYS = 56


@pytest.fixture
def pg_url() -> Iterator[str]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_scaleout")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def dask_spec() -> Iterator[tuple[str, LocalCluster]]:
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://"), cluster


def seed(url: str) -> str:
    """An engineer, a collector token and eight weeks of daily busy-hour history of one cell.

    The history stands in for months of earlier ingest (rolled up from 15-minute data,
    which would take far longer to push here); today's telemetry goes through the API.
    """
    with seeded_database(url) as db:
        add_user(db, "noc-engineer", "engineer")
        with db.session(write=True) as session:
            token = auth.create_api_token(
                session, name="collector", role="operator", actor=audit.SYSTEM
            ).plaintext
            cell = Element(dn=CELL, name="SCALE-1-C1", element_type="cell", domain="RAN",
                           region="North", is_new=False)  # fmt: skip
            session.add(cell)
            session.flush()
            kpi = session.scalar(select(Kpi).where(Kpi.name == "prb_util_dl"))
            assert kpi is not None
            rng = np.random.default_rng(7)
            yesterday = datetime.now(UTC).date() - timedelta(days=1)
            for n in range(HISTORY_DAYS):
                day = yesterday - timedelta(days=HISTORY_DAYS - 1 - n)
                value = 55 + 0.3 * n + 5 * np.sin(2 * np.pi * day.weekday() / 7)
                value += rng.normal(0, 1)
                session.add(DailyAggregate(element_id=cell.id, kpi_id=kpi.id, day=day,
                                           busy_hour_value=float(value), busy_hour=20,
                                           daily_mean=float(value) * 0.6,
                                           daily_max=float(value), samples=96,
                                           source="measurements"))  # fmt: skip
    return token


class Conn:
    """One keep-alive HTTP connection, so we can tell which worker process accepted it."""

    def __init__(self, port: int, cookie: str = "") -> None:
        self.port = port
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = cookie

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        all_headers = {"Cookie": self.cookie} if self.cookie else {}
        all_headers.update(headers or {})
        self.http.request(method, path, body=body, headers=all_headers)
        response = self.http.getresponse()
        data = response.read()
        return response.status, data, response

    def worker_pid(self, workers: list[psutil.Process]) -> int:
        """The gunicorn worker holding the other end of this connection."""
        local = self.http.sock.getsockname()[1]
        for worker in workers:
            for c in worker.net_connections(kind="tcp"):
                if c.raddr and c.raddr.port == local and c.laddr.port == self.port:
                    return worker.pid
        raise AssertionError("no worker holds the connection")

    def close(self) -> None:
        self.http.close()


def sign_in(port: int) -> str:
    conn = Conn(port)
    body = f"username=noc-engineer&password={USER_PASSWORD}".encode()
    status, _, response = conn.request(
        "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    conn.close()
    assert status == 303
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith("beacon_session=")
    return cookie.split(";", 1)[0]


def reads(conn: Conn, token: str, refresh: dict[str, Any]) -> dict[str, Any]:
    """What a signed-in engineer and an API client read through one connection."""
    api = {"Authorization": f"Bearer {token}"}
    seen: dict[str, Any] = {}
    for path in ("/", "/forecasts", "/_dash-layout"):
        status, data, _ = conn.request("GET", path)
        assert status == 200, (path, data[:200])
    status, data, _ = conn.request(
        "POST", "/_dash-update-component", json.dumps(refresh).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 200, data[:300]
    shell = json.loads(data)["response"]
    pill = shell["shell-freshness"]
    # The pill's text carries the age of the newest data, which moves with the clock.
    assert pill["children"].startswith("Data fresh"), pill
    seen["freshness"] = (pill["className"], shell["shell-stale-banner"])
    for path in ("/api/v1/forecasts", "/api/v1/sources", f"/api/v1/elements?q={quote(CELL)}"):
        saved, conn.cookie = conn.cookie, ""
        status, data, _ = conn.request("GET", path, headers=api)
        conn.cookie = saved
        assert status == 200, (path, data[:300])
        seen[path] = json.loads(data)
    for source in seen["/api/v1/sources"]["items"]:
        source.pop("age_seconds")  # moves with the clock between two requests
    return seen


def test_two_workers_a_scheduler_and_dask_end_to_end(
    pg_url: str, dask_spec: tuple[str, LocalCluster], tmp_path: Path
) -> None:
    spec, cluster = dask_spec
    token = seed(pg_url)
    port = free_port()
    env = beacon_env(
        tmp_path / "data",
        pg_url,
        BEACON_FORECAST_EXECUTOR=spec,
        BEACON_FORECAST_HORIZON_DAYS="30",
        BEACON_SECRET_KEY="scale-out-test-secret-key-0123456789",
    )
    serve_log, scheduler_log = tmp_path / "serve.log", tmp_path / "scheduler.log"
    serve = start_beacon(["serve", "--workers", "2", "--port", str(port)], env, serve_log)
    scheduler = start_beacon(["scheduler"], env, scheduler_log)
    try:
        # Telemetry of the last hour through the API, as a collector sends it.
        wait_until(lambda: Conn(port).request("GET", "/readyz")[0] == 200, timeout=60)
        workers = wait_until(
            lambda: (kids := psutil.Process(serve.pid).children()) and len(kids) == 2 and kids,
            timeout=30,
        )
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        rows = ["dn,kpi,period_end,value"] + [
            f'"{CELL}",prb_util_dl,{(now - timedelta(minutes=15 * i)):%Y-%m-%dT%H:%M:%SZ},{60 + i}'
            for i in range(4)
        ]
        status, data, _ = Conn(port).request(
            "POST", "/api/v1/telemetry?source=collector", "\n".join(rows).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        )  # fmt: skip
        assert status == 202, data[:300]
        assert json.loads(data)["accepted"] == 4

        # The scheduler fits the series on the Dask cluster (its run at start).
        def forecast_stored() -> Forecast | None:
            with seeded_database(pg_url) as db, db.session() as session:
                return session.scalar(select(Forecast).where(Forecast.is_current.is_(True)))

        forecast = wait_until(forecast_stored, timeout=120, every=1.0)
        assert forecast.status == "ok", forecast.status_detail
        assert forecast.model in ("prophet", "seasonal_naive")
        assert "execute" in cluster.scheduler.task_prefixes  # it ran on the cluster
        with seeded_database(pg_url) as db, db.session() as session:
            run = session.scalars(
                select(JobRun).where(JobRun.job_id == "forecast.nightly", JobRun.status == "ok")
            ).first()
        assert run is not None
        assert run.detail["fitted"] == 1

        # Both workers serve the signed-in engineer and the API client, and agree.
        cookie = sign_in(port)
        deps = json.loads(Conn(port, cookie).request("GET", "/_dash-dependencies")[1])
        spec_of = next(d for d in deps if "shell-freshness.children" in d["output"])
        refresh = well_formed_request(spec_of["output"], spec_of)
        answers: dict[int, dict[str, Any]] = {}
        for _ in range(40):
            conn = Conn(port, cookie)
            try:
                seen = reads(conn, token, refresh)
                answers.setdefault(conn.worker_pid(workers), seen)
            finally:
                conn.close()
            if len(answers) == 2:
                break
        assert set(answers) == {w.pid for w in workers}, "one worker never answered"
        first, second = answers.values()
        assert first == second
        (item,) = first["/api/v1/forecasts"]["items"]
        assert item["status"] == "ok"
        assert item["model"] == forecast.model
        assert [s["name"] for s in first["/api/v1/sources"]["items"]] == ["collector"]
        assert serve.poll() is None, tail(serve_log)
        assert scheduler.poll() is None, tail(scheduler_log)
    finally:
        assert stop(scheduler) == 0, tail(scheduler_log)
        assert stop(serve) == 0, tail(serve_log)
