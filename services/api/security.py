"""Who may call an endpoint: the roles and the scope each one declares, checked per request."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import request

from services import audit
from services.auth import ALL_ROLES, Role, Scope
from services.errors import Forbidden, Unauthorized
from services.web.context import beacon
from services.web.principal import Principal, current_principal

POLICY_ATTRIBUTE = "beacon_api_policy"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Policy:
    """An endpoint's requirement: one scope, and a role among `roles`."""

    scope: Scope
    roles: frozenset[str] = frozenset(ALL_ROLES)

    def describe(self) -> str:
        """The requirement in words, for the OpenAPI description."""
        roles = "any role" if self.roles >= ALL_ROLES else "role " + " or ".join(sorted(self.roles))
        kiosk = " Wall-screen (kiosk) sessions may call it." if self.allows_kiosk else ""
        return f"Requires scope `{self.scope.value}` and {roles}.{kiosk}"

    @property
    def allows_kiosk(self) -> bool:
        """Wall screens are read-only viewers."""
        return self.scope == Scope.READ and Role.VIEWER in self.roles


def caller() -> Principal:
    """The principal of this request; Unauthorized when there is none."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized("send an API token: Authorization: Bearer …")
    return principal


def authorize(policy: Policy) -> Principal:
    """The caller, when it satisfies `policy`; otherwise Forbidden naming what is missing."""
    principal = caller()
    missing = _missing(policy, principal)
    if missing is None:
        return principal
    message, details = missing
    if request.method not in SAFE_METHODS:
        _record_refusal(principal, details)
    raise Forbidden(message, details=details)


def attach(fn: Callable[..., Any], policy: Policy) -> None:
    """Mark a view with its policy so start-up checks can find unguarded endpoints."""
    setattr(fn, POLICY_ATTRIBUTE, policy)


def policy_of(fn: Callable[..., Any]) -> Policy | None:
    """The policy declared on a view, if any."""
    return getattr(fn, POLICY_ATTRIBUTE, None)


def _missing(policy: Policy, principal: Principal) -> tuple[str, dict[str, Any]] | None:
    details: dict[str, Any] = {
        "required_scope": policy.scope.value,
        "required_roles": sorted(policy.roles),
        "role": principal.role,
        "scopes": sorted(principal.scopes),
    }
    if principal.is_kiosk and policy.scope != Scope.READ:
        return "wall screens are read-only", {**details, "missing": "kiosk_read_only"}
    if principal.role not in policy.roles:
        wanted = " or ".join(sorted(policy.roles))
        return (
            f"role {principal.role} may not call this endpoint; it needs role {wanted}",
            {**details, "missing": "role"},
        )
    if policy.scope not in principal.scopes:
        return (
            f"missing scope {policy.scope.value!r}; this {principal.kind} holds "
            f"{', '.join(sorted(principal.scopes)) or 'no scopes'}",
            {**details, "missing": "scope"},
        )
    return None


def _record_refusal(principal: Principal, details: dict[str, Any]) -> None:
    # A refused state change is worth knowing about: a crafted request or a misconfigured client.
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    with beacon().db.session(write=True) as session:
        audit.record(
            session,
            actor=principal.actor(),
            action="access.denied",
            object_type="api",
            object_id=f"{request.method} {rule}"[:100],
            after={"missing": details["missing"], "required_scope": details["required_scope"]},
        )


def require_roles(roles: Iterable[str]) -> frozenset[str]:
    """Roles as a frozenset, refusing names that are not roles (a typo would lock people out)."""
    chosen = frozenset(roles)
    unknown = chosen - ALL_ROLES
    if unknown or not chosen:
        raise ValueError(f"not roles: {sorted(unknown) or 'none given'}")
    return chosen
