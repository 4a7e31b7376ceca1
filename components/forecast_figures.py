"""Forecast figures: history with calibrated bands, breach-date distribution, components.

SVG traces only: a series page holds several charts and WebGL contexts are scarce.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.figures import GRID, PALETTE, TEXT, base_layout

HISTORY = "#1f6feb"
FORECAST = "#5a6778"
BAND_80 = "rgba(31, 111, 235, 0.22)"
BAND_95 = "rgba(31, 111, 235, 0.10)"
SCENARIO = "#d4580f"
SCENARIO_BAND = "rgba(212, 88, 15, 0.14)"
THRESHOLD = "#c4202b"
CHANGEPOINT = "rgba(138, 151, 168, 0.75)"
# Above this many history points the chart keeps each bucket's extremes (spikes survive).
MAX_HISTORY_POINTS = 1200
MAX_CHANGEPOINTS = 12
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
COMPONENT_TITLES = {
    "trend": "Trend",
    "weekly": "Weekly pattern",
    "yearly": "Yearly pattern",
    "daily": "Daily pattern",
    "holidays": "Holiday effects",
}
# The mode bar would sit on the legend and annotations; drag still zooms, double-click resets.
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False}


def downsample(frame: pd.DataFrame, *, limit: int = MAX_HISTORY_POINTS) -> pd.DataFrame:
    """At most ~`limit` rows of (ds, y), keeping each bucket's minimum and maximum."""
    frame = frame.dropna(subset=["y"]).sort_values("ds")
    if len(frame) <= limit:
        return frame
    bucket = np.arange(len(frame)) // int(np.ceil(len(frame) / (limit / 2)))
    grouped = frame.assign(_b=bucket).groupby("_b")["y"]
    keep = pd.Index(grouped.idxmin()).union(pd.Index(grouped.idxmax()))
    return frame.loc[keep].sort_values("ds")


def forecast_figure(
    history: pd.DataFrame,
    points: pd.DataFrame,
    *,
    unit: str,
    threshold: float | None,
    changepoints: Sequence[dict[str, Any]] = (),
    scenario: pd.DataFrame | None = None,
    breach: pd.Timestamp | None = None,
    height: int = 420,
) -> go.Figure:
    """Observed busy hour, forecast with 80/95% bands, threshold, changepoints, what-if."""
    suffix = "" if unit in ("", "count") else f" {unit}"
    fig = go.Figure()
    if len(points):
        _band(fig, points, "lower_95", "upper_95", BAND_95, "95% interval", suffix)
        _band(fig, points, "lower_80", "upper_80", BAND_80, "80% interval", suffix)
        fig.add_trace(
            go.Scatter(
                x=points["ds"],
                y=points["yhat"],
                mode="lines",
                name="forecast",
                line={"color": FORECAST, "dash": "dash", "width": 2},
                hovertemplate=f"forecast %{{y:.3g}}{suffix}<extra></extra>",
            )
        )
    shown = downsample(history) if len(history) else history
    if len(shown):
        fig.add_trace(
            go.Scatter(
                x=shown["ds"],
                y=shown["y"],
                mode="lines",
                name="observed (daily busy hour)",
                line={"color": HISTORY, "width": 1.6},
                hovertemplate=f"observed %{{y:.3g}}{suffix}<extra></extra>",
            )
        )
    if scenario is not None and len(scenario):
        _scenario(fig, scenario, suffix)
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line={"dash": "dash", "color": THRESHOLD, "width": 1.5},
            annotation_text=f"capacity {threshold:g}{suffix}",
            annotation_position="top left",
            annotation_font_color=THRESHOLD,
        )
    for point in _significant(changepoints):
        fig.add_vline(x=point, line={"color": CHANGEPOINT, "width": 1, "dash": "dot"})
    if len(changepoints):
        # One legend entry for all markers: shapes have none of their own.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name="trend changepoint",
                line={"color": CHANGEPOINT, "dash": "dot"},
            )
        )
    if len(points):
        start = pd.Timestamp(points["ds"].min())
        fig.add_vline(x=start, line={"color": TEXT, "width": 1})
        fig.add_annotation(
            x=start, y=1, yref="paper", text="forecast →", showarrow=False, xanchor="left",
            font={"color": TEXT, "size": 11},
        )  # fmt: skip
    if breach is not None:
        fig.add_vline(x=pd.Timestamp(breach), line={"color": THRESHOLD, "width": 1.5})
        fig.add_annotation(
            x=pd.Timestamp(breach), y=0, yref="paper", text="likely breach", showarrow=False,
            xanchor="left", yanchor="bottom", font={"color": THRESHOLD, "size": 11},
        )  # fmt: skip
    fig = base_layout(fig, height=height, y_title=unit)
    fig.update_layout(legend={"y": -0.14})
    return fig


def _band(
    fig: go.Figure, points: pd.DataFrame, low: str, high: str, colour: str, name: str, suffix: str
) -> None:
    fig.add_trace(
        go.Scatter(
            x=points["ds"],
            y=points[high],
            mode="lines",
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=points["ds"],
            y=points[low],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=colour,
            name=name,
            legendgroup=name,
            customdata=points[high],
            hovertemplate=f"{name} %{{y:.3g}}–%{{customdata:.3g}}{suffix}<extra></extra>",
        )
    )


