"""Users and tokens over the API: admin only, secrets shown once, every change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_support import assert_error, bearer
from sqlalchemy import select

from services import audit, auth
from services.db.models import ApiToken, KioskToken, utcnow


def _last_event(db, action: str):
    with db.session() as session:
        event = session.scalars(audit.search_query(action=action)).first()
        assert event is not None, action
        session.expunge(event)
        return event


def test_users_list_never_exposes_password_hashes(client, db, admin) -> None:
    with db.session(write=True) as session:
        auth.create_user(
            session,
            username="olga",
            role="operator",
            password="operator-pass-1",
            actor=audit.SYSTEM,
            email="olga@noc.example",
        )
    response = client.get("/api/v1/users", headers=admin)
    body = response.get_json()
    assert [user["username"] for user in body["items"]] == ["admin", "olga"]
    olga = body["items"][1]
    assert olga["role"] == "operator"
    assert olga["email"] == "olga@noc.example"
    assert olga["active"] is True
    assert olga["created_at"].endswith("Z")
    text = response.get_data(as_text=True)
    assert "password" not in text
    assert "$argon2" not in text


def test_create_kiosk_token_shows_the_secret_once_and_audits(client, db, token_for) -> None:
    headers = bearer(token_for("admin", name="provisioner"))
    response = client.post("/api/v1/tokens/kiosk", json={"name": "  NOC wall 1 "}, headers=headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "NOC wall 1"
    assert body["token"].startswith("bkn_k_")
    assert body["prefix"] == body["token"][:12]
    assert body["kiosk_path"] == f"/kiosk/{body['token']}"

    event = _last_event(db, "token.kiosk.create")
    assert event.actor == "api:provisioner"
    assert event.actor_role == "admin"
    assert event.object_id == str(body["id"])
    assert body["token"] not in str(event.after)

    listed = client.get("/api/v1/tokens", headers=headers)
    assert body["token"] not in listed.get_data(as_text=True)
    [kiosk] = listed.get_json()["kiosk"]
    assert (kiosk["id"], kiosk["name"], kiosk["revoked_at"]) == (body["id"], "NOC wall 1", None)
    assert kiosk["created_by"] == "api:provisioner"

    # The issued link opens a wall-screen session.
    assert client.get(body["kiosk_path"]).status_code == 303


def test_create_api_token_with_fewer_scopes(client, db, admin) -> None:
    response = client.post(
        "/api/v1/tokens/api",
        json={"name": "grafana", "role": "operator", "scopes": ["read"]},
        headers=admin,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["role"], body["scopes"], body["expires_at"]) == ("operator", ["read"], None)
    me = client.get("/api/v1/me", headers=bearer(body["token"])).get_json()
    assert (me["name"], me["role"], me["scopes"]) == ("grafana", "operator", ["read"])
    event = _last_event(db, "token.api.create")
    assert event.actor == "api:test-admin"
    assert event.after == {"name": "grafana", "role": "operator", "scopes": ["read"]}
    listed = client.get("/api/v1/tokens", headers=admin)
    assert body["token"] not in listed.get_data(as_text=True)
    grafana = next(t for t in listed.get_json()["api"] if t["name"] == "grafana")
    assert (grafana["role"], grafana["scopes"], grafana["created_by"]) == (
        "operator",
        ["read"],
        "api:test-admin",
    )
    with db.session() as session:
        stored = session.get_one(ApiToken, body["id"])
        assert stored.token_hash != body["token"]
        assert stored.token_hash == auth.token_digest(body["token"])


def test_create_api_token_defaults_to_the_roles_scopes_and_keeps_expiry(client, admin) -> None:
    expires = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    response = client.post(
        "/api/v1/tokens/api",
        json={"name": "etl", "role": "engineer", "expires_at": expires.isoformat()},
        headers=admin,
    )
    body = response.get_json()
    assert body["scopes"] == ["act", "ingest", "read"]
    assert body["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"name": "x", "role": "viewer", "scopes": ["admin"]}, "cannot hold scope(s): admin"),
        ({"name": "x", "role": "superuser"}, "body.role"),
        ({"name": "x", "role": "viewer", "scopes": ["root"]}, "body.scopes.0"),
        ({"name": "   ", "role": "viewer"}, "body.name"),
        ({"name": "x" * 101, "role": "viewer"}, "body.name"),
        ({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, "future"),
    ],
)
def test_create_api_token_refuses_bad_input(client, db, admin, payload, fragment) -> None:
    response = client.post("/api/v1/tokens/api", json=payload, headers=admin)
    error = assert_error(response, 422, "invalid_input")
    assert fragment in error["message"]
    with db.session() as session:
        names = set(session.scalars(select(ApiToken.name)))
    assert "x" not in names


@pytest.mark.parametrize("kind", ["kiosk", "api"])
def test_revoke_token(client, db, token_for, admin, kind) -> None:
    with db.session(write=True) as session:
        if kind == "kiosk":
            issued = auth.create_kiosk_token(session, name="lobby", actor=audit.SYSTEM)
        else:
            issued = auth.create_api_token(session, name="lobby", role="viewer", actor=audit.SYSTEM)
    response = client.delete(f"/api/v1/tokens/{kind}/{issued.id}", headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["kind"], body["id"], body["name"]) == (kind, issued.id, "lobby")
    assert body["revoked_at"].endswith("Z")

    event = _last_event(db, f"token.{kind}.revoke")
    assert event.actor == "api:test-admin"
    assert event.object_type == f"{kind}_token"
    assert event.object_id == str(issued.id)
    with db.session() as session:
        model = KioskToken if kind == "kiosk" else ApiToken
        assert session.get_one(model, issued.id).revoked_at is not None

    again = client.delete(f"/api/v1/tokens/{kind}/{issued.id}", headers=admin)
    assert_error(again, 409, "conflict")


def test_revoked_kiosk_link_no_longer_opens(client, admin) -> None:
    created = client.post("/api/v1/tokens/kiosk", json={"name": "lobby"}, headers=admin)
    body = created.get_json()
    client.delete(f"/api/v1/tokens/kiosk/{body['id']}", headers=admin)
    assert client.get(body["kiosk_path"]).status_code == 403


def test_revoke_unknown_token_is_404(client, admin) -> None:
    error = assert_error(client.delete("/api/v1/tokens/api/4242", headers=admin), 404, "not_found")
    assert "4242" in error["message"]


def test_revoke_token_id_must_be_positive(client, admin) -> None:
    assert_error(client.delete("/api/v1/tokens/api/0", headers=admin), 422, "invalid_input")


def test_operator_cannot_manage_tokens(client, db, as_role) -> None:
    headers = as_role("operator")
    assert_error(client.get("/api/v1/tokens", headers=headers), 403, "forbidden")
    response = client.post("/api/v1/tokens/kiosk", json={"name": "w"}, headers=headers)
    assert_error(response, 403, "forbidden")
    with db.session() as session:
        assert session.scalars(select(KioskToken)).first() is None
