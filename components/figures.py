"""Plotly figures with one look on both themes (transparent backgrounds, mid-grey text)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

PALETTE = ("#4c9aff", "#f2a93b", "#3fb950", "#d2a8ff", "#ff7b72", "#39c5cf", "#e3b341")
TEXT = "#8a97a8"
GRID = "rgba(138, 151, 168, 0.22)"


def base_layout(
    fig: go.Figure, *, height: int = 320, y_title: str | None = None, wall: bool = False
) -> go.Figure:
    """Apply Beacon's neutral chart styling in place; `wall` sizes text for 3-5 m away."""
    fig.update_layout(
        height=height,
        margin={"l": 64 if wall else 48, "r": 16, "t": 12, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": TEXT, "size": 18 if wall else 13},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        hovermode="x unified",
        uirevision="keep",  # keep zoom and hidden traces across refreshes
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False, showline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False, title_text=y_title)
    return fig


def region_trend(
    frame: pd.DataFrame,
    *,
    unit: str,
    threshold: float | None = None,
    height: int = 320,
    wall: bool = False,
) -> go.Figure:
    """One line per region over time; a dashed line marks the capacity threshold."""
    fig = go.Figure()
    for i, (region, part) in enumerate(frame.groupby("region", sort=True)):
        part = part.sort_values("hour")
        fig.add_trace(
            go.Scatter(
                x=part["hour"],
                y=part["value"].round(1),
                mode="lines",
                name=str(region),
                line={"width": 3 if wall else 2, "color": PALETTE[i % len(PALETTE)]},
                hovertemplate=f"%{{y:.1f}} {unit}<extra>{region}</extra>",
            )
        )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line={"dash": "dash", "color": "#ff5f5f", "width": 1.5},
            annotation_text=f"capacity {threshold:g} {unit}",
            annotation_position="top left",
            annotation_font_color="#ff5f5f",
        )
    return base_layout(fig, height=height, y_title=unit, wall=wall)


def period_volume_lines(frame: pd.DataFrame, *, height: int = 300, wall: bool = False) -> go.Figure:
    """Records accepted per data period, one line per source; dips are missing data."""
    fig = go.Figure()
    for i, (source, part) in enumerate(frame.groupby("source", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=part["period_end"],
                y=part["accepted"],
                name=str(source),
                mode="lines",
                line={"width": 3 if wall else 2, "color": PALETTE[i % len(PALETTE)], "shape": "hv"},
                hovertemplate="%{y:,} records<extra>" + str(source) + "</extra>",
            )
        )
    fig.update_yaxes(rangemode="tozero")
    return base_layout(fig, height=height, y_title="records per period", wall=wall)