def _scenario(fig: go.Figure, scenario: pd.DataFrame, suffix: str) -> None:
    fig.add_trace(
        go.Scatter(
            x=scenario["ds"],
            y=scenario["high"],
            mode="lines",
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup="scenario",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=scenario["ds"],
            y=scenario["low"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=SCENARIO_BAND,
            name="what-if 80%",
            legendgroup="scenario",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=scenario["ds"],
            y=scenario["median"],
            mode="lines",
            name="what-if median",
            line={"color": SCENARIO, "width": 2},
            legendgroup="scenario",
            hovertemplate=f"what-if %{{y:.3g}}{suffix}<extra></extra>",
        )
    )


def _significant(changepoints: Sequence[dict[str, Any]]) -> list[pd.Timestamp]:
    """The largest trend changes first, at most MAX_CHANGEPOINTS of them."""
    ranked = sorted(
        (c for c in changepoints if isinstance(c, dict) and c.get("ds")),
        key=lambda c: -abs(float(c.get("delta") or 0.0)),
    )
    return [pd.Timestamp(c["ds"]) for c in ranked[:MAX_CHANGEPOINTS]]


def scenario_frame(ds: pd.DatetimeIndex | pd.Series, samples: np.ndarray) -> pd.DataFrame:
    """Median and 80% range per day of (horizon, n_paths) sample paths."""
    if samples.size == 0:
        return pd.DataFrame(columns=["ds", "median", "low", "high"])
    low, median, high = np.nanpercentile(samples, [10, 50, 90], axis=1)
    return pd.DataFrame({"ds": list(ds), "median": median, "low": low, "high": high})


def breach_histogram(
    start: pd.Timestamp,
    first_breach_day: np.ndarray,
    *,
    horizon: int,
    scenario: np.ndarray | None = None,
    height: int = 300,
) -> go.Figure:
    """When the sampled futures first breach, by week, as a share of all paths."""
    fig = go.Figure()
    series = [("current forecast", first_breach_day, PALETTE[0])]
    if scenario is not None:
        series.append(("what-if", scenario, SCENARIO))
    edges = np.arange(0, horizon + 7, 7)
    for name, days, colour in series:
        days = np.asarray(days, dtype=float)
        total = max(len(days), 1)
        counts, _ = np.histogram(days[~np.isnan(days)], bins=edges)
        weeks = [pd.Timestamp(start) + pd.Timedelta(days=int(d)) for d in edges[:-1]]
        fig.add_trace(
            go.Bar(
                x=weeks,
                y=100.0 * counts / total,
                name=name,
                marker={"color": colour},
                opacity=0.85,
                offsetgroup=name,
                hovertemplate="week of %{x|%b %d}: %{y:.0f}% of paths<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.15)
    if not any(np.isfinite(np.asarray(days, dtype=float)).any() for _, days, _ in series):
        fig.add_annotation(
            text=f"No sampled future breaches within {horizon} days",
            xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
            font={"color": TEXT, "size": 14},
        )  # fmt: skip
    fig = base_layout(fig, height=height, y_title="% of sampled futures")
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(rangemode="tozero", ticksuffix="%")
    return fig


def components_figure(components: dict[str, Any], *, height: int = 240) -> go.Figure | None:
    """Small multiples of the model's components: trend over time, seasonal profiles."""
    ds = pd.to_datetime(pd.Series(components.get("ds") or []), errors="coerce")
    names = [k for k in COMPONENT_TITLES if _values(components, k, len(ds)) is not None]
    if not len(ds) or not names:
        return None
    fig = make_subplots(
        rows=1,
        cols=len(names),
        subplot_titles=[COMPONENT_TITLES[n] for n in names],
        horizontal_spacing=0.06,
    )
    for col, name in enumerate(names, start=1):
        values = _values(components, name, len(ds))
        assert values is not None
        x, y = _profile(name, ds, values)
        kind = go.Bar if name == "weekly" else go.Scatter
        extra: dict[str, Any] = {"marker": {"color": PALETTE[col % len(PALETTE)]}}
        if kind is go.Scatter:
            extra = {"mode": "lines", "line": {"color": PALETTE[col % len(PALETTE)], "width": 2}}
        fig.add_trace(
            kind(x=x, y=y, name=COMPONENT_TITLES[name], showlegend=False, **extra), row=1, col=col
        )
    fig = base_layout(fig, height=height)
    fig.update_layout(margin={"l": 40, "r": 12, "t": 28, "b": 30}, hovermode="closest")
    fig.update_annotations(font={"size": 12, "color": TEXT})
    fig.update_xaxes(gridcolor=GRID)
    return fig


def _values(components: dict[str, Any], name: str, n: int) -> np.ndarray | None:
    raw = components.get(name)
    if not isinstance(raw, list) or len(raw) != n or n == 0:
        return None
    values = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    return None if np.all(np.isnan(values)) else values


def _profile(name: str, ds: pd.Series, values: np.ndarray) -> tuple[list[Any], list[float]]:
    """Seasonal components as one cycle (weekday or day of year); others over time."""
    frame = pd.DataFrame({"ds": ds, "v": values}).dropna()
    if name == "weekly":
        means = frame.groupby(frame["ds"].dt.day_of_week)["v"].mean()
        return [WEEKDAYS[i] for i in means.index], [float(v) for v in means]
    if name == "daily":
        means = frame.groupby(frame["ds"].dt.hour)["v"].mean()
        return [f"{int(h):02d}:00" for h in means.index], [float(v) for v in means]
    if name == "yearly":
        means = frame.groupby(frame["ds"].dt.day_of_year)["v"].mean()
        days = pd.Timestamp("2001-01-01") + pd.to_timedelta(means.index - 1, unit="D")
        return list(days), [float(v) for v in means]
    shown = frame if len(frame) <= MAX_HISTORY_POINTS else frame.iloc[:: len(frame) // 600 + 1]
    return list(shown["ds"]), [float(v) for v in shown["v"]]
