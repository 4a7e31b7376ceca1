"""Detector: what model runs, how its confidence matches operator verdicts, and its health."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from components.cards import section
from components.detector import (
    GRAPH_CONFIG,
    calibration_empty,
    calibration_tiles,
    health_tiles,
    kpi_table,
    model_facts,
    reliability_figure,
    runs_table,
    verdict_table,
    volume_figure,
    volume_note,
)
from services.anomaly import review
from services.auth import ENGINEER_ROLES, Role
from services.db.models import utcnow
from services.web.authz import allow
from services.web.context import beacon

# The AI system owner's page (engineers, admins); executives read it, nothing here changes.
PAGE_ROLES = ENGINEER_ROLES | {Role.EXECUTIVE}

dash.register_page(
    __name__,
    path="/detector",
    name="Detector",
    title="Detector · Beacon",
    order=15,
    roles=PAGE_ROLES,
)

REFRESH = "detector-refresh"
MODEL = "detector-model"
CAL_TILES = "detector-calibration-tiles"
CAL_BODY = "detector-calibration-body"
CURVE = "detector-reliability"
CAL_NOTE = "detector-calibration-note"
HEALTH_TILES = "detector-health-tiles"
RUNS = "detector-runs-panel"
VOLUME = "detector-volume"
VOLUME_NOTE = "detector-volume-note"
REFRESH_MS = 60_000
RUN_LIMIT = 15
VOLUME_DAYS = 30
VERDICT_RULE = (
    "Each judged episode counts once, with its latest verdict. “True anomaly” counts as "
    "confirmed; “not an anomaly”, “expected” and “new normal” count as not confirmed."
)


def layout(**_query: str) -> html.Div:
    """The review frame; every panel fills from stored data on load and each minute."""
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Detector"),
                        html.P(
                            "The anomaly detector in production: which model runs, whether its "
                            "confidence matches what operators concluded, and whether it keeps up."
                        ),
                    ]
                ),
            ),
            section("Model in production", html.Div(id=MODEL)),
            section(
                "Calibration against operator verdicts",
                html.Div(
                    [
                        html.Div(id=CAL_TILES),
                        html.P(VERDICT_RULE, className="muted"),
                        html.Div(
                            className="columns",
                            children=[
                                dcc.Graph(id=CURVE, config=GRAPH_CONFIG, className="chart"),
                                html.Div(id=CAL_BODY),
                            ],
                        ),
                    ]
                ),
                subtitle=html.Span(id=CAL_NOTE),
            ),
            section(
                "Detection health",
                html.Div(
                    [
                        html.Div(id=HEALTH_TILES),
                        html.Div(style={"height": "12px"}),
                        html.Div(id=RUNS),
                    ]
                ),
                subtitle=f"last {RUN_LIMIT} runs of the scheduler job {review.JOB_ID}",
            ),
            section(
                "Alert volume",
                dcc.Graph(id=VOLUME, config=GRAPH_CONFIG, className="chart"),
                subtitle=html.Span(id=VOLUME_NOTE),
            ),
        ],
    )


@dash.callback(
    Output(MODEL, "children"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_model(_n: int | None) -> html.Div:
    """Detector, version, thresholds and calibration provenance."""
    with beacon().db.session() as session:
        summary = review.model_summary(session)
    return model_facts(summary)


@dash.callback(
    Output(CAL_TILES, "children"),
    Output(CURVE, "figure"),
    Output(CURVE, "style"),
    Output(CAL_BODY, "children"),
    Output(CAL_NOTE, "children"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_calibration(_n: int | None) -> tuple:
    """Reliability curve and ECE from the latest verdicts; an empty state below the minimum."""
    with beacon().db.session() as session:
        result = review.calibration_review(session)
    tiles = calibration_tiles(result, minimum=review.MIN_VERDICTS)
    tables = html.Div(
        [
            html.H3("Verdicts by label"),
            verdict_table(result.by_label),
            html.H3("Precision by KPI"),
            kpi_table(result.by_kpi),
        ]
    )
    note = f"n = {result.n} judged episodes"
    if not result.enough:
        body = html.Div([calibration_empty(result, minimum=review.MIN_VERDICTS), tables])
        return tiles, {}, {"display": "none"}, body, note
    figure = reliability_figure(result.reliability)
    return tiles, figure, {}, tables, note


@dash.callback(
    Output(HEALTH_TILES, "children"),
    Output(RUNS, "children"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_health(_n: int | None) -> tuple:
    """How far behind detection is, and the job's last runs."""
    ctx = beacon()
    now = utcnow()
    with ctx.db.session() as session:
        lag = review.detection_lag(session, now=now)
        runs = review.detection_runs(session, limit=RUN_LIMIT)
    zone = ctx.settings.zone
    return health_tiles(lag, runs, zone=zone, now=now), runs_table(runs, zone=zone)


@dash.callback(
    Output(VOLUME, "figure"),
    Output(VOLUME_NOTE, "children"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_volume(_n: int | None) -> tuple:
    """Episodes opened per day by severity over the last 30 days."""
    with beacon().db.session() as session:
        volume = review.daily_volume(session, now=utcnow(), days=VOLUME_DAYS)
    return volume_figure(volume), volume_note(volume)
