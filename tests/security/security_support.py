"""Helpers for the security tests: apps on a copy of the template, principals, crafted bodies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dash import Dash
from flask.testing import FlaskClient
from testkit import add_user, settings_for, sign_in, well_formed_request

from app import create_app
from services import audit, auth
from services.db import Database

FOREIGN = "https://evil.example"


def app_on_copy(template_db: Path, data_dir: Path, **env: str) -> Dash:
    """A Beacon app on a copy of the migrated, seeded template database."""
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, data_dir / name)
    return create_app(settings_for(data_dir, **env))


def database(app: Dash) -> Database:
    return app.server.extensions["beacon"].db


def user_client(app: Dash, username: str, role: str) -> FlaskClient:
    """A client signed in through the login form as a new user with `role`."""
    add_user(database(app), username, role)
    client = app.server.test_client()
    sign_in(client, username)
    return client


def kiosk_client(app: Dash, name: str) -> FlaskClient:
    """A client holding a wall-screen session opened with a fresh kiosk link."""
    with database(app).session(write=True) as session:
        issued = auth.create_kiosk_token(session, name=name, actor=audit.SYSTEM)
    client = app.server.test_client()
    assert client.get(f"/kiosk/{issued.plaintext}").status_code == 303
    return client


def output_of(app: Dash, needle: str) -> str:
    """The one registered callback output containing `needle` (without a duplicate marker)."""
    found = [o for o in app.server.extensions["beacon"].callbacks if needle in o]
    plain = [o for o in found if "@" not in o] or found
    assert len(plain) == 1, (needle, found)
    return plain[0]


def callback_body(
    app: Dash, needle: str, values: dict[str, Any], trigger: str | None = None
) -> dict[str, Any]:
    """A well-formed callback request with some `id.property` values set, as a browser sends it."""
    output = output_of(app, needle)
    body = well_formed_request(output, app.callback_map[output])
    for item in body["inputs"] + body["state"]:
        key = f"{item['id']}.{item['property']}"
        if key in values:
            item["value"] = values[key]
    if trigger:
        body["changedPropIds"] = [trigger]
    return body


def audit_rows(app: Dash, action: str) -> list[Any]:
    """Events with this action, oldest first."""
    with database(app).session() as session:
        return list(reversed(audit.search(session, action=action)))


def seed_recommendations(db: Database) -> list[int]:
    """A small network with use cases, on-call and two live recommendations; their ids."""
    import pandas as pd
    from sqlalchemy import select

    from services.automation.use_cases import assign_owners, ensure_use_cases
    from services.db.models import Element, UseCase, utcnow
    from services.decisions import recommend
    from services.ingest.simulator import NetworkSimulator, SimConfig
    from services.oncall.demo import seed_demo_oncall
    from services.seed import ensure_simulator_sources, register_topology

    now = utcnow()
    simulator = NetworkSimulator(
        SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
    )
    ids = []
    with db.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, simulator.topology)
        ensure_use_cases(session, now=now)
        seed_demo_oncall(session, now=now)
        assign_owners(session)
        case = session.scalars(select(UseCase).where(UseCase.key == "capacity_carrier_add")).one()
        for element in session.scalars(select(Element).where(Element.dn.like("%EUtranCellFDD=C1"))):
            rec = recommend.create_recommendation(
                session,
                case=case,
                element=element,
                now=now,
                simulated=False,
                confidence=0.91,
                severity="minor",
                rationale=f"prb_util_dl on {element.name} is forecast to cross 85 within weeks.",
                explanation={"kpi": "prb_util_dl", "p_breach": {"90": 0.91}},
                context={"kpi": "prb_util_dl", "breach_date": None},
            )
            ids.append(rec.id)
    return ids
