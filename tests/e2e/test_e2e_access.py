"""Who sees what in the browser: admin changes, viewers refused, kiosk wall screens, sign-out."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from dash.testing.composite import DashComposite
from e2e_support import (
    WALL,
    ServerErrors,
    clear_problems,
    page_problems,
    screenshot,
    set_viewport,
    sign_in,
    visible,
    wait_rendered,
)
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait
from testkit import ADMIN_PASSWORD, USER_PASSWORD, add_user

from services import audit, auth
from services.db import Database

pytestmark = pytest.mark.browser

NEW_USER = "olga.ops"
CLOCK = re.compile(r"^\d{2}:\d{2}:\d{2}$")


def test_admin_creates_a_user_and_a_kiosk_link(
    dash_duo: DashComposite, e2e_db: Database, server_errors: ServerErrors
) -> None:
    """The admin forms create a user (listed and audited) and a wall-screen link."""
    clear_problems(dash_duo, server_errors)
    sign_in(dash_duo, "admin", ADMIN_PASSWORD, landing="/admin")

    dash_duo.find_element("#admin-new-username").send_keys(NEW_USER)
    dash_duo.find_element("#admin-new-display").send_keys("Olga Operator")
    dash_duo.select_dcc_dropdown("#admin-new-role", value="operator")
    dash_duo.wait_for_text_to_equal("#admin-new-role-value", "operator")
    dash_duo.find_element("#admin-new-password").send_keys("olga-pass-12345")
    dash_duo.find_element("#admin-create-user").click()

    dash_duo.wait_for_contains_text(
        "#admin-user-message", f"User {NEW_USER} created with role operator."
    )
    _wait_for_grid_row(dash_duo, "admin-users", "username", NEW_USER)
    row = _grid_row(dash_duo, "admin-users", "username", NEW_USER)
    assert row["display_name"] == "Olga Operator"
    assert row["role"] == "operator"
    assert dash_duo.find_element("#admin-new-password").get_attribute("value") == ""

    with e2e_db.session() as session:
        user_id = auth.get_user(session, username=NEW_USER).id
    # In-app navigation, no page load: open the System menu, then follow its link.
    dash_duo.find_element("#nav-group-system").click()
    dash_duo.find_element("#nav-audit").click()
    dash_duo.wait_for_element("#audit-grid")
    wait_rendered(dash_duo)
    dash_duo.find_element("#audit-text").send_keys("user.create", Keys.ENTER)
    _wait_for_grid_row(dash_duo, "audit-grid", "object", f"user {user_id}")
    event = _grid_row(dash_duo, "audit-grid", "object", f"user {user_id}")
    assert event["action"] == "user.create"
    assert event["actor"] == "admin"
    dash_duo.find_element(f'#audit-grid .ag-row[row-id="{event["seq"]}"] .ag-cell').click()
    dash_duo.wait_for_contains_text("#audit-detail", f'"username": "{NEW_USER}"')

    dash_duo.find_element("#nav-group-system").click()
    dash_duo.find_element("#nav-admin").click()
    dash_duo.wait_for_element("#admin-kiosk-name")
    wait_rendered(dash_duo)
    dash_duo.find_element("#admin-kiosk-name").send_keys("NOC wall 2")
    dash_duo.find_element("#admin-create-kiosk").click()
    dash_duo.wait_for_contains_text("#admin-kiosk-url", "/kiosk/bkn_k_")
    url = dash_duo.find_element("#admin-kiosk-url").text
    assert url.startswith(dash_duo.server_url + "/kiosk/bkn_k_"), url
    _wait_for_grid_row(dash_duo, "admin-kiosk-tokens", "name", "NOC wall 2")
    assert not page_problems(dash_duo, server_errors)


def test_viewer_cannot_reach_admin(
    dash_duo: DashComposite, e2e_db: Database, server_errors: ServerErrors
) -> None:
    """A viewer's navigation omits Admin and Audit, and /admin is refused by the server."""
    add_user(e2e_db, "vera.viewer", "viewer")
    clear_problems(dash_duo, server_errors)
    sign_in(dash_duo, "vera.viewer", USER_PASSWORD)
    links = dash_duo.driver.find_elements("css selector", "#shell-nav a")
    nav = {link.get_attribute("textContent") for link in links}
    assert {"Overview", "Anomalies", "Forecasts"} <= nav
    assert not nav & {"Data health", "Audit", "Admin"}  # not the viewer's
    assert dash_duo.find_element(".role-badge").text.lower() == "viewer"
    assert not page_problems(dash_duo, server_errors)

    # Routed inside the app, as a hand-typed link would be: the layout is refused.
    dash_duo.driver.execute_script(
        "window.history.pushState({}, '', '/admin');"
        "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));"
    )
    dash_duo.wait_for_contains_text("#_pages_content", "Not available to your role")
    wait_rendered(dash_duo)
    assert not dash_duo.driver.find_elements("css selector", "#admin-users")
    assert not page_problems(dash_duo, server_errors)

    # Loaded directly: the request guard answers 403 before any Dash code runs.
    dash_duo.driver.get(dash_duo.server_url + "/admin")
    dash_duo.wait_for_text_to_equal("h1", "Not available to your role")
    assert "Admin is not open to the viewer role" in dash_duo.find_element("body").text
    assert not dash_duo.driver.find_elements("css selector", "#admin-users, #react-entry-point")
    assert _status(dash_duo, "/admin") == 403
    assert _status(dash_duo, "/audit") == 403
    clear_problems(dash_duo, server_errors)  # the browser logs the 403 it was shown


