"""Recommendations and use cases in a real browser: open the list, read one, reject it with a
reason; screenshots at desk and wall sizes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
from sqlalchemy import select
from testkit import ADMIN_PASSWORD, add_user

from services.automation.use_cases import assign_owners, ensure_use_cases
from services.db import Database
from services.db.models import Decision, Recommendation, utcnow
from services.decisions.demo import backfill_history, raise_live
from services.oncall.demo import seed_demo_oncall

pytestmark = pytest.mark.browser
NOTE = "Crane works next to the site; not touching it today"


@pytest.fixture(scope="module")
def live(e2e_db: Database) -> list[int]:
    """Use cases, on call, four weeks of simulated history and live recommendations."""
    now = utcnow()
    with e2e_db.session(write=True) as session:
        ensure_use_cases(session, now=now)
        seed_demo_oncall(session, now=now)
        assign_owners(session)
        backfill_history(session, now=now, weeks=4)
        raised = raise_live(session, now=now)
        ids = [r.id for r in raised if r.state == "open"]
    assert ids, "the simulated network raised nothing to decide on"
    return ids


def _click(dash_duo: DashComposite, element: Any) -> None:
    # The sticky top bar must not sit over the control when it is clicked.
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _row(rec_id: int) -> str:
    return f'#recommendations-grid .ag-center-cols-container .ag-row[row-id="{rec_id}"]'


def test_list_and_detail(
    dash_duo: DashComposite, server_errors: ServerErrors, live: list[int]
) -> None:
    """The open recommendations are listed; clicking one shows why, impact and guardrails."""
    clear_problems(dash_duo, server_errors)
    for size, name in ((DESK, "recommendations-list-desk"), (WALL, "recommendations-list-1920")):
        open_page(dash_duo, "/recommendations", size=size)
        dash_duo.wait_for_element(_row(live[0]))
        screenshot(dash_duo, name)
    open_page(dash_duo, "/recommendations", size=DESK)
    _click(dash_duo, dash_duo.wait_for_element(f'{_row(live[0])} .ag-cell[col-id="use_case"]'))
    dash_duo.wait_for_element("#recommendations-detail .trust-guardrails")
    detail = dash_duo.find_element("#recommendations-detail").text.lower()
    assert "rollback plan" in detail
    assert "expected impact" in detail
    full_page_screenshot(dash_duo, "recommendations-detail-desk-full")
    open_page(dash_duo, f"/recommendations?id={live[0]}", size=WALL)
    dash_duo.wait_for_element("#recommendations-detail .trust-guardrails")
    full_page_screenshot(dash_duo, "recommendations-detail-1920-full")
    assert not page_problems(dash_duo, server_errors)


def test_operator_rejects_with_a_reason(
    dash_duo: DashComposite, server_errors: ServerErrors, e2e_db: Database, live: list[int]
) -> None:
    """An operator picks a verdict and a reason from the taxonomy; the decision is stored."""
    rec_id = live[0]
    add_user(e2e_db, "e2e-rec-operator", "operator")
    sign_in(
        dash_duo, "e2e-rec-operator", "user-pass-12345", landing=f"/recommendations?id={rec_id}"
    )
    clear_problems(dash_duo, server_errors)
    dash_duo.wait_for_element("#recommendations-detail .trust-guardrails")
    _click(dash_duo, dash_duo.wait_for_element('#recommendations-verdict input[value="reject"]'))
    reason = dash_duo.find_element("#recommendations-reason")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", reason)
    dash_duo.select_dcc_dropdown(reason, value="Risk too high")
    dash_duo.find_element("#recommendations-note").send_keys(NOTE)
    _click(dash_duo, dash_duo.find_element("#recommendations-decide"))
    dash_duo.wait_for_contains_text("#recommendations-message", "rejected")
    dash_duo.wait_for_contains_text("#recommendations-detail", "Risk too high")
    screenshot(dash_duo, "recommendations-decided-desk")
    with e2e_db.session() as session:
        assert session.get_one(Recommendation, rec_id).state == "rejected"
        decision = session.scalars(select(Decision).where(Decision.recommendation_id == rec_id))
        stored = decision.one()
        assert (stored.verdict, stored.reason_code, stored.note) == (
            "reject",
            "risk_too_high",
            NOTE,
        )
    assert not page_problems(dash_duo, server_errors)


def test_use_cases_page(
    dash_duo: DashComposite,
    server_errors: ServerErrors,
    live: list[int],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Ladder, criteria, owners; an admin uploads a change calendar with one bad row."""
    # The module's admin session was replaced by the operator's above.
    sign_in(dash_duo, "admin", ADMIN_PASSWORD, landing="/use-cases")
    clear_problems(dash_duo, server_errors)
    now = utcnow()
    calendar = tmp_path_factory.mktemp("calendar") / "calendar.csv"
    calendar.write_text(
        "external_id,title,kind,starts_at,ends_at,domains,regions,elements\n"
        f"E2E-1,Core router swap,change,{(now + timedelta(days=1)).isoformat()},"
        f"{(now + timedelta(days=1, hours=3)).isoformat()},Core,,\n"
        f"E2E-2,North RAN freeze,freeze,{(now - timedelta(hours=1)).isoformat()},"
        f"{(now + timedelta(hours=6)).isoformat()},,North,\n"
        "E2E-3,No end,maintenance,2026-12-01T00:00:00Z,,,,\n"
    )
    upload = dash_duo.wait_for_element("#use-cases-upload input[type=file]")
    upload.send_keys(str(calendar))
    dash_duo.wait_for_contains_text("#use-cases-import-report", "2 window(s) created")
    assert "line 4" in dash_duo.find_element("#use-cases-import-report").text
    dash_duo.wait_for_contains_text("#use-cases-windows", "North RAN freeze")
    for size, name in ((DESK, "use-cases-desk"), (WALL, "use-cases-1920")):
        open_page(dash_duo, "/use-cases", size=size)
        dash_duo.wait_for_element("#use-case-cell_congestion_lb .trust-step-current")
        screenshot(dash_duo, name)
    full_page_screenshot(dash_duo, "use-cases-1920-full")
    open_page(dash_duo, "/use-cases", size=DESK)
    dash_duo.wait_for_element("#use-case-cell_congestion_lb .trust-step-current")
    full_page_screenshot(dash_duo, "use-cases-desk-full")
    card = dash_duo.find_element("#use-case-cell_congestion_lb").text
    assert "L2" in card
    assert "On call" in card
    assert not page_problems(dash_duo, server_errors)
