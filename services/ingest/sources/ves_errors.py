"""VES error answers: the `requestError` bodies the ONAP collector sends, and refusals.

Message ids and texts follow ONAP's collector (`ApiException`): SVC0002 for bad JSON or a
schema failure, SVC0001 for batch rules, SVC2006 for a missing mandatory input, SVC2004 and
SVC2000 for stndDefined schema references, POL2000/POL1009 for policy refusals. Where
ONAP's text carries no variables Beacon appends `%1` with what exactly was wrong, so a
sender's log says which field to fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SERVICE = "serviceException"
POLICY = "policyException"
MAX_DETAIL = 300


@dataclass(frozen=True)
class VesError:
    """One VES error answer: HTTP status, exception kind, message id, text and variables."""

    status: int
    message_id: str
    text: str
    variables: tuple[str, ...] = ()
    kind: str = SERVICE

    def body(self) -> dict[str, Any]:
        """The JSON body, `{"requestError": {kind: {messageId, text, variables}}}`."""
        detail: dict[str, Any] = {"messageId": self.message_id, "text": self.text}
        if self.variables:
            detail["variables"] = list(self.variables)
        return {"requestError": {self.kind: detail}}

    def sentence(self) -> str:
        """The text with its variables filled in (what the quarantine keeps as the reason)."""
        text = self.text
        # Highest index first, so %1 does not eat the start of %10.
        for index in range(len(self.variables), 0, -1):
            text = text.replace(f"%{index}", self.variables[index - 1])
        return text


@dataclass
class VesRefusal(Exception):
    """A payload refused as a whole: the reason code Beacon keeps and the VES answer."""

    reason_code: str
    error: VesError
    field: str | None = None
    # What is known about the payload when it was refused, for the quarantine record.
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.error.sentence()}"


def clip(text: object, limit: int = MAX_DETAIL) -> str:
    """Text safe to echo back: one line, NUL-free, at most `limit` characters."""
    flat = " ".join(str(text).replace("\x00", "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def malformed(detail: str) -> VesError:
    return VesError(400, "SVC0002", "Incorrect JSON payload: %1", (clip(detail),))


def schema_failure(detail: str) -> VesError:
    return VesError(
        400, "SVC0002", "Bad Parameter (JSON does not conform to schema): %1", (clip(detail),)
    )


def unsupported_version(version: str) -> VesError:
    return VesError(400, "SVC0002", "API version %1 is not supported", (clip(version, 40),))


def missing_input(path: str, *, empty: bool) -> VesError:
    state = "is empty in request" if empty else "is missing from request"
    return VesError(400, "SVC2006", f"Mandatory input %1 %2 {state}", ("attribute", clip(path)))


def mixed_domains() -> VesError:
    return VesError(400, "SVC0001", "Different value of domain fields in Batch Event")


def mixed_namespaces() -> VesError:
    return VesError(
        400,
        "SVC0001",
        "Value of stndDefinedNamespace fields have to be same when domain is stndDefined",
    )


def no_local_schema(reference: str) -> VesError:
    del reference  # ONAP's answer names the attribute, not the value
    return VesError(
        400,
        "SVC2004",
        "Invalid input value for %1 %2: %3",
        (
            "attribute",
            "event.stndDefinedFields.schemaReference",
            "Referred external schema not present in schema repository",
        ),
    )


def _service_error(message: str, status: int) -> VesError:
    return VesError(
        status,
        "SVC2000",
        "The following service error occurred: %1. Error code is %2",
        (message, str(status)),
    )


def wrong_internal_reference() -> VesError:
    return _service_error(
        "event.stndDefinedFields.schemaReference value does not correspond to any external "
        "event schema file in externalSchema repo",
        400,
    )


def stnd_defined_invalid() -> VesError:
    return _service_error(
        "event.stndDefinedFields.data invalid against event.stndDefinedFields.schemaReference",
        400,
    )


def too_large() -> VesError:
    return _service_error("Request Entity Too Large", 413)


def internal_error() -> VesError:
    return _service_error("Internal Server Error", 500)


def not_found() -> VesError:
    return _service_error("Not Found", 404)


def method_not_allowed() -> VesError:
    return _service_error("Method Not Allowed", 405)


def unauthorized() -> VesError:
    return VesError(401, "POL2000", "Unauthorized user", kind=POLICY)


def not_provisioned(what: str) -> VesError:
    return VesError(403, "POL1009", "User has not been provisioned for %1", (what,), kind=POLICY)