def test_kiosk_link_opens_a_wall_screen_until_revoked(
    dash_duo: DashComposite, e2e_db: Database, server_errors: ServerErrors
) -> None:
    """A kiosk link opens the dark, chrome-free overview; revoking it ends the session."""
    with e2e_db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="NOC wall 1", actor=audit.SYSTEM)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/healthz")
    driver.delete_all_cookies()
    set_viewport(dash_duo, WALL)
    clear_problems(dash_duo, server_errors)

    driver.get(f"{dash_duo.server_url}/kiosk/{issued.plaintext}")
    dash_duo.wait_for_element("#shell")
    wait_rendered(dash_duo)
    assert driver.current_url == dash_duo.server_url + "/?kiosk=1"
    dash_duo.wait_for_contains_class("#shell", "theme-wall")
    assert "theme-desk" not in dash_duo.find_element("#shell").get_attribute("class")
    # The wall shows the live panels, not the desk's page title and inventory grid.
    assert not visible(dash_duo, ".page-header h1")
    assert not visible(dash_duo, "#overview-elements")
    dash_duo.wait_for_contains_text("#overview-tiles", "CELLS")
    assert not visible(dash_duo, "#shell-nav a")
    assert not driver.find_elements("css selector", "#shell-logout, .user-menu")
    dash_duo.wait_for_contains_text("#shell-freshness", "Data fresh")

    first = _clock(dash_duo)
    WebDriverWait(driver, 2.5, poll_frequency=0.1).until(
        lambda _: _clock(dash_duo) != first, message="the wall clock did not tick"
    )
    assert CLOCK.match(_clock(dash_duo))
    screenshot(dash_duo, "kiosk-wall")
    assert not page_problems(dash_duo, server_errors)
    assert _status(dash_duo, "/admin") == 403  # the wall session is a read-only viewer

    with e2e_db.session(write=True) as session:
        auth.revoke_token(session, kind="kiosk", token_id=issued.id, actor=audit.SYSTEM)
    driver.refresh()
    dash_duo.wait_for_element("#login-submit")
    assert "/login" in driver.current_url
    driver.get(f"{dash_duo.server_url}/kiosk/{issued.plaintext}")
    dash_duo.wait_for_text_to_equal("h1", "Wall-screen link not valid")
    clear_problems(dash_duo, server_errors)  # the browser logs the 403 it was shown


def test_sign_out_ends_the_session(dash_duo: DashComposite, server_errors: ServerErrors) -> None:
    """Sign out returns to the login page and the app asks for a password again."""
    clear_problems(dash_duo, server_errors)
    sign_in(dash_duo, "admin", ADMIN_PASSWORD)
    dash_duo.find_element("#shell-logout").click()
    dash_duo.wait_for_element("#login-submit")
    assert dash_duo.driver.current_url == dash_duo.server_url + "/login"

    dash_duo.driver.get(dash_duo.server_url + "/")
    dash_duo.wait_for_element("#login-submit")
    assert "/login?next=/" in dash_duo.driver.current_url
    assert _status(dash_duo, "/_dash-layout") == 401
    assert not page_problems(dash_duo, server_errors)


def _grid_rows(duo: DashComposite, grid_id: str) -> list[dict[str, Any]]:
    """The rendered rows of an AG Grid as {col-id: cell text}."""
    return duo.driver.execute_script(
        """
        const grid = document.getElementById(arguments[0]);
        const rows = grid.querySelectorAll(".ag-center-cols-container .ag-row");
        return Array.from(rows).map(row => {
            const cells = {};
            row.querySelectorAll(".ag-cell").forEach(cell => {
                cells[cell.getAttribute("col-id")] = cell.textContent.trim();
            });
            return cells;
        });
        """,
        grid_id,
    )


def _grid_row(duo: DashComposite, grid_id: str, column: str, value: str) -> dict[str, Any]:
    """The first rendered row whose `column` shows `value`."""
    matches = [row for row in _grid_rows(duo, grid_id) if row.get(column) == value]
    assert matches, f"{grid_id} has no row with {column}={value!r}: {_grid_rows(duo, grid_id)[:5]}"
    return matches[0]


def _wait_for_grid_row(duo: DashComposite, grid_id: str, column: str, value: str) -> None:
    """Wait until an AG Grid renders a row whose `column` shows `value`."""
    WebDriverWait(duo.driver, 10, poll_frequency=0.1).until(
        lambda _: any(row.get(column) == value for row in _grid_rows(duo, grid_id)),
        message=f"{grid_id} never showed {column}={value!r}",
    )


def _clock(duo: DashComposite) -> str:
    return duo.find_element("#shell-clock").text


def _status(duo: DashComposite, path: str) -> int:
    """The HTTP status the browser's session gets for `path` (without following redirects)."""
    cookies = {c["name"]: c["value"] for c in duo.driver.get_cookies()}
    response = requests.get(
        duo.server_url + path, cookies=cookies, allow_redirects=False, timeout=10
    )
    return response.status_code
