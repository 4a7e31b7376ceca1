"""The anomaly endpoints: authentication, scopes, filters, detail and feedback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from anomaly_feed_support import Sample, add_episodes
from api_support import assert_error
from flask.testing import FlaskClient
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import AnomalyFeedback

Headers = dict[str, str]


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session, series=False)


def test_no_token_is_401(client: FlaskClient, sample: Sample) -> None:
    assert_error(client.get("/api/v1/anomalies"), 401, "unauthorized")
    assert_error(client.get(f"/api/v1/anomalies/{sample.spike}"), 401, "unauthorized")
    response = client.post(f"/api/v1/anomalies/{sample.spike}/feedback", json={"label": "expected"})
    assert_error(response, 401, "unauthorized")


def test_list_filters_and_paging(
    client: FlaskClient, as_role: Callable[..., Headers], sample: Sample
) -> None:
    viewer = as_role("viewer")

    def ids(query: str = "") -> list[int]:
        response = client.get(f"/api/v1/anomalies{query}", headers=viewer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    assert ids() == [sample.drop, sample.spike, sample.link_loss, sample.old]
    assert ids("?severity=critical,major") == [sample.drop, sample.spike]
    assert ids("?status=resolved") == [sample.old]
    assert ids("?min_confidence=0.7") == [sample.drop, sample.spike]
    assert ids("?ongoing=true") == [sample.spike]
    assert ids("?suppressed=true") == [sample.link_loss]
    assert ids("?region=South") == [sample.link_loss]
    assert ids("?domain=RAN&kpi=rrc_setup_sr") == [sample.drop]
    assert ids("?element=site-0042%20c1") == [sample.spike, sample.old]
    since = (sample.now - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    assert ids(f"?since={since}") == [sample.spike]
    page = client.get("/api/v1/anomalies?limit=2&offset=1", headers=viewer).get_json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [i["id"] for i in page["items"]] == [sample.spike, sample.link_loss]
    first = page["items"][0]
    assert first["element"]["name"] == "SITE-0042 C1"
    assert first["ongoing"] is True
    assert first["ended_at"] is None
    assert first["data_quality_flags"] == ["late_data"]


def test_bad_filters_are_422_with_a_message(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    viewer = as_role("viewer")
    for query, needle in (
        ("severity=severe", "unknown severity severe"),
        ("status=closed", "unknown status closed"),
        ("min_confidence=2", "min_confidence"),
        ("colour=red", "colour"),
    ):
        error = assert_error(
            client.get(f"/api/v1/anomalies?{query}", headers=viewer), 422, "invalid_input"
        )
        assert needle in error["message"], error


def test_detail_and_not_found(
    client: FlaskClient, as_role: Callable[..., Headers], sample: Sample
) -> None:
    viewer = as_role("viewer")
    body = client.get(f"/api/v1/anomalies/{sample.spike}", headers=viewer).get_json()
    assert body["explanation"]["summary"].startswith("Downlink PRB")
    assert body["data_quality"]["factor"] == 0.9
    assert body["group"] == [sample.drop]
    assert body["feedback"] == []
    assert body["incident"] is None
    error = assert_error(client.get("/api/v1/anomalies/9999", headers=viewer), 404, "not_found")
    assert "9999" in error["message"]


def test_feedback_created_and_audited(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database, sample: Sample
) -> None:
    operator = as_role("operator")
    response = client.post(
        f"/api/v1/anomalies/{sample.drop}/feedback",
        json={"label": "expected", "note": "planned lock"},
        headers=operator,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["label"], body["note"], body["anomaly_id"]) == (
        "expected",
        "planned lock",
        sample.drop,
    )
    with db.session() as session:
        event = audit.search(session, action="anomaly.feedback")[0]
        assert event.actor == "api:test-operator"
        assert session.scalar(select(AnomalyFeedback.label)) == "expected"
    detail = client.get(f"/api/v1/anomalies/{sample.drop}", headers=operator).get_json()
    assert [f["label"] for f in detail["feedback"]] == ["expected"]
    assert detail["history"][0]["action"] == "anomaly.feedback"


def test_feedback_refusals(
    client: FlaskClient, as_role: Callable[..., Headers], db: Database, sample: Sample
) -> None:
    url = f"/api/v1/anomalies/{sample.spike}/feedback"
    body = {"label": "not_anomaly"}
    # Read-only roles, and an operator token limited to `read`, may not write.
    assert_error(client.post(url, json=body, headers=as_role("viewer")), 403, "forbidden")
    assert_error(client.post(url, json=body, headers=as_role("executive")), 403, "forbidden")
    error = assert_error(
        client.post(url, json=body, headers=as_role("operator", scopes=["read"])), 403, "forbidden"
    )
    assert error["details"]["missing"] == "scope"
    operator = as_role("operator")
    bad = client.post(url, json={"label": "meh"}, headers=operator)
    assert_error(bad, 422, "invalid_input")
    long = client.post(url, json={"label": "expected", "note": "x" * 2001}, headers=operator)
    assert_error(long, 422, "invalid_input")
    extra = client.post(url, json={"label": "expected", "user": "bob"}, headers=operator)
    assert_error(extra, 422, "invalid_input")
    missing = client.post("/api/v1/anomalies/9999/feedback", json=body, headers=operator)
    assert_error(missing, 404, "not_found")
    with db.session() as session:
        assert session.scalar(select(AnomalyFeedback.id)) is None


def test_endpoints_are_in_the_openapi_document(
    client: FlaskClient, as_role: Callable[..., Headers]
) -> None:
    document = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/anomalies"]
    assert "get" in paths["/api/v1/anomalies/{anomaly_id}"]
    post = paths["/api/v1/anomalies/{anomaly_id}/feedback"]["post"]
    assert post["x-beacon-scope"] == "act"
    assert "201" in post["responses"]
