"""Sessions and credentials: CSRF, session fixation, sign-in limits, API tokens at rest,
and crafted state changes from read-only principals (refused and audited)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dash import Dash
from flask.testing import FlaskClient
from security_support import (
    FOREIGN,
    app_on_copy,
    audit_rows,
    callback_body,
    database,
    kiosk_client,
    output_of,
    user_client,
)
from sqlalchemy import text
from testkit import ADMIN_PASSWORD, USER_PASSWORD, add_user, sign_in, well_formed_request

from services import audit, auth
from services.db.models import User

# Ways a browser tells a cross-site request apart (the guard must refuse each one).
CROSS_SITE_HEADERS = [
    {"Origin": FOREIGN},
    {"Origin": "null"},
    {"Origin": "http://localhost.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": f"{FOREIGN}/attack.html"},
]
CROSS_SITE_IDS = [
    "origin-foreign",
    "origin-null",
    "origin-look-alike",
    "fetch-cross-site",
    "fetch-same-site",
    "no-origin-foreign-referer",
]
SAME_SITE_HEADERS = [
    {},  # not a browser: API clients and VES senders send no Origin
    {"Origin": "http://localhost"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Referer": "http://localhost/admin"},
]
SAME_SITE_IDS = ["no-browser-headers", "origin-self", "fetch-same-origin", "referer-self"]


@pytest.fixture
def sec_app(template_db: Path, tmp_path: Path) -> Iterator[Dash]:
    dash_app = app_on_copy(template_db, tmp_path)
    yield dash_app
    database(dash_app).dispose()


# --- CSRF -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csrf_app(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    dash_app = app_on_copy(template_db, tmp_path_factory.mktemp("csrf"))
    yield dash_app
    database(dash_app).dispose()


@pytest.fixture(scope="module")
def csrf_admin(csrf_app: Dash) -> FlaskClient:
    return user_client(csrf_app, "csrf-admin", "admin")


@pytest.mark.parametrize("headers", CROSS_SITE_HEADERS, ids=CROSS_SITE_IDS)
def test_cross_site_posts_are_refused_everywhere(
    csrf_app: Dash, csrf_admin: FlaskClient, headers: dict[str, str]
) -> None:
    """Console form, Dash callback and session-cookie API call: each refused, nothing changed."""
    sec_app, admin = csrf_app, csrf_admin
    before = _kiosk_token_count(sec_app)
    api = admin.post("/api/v1/tokens/kiosk", json={"name": "planted"}, headers=headers)
    assert api.status_code == 403
    assert api.get_json()["error"]["code"] == "cross_origin"
    assert _kiosk_token_count(sec_app) == before

    create = callback_body(
        sec_app,
        "admin-kiosk-message.children",
        {"admin-create-kiosk.n_clicks": 1, "admin-kiosk-name.value": "planted"},
        trigger="admin-create-kiosk.n_clicks",
    )
    refused = admin.post("/_dash-update-component", json=create, headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "cross_origin"
    assert _kiosk_token_count(sec_app) == before

    # Login CSRF (signing a victim in as the attacker) and forced logout are refused too.
    login = sec_app.server.test_client().post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD}, headers=headers
    )
    assert login.status_code == 403
    assert admin.post("/logout", headers=headers).status_code == 403
    assert admin.get("/admin").status_code == 200  # still signed in


@pytest.mark.parametrize("headers", SAME_SITE_HEADERS, ids=SAME_SITE_IDS)
def test_same_site_posts_still_work(
    csrf_app: Dash, csrf_admin: FlaskClient, headers: dict[str, str]
) -> None:
    """The refusals above are about the origin: the same requests from the site succeed."""
    sec_app, admin = csrf_app, csrf_admin
    before = _kiosk_token_count(sec_app)
    api = admin.post("/api/v1/tokens/kiosk", json={"name": "lobby"}, headers=headers)
    assert api.status_code == 201, api.data[:300]
    create = callback_body(
        sec_app,
        "admin-kiosk-message.children",
        {"admin-create-kiosk.n_clicks": 1, "admin-kiosk-name.value": "hall"},
        trigger="admin-create-kiosk.n_clicks",
    )
    response = admin.post("/_dash-update-component", json=create, headers=headers)
    assert response.status_code == 200, response.data[:300]
    assert _kiosk_token_count(sec_app) == before + 2


def _kiosk_token_count(app: Dash) -> int:
    with database(app).session() as session:
        return len(auth.list_kiosk_tokens(session))


# --- session fixation -----------------------------------------------------------------------


def test_a_session_planted_before_login_is_not_the_one_after(sec_app: Dash) -> None:
    """Sign-in starts a new session: nothing planted before carries over, and the planted
    cookie (which an attacker would keep a copy of) stays anonymous after the victim signs in."""
    add_user(database(sec_app), "fixed", "engineer")
    victim = sec_app.server.test_client()
    with victim.session_transaction() as planted:
        planted["planted"] = "by-attacker"
        planted["_fresh"] = True
    planted_cookie = victim.get_cookie("beacon_session").value
    response = victim.post("/login", data={"username": "fixed", "password": USER_PASSWORD})
    assert response.status_code == 303
    after_cookie = victim.get_cookie("beacon_session").value
    assert after_cookie != planted_cookie
    with victim.session_transaction() as current:
        assert "planted" not in current
        assert current["_user_id"].startswith("u:")
    attacker = sec_app.server.test_client()
    attacker.set_cookie("beacon_session", planted_cookie)
    assert attacker.get("/audit").status_code == 303  # still anonymous: sent to sign in
    assert victim.get("/audit").status_code == 200


def test_a_copied_session_cookie_dies_with_sign_out(sec_app: Dash) -> None:
    """Cookies are the only copy of a session: signing out ends every copy of it."""
    client = user_client(sec_app, "leaving", "admin")
    copied = client.get_cookie("beacon_session").value
    thief = sec_app.server.test_client()
    thief.set_cookie("beacon_session", copied)
    assert thief.get("/admin").status_code == 200  # a copy works while the session lives
    assert client.post("/logout", headers={"Origin": "http://localhost"}).status_code == 303
    assert thief.get("/admin").status_code == 303  # sent to sign in
    # Signing in again works as before.
    again = sec_app.server.test_client()
    sign_in(again, "leaving")
    assert again.get("/admin").status_code == 200


def test_signing_in_as_someone_else_replaces_the_whole_session(sec_app: Dash) -> None:
    add_user(database(sec_app), "first", "admin")
    add_user(database(sec_app), "second", "viewer")
    client = sec_app.server.test_client()
    client.post("/login", data={"username": "first", "password": USER_PASSWORD})
    with client.session_transaction() as session:
        session["left-over"] = "admin state"
    first_cookie = client.get_cookie("beacon_session").value
    client.post("/login", data={"username": "second", "password": USER_PASSWORD})
    assert client.get_cookie("beacon_session").value != first_cookie
    with client.session_transaction() as session:
        assert "left-over" not in session
    assert client.get("/admin").status_code == 403  # the viewer, not the admin


def test_opening_a_kiosk_link_starts_a_new_session(sec_app: Dash) -> None:
    client = user_client(sec_app, "wall-owner", "admin")
    with client.session_transaction() as session:
        session["left-over"] = "admin state"
    with database(sec_app).session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="fixation-wall", actor=audit.SYSTEM)
    client.get(f"/kiosk/{issued.plaintext}")
    with client.session_transaction() as session:
        assert "left-over" not in session
        assert session["_user_id"].startswith("k:")
    assert client.get("/admin").status_code == 403


# --- sign-in limits -------------------------------------------------------------------------


@pytest.fixture
def strict_app(template_db: Path, tmp_path: Path) -> Iterator[Dash]:
    dash_app = app_on_copy(template_db, tmp_path, BEACON_LOGIN_RATE_LIMIT="3 per minute")
    yield dash_app
    database(dash_app).dispose()


WRONG_PASSWORD = "wrong-password"


def _attempt(client: FlaskClient, username: str, ip: str, password: str = WRONG_PASSWORD) -> int:
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    ).status_code


def test_sign_in_limit_per_address_covers_every_username(strict_app: Dash) -> None:
    """Spraying one password over many names from one address stops after the limit."""
    client = strict_app.server.test_client()
    statuses = [_attempt(client, f"user-{n}", "10.0.0.7") for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert _attempt(client, "admin", "10.0.0.7", ADMIN_PASSWORD) == 429
    assert _attempt(client, "admin", "10.0.0.8", ADMIN_PASSWORD) == 303  # other addresses work


def test_sign_in_limit_per_username_covers_every_address(strict_app: Dash) -> None:
    """Guessing one account's password from many addresses stops after the limit."""
    client = strict_app.server.test_client()
    statuses = [_attempt(client, "admin", f"10.0.1.{n}") for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert _attempt(client, "admin", "10.0.1.99", ADMIN_PASSWORD) == 429
    assert _attempt(client, "ADMIN ", "10.0.1.98") == 429  # the name is normalised first
    add_user(database(strict_app), "other", "viewer")
    assert _attempt(client, "other", "10.0.1.97", USER_PASSWORD) == 303


def test_successful_sign_ins_do_not_use_up_the_limit(strict_app: Dash) -> None:
    client = strict_app.server.test_client()
    for _ in range(5):
        assert _attempt(client, "admin", "10.0.2.1", ADMIN_PASSWORD) == 303
    failures = audit_rows(strict_app, "auth.login_failed")
    assert failures == []


# --- API tokens -----------------------------------------------------------------------------


def test_tokens_are_hashed_at_rest(sec_app: Dash, tmp_path: Path) -> None:
    """Issued through the API; neither the token tables nor the database file hold a secret."""
    admin = user_client(sec_app, "token-admin", "admin")
    api = admin.post(
        "/api/v1/tokens/api", json={"name": "collector", "role": "operator", "scopes": ["read"]}
    )
    kiosk = admin.post("/api/v1/tokens/kiosk", json={"name": "noc-wall"})
    assert api.status_code == kiosk.status_code == 201
    secrets = [api.get_json()["token"], kiosk.get_json()["token"]]
    assert all(s.startswith(("bkn_a_", "bkn_k_")) and len(s) > 40 for s in secrets)
    db = database(sec_app)
    with db.session() as session:
        for table in ("api_tokens", "kiosk_tokens"):
            rows = session.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            dumped = repr(rows)
            for secret in secrets:
                assert secret not in dumped, table
                assert secret[6:] not in dumped, table
        stored = set(session.scalars(text("SELECT token_hash FROM api_tokens")))
        assert auth.token_digest(secrets[0]) in stored
    db.engine.dispose()  # fold everything into the files before reading their bytes
    for path in tmp_path.glob("beacon.db*"):
        raw = path.read_bytes()
        for secret in secrets:
            assert secret[6:].encode() not in raw, path.name


def test_tokens_are_scoped_and_revocable(sec_app: Dash) -> None:
    admin = user_client(sec_app, "scope-admin", "admin")
    read_only = admin.post(
        "/api/v1/tokens/api", json={"name": "ro-admin", "role": "admin", "scopes": ["read"]}
    ).get_json()
    bearer = {"Authorization": f"Bearer {read_only['token']}"}
    client = sec_app.server.test_client()
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    refused = client.post("/api/v1/tokens/kiosk", json={"name": "w"}, headers=bearer)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["details"]["missing"] == "scope"
    over_reach = admin.post(
        "/api/v1/tokens/api", json={"name": "x", "role": "viewer", "scopes": ["admin"]}
    )
    assert over_reach.status_code in (400, 422)
    revoked = admin.delete(f"/api/v1/tokens/api/{read_only['id']}")
    assert revoked.status_code == 200, revoked.data[:200]
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    # A token is never a console credential, whatever its role.
    assert client.get("/_dash-layout", headers=bearer).status_code == 401


# --- crafted state changes from read-only principals -----------------------------------------


def _mutating_outputs(app: Dash) -> dict[str, object]:
    policies = app.server.extensions["beacon"].callbacks
    return {o: p for o, p in policies.items() if p.mutates}


@pytest.mark.parametrize("principal", ["viewer", "kiosk"])
def test_every_crafted_state_change_is_refused_and_audited(sec_app: Dash, principal: str) -> None:
    """Each state-changing callback, posted as if its buttons were clicked, by a viewer and by
    a wall screen: 403, no change, and exactly one access.denied event naming the callback."""
    if principal == "kiosk":
        client, actor = kiosk_client(sec_app, "crafty-wall"), "kiosk:crafty-wall"
    else:
        client, actor = user_client(sec_app, "crafty", "viewer"), "crafty"
    mutating = _mutating_outputs(sec_app)
    assert len(mutating) >= 15
    refused = 0
    for output, policy in mutating.items():
        if principal == "viewer" and "viewer" in policy.roles:
            continue  # e.g. saving one's own anomaly view: open to viewers on purpose
        body = well_formed_request(output, sec_app.callback_map[output])
        for item in body["inputs"]:
            item["value"] = 1  # every button "clicked"
        body["changedPropIds"] = [f"{body['inputs'][0]['id']}.{body['inputs'][0]['property']}"]
        before = _audit_head(sec_app)
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 403, (policy.name, response.data[:200])
        with database(sec_app).session() as session:
            new = audit.search(session, limit=10)
            new = [e for e in new if e.seq > before]
        assert [e.action for e in new] == ["access.denied"], policy.name
        event = new[0]
        assert (event.actor, event.actor_role) == (actor, "viewer")
        assert (event.object_type, event.object_id) == ("callback", policy.name)
        assert event.after["output"] == output[:300]
        refused += 1
    assert refused >= 15
    with database(sec_app).session() as session:
        assert audit.verify(session).ok


def _audit_head(app: Dash) -> int:
    with database(app).session() as session:
        return audit.head(session)[0]


def test_crafted_user_creation_by_a_viewer_creates_nobody(sec_app: Dash) -> None:
    """The most valuable target, with a complete, valid form: refused before it runs."""
    body = callback_body(
        sec_app,
        "admin-user-message.children",
        {
            "admin-create-user.n_clicks": 1,
            "admin-new-username.value": "mallory",
            "admin-new-role.value": "admin",
            "admin-new-password.value": "mallory-pass-123",
        },
        trigger="admin-create-user.n_clicks",
    )
    viewer = user_client(sec_app, "vic", "viewer")
    assert viewer.post("/_dash-update-component", json=body).status_code == 403
    with database(sec_app).session() as session:
        assert session.query(User).filter_by(username="mallory").first() is None
    # The same body from an admin does create the user: the refusal was about the role.
    admin = user_client(sec_app, "root2", "admin")
    assert admin.post("/_dash-update-component", json=body).status_code == 200
    with database(sec_app).session() as session:
        assert session.query(User).filter_by(username="mallory").one().role == "admin"
    assert output_of(sec_app, "admin-user-message.children")
