"""Every API error answers in one shape: validation, unknown paths, methods, server faults."""

from __future__ import annotations

import logging

import pytest
from api_support import assert_error

from services.api.views import inventory


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-5"])
def test_bad_limit_is_422_with_pydantic_details(client, admin, limit) -> None:
    response = client.get(f"/api/v1/elements?limit={limit}", headers=admin)
    error = assert_error(response, 422, "invalid_input")
    assert error["message"].startswith("query.limit: ")
    [problem] = error["details"]
    assert problem["loc"] == ["query", "limit"]
    assert set(problem) == {"loc", "msg", "type"}


def test_several_problems_are_all_listed(client, admin) -> None:
    response = client.get("/api/v1/elements?limit=0&offset=-1&new=maybe", headers=admin)
    error = assert_error(response, 422, "invalid_input")
    assert {tuple(p["loc"]) for p in error["details"]} == {
        ("query", "limit"),
        ("query", "offset"),
        ("query", "new"),
    }
    assert "(and 2 more)" in error["message"]


def test_unknown_query_parameter_is_refused(client, admin) -> None:
    error = assert_error(
        client.get("/api/v1/elements?regoin=North", headers=admin), 422, "invalid_input"
    )
    assert error["details"][0]["type"] == "extra_forbidden"
    assert error["details"][0]["loc"] == ["query", "regoin"]


def test_audit_window_must_be_ordered(client, admin) -> None:
    response = client.get(
        "/api/v1/audit?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", headers=admin
    )
    error = assert_error(response, 422, "invalid_input")
    assert "since must be earlier than until" in error["message"]


def test_bad_timestamp_is_422(client, admin) -> None:
    error = assert_error(
        client.get("/api/v1/audit?since=yesterday", headers=admin), 422, "invalid_input"
    )
    assert error["details"][0]["loc"] == ["query", "since"]


def test_missing_body_field_is_422_located_in_body(client, admin) -> None:
    response = client.post("/api/v1/tokens/api", json={"name": "collector"}, headers=admin)
    error = assert_error(response, 422, "invalid_input")
    assert error["details"][0]["loc"] == ["body", "role"]
    assert error["details"][0]["type"] == "missing"


def test_unknown_body_field_is_422(client, admin) -> None:
    response = client.post("/api/v1/tokens/kiosk", json={"name": "w", "admin": True}, headers=admin)
    assert_error(response, 422, "invalid_input")


def test_body_that_is_not_json_is_415(client, admin) -> None:
    response = client.post(
        "/api/v1/tokens/kiosk", data="name=wall", content_type="text/plain", headers=admin
    )
    assert_error(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(client, admin) -> None:
    response = client.post(
        "/api/v1/tokens/kiosk", data="{name:", content_type="application/json", headers=admin
    )
    assert_error(response, 400, "malformed_body")


def test_empty_body_reports_the_missing_fields(client, admin) -> None:
    response = client.post("/api/v1/tokens/kiosk", headers=admin)
    error = assert_error(response, 422, "invalid_input")
    assert error["details"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    "method_path",
    [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v1"),
        ("GET", "/api/v1/"),
        ("POST", "/api/v1/elements/42/children"),
        ("DELETE", "/api/v1/tokens/nonsense/1"),
        ("DELETE", "/api/v1/tokens/api/not-a-number"),
    ],
)
def test_unknown_path_is_404_in_the_error_shape(client, admin, method_path) -> None:
    method, path = method_path
    error = assert_error(client.open(path, method=method, headers=admin), 404, "not_found")
    assert "/api/v1/openapi.json" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/api/v1/me", "GET"),
        ("DELETE", "/api/v1/elements", "GET"),
        ("GET", "/api/v1/tokens/kiosk", "POST"),
        ("PUT", "/api/v1/tokens/api/3", "DELETE"),
    ],
)
def test_wrong_method_is_405_naming_the_allowed_ones(client, admin, method, path, allowed) -> None:
    response = client.open(path, method=method, headers=admin)
    error = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allowed
    assert allowed in error["message"]


def test_unexpected_exception_is_500_without_leaking(client, admin, monkeypatch, caplog) -> None:
    def explode(_session):
        raise RuntimeError("password=hunter2 in a stack frame")

    monkeypatch.setattr(inventory, "source_freshness", explode)
    with caplog.at_level(logging.ERROR, logger="services.api.errors"):
        response = client.get("/api/v1/sources", headers=admin)
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    reference = error["details"]["reference"]
    assert any(reference in record.getMessage() for record in caplog.records)


def test_response_not_matching_its_model_is_500(client, admin, monkeypatch) -> None:
    # A view bug that produces a malformed body must not reach the client as if valid.
    monkeypatch.setattr(inventory, "SourceList", lambda items: {"items": "not a list"})
    response = client.get("/api/v1/sources", headers=admin)
    assert_error(response, 500, "internal_error")


def test_domain_errors_keep_their_status(client, admin) -> None:
    error = assert_error(client.delete("/api/v1/tokens/kiosk/999", headers=admin), 404, "not_found")
    assert error["message"] == "no kiosk token with id 999"
