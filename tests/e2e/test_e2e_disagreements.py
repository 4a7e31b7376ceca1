"""Disagreements and adoption in a real browser: a rejection lands in the queue and is reviewed.

The operator rejects on /recommendations when that page is registered (it is built
separately), else through the service its button calls; the rest happens in the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
import pytest
from dash.testing.composite import DashComposite
from disagreement_support import raise_one
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
    wait_rendered,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select
from testkit import add_user

from services.audit import Actor
from services.automation.use_cases import ensure_use_cases
from services.db import Database
from services.db.models import Disagreement, Review, utcnow
from services.decisions import decide
from services.decisions.demo import backfill_history
from services.oncall.demo import seed_demo_oncall

pytestmark = pytest.mark.browser
NOTE = "Stadium concert tonight, the load is expected"


@pytest.fixture(scope="module")
def trust(e2e_db: Database) -> None:
    """Use cases with their on-call owners and twelve weeks of simulated history."""
    now = utcnow()
    with e2e_db.session(write=True) as session:
        ensure_use_cases(session, now=now)
        seed_demo_oncall(session, now=now)  # owns "usecase:<key>" now that use cases exist
        backfill_history(session, now=now)


@pytest.fixture(scope="module")
def raised(e2e_db: Database, trust: None) -> int:
    """A fresh open recommendation on a congested cell; returns its id."""
    with e2e_db.session(write=True) as session:
        return raise_one(session, now=utcnow())


def _reject_as_operator(dash_duo: DashComposite, e2e_db: Database, rec_id: int) -> int:
    """An operator rejects the recommendation with a reason; returns the case it opened.

    Through /recommendations when that page is there; otherwise (it is built separately)
    through the same service its decide button calls, as the same signed-up operator.
    """
    add_user(e2e_db, "e2e-decider", "operator")
    if "pages.recommendations" in dash.page_registry:
        sign_in(dash_duo, "e2e-decider", "user-pass-12345", landing=f"/recommendations?id={rec_id}")
        verdict = dash_duo.wait_for_element('#recommendations-verdict input[value="reject"]')
        _click(dash_duo, verdict)
        reason = dash_duo.find_element("#recommendations-reason")
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", reason)
        dash_duo.select_dcc_dropdown(reason, value="Wrong diagnosis")
        dash_duo.find_element("#recommendations-note").send_keys(NOTE)
        _click(dash_duo, dash_duo.find_element("#recommendations-decide"))
        dash_duo.wait_for_contains_text("#recommendations-message", "rejected")
    else:
        with e2e_db.session(write=True) as session:
            decide.decide(
                session,
                recommendation_id=rec_id,
                verdict="reject",
                reason_code="wrong_diagnosis",
                note=NOTE,
                actor=Actor(name="e2e-decider", role="operator"),
                now=utcnow(),
            )
    with e2e_db.session() as session:
        return session.scalars(
            select(Disagreement.id).where(Disagreement.recommendation_id == rec_id)
        ).one()


def _click(dash_duo: DashComposite, element: Any) -> None:
    # The sticky top bar must not sit over the control when it is clicked.
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _row(case_id: int) -> str:
    return f'#disagreements-grid .ag-center-cols-container .ag-row[row-id="{case_id}"]'


def test_rejection_is_in_the_queue_and_an_engineer_reviews_it(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database, raised: int
) -> None:
    """An operator rejects with a reason; the case is on the queue with both sides; reviewed."""
    rejected = _reject_as_operator(dash_duo, e2e_db, raised)
    # The operator finds the case too, but only engineers and admins review.
    open_page(dash_duo, f"/disagreements?case={rejected}", size=DESK)
    dash_duo.wait_for_element(_row(rejected))
    dash_duo.wait_for_contains_text("#disagreements-human-side", NOTE)
    assert not dash_duo.find_element("#disagreements-review-form").is_displayed()
    assert not dash_duo.find_element("#disagreements-bulk-form").is_displayed()
    add_user(e2e_db, "e2e-reviewer", "engineer")
    sign_in(dash_duo, "e2e-reviewer", "user-pass-12345", landing="/disagreements")
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "disagreements-queue-desk"), (WALL, "disagreements-queue-1920")):
        open_page(dash_duo, "/disagreements", size=size)
        dash_duo.wait_for_element(_row(rejected))
        screenshot(dash_duo, name)
    open_page(dash_duo, "/disagreements", size=DESK)
    row = dash_duo.wait_for_element(_row(rejected))
    assert "Wrong diagnosis" in row.text
    assert "e2e-decider" in row.text
    dash_duo.wait_for_contains_text("#disagreements-policy", "The human decision stands")
    dash_duo.wait_for_contains_text("#disagreements-simulated", "simulated history")

    row.find_element(By.CSS_SELECTOR, '[col-id="ai"]').click()
    dash_duo.wait_for_contains_text("#disagreements-human-side", NOTE)
    dash_duo.wait_for_contains_text("#disagreements-human-side", "Wrong diagnosis")
    dash_duo.wait_for_contains_text("#disagreements-ai-side", "87%")
    dash_duo.wait_for_contains_text("#disagreements-data-quality", "late_data")
    assert dash_duo.find_element("#disagreements-review-form").is_displayed()
    wait_rendered(dash_duo)
    full_page_screenshot(dash_duo, "disagreements-queue-desk-full")
    for size, name in ((WALL, "disagreements-case-1920"), (DESK, "disagreements-case-desk")):
        open_page(dash_duo, f"/disagreements?case={rejected}", size=size)
        dash_duo.wait_for_contains_text("#disagreements-human-side", NOTE)
        dash_duo.driver.execute_script(
            "document.getElementById('disagreements-case').scrollIntoView();"
        )
        screenshot(dash_duo, name)

    _click(dash_duo, dash_duo.find_element('#disagreements-outcome input[value="human_right"]'))
    dash_duo.find_element("#disagreements-note").send_keys("Event load, not congestion")
    _click(dash_duo, dash_duo.find_element("#disagreements-review-submit"))
    dash_duo.wait_for_contains_text("#disagreements-review-message", f"Case #{rejected} resolved")
    dash_duo.wait_for_contains_text("#disagreements-case-state", "resolved")
    dash_duo.wait_for_contains_text("#disagreements-reviews", "Event load, not congestion")
    with e2e_db.session() as session:
        case = session.get_one(Disagreement, rejected)
        review = session.scalars(select(Review).where(Review.disagreement_id == rejected)).one()
        assert (case.state, review.outcome) == ("resolved", "human_right")
        assert review.note == "Event load, not congestion"

    # The note is visible on the list of resolved cases.
    state = dash_duo.find_element("#disagreements-state")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", state)
    dash_duo.select_dcc_dropdown(state, value="resolved")
    resolved = dash_duo.wait_for_element(_row(rejected))
    WebDriverWait(dash_duo.driver, 10, poll_frequency=0.2).until(
        lambda _: "Event load, not congestion" in resolved.text, "review note not on the list"
    )
    assert "Person was right" in resolved.text
    assert not page_problems(dash_duo, server_errors)


def test_adoption_page_reads_for_executives(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database, trust: None
) -> None:
    """Executives see the summary, ladders and weekly charts, labelled simulated; CSV downloads."""
    add_user(e2e_db, "e2e-exec", "executive")
    sign_in(dash_duo, "e2e-exec", "user-pass-12345", landing="/adoption")
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "adoption-report-desk"), (WALL, "adoption-report-1920")):
        open_page(dash_duo, "/adoption", size=size)
        dash_duo.wait_for_element("#adoption-ladder-cell_congestion_lb")
        screenshot(dash_duo, name)
    open_page(dash_duo, "/adoption", size=DESK)
    full_page_screenshot(dash_duo, "adoption-report-desk-full")
    dash_duo.wait_for_contains_text("#adoption-simulated-label", "Simulated")
    dash_duo.wait_for_contains_text("#adoption-tile-acceptance", "%")
    current = dash_duo.find_element("#adoption-ladder-cell_congestion_lb .adoption-step-current")
    assert current.text.startswith("L2")
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#adoption-network-rates .main-svg")
    # Every chart is SVG: a page of charts must never run out of WebGL contexts.
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, ".adoption-page canvas.gl-canvas")
    dash_duo.find_element("#adoption-csv-summary").click()
    download = Path(dash_duo.download_path)
    WebDriverWait(dash_duo.driver, 10, poll_frequency=0.2).until(
        lambda _: any(p.name.startswith("beacon-adoption-summary") for p in download.iterdir()),
        "no CSV downloaded",
    )
    body = next(p for p in download.iterdir() if p.name.startswith("beacon-adoption")).read_text()
    assert body.startswith("use_case,maturity_level,recommendations")
    assert "All use cases" in body
    assert not page_problems(dash_duo, server_errors)
