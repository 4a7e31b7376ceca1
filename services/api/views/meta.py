"""The API about itself: its OpenAPI document, the caller, and JSON answers for unknown paths."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from services.api.blueprint import api, endpoint
from services.api.schemas.meta import Me, OpenApiDocument
from services.api.security import caller
from services.api.spec import DOCUMENT_KEY
from services.auth import Scope

FALLBACK_ENDPOINT = f"{api.name}.unknown_path"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@api.get("/openapi.json")
@endpoint(scope=Scope.READ, resp=OpenApiDocument, tags=["meta"])
def openapi_document() -> dict[str, Any]:
    """This API's OpenAPI 3.1 document, generated from the code."""
    return current_app.extensions[DOCUMENT_KEY]


@api.get("/me")
@endpoint(scope=Scope.READ, resp=Me, tags=["meta"])
def me() -> Me:
    """Who the API sees: name, kind, role and scopes of the caller."""
    principal = caller()
    return Me.model_validate(
        {
            "name": principal.name,
            "display_name": principal.display_name,
            "kind": principal.kind,
            "role": principal.role,
            "scopes": sorted(principal.scopes),
        }
    )


@api.route("/", defaults={"rest": ""}, methods=_METHODS, strict_slashes=False)
@api.route("/<path:rest>", methods=_METHODS)
def unknown_path(rest: str) -> None:
    """Answer 404 (or 405 for a known path) in the API's shape, not with the console's page."""
    del rest
    allowed = _methods_elsewhere(request.path)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed, description=_wrong_method(allowed))
    raise NotFound(f"no API endpoint at {request.path}; see {api.url_prefix}/openapi.json")


def _methods_elsewhere(path: str) -> list[str]:
    """Methods another API route accepts at `path` (this fallback accepts them all)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            found, _args = adapter.match(path, method=method)
        except HTTPException:
            continue
        if found != FALLBACK_ENDPOINT:
            allowed.append(method)
    return allowed


def _wrong_method(allowed: list[str]) -> str:
    return f"{request.method} is not allowed here; use {', '.join(allowed)}"
