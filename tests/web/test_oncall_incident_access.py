"""On-call and incident pages by role: who may open them, and who may change anything."""

from __future__ import annotations

from collections.abc import Callable

from dash import Dash
from flask.testing import FlaskClient
from testkit import ROLES, callback_request, well_formed_request

from services import audit, auth
from services.auth import ENGINEER_ROLES, OPERATE_ROLES
from services.db import Database
from services.db.models import Incident
from services.incidents import lifecycle


def _policies(app: Dash) -> dict:
    return app.server.extensions["beacon"].callbacks


def test_pages_open_for_every_signed_in_role(client_as: Callable[[str], FlaskClient]) -> None:
    for role in ROLES:
        client = client_as(role)
        for path in ("/oncall", "/incidents", "/incidents/1", "/incidents/nope"):
            assert client.get(path).status_code == 200, (role, path)


def test_changes_are_declared_mutations_for_the_right_roles(app: Dash) -> None:
    policies = _policies(app)
    expected = {
        "oncall-message.children": ENGINEER_ROLES,
        "incidents-new-message.children": OPERATE_ROLES,
        "incident-message.children": OPERATE_ROLES,
    }
    for needle, roles in expected.items():
        outputs = [o for o in policies if needle in o]
        assert outputs, needle
        for output in outputs:
            assert policies[output].mutates, output
            assert policies[output].roles == roles, output
            assert not policies[output].kiosk, output
    tile = next(o for o in policies if "overview-wall-oncall.children" in o)
    assert policies[tile].kiosk
    assert not policies[tile].mutates


def test_crafted_acknowledge_from_a_viewer_is_refused_and_audited(
    app: Dash, db: Database, client_as: Callable[[str], FlaskClient]
) -> None:
    with db.session(write=True) as session:
        number = lifecycle.create_manual(
            session, title="Crafted", severity="sev3", actor=audit.SYSTEM
        ).id
    output = next(o for o in _policies(app) if "incident-message.children" in o and "@" not in o)
    body = well_formed_request(output, app.callback_map[output])
    body["inputs"][0]["value"] = 1  # the Acknowledge button
    body["changedPropIds"] = ["incident-ack.n_clicks"]
    body["state"][0]["value"] = number
    for role in ("viewer", "executive"):
        response = client_as(role).post("/_dash-update-component", json=body)
        assert response.status_code == 403, role
    with db.session() as session:
        assert session.get(Incident, number).status == "triggered"
        assert audit.search(session, action="access.denied")
    ok = client_as("operator").post("/_dash-update-component", json=body)
    assert ok.status_code == 200, ok.data[:300]
    with db.session() as session:
        assert session.get(Incident, number).status == "acknowledged"


def test_kiosk_sees_the_wall_tile_but_not_the_pages(app: Dash, db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="wall-oncall", actor=audit.SYSTEM)
    client = app.server.test_client()
    client.get(f"/kiosk/{issued.plaintext}")
    tile = next(o for o in _policies(app) if "overview-wall-oncall.children" in o)
    assert client.post(
        "/_dash-update-component", json=well_formed_request(tile, app.callback_map[tile])
    ).status_code in (200, 204)
    change = next(o for o in _policies(app) if "oncall-message.children" in o)
    refused = client.post("/_dash-update-component", json=callback_request(change))
    assert refused.status_code == 403
