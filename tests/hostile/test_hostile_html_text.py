"""HTML in names and notes is shown as text: in Dash layouts and in server-rendered pages.

Dash renders string children as text nodes (React escapes them); the risks are components
that render raw HTML (dcc.Markdown with dangerously_allow_html, grids with
dangerously_allow_code, html.Iframe srcDoc) and pages Beacon renders itself (sign-in,
error pages), which must escape what they echo.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dash
import pandas as pd
from dash import Dash, dcc
from flask.testing import FlaskClient
from hostile_support import (
    HOSTILE_HTML,
    HOSTILE_SCRIPT,
    acting_as,
    components,
    run_callback,
    strings,
)
from sqlalchemy import select

from services import audit, auth
from services.automation.use_cases import ensure_use_cases
from services.db import Database
from services.db.models import Element, UseCase, utcnow
from services.decisions import recommend
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.seed import register_topology

REPO = Path(__file__).resolve().parents[2]
CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
RAW_HTML_PROPS = ("dangerously_allow_html", "dangerously_allow_code")


def _no_raw_html_components(tree: Any) -> None:
    """No component in the tree may render markup from data."""
    for component in components(tree):
        for prop in RAW_HTML_PROPS:
            assert not getattr(component, prop, False), f"{type(component).__name__}.{prop}"
        assert not getattr(component, "srcDoc", None), type(component).__name__
        if isinstance(component, dcc.Markdown):
            text = "".join(strings(component.children))
            assert "<img" not in text, text[:200]
            assert "<script" not in text, text[:200]


def _shows_as_text(tree: Any, value: str) -> None:
    """`value` is in the tree as a plain text child (React escapes it), never as markup."""
    texts = list(strings(tree))
    assert any(value in text for text in texts), f"{value!r} is not shown"
    _no_raw_html_components(tree)


def _token(db: Database, role: str = "admin") -> dict[str, str]:
    with db.session(write=True) as session:
        issued = auth.create_api_token(session, name=f"html-{role}", role=role, actor=audit.SYSTEM)
    return {"Authorization": f"Bearer {issued.plaintext}"}


def test_no_source_renders_raw_html() -> None:
    """Nothing in pages/ or components/ turns raw HTML on, anywhere."""
    pattern = re.compile(r"dangerously_allow_(html|code)\s*=\s*True|DangerouslySetInnerHTML|srcDoc")
    offenders = [
        f"{path.relative_to(REPO)}"
        for folder in ("pages", "components")
        for path in sorted((REPO / folder).rglob("*.py"))
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_incident_title_and_note_show_as_text(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = _token(db)
    created = client.post(
        "/api/v1/incidents",
        json={"title": HOSTILE_HTML, "severity": "sev3", "summary": HOSTILE_SCRIPT},
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    incident_id = created.get_json()["id"]
    noted = client.post(
        f"/api/v1/incidents/{incident_id}/notes", json={"text": HOSTILE_SCRIPT}, headers=headers
    )
    assert noted.status_code in (200, 201), noted.get_data(as_text=True)
    from pages import incident_detail, incidents

    with acting_as(app, db, "engineer"):
        detail = incident_detail.layout(incident_id=str(incident_id))
        _shows_as_text(detail, HOSTILE_HTML)
        _shows_as_text(detail, HOSTILE_SCRIPT)
        _no_raw_html_components(incidents.layout())


def test_user_display_name_shows_as_text(app: Dash, db: Database) -> None:
    from pages import _shell

    with acting_as(app, db, "viewer", display_name=HOSTILE_HTML) as principal:
        assert principal.display_name == HOSTILE_HTML
        _shows_as_text(_shell.serve_layout(), HOSTILE_HTML)


def _hostile_element(db: Database) -> Element:
    simulator = NetworkSimulator(
        SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
    )
    with db.session(write=True) as session:
        register_topology(session, simulator.topology)
        element = session.scalars(select(Element).where(Element.dn == CELL)).one()
        assert element is not None
        element.name = HOSTILE_HTML
        session.flush()
        session.expunge(element)
    return element


def test_element_name_and_decision_note_show_as_text(app: Dash, db: Database) -> None:
    element = _hostile_element(db)
    now = utcnow()
    with db.session(write=True) as session:
        ensure_use_cases(session, now=now)
        case = session.scalars(select(UseCase).where(UseCase.key == "capacity_carrier_add")).one()
        rec = recommend.create_recommendation(
            session,
            case=case,
            element=session.get(Element, element.id),
            now=now,
            simulated=False,
            confidence=0.9,
            severity="minor",
            rationale=f"prb_util_dl on {HOSTILE_HTML} is forecast to cross 85.",
            explanation={"source": {"kind": "forecast", "id": 1}, "kpi": "prb_util_dl"},
            context={"kpi": "prb_util_dl", "breach_date": None},
        )
        rec_id = rec.id
    client: FlaskClient = app.server.test_client()
    decided = client.post(
        f"/api/v1/recommendations/{rec_id}/decision",
        json={"verdict": "reject", "reason_code": "other", "note": HOSTILE_SCRIPT},
        headers=_token(db),
    )
    assert decided.status_code in (200, 201), decided.get_data(as_text=True)
    from pages import recommendations

    with acting_as(app, db, "engineer"):
        _no_raw_html_components(recommendations.layout(id=str(rec_id)))
        detail = run_callback(recommendations.show_detail, rec_id, None)
        _shows_as_text(detail, HOSTILE_HTML)  # the element, in the rationale
        _shows_as_text(detail, HOSTILE_SCRIPT)  # the decision note
        rows, *_rest = run_callback(recommendations.load_grid, "all", None, None, None)
        assert any(HOSTILE_HTML in str(row) for row in rows)
        for registered in dash.page_registry.values():
            if registered["module"].endswith(("overview", "anomalies", "forecasts")):
                _no_raw_html_components(registered["layout"]())


def test_markdown_grid_cells_escape_element_names() -> None:
    """The forecast grid links an element by markdown; its name can only be link text."""
    from components.forecast import _md

    escaped = _md(HOSTILE_HTML + "](javascript:alert(1))")
    assert "<" not in escaped.replace("\\<", "")
    assert "](" not in escaped.replace("\\]\\(", "")


def test_login_page_escapes_what_it_echoes(client: FlaskClient) -> None:
    answer = client.post(
        "/login?next=/x%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        data={"username": HOSTILE_HTML, "password": "wrong-password-1"},
        headers={"Origin": "http://localhost"},
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code in (200, 400, 401)
    assert HOSTILE_HTML not in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    page = client.get("/login?next=%3Cscript%3Ealert(1)%3C/script%3E").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


def test_error_pages_never_echo_markup(client: FlaskClient) -> None:
    for path in (
        "/kiosk/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/api/v1/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/eventListener/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    ):
        answer = client.get(path)
        assert answer.status_code < 500, path
        assert HOSTILE_HTML not in answer.get_data(as_text=True), path
