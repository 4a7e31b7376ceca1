"""The Content-Security-Policy in a real Chromium: Dash works under it, and it is enforced."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash import Dash
from dash.testing.composite import DashComposite
from security_support import app_on_copy, database, seed_recommendations
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from testkit import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

# Concrete paths for the pages whose path has variables.
TEMPLATED = {"/anomalies/1", "/incidents/1", "/forecasts/1/prb_util_dl"}
# Chromium reports every violation on the console as an error ("Refused to …").
VIOLATION_MARKERS = ("Content Security Policy", "Refused to")
SETTLED_JS = """
const content = document.getElementById("_pages_content");
return !!(window.store && content && content.querySelector("h1, h2")
    && !window.store.getState().isLoading);
"""
# Generous: the page count is fixed, and a busy CI machine can be slow to draw.
TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def csp_app(template_db: Path, tmp_path: Path) -> Iterator[Dash]:
    """An app with rows to draw: recommendations (formatted by a grid function), an incident."""
    from services import audit
    from services.incidents import lifecycle

    dash_app = app_on_copy(template_db, tmp_path)
    db = database(dash_app)
    seed_recommendations(db)
    with db.session(write=True) as session:
        lifecycle.create_manual(session, title="Fibre cut", severity="sev2", actor=audit.SYSTEM)
    yield dash_app
    db.dispose()


def _settle(duo: DashComposite) -> None:
    WebDriverWait(duo.driver, TIMEOUT, poll_frequency=0.2).until(
        lambda driver: driver.execute_script(SETTLED_JS),
        message=f"{duo.driver.current_url} did not settle",
    )
    time.sleep(0.3)  # a callback chain may still be starting


def _csp_problems(duo: DashComposite) -> list[str]:
    """Console errors about the policy since the last call."""
    problems = [
        entry["message"]
        for entry in duo.get_logs() or []
        if any(marker in entry["message"] for marker in VIOLATION_MARKERS)
    ]
    duo.reset_log_timestamp()
    return problems


def test_dash_runs_under_the_policy_and_the_policy_is_enforced(
    dash_duo: DashComposite, csp_app: Dash
) -> None:
    dash_duo.start_server(csp_app, navigate=False, port=_free_port())
    driver = dash_duo.driver
    base = dash_duo.server.url
    driver.get(f"{base}/login")
    assert _csp_problems(dash_duo) == []
    driver.find_element(By.ID, "username").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    dash_duo.wait_for_element("#shell", timeout=TIMEOUT)
    pages = csp_app.server.extensions["beacon"].pages
    paths = [p.path for p in pages if p.path_template is None] + sorted(TEMPLATED)
    assert len(paths) >= 15
    for path in paths:
        driver.get(base + path)
        _settle(dash_duo)
        assert _csp_problems(dash_duo) == [], path
        if path == "/recommendations":
            # The confidence column is formatted by a {"function": ...} string: it ran.
            WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(
                lambda d: "91%" in d.find_element(By.ID, "recommendations-grid").text,
                message="grid function formatter did not run",
            )
    # The clientside callbacks ran (they are inline scripts allowed by hash): the clock ticks.
    assert driver.find_element(By.ID, "shell-clock").text.strip()
    # The wall screen, opened with a kiosk link the way a TV in the NOC opens it.
    from services import audit, auth

    with database(csp_app).session(write=True) as session:
        issued = auth.create_kiosk_token(session, name="csp-wall", actor=audit.SYSTEM)
    driver.get(f"{base}/kiosk/{issued.plaintext}")
    _settle(dash_duo)
    WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(
        lambda d: "kiosk" in d.find_element(By.ID, "shell").get_attribute("class"),
        message="the wall screen did not switch to kiosk mode",
    )
    assert _csp_problems(dash_duo) == [], "wall screen"
    # An injected inline script is blocked and reported the way a violation by Dash would be:
    # the header is enforced, and the check above would have seen a violation.
    ran = driver.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.__injected = 1;';"
        "document.body.appendChild(s); return window.__injected === 1;"
    )
    assert ran is False
    reported: list[str] = []
    WebDriverWait(driver, 15, poll_frequency=0.2).until(
        lambda _: reported.extend(_csp_problems(dash_duo)) or reported
    )
    assert any("script-src" in message for message in reported), reported
