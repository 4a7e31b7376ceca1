"""The ONAP VES collector endpoints: POST /eventListener/v7, /v5 and their /eventBatch.

Compatible with ONAP's collector: 202 with an empty body when accepted, 400 with a VES
`requestError` when refused, 413 over 10 MiB. The request guard has already authenticated
the caller (bearer API token, or HTTP Basic with the token as password); this view adds
the `ingest` scope check. Every 202, 400, 413 and 500 answer leaves the payload (over the
limit: its size) in the database.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from services import audit
from services.auth import Scope
from services.ingest.sources import ves
from services.ingest.sources import ves_errors as errors
from services.ingest.sources.ves_errors import VesError
from services.web.context import beacon
from services.web.principal import Principal, current_principal

blueprint = Blueprint("ves", __name__, url_prefix="/eventListener")
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@blueprint.post("/<version>")
def event(version: str) -> Response:
    """Receive one event (`{"event": {...}}`)."""
    return _receive(version, batch=False)


@blueprint.post("/<version>/eventBatch")
def event_batch(version: str) -> Response:
    """Receive a batch (`{"eventList": [...]}`): one domain (and namespace) per batch."""
    return _receive(version, batch=True)


@blueprint.route("/", defaults={"rest": ""}, methods=_METHODS, strict_slashes=False)
@blueprint.route("/<path:rest>", methods=_METHODS)
def elsewhere(rest: str) -> Response:
    """VES-shaped 404/405 for anything else under /eventListener/."""
    del rest
    parts = request.path.rstrip("/").split("/")
    is_listener = len(parts) in (3, 4) and (len(parts) == 3 or parts[3] == "eventBatch")
    if not is_listener:
        return _answer(errors.not_found())
    response = _answer(errors.method_not_allowed())
    response.headers["Allow"] = "POST"
    return response


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_error: RequestEntityTooLarge) -> Response:
    # Bodies without Content-Length are cut off by the server's own upload limit.
    return _answer(errors.too_large())


@blueprint.errorhandler(500)
def _server_error(_error: Exception) -> Response:
    return _answer(errors.internal_error())


def _receive(version: str, *, batch: bool) -> Response:
    principal = current_principal()
    if principal is None:  # the guard answers first; kept so the view never runs open
        return _answer(errors.unauthorized())
    if Scope.INGEST.value not in principal.scopes:
        _record_refusal(principal)
        return _answer(errors.not_provisioned("VES event ingestion (scope ingest)"))
    context = beacon()
    caller = principal.actor().name
    length = request.content_length
    if length is not None and length > ves.MAX_BODY_BYTES:
        return _reply(
            ves.refuse_oversized(
                context.db, length=length, api_version=version, batch=batch, caller=caller
            )
        )
    body = request.stream.read(ves.MAX_BODY_BYTES + 1)
    if len(body) > ves.MAX_BODY_BYTES:
        return _reply(
            ves.refuse_oversized(
                context.db, length=length, api_version=version, batch=batch, caller=caller
            )
        )
    answer = ves.receive(
        context.db,
        body=body,
        api_version=version,
        batch=batch,
        caller=caller,
        schemas=ves.schema_dir(getattr(context.settings, "ves_schema_dir", None)),
    )
    return _reply(answer)


def _reply(answer: ves.VesAnswer) -> Response:
    if answer.body is None:
        return Response(status=answer.status)
    return _json(answer.body, answer.status)


def _answer(error: VesError) -> Response:
    return _json(error.body(), error.status)


def _json(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _record_refusal(principal: Principal) -> None:
    # A sender without the ingest scope is a misconfigured client worth knowing about.
    with beacon().db.session(write=True) as session:
        audit.record(
            session,
            actor=principal.actor(),
            action="access.denied",
            object_type="ves",
            object_id=f"{request.method} {request.path}"[:100],
            after={"missing": "scope", "required_scope": Scope.INGEST.value},
        )
