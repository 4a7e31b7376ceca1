"""The NOC wall screen in a real browser: kiosk mode, live refreshes, stale data, screenshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    set_viewport,
    sign_in,
    wait_rendered,
)
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select, update
from testkit import ADMIN_PASSWORD

from services import audit, auth
from services.db import Database
from services.db.models import Anomaly, Element, Kpi, Source

pytestmark = pytest.mark.browser

WALL_4K = (3840, 2160)
REFRESH_S = 2  # the fastest the page allows; production walls refresh every 15 s
FEED_ROWS = "#overview-wall-feed tr.wall-feed-row"
# Counts the wall's refresh requests as the browser sends them.
COUNT_REFRESHES_JS = """
if (!window.__wallRefreshes) {
    window.__wallRefreshes = {n: 0};
    const original = window.fetch;
    window.fetch = function (url, options) {
        const body = options && typeof options.body === "string" ? options.body : "";
        if (body.indexOf("overview-wall-refresh") !== -1) { window.__wallRefreshes.n += 1; }
        if (window.__wallBlocked && body.indexOf("overview-wall-refresh") !== -1) {
            return Promise.reject(new TypeError("backend unreachable (test)"));
        }
        return original.apply(this, arguments);
    };
}
return window.__wallRefreshes.n;
"""
KPI_BY_TYPE = {"cell": ("prb_util_dl", "erab_drop_rate", "rrc_setup_sr", "active_users")}


def add_episodes(db: Database, count: int, *, start: int = 0, **fields: object) -> list[str]:
    """Store `count` open episodes on distinct cells, as the detection service would."""
    now = datetime.now(UTC)
    severities = ("critical", "major", "minor", "warning")
    with db.session(write=True) as session:
        cells = session.scalars(
            select(Element)
            .where(Element.element_type == "cell")
            .order_by(Element.id)
            .offset(start)
            .limit(count)
        ).all()
        kpis = {k.name: k.id for k in session.query(Kpi).all()}
        for i, cell in enumerate(cells):
            started = now - timedelta(minutes=5 + 7 * i)
            session.add(
                Anomaly(
                    element_id=cell.id,
                    kpi_id=kpis[KPI_BY_TYPE["cell"][i % 4]],
                    started_at=started,
                    peak_at=started,
                    ended_at=None if i % 3 else now - timedelta(minutes=2),
                    observed=97.0,
                    expected=55.0,
                    band_low=40.0,
                    band_high=70.0,
                    score=5.5,
                    confidence=0.95 - 0.04 * i,
                    severity=fields.get("severity") or severities[i % 4],
                    detector="seasonal_robust",
                    model_version="e2e",
                    status="acknowledged" if i % 5 == 4 else "open",
                    suppressed=bool(fields.get("suppressed", False)),
                    revised=i % 4 == 3,
                )
            )
        return [c.name for c in cells]


@pytest.fixture(scope="module")
def wall_data(e2e_db: Database) -> Database:
    """The fullest wall: more open episodes than lines, one suppressed, one stale source."""
    add_episodes(e2e_db, 9)
    add_episodes(e2e_db, 1, start=40, suppressed=True)
    with e2e_db.session(write=True) as session:
        session.execute(
            update(Source)
            .where(Source.name == "sim-core")
            .values(last_received_at=datetime.now(UTC) - timedelta(hours=3))
        )
    return e2e_db


def refreshes(duo: DashComposite) -> int:
    return int(duo.driver.execute_script(COUNT_REFRESHES_JS))


def feed_text(duo: DashComposite) -> str:
    return duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(r => r.innerText).join('\\n');",
        FEED_ROWS,
    )


def open_kiosk(duo: DashComposite, db: Database, size: tuple[int, int]) -> None:
    """Enter through a kiosk link, then open the wall with a test refresh period."""
    with db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name=f"wall {size}", actor=audit.SYSTEM)
    driver = duo.driver
    driver.get(duo.server_url + "/healthz")
    driver.delete_all_cookies()
    set_viewport(duo, size)
    driver.get(f"{duo.server_url}/kiosk/{issued.plaintext}")
    duo.wait_for_element("#shell")
    open_page(duo, f"/?kiosk=1&refresh={REFRESH_S}", size=size)
    duo.wait_for_contains_class("#shell", "theme-wall")


def test_kiosk_wall_updates_the_feed_without_errors(
    dash_duo: DashComposite, wall_data: Database, server_errors: ServerErrors
) -> None:
    """At 1920x1080 the kiosk wall shows open episodes and picks up a new one within refreshes."""
    clear_problems(dash_duo, server_errors)
    open_kiosk(dash_duo, wall_data, WALL)
    dash_duo.wait_for_element(FEED_ROWS)
    dash_duo.wait_for_contains_text("#overview-wall-banner", "Stale data: sim-core silent for 3 h")
    assert len(dash_duo.driver.find_elements("css selector", FEED_ROWS)) == 8
    assert "1 suppressed (change windows)" in dash_duo.find_element("#overview-wall-counts").text
    assert not dash_duo.find_element("#shell-nav").is_displayed()  # no chrome on the wall
    before = feed_text(dash_duo)
    seen = refreshes(dash_duo)

    new_cell = add_episodes(wall_data, 1, start=20, severity="critical")[0]
    WebDriverWait(dash_duo.driver, 6 * REFRESH_S + 10, poll_frequency=0.2).until(
        lambda _: refreshes(dash_duo) >= seen + 2 and new_cell in feed_text(dash_duo),
        message="the feed did not show the new episode within two refreshes",
    )
    assert feed_text(dash_duo) != before
    assert dash_duo.find_element("#overview-wall-feed tr.wall-sev-critical").is_displayed()
    dash_duo.wait_for_contains_text("#overview-wall-updated", "Updated")
    screenshot(dash_duo, "wall-kiosk-1920x1080")
    # The page fits the screen: a wall cannot be scrolled.
    height = dash_duo.driver.execute_script("return document.documentElement.scrollHeight;")
    assert height <= WALL[1], f"the wall overflows 1080 px: {height}"
    assert not page_problems(dash_duo, server_errors)


def test_wall_at_4k_and_at_the_desk(
    dash_duo: DashComposite, wall_data: Database, server_errors: ServerErrors
) -> None:
    """The same wall scales to 3840x2160; desk users get it above the usual panels."""
    clear_problems(dash_duo, server_errors)
    open_kiosk(dash_duo, wall_data, WALL_4K)
    dash_duo.wait_for_element(FEED_ROWS)
    size = dash_duo.driver.execute_script(
        "return parseFloat(getComputedStyle(document.querySelector('.wall-feed td')).fontSize);"
    )
    assert size >= 40, f"feed text is {size}px on a 4K wall"
    screenshot(dash_duo, "wall-kiosk-3840x2160")
    height = dash_duo.driver.execute_script("return document.documentElement.scrollHeight;")
    assert height <= WALL_4K[1], f"the 4K wall overflows: {height}"
    assert not page_problems(dash_duo, server_errors)

    sign_in(dash_duo, "admin", ADMIN_PASSWORD, size=DESK)
    wait_rendered(dash_duo)
    dash_duo.wait_for_element(FEED_ROWS)
    dash_duo.wait_for_element("#overview-sources-table")
    assert dash_duo.find_element("#shell-nav").is_displayed()
    screenshot(dash_duo, "wall-desk-1440x900")
    full_page_screenshot(dash_duo, "wall-desk-1440x900-full")
    assert not page_problems(dash_duo, server_errors)


def test_unreachable_backend_keeps_the_last_data_and_says_so(
    dash_duo: DashComposite, wall_data: Database, server_errors: ServerErrors
) -> None:
    """When refreshes fail the feed stays on screen, dimmed, with a red age label."""
    open_kiosk(dash_duo, wall_data, WALL)
    dash_duo.wait_for_element(FEED_ROWS)
    rows = len(dash_duo.driver.find_elements("css selector", FEED_ROWS))
    refreshes(dash_duo)
    dash_duo.driver.execute_script("window.__wallBlocked = true;")
    # Two missed refreshes and at least 20 s beyond the last good one.
    dash_duo.wait_for_contains_text(
        "#overview-wall-updated", "backend not answering since", timeout=40
    )
    assert "showing data from" in dash_duo.find_element("#overview-wall-updated").text
    assert len(dash_duo.driver.find_elements("css selector", FEED_ROWS)) == rows
    assert "wall-body-stale" in dash_duo.find_element("#overview-wall-body").get_attribute("class")
    screenshot(dash_duo, "wall-kiosk-stale")
    dash_duo.driver.execute_script("window.__wallBlocked = false;")
    dash_duo.wait_for_contains_text("#overview-wall-updated", "Updated", timeout=15)
    clear_problems(dash_duo, server_errors)  # the refused requests were logged on purpose
