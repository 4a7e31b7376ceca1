"""The anomaly feed's thresholds section: every effective threshold, edited by engineers.

Part of the /anomalies page (pages/anomalies.py puts `thresholds_section` in its layout);
a module of its own so the feed page stays one screenful. Not a page: Dash skips
modules whose name starts with an underscore.

Dash executes page files afresh for every app it builds, but imports this module once, so
the page calls `register_callbacks()` to attach the section's callbacks to each app.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from components.anomaly import thresholds_panel
from components.anomaly_forms import thresholds_editor
from components.cards import notice, section
from services.anomaly import thresholds
from services.auth import ALL_ROLES, ENGINEER_ROLES
from services.db.models import utcnow
from services.errors import BeaconError
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES  # as pages/anomalies.py: every signed-in role reads the thresholds
REFRESH = "anomalies-refresh"  # the feed page's interval, which also refreshes this section
THRESHOLDS = "anomalies-thresholds"
TH_SCOPE = "anomalies-threshold-scope"
TH_NAME = "anomalies-threshold-name"
TH_VALUE = "anomalies-threshold-value"
TH_SET = "anomalies-threshold-set"
TH_CLEAR = "anomalies-threshold-clear"
TH_MESSAGE = "anomalies-threshold-message"
TH_DONE = "anomalies-threshold-done"


def thresholds_section(*, can_edit: bool) -> html.Section:
    """The thresholds panel for everyone; the editor for engineers and admins."""
    editor = (
        thresholds_editor(
            scope_id=TH_SCOPE,
            name_id=TH_NAME,
            value_id=TH_VALUE,
            set_id=TH_SET,
            clear_id=TH_CLEAR,
            message_id=TH_MESSAGE,
        )
        if can_edit
        else html.P(
            "Engineers and admins change thresholds; every change is audited.", className="muted"
        )
    )
    return section(
        "Detection thresholds",
        html.Div([dcc.Store(id=TH_DONE, data=0), editor, html.Div(id=THRESHOLDS)]),
        subtitle="minimum calibrated confidence per KPI and per use case",
        id_="anomalies-thresholds-section",
    )


@allow(PAGE_ROLES)
def load_thresholds(_n: int | None, _done: Any) -> html.Div:
    """The default and every KPI's and use case's effective threshold."""
    with beacon().db.session() as session:
        current = thresholds.effective_thresholds(session)
        rows = thresholds.threshold_rows(session)
    return thresholds_panel(rows, default=current.default)


@allow(ENGINEER_ROLES)
def threshold_names(scope: str | None) -> list[dict]:
    """KPIs or use cases to choose from, with their current value."""
    with beacon().db.session() as session:
        rows = thresholds.threshold_rows(session)
    wanted = scope if scope in thresholds.SCOPES else "kpi"
    return [
        {"label": f"{r.name} ({r.effective:.2f})", "value": r.name}
        for r in rows
        if r.scope == wanted
    ]


@allow(ENGINEER_ROLES, mutates=True)
def change_threshold(
    set_clicks: int | None,
    clear_clicks: int | None,
    scope: str | None,
    name: str | None,
    value: Any,
) -> tuple:
    """Set or clear one override; the service checks the role again and audits it."""
    trigger = dash.ctx.triggered_id
    if trigger not in (TH_SET, TH_CLEAR) or not (set_clicks or clear_clicks):
        return dash.no_update, dash.no_update
    if trigger == TH_SET and not isinstance(value, int | float):
        return notice("Enter a confidence between 0 and 1.", tone="warn"), dash.no_update
    principal = current_principal()
    assert principal is not None
    wanted = float(value) if trigger == TH_SET else None
    try:
        with beacon().db.session(write=True) as session:
            current = thresholds.set_threshold(
                session,
                scope=scope or "kpi",
                name=name or "",
                min_confidence=wanted,
                actor=principal.actor(),
            )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    chosen = name or ""
    effective = (current.kpi if scope != "use_case" else current.use_case).get(
        chosen, current.default
    )
    text = f"{chosen}: minimum confidence now {effective:.2f}" + (
        " (default)." if wanted is None else "."
    )
    return notice(text, tone="ok", id_="anomalies-threshold-ok"), utcnow().timestamp()


def register_callbacks() -> None:
    """Attach this section's callbacks to the app whose /anomalies page is being loaded."""
    dash.callback(
        Output(THRESHOLDS, "children"),
        Input(REFRESH, "n_intervals"),
        Input(TH_DONE, "data"),
    )(load_thresholds)
    dash.callback(Output(TH_NAME, "options"), Input(TH_SCOPE, "value"))(threshold_names)
    dash.callback(
        Output(TH_MESSAGE, "children"),
        Output(TH_DONE, "data"),
        Input(TH_SET, "n_clicks"),
        Input(TH_CLEAR, "n_clicks"),
        State(TH_SCOPE, "value"),
        State(TH_NAME, "value"),
        State(TH_VALUE, "value"),
        prevent_initial_call=True,
    )(change_threshold)
