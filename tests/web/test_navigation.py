"""The top bar: pages grouped into menus, single-entry groups shown as plain links."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask.testing import FlaskClient

from components.shell import NavItem, nav_entries


def _ids(component: object) -> list[str]:
    found = []
    stack = [component]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if getattr(node, "id", None):
            found.append(node.id)
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str):
            stack.append(children)
    return sorted(found)


def test_groups_become_menus_in_page_order() -> None:
    nav = [
        NavItem("Overview", "/"),
        NavItem("Anomalies", "/anomalies", "Network"),
        NavItem("Forecasts", "/forecasts", "Network"),
        NavItem("On-call", "/oncall", "Operations"),
    ]
    entries = nav_entries(nav)
    assert [getattr(e, "id", None) for e in entries] == ["nav-overview", None, "nav-on-call"]
    menu = entries[1]
    assert menu.className == "nav-group"
    assert _ids(menu) == ["nav-anomalies", "nav-forecasts", "nav-group-network"]


def test_layout_menus_follow_the_role(client_as: Callable[[str], FlaskClient]) -> None:
    viewer = json.dumps(client_as("viewer").get("/_dash-layout").get_json())
    admin = json.dumps(client_as("admin").get("/_dash-layout").get_json())
    assert "nav-group-system" in admin
    assert "nav-group-system" not in viewer  # neither Audit nor Admin is the viewer's
    for group in ("nav-group-network", "nav-group-operations", "nav-group-ai-oversight"):
        assert group in admin
