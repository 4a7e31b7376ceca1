"""The disagreement queue and adoption endpoints: access, filters, detail, review, report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from api_support import assert_error
from disagreement_support import Rejected, reject_one, seed_trust
from flask.testing import FlaskClient
from sqlalchemy import select

from services import audit, auth
from services.automation.levels import REVIEW_OUTCOMES
from services.db import Database
from services.db.models import Disagreement, Review, utcnow
from services.decisions.demo import backfill_history

Headers = dict[str, str]


@pytest.fixture
def case(db: Database) -> Rejected:
    now = utcnow()
    with db.session(write=True) as session:
        seed_trust(session, now=now)
        return reject_one(session, now=now)


def test_no_token_is_401(client: FlaskClient, case: Rejected) -> None:
    assert_error(client.get("/api/v1/disagreements"), 401, "unauthorized")
    assert_error(client.get(f"/api/v1/disagreements/{case.case_id}"), 401, "unauthorized")
    response = client.post(
        f"/api/v1/disagreements/{case.case_id}/review", json={"outcome": "ai_right"}
    )
    assert_error(response, 401, "unauthorized")
    assert_error(client.get("/api/v1/adoption"), 401, "unauthorized")


def test_list_carries_links_owner_sla_and_both_sides(
    client: FlaskClient, as_role: Callable[..., Headers], case: Rejected
) -> None:
    for role in ("viewer", "operator", "executive", "engineer", "admin"):
        response = client.get("/api/v1/disagreements?state=open", headers=as_role(role))
        assert response.status_code == 200, (role, response.get_data(as_text=True))
    body = response.get_json()
    assert body["total"] == 1
    [item] = body["items"]
    assert (item["id"], item["kind"], item["state"]) == (case.case_id, "rejected", "open")
    assert item["recommendation_id"] == case.recommendation_id
    assert item["anomaly_id"] is None
    assert item["incident_id"] is None
    assert item["owner_team"]
    assert item["assignee"]
    assert item["due_at"]
    assert item["overdue"] is False
    assert "lb_param_change (87%)" in item["ai_summary"]
    assert "op-decider: reject — Wrong diagnosis. Stadium event" in item["human_summary"]
    assert "late_data" in item["data_quality_summary"]
    assert (item["outcome"], item["review_note"], item["simulated"]) == (None, None, False)
    resolved = client.get("/api/v1/disagreements?state=resolved", headers=as_role("viewer"))
    assert resolved.get_json() == {"items": [], "total": 0, "limit": 100, "offset": 0}
    kinds = client.get("/api/v1/disagreements?kind=missed", headers=as_role("viewer"))
    assert kinds.get_json()["total"] == 0


def test_bad_filters_are_422(client: FlaskClient, as_role: Callable[..., Headers]) -> None:
    viewer = as_role("viewer")
    for query, needle in (
        ("state=closed", "use open, resolved, overdue, escalated"),
        ("kind=grumpy", "use rejected, overridden"),
        ("use_case_id=0", "use_case_id"),
        ("colour=red", "colour"),
    ):
        error = assert_error(
            client.get(f"/api/v1/disagreements?{query}", headers=viewer), 422, "invalid_input"
        )
        assert needle in error["message"], error


def test_detail_has_both_sides_and_data_quality(
    client: FlaskClient, as_role: Callable[..., Headers], case: Rejected
) -> None:
    viewer = as_role("viewer")
    body = client.get(f"/api/v1/disagreements/{case.case_id}", headers=viewer).get_json()
    assert body["ai_side"]["action"] == "lb_param_change"
    assert body["ai_side"]["confidence"] == 0.87
    assert body["human_side"]["reason"] == "Wrong diagnosis"
    assert body["human_side"]["note"] == "Stadium event, expected load"
    assert body["data_quality"]["ai_input"]["flags"] == ["late_data"]
    assert body["reviews"] == []
    assert [h["action"] for h in body["history"]] == ["disagreement.open"]
    error = assert_error(
        client.get("/api/v1/disagreements/99999", headers=viewer), 404, "not_found"
    )
    assert "99999" in error["message"]


def test_review_refusals(
    client: FlaskClient,
    as_role: Callable[..., Headers],
    db: Database,
    case: Rejected,
) -> None:
    url = f"/api/v1/disagreements/{case.case_id}/review"
    body = {"outcome": "human_right", "note": "agreed"}
    for role in ("viewer", "operator", "executive"):
        error = assert_error(client.post(url, json=body, headers=as_role(role)), 403, "forbidden")
        assert error["details"]["missing"] == "role"
    error = assert_error(
        client.post(url, json=body, headers=as_role("engineer", scopes=["read"])), 403, "forbidden"
    )
    assert error["details"]["missing"] == "scope"
    engineer = as_role("engineer")
    error = assert_error(
        client.post(url, json={"outcome": "meh"}, headers=engineer), 422, "invalid_input"
    )
    for outcome in REVIEW_OUTCOMES:
        assert outcome in error["message"]
    assert_error(client.post(url, json={"note": "x"}, headers=engineer), 422, "invalid_input")
    long = {"outcome": "ai_right", "note": "x" * 2001}
    assert_error(client.post(url, json=long, headers=engineer), 422, "invalid_input")
    extra = {"outcome": "ai_right", "reviewer": "bob"}
    assert_error(client.post(url, json=extra, headers=engineer), 422, "invalid_input")
    missing = client.post("/api/v1/disagreements/99999/review", json=body, headers=engineer)
    assert_error(missing, 404, "not_found")
    with db.session() as session:
        assert session.scalar(select(Review.id)) is None
        refusals = audit.search(session, action="access.denied")
        assert len(refusals) == 4


def test_wall_screen_session_cannot_review(
    client: FlaskClient, db: Database, case: Rejected
) -> None:
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="noc wall", actor=audit.SYSTEM)
    assert client.get(f"/kiosk/{issued.plaintext}").status_code == 303
    assert client.get("/api/v1/disagreements").status_code == 200  # read-only screen
    response = client.post(
        f"/api/v1/disagreements/{case.case_id}/review", json={"outcome": "ai_right"}
    )
    error = assert_error(response, 403, "forbidden")
    assert error["details"]["missing"] == "kiosk_read_only"


def test_engineer_reviews_and_the_note_shows_on_the_list(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database, case: Rejected
) -> None:
    engineer = as_role("engineer")
    url = f"/api/v1/disagreements/{case.case_id}/review"
    response = client.post(
        url,
        json={"outcome": "human_right", "note": "  Event load, not congestion "},
        headers=engineer,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["state"], body["outcome"]) == ("resolved", "human_right")
    assert body["review_note"] == "Event load, not congestion"
    assert [r["outcome"] for r in body["reviews"]] == ["human_right"]
    assert body["history"][-1]["action"] == "disagreement.resolved"
    assert body["history"][-1]["actor"] == "api:test-engineer"
    listed = client.get("/api/v1/disagreements?state=resolved", headers=engineer).get_json()
    assert [(i["id"], i["review_note"]) for i in listed["items"]] == [
        (case.case_id, "Event load, not congestion")
    ]
    again = client.post(url, json={"outcome": "ai_right"}, headers=as_role("admin"))
    assert_error(again, 409, "conflict")
    with db.session() as session:
        assert session.get_one(Disagreement, case.case_id).state == "resolved"
        [event] = audit.search(session, action="disagreement.resolved")
        assert event.after["outcome"] == "human_right"


def test_adoption_report(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database
) -> None:
    now = utcnow()
    with db.session(write=True) as session:
        seed_trust(session, now=now)
        backfill_history(session, now=now, weeks=4)
    response = client.get("/api/v1/adoption?weeks=4", headers=as_role("executive"))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["weeks"] == 4
    network = body["network"]
    assert network["use_cases"] == 4
    assert network["decided"] == network["accepted"] + network["overridden"] + network["rejected"]
    assert network["simulated_share"] == 1.0
    assert 0 < network["acceptance_rate"] < 1
    assert sum(network["use_cases_by_level"].values()) == 4
    assert len(body["use_cases"]) == 4
    first = body["use_cases"][0]
    assert [step["level"] for step in first["ladder"]] == ["L0", "L1", "L2", "L3", "L4"]
    assert sum(step["current"] for step in first["ladder"]) == 1
    assert len(first["decisions_per_week"]) == 4
    assert set(first["reason_codes"]) >= {"wrong_diagnosis", "other"}
    assert first["incidents"]["before"].keys() == {"incidents", "mtta_minutes", "mttr_minutes"}
    error = assert_error(
        client.get("/api/v1/adoption?weeks=0", headers=as_role("viewer")), 422, "invalid_input"
    )
    assert "weeks" in error["message"]


def test_endpoints_are_in_the_openapi_document(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    document = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/disagreements"]
    assert "get" in paths["/api/v1/disagreements/{disagreement_id}"]
    post = paths["/api/v1/disagreements/{disagreement_id}/review"]["post"]
    assert post["x-beacon-scope"] == "act"
    assert "409" in post["responses"]
    assert "get" in paths["/api/v1/adoption"]
    schemas = document["components"]["schemas"]
    assert schemas["DisagreementReviewIn"]["properties"]["outcome"]["enum"] == list(REVIEW_OUTCOMES)
