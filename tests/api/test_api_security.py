"""Who may call the API: tokens, sessions, kiosks, roles and scopes."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from api_support import ADMIN_PASSWORD, assert_error, bearer
from flask import Blueprint, Flask
from sqlalchemy import select

from services import audit, auth
from services.api import _refuse_unguarded, views
from services.api.blueprint import api
from services.api.security import policy_of
from services.auth import Scope
from services.db.models import AuditEvent, utcnow

READ_PATHS = ["/api/v1/me", "/api/v1/kpis", "/api/v1/elements", "/api/v1/sources"]


@pytest.mark.parametrize(
    "method_path",
    [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/no-such-thing"),
        ("POST", "/api/v1/tokens/kiosk"),
        ("DELETE", "/api/v1/tokens/api/1"),
    ],
)
def test_no_credentials_is_401(client, method_path) -> None:
    method, path = method_path
    assert_error(client.open(path, method=method), 401, "unauthorized")


def test_unknown_token_is_401(client) -> None:
    response = client.get("/api/v1/me", headers=bearer("bkn_a_" + "x" * 43))
    assert_error(response, 401, "unauthorized")


def test_revoked_token_is_401(client, db, token_for, admin) -> None:
    secret = token_for("viewer", name="soon-revoked")
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with db.session() as session:
        token_id = auth.find_token_by_name(session, kind="api", name="soon-revoked").id
    assert client.delete(f"/api/v1/tokens/api/{token_id}", headers=admin).status_code == 200
    assert_error(client.get("/api/v1/me", headers=bearer(secret)), 401, "unauthorized")


def test_expired_token_is_401(client, db) -> None:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session,
            name="expired",
            role="viewer",
            actor=audit.SYSTEM,
            expires_at=utcnow() - timedelta(minutes=1),
        )
    assert_error(client.get("/api/v1/me", headers=bearer(issued.plaintext)), 401, "unauthorized")


def test_basic_auth_with_token_as_password_is_accepted(client, token_for) -> None:
    secret = token_for("operator", name="ves-sender")
    credentials = base64.b64encode(f"ves:{secret}".encode()).decode()
    response = client.get("/api/v1/me", headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "ves-sender"


def test_me_describes_an_api_token(client, token_for) -> None:
    secret = token_for("operator", scopes=["read", "ingest"], name="collector")
    body = client.get("/api/v1/me", headers=bearer(secret)).get_json()
    assert body == {
        "name": "collector",
        "display_name": "collector",
        "kind": "api",
        "role": "operator",
        "scopes": ["ingest", "read"],
    }


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_audit_refuses_roles_outside_audit_roles(client, as_role, role) -> None:
    error = assert_error(client.get("/api/v1/audit", headers=as_role(role)), 403, "forbidden")
    assert error["details"]["missing"] == "role"
    assert error["details"]["required_roles"] == ["admin", "engineer"]
    assert role in error["message"]


def test_engineer_reads_audit_but_not_users(client, as_role) -> None:
    headers = as_role("engineer")
    assert client.get("/api/v1/audit", headers=headers).status_code == 200
    assert client.get("/api/v1/audit/verify", headers=headers).status_code == 200
    error = assert_error(client.get("/api/v1/users", headers=headers), 403, "forbidden")
    assert error["details"]["missing"] == "role"


def test_token_without_the_scope_is_refused_and_named(client, as_role) -> None:
    read_only_admin = as_role("admin", scopes=["read"])
    assert client.get("/api/v1/me", headers=read_only_admin).status_code == 200
    response = client.post("/api/v1/tokens/kiosk", json={"name": "wall"}, headers=read_only_admin)
    error = assert_error(response, 403, "forbidden")
    assert error["details"]["missing"] == "scope"
    assert error["details"]["required_scope"] == "admin"
    assert "'admin'" in error["message"]
    assert_error(client.get("/api/v1/users", headers=read_only_admin), 403, "forbidden")


def test_refused_state_change_is_audited(client, db, token_for) -> None:
    secret = token_for("viewer", name="curious")
    response = client.post(
        "/api/v1/tokens/api", json={"name": "x", "role": "admin"}, headers=bearer(secret)
    )
    assert_error(response, 403, "forbidden")
    with db.session() as session:
        event = session.scalars(audit.search_query(action="access.denied")).one()
        assert event.actor == "api:curious"
        assert event.actor_role == "viewer"
        assert event.object_id == "POST /api/v1/tokens/api"
        assert event.after == {"missing": "role", "required_scope": "admin"}


def test_refused_read_is_not_audited(client, db, as_role) -> None:
    client.get("/api/v1/audit", headers=as_role("viewer"))
    with db.session() as session:
        assert session.scalars(audit.search_query(action="access.denied")).first() is None


def _login(client, username: str, password: str) -> None:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)


def test_session_user_may_use_the_api(client) -> None:
    _login(client, "admin", ADMIN_PASSWORD)
    me = client.get("/api/v1/me").get_json()
    assert me["kind"] == "user"
    assert me["role"] == "admin"
    assert me["scopes"] == ["act", "admin", "ingest", "read"]
    created = client.post("/api/v1/tokens/kiosk", json={"name": "noc-wall"})
    assert created.status_code == 201


def test_session_user_state_change_from_another_origin_is_refused(client) -> None:
    _login(client, "admin", ADMIN_PASSWORD)
    response = client.post(
        "/api/v1/tokens/kiosk",
        json={"name": "noc-wall"},
        headers={"Origin": "https://evil.example"},
    )
    assert_error(response, 403, "cross_origin")


def test_session_viewer_is_held_to_its_role(client, db) -> None:
    with db.session(write=True) as session:
        auth.create_user(
            session, username="vera", role="viewer", password="viewer-pass-1", actor=audit.SYSTEM
        )
    _login(client, "vera", "viewer-pass-1")
    assert client.get("/api/v1/elements").status_code == 200
    assert_error(client.get("/api/v1/audit"), 403, "forbidden")
    error = assert_error(client.post("/api/v1/tokens/kiosk", json={"name": "w"}), 403, "forbidden")
    assert error["details"]["missing"] == "role"


def test_kiosk_session_may_only_read(client, db) -> None:
    with db.session(write=True) as session:
        kiosk = auth.create_kiosk_token(session, name="wall-1", actor=audit.SYSTEM)
    assert client.get(f"/kiosk/{kiosk.plaintext}").status_code == 303
    for path in READ_PATHS:
        assert client.get(path).status_code == 200, path
    assert client.get("/api/v1/me").get_json()["kind"] == "kiosk"
    error = assert_error(client.post("/api/v1/tokens/kiosk", json={"name": "w"}), 403, "forbidden")
    assert error["details"]["missing"] == "kiosk_read_only"
    assert_error(client.get("/api/v1/audit"), 403, "forbidden")


def test_every_api_view_declares_a_policy(server) -> None:
    api_views = {
        name: view
        for name, view in server.view_functions.items()
        if name.startswith(f"{api.name}.") and name != views.meta.FALLBACK_ENDPOINT
    }
    assert len(api_views) >= 12
    for name, view in api_views.items():
        assert policy_of(view) is not None, name
    write_views = [name for name in api_views if "create" in name or "revoke" in name]
    assert all(policy_of(api_views[name]).scope == Scope.ADMIN for name in write_views)


def test_an_unguarded_api_view_stops_start_up() -> None:
    server = Flask("unguarded")
    blueprint = Blueprint(api.name, __name__, url_prefix="/api/v1")
    blueprint.add_url_rule("/open", "open", lambda: "anyone")
    server.register_blueprint(blueprint)
    with pytest.raises(RuntimeError, match=r"api_v1\.open"):
        _refuse_unguarded(server)


def test_api_responses_are_not_cached(client, admin) -> None:
    assert client.get("/api/v1/me", headers=admin).headers["Cache-Control"] == "no-store"


def test_refusal_event_is_chained(client, db, as_role) -> None:
    client.delete("/api/v1/tokens/api/1", headers=as_role("operator"))
    with db.session() as session:
        assert audit.verify(session).ok
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last.action == "access.denied"
