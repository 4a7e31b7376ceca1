"""Forecast portfolio page: risk-ranked grid, filters, tiles, job progress and CSV export."""

from __future__ import annotations

import csv
import importlib
import io
from datetime import timedelta

import pytest
from dash import Dash
from forecast_page_support import ForecastSample, add_forecasts
from pages_support import run_callback, text_of

from services.auth import ALL_ROLES
from services.db import Database
from services.db.models import JobRun, utcnow


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.forecasts")


@pytest.fixture
def sample(db: Database) -> ForecastSample:
    with db.session(write=True) as session:
        return add_forecasts(session)


def load(page, **filters):  # type: ignore[no-untyped-def]
    keys = ("region", "domain", "kpi", "status", "min_p", "element")
    return run_callback(page.load_portfolio, *(filters.get(k) for k in keys), None)


def test_portfolio_is_ranked_by_breach_risk(page, signed_in, sample: ForecastSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, shown, tiles, empty = load(page)
    assert empty is None
    assert shown == "5 series, riskiest first"
    first = rows[0]
    assert first["id"] == f"{sample.hot}-prb_util_dl"
    assert first["link"] == f"[SITE\\-0777 C1](/forecasts/{sample.hot}/prb_util_dl)"
    assert first["p90"] > 50
    assert first["breach"] != "—"
    assert first["model"] == "Prophet"
    assert first["mape"] == 4.1
    assert first["naive_mape"] == 6.3
    assert first["now"].endswith("/ 80 %")
    by_id = {r["id"]: r for r in rows}
    fallback = by_id[f"{sample.link}-link_util"]
    assert fallback["model"] == "Naive"
    assert fallback["status"] == "fallback"
    assert "timed out" in fallback["status_detail"]
    calm = by_id[f"{sample.calm}-prb_util_dl"]
    assert calm["p90"] == 0
    assert calm["breach"] == "—"
    assert calm["model"] == "Naive"
    assert by_id[f"{sample.fresh}-prb_util_dl"]["status"] == "too short"
    assert by_id[f"{sample.hot}-active_users"]["now"].endswith("/ none")
    text = text_of(tiles)
    assert "At risk ≤ 90 d" in text
    assert "Fallbacks" in text
    assert "Too little history" in text


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"region": "Inland"}, {"link_util"}),
        ({"status": "fallback"}, {"link_util"}),
        ({"status": "insufficient_history"}, {"prb_util_dl"}),
        ({"kpi": "active_users"}, {"active_users"}),
        ({"min_p": "0.5"}, {"prb_util_dl"}),
        ({"element": "l-0777"}, {"link_util"}),
        ({"status": "nonsense", "min_p": "7"}, {"prb_util_dl", "link_util", "active_users"}),
    ],
)
def test_filters_narrow_the_portfolio(page, signed_in, sample, filters, expected) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, *_ = load(page, **filters)
    assert {r["kpi"] for r in rows} == expected


def test_filter_options_come_from_stored_forecasts(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("executive"):
        regions, domains, kpis = run_callback(page.load_options, None)
    assert {"Harbour", "Inland"} <= set(regions)
    assert {"RAN", "Transport"} <= set(domains)
    assert kpis == ["active_users", "link_util", "prb_util_dl"]


def test_empty_portfolio_explains_why(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, _, _, empty = load(page)
        assert rows == []
        assert "No forecasts yet" in text_of(empty)


def test_filters_that_match_nothing_say_so(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, _, _, empty = load(page, region="Nowhere")
    assert rows == []
    assert "No forecasts match these filters" in text_of(empty)


def test_csv_export_has_every_matching_series(page, signed_in, sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        download = run_callback(
            page.export_csv, 1, None, None, "prb_util_dl", None, None, None, triggered="x"
        )
    assert download["filename"].startswith("beacon-capacity-forecasts-")
    rows = list(csv.DictReader(io.StringIO(download["content"])))
    assert [r["element"] for r in rows] == ["SITE-0777 C1", "SITE-0777 C2", "SITE-0777 C3"]
    hot = rows[0]
    assert 0.5 < float(hot["p_breach_90"]) <= 1
    assert hot["breach_date"][:2] == "20"
    assert hot["model"] == "prophet"
    assert rows[2]["status"] == "insufficient_history"
    assert rows[2]["p_breach_90"] == ""


def test_csv_cells_cannot_become_formulas(page) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from components.forecast import portfolio_csv

    frame = pd.DataFrame([{"element_name": "=HYPERLINK(1)", "dn": "@x", "p_breach_90": 0.25}])
    body = portfolio_csv(frame)
    assert "'=HYPERLINK(1)" in body
    assert "'@x" in body
    assert "0.25" in body


def test_job_progress_and_last_run(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        assert "has not run yet" in text_of(run_callback(page.load_job, None))
    now = utcnow()
    with db.session(write=True) as session:
        session.add(
            JobRun(
                job_id=page.FORECAST_JOB,
                started_at=now - timedelta(hours=2),
                finished_at=now - timedelta(hours=1),
                status="ok",
                rows=120,
                detail={"fitted": 110, "fallback": 4, "insufficient": 6, "seconds": 412.0},
            )
        )
    with signed_in("viewer"):
        text = text_of(run_callback(page.load_job, None))
    assert "110 fitted, 4 fallback, 6 too short, 412 s" in text
    with db.session(write=True) as session:
        session.add(
            JobRun(job_id=page.FORECAST_JOB, started_at=now, status="running", progress=0.4)
        )
    with signed_in("viewer"):
        running = run_callback(page.load_job, None)
    assert "Forecast run in progress" in text_of(running)
    assert "40% done" in text_of(running)
    assert "Previous:" in text_of(running)
    assert "(2 h ago)" in text_of(running)


def test_job_id_is_the_services(page) -> None:  # type: ignore[no-untyped-def]
    service = pytest.importorskip("services.forecast.service")
    assert service.JOB_ID == page.FORECAST_JOB


def test_page_is_open_to_every_role_and_never_writes(app: Dash, page) -> None:  # type: ignore[no-untyped-def]
    policies = app.server.extensions["beacon"].callbacks
    mine = [o for o in policies if "forecasts-" in o]
    assert len(mine) == 4
    for output in mine:
        assert policies[output].roles == ALL_ROLES
        assert not policies[output].mutates
        assert not policies[output].kiosk


def test_layout_renders_for_a_viewer(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        text = text_of(page.layout())
    assert "Capacity forecasts" in text
    assert "Export CSV" in text
