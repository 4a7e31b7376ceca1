"""Shared fixtures: a Beacon app on a fresh database, signed-in clients, real Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dash import Dash
from flask.testing import FlaskClient
from selenium.webdriver.chrome.options import Options
from testkit import (
    add_user,
    drop_postgres_database,
    fresh_postgres_database,
    settings_for,
    sign_in,
    skip_or_fail_without_postgres,
)

from app import create_app
from services.config import Settings
from services.db import Database

# After the whole run, every SQLite database the tests left must hold an intact audit chain.
pytest_plugins = ["security.audit_chain_plugin"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Without these Chromium waits on Google services this closed network cannot reach.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,900",
)


def pytest_setup_options() -> Options:
    """Chrome options for dash_duo: Debian's Chromium, headless, no background traffic."""
    options = Options()
    options.binary_location = os.environ.get("BEACON_CHROMIUM", CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return options


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded SQLite file built once per session and copied for each test."""
    data_dir = tmp_path_factory.mktemp("template")
    db = create_app(settings_for(data_dir)).server.extensions["beacon"].db
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    """Settings of a test app whose data dir starts as a copy of the template."""
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    return settings_for(tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[Dash]:
    dash_app = create_app(settings)
    yield dash_app
    dash_app.server.extensions["beacon"].db.dispose()


@pytest.fixture
def db(app: Dash) -> Database:
    return app.server.extensions["beacon"].db


@pytest.fixture
def client(app: Dash) -> FlaskClient:
    """An anonymous client."""
    return app.server.test_client()


@pytest.fixture
def client_as(app: Dash, db: Database) -> Callable[[str], FlaskClient]:
    """A client signed in as a fresh user of the given role."""
    counter = iter(range(1000))

    def make(role: str) -> FlaskClient:
        username = f"{role}-{next(counter)}"
        add_user(db, username, role)
        client = app.server.test_client()
        sign_in(client, username)
        return client

    return make


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """A PostgreSQL database of this test worker; skips when no server answers."""
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_test_{worker_id}")
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL (an empty database each time)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'beacon.db'}"
        return
    worker = request.getfixturevalue("worker_id")
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_it_{worker}")
    yield url
    drop_postgres_database(url)  # WITH (FORCE): connections a test left open do not block it
