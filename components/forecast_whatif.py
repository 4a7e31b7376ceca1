"""What-if builders: growth and offload controls, and risk now versus under the scenario."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from dash import dcc, html

from components.forecast import day, probability, value
from components.forms import field

HORIZONS = (30, 60, 90)


def whatif_controls(ids: Mapping[str, str], *, first_day: str, last_day: str) -> html.Div:
    """Planned growth and offload, each from a day inside the forecast horizon."""

    def percent_input(key: str, *, low: int, high: int, hint: str) -> dcc.Input:
        return dcc.Input(
            id=ids[key],
            type="number",
            min=low,
            max=high,
            step=1,
            value=0,
            debounce=True,
            placeholder=hint,
            className="input",
        )

    def date_input(key: str) -> dcc.DatePickerSingle:
        return dcc.DatePickerSingle(
            id=ids[key],
            min_date_allowed=first_day,
            max_date_allowed=last_day,
            initial_visible_month=first_day,
            placeholder="from the start",
            display_format="YYYY-MM-DD",
            clearable=True,
        )

    return html.Div(
        className="form-grid forecast-whatif",
        children=[
            field("Traffic growth %", percent_input("growth", low=-90, high=500, hint="+15")),
            field("Growth from", date_input("growth_from")),
            field("Offload %", percent_input("offload", low=0, high=100, hint="20")),
            field("Offload from", date_input("offload_from")),
        ],
    )


def whatif_comparison(
    current: Mapping[str, Any], scenario: Mapping[str, Any], *, horizon: int = 90
) -> html.Div:
    """Breach risk now and under the scenario, side by side, and how far the date moves."""
    rows = []
    for h in HORIZONS:
        before, after = value(current.get(f"p_breach_{h}")), value(scenario.get(f"p_breach_{h}"))
        change = "—" if before is None or after is None else f"{100 * (after - before):+.0f} pts"
        rows.append(
            html.Tr(
                [
                    html.Td(f"P(breach) ≤ {h} d"),
                    html.Td(probability(before), className="num"),
                    html.Td(probability(after), className="num", id=f"forecast-whatif-p{h}"),
                    html.Td(change, className="num"),
                ]
            )
        )
    rows.append(
        html.Tr(
            [
                html.Td("Likely breach"),
                html.Td(day(current.get("breach_date")), className="num"),
                html.Td(
                    day(scenario.get("breach_date")), className="num", id="forecast-whatif-date"
                ),
                html.Td(_moved(current.get("breach_date"), scenario.get("breach_date"), horizon)),
            ]
        )
    )
    return html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(""),
                        html.Th("Current forecast", className="num"),
                        html.Th("What-if", className="num"),
                        html.Th("Change", className="num"),
                    ]
                )
            ),
            html.Tbody(rows),
        ],
        className="table forecast-whatif-table",
    )


def _moved(before: Any, after: Any, horizon: int) -> str:
    b, a = day(before), day(after)
    if b == a:
        return "unchanged"
    if b == "—":
        return f"now breaches within {horizon} d"
    if a == "—":
        return f"no likely breach within {horizon} d"
    days = (pd.Timestamp(a) - pd.Timestamp(b)).days
    return f"{abs(days)} d {'earlier' if days < 0 else 'later'}"
