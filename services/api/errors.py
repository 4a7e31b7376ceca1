"""Errors of the API in one shape: domain errors, HTTP errors and anything unexpected."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Response, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from services.db.engine import database_unavailable
from services.errors import BeaconError, InvalidInput
from services.web.responses import from_domain_error, json_error

log = logging.getLogger(__name__)


class UnsupportedMediaType(BeaconError):
    status = 415
    code = "unsupported_media_type"


class MalformedBody(BeaconError):
    status = 400
    code = "malformed_body"


class PayloadTooLarge(BeaconError):
    status = 413
    code = "payload_too_large"


class ResponseInvalid(Exception):
    """A view produced a body its declared response model refuses: a server bug."""


def invalid_input(error: ValidationError, *, location: str | None) -> InvalidInput:
    """A pydantic error as InvalidInput whose details list every problem."""
    problems = [_problem(item, location) for item in error.errors(include_url=False)]
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(f"{where}: {first['msg']}{more}", details=problems)


def install_handlers(blueprint: Blueprint) -> None:
    """Answer every error raised in the blueprint's views in the Beacon error shape."""
    blueprint.register_error_handler(BeaconError, from_domain_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(Exception, _unexpected)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
    response = json_error(status, code, error.description or error.name or "error")
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods or [])
    return response


def _unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return _http_error(error)
    if database_unavailable(error):
        from services.web import degraded  # the web package imports this module

        return degraded()
    # The reference ties the client's answer to the log line without exposing the traceback.
    reference = secrets.token_hex(6)
    log.exception("API error %s in %s %s", reference, request.method, request.path)
    return json_error(
        500,
        "internal_error",
        "the server failed to handle this request; it has been logged",
        {"reference": reference},
    )


def _problem(item: Any, location: str | None) -> dict[str, Any]:
    loc = [location, *item["loc"]] if location else list(item["loc"])
    # The input itself is not echoed: it may hold a secret the caller mistyped.
    return {"loc": loc, "msg": item["msg"], "type": item["type"]}
