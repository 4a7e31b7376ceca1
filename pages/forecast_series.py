"""Forecast series: one element's KPI with calibrated bands, breach timing, backtest, what-if."""

from __future__ import annotations

import shlex
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html

from components.cards import empty_state, section
from components.forecast import BREACH_RULE, model_name, probability, status_pill, value
from components.forecast_figures import (
    GRAPH_CONFIG,
    breach_histogram,
    components_figure,
    forecast_figure,
    scenario_frame,
)
from components.forecast_panels import (
    SeriesView,
    age_notice,
    backtest_panel,
    model_facts,
    risk_tiles,
    status_banner,
)
from components.forecast_whatif import whatif_comparison, whatif_controls
from components.oncall import owner_strip
from pages._params import positive_id
from services.auth import ALL_ROLES, ENGINEER_ROLES
from services.db.models import utcnow
from services.forecast import breach, store, whatif
from services.oncall.owners import FORECASTER, OwnerLine, owners_of_output
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path_template="/forecasts/<element_id>/<kpi>",
    name="Forecast series",
    title="Forecast · Beacon",
    order=13,
    roles=PAGE_ROLES,
)

SERIES = "forecast-series-key"
CHART = "forecast-series-chart"
HISTOGRAM = "forecast-series-breach"
BREACH_NOTE = "forecast-series-breach-note"
COMPONENTS = "forecast-series-components"
GROWTH = "forecast-whatif-growth"
GROWTH_FROM = "forecast-whatif-growth-from"
OFFLOAD = "forecast-whatif-offload"
OFFLOAD_FROM = "forecast-whatif-offload-from"
RESULT = "forecast-whatif-result"
WHATIF_IDS = {
    "growth": GROWTH,
    "growth_from": GROWTH_FROM,
    "offload": OFFLOAD,
    "offload_from": OFFLOAD_FROM,
}


def layout(element_id: str | None = None, kpi: str | None = None, **_query: str) -> html.Div:
    """The whole series, read once on load; the what-if recomputes from stored paths."""
    ctx = beacon()
    number = positive_id(element_id)
    view: SeriesView | None = None
    owners: list[OwnerLine] = []
    now = utcnow()
    if number is not None and kpi:
        with ctx.db.session() as session:
            detail = store.series_detail(session, element_id=number, kpi=str(kpi))
            view = None if detail is None else SeriesView.of(detail)
            owners = (
                []
                if view is None
                else owners_of_output(
                    session,
                    now=now,
                    domain=view.domain or None,
                    region=view.region,
                    component=FORECASTER,
                )
            )
    if view is None:
        return html.Div(
            className="page-message",
            id="forecast-series-not-found",
            children=[
                html.H2("No forecast for this series"),
                html.P(
                    f"There is no stored forecast for element “{element_id}” and KPI “{kpi}”. "
                    "It may not exist, have no capacity KPI, or not be forecast yet."
                ),
                dcc.Link("Back to the forecasts", href="/forecasts"),
            ],
        )
    zone = ctx.settings.zone
    principal = current_principal()
    can_refit = principal is not None and principal.role in ENGINEER_ROLES
    return html.Div(
        className="page",
        children=[
            dcc.Store(id=SERIES, data={"element_id": view.element_id, "kpi": view.kpi}),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            dcc.Link("← Forecasts", href="/forecasts", className="muted"),
                            html.H1(f"{view.kpi} on {view.element_name}"),
                            html.P(
                                [
                                    html.Span(view.dn, className="mono"),
                                    f" · {view.region or 'no region'} · {view.domain}",
                                ]
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            status_pill(view.status),
                            # No model produced anything for a too-short or failed series.
                            html.Span(
                                model_name(view.model, view.status), className="pill pill-muted"
                            )
                            if view.status in ("ok", "fallback")
                            else None,
                        ],
                        className="forecast-header-pills",
                    ),
                ],
            ),
            status_banner(view.status, view.status_detail, model=view.model, note=view.note),
            age_notice(view.meta.get("fitted_at"), now=now),
            owner_strip(owners, zone=zone, now=now, id_="forecast-series-owners"),
            risk_tiles(
                view.risk,
                threshold=view.threshold,
                unit=view.unit,
                last_value=view.last_value,
                higher_is_worse=view.higher_is_worse,
                horizon=view.horizon,
            ),
            section(
                "Forecast" if len(view.points) else "History",
                _chart(view),
                subtitle="daily busy hour · shaded: calibrated 80 % and 95 % intervals · "
                "dotted: trend changepoints"
                if len(view.points)
                else "daily busy hour · no forecast yet",
            ),
            _whatif_section(view),
            _breach_section(view),
            html.Div(
                className="columns",
                children=[
                    section(
                        "Backtest quality",
                        backtest_panel(view.backtest, model=view.model, status=view.status),
                        subtitle="how well this model did on days it had not seen",
                    ),
                    section("Model", model_facts(view.meta, zone=zone)),
                ],
            ),
            _components_section(view),
            _refit_section(view, can_refit=can_refit),
        ],
    )


