"""Trust endpoints: use cases, recommendations, decisions, execution, rollback, change windows,
maturity approvals: authentication, roles and scopes, 409/422 answers and happy paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from api_support import assert_error
from flask.testing import FlaskClient
from sqlalchemy import select
from trust_api_support import CELL, add_recommendation, propose, seed_trust

from services import audit
from services.db import Database
from services.db.models import ChangeWindow, Disagreement, Recommendation, UseCase, utcnow

Headers = dict[str, str]
AsRole = Callable[..., Headers]


@pytest.fixture
def seeded(db: Database) -> Database:
    seed_trust(db)
    return db


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat().replace("+00:00", "Z")


def test_every_endpoint_needs_a_session_or_token(client: FlaskClient, seeded: Database) -> None:
    rec = add_recommendation(seeded)
    for method, url, body in (
        ("get", "/api/v1/use-cases", None),
        ("get", "/api/v1/use-cases/1", None),
        ("get", "/api/v1/maturity-changes", None),
        ("post", "/api/v1/maturity-changes/1/approve", None),
        ("post", "/api/v1/maturity-changes/1/reject", {}),
        ("post", "/api/v1/use-cases/1/level", {"level": "L1", "reason": "x"}),
        ("get", "/api/v1/recommendations", None),
        ("get", f"/api/v1/recommendations/{rec}", None),
        ("post", f"/api/v1/recommendations/{rec}/decision", {"verdict": "accept"}),
        ("post", f"/api/v1/recommendations/{rec}/execute", None),
        ("post", f"/api/v1/recommendations/{rec}/rollback", {"reason": "x"}),
        ("get", "/api/v1/change-windows", None),
        ("post", "/api/v1/change-windows", {"title": "x"}),
        ("delete", "/api/v1/change-windows/1", None),
    ):
        response = getattr(client, method)(url, json=body)
        assert_error(response, 401, "unauthorized")


def test_use_cases_carry_level_owner_criteria_and_metrics(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    response = client.get("/api/v1/use-cases", headers=as_role("executive"))
    assert response.status_code == 200, response.get_data(as_text=True)
    items = {item["key"]: item for item in response.get_json()["items"]}
    assert set(items) == {
        "capacity_carrier_add",
        "cell_congestion_lb",
        "sleeping_cell_restart",
        "transport_link_reroute",
    }
    lb = items["cell_congestion_lb"]
    assert lb["maturity_level"] == "L2"
    assert lb["maturity_name"] == "L2 approve-to-execute"
    assert lb["owner"]["name"]
    assert lb["criteria"]["min_decisions"] == 20
    assert lb["metrics"]["decisions"] == 0
    assert lb["metrics"]["acceptance_rate"] is None
    assert [c["name"] for c in lb["criteria_checks"]] == [
        "min_decisions",
        "min_acceptance_rate",
        "min_precision",
        "no_harmful_rollback_days",
    ]
    assert [level["level"] for level in lb["levels"]] == ["L0", "L1", "L2", "L3", "L4"]
    one = client.get(f"/api/v1/use-cases/{lb['id']}", headers=as_role("viewer")).get_json()
    assert one["key"] == "cell_congestion_lb"
    assert_error(client.get("/api/v1/use-cases/999", headers=as_role("viewer")), 404, "not_found")


def test_recommendation_list_filters_and_detail(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    open_id = add_recommendation(seeded)
    done_id = add_recommendation(seeded, "cell_congestion_lb", state="rejected", simulated=True)
    viewer = as_role("viewer")

    def ids(query: str = "") -> list[int]:
        response = client.get(f"/api/v1/recommendations{query}", headers=viewer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    assert set(ids()) == {open_id, done_id}
    assert ids("?state=open") == [open_id]
    assert ids("?state=pending") == [open_id]
    assert ids("?simulated=true") == [done_id]
    item = client.get("/api/v1/recommendations?state=open", headers=viewer).get_json()["items"][0]
    assert {"id", "use_case_id", "maturity_level", "state", "action", "confidence"} <= set(item)
    assert (item["maturity_level"], item["state"], item["action"]) == (
        "L2",
        "open",
        "carrier_add_ticket",
    )
    assert item["blast_radius"] == {"cells": 1, "users": 40}
    error = assert_error(
        client.get("/api/v1/recommendations?state=closed", headers=viewer), 422, "invalid_input"
    )
    assert "state must be one of" in error["message"]
    assert_error(
        client.get("/api/v1/recommendations?colour=red", headers=viewer), 422, "invalid_input"
    )
    detail = client.get(f"/api/v1/recommendations/{open_id}", headers=viewer).get_json()
    assert detail["explanation"]["element"]["dn"] == CELL
    assert detail["decisions"] == []
    assert detail["executions"] == []
    assert_error(client.get("/api/v1/recommendations/9999", headers=viewer), 404, "not_found")


@pytest.mark.parametrize("role", ["viewer", "executive"])
def test_readers_cannot_decide_execute_or_roll_back(
    client: FlaskClient, as_role: AsRole, seeded: Database, role: str
) -> None:
    rec = add_recommendation(seeded)
    headers = as_role(role)
    for url, body in (
        (f"/api/v1/recommendations/{rec}/decision", {"verdict": "accept", "reason_code": "other"}),
        (f"/api/v1/recommendations/{rec}/execute", None),
        (f"/api/v1/recommendations/{rec}/rollback", {"reason": "bad"}),
        ("/api/v1/maturity-changes/1/approve", None),
    ):
        error = assert_error(client.post(url, json=body, headers=headers), 403, "forbidden")
        assert error["details"]["missing"] == "role"
    with seeded.session() as session:
        assert session.get_one(Recommendation, rec).state == "open"
        assert audit.search(session, action="access.denied")


def test_a_read_only_token_of_an_operator_cannot_decide(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    read_only = as_role("operator", scopes=["read"])
    error = assert_error(
        client.post(
            f"/api/v1/recommendations/{rec}/decision",
            json={"verdict": "accept", "reason_code": "other"},
            headers=read_only,
        ),
        403,
        "forbidden",
    )
    assert error["details"]["missing"] == "scope"


def test_decision_needs_a_reason_and_a_valid_verdict(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    operator = as_role("operator")
    url = f"/api/v1/recommendations/{rec}/decision"
    missing = assert_error(
        client.post(url, json={"verdict": "reject"}, headers=operator), 422, "invalid_input"
    )
    assert missing["message"].startswith("Give a reason: Wrong diagnosis;")
    unknown = assert_error(
        client.post(url, json={"verdict": "reject", "reason_code": "nope"}, headers=operator),
        422,
        "invalid_input",
    )
    assert "Unknown reason 'nope'" in unknown["message"]
    assert_error(
        client.post(url, json={"verdict": "maybe", "reason_code": "other"}, headers=operator),
        422,
        "invalid_input",
    )
    override = assert_error(
        client.post(url, json={"verdict": "override", "reason_code": "other"}, headers=operator),
        422,
        "invalid_input",
    )
    assert "names the action taken instead" in override["message"]
    assert_error(
        client.post(
            "/api/v1/recommendations/9999/decision",
            json={"verdict": "accept", "reason_code": "other"},
            headers=operator,
        ),
        404,
        "not_found",
    )
    with seeded.session() as session:
        assert session.get_one(Recommendation, rec).state == "open"


def test_reject_opens_a_case_and_a_second_decision_is_409(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    operator = as_role("operator")
    url = f"/api/v1/recommendations/{rec}/decision"
    response = client.post(
        url,
        json={"verdict": "reject", "reason_code": "risk_too_high", "note": "busy hour"},
        headers=operator,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["verdict"], body["reason_code"], body["note"], body["state"]) == (
        "reject",
        "risk_too_high",
        "busy hour",
        "rejected",
    )
    again = assert_error(
        client.post(url, json={"verdict": "accept", "reason_code": "other"}, headers=operator),
        409,
        "conflict",
    )
    assert "already rejected" in again["message"]
    with seeded.session() as session:
        case = session.scalars(select(Disagreement).where(Disagreement.recommendation_id == rec))
        assert case.one().kind == "rejected"
        assert audit.search(session, action="recommendation.rejected")[0].actor == (
            "api:test-operator"
        )


def test_override_names_the_other_action(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    response = client.post(
        f"/api/v1/recommendations/{rec}/decision",
        json={
            "verdict": "override",
            "reason_code": "right_diagnosis_wrong_action",
            "override_action": "manual_tilt_change",
        },
        headers=as_role("engineer"),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["override_action"] == "manual_tilt_change"
    assert response.get_json()["state"] == "overridden"


def test_two_person_approval_refuses_an_api_token(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded, severity="critical")
    error = assert_error(
        client.post(
            f"/api/v1/recommendations/{rec}/decision",
            json={"verdict": "accept", "reason_code": "other"},
            headers=as_role("engineer"),
        ),
        403,
        "forbidden",
    )
    assert "Two-person approval needs signed-in people" in error["message"]


def test_execute_unaccepted_below_l3_is_409_naming_the_guardrail(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    operator = as_role("operator")
    error = assert_error(
        client.post(f"/api/v1/recommendations/{rec}/execute", headers=operator),
        409,
        "guardrail_blocked",
    )
    assert error["message"].startswith("Blocked by guardrail human_approval:")
    assert error["details"]["allowed"] is False
    assert error["details"]["blocking"]["name"] == "human_approval"
    assert {r["name"] for r in error["details"]["results"]} >= {"min_confidence", "rate_limit"}
    with seeded.session() as session:
        assert session.get_one(Recommendation, rec).state == "open"
        # The refusal is audited even though the request failed.
        assert audit.search(session, action="automation.execute_blocked")


def test_dry_run_changes_nothing(client: FlaskClient, as_role: AsRole, seeded: Database) -> None:
    rec = add_recommendation(seeded)
    response = client.post(
        f"/api/v1/recommendations/{rec}/execute?dry_run=1", headers=as_role("operator")
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["recommendation_id"] == rec
    assert body["allowed"] is False
    assert body["guardrails"]["blocking"]["name"] == "human_approval"
    assert body["planned"]["action"] == "carrier_add_ticket"
    with seeded.session() as session:
        assert session.get_one(Recommendation, rec).state == "open"
        assert not audit.search(session, action="automation.execute_blocked")


def test_accept_execute_and_roll_back(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    rec = add_recommendation(seeded)
    operator, engineer = as_role("operator"), as_role("engineer")
    accepted = client.post(
        f"/api/v1/recommendations/{rec}/decision",
        json={"verdict": "accept", "reason_code": "other"},
        headers=operator,
    )
    assert accepted.get_json()["state"] == "accepted"
    preview = client.post(f"/api/v1/recommendations/{rec}/execute?dry_run=true", headers=operator)
    assert preview.get_json()["allowed"] is True
    run = client.post(f"/api/v1/recommendations/{rec}/execute", headers=operator)
    assert run.status_code == 200, run.get_data(as_text=True)
    execution = run.get_json()
    assert (execution["state"], execution["actuator"]) == ("succeeded", "simulator")
    assert execution["post_state"]["ticket"].startswith("PLAN-")
    assert execution["triggered_by"] == "api:test-operator"
    refused = assert_error(
        client.post(
            f"/api/v1/recommendations/{rec}/rollback", json={"reason": "wrong"}, headers=operator
        ),
        403,
        "forbidden",
    )
    assert refused["details"]["required_roles"] == ["admin", "engineer"]
    assert_error(
        client.post(f"/api/v1/recommendations/{rec}/rollback", json={}, headers=engineer),
        422,
        "invalid_input",
    )
    back = client.post(
        f"/api/v1/recommendations/{rec}/rollback",
        json={"reason": "ticket raised twice"},
        headers=engineer,
    )
    assert back.status_code == 200, back.get_data(as_text=True)
    assert back.get_json()["state"] == "rolled_back"
    assert back.get_json()["rollback"]["reason"] == "ticket raised twice"
    assert_error(
        client.post(
            f"/api/v1/recommendations/{rec}/rollback", json={"reason": "x"}, headers=engineer
        ),
        409,
        "conflict",
    )
    detail = client.get(f"/api/v1/recommendations/{rec}", headers=operator).get_json()
    assert detail["state"] == "rolled_back"
    assert [d["verdict"] for d in detail["decisions"]] == ["accept"]
    with seeded.session() as session:
        actions = [e.action for e in audit.search(session, limit=50)]
    for step in ("recommendation.accepted", "automation.executed", "automation.rolled_back"):
        assert step in actions


def test_change_windows_json_csv_freeze_and_delete(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    engineer = as_role("engineer")
    freeze = {
        "title": "Year-end freeze",
        "kind": "freeze",
        "starts_at": _iso(-timedelta(hours=1)),
        "ends_at": _iso(timedelta(days=2)),
        "scope": {"domains": ["RAN"]},
        "external_id": "CHG-1",
    }
    created = client.post("/api/v1/change-windows", json=freeze, headers=engineer)
    assert created.status_code == 201, created.get_data(as_text=True)
    window = created.get_json()
    assert (window["title"], window["kind"], window["scope"]) == (
        "Year-end freeze",
        "freeze",
        {"domains": ["RAN"]},
    )
    naive = {**freeze, "external_id": None, "starts_at": "2026-12-01T10:00:00"}
    error = assert_error(
        client.post("/api/v1/change-windows", json=naive, headers=engineer), 422, "invalid_input"
    )
    assert "needs a time zone" in error["message"]
    assert_error(
        client.post("/api/v1/change-windows", json={**freeze, "kind": "party"}, headers=engineer),
        422,
        "invalid_input",
    )

    csv_text = (
        "external_id,title,kind,starts_at,ends_at,domains,regions,elements\n"
        f"CHG-2,Swap router,change,{_iso(timedelta(days=3))},{_iso(timedelta(days=3, hours=2))},"
        "Transport,,\n"
        "CHG-3,Broken row,change,tomorrow,later,,,\n"
    )
    imported = client.post(
        "/api/v1/change-windows",
        data=csv_text,
        headers={**engineer, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.get_data(as_text=True)
    summary = imported.get_json()
    assert (summary["created"], summary["updated"]) == (1, 0)
    assert summary["errors"][0]["line"] == 3
    assert "ISO 8601" in summary["errors"][0]["message"]
    assert_error(
        client.post(
            "/api/v1/change-windows", data="x", headers={**engineer, "Content-Type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    )

    listed = client.get("/api/v1/change-windows", headers=as_role("viewer")).get_json()["items"]
    assert [w["external_id"] for w in listed] == ["CHG-1", "CHG-2"]
    freezes = client.get("/api/v1/change-windows?kind=freeze", headers=engineer).get_json()
    assert [w["external_id"] for w in freezes["items"]] == ["CHG-1"]

    # The freeze blocks an accepted recommendation on a RAN cell.
    rec = add_recommendation(seeded)
    operator = as_role("operator")
    client.post(
        f"/api/v1/recommendations/{rec}/decision",
        json={"verdict": "accept", "reason_code": "other"},
        headers=operator,
    )
    blocked = assert_error(
        client.post(f"/api/v1/recommendations/{rec}/execute", headers=operator),
        409,
        "guardrail_blocked",
    )
    assert blocked["details"]["blocking"]["name"] == "change_freeze"
    assert "Year-end freeze" in blocked["message"]

    refused = assert_error(
        client.delete(f"/api/v1/change-windows/{window['id']}", headers=operator),
        403,
        "forbidden",
    )
    assert refused["details"]["missing"] == "role"
    deleted = client.delete(f"/api/v1/change-windows/{window['id']}", headers=engineer)
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    assert deleted.get_json()["deleted"] is True
    assert_error(
        client.delete(f"/api/v1/change-windows/{window['id']}", headers=engineer),
        404,
        "not_found",
    )
    with seeded.session() as session:
        assert session.scalar(select(ChangeWindow.external_id)) == "CHG-2"
        actions = [e.action for e in audit.search(session, object_type="change_window")]
        assert {"change_window.created", "change_window.imported", "change_window.deleted"} <= set(
            actions
        )


def test_operators_cannot_change_the_calendar(
    client: FlaskClient, as_role: AsRole, seeded: Database
) -> None:
    body = {
        "title": "x",
        "kind": "change",
        "starts_at": _iso(timedelta(hours=1)),
        "ends_at": _iso(timedelta(hours=2)),
    }
    assert_error(
        client.post("/api/v1/change-windows", json=body, headers=as_role("operator")),
        403,
        "forbidden",
    )


def test_admins_approve_and_reject_promotions(
    client: FlaskClient, as_role: AsRole, admin: Headers, seeded: Database
) -> None:
    first, second = propose(seeded), propose(seeded, "capacity_carrier_add")
    pending = client.get("/api/v1/maturity-changes", headers=as_role("viewer")).get_json()
    assert [(c["id"], c["from_level"], c["to_level"]) for c in pending["items"]] == [
        (first, "L1", "L2"),
        (second, "L2", "L3"),
    ]
    for role in ("engineer", "operator"):
        error = assert_error(
            client.post(f"/api/v1/maturity-changes/{first}/approve", headers=as_role(role)),
            403,
            "forbidden",
        )
        assert error["details"]["missing"] == "role"
    approved = client.post(f"/api/v1/maturity-changes/{first}/approve", headers=admin)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "approved"
    assert_error(
        client.post(f"/api/v1/maturity-changes/{first}/approve", headers=admin), 409, "conflict"
    )
    rejected = client.post(
        f"/api/v1/maturity-changes/{second}/reject", json={"reason": "not yet"}, headers=admin
    )
    assert rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["evidence"]["rejection_reason"] == "not yet"
    assert_error(
        client.post("/api/v1/maturity-changes/999/approve", headers=admin), 404, "not_found"
    )
    with seeded.session() as session:
        levels = dict(session.execute(select(UseCase.key, UseCase.maturity_level)).all())
        assert levels["transport_link_reroute"] == 2
        assert levels["capacity_carrier_add"] == 2
        actions = [e.action for e in audit.search(session, action="automation.maturity.approved")]
        assert actions == ["automation.maturity.approved"]
    assert client.get("/api/v1/maturity-changes", headers=admin).get_json()["items"] == []


def test_admin_sets_a_level_with_a_reason(
    client: FlaskClient, as_role: AsRole, admin: Headers, seeded: Database
) -> None:
    with seeded.session() as session:
        case_id = session.scalar(select(UseCase.id).where(UseCase.key == "sleeping_cell_restart"))
    url = f"/api/v1/use-cases/{case_id}/level"
    assert_error(
        client.post(url, json={"level": "L1", "reason": "x"}, headers=as_role("engineer")),
        403,
        "forbidden",
    )
    assert_error(
        client.post(url, json={"level": "L9", "reason": "x"}, headers=admin), 422, "invalid_input"
    )
    changed = client.post(url, json={"level": "L1", "reason": "after INC-7"}, headers=admin)
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert (changed.get_json()["from_level"], changed.get_json()["to_level"]) == ("L3", "L1")
    assert_error(
        client.post(url, json={"level": "L1", "reason": "x"}, headers=admin), 409, "conflict"
    )


def test_openapi_documents_the_trust_endpoints(client: FlaskClient, as_role: AsRole) -> None:
    document = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()
    paths = document["paths"]
    for path in (
        "/api/v1/use-cases",
        "/api/v1/recommendations",
        "/api/v1/recommendations/{recommendation_id}",
        "/api/v1/recommendations/{recommendation_id}/decision",
        "/api/v1/recommendations/{recommendation_id}/execute",
        "/api/v1/recommendations/{recommendation_id}/rollback",
        "/api/v1/change-windows",
        "/api/v1/change-windows/{window_id}",
        "/api/v1/maturity-changes/{change_id}/approve",
        "/api/v1/maturity-changes/{change_id}/reject",
    ):
        assert path in paths, path
    decision = paths["/api/v1/recommendations/{recommendation_id}/decision"]["post"]
    assert decision["x-beacon-roles"] == ["admin", "engineer", "operator"]
    assert (
        "409" in paths["/api/v1/recommendations/{recommendation_id}/execute"]["post"]["responses"]
    )
    assert paths["/api/v1/recommendations/{recommendation_id}/rollback"]["post"][
        "x-beacon-roles"
    ] == ["admin", "engineer"]
    posted = paths["/api/v1/change-windows"]["post"]["requestBody"]["content"]
    assert set(posted) == {"application/json", "text/csv"}
    assert "title" in posted["application/json"]["schema"]["properties"]
