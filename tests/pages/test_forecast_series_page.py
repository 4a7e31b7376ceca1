"""Forecast series page: bands, breach timing, backtest, banners, and what-if from stored paths."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from dash import Dash
from forecast_page_support import ForecastSample, add_forecasts
from pages_support import run_callback, text_of

from services.auth import ALL_ROLES
from services.db import Database
from services.db.models import utcnow
from services.oncall.demo import seed_demo_oncall


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.forecast_series")


@pytest.fixture
def sample(db: Database) -> ForecastSample:
    with db.session(write=True) as session:
        return add_forecasts(session)


def _find(component: Any, id_: str) -> Any:
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def _traces(figure: Any) -> list[dict]:
    data = figure["data"] if isinstance(figure, dict) else figure.to_plotly_json()["data"]
    return list(data)


def what_if(page, sample: ForecastSample, growth=0, growth_from=None, offload=0, offload_from=None):  # type: ignore[no-untyped-def]
    key = {"element_id": sample.hot, "kpi": "prb_util_dl"}
    return run_callback(
        page.what_if, growth, growth_from, offload, offload_from, key, triggered="x.value"
    )


def test_series_page_shows_bands_risk_backtest_and_components(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(element_id=str(sample.hot), kpi="prb_util_dl")
    text = text_of(layout)
    assert "prb_util_dl on SITE-0777 C1" in text
    assert "P(breach) ≤ 30 d" in text
    assert "Likely breach" in text
    assert "10–90 %" in text
    assert "Prophet (additive seasonality) beat seasonal naive" in text
    assert "less than it claims" in text  # raw 66 % coverage of the 80 % interval
    assert "widened ×1.31" in text
    assert "sustained breach, not one noisy day" in text
    assert "Refit this series" not in text  # engineers and admins only
    chart = _find(layout, page.CHART)
    names = {t.get("name") for t in _traces(chart.figure)}
    assert {"observed (daily busy hour)", "forecast", "80% interval", "95% interval"} <= names
    assert {t["type"] for t in _traces(chart.figure)} == {"scatter"}  # SVG, not WebGL
    bars = _find(layout, page.HISTOGRAM).figure.data
    assert bars[0].type == "bar"
    assert sum(bars[0].y) > 50  # percent of paths breaching within the horizon
    assert _find(layout, page.COMPONENTS) is not None
    assert "dangerously" not in json.dumps(layout.to_plotly_json(), default=str)


def test_engineers_see_the_refit_command_not_a_fit_button(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        text = text_of(page.layout(element_id=str(sample.hot), kpi="prb_util_dl"))
    assert "Refit this series" in text
    assert (
        "beacon forecasts refresh --element "
        "SubNetwork=Harbour,ManagedElement=SITE-0777,EUtranCellFDD=C1 --kpi prb_util_dl"
    ) in text


def test_growth_raises_and_offload_lowers_breach_risk(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        base_chart, _, base_table, _ = what_if(page, sample)
        chart, histogram, table, note = what_if(page, sample, growth=15)
        _, _, relief, _ = what_if(page, sample, offload=40, offload_from="2000-01-01")
    p30 = _find(base_table, "forecast-whatif-p30").children
    grown = _find(table, "forecast-whatif-p30").children
    relieved = _find(relief, "forecast-whatif-p30").children
    assert _pct(grown) > _pct(p30) > _pct(relieved)
    assert "earlier" in text_of(table)
    assert "what-if median" in {t.get("name") for t in _traces(chart)}
    assert "what-if median" not in {t.get("name") for t in _traces(base_chart)}
    assert {t["name"] for t in _traces(histogram)} == {"current forecast", "what-if"}
    assert "Under the what-if" in note


def test_growth_from_a_later_date_moves_less(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        _, _, now, _ = what_if(page, sample, growth=20)
        _, _, later, _ = what_if(page, sample, growth=20, growth_from="2999-01-01")
    assert _pct(_find(later, "forecast-whatif-p30").children) <= _pct(
        _find(now, "forecast-whatif-p30").children
    )


@pytest.mark.parametrize(
    "key",
    [None, "x", {"element_id": "abc", "kpi": "prb_util_dl"}, {"element_id": 99999, "kpi": "x"}],
)
def test_crafted_what_if_requests_change_nothing(page, signed_in, sample, key) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        out = run_callback(page.what_if, "1e9", {"x": 1}, "-5", 12, key, triggered="x.value")
    assert all(o is not None and type(o).__name__ == "NoUpdate" for o in out)


def test_absurd_what_if_values_are_clamped(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        _, _, table, _ = what_if(page, sample, growth="1e9", offload=250, offload_from="garbage")
    assert "What-if" in text_of(table)


def test_fallback_and_insufficient_history_banners(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        fallback = text_of(page.layout(element_id=str(sample.link), kpi="link_util"))
        short = page.layout(element_id=str(sample.fresh), kpi="prb_util_dl")
        naive = text_of(page.layout(element_id=str(sample.calm), kpi="prb_util_dl"))
    assert "Fallback forecast" in fallback
    assert "timed out after 60 s" in fallback
    assert "Seasonal naive (fallback)" in fallback
    short_text = text_of(short)
    assert "Not enough history to forecast yet" in short_text
    assert "Only 9 days of history" in short_text
    assert _find(short, page.HISTOGRAM) is None  # no paths, no what-if
    assert _find(short, page.GROWTH) is None
    assert "Seasonal naive beat Prophet in backtest" in naive


def test_kpi_without_capacity_is_forecast_only(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(element_id=str(sample.hot), kpi="active_users")
    assert "forecast only" in text_of(layout)
    assert _find(layout, page.GROWTH) is None


@pytest.mark.parametrize(
    ("element", "kpi"), [("99999", "prb_util_dl"), ("abc", "prb_util_dl"), ("0", "x"), (None, None)]
)
def test_unknown_series_is_a_clear_message(page, signed_in, sample, element, kpi) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        assert "No forecast for this series" in text_of(page.layout(element_id=element, kpi=kpi))


def test_what_if_is_read_only_and_open_to_every_role(app: Dash, page) -> None:  # type: ignore[no-untyped-def]
    policies = app.server.extensions["beacon"].callbacks
    mine = [o for o in policies if "forecast-series-" in o or "forecast-whatif" in o]
    assert len(mine) == 1
    assert policies[mine[0]].roles == ALL_ROLES
    assert not policies[mine[0]].mutates


def _pct(text: str) -> float:
    return {"<1 %": 0.5, ">99 %": 99.5}.get(text) or float(text.rstrip(" %"))


def test_no_breach_at_all_says_so_in_the_histogram(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(element_id=str(sample.calm), kpi="prb_util_dl")
    notes = [a.text for a in _find(layout, page.HISTOGRAM).figure.layout.annotations]
    assert "No sampled future breaches within 90 days" in notes
    assert "0 % of the sampled futures breach within 90 days." in text_of(layout)


def test_failed_forecast_banner_and_old_forecast_notice() -> None:
    from datetime import timedelta

    from components.forecast_panels import age_notice, status_banner
    from services.db.models import utcnow

    banner = status_banner("failed", "Stan crashed", model="prophet")
    assert "The last forecast run failed" in text_of(banner)
    assert "notice-bad" in banner.className
    assert status_banner("ok", "", model="prophet") is None
    now = utcnow()
    assert age_notice(now - timedelta(hours=20), now=now) is None
    assert "fitted 4 d ago" in text_of(age_notice(now - timedelta(days=4), now=now))


def test_series_names_network_and_forecaster_owners(page, signed_in, db: Database, sample) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
    with signed_in("viewer"):
        layout = page.layout(element_id=str(sample.hot), kpi="prb_util_dl")
    strip = text_of(_find(layout, "forecast-series-owners"))
    # Region "Harbour" has no team of its own: the RAN domain owner answers for it.
    assert "Network: RAN · Harbour" in strip
    assert "RAN North operations" in strip
    assert "AI: forecaster" in strip
    assert "AI platform" in strip
