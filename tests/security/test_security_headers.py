"""Security headers on every kind of response: pages, API JSON, callbacks, errors and assets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dash import Dash
from flask.testing import FlaskClient
from security_support import FOREIGN, app_on_copy, database, output_of, user_client

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@pytest.fixture(scope="module")
def headers_app(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    dash_app = app_on_copy(
        template_db, tmp_path_factory.mktemp("headers"), BEACON_LOGIN_RATE_LIMIT="2 per minute"
    )
    yield dash_app
    database(dash_app).dispose()


@pytest.fixture(scope="module")
def admin(headers_app: Dash) -> FlaskClient:
    return user_client(headers_app, "headers-admin", "admin")


def _asset_paths(client: FlaskClient) -> list[str]:
    """A stylesheet, a script from /assets and a component-suite bundle named by the page."""
    page = client.get("/").get_data(as_text=True)
    suite = next(p for p in page.split('"') if p.startswith("/_dash-component-suites/"))
    return ["/assets/beacon.css", "/assets/wall.js", "/assets/favicon.ico", suite]


def _responses(app: Dash, admin: FlaskClient) -> dict[str, object]:
    anonymous = app.server.test_client()
    viewer = user_client(app, "headers-viewer", "viewer")
    cases: dict[str, object] = {
        "login page": anonymous.get("/login"),
        "console page": admin.get("/"),
        "unknown page (shell)": admin.get("/no-such-page"),
        "page refused (403 html)": viewer.get("/admin"),
        "redirect to sign in": anonymous.get("/audit"),
        "dash layout": admin.get("/_dash-layout"),
        "callback 401": anonymous.post("/_dash-update-component", json={}),
        "callback 400": admin.post(
            "/_dash-update-component",
            json={"output": output_of(app, "overview-tiles"), "outputs": {}},
        ),
        "callback 404": admin.post("/_dash-update-component", json={"output": "x"}),
        "callback 403 cross-site": admin.post(
            "/_dash-update-component", json={}, headers={"Origin": FOREIGN}
        ),
        "api json": admin.get("/api/v1/me"),
        "api 401": anonymous.get("/api/v1/me"),
        "api 404": admin.get("/api/v1/no-such-thing"),
        "api 405": admin.delete("/api/v1/me"),
        "ves 401": anonymous.post("/eventListener/v7", json={}),
        "health": anonymous.get("/healthz"),
        "component file 404": anonymous.get("/_dash-component-suites/nope/nope.js"),
        "asset 404": anonymous.get("/assets/nope.css"),
        "kiosk link refused": anonymous.get("/kiosk/bkn_k_wrong"),
        "sign-in 401": anonymous.post("/login", data={"username": "x", "password": "y"}),
    }
    anonymous.post("/login", data={"username": "x", "password": "y"})
    cases["sign-in 429"] = anonymous.post("/login", data={"username": "x", "password": "y"})
    for path in _asset_paths(admin):
        cases[f"asset {path.rsplit('/', 1)[-1]}"] = anonymous.get(path)
    return cases


def test_every_response_type_carries_the_headers(headers_app: Dash, admin: FlaskClient) -> None:
    responses = _responses(headers_app, admin)
    statuses = {name: r.status_code for name, r in responses.items()}  # type: ignore[attr-defined]
    assert statuses["sign-in 429"] == 429
    assert statuses["component file 404"] == 404  # not a 500 for an unknown library
    assert {200, 303, 400, 401, 403, 404, 405, 429} <= set(statuses.values())
    for name, response in responses.items():
        headers = response.headers  # type: ignore[attr-defined]
        for header, value in ALWAYS.items():
            assert headers.get(header) == value, f"{name}: {header}={headers.get(header)}"
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, name
        if response.mimetype == "text/html":  # type: ignore[attr-defined]
            _assert_page_policy(csp, name)
        else:
            assert csp.startswith("default-src 'none'"), f"{name}: {csp}"


def _assert_page_policy(csp: str, name: str) -> None:
    directives = dict(
        [*part.split(" ", 1), ""][:2] for part in (p.strip() for p in csp.split(";")) if part
    )
    assert directives["default-src"] == "'self'", name
    script = directives["script-src"].split()
    assert "'unsafe-inline'" not in script, f"{name}: inline scripts must be allowed by hash"
    assert "'unsafe-eval'" not in script, name
    assert script[0] == "'self'", name
    assert all(s.startswith("'sha256-") for s in script[1:]), name
    assert directives["object-src"] == "'none'", name
    assert directives["base-uri"] == "'self'", name
    assert directives["form-action"] == "'self'", name


def test_page_policy_allows_exactly_dash_inline_scripts(
    headers_app: Dash, admin: FlaskClient
) -> None:
    """The hashes are Dash's own (renderer and clientside callbacks), nothing else."""
    csp = admin.get("/").headers["Content-Security-Policy"]
    listed = {s.rstrip(";") for s in csp.split() if s.startswith("'sha256-")}
    assert listed == set(headers_app.csp_hashes())
    assert len(listed) >= 2  # the renderer and at least one clientside callback


def test_api_and_callbacks_are_never_cached(admin: FlaskClient) -> None:
    assert admin.get("/api/v1/me").headers["Cache-Control"] == "no-store"
    response = admin.post("/_dash-update-component", json={"output": "x"})
    assert response.headers["Cache-Control"] == "no-store"
