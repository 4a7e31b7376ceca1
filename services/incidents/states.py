"""The incident status machine: triggered -> acknowledged -> mitigated -> resolved."""

from __future__ import annotations

from services.audit import Actor
from services.auth import OPERATE_ROLES
from services.errors import Conflict, Forbidden, InvalidInput

STATUSES = ("triggered", "acknowledged", "mitigated", "resolved")
OPEN_STATES = ("triggered", "acknowledged", "mitigated")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
ORIGINS = ("anomaly", "alarm", "manual", "heartbeat")
# Skipping ahead is allowed (a false alarm is resolved straight away); going back is not.
TRANSITIONS: dict[str, frozenset[str]] = {
    "triggered": frozenset({"acknowledged", "mitigated", "resolved"}),
    "acknowledged": frozenset({"mitigated", "resolved"}),
    "mitigated": frozenset({"resolved"}),
    "resolved": frozenset(),
}


class IllegalTransition(Conflict):
    """The incident's status cannot move that way (e.g. acknowledging a resolved incident)."""

    code = "illegal_transition"


class ResolutionNoteRequired(InvalidInput):
    """Resolving needs a note saying what happened and what fixed it."""

    code = "resolution_note_required"


def check_transition(*, incident_id: int, current: str, target: str) -> None:
    """Raise IllegalTransition unless `current` may move to `target`."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(
            f"Incident #{incident_id} is {current}; it cannot become {target}.",
            details={"from": current, "to": target},
        )


def require_responder(actor: Actor) -> None:
    """Operators, engineers, admins and Beacon itself act on incidents; others only read."""
    if actor.kind == "system":
        return
    if actor.kind == "kiosk":
        raise Forbidden("Wall screens are read-only.")
    if actor.role not in OPERATE_ROLES:
        raise Forbidden(
            f"The {actor.role or 'unknown'} role cannot act on incidents; "
            "operators, engineers and admins can."
        )


def check_severity(severity: str) -> str:
    """The severity if known, else InvalidInput."""
    if severity not in SEVERITIES:
        raise InvalidInput(f"Choose a severity: {', '.join(SEVERITIES)}.")
    return severity
