"""Anomaly page forms: feed filters, saved views, the thresholds editor, episode actions.

The pages own the ids (page-prefixed constants) and pass them in; these only build controls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from components.forms import field


def feed_filters(
    ids: Mapping[str, str],
    *,
    values: Mapping[str, Any],
    severities: Sequence[str],
    statuses: Sequence[str],
    windows: Mapping[str, str],
    suppression: Mapping[str, str],
) -> html.Div:
    """The feed's filter controls; `ids` and `values` are keyed by filter name."""

    def dropdown(key: str, placeholder: str, **extra: Any) -> dcc.Dropdown:
        return dcc.Dropdown(id=ids[key], placeholder=placeholder, value=values.get(key), **extra)

    def wide(label: str, control: Any) -> html.Div:
        # Multi-selects need room to show their chosen values, not "2 selected".
        box = field(label, control)
        box.className = "field anomaly-field-wide"
        return box

    return html.Div(
        className="form-grid anomaly-filters",
        children=[
            wide(
                "Severity",
                dropdown("severity", "any severity", options=list(severities), multi=True),
            ),
            wide("Status", dropdown("status", "any status", options=list(statuses), multi=True)),
            field(
                "Min. confidence",
                dcc.Input(
                    id=ids["confidence"],
                    type="number",
                    min=0,
                    max=1,
                    step=0.05,
                    placeholder="0.00–1.00",
                    className="input",
                    debounce=True,
                    value=values.get("confidence"),
                ),
            ),
            field("Region", dropdown("region", "any region")),
            field("Domain", dropdown("domain", "any domain")),
            field("KPI", dropdown("kpi", "any KPI")),
            field(
                "Time",
                dropdown(
                    "window",
                    "",
                    options=[{"label": t, "value": k} for k, t in windows.items()],
                    clearable=False,
                ),
            ),
            field(
                "Element",
                dcc.Input(
                    id=ids["element"],
                    type="search",
                    debounce=True,
                    placeholder="name or DN contains",
                    className="input",
                    value=values.get("element") or "",
                ),
            ),
            field(
                "Change windows",
                dropdown(
                    "suppressed",
                    "",
                    options=[{"label": t, "value": k} for k, t in suppression.items()],
                    clearable=False,
                ),
            ),
        ],
    )


def saved_views(
    *, view_id: str, name_id: str, save_id: str, delete_id: str, message_id: str
) -> html.Div:
    """Pick, save and delete the user's own named filter sets."""
    return html.Div(
        className="anomaly-inline anomaly-views",
        children=[
            field("Saved view", dcc.Dropdown(id=view_id, placeholder="choose a saved view")),
            field(
                "Save filters as",
                dcc.Input(id=name_id, className="input", maxLength=100, placeholder="view name"),
            ),
            html.Button("Save view", id=save_id, className="btn btn-quiet"),
            html.Button("Delete view", id=delete_id, className="btn btn-quiet"),
            html.Div(id=message_id),
        ],
    )


def thresholds_editor(
    *, scope_id: str, name_id: str, value_id: str, set_id: str, clear_id: str, message_id: str
) -> html.Div:
    """The form engineers and admins use to set or clear one override."""
    return html.Div(
        [
            html.Div(
                className="anomaly-inline",
                children=[
                    field(
                        "Applies to",
                        dcc.Dropdown(
                            id=scope_id,
                            options=[
                                {"label": "a KPI", "value": "kpi"},
                                {"label": "a use case", "value": "use_case"},
                            ],
                            value="kpi",
                            clearable=False,
                        ),
                    ),
                    field("Name", dcc.Dropdown(id=name_id, placeholder="choose")),
                    field(
                        "Min. confidence",
                        dcc.Input(
                            id=value_id,
                            type="number",
                            min=0.01,
                            max=1,
                            step=0.01,
                            placeholder="e.g. 0.70",
                            className="input",
                        ),
                    ),
                    html.Button("Set override", id=set_id, className="btn"),
                    html.Button("Back to default", id=clear_id, className="btn btn-quiet"),
                ],
            ),
            html.Div(id=message_id, className="anomaly-message"),
        ],
        className="anomaly-threshold-editor",
    )
