"""Browser fixtures: one Beacon server with a day of simulated data and one Chromium per module."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash import Dash
from dash.testing.application_runners import ThreadedRunner
from dash.testing.composite import DashComposite
from e2e_support import ServerErrors, sign_in
from testkit import ADMIN_PASSWORD, settings_for

from app import create_app
from services.config import Settings
from services.db import Database
from services.ingest.simfeed import SimulatorFeed

DATA_FILES = ("beacon.db", "secret_key")


@pytest.fixture(scope="session")
def simulated_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated template plus one day of simulated history, built once per session."""
    data_dir = tmp_path_factory.mktemp("e2e-template")
    for name in DATA_FILES:
        shutil.copy(template_db / name, data_dir / name)
    settings = settings_for(data_dir)
    db = create_app(settings).server.extensions["beacon"].db
    feed = SimulatorFeed(db, settings.with_overrides(sim_backfill_days=1))
    feed.prepare()
    feed.catch_up()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return data_dir


@pytest.fixture(scope="module")
def e2e_settings(simulated_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of this module's app, on its own copy of the simulated database."""
    data_dir = tmp_path_factory.mktemp("e2e")
    for name in DATA_FILES:
        shutil.copy(simulated_db / name, data_dir / name)
    return settings_for(data_dir)


def _free_port() -> int:
    """A port no one listens on; dash's own counter repeats in every pytest-xdist worker."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def e2e_app(e2e_settings: Settings) -> Iterator[Dash]:
    """The module's Beacon app; the simulator catches up so every source is fresh."""
    dash_app = create_app(e2e_settings)
    db = dash_app.server.extensions["beacon"].db
    SimulatorFeed(db, e2e_settings).catch_up()
    yield dash_app
    db.dispose()


@pytest.fixture(scope="module")
def e2e_db(e2e_app: Dash) -> Database:
    """The database behind the served app, for arranging data through the services."""
    return e2e_app.server.extensions["beacon"].db


@pytest.fixture(scope="module")
def server_errors() -> Iterator[ServerErrors]:
    """Every ERROR the server logs (an exception in a callback is a 500 and logs one)."""
    handler = ServerErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def dash_duo(
    request: pytest.FixtureRequest,
    e2e_app: Dash,
    server_errors: ServerErrors,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DashComposite]:
    """dash_duo shared by a module: the app's server and Chromium start once, signed in as admin."""
    config = request.config
    with (
        ThreadedRunner() as runner,
        DashComposite(
            server=runner,
            browser=config.getoption("webdriver"),
            headless=config.getoption("headless"),
            options=config.hook.pytest_setup_options(),
            download_path=str(tmp_path_factory.mktemp("download")),
            percy_run=False,
        ) as duo,
    ):
        # Absence checks must not wait: every wait in these tests is explicit.
        duo.driver.implicitly_wait(0)
        duo.start_server(e2e_app, navigate=False, port=_free_port())
        sign_in(duo, "admin", ADMIN_PASSWORD, base_url=runner.url)
        duo.server_url = runner.url  # loads "/" and waits for the Dash entry point
        yield duo
