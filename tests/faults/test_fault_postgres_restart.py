"""PostgreSQL restarts under Beacon: during ingest and during page refreshes.

Each test runs its own throwaway PostgreSQL cluster (the shared test server is never
restarted) and stops and starts it with pg_ctl, as an operator's restart or a failover
would: every open connection is cut. Beacon must say it is degraded while the database
is away, lose nothing, and recover by itself.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support import (
    PrivatePostgres,
    beacon_env,
    private_postgres,
    start_beacon,
    stop,
    tail,
    wait_until,
    write_drop_files,
)
from flask.testing import FlaskClient
from sqlalchemy import func, select
from testkit import add_user, settings_for, sign_in, well_formed_request

from app import create_app
from components.shell import SHELL_FRESHNESS
from services.db import Database, connect
from services.db.models import IngestBatch, Measurement, QuarantinedRecord

pytestmark = [
    pytest.mark.xdist_group("faults"),
    pytest.mark.postgres,
    pytest.mark.timeout(180),
]

FILES = 4
CELLS = 400
PERIODS = 60
BAD_EVERY = 89


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


def batches(db: Database) -> list[IngestBatch]:
    with db.session() as session:
        return list(session.scalars(select(IngestBatch).order_by(IngestBatch.id)))


def test_restart_during_ingest_loses_nothing_and_needs_no_manual_step(
    cluster: PrivatePostgres, tmp_path: Path
) -> None:
    url = cluster.create_database("beacon")
    drop = tmp_path / "drop"
    valid, invalid = write_drop_files(
        drop / "feed", files=FILES, cells=CELLS, periods=PERIODS, bad_every=BAD_EVERY
    )
    env = beacon_env(tmp_path / "data", url, BEACON_DROP_DIR=str(drop), BEACON_DROP_POLL_S="5")
    log = tmp_path / "scheduler.log"
    db = connect(url)
    scheduler = start_beacon(["scheduler"], env, log)
    try:

        def second_batch_processing() -> bool:
            rows = batches(db)
            return len(rows) >= 2 and rows[-1].status == "processing"

        wait_until(second_batch_processing, timeout=90, every=0.05)
        cluster.stop()  # fast: every session is cut, the batch in flight included
        time.sleep(2.0)
        assert scheduler.poll() is None, "the scheduler died with its database:\n" + tail(log)
        cluster.start()

        # No manual step: the scheduler reconnects, takes its lease back and carries on.
        wait_until(lambda: not any((drop / "feed").iterdir()), timeout=90, every=0.5)
        wait_until(lambda: all(b.status == "done" for b in batches(db)), timeout=30)
        assert scheduler.poll() is None, tail(log)
    except BaseException:
        stop(scheduler, timeout=90)
        raise
    assert stop(scheduler, sig=signal.SIGTERM, timeout=90) == 0, tail(log)
    rows = batches(db)
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Measurement))
        keys = session.scalar(
            select(func.count()).select_from(
                select(Measurement.element_id, Measurement.kpi_id, Measurement.period_end)
                .distinct()
                .subquery()
            )
        )
        refused = session.scalar(select(func.count()).select_from(QuarantinedRecord))
    db.dispose()
    text = log.read_text()
    assert "database unavailable" in text  # the interruption was seen and handled
    # One batch per file: the interrupted one was resumed from its raw copy.
    assert len(rows) == FILES, [(b.id, b.status) for b in rows]
    for batch in rows:
        assert batch.status == "done"
        assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
    assert sum(b.accepted for b in rows) == stored == keys == valid
    assert sum(b.quarantined for b in rows) == refused == invalid


# ---- pages and API while the database restarts -------------------------------------------


def refresh_body(client: FlaskClient, app) -> dict:  # type: ignore[no-untyped-def]
    """The request a page's shell sends every minute (freshness pill and stale banner)."""
    output = next(o for o in app.callback_map if SHELL_FRESHNESS in o)
    return well_formed_request(output, app.callback_map[output])


@pytest.fixture
def web(cluster: PrivatePostgres, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = cluster.create_database("beacon")
    app = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=url))
    db: Database = app.server.extensions["beacon"].db
    add_user(db, "noc-engineer", "engineer")
    client = app.server.test_client()
    sign_in(client, "noc-engineer")
    yield app, client
    db.dispose()


def test_page_refresh_during_a_restart_fails_cleanly_and_recovers(web, cluster) -> None:  # type: ignore[no-untyped-def]
    app, client = web
    body = refresh_body(client, app)
    assert client.get("/readyz").status_code == 200
    assert client.post("/_dash-update-component", json=body).status_code == 200

    cluster.stop()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {
        "status": "not ready",
        "detail": "database unreachable: OperationalError",
    }
    # A wall screen's refresh fails as a JSON error: the screen keeps its last picture,
    # and no traceback or SQL reaches the browser.
    refresh = client.post("/_dash-update-component", json=body)
    assert refresh.status_code >= 500
    text = refresh.get_data(as_text=True)
    assert refresh.is_json, text[:300]
    assert "Traceback" not in text
    assert "SELECT" not in text
    assert "psycopg" not in text

    cluster.start()
    # Recovery without a manual step: the pool notices the dead connections by itself.
    assert client.get("/readyz").status_code == 200
    again = client.post("/_dash-update-component", json=body)
    assert again.status_code == 200, again.get_data(as_text=True)[:300]
    assert client.get("/").status_code == 200


def test_pages_and_api_say_degraded_while_the_database_is_away(web, cluster) -> None:  # type: ignore[no-untyped-def]
    app, client = web
    cluster.stop()
    try:
        page = client.get("/")
        text = page.get_data(as_text=True)
        assert page.status_code == 503, text[:300]
        assert "degraded" in text.lower()
        assert "Traceback" not in text
        api = client.post("/_dash-update-component", json=refresh_body(client, app))
        assert api.status_code == 503
        assert api.get_json()["error"]["code"] == "database_unavailable"
    finally:
        cluster.start()
