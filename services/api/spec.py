"""The OpenAPI generator: one SpecTree instance, its hooks and the served document."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flask import Flask
from pydantic import BaseModel, ValidationError
from spectree import SecurityScheme, SecuritySchemeData, SpecTree

from services.api.errors import ResponseInvalid, invalid_input
from services.api.schemas.common import ErrorBody
from services.api.security import policy_of

API_PREFIX = "/api/v1"
API_VERSION = "1.0.0"
BEARER = "bearerAuth"
DOCUMENT_KEY = "beacon_api_openapi"

DESCRIPTION = (
    "Beacon's REST API. Authenticate with an API token: `Authorization: Bearer <token>` "
    "(HTTP Basic with the token as password also works, for VES senders). A signed-in "
    "browser session works too. Each endpoint names the scope and roles it needs. Errors "
    'always have the shape `{"error": {"code", "message", "details"}}`. Times are ISO-8601 UTC.'
)


def _component_name(model: Any) -> str:
    # Plain class names make readable component names; API model names are unique by rule.
    return getattr(model, "__name__", str(model))


spec = SpecTree(
    "flask",
    title="Beacon API",
    version=API_VERSION,
    description=DESCRIPTION,
    # Only views decorated through `endpoint` are documented; Dash and page routes are not.
    mode="strict",
    # No Swagger/ReDoc pages: they load scripts from a CDN this network cannot reach.
    page_templates={},
    security_schemes=[
        SecurityScheme(
            name=BEARER,
            data=SecuritySchemeData(
                type="http",
                scheme="bearer",
                description="An API token created by an admin (prefix bkn_a_)",
            ),
        )
    ],
    security={BEARER: []},
    validation_error_model=ErrorBody,
    naming_strategy=_component_name,
    nested_naming_strategy=lambda _parent, child: child,
)


def before_hook(*, locations: dict[str, str]) -> Callable[..., None]:
    """A hook that turns spectree's request validation error into Beacon's 422."""

    def before(_req: Any, _resp: Any, error: Exception | None, *_rest: Any) -> None:
        if isinstance(error, ValidationError):
            raise invalid_input(error, location=locations.get(error.title))

    return before


def after_hook(_req: Any, _resp: Any, error: Exception | None, *_rest: Any) -> None:
    """Refuse to send a response body that does not match its declared model."""
    if error is not None:
        detail = error.errors(include_url=False) if isinstance(error, ValidationError) else error
        raise ResponseInvalid(f"response does not match its model: {detail}")


def locations_of(**models: type[BaseModel] | None) -> dict[str, str]:
    """Model name -> where its data came from, so errors say `query.limit` or `body.name`."""
    return {model.__name__: where for where, model in models.items() if model is not None}


def build_document(server: Flask, *, blueprint: str) -> dict[str, Any]:
    """Generate the OpenAPI document for `server` once and keep it with the app."""
    with server.app_context():
        # Generated eagerly: SpecTree caches the first result and generating it twice at
        # once from two requests would race.
        document = copy.deepcopy(spec.spec)
    _add_policies(document, server, blueprint=blueprint)
    server.extensions[DOCUMENT_KEY] = document
    return document


def _add_policies(document: dict[str, Any], server: Flask, *, blueprint: str) -> None:
    """State each operation's scope and roles in machine-readable `x-beacon-*` fields."""
    for operations in document["paths"].values():
        for operation in operations.values():
            view = server.view_functions[f"{blueprint}.{operation['operationId']}"]
            policy = policy_of(view)
            if policy is not None:
                operation["x-beacon-scope"] = policy.scope.value
                operation["x-beacon-roles"] = sorted(policy.roles)
            raw_body = getattr(view, "beacon_raw_body", None)
            if raw_body is not None:
                operation["requestBody"] = raw_body
