"""The main API flow on PostgreSQL: tokens, inventory, audit, revocation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from api_support import assert_error, beacon_settings, bearer
from flask import Flask
from sqlalchemy.engine import make_url
from testkit import skip_or_fail_without_postgres

from app import create_app
from services import audit, auth
from services.db.models import Element

pytestmark = pytest.mark.postgres

SERVER_URL = os.environ.get(
    "BEACON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _own_database() -> str:
    """A database of this test run only (per xdist worker), emptied to a fresh schema."""
    skip_or_fail_without_postgres()
    url = make_url(SERVER_URL)
    name = f"beacon_api_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    libpq = url.set(drivername="postgresql")
    try:
        admin = psycopg.connect(
            libpq.set(database="postgres").render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:  # went away since the check above
        pytest.fail(f"PostgreSQL not reachable: {exc}")
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    own = url.set(database=name)
    with psycopg.connect(
        own.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return own.render_as_string(hide_password=False)


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Flask]:
    database_url = _own_database()
    flask_server = create_app(beacon_settings(tmp_path, BEACON_DATABASE_URL=database_url)).server
    assert flask_server.extensions["beacon"].db.dialect == "postgresql"
    yield flask_server
    flask_server.extensions["beacon"].db.dispose()


def test_main_flow_on_postgresql(pg_server: Flask) -> None:
    db = pg_server.extensions["beacon"].db
    client = pg_server.test_client()
    with db.session(write=True) as session:
        issued = auth.create_api_token(session, name="pg-admin", role="admin", actor=audit.SYSTEM)
        session.add_all(
            Element(
                dn=f"SubNetwork=PG,ManagedElement=S{i}",
                name=f"S{i}",
                element_type="site",
                domain="RAN",
                region="PG",
                is_new=i % 2 == 0,
            )
            for i in range(5)
        )
    admin = bearer(issued.plaintext)

    assert client.get("/api/v1/me", headers=admin).get_json()["role"] == "admin"
    assert client.get("/api/v1/kpis", headers=admin).get_json()["items"]
    page = client.get("/api/v1/elements?region=PG&new=true&limit=2", headers=admin).get_json()
    assert page["total"] == 3
    assert [item["name"] for item in page["items"]] == ["S0", "S2"]
    assert (
        client.get("/api/v1/elements?q=managedelement=s4", headers=admin).get_json()["total"] == 1
    )
    assert client.get("/api/v1/sources", headers=admin).status_code == 200

    created = client.post(
        "/api/v1/tokens/api", json={"name": "pg-reader", "role": "viewer"}, headers=admin
    )
    assert created.status_code == 201
    reader = created.get_json()
    assert client.get("/api/v1/me", headers=bearer(reader["token"])).status_code == 200
    assert_error(client.get("/api/v1/audit", headers=bearer(reader["token"])), 403, "forbidden")

    revoked = client.delete(f"/api/v1/tokens/api/{reader['id']}", headers=admin)
    assert revoked.status_code == 200
    assert_error(client.get("/api/v1/me", headers=bearer(reader["token"])), 401, "unauthorized")

    trail = client.get("/api/v1/audit?action=token.api.", headers=admin).get_json()
    actions = [(item["action"], item["actor"]) for item in trail["items"]]
    assert actions[:2] == [
        ("token.api.revoke", "api:pg-admin"),
        ("token.api.create", "api:pg-admin"),
    ]
    verified = client.get("/api/v1/audit/verify", headers=admin).get_json()
    assert verified["ok"] is True
    assert verified["checked"] == verified["head_seq"] > 0
