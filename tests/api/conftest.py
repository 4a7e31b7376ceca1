"""Fixtures for API tests: a Beacon app per test on a copy of a migrated, seeded database."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_support import beacon_settings, bearer
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from services import audit, auth
from services.db import Database

Headers = dict[str, str]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated and bootstrapped SQLite file, built once and copied for every test."""
    data_dir = tmp_path_factory.mktemp("api-template")
    db = create_app(beacon_settings(data_dir)).server.extensions["beacon"].db
    with db.engine.connect() as conn:
        # Fold the WAL into the main file so a plain copy holds everything.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return data_dir / "beacon.db"


@pytest.fixture
def server(tmp_path: Path, template_db: Path) -> Iterator[Flask]:
    shutil.copy(template_db, tmp_path / "beacon.db")
    flask_server = create_app(beacon_settings(tmp_path)).server
    yield flask_server
    flask_server.extensions["beacon"].db.dispose()


@pytest.fixture
def db(server: Flask) -> Database:
    return server.extensions["beacon"].db


@pytest.fixture
def client(server: Flask) -> FlaskClient:
    return server.test_client()


@pytest.fixture
def token_for(db: Database) -> Callable[..., str]:
    """Create an API token with a role (and optionally fewer scopes); returns its secret."""

    def issue(role: str, *, scopes: list[str] | None = None, name: str | None = None) -> str:
        with db.session(write=True) as session:
            issued = auth.create_api_token(
                session, name=name or f"test-{role}", role=role, scopes=scopes, actor=audit.SYSTEM
            )
        return issued.plaintext

    return issue


@pytest.fixture
def as_role(token_for: Callable[..., str]) -> Callable[..., Headers]:
    """Authorization headers of a fresh API token with this role."""

    def headers(role: str, *, scopes: list[str] | None = None) -> Headers:
        return bearer(token_for(role, scopes=scopes))

    return headers


@pytest.fixture
def admin(as_role: Callable[..., Headers]) -> Headers:
    return as_role("admin")
