"""Every registered page opens without error at the desk and on the wall, with live data."""

from __future__ import annotations

import re

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
    registered_pages,
    screenshot,
    sign_in,
)
from testkit import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

SIM_SOURCES = {"sim-core", "sim-pm-ericsson", "sim-pm-nokia", "sim-transport"}


def test_every_page_renders_without_error(
    dash_duo: DashComposite, server_errors: ServerErrors
) -> None:
    """Admin opens every registered page at the desk and on a wall screen; none shows an error."""
    clear_problems(dash_duo, server_errors)
    sign_in(dash_duo, "admin", ADMIN_PASSWORD)
    problems: dict[str, list[str]] = {}
    pages = registered_pages()
    for page in pages:
        open_page(dash_duo, page.path, size=DESK)
        problems[f"{page.slug} desk"] = page_problems(dash_duo, server_errors)
        screenshot(dash_duo, f"{page.slug}-desk")
        full_page_screenshot(dash_duo, f"{page.slug}-desk-full")

        open_page(dash_duo, f"{page.path}?kiosk=1", size=WALL)
        dash_duo.wait_for_contains_class("#shell", "theme-wall")
        problems[f"{page.slug} wall"] = page_problems(dash_duo, server_errors)
        screenshot(dash_duo, f"{page.slug}-wall")

    assert {"overview", "audit", "admin"} <= {page.slug for page in pages}
    assert not {where: found for where, found in problems.items() if found}


def test_overview_shows_fresh_simulated_data(
    dash_duo: DashComposite, server_errors: ServerErrors
) -> None:
    """The overview counts the simulated network and lists every simulator source as fresh."""
    clear_problems(dash_duo, server_errors)
    sign_in(dash_duo, "admin", ADMIN_PASSWORD)

    tiles = dash_duo.driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#overview-tiles .tile'))"
        ".map(t => [t.querySelector('.tile-label').textContent,"
        " t.querySelector('.tile-value').textContent]));"
    )
    for label in ("Cells", "Sites", "Transport links", "Measurements 24 h"):
        assert _number(tiles[label]) > 0, (label, tiles)
    assert tiles["Sources fresh"] == "4/4", tiles

    sources = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#overview-sources-table tbody tr'))"
        ".map(r => [r.cells[0].firstElementChild.textContent, r.cells[1].textContent]);"
    )
    assert {name for name, _ in sources} == SIM_SOURCES, sources
    assert all(status == "fresh" for _, status in sources), sources

    for chart in ("overview-load", "overview-ingest"):
        traces = dash_duo.driver.execute_script(
            f"return document.querySelectorAll('#{chart} .trace').length;"
        )
        assert traces > 0, f"{chart} is empty"
    dash_duo.wait_for_element('#overview-elements .ag-row .ag-cell[col-id="name"]')
    dash_duo.wait_for_contains_text("#shell-freshness", "Data fresh")
    assert "hidden" in dash_duo.find_element("#shell-stale-banner").get_attribute("class")
    assert not page_problems(dash_duo, server_errors)


def _number(text: str) -> int:
    digits = re.sub(r"\D", "", text)
    return int(digits) if digits else 0
