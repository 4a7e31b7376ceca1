"""Capacity forecasts in a real browser: portfolio, drill-down, what-if moving the breach risk."""

from __future__ import annotations

import time
from pathlib import Path

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
    wait_rendered,
)
from forecast_page_support import ForecastSample, add_forecasts
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from services.db import Database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sample(e2e_db: Database) -> ForecastSample:
    with e2e_db.session(write=True) as session:
        return add_forecasts(session)


def test_portfolio_ranks_series_and_exports_csv(
    dash_duo: DashComposite, server_errors: ServerErrors, sample: ForecastSample
) -> None:
    """The grid lists stored forecasts riskiest first; the CSV export downloads every row."""
    clear_problems(dash_duo, server_errors)
    hot = f"{sample.hot}-prb_util_dl"
    for size, name in ((DESK, "forecasts-desk"), (WALL, "forecasts-1920")):
        open_page(dash_duo, "/forecasts", size=size)
        dash_duo.wait_for_element(f'#forecasts-grid .ag-row[row-id="{hot}"]')
        screenshot(dash_duo, name)
    open_page(dash_duo, "/forecasts", size=DESK)
    full_page_screenshot(dash_duo, "forecasts-desk-full")
    first = dash_duo.driver.execute_script(
        "return document.querySelector('#forecasts-grid .ag-center-cols-container"
        " .ag-row[row-index=\"0\"]').getAttribute('row-id');"
    )
    assert first == hot
    dash_duo.wait_for_contains_text("#forecasts-count", "riskiest first")
    dash_duo.find_element("#forecasts-export").click()
    download = Path(dash_duo.download_path)
    WebDriverWait(dash_duo.driver, 10, poll_frequency=0.2).until(
        lambda _: any(p.suffix == ".csv" for p in download.iterdir()), "no CSV downloaded"
    )
    body = next(p for p in download.iterdir() if p.suffix == ".csv").read_text()
    assert body.startswith("element,dn,region,domain,kpi")
    assert "SITE-0777 C1" in body
    assert not page_problems(dash_duo, server_errors)


def test_series_page_and_what_if_growth_moves_breach_risk(
    dash_duo: DashComposite, server_errors: ServerErrors, sample: ForecastSample
) -> None:
    """Open the riskiest series from the grid, read its risk, add growth, see the risk rise."""
    clear_problems(dash_duo, server_errors)
    open_page(dash_duo, "/forecasts", size=DESK)
    href = f"/forecasts/{sample.hot}/prb_util_dl"
    dash_duo.wait_for_element(f'#forecasts-grid a[href="{href}"]').click()
    dash_duo.wait_for_element("#forecast-series-chart .main-svg")
    dash_duo.wait_for_contains_text("h1", "prb_util_dl on SITE-0777 C1")
    wait_rendered(dash_duo)
    traces = dash_duo.driver.execute_script(
        "return document.querySelectorAll('#forecast-series-chart .trace').length;"
    )
    assert traces >= 4
    tile = dash_duo.find_element("#forecast-series-p30 .tile-value").text
    assert tile.endswith("%")
    for size, name in ((DESK, "forecast-series-desk"), (WALL, "forecast-series-1920")):
        open_page(dash_duo, href, size=size)
        screenshot(dash_duo, name)
    open_page(dash_duo, href, size=DESK)
    full_page_screenshot(dash_duo, "forecast-series-desk-full")

    before = _whatif_p30(dash_duo)
    growth = dash_duo.find_element("#forecast-whatif-growth")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", growth)
    growth.send_keys(Keys.CONTROL, "a")
    growth.send_keys("25", Keys.ENTER)
    WebDriverWait(dash_duo.driver, 10, poll_frequency=0.2).until(
        lambda _: _whatif_p30(dash_duo) > before,
        "the what-if did not raise the 30-day breach probability",
    )
    wait_rendered(dash_duo)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#forecast-series-chart .trace")
    legend = dash_duo.find_element("#forecast-series-chart .legend").text
    assert "what-if median" in legend
    time.sleep(0.3)  # let the histogram redraw before the picture
    screenshot(dash_duo, "forecast-series-whatif-desk")
    full_page_screenshot(dash_duo, "forecast-series-whatif-desk-full")
    assert not page_problems(dash_duo, server_errors)


def _whatif_p30(duo: DashComposite) -> float:
    """The what-if column's 30-day probability, read in one step (the table is re-rendered)."""
    text = duo.driver.execute_script(
        "const cell = document.getElementById('forecast-whatif-p30');"
        "return cell ? cell.textContent : '';"
    )
    return _percent(text) if text else -1.0


def _percent(text: str) -> float:
    return {"<1 %": 0.5, ">99 %": 99.5}.get(text) or float(text.rstrip(" %"))


def test_fallback_and_short_history_series_explain_themselves(
    dash_duo: DashComposite, server_errors: ServerErrors, sample: ForecastSample
) -> None:
    """A fallback forecast and a too-short series each say why, without an error."""
    clear_problems(dash_duo, server_errors)
    open_page(dash_duo, f"/forecasts/{sample.link}/link_util", size=DESK)
    dash_duo.wait_for_contains_text("#forecast-series-banner", "Fallback forecast")
    full_page_screenshot(dash_duo, "forecast-series-fallback-desk-full")
    open_page(dash_duo, f"/forecasts/{sample.fresh}/prb_util_dl", size=DESK)
    dash_duo.wait_for_contains_text("#forecast-series-banner", "Not enough history")
    screenshot(dash_duo, "forecast-series-short-desk")
    assert not dash_duo.driver.find_elements(By.ID, "forecast-whatif-growth")
    assert not page_problems(dash_duo, server_errors)
