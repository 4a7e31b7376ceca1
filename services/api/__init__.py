"""REST API under /api/v1: bearer-token auth, pydantic models, OpenAPI generated from code."""

from __future__ import annotations

from flask import Flask

from services.api import views
from services.api.blueprint import api
from services.api.security import policy_of
from services.api.spec import build_document
from services.api.ves import blueprint as ves_blueprint

__all__ = ["init_api"]


def init_api(server: Flask) -> None:
    """Register the API blueprint on `server` and build its OpenAPI document."""
    server.register_blueprint(api)
    server.register_blueprint(ves_blueprint)
    _refuse_unguarded(server)
    build_document(server, blueprint=api.name)


def _refuse_unguarded(server: Flask) -> None:
    """Fail at start-up, not in production, when an API view declares no policy."""
    prefix = f"{api.name}."
    unguarded = [
        name
        for name, view in server.view_functions.items()
        if name.startswith(prefix)
        and name != views.meta.FALLBACK_ENDPOINT
        and policy_of(view) is None
    ]
    if unguarded:
        raise RuntimeError(f"API endpoints without an access policy: {', '.join(unguarded)}")
