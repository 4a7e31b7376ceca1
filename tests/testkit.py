"""Helpers shared by Beacon's tests (settings, sign-in, PostgreSQL availability)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from services import audit, auth
from services.config import Settings, load_settings
from services.db import Database, connect, upgrade_to_head
from services.seed import ensure_kpis

REPO_ROOT = Path(__file__).resolve().parents[1]
# External sample data (NAB, Prophet, VES, PM XML, alarms) lives beside the repository.
SHARED_DATA = Path(os.environ.get("BEACON_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
ADMIN_PASSWORD = "admin-pass-123"
USER_PASSWORD = "user-pass-12345"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROLES = ("viewer", "operator", "engineer", "executive", "admin")


def settings_for(data_dir: Path, **extra: str) -> Settings:
    """Settings of a test app: its own data dir, a known admin password, no simulator."""
    env = {
        "BEACON_DATA_DIR": str(data_dir),
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIMULATOR": "0",
        # Sign-in limits are exercised by their own test; others sign in freely.
        "BEACON_LOGIN_RATE_LIMIT": "1000 per minute",
        # Tests change data between refreshes; the wall's shared answers have their own test.
        "BEACON_WALL_CACHE_S": "0",
        **extra,
    }
    return load_settings(env)


@contextmanager
def seeded_database(url: str) -> Iterator[Database]:
    """A migrated database with Beacon's KPI catalogue, disposed of afterwards."""
    database = connect(url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
    try:
        yield database
    finally:
        database.dispose()


# Module fixtures that run once per backend: `@pytest.fixture(scope="module", params=BACKENDS)`.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def backend_url(backend: str, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[str]:
    """An empty database on `backend`: a SQLite file, or a PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp(name) / 'beacon.db'}"
        return
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_{name}")
    try:
        yield url
    finally:
        drop_postgres_database(url)


def add_user(db: Database, username: str, role: str, password: str = USER_PASSWORD) -> None:
    """Create a user directly through the service."""
    with db.session(write=True) as session:
        auth.create_user(
            session, username=username, role=role, password=password, actor=audit.SYSTEM
        )


def sign_in(client: FlaskClient, username: str, password: str = USER_PASSWORD) -> None:
    """Sign a test client in through the login form, asserting it worked."""
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def postgres_admin_url() -> str:
    """The PostgreSQL server tests may use (BEACON_TEST_POSTGRES_URL or the local default)."""
    return os.environ.get("BEACON_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def postgres_available(url: str | None = None) -> bool:
    """True when the PostgreSQL test server answers."""
    try:
        with psycopg.connect(_libpq(url or postgres_admin_url()), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def skip_or_fail_without_postgres() -> None:
    """Skip when PostgreSQL is down, except in CI (BEACON_REQUIRE_POSTGRES=1) where it fails."""
    import pytest

    if postgres_available():
        return
    message = f"PostgreSQL is not reachable at {postgres_admin_url()}"
    if os.environ.get("BEACON_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def fresh_postgres_database(name: str) -> str:
    """(Re)create an empty database for this test process and return its URL.

    The name carries the process id, so test runs sharing one server never drop each
    other's databases.
    """
    name = f"{name}_{os.getpid()}"
    admin_url = make_url(postgres_admin_url())
    with psycopg.connect(_libpq(admin_url.set(database="postgres")), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Remove a database made by `fresh_postgres_database` (the server stays tidy)."""
    parsed = make_url(url)
    admin = parsed.set(database="postgres")
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def callback_request(output: str, inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A crafted `/_dash-update-component` body naming `output` (inputs left as given)."""
    return {
        "output": output,
        "outputs": _output_specs(output),
        "inputs": inputs or [],
        "changedPropIds": [],
        "state": [],
    }


def well_formed_request(output: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A body shaped exactly as Dash sends it for this callback, every value None."""

    def values(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": i["id"], "property": i["property"], "value": None} for i in items]

    return {
        "output": output,
        "outputs": _output_specs(output),
        "inputs": values(spec["inputs"]),
        "changedPropIds": [],
        "state": values(spec["state"]),
    }


def _output_specs(output: str) -> list[dict[str, str]] | dict[str, str]:
    def one(text: str) -> dict[str, str]:
        component, _, prop = text.split("@")[0].rpartition(".")
        return {"id": component, "property": prop}

    if output.startswith(".."):
        return [one(part) for part in output.strip(".").split("...")]
    return one(output)


def _libpq(url: Any) -> str:
    parsed = make_url(str(url) if not hasattr(url, "drivername") else url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
