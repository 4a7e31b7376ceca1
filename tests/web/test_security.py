"""Every route and every Dash callback, called without a session and with each role."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import select
from testkit import ROLES, add_user, callback_request, sign_in, well_formed_request

from services import audit, auth
from services.db import Database
from services.db.models import AuditEvent

PUBLIC_PATHS = {"/login", "/healthz", "/readyz"}
# Routes whose rule has variables or that only serve static files, checked separately.
SKIP_RULE_PREFIXES = ("/assets/", "/_dash-component-suites/", "/kiosk/", "/static/")


def _get_routes(app: Dash) -> list[str]:
    rules = []
    for rule in app.server.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments:
            continue
        if rule.rule.startswith(SKIP_RULE_PREFIXES) or rule.rule.startswith("/api/"):
            continue
        rules.append(rule.rule)
    return sorted(set(rules))


def _page_paths(app: Dash) -> dict[str, frozenset[str]]:
    context = app.server.extensions["beacon"]
    return {p.path: p.roles for p in context.pages if p.path_template is None}


def test_every_get_route_refuses_anonymous(app: Dash, client: FlaskClient) -> None:
    for path in [*_get_routes(app), *_page_paths(app)]:
        response = client.get(path)
        if path in PUBLIC_PATHS or path in {"/favicon.ico", "/_favicon.ico"}:
            assert response.status_code in (200, 503), path
            continue
        assert response.status_code in (303, 401), f"{path} answered {response.status_code}"
        if response.status_code == 303:
            assert response.headers["Location"].startswith("/login?next=")


def test_dash_internals_refuse_anonymous(client: FlaskClient) -> None:
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    body = callback_request("..overview-tiles.children..")
    assert client.post("/_dash-update-component", json=body).status_code == 401


def test_every_callback_refuses_anonymous(app: Dash, client: FlaskClient) -> None:
    outputs = list(app.server.extensions["beacon"].callbacks)
    assert len(outputs) >= 10
    for output in outputs:
        response = client.post("/_dash-update-component", json=callback_request(output))
        assert response.status_code == 401, output


def test_each_app_gets_the_shell_callbacks(app: Dash, settings) -> None:  # type: ignore[no-untyped-def]
    """A second app in the same process has its own shell callbacks (clock, theme, data)."""
    from app import create_app

    second = create_app(settings)
    for dash_app in (app, second):
        outputs = set(dash_app.callback_map)
        assert "shell.className" in outputs
        assert "shell-clock.children" in outputs
        assert any(
            "shell-freshness.children" in o for o in dash_app.server.extensions["beacon"].callbacks
        )
    second.server.extensions["beacon"].db.dispose()


def test_every_callback_has_a_declared_policy(app: Dash) -> None:
    policies = app.server.extensions["beacon"].callbacks
    for output, spec in app.callback_map.items():
        if "callback" not in spec or "_pages_content" in output:
            continue  # clientside callbacks never run on the server; the router is Dash's
        assert output in policies, f"callback {output} has no access policy"
        assert policies[output].roles, output


@pytest.mark.parametrize("role", ROLES)
def test_callback_matrix_by_role(
    app: Dash, client_as: Callable[[str], FlaskClient], role: str
) -> None:
    """Each role runs exactly the callbacks whose policy names it; the rest get 403."""
    client = client_as(role)
    policies = app.server.extensions["beacon"].callbacks
    for output, policy in policies.items():
        body = well_formed_request(output, app.callback_map[output])
        response = client.post("/_dash-update-component", json=body)
        if role in policy.roles:
            # Every callback copes with empty inputs (what a page sends before any click).
            assert response.status_code in (200, 204), f"{role} {output}: {response.data[:200]}"
        else:
            assert response.status_code == 403, f"{role} reached {output}"
            assert response.get_json()["error"]["code"] == "forbidden"


def test_malformed_callback_requests_get_400(
    app: Dash, client_as: Callable[[str], FlaskClient]
) -> None:
    client = client_as("admin")
    output = next(o for o in app.server.extensions["beacon"].callbacks if "overview-tiles" in o)
    good = well_formed_request(output, app.callback_map[output])
    broken = [
        {**good, "outputs": {}},
        {**good, "inputs": []},
        {**good, "state": "x"},
        {"outputs": []},
    ]
    for body in broken:
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "bad_callback"
    unknown = client.post("/_dash-update-component", json=callback_request("nope.children"))
    assert unknown.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_page_matrix_by_role(app: Dash, client_as: Callable[[str], FlaskClient], role: str) -> None:
    client = client_as(role)
    for path, roles in _page_paths(app).items():
        status = client.get(path).status_code
        assert status == (200 if role in roles else 403), f"{role} GET {path} -> {status}"


def test_navigation_lists_only_allowed_pages(client_as: Callable[[str], FlaskClient]) -> None:
    viewer_layout = json.dumps(client_as("viewer").get("/_dash-layout").get_json())
    admin_layout = json.dumps(client_as("admin").get("/_dash-layout").get_json())
    assert "nav-overview" in viewer_layout
    assert "nav-admin" not in viewer_layout
    assert "nav-audit" not in viewer_layout
    assert "nav-admin" in admin_layout
    assert "nav-audit" in admin_layout


def test_viewer_cannot_create_user_by_crafting_the_callback(
    app: Dash, db: Database, client_as: Callable[[str], FlaskClient]
) -> None:
    output = next(o for o in app.server.extensions["beacon"].callbacks if "admin-user-message" in o)
    body = callback_request(
        output,
        inputs=[{"id": "admin-create-user", "property": "n_clicks", "value": 1}],
    )
    body["state"] = [
        {"id": "admin-new-username", "property": "value", "value": "mallory"},
        {"id": "admin-new-role", "property": "value", "value": "admin"},
        {"id": "admin-new-password", "property": "value", "value": "mallory-pass-123"},
    ]
    response = client_as("viewer").post("/_dash-update-component", json=body)
    assert response.status_code == 403
    with db.session() as session:
        assert (
            session.scalar(
                select(AuditEvent)
                .where(AuditEvent.action == "user.create")
                .where(AuditEvent.after["username"].as_string() == "mallory")
            )
            is None
        )
        denied = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "access.denied")
        ).all()
        assert denied
        assert denied[-1].actor_role == "viewer"
        assert [u.username for u in auth.list_users(session)].count("mallory") == 0


def test_callback_check_also_runs_inside_the_function(app: Dash) -> None:
    """Reaching the callback function some other way still hits the role check."""
    from services.errors import Unauthorized

    spec = next(s for o, s in app.callback_map.items() if "admin-user-message" in o)
    with app.server.test_request_context(), pytest.raises(Unauthorized):
        spec["callback"].__wrapped__(1, None, None, None, "x", "", "viewer", "p", None, None, None)


def test_anomaly_pages_and_their_actions_by_role(
    app: Dash, db: Database, client_as: Callable[[str], FlaskClient]
) -> None:
    """Feed and episode pages open for every signed-in role; acting needs operator or more."""
    from services.auth import ENGINEER_ROLES, OPERATE_ROLES

    for role in ROLES:
        client = client_as(role)
        for path in ("/anomalies", "/anomalies/1", "/anomalies/not-a-number"):
            assert client.get(path).status_code == 200, (role, path)
    policies = app.server.extensions["beacon"].callbacks
    acting = [o for o in policies if "anomaly-episode-message" in o or "anomalies-ack-done" in o]
    thresholds = [o for o in policies if "anomalies-threshold-done" in o]
    assert len(acting) == 2
    assert len(thresholds) == 1
    for output in [*acting, *thresholds]:
        assert policies[output].mutates
        assert policies[output].roles == (OPERATE_ROLES if output in acting else ENGINEER_ROLES)
    ack = next(o for o in acting if "anomalies-ack-done" in o)
    body = callback_request(
        ack, inputs=[{"id": "anomalies-ack-confirm", "property": "submit_n_clicks", "value": 1}]
    )
    body["state"] = [{"id": "anomalies-grid", "property": "selectedRows", "value": [{"id": "1"}]}]
    assert client_as("viewer").post("/_dash-update-component", json=body).status_code == 403
    with db.session() as session:
        assert not audit.search(session, action="anomaly.acknowledge")
        assert audit.search(session, action="access.denied")[0].actor_role == "viewer"


def test_detector_page_by_role(app: Dash, client_as: Callable[[str], FlaskClient]) -> None:
    """The AI system owner's review page: engineers and admins, executives read; never writes."""
    allowed = {"engineer", "admin", "executive"}
    for role in ROLES:
        status = client_as(role).get("/detector").status_code
        assert status == (200 if role in allowed else 403), (role, status)
    policies = app.server.extensions["beacon"].callbacks
    detector = [o for o in policies if "detector-" in o]
    assert len(detector) == 4
    for output in detector:
        assert set(policies[output].roles) == allowed, output
        assert not policies[output].mutates
        assert not policies[output].kiosk


