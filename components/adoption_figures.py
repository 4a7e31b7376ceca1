"""Weekly adoption charts: SVG traces only (a page of them must never run out of WebGL contexts)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from components.figures import base_layout

GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False}
VERDICT_COLOURS = {"accepted": "#3fb950", "overridden": "#f2a93b", "rejected": "#ff7b72"}
VERDICT_WORDS = {
    "accepted": "accepted",
    "overridden": "changed by a person",
    "rejected": "rejected",
}
RATE_LINES = (
    ("acceptance_rate", "accepted", "#3fb950", "solid"),
    ("override_rate", "changed by a person", "#f2a93b", "solid"),
    ("rejection_rate", "rejected", "#ff7b72", "solid"),
    ("precision", "AI right when checked", "#4c9aff", "dash"),
)


def decisions_figure(trend: pd.DataFrame, *, height: int = 280) -> go.Figure:
    """Decisions per week as stacked bars: accepted, changed, rejected."""
    fig = go.Figure()
    weeks = pd.to_datetime(trend["week"]) if len(trend) else []
    for column, colour in VERDICT_COLOURS.items():
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=trend[column] if len(trend) else [],
                name=VERDICT_WORDS[column],
                marker_color=colour,
                hovertemplate="%{y} " + VERDICT_WORDS[column] + "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", bargap=0.25)
    fig.update_xaxes(tickformat="%d %b", dtick=7 * 86_400_000 * 2)
    fig.update_yaxes(rangemode="tozero")
    return base_layout(fig, height=height, y_title="decisions")


def rates_figure(trend: pd.DataFrame, *, height: int = 280) -> go.Figure:
    """Weekly shares of decisions per verdict, and precision, in percent."""
    fig = go.Figure()
    weeks = pd.to_datetime(trend["week"]) if len(trend) else []
    for column, words, colour, dash in RATE_LINES:
        values = trend[column].astype(float) * 100 if len(trend) else []
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=values,
                name=words,
                mode="lines+markers",
                connectgaps=False,
                line={"color": colour, "width": 2, "dash": dash},
                hovertemplate="%{y:.0f} % " + words + "<extra></extra>",
            )
        )
    fig.update_xaxes(tickformat="%d %b", dtick=7 * 86_400_000 * 2)
    fig.update_yaxes(range=[0, 100], ticksuffix=" %")
    return base_layout(fig, height=height, y_title="share of decisions")
