"""On-call and incident endpoints: authentication, roles, kiosk, messages and happy paths."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from api_support import assert_error, beacon_settings, bearer
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select

from app import create_app
from services import audit, auth
from services.db import Database
from services.db.models import Incident, Notification, Person, Source, Team, utcnow
from services.oncall.demo import seed_demo_oncall

Headers = dict[str, str]


@pytest.fixture
def demo(db: Database) -> dict[str, int]:
    """The demo teams, with one ingest source so `ingest:<source>` is owned too."""
    with db.session(write=True) as session:
        session.add(Source(name="pm-north", kind="pm_xml", stale_after_s=2700))
        session.flush()
        seed_demo_oncall(session, now=utcnow())
        teams = {t.key: t.id for t in session.scalars(select(Team))}
        teams["person"] = session.scalars(
            select(Person.id).where(Person.name == "Anna Becker")
        ).one()
    return teams


def test_no_session_is_401(client: FlaskClient) -> None:
    for url in (
        "/api/v1/oncall/now?domain=RAN",
        "/api/v1/oncall/schedules",
        "/api/v1/oncall/teams/1/calendar.ics",
        "/api/v1/oncall/people/1/calendar.ics",
        "/api/v1/incidents",
        "/api/v1/incidents/1",
    ):
        assert_error(client.get(url), 401, "unauthorized")
    for url, body in (
        ("/api/v1/incidents", {"title": "x", "severity": "sev3"}),
        ("/api/v1/incidents/1/acknowledge", None),
        ("/api/v1/incidents/1/resolve", {"note": "done"}),
        ("/api/v1/incidents/1/notes", {"text": "hello"}),
    ):
        assert_error(client.post(url, json=body), 401, "unauthorized")


def test_oncall_now_by_domain_and_component(
    client: FlaskClient, as_role: Callable[..., Headers], demo: dict[str, int]
) -> None:
    viewer = as_role("viewer")
    for domain, team in (("RAN", "ran-north"), ("transport", "transport"), ("Core", "core")):
        response = client.get(f"/api/v1/oncall/now?domain={domain}", headers=viewer)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["team"]["id"] == demo[team]
        assert body["person"]["name"]  # the demo always has someone on call
        assert body["until"] is not None
        assert {"team", "person", "until", "escalation"} <= set(body)
        assert body["escalation"][0]["target_kind"] == "schedule"
        assert body["escalation"][0]["people"][0]["name"] == body["person"]["name"]
    region = client.get("/api/v1/oncall/now?domain=RAN&region=South", headers=viewer).get_json()
    assert region["team"]["key"] == "ran-south"
    assert region["subject"] == {"kind": "region", "key": "RAN:South"}
    for component in ("detector", "forecaster", "ingest:pm-north"):
        body = client.get(f"/api/v1/oncall/now?component={component}", headers=viewer).get_json()
        assert body["team"]["key"] == "ai-platform", component
        assert body["subject"] == {"kind": "component", "key": component}


def test_oncall_now_refusals_have_clear_messages(
    client: FlaskClient, as_role: Callable[..., Headers], demo: dict[str, int]
) -> None:
    viewer = as_role("viewer")
    error = assert_error(
        client.get("/api/v1/oncall/now?domain=Satellite", headers=viewer), 404, "not_found"
    )
    assert error["message"] == "no team owns the network domain 'Satellite'"
    error = assert_error(
        client.get("/api/v1/oncall/now?component=ingest:nowhere", headers=viewer), 404, "not_found"
    )
    assert "ingest:nowhere" in error["message"]
    for query in ("", "?domain=RAN&component=detector", "?region=North", "?team=1"):
        error = assert_error(
            client.get(f"/api/v1/oncall/now{query}", headers=viewer), 422, "invalid_input"
        )
    error = assert_error(client.get("/api/v1/oncall/now", headers=viewer), 422, "invalid_input")
    assert "domain" in error["message"]
    assert "component" in error["message"]


def test_schedules_and_calendars(
    client: FlaskClient, as_role: Callable[..., Headers], demo: dict[str, int]
) -> None:
    viewer = as_role("executive")
    body = client.get("/api/v1/oncall/schedules?days=14", headers=viewer).get_json()
    teams = {item["team"]["key"]: item for item in body["items"]}
    assert set(teams) == {"ran-north", "ran-south", "transport", "core", "ai-platform"}
    ran = teams["ran-north"]
    assert ran["person"] is not None
    assert [r["layer"] for r in ran["rotations"]] == [1, 2]
    assert "RAN" in ran["owns"]
    handoff = teams["transport"]["next_handoffs"][0]  # 12-hour shifts: hand-offs every day
    assert set(handoff) == {"at", "from", "to"}
    assert handoff["from"]["name"] != handoff["to"]["name"]

    team = client.get(f"/api/v1/oncall/teams/{demo['core']}/calendar.ics", headers=viewer)
    assert team.status_code == 200
    assert team.mimetype == "text/calendar"
    calendar = Calendar.from_ical(team.data)
    events = [c for c in calendar.walk("VEVENT")]
    assert events
    assert all("(Core)" in str(e["summary"]) for e in events)
    person = client.get(
        f"/api/v1/oncall/people/{demo['person']}/calendar.ics?days=30", headers=viewer
    )
    assert person.mimetype == "text/calendar"
    assert b"On call for RAN North operations" in person.data
    assert_error(
        client.get("/api/v1/oncall/teams/9999/calendar.ics", headers=viewer), 404, "not_found"
    )
    assert_error(
        client.get("/api/v1/oncall/people/9999/calendar.ics", headers=viewer), 404, "not_found"
    )
    assert_error(
        client.get("/api/v1/oncall/people/1/calendar.ics?days=999", headers=viewer),
        422,
        "invalid_input",
    )


def test_incident_lifecycle_through_the_api(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database, demo: dict[str, int]
) -> None:
    operator = as_role("operator")
    created = client.post(
        "/api/v1/incidents",
        json={"title": "Backhaul loss North", "severity": "sev2", "domain": "Transport"},
        headers=operator,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    incident = created.get_json()
    number = incident["id"]
    assert (incident["status"], incident["origin"], incident["team_id"]) == (
        "triggered",
        "manual",
        demo["transport"],
    )
    assert incident["created_by"] == "api:test-operator"

    note = client.post(
        f"/api/v1/incidents/{number}/notes", json={"text": "fibre cut suspected"}, headers=operator
    )
    assert note.status_code == 201
    assert note.get_json()["kind"] == "note"
    ack = client.post(f"/api/v1/incidents/{number}/acknowledge", headers=operator)
    assert ack.status_code == 200, ack.get_data(as_text=True)
    assert ack.get_json()["acknowledged_by"] == "api:test-operator"
    again = client.post(f"/api/v1/incidents/{number}/acknowledge", headers=operator)
    assert "cannot become acknowledged" in assert_error(again, 409, "illegal_transition")["message"]

    blank = client.post(
        f"/api/v1/incidents/{number}/resolve", json={"note": "  "}, headers=operator
    )
    assert "resolution note" in assert_error(blank, 422, "resolution_note_required")["message"]
    missing = client.post(f"/api/v1/incidents/{number}/resolve", json={}, headers=operator)
    assert_error(missing, 422, "invalid_input")
    resolved = client.post(
        f"/api/v1/incidents/{number}/resolve",
        json={"note": "Splice repaired by field team"},
        headers=operator,
    )
    assert resolved.status_code == 200
    assert resolved.get_json()["resolution_note"] == "Splice repaired by field team"

    detail = client.get(f"/api/v1/incidents/{number}", headers=as_role("viewer")).get_json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "created"
    assert "note" in kinds
    assert kinds.count("status") >= 2
    assert detail["team"] == "Transport"
    assert detail["escalation_policy"] == "Transport escalation"
    with db.session() as session:
        actions = {e.action for e in audit.search(session, object_type="incident")}
    assert {"incident.create", "incident.note"} <= actions
    assert_error(client.get("/api/v1/incidents/9999", headers=operator), 404, "not_found")
    assert_error(
        client.post("/api/v1/incidents/9999/acknowledge", headers=operator), 404, "not_found"
    )


def test_list_filters_and_paging(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database, demo: dict[str, int]
) -> None:
    engineer = as_role("engineer")
    ids = []
    for title, severity, domain in (
        ("RAN cell outage", "sev1", "RAN"),
        ("Core latency", "sev3", "Core"),
        ("Transport flaps", "sev2", "Transport"),
    ):
        response = client.post(
            "/api/v1/incidents",
            json={"title": title, "severity": severity, "domain": domain},
            headers=engineer,
        )
        ids.append(response.get_json()["id"])
    client.post(f"/api/v1/incidents/{ids[1]}/resolve", json={"note": "tuned"}, headers=engineer)
    with db.session(write=True) as session:
        session.get(Incident, ids[0]).ai_detected = True

    def listed(query: str = "") -> list[int]:
        response = client.get(f"/api/v1/incidents{query}", headers=as_role("viewer"))
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    assert listed() == ids[::-1]
    assert listed("?open_only=true") == [ids[2], ids[0]]
    assert listed("?status=resolved") == [ids[1]]
    assert listed("?severity=sev1,sev2") == [ids[2], ids[0]]
    assert listed("?domain=core") == [ids[1]]
    assert listed(f"?team_id={demo['transport']}") == [ids[2]]
    assert listed("?ai_involved=true") == [ids[0]]
    assert listed("?origin=manual&text=flaps") == [ids[2]]
    page = client.get("/api/v1/incidents?limit=1&offset=1", headers=engineer).get_json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert page["items"][0]["team"] == "Core"
    for query in ("status=closed", "severity=sev9", "origin=fax", "colour=red", "limit=0"):
        assert_error(
            client.get(f"/api/v1/incidents?{query}", headers=engineer), 422, "invalid_input"
        )


def test_write_refusals_by_role_scope_and_kiosk(
    client: FlaskClient,
    as_role: Callable[..., Headers],
    db: Database,
    demo: dict[str, int],
) -> None:
    body = {"title": "Should not exist", "severity": "sev4"}
    for role in ("viewer", "executive"):
        error = assert_error(
            client.post("/api/v1/incidents", json=body, headers=as_role(role)), 403, "forbidden"
        )
        assert error["details"]["missing"] == "role"
    error = assert_error(
        client.post("/api/v1/incidents", json=body, headers=as_role("operator", scopes=["read"])),
        403,
        "forbidden",
    )
    assert error["details"]["missing"] == "scope"
    # A wall screen's kiosk session reads on-call and incidents but never writes.
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="wall-api", actor=audit.SYSTEM)
    kiosk = client
    assert kiosk.get(f"/kiosk/{issued.plaintext}").status_code == 303
    assert kiosk.get("/api/v1/oncall/now?domain=RAN").status_code == 200
    assert kiosk.get("/api/v1/incidents").status_code == 200
    error = assert_error(kiosk.post("/api/v1/incidents", json=body), 403, "forbidden")
    assert error["details"]["missing"] == "kiosk_read_only"
    with db.session() as session:
        assert session.scalar(select(Incident.id)) is None
        refusals = audit.search(session, action="access.denied")
    assert len(refusals) >= 4
    # Validation comes after authorisation: a refused caller learns nothing about fields.
    assert_error(client.post("/api/v1/incidents/1/notes", json={}), 403, "forbidden")


def test_endpoints_are_in_the_openapi_document(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    paths = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()["paths"]
    assert "get" in paths["/api/v1/oncall/now"]
    assert "get" in paths["/api/v1/oncall/schedules"]
    assert "get" in paths["/api/v1/oncall/teams/{team_id}/calendar.ics"]
    assert "get" in paths["/api/v1/oncall/people/{person_id}/calendar.ics"]
    assert {"get", "post"} <= set(paths["/api/v1/incidents"])
    assert "get" in paths["/api/v1/incidents/{incident_id}"]
    for action in ("acknowledge", "resolve", "notes"):
        post = paths[f"/api/v1/incidents/{{incident_id}}/{action}"]["post"]
        assert post["x-beacon-scope"] == "act"
        assert post["x-beacon-roles"] == ["admin", "engineer", "operator"]
    assert paths["/api/v1/oncall/now"]["get"]["x-beacon-scope"] == "read"
    assert "404" in paths["/api/v1/oncall/now"]["get"]["responses"]


def test_status_changes_reach_the_configured_webhooks(tmp_path: Path, template_db: Path) -> None:
    """The views pass the deployment's notify config: each status change queues a webhook."""
    shutil.copy(template_db, tmp_path / "beacon.db")
    settings = beacon_settings(
        tmp_path,
        BEACON_WEBHOOK_URLS="http://127.0.0.1:9/hook",
        BEACON_WEBHOOK_SECRET="s3cret-for-the-webhook-test",
    )
    server = create_app(settings).server
    try:
        db = server.extensions["beacon"].db
        with db.session(write=True) as session:
            seed_demo_oncall(session, now=utcnow())
            token = auth.create_api_token(
                session, name="hooks", role="operator", actor=audit.SYSTEM
            ).plaintext
        client = server.test_client()
        headers = bearer(token)
        number = client.post(
            "/api/v1/incidents", json={"title": "Hooked", "severity": "sev3"}, headers=headers
        ).get_json()["id"]
        client.post(f"/api/v1/incidents/{number}/acknowledge", headers=headers)
        client.post(f"/api/v1/incidents/{number}/resolve", json={"note": "ok"}, headers=headers)
        detail = client.get(f"/api/v1/incidents/{number}", headers=headers).get_json()
        assert {n["notifier"] for n in detail["notifications"]} == {"webhook"}
        assert {n["target"] for n in detail["notifications"]} == {"http://127.0.0.1:9/hook"}
        with db.session() as session:
            events = [
                n.payload.get("event")
                for n in session.scalars(
                    select(Notification).where(Notification.incident_id == number)
                )
            ]
        assert {"incident.created", "incident.acknowledged", "incident.resolved"} <= set(events)
    finally:
        server.extensions["beacon"].db.dispose()