def _chart(view: SeriesView, scenario: pd.DataFrame | None = None) -> Any:
    if not len(view.history) and not len(view.points):
        return empty_state("No history stored", "Daily busy-hour values appear after the rollup.")
    return dcc.Graph(
        id=CHART,
        figure=_figure(view, scenario),
        config=GRAPH_CONFIG,
        className="chart",
    )


def _figure(view: SeriesView, scenario: pd.DataFrame | None = None) -> Any:
    breach_day = view.risk.get("breach_date") if view.risk else None
    return forecast_figure(
        view.history,
        view.points,
        unit=view.unit,
        threshold=view.threshold,
        changepoints=view.changepoints,
        scenario=scenario,
        breach=breach_day if breach_day is not None and not pd.isna(breach_day) else None,
    )


def _whatif_section(view: SeriesView) -> html.Section | None:
    if view.threshold is None or view.paths is None:
        return None
    ds = pd.to_datetime(view.points["ds"])
    first, last = ds.min().strftime("%Y-%m-%d"), ds.max().strftime("%Y-%m-%d")
    baseline = _risk(view, view.paths)
    return section(
        "What-if",
        html.Div(
            [
                html.P(
                    "Apply planned traffic growth or offload (for example a new site taking 20 % "
                    "from a date) to the stored sample paths and see the breach risk move. "
                    "Nothing is refitted.",
                    className="muted",
                ),
                whatif_controls(WHATIF_IDS, first_day=first, last_day=last),
                html.Div(whatif_comparison(baseline, baseline, horizon=view.horizon), id=RESULT),
                html.P(
                    f"Both columns come from the {view.paths.shape[1]} stored sample paths, so "
                    "they can differ by a few points from the tiles above (all paths).",
                    className="muted small",
                ),
            ]
        ),
        subtitle="recomputed from the stored sample paths",
    )


def _breach_section(view: SeriesView) -> html.Section | None:
    if view.threshold is None or view.paths is None:
        return None
    return section(
        "When would it breach?",
        html.Div(
            [
                dcc.Graph(
                    id=HISTOGRAM,
                    figure=_histogram(view, _risk(view, view.paths)),
                    config=GRAPH_CONFIG,
                    className="chart",
                ),
                html.P(
                    _breach_note(_risk(view, view.paths), view.horizon),
                    id=BREACH_NOTE,
                    className="forecast-breach-note",
                ),
                html.P(BREACH_RULE, className="muted small"),
            ]
        ),
        subtitle="first sustained breach of each sampled future, by week",
    )


def _components_section(view: SeriesView) -> html.Section | None:
    figure = components_figure(view.components) if isinstance(view.components, dict) else None
    if figure is None:
        return None
    return section(
        "Components",
        dcc.Graph(id=COMPONENTS, figure=figure, config=GRAPH_CONFIG, className="chart"),
        subtitle="what the model attributes the series to: trend and seasonal patterns",
    )


