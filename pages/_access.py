"""Binds page and callback access policies to a Dash app, failing closed at start-up."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import dash
from dash import Dash, html

from services.web.authz import CallbackPolicy, PagePolicy, page_allows, policy_of
from services.web.context import BeaconContext
from services.web.principal import current_principal

_WRAPPED = "beacon_secured"


class AccessPolicyMissing(RuntimeError):
    """A page or callback was registered without declaring who may use it."""


def secure(app: Dash, context: BeaconContext) -> None:
    """Wrap page layouts with role checks and record every callback's policy on `context`."""
    context.pages = _page_policies()
    for page in dash.page_registry.values():
        layout = page.get("layout")
        if callable(layout) and not getattr(layout, _WRAPPED, False):
            page["layout"] = _checked_layout(page["module"], layout, context)
    context.callbacks = _callback_policies(app)


def forbidden(page_name: str, role: str) -> html.Div:
    """What a page shows instead of its content to a role it is not open to."""
    return html.Div(
        className="page-message",
        children=[
            html.H2("Not available to your role"),
            html.P(f"{page_name} is not open to the {role} role. Ask an admin if you need it."),
        ],
    )


def _page_policies() -> list[PagePolicy]:
    policies = []
    for module, page in dash.page_registry.items():
        roles = page.get("roles")
        if roles is None:
            raise AccessPolicyMissing(f"page {module} does not declare roles=...")
        policies.append(
            PagePolicy(
                module=module,
                path=page["path"],
                path_template=page.get("path_template"),
                name=page["name"],
                roles=frozenset(roles),
                kiosk=bool(page.get("kiosk", False)),
                order=page.get("order") or 0,
            )
        )
    return sorted(policies, key=lambda p: p.order)


def _checked_layout(
    module: str, layout: Callable[..., Any], context: BeaconContext
) -> Callable[..., Any]:
    @functools.wraps(layout)
    def checked(**kwargs: Any) -> Any:
        principal = current_principal()
        policy = next(p for p in context.pages if p.module == module)
        if principal is None:
            return forbidden(policy.name, "anonymous")
        if not page_allows(policy, role=principal.role, kiosk=principal.is_kiosk):
            return forbidden(policy.name, principal.role)
        return layout(**kwargs)

    setattr(checked, _WRAPPED, True)
    return checked


def _callback_policies(app: Dash) -> dict[str, CallbackPolicy]:
    policies: dict[str, CallbackPolicy] = {}
    for output, spec in app.callback_map.items():
        if "callback" not in spec:
            continue  # clientside: runs in the browser, never reachable on the server
        policy = policy_of(spec["callback"])
        if policy is None:
            raise AccessPolicyMissing(f"callback for {output} has no @allow(...) policy")
        policies[output] = replace(
            policy, inputs=len(spec.get("inputs", [])), states=len(spec.get("state", []))
        )
    return policies
