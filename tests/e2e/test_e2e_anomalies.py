"""Anomaly feed and episode pages in a real browser: stored episodes, drill-down, acknowledge."""

from __future__ import annotations

import pytest
from anomaly_feed_support import Sample, add_episodes
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
from selenium.webdriver.common.by import By
from testkit import add_user

from services.db import Database
from services.db.models import Anomaly

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sample(e2e_db: Database) -> Sample:
    with e2e_db.session(write=True) as session:
        return add_episodes(session)


def test_feed_shows_stored_episodes(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database, sample: Sample
) -> None:
    """The grid lists the stored episodes with counts; screenshots at desk and wall sizes."""
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "anomalies-desk"), (WALL, "anomalies-1920")):
        open_page(dash_duo, "/anomalies", size=size)
        dash_duo.wait_for_element(f'#anomalies-grid .ag-row[row-id="{sample.spike}"]')
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "anomalies-desk-full")
    rows = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#anomalies-grid .ag-center-cols-container"
        " .ag-row')).map(r => r.getAttribute('row-id'));"
    )
    assert {str(sample.spike), str(sample.drop), str(sample.link_loss)} <= set(rows)
    dash_duo.wait_for_contains_text("#anomalies-count", "episodes")
    assert not page_problems(dash_duo, server_errors)


def test_open_an_episode_and_acknowledge_as_operator(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database, sample: Sample
) -> None:
    """An operator follows the link to the episode, sees series and explanation, acknowledges."""
    add_user(e2e_db, "e2e-operator", "operator")
    sign_in(dash_duo, "e2e-operator", "user-pass-12345", landing="/anomalies")
    clear_problems(dash_duo, server_errors)
    link = dash_duo.wait_for_element(
        f'#anomalies-grid .ag-row[row-id="{sample.spike}"] a[href="/anomalies/{sample.spike}"]'
    )
    link.click()
    dash_duo.wait_for_element("#anomaly-episode-chart .main-svg")
    dash_duo.wait_for_contains_text("h1", "prb_util_dl on SITE-0042 C1")
    for size, name in ((DESK, "anomaly-episode-desk"), (WALL, "anomaly-episode-1920")):
        open_page(dash_duo, f"/anomalies/{sample.spike}", size=size)
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "anomaly-episode-desk-full")
    open_page(dash_duo, f"/anomalies/{sample.spike}", size=DESK)
    dash_duo.find_element("#anomaly-episode-ack").click()
    dash_duo.wait_for_contains_text("#anomaly-episode-message", "acknowledged")
    dash_duo.wait_for_contains_text("#anomaly-episode-status", "acknowledged by e2e-operator")
    dash_duo.wait_for_contains_text("#anomaly-episode-history", "e2e-operator (operator)")
    with e2e_db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "acknowledged"
    assert not page_problems(dash_duo, server_errors)


def test_unknown_episode_shows_not_found(
    dash_duo: DashComposite, server_errors: ServerErrors
) -> None:
    clear_problems(dash_duo, server_errors)
    open_page(dash_duo, "/anomalies/987654", size=DESK)
    text = dash_duo.driver.find_element(By.ID, "anomaly-episode-not-found").text
    assert "Episode not found" in text
    assert not page_problems(dash_duo, server_errors)
