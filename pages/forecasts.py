"""Forecasts: every element × KPI ranked by capacity breach risk, with filters and CSV export."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

from components.cards import notice, section
from components.forecast import (
    PORTFOLIO_COLUMNS,
    ROW_CLASSES,
    STATUS_TEXT,
    portfolio_csv,
    portfolio_empty,
    portfolio_rows,
    summary_tiles,
)
from components.forecast_job import job_status
from components.format import count
from components.forms import field
from components.grid import data_grid
from services import scheduler
from services.auth import ALL_ROLES
from services.db.models import utcnow
from services.errors import BeaconError
from services.forecast import store
from services.web.authz import allow
from services.web.context import beacon

# Planners, engineers and executives all read risk; wall screens show the overview instead.
PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/forecasts",
    name="Forecasts",
    title="Forecasts · Beacon",
    order=12,
    roles=PAGE_ROLES,
)

REFRESH = "forecasts-refresh"
JOB_REFRESH = "forecasts-job-refresh"
JOB = "forecasts-job"
TILES = "forecasts-tiles"
REGION = "forecasts-region"
DOMAIN = "forecasts-domain"
KPI = "forecasts-kpi"
STATUS = "forecasts-status"
MIN_P = "forecasts-min-p"
ELEMENT = "forecasts-element"
GRID = "forecasts-grid"
COUNT = "forecasts-count"
EMPTY = "forecasts-empty"
EXPORT = "forecasts-export"
DOWNLOAD = "forecasts-download"
REFRESH_MS = 120_000
# Progress of a running job is worth a quicker look; the query is one indexed row.
JOB_REFRESH_MS = 10_000
ROW_LIMIT = 2000
# The job id services.forecast.service registers (importing it would pull in the executor).
FORECAST_JOB = "forecast.nightly"
MIN_P_OPTIONS = {"0.1": "≥ 10 % in 90 d", "0.5": "≥ 50 % in 90 d", "0.9": "≥ 90 % in 90 d"}
FILTER_IDS = (REGION, DOMAIN, KPI, STATUS, MIN_P, ELEMENT)


def layout(**_query: str) -> html.Div:
    """The portfolio frame; tiles, grid and job state fill from stored forecasts."""
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Interval(id=JOB_REFRESH, interval=JOB_REFRESH_MS),
            dcc.Download(id=DOWNLOAD),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Capacity forecasts"),
                        html.P(
                            "Which cells and links will run out of capacity, when, and how sure "
                            "the forecast is. Ranked by the probability of a sustained breach "
                            "within 90 days; open a series for its bands, backtest and what-if."
                        ),
                    ]
                ),
            ),
            html.Div(id=TILES),
            section(
                "Forecast job",
                html.Div(id=JOB, className="forecast-job"),
                subtitle="fits run in worker processes, never in this page",
            ),
            section(
                "Portfolio",
                html.Div(
                    [
                        _filters(),
                        html.Div(id=EMPTY),
                        data_grid(
                            GRID,
                            columns=PORTFOLIO_COLUMNS,
                            row_id="id",
                            auto_height=True,
                            row_class_rules=ROW_CLASSES,
                        ),
                    ]
                ),
                subtitle=html.Span(id=COUNT),
                actions=[html.Button("Export CSV", id=EXPORT, className="btn btn-quiet")],
            ),
        ],
    )


def _filters() -> html.Div:
    def dropdown(id_: str, placeholder: str, **extra: Any) -> dcc.Dropdown:
        return dcc.Dropdown(id=id_, placeholder=placeholder, **extra)

    return html.Div(
        className="form-grid forecast-filters",
        children=[
            field("Region", dropdown(REGION, "any region")),
            field("Domain", dropdown(DOMAIN, "any domain")),
            field("KPI", dropdown(KPI, "any KPI")),
            field(
                "Status",
                dropdown(
                    STATUS,
                    "any status",
                    options=[{"label": t, "value": k} for k, t in STATUS_TEXT.items()],
                ),
            ),
            field(
                "Breach risk",
                dropdown(
                    MIN_P,
                    "any risk",
                    options=[{"label": t, "value": k} for k, t in MIN_P_OPTIONS.items()],
                ),
            ),
            field(
                "Element",
                dcc.Input(
                    id=ELEMENT,
                    type="search",
                    debounce=True,
                    placeholder="name or DN contains",
                    className="input",
                ),
            ),
        ],
    )


@dash.callback(
    Output(REGION, "options"),
    Output(DOMAIN, "options"),
    Output(KPI, "options"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_options(_n: int | None) -> tuple[list, list, list]:
    """Choices that have forecasts behind them."""
    with beacon().db.session() as session:
        frame = store.portfolio(session)
    return tuple(_choices(frame, column) for column in ("region", "domain", "kpi"))  # type: ignore[return-value]


def _choices(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame or not len(frame):
        return []
    return sorted({str(v) for v in frame[column].dropna() if str(v)})


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Output(TILES, "children"),
    Output(EMPTY, "children"),
    *(Input(id_, "value") for id_ in FILTER_IDS),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_portfolio(*values: Any) -> tuple[list[dict], str, Any, Any]:
    """Forecasts matching the filters, riskiest first (at most ROW_LIMIT rows), with tiles."""
    ctx = beacon()
    try:
        with ctx.db.session() as session:
            frame = filtered(session, *values[: len(FILTER_IDS)])
            stored = bool(len(frame)) or bool(len(store.portfolio(session, limit=1)))
    except BeaconError as error:
        return [], "", None, notice(error.message, tone="warn")
    rows = portfolio_rows(frame.head(ROW_LIMIT), zone=ctx.settings.zone)
    shown = f"{count(len(frame))} series, riskiest first" if len(frame) else "no series"
    if len(frame) > len(rows):
        shown = f"the {count(len(rows))} riskiest of {count(len(frame))} series (export has all)"
    empty = None if rows else portfolio_empty(stored=stored)
    return rows, shown, summary_tiles(frame), empty


def filtered(
    session: Any,
    region: Any = None,
    domain: Any = None,
    kpi: Any = None,
    status: Any = None,
    min_p: Any = None,
    element: Any = None,
) -> pd.DataFrame:
    """The risk-ranked portfolio narrowed by the filter controls (as the browser sends them)."""
    wanted = _text(status)
    frame = store.portfolio(
        session,
        region=_text(region),
        domain=_text(domain),
        kpi=_text(kpi),
        status=wanted if wanted in STATUS_TEXT else None,
        min_p90=_number(min_p),
    )
    needle = _text(element)
    if needle and len(frame):
        hit = frame["element_name"].astype(str).str.contains(needle, case=False, regex=False)
        hit |= frame["dn"].astype(str).str.contains(needle, case=False, regex=False)
        frame = frame[hit]
    return frame


@dash.callback(
    Output(JOB, "children"),
    Input(JOB_REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_job(_n: int | None) -> Any:
    """The latest forecast run: progress while it runs, its outcome after."""
    ctx = beacon()
    runs = scheduler.recent_runs(ctx.db, job_id=FORECAST_JOB, limit=2)
    return job_status(runs, zone=ctx.settings.zone, now=utcnow())


@dash.callback(
    Output(DOWNLOAD, "data"),
    Input(EXPORT, "n_clicks"),
    *(State(id_, "value") for id_ in FILTER_IDS),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def export_csv(clicks: int | None, *values: Any) -> Any:
    """Every forecast matching the filters (not only the rows shown) as CSV."""
    if not clicks:
        return dash.no_update
    with beacon().db.session() as session:
        frame = filtered(session, *values)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return dcc.send_string(portfolio_csv(frame), f"beacon-capacity-forecasts-{stamp}.csv")


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 1 else None