def test_cross_origin_post_is_refused(client_as: Callable[[str], FlaskClient]) -> None:
    client = client_as("admin")
    body = callback_request("..overview-tiles.children..")
    refused = client.post(
        "/_dash-update-component", json=body, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "cross_origin"
    logout = client.post("/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert logout.status_code == 403


def test_login_sets_hardened_cookie_and_fresh_session(app: Dash, db: Database) -> None:
    add_user(db, "olive", "operator")
    client = app.server.test_client()
    response = client.post("/login", data={"username": "olive", "password": "user-pass-12345"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # only when BEACON_SECURE_COOKIES is on


def test_wrong_password_is_refused_and_audited(client: FlaskClient, db: Database) -> None:
    response = client.post("/login", data={"username": "admin", "password": "nope-nope-nope"})
    assert response.status_code == 401
    assert b"Wrong username or password" in response.data
    with db.session() as session:
        events = audit.search(session, action="auth.login_failed")
    assert events
    assert events[0].after == {"reason": "bad password"}


def test_login_is_rate_limited(tmp_path, template_db) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from testkit import settings_for

    from app import create_app

    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    strict = create_app(settings_for(tmp_path, BEACON_LOGIN_RATE_LIMIT="3 per minute"))
    client = strict.server.test_client()
    statuses = [
        client.post("/login", data={"username": "admin", "password": "wrong-wrong-1"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # Even the right password waits out the limit: guessing cannot continue.
    right = client.post("/login", data={"username": "admin", "password": "admin-pass-123"})
    assert right.status_code == 429


def test_next_parameter_cannot_redirect_off_site(client: FlaskClient) -> None:
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        response = client.post(
            "/login",
            data={"username": "admin", "password": "admin-pass-123", "next": target},
        )
        assert response.status_code == 303
        assert response.headers["Location"] == "/", target


def test_role_change_ends_existing_sessions(app: Dash, db: Database) -> None:
    add_user(db, "erin", "engineer")
    client = app.server.test_client()
    sign_in(client, "erin")
    assert client.get("/audit").status_code == 200
    with db.session(write=True) as session:
        auth.set_role(session, username="erin", role="viewer", actor=audit.SYSTEM)
    assert client.get("/audit").status_code == 303  # signed out, back to the login page


def test_disabled_user_cannot_sign_in(app: Dash, db: Database) -> None:
    add_user(db, "dora", "viewer")
    with db.session(write=True) as session:
        auth.set_active(session, username="dora", active=False, actor=audit.SYSTEM)
    response = app.server.test_client().post(
        "/login", data={"username": "dora", "password": "user-pass-12345"}
    )
    assert response.status_code == 401


def test_kiosk_token_opens_read_only_wall_session(app: Dash, db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="wall-1", actor=audit.SYSTEM)
    client = app.server.test_client()
    entry = client.get(f"/kiosk/{issued.plaintext}")
    assert entry.status_code == 303
    assert entry.headers["Location"] == "/?kiosk=1"
    assert client.get("/").status_code == 200
    assert client.get("/admin").status_code == 403
    assert client.get("/audit").status_code == 403
    assert client.get("/anomalies").status_code == 403
    assert client.get("/anomalies/1").status_code == 403
    assert client.get("/detector").status_code == 403
    policies = app.server.extensions["beacon"].callbacks
    for output, policy in policies.items():
        status = client.post("/_dash-update-component", json=callback_request(output)).status_code
        if policy.mutates or not policy.kiosk:
            assert status == 403, output
    with db.session(write=True) as session:
        auth.revoke_token(session, kind="kiosk", token_id=issued.id, actor=audit.SYSTEM)
    assert client.get("/").status_code == 303  # revocation ends the session at once


def test_kiosk_session_refreshes_the_wall(app: Dash, db: Database) -> None:
    """The wall's refresh callbacks serve a kiosk; its policy stays read-only."""
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="wall-2", actor=audit.SYSTEM)
    client = app.server.test_client()
    client.get(f"/kiosk/{issued.plaintext}")
    policies = app.server.extensions["beacon"].callbacks
    wall = next(o for o in policies if "overview-wall-feed.children" in o)
    assert policies[wall].kiosk
    assert not policies[wall].mutates
    body = well_formed_request(wall, app.callback_map[wall])
    assert client.post("/_dash-update-component", json=body).status_code == 200


def test_invalid_kiosk_token_is_refused(client: FlaskClient) -> None:
    assert client.get("/kiosk/bkn_k_not-a-real-token").status_code == 403
    assert client.get("/").status_code == 303


def test_api_token_cannot_open_the_console(app: Dash, db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_api_token(session, name="svc", role="admin", actor=audit.SYSTEM)
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {issued.plaintext}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    # Bearer tokens are for /api only: the console answers as if no one signed in.
    assert client.get("/_dash-layout", headers=headers).status_code == 401


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for path in ("/login", "/healthz", "/"):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"


def test_page_router_refuses_a_location_no_browser_sends(
    app: Dash, client_as: Callable[[str], FlaskClient]
) -> None:
    client = client_as("viewer")
    client.get("/")  # Dash adds its page router's callback on the first request
    output = next(o for o in app.callback_map if "_pages_content" in o)
    good = well_formed_request(output, app.callback_map[output])
    for bad in (None, 7, ["/"]):
        inputs = [
            {**item, "value": bad} if item.get("property") == "pathname" else item
            for item in good["inputs"]
        ]
        response = client.post("/_dash-update-component", json={**good, "inputs": inputs})
        assert response.status_code == 400, bad
        assert "text pathname" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("proxies", "expected"), [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_client_address_behind_a_trusted_proxy(
    tmp_path, template_db, proxies: int, expected: str
) -> None:  # type: ignore[no-untyped-def]
    """X-Forwarded-For is believed only with BEACON_TRUSTED_PROXIES (then limits and the
    audit trail see the real client, not the proxy); otherwise it is ignored."""
    import shutil

    from testkit import settings_for

    from app import create_app

    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    app = create_app(
        settings_for(
            tmp_path, BEACON_TRUSTED_PROXIES=str(proxies), BEACON_LOGIN_RATE_LIMIT="2 per minute"
        )
    )
    client = app.server.test_client()

    def attempt(address: str) -> int:
        return client.post(
            "/login",
            data={"username": f"nobody-{address}", "password": "wrong-wrong-1"},
            headers={"X-Forwarded-For": address},
        ).status_code

    assert [attempt("203.0.113.9"), attempt("203.0.113.9")] == [401, 401]
    # A different client behind the same proxy is only held back when the proxy is not trusted.
    assert attempt("198.51.100.4") == (429 if proxies == 0 else 401)
    with app.server.extensions["beacon"].db.session() as session:
        first = audit.search(session, action="auth.login_failed")[-1]
    assert first.ip == expected
