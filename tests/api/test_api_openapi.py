"""The OpenAPI document: valid OpenAPI 3, complete, secured, generated from the code."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from services.api import views
from services.api.blueprint import api
from services.api.security import policy_of

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def document(client, as_role) -> dict:
    response = client.get("/api/v1/openapi.json", headers=as_role("viewer"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _openapi_path(rule: str) -> str:
    # /tokens/<any(kiosk, api):kind>/<int:token_id> -> /tokens/{kind}/{token_id}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_document_is_valid_openapi_3(document) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Beacon API"


def test_every_api_rule_is_documented(server, document) -> None:
    rules = [
        rule
        for rule in server.url_map.iter_rules()
        if rule.rule.startswith("/api/v1") and rule.endpoint != views.meta.FALLBACK_ENDPOINT
    ]
    assert len(rules) >= 12
    for rule in rules:
        path = _openapi_path(rule.rule)
        assert path in document["paths"], path
        for method in (rule.methods or set()) & HTTP_METHODS:
            assert method.lower() in document["paths"][path], f"{method} {path}"


def test_only_api_paths_are_documented(document) -> None:
    assert all(path.startswith("/api/v1/") for path in document["paths"])


def test_every_operation_requires_a_bearer_token(document) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"bearerAuth": []}], f"{method} {path}"


def test_operations_state_their_policy(server, document) -> None:
    operation_ids = []
    for operations in document["paths"].values():
        for operation in operations.values():
            operation_ids.append(operation["operationId"])
            policy = policy_of(server.view_functions[f"{api.name}.{operation['operationId']}"])
            assert operation["x-beacon-scope"] == policy.scope.value
            assert operation["x-beacon-roles"] == sorted(policy.roles)
            assert f"scope `{policy.scope.value}`" in operation["description"]
            assert operation["summary"]
            for code in ("401", "403", "422"):
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert len(operation_ids) == len(set(operation_ids))


def test_models_are_component_schemas(document) -> None:
    schemas = document["components"]["schemas"]
    for name in ("ErrorBody", "Me", "KpiList", "ElementPage", "AuditPage", "ApiTokenCreate"):
        assert name in schemas, name
    elements = document["paths"]["/api/v1/elements"]["get"]
    assert elements["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ElementPage"
    }
    params = {p["name"]: p for p in elements["parameters"]}
    assert set(params) == {
        "limit",
        "offset",
        "element_type",
        "domain",
        "region",
        "vendor",
        "q",
        "new",
    }
    assert params["limit"]["schema"]["maximum"] == 1000
    assert all(p["in"] == "query" for p in params.values())
    body = document["paths"]["/api/v1/tokens/api"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiTokenCreate"
    }
    created = document["paths"]["/api/v1/tokens/api"]["post"]["responses"]
    assert "201" in created
    assert "200" not in created


def test_no_documentation_pages_that_need_a_cdn(server, client, as_role) -> None:
    rules = [rule.rule for rule in server.url_map.iter_rules()]
    assert not [rule for rule in rules if re.search("swagger|redoc|scalar|apidoc", rule)]
    response = client.get("/api/v1/docs", headers=as_role("viewer"))
    assert response.status_code == 404


def test_document_needs_credentials(client) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 401
