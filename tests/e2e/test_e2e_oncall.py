"""On call and incidents in a real browser: names on /oncall, an incident worked to resolved."""

from __future__ import annotations

import pytest
from dash.testing.composite import DashComposite
from e2e_support import (
    DESK,
    WALL,
    ServerErrors,
    clear_problems,
    full_page_screenshot,
    open_page,
    page_problems,
    screenshot,
    sign_in,
)
from testkit import add_user

from services import audit
from services.db import Database
from services.db.models import Incident, utcnow
from services.incidents import lifecycle
from services.oncall.resolve import oncall_board

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def on_call_now(e2e_db: Database) -> dict[str, str]:
    """Who the demo seed (run by the simulator's prepare step) has on call, by domain."""
    with e2e_db.session() as session:
        board = oncall_board(session, now=utcnow())
    names = {a.subject_key: a.oncall.person.name for a in board if a.subject_kind == "domain"}
    assert set(names) == {"RAN", "Transport", "Core"}
    names["AI"] = next(a.oncall.person.name for a in board if a.subject_key == "detector")
    return names


def test_oncall_page_shows_who_is_on_call(
    dash_duo: DashComposite, server_errors: ServerErrors, on_call_now: dict[str, str]
) -> None:
    """Admin sees the people on call per domain and for the AI, the calendar and the editor."""
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "oncall-desk"), (WALL, "oncall-1920")):
        open_page(dash_duo, "/oncall", size=size)
        dash_duo.wait_for_element("#oncall-now-ran")
        dash_duo.wait_for_element("#oncall-calendar .main-svg")
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "oncall-desk-full")
    for domain, person in on_call_now.items():
        target = "#oncall-ai" if domain == "AI" else f"#oncall-now-{domain.lower()}"
        dash_duo.wait_for_contains_text(target, person)
    assert dash_duo.find_element("#oncall-ownership-table").text.count("AI platform") >= 3
    assert "RAN North operations" in dash_duo.find_element("#oncall-escalation").text
    # Bars of the rotation calendar are SVG paths, never WebGL.
    assert not dash_duo.driver.find_elements("css selector", "#oncall-calendar canvas.gl-canvas")
    assert dash_duo.find_element("#oncall-override-add").is_displayed()  # admins edit
    assert not page_problems(dash_duo, server_errors)


def test_wall_tile_shows_who_is_on_call(
    dash_duo: DashComposite, server_errors: ServerErrors, on_call_now: dict[str, str]
) -> None:
    clear_problems(dash_duo, server_errors)
    open_page(dash_duo, "/?kiosk=1", size=WALL)
    for person in on_call_now.values():
        dash_duo.wait_for_contains_text("#overview-wall-oncall", person)
    screenshot(dash_duo, "wall-oncall-1920x1080")
    assert not page_problems(dash_duo, server_errors)


def test_operator_acknowledges_and_resolves_an_incident(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database
) -> None:
    """From the list to the incident; acknowledge, then resolve with the required note."""
    with e2e_db.session(write=True) as session:
        number = lifecycle.create_manual(
            session,
            title="Backhaul loss on ring 7",
            severity="sev2",
            actor=audit.SYSTEM,
            domain="Transport",
            summary="Four sites behind ring 7 unreachable.",
        ).id
    add_user(e2e_db, "e2e-oncall-operator", "operator")
    sign_in(dash_duo, "e2e-oncall-operator", "user-pass-12345", landing="/incidents")
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "incidents-desk"), (WALL, "incidents-1920")):
        open_page(dash_duo, "/incidents", size=size)
        dash_duo.wait_for_element(f'#incidents-grid .ag-row[row-id="{number}"]')
        screenshot(dash_duo, name)
    link = dash_duo.wait_for_element(
        f'#incidents-grid .ag-row[row-id="{number}"] a[href="/incidents/{number}"]'
    )
    link.click()
    dash_duo.wait_for_contains_text("#incident-title", "Backhaul loss on ring 7")
    dash_duo.wait_for_contains_text("#incident-status", "triggered")
    dash_duo.find_element("#incident-ack").click()
    dash_duo.wait_for_contains_text("#incident-message", "Acknowledged")
    dash_duo.wait_for_contains_text("#incident-status", "acknowledged")
    dash_duo.wait_for_contains_text("#incident-timeline", "Acknowledged by e2e-oncall-operator")
    for size, name in ((DESK, "incident-detail-desk"), (WALL, "incident-detail-1920")):
        open_page(dash_duo, f"/incidents/{number}", size=size)
        dash_duo.wait_for_contains_text("#incident-status", "acknowledged")
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "incident-detail-desk-full")
    open_page(dash_duo, f"/incidents/{number}", size=DESK)
    dash_duo.find_element("#incident-resolve").click()
    dash_duo.wait_for_contains_text("#incident-message", "Write a resolution note")
    dash_duo.find_element("#incident-resolution").send_keys("Ring 7 fibre spliced")
    dash_duo.find_element("#incident-resolve").click()
    dash_duo.wait_for_contains_text("#incident-status", "resolved")
    with e2e_db.session() as session:
        row = session.get_one(Incident, number)
        assert (row.status, row.acknowledged_by) == ("resolved", "e2e-oncall-operator")
    assert not page_problems(dash_duo, server_errors)


def test_read_only_roles_get_no_editors_and_no_refused_callbacks(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database
) -> None:
    """A viewer reads all three pages; no editor callback fires (or is refused) behind them."""
    with e2e_db.session(write=True) as session:
        number = lifecycle.create_manual(
            session, title="Read-only check", severity="sev4", actor=audit.SYSTEM, domain="Core"
        ).id
    add_user(e2e_db, "e2e-oncall-viewer", "viewer")
    sign_in(dash_duo, "e2e-oncall-viewer", "user-pass-12345", landing="/oncall")
    clear_problems(dash_duo, server_errors)
    for path, marker in (
        ("/oncall", "#oncall-now-core"),
        ("/incidents", f'#incidents-grid .ag-row[row-id="{number}"]'),
        (f"/incidents/{number}", "#incident-timeline"),
    ):
        open_page(dash_duo, path, size=DESK)
        dash_duo.wait_for_element(marker)
        assert not dash_duo.driver.find_elements(
            "css selector", "#oncall-override-add, #incidents-new-create, #incident-ack"
        )
        assert not page_problems(dash_duo, server_errors), path
    screenshot(dash_duo, "incident-detail-viewer-desk")
