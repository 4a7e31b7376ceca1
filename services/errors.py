"""Named domain errors: services raise them; callbacks, API views and the CLI translate them."""

from __future__ import annotations


class BeaconError(Exception):
    """Base of every domain error; `status` is the HTTP status the API answers with."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(BeaconError):
    status = 422
    code = "invalid_input"


class NotFound(BeaconError):
    status = 404
    code = "not_found"


class Conflict(BeaconError):
    status = 409
    code = "conflict"


class Forbidden(BeaconError):
    status = 403
    code = "forbidden"


class Unauthorized(BeaconError):
    status = 401
    code = "unauthorized"