def _refit_section(view: SeriesView, *, can_refit: bool) -> html.Section | None:
    if not can_refit:
        return None
    command = (
        f"beacon forecasts refresh --element {shlex.quote(view.dn)} --kpi {shlex.quote(view.kpi)}"
    )
    return section(
        "Refit this series",
        html.Div(
            [
                html.P(
                    "Forecasts are fitted by the forecast job in killable worker processes, "
                    "never by this page. The job refits this series on its own once a new "
                    "complete day is stored. To refit it now, run on the Beacon host:"
                ),
                html.Div(
                    [
                        html.Code(command, id="forecast-series-refit-command"),
                        dcc.Clipboard(target_id="forecast-series-refit-command", title="copy"),
                    ],
                    className="forecast-refit",
                ),
            ]
        ),
        subtitle="engineers and admins",
    )


def _risk(view: SeriesView, samples: np.ndarray) -> dict[str, Any]:
    """Breach risk of (horizon, n_paths) samples as the tiles' dict, plus per-path days."""
    ds = pd.DatetimeIndex(pd.to_datetime(view.points["ds"]))
    result = breach.breach_risk(
        samples,
        ds,
        threshold=float(view.threshold or 0.0),
        higher_is_worse=view.higher_is_worse,
    )
    risk = {f"p_breach_{h}": p for h, p in result.p_by_horizon.items()}
    return risk | {
        "breach_date": result.date,
        "breach_date_low": result.date_low,
        "breach_date_high": result.date_high,
        "first_breach_day": result.first_breach_day,
        # breach_risk counts days from the last day of history (the day before the first).
        "start": ds[0].normalize() - pd.Timedelta(days=1),
    }


def _histogram(view: SeriesView, current: dict[str, Any], scenario: dict | None = None) -> Any:
    return breach_histogram(
        current["start"],
        current["first_breach_day"],
        horizon=len(view.points),
        scenario=None if scenario is None else scenario["first_breach_day"],
    )


def _breach_note(risk: dict[str, Any], horizon: int) -> str:
    share = probability(risk.get(f"p_breach_{horizon}", risk.get("p_breach_90")))
    return f"{share} of the sampled futures breach within {horizon} days."


@dash.callback(
    Output(CHART, "figure"),
    Output(HISTOGRAM, "figure"),
    Output(RESULT, "children"),
    Output(BREACH_NOTE, "children"),
    Input(GROWTH, "value"),
    Input(GROWTH_FROM, "date"),
    Input(OFFLOAD, "value"),
    Input(OFFLOAD_FROM, "date"),
    State(SERIES, "data"),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def what_if(growth: Any, growth_from: Any, offload: Any, offload_from: Any, key: Any) -> tuple:
    """Breach risk under planned growth and offload, from the stored paths (pure numpy)."""
    nothing = (dash.no_update,) * 4
    if not isinstance(key, dict):
        return nothing
    number, kpi = positive_id(key.get("element_id")), key.get("kpi")
    if number is None or not isinstance(kpi, str):
        return nothing
    with beacon().db.session() as session:
        detail = store.series_detail(session, element_id=number, kpi=kpi)
    if detail is None:
        return nothing
    view = SeriesView.of(detail)
    if view.paths is None or view.threshold is None:
        return nothing
    scenario = whatif.Scenario(
        growth_pct=_clamp(growth, -90, 500),
        growth_from=_day(growth_from),
        offload_pct=_clamp(offload, 0, 99),
        offload_from=_day(offload_from),
    )
    current = _risk(view, view.paths)
    if scenario.growth_pct == 0 and scenario.offload_pct == 0:
        return (
            _figure(view),
            _histogram(view, current),
            whatif_comparison(current, current, horizon=view.horizon),
            _breach_note(current, view.horizon),
        )
    try:
        _, moved = whatif.apply_scenario(view.points, view.paths, scenario)
    except ValueError:
        return nothing
    assert moved is not None
    changed = _risk(view, moved)
    return (
        _figure(view, scenario_frame(view.points["ds"], moved)),
        _histogram(view, current, changed),
        whatif_comparison(current, changed, horizon=view.horizon),
        _breach_note(current, view.horizon)
        + " Under the what-if: "
        + _breach_note(changed, view.horizon),
    )


def _clamp(raw: Any, low: float, high: float) -> float:
    number = value(raw)
    return 0.0 if number is None else float(min(max(number, low), high))


def _day(raw: Any) -> pd.Timestamp | None:
    """A date from the picker; anything else (crafted requests) means 'from the start'."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    try:
        stamp = pd.Timestamp(raw[:10])
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp
