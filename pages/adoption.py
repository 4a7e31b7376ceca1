"""Adoption: how far each AI use case has moved from advisory to automated, read by executives."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from components.adoption import (
    network_charts,
    network_tiles,
    response_times,
    simulated_banner,
    use_case_card,
)
from components.cards import empty_state, section
from services import adoption
from services.auth import ALL_ROLES
from services.csv_safe import safe_csv_text
from services.db.models import utcnow
from services.web.authz import allow
from services.web.context import beacon

# Executives are the audience; every signed-in role may read it. Nothing here changes state.
PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/adoption",
    name="Adoption",
    title="Adoption · Beacon",
    order=42,
    roles=PAGE_ROLES,
)

REFRESH = "adoption-refresh"
WEEKS = "adoption-weeks"
SIMULATED = "adoption-simulated"
NETWORK = "adoption-network"
NETWORK_TIMES = "adoption-network-times"
CHARTS = "adoption-charts"
USE_CASES = "adoption-use-cases"
DOWNLOAD = "adoption-download"
CSV_SUMMARY = "adoption-csv-summary"
CSV_TREND = "adoption-csv-trend"
REFRESH_MS = 300_000
WEEK_CHOICES = (8, 12, 26)
DEFAULT_WEEKS = adoption.DEFAULT_WEEKS
DEFINITIONS = (
    "How to read it: a recommendation is decided once a person accepted it, changed it "
    "(override) or rejected it. “AI right when checked” counts accepted and executed "
    "recommendations as right, and uses the review outcome where a person disagreed. "
    "Weeks start on Monday."
)


def layout(**_query: str) -> html.Div:
    """The report frame; everything fills from stored data on load and every five minutes."""
    return html.Div(
        className="page adoption-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Download(id=DOWNLOAD),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            html.H1("Adoption of AI"),
                            html.P(
                                "How far each AI use case has moved from advising people to "
                                "acting on its own, and how often people agree with it."
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            dcc.Dropdown(
                                id=WEEKS,
                                options=[
                                    {"label": f"last {w} weeks", "value": w} for w in WEEK_CHOICES
                                ],
                                value=DEFAULT_WEEKS,
                                clearable=False,
                                className="adoption-weeks",
                            ),
                            html.Button(
                                "Download summary (CSV)", id=CSV_SUMMARY, className="btn btn-quiet"
                            ),
                            html.Button(
                                "Download weekly trend (CSV)",
                                id=CSV_TREND,
                                className="btn btn-quiet",
                            ),
                        ],
                        className="adoption-controls",
                    ),
                ],
            ),
            html.Div(id=SIMULATED),
            section(
                "Across the network",
                html.Div(
                    [
                        html.Div(id=NETWORK),
                        html.Div(id=NETWORK_TIMES),
                        html.Div(id=CHARTS),
                        html.P(DEFINITIONS, className="muted small"),
                    ]
                ),
                id_="adoption-summary",
            ),
            html.Div(id=USE_CASES, className="adoption-use-cases"),
        ],
    )


@dash.callback(
    Output(SIMULATED, "children"),
    Output(NETWORK, "children"),
    Output(NETWORK_TIMES, "children"),
    Output(CHARTS, "children"),
    Output(USE_CASES, "children"),
    Input(WEEKS, "value"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_report(weeks: Any, _n: Any) -> tuple:
    """The network summary, weekly charts and one card per use case."""
    span = _weeks(weeks)
    now = utcnow()
    with beacon().db.session() as session:
        report = adoption.adoption_report(session, now=now, weeks=span)
        trend = adoption.weekly_trend(session, now=now, weeks=span)
    network = report["network"]
    times = html.Div(
        [
            html.H3("Response times on incidents"),
            response_times(network["incidents"], id_="adoption-network-mtt"),
        ],
        className="adoption-network-times",
    )
    if not report["use_cases"]:
        nothing = empty_state(
            "No AI use cases configured",
            "Use cases appear here once an admin sets them up on the Use cases page.",
        )
        return None, network_tiles(network, weeks=span), times, None, nothing
    cards = [
        use_case_card(doc, trend=trend[trend["use_case_id"] == doc["id"]], weeks=span)
        for doc in report["use_cases"]
    ]
    charts = network_charts(trend[trend["use_case_id"] == 0], weeks=span)
    return simulated_banner(network), network_tiles(network, weeks=span), times, charts, cards


@dash.callback(
    Output(DOWNLOAD, "data"),
    Input(CSV_SUMMARY, "n_clicks"),
    Input(CSV_TREND, "n_clicks"),
    State(WEEKS, "value"),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def download_csv(summary: int | None, trend: int | None, weeks: Any) -> Any:
    """The page's numbers as CSV, written on the server from the same service."""
    trigger = dash.ctx.triggered_id
    if trigger not in (CSV_SUMMARY, CSV_TREND) or not (summary or trend):
        return dash.no_update
    span = _weeks(weeks)
    now = utcnow()
    with beacon().db.session() as session:
        if trigger == CSV_SUMMARY:
            text = adoption.summary_csv(session, now=now, weeks=span)
            name = f"beacon-adoption-summary-{now:%Y%m%d}.csv"
        else:
            text = adoption.trend_csv(session, now=now, weeks=span)
            name = f"beacon-adoption-weekly-{now:%Y%m%d}.csv"
    return {"content": safe_csv_text(text), "filename": name, "type": "text/csv"}


def _weeks(value: Any) -> int:
    """The chosen span; anything else (crafted requests) falls back to the default."""
    return value if isinstance(value, int) and value in WEEK_CHOICES else DEFAULT_WEEKS
