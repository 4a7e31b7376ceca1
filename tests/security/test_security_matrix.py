"""The full access matrix: every Flask route and every Dash callback, called as every principal.

Principals: no session, a wall-screen (kiosk) session and a signed-in user of each role.
Expectations come from the tables below, written independently of the code's own policy
objects, so a change of access shows up as a failing test; a route, page or API endpoint
missing from the tables fails too.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dash import Dash, Input, Output, html
from flask import Flask
from flask.testing import FlaskClient
from testkit import ROLES, add_user, settings_for, sign_in, well_formed_request
from werkzeug.routing import Rule

from app import create_app
from pages._access import AccessPolicyMissing, _callback_policies
from services import audit, auth
from services.auth import ROLE_SCOPES
from services.db import Database

ALL = frozenset(ROLES)
OPERATE = frozenset({"operator", "engineer", "admin"})
ENGINEER = frozenset({"engineer", "admin"})
ADMIN = frozenset({"admin"})
READERS = frozenset({"engineer", "admin", "executive"})
PRINCIPALS = ("anonymous", "kiosk", *ROLES)
# An id no row has: allowed calls reach the view and answer 404, so nothing changes.
MISSING_ID = "999999"

# Every route that is not the REST API, by endpoint: who may use it.
PUBLIC, SIGNED_IN, STRUCTURE, PAGES, CALLBACKS = "public", "signed-in", "structure", "pages", "cb"
WEB_ROUTES = {
    "beacon_web.login_form": PUBLIC,
    "login_submit": PUBLIC,
    "beacon_web.healthz": PUBLIC,
    "beacon_web.readyz": PUBLIC,
    "beacon_web.kiosk_entry": PUBLIC,
    "/_favicon.ico": PUBLIC,
    "_dash_assets.static": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,
    "beacon_web.logout": SIGNED_IN,
    "static": SIGNED_IN,
    "/_dash-layout": STRUCTURE,
    "/_dash-dependencies": STRUCTURE,
    "/_reload-hash": STRUCTURE,
    "/": PAGES,
    "/<path:path>": PAGES,
    "/_dash-update-component": CALLBACKS,
    # The API's and the VES listener's own 404/405 answers: any credential, no data.
    "api_v1.unknown_path": "api-fallback",
    "ves.elsewhere": "api-fallback",
    "ves.event": "ves",
    "ves.event_batch": "ves",
}
# Every page, by a concrete path: (roles, shown on wall screens).
PAGE_ACCESS: dict[str, tuple[frozenset[str], bool]] = {
    "/": (ALL, True),
    "/404": (ALL, True),
    "/anomalies": (ALL, False),
    "/anomalies/1": (ALL, False),
    "/forecasts": (ALL, False),
    "/forecasts/1/dl_prb_util": (ALL, False),
    "/detector": (READERS, False),
    "/recommendations": (ALL, False),
    "/use-cases": (ALL, False),
    "/data-health": (ENGINEER, False),
    "/oncall": (ALL, False),
    "/incidents": (ALL, False),
    "/incidents/1": (ALL, False),
    "/disagreements": (ALL, False),
    "/adoption": (ALL, False),
    "/audit": (ENGINEER, False),
    "/admin": (ADMIN, False),
}
# Every REST endpoint: the scope it needs and the roles it is open to.
API_ACCESS: dict[str, tuple[str, frozenset[str]]] = {
    "api_v1.get_adoption": ("read", ALL),
    "api_v1.list_alarms": ("read", ALL),
    "api_v1.get_alarm": ("read", ALL),
    "api_v1.receive_alertmanager": ("ingest", ALL),
    "api_v1.receive_tmf642": ("ingest", ALL),
    "api_v1.list_anomalies": ("read", ALL),
    "api_v1.get_anomaly": ("read", ALL),
    "api_v1.post_feedback": ("act", OPERATE),
    "api_v1.list_audit_events": ("read", ENGINEER),
    "api_v1.verify_audit_chain": ("read", ENGINEER),
    "api_v1.get_change_windows": ("read", ALL),
    "api_v1.post_change_windows": ("act", ENGINEER),
    "api_v1.delete_change_window": ("act", ENGINEER),
    "api_v1.list_disagreements": ("read", ALL),
    "api_v1.get_disagreement": ("read", ALL),
    "api_v1.review_disagreement": ("act", ENGINEER),
    "api_v1.list_elements": ("read", ALL),
    "api_v1.list_forecasts": ("read", ALL),
    "api_v1.get_forecast": ("read", ALL),
    "api_v1.open_incident": ("act", OPERATE),
    "api_v1.get_incidents": ("read", ALL),
    "api_v1.get_incident": ("read", ALL),
    "api_v1.acknowledge_incident": ("act", OPERATE),
    "api_v1.add_incident_note": ("act", OPERATE),
    "api_v1.resolve_incident": ("act", OPERATE),
    "api_v1.list_kpis": ("read", ALL),
    "api_v1.get_maturity_changes": ("read", ALL),
    "api_v1.approve_maturity_change": ("admin", ADMIN),
    "api_v1.reject_maturity_change": ("admin", ADMIN),
    "api_v1.me": ("read", ALL),
    "api_v1.oncall_now": ("read", ALL),
    "api_v1.person_calendar": ("read", ALL),
    "api_v1.oncall_schedules": ("read", ALL),
    "api_v1.team_calendar": ("read", ALL),
    "api_v1.openapi_document": ("read", ALL),
    "api_v1.get_recommendations": ("read", ALL),
    "api_v1.get_recommendation": ("read", ALL),
    "api_v1.post_decision": ("act", OPERATE),
    "api_v1.post_execute": ("act", OPERATE),
    "api_v1.post_rollback": ("act", ENGINEER),
    "api_v1.list_sources": ("read", ALL),
    "api_v1.push_telemetry": ("ingest", ALL),
    "api_v1.list_tokens": ("admin", ADMIN),
    "api_v1.revoke_token": ("admin", ADMIN),
    "api_v1.create_api_token": ("admin", ADMIN),
    "api_v1.create_kiosk_token": ("admin", ADMIN),
    "api_v1.get_use_cases": ("read", ALL),
    "api_v1.get_use_case_detail": ("read", ALL),
    "api_v1.post_level": ("admin", ADMIN),
    "api_v1.list_users": ("admin", ADMIN),
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    endpoint: str


@pytest.fixture(scope="module")
def matrix_app(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """One app for the whole matrix (every call leaves state as it was, or is audited only)."""
    data_dir = tmp_path_factory.mktemp("matrix")
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, data_dir / name)
    dash_app = create_app(settings_for(data_dir))
    yield dash_app
    dash_app.server.extensions["beacon"].db.dispose()


@pytest.fixture(scope="module")
def clients(matrix_app: Dash) -> dict[str, FlaskClient]:
    """A client per principal: no session, a kiosk session, one signed-in user per role."""
    server = matrix_app.server
    db: Database = server.extensions["beacon"].db
    made = {"anonymous": server.test_client()}
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="matrix-wall", actor=audit.SYSTEM)
    kiosk = server.test_client()
    assert kiosk.get(f"/kiosk/{issued.plaintext}").status_code == 303
    made["kiosk"] = kiosk
    for role in ROLES:
        add_user(db, f"matrix-{role}", role)
        made[role] = server.test_client()
        sign_in(made[role], f"matrix-{role}")
    return made


def undeclared_routes(server: Flask) -> list[str]:
    """Endpoints no table above declares (API endpoints are declared in API_ACCESS)."""
    return sorted(
        {
            rule.endpoint
            for rule in server.url_map.iter_rules()
            if rule.endpoint not in WEB_ROUTES and rule.endpoint not in API_ACCESS
        }
    )


def test_every_route_has_a_declared_expectation(matrix_app: Dash) -> None:
    assert undeclared_routes(matrix_app.server) == []
    stale = (set(WEB_ROUTES) | set(API_ACCESS)) - set(matrix_app.server.view_functions)
    assert stale == set(), "the tables name endpoints that no longer exist"


def test_a_new_route_without_a_declaration_is_caught() -> None:
    server = Flask("probe")
    server.add_url_rule("/export.csv", "export_csv", lambda: "rows")
    assert "export_csv" in undeclared_routes(server)


def test_every_page_has_a_declared_expectation(matrix_app: Dash) -> None:
    pages = matrix_app.server.extensions["beacon"].pages
    declared = dict(PAGE_ACCESS)
    for page in pages:
        path = next((p for p in declared if page.matches(p)), None)
        assert path is not None, f"page {page.module} ({page.path}) is not in PAGE_ACCESS"
        assert (page.roles, page.kiosk) == declared.pop(path), page.module
    assert declared == {}, f"PAGE_ACCESS names pages that do not exist: {sorted(declared)}"


def test_api_policies_match_the_declared_table(matrix_app: Dash) -> None:
    from services.api.security import policy_of

    for endpoint, (scope, roles) in API_ACCESS.items():
        policy = policy_of(matrix_app.server.view_functions[endpoint])
        assert policy is not None, endpoint
        assert (policy.scope.value, set(policy.roles)) == (scope, set(roles)), endpoint


def test_a_callback_without_a_policy_stops_start_up() -> None:
    probe = Dash("probe")
    probe.layout = html.Div([html.Button(id="probe-button"), html.Div(id="probe-out")])

    @probe.callback(Output("probe-out", "children"), Input("probe-button", "n_clicks"))
    def unguarded(n_clicks: int | None) -> str:
        return str(n_clicks)

    with pytest.raises(AccessPolicyMissing, match=r"probe-out\.children"):
        _callback_policies(probe)


def _calls(server: Flask) -> list[Call]:
    """Every (method, concrete path) of every route except pages and callbacks (below)."""
    calls = []
    for rule in server.url_map.iter_rules():
        if WEB_ROUTES.get(rule.endpoint) in (PAGES, CALLBACKS):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            calls.append(Call(method, _concrete(rule), rule.endpoint))
    # Logging out ends the session: last.
    return sorted(calls, key=lambda c: c.endpoint == "beacon_web.logout")


def _concrete(rule: Rule) -> str:
    """The rule with every variable filled by a value that names nothing that exists."""

    def fill(match: re.Match[str]) -> str:
        converter, _, name = match.group(1).rpartition(":")
        if converter.startswith("int"):
            return MISSING_ID
        if converter.startswith("any"):
            return "api"
        if name == "token":
            return "bkn_k_not-a-real-token"
        if name == "rest":
            return "no/such/path"  # shorter paths would reach the real routes beside it
        return "v7" if name == "version" else "x"

    return re.sub(r"<([^>]+)>", fill, rule.rule)


def _api_allowed(endpoint: str, principal: str) -> bool:
    scope, roles = API_ACCESS[endpoint]
    if principal == "anonymous":
        return False
    if principal == "kiosk":
        return scope == "read" and "viewer" in roles
    return principal in roles and scope in ROLE_SCOPES[principal]


def _check_route(call: Call, principal: str, status: int, body: bytes, location: str) -> None:
    where = f"{principal} {call.method} {call.path} -> {status}"
    kind = WEB_ROUTES.get(call.endpoint)
    anonymous = principal == "anonymous"
    if call.endpoint in API_ACCESS:
        if anonymous:
            assert status == 401, where
        elif _api_allowed(call.endpoint, principal):
            assert status not in (401, 403), where
        else:
            assert status == 403, where
            assert b'"missing"' in body, where  # refused by the policy, naming what is missing
    elif kind == PUBLIC:
        assert status not in (405, 500), where
        assert status != 401 or call.endpoint == "login_submit", where
        if call.endpoint == "beacon_web.kiosk_entry":
            assert status == 403, where  # a made-up kiosk token opens nothing
        if call.endpoint == "login_submit":
            assert status == 401, where  # reached the form check: no credentials, no session
    elif kind == SIGNED_IN:
        if anonymous:
            assert status == 303, where
            assert location.startswith("/login?next="), where
        else:
            assert status not in (401, 403, 500), where
    elif kind == STRUCTURE:
        assert status == (401 if anonymous else 200), where
    elif kind == "api-fallback":
        assert status == (401 if anonymous else 404) or (not anonymous and status == 405), where
    elif kind == "ves":
        ingest = principal in ROLES and "ingest" in ROLE_SCOPES[principal]
        if anonymous:
            assert status == 401, where
        elif ingest:
            assert status not in (401, 403, 500), where
        else:
            assert status == 403, where
            assert b"POL1009" in body, where
    else:
        pytest.fail(f"no expectation for {call.endpoint}")


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_route_matrix(matrix_app: Dash, clients: dict[str, FlaskClient], principal: str) -> None:
    """Every route, every method, as this principal."""
    client = clients[principal]
    calls = _calls(matrix_app.server)
    assert len(calls) > 80
    for call in calls:
        if call.endpoint == "beacon_web.logout":
            continue  # checked last, in its own test: it ends the session
        body = {} if call.method in ("POST", "PUT", "PATCH") else None
        response = client.open(call.path, method=call.method, json=body)
        _check_route(
            call,
            principal,
            response.status_code,
            response.data,
            response.headers.get("Location", ""),
        )


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_page_matrix(clients: dict[str, FlaskClient], principal: str) -> None:
    """Every page (and an unknown path, which gets the shell's "not found") as this principal."""
    client = clients[principal]
    for path, (roles, kiosk) in {**PAGE_ACCESS, "/no-such-page": (ALL, True)}.items():
        status = client.get(path).status_code
        where = f"{principal} GET {path} -> {status}"
        if principal == "anonymous":
            assert status == 303, where
        elif principal == "kiosk":
            assert status == (200 if kiosk else 403), where
        else:
            assert status == (200 if principal in roles else 403), where


def _callback_allowed(principal: str, roles: frozenset[str], *, kiosk: bool, mutates: bool) -> bool:
    if principal == "anonymous":
        return False
    if principal == "kiosk":
        return kiosk and not mutates
    return principal in roles


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_callback_matrix(matrix_app: Dash, clients: dict[str, FlaskClient], principal: str) -> None:
    """Every registered server-side callback, including Dash's page router, as this principal."""
    client = clients[principal]
    policies = matrix_app.server.extensions["beacon"].callbacks
    server_side = {o: s for o, s in matrix_app.callback_map.items() if "callback" in s}
    assert len(server_side) > 60
    for output, spec in server_side.items():
        router = "_pages_content" in output
        policy = matrix_app.server.extensions["beacon"].callback_policy(output)
        assert policy is not None, f"callback {output} has no policy"
        assert router or output in policies
        body = well_formed_request(output, spec)
        if router:
            _browser_location(body)
        response = client.post("/_dash-update-component", json=body)
        status = response.status_code
        where = f"{principal} {policy.name} ({output[:60]}) -> {status}"
        if principal == "anonymous":
            assert status == 401, where
        elif _callback_allowed(principal, policy.roles, kiosk=policy.kiosk, mutates=policy.mutates):
            assert status in (200, 204), f"{where}: {response.data[:200]!r}"
        else:
            assert status == 403, where


def _browser_location(body: dict) -> None:
    """The router's inputs as a browser sends them (Dash's router fails on a None path)."""
    values = {"pathname": "/", "search": "", "hash": ""}
    for item in body["inputs"] + body["state"]:
        if item["property"] in values:
            item["value"] = values[item["property"]]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_logout_matrix(matrix_app: Dash, principal: str) -> None:
    """POST /logout: anonymous is sent to sign in; any session ends and is gone afterwards."""
    server = matrix_app.server
    db: Database = server.extensions["beacon"].db
    client = server.test_client()
    if principal == "kiosk":
        with db.session(write=True) as session:
            issued = auth.create_kiosk_token(session, name="logout-wall", actor=audit.SYSTEM)
        client.get(f"/kiosk/{issued.plaintext}")
    elif principal != "anonymous":
        username = f"logout-{principal}"
        add_user(db, username, principal)
        sign_in(client, username)
        assert client.get("/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 303
    expected = "/login?next=/logout" if principal == "anonymous" else "/login"
    assert response.headers["Location"] == expected
    assert client.get("/").status_code == 303
