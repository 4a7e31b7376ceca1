"""Anomalies: the filterable feed of detected episodes, saved views, bulk acknowledge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from components.anomaly import FEED_COLUMNS, ROW_CLASSES, count_tiles, feed_empty, feed_grid_row
from components.anomaly_forms import feed_filters, saved_views
from components.cards import notice, section
from components.format import count
from components.grid import data_grid
from pages._anomaly_thresholds import (  # noqa: F401
    REFRESH,
    TH_CLEAR,
    TH_DONE,
    TH_MESSAGE,
    TH_NAME,
    TH_SCOPE,
    TH_SET,
    TH_VALUE,
    THRESHOLDS,
    change_threshold,
    load_thresholds,
    register_callbacks,
    threshold_names,
    thresholds_section,
)

# The thresholds section lives in its own module; its names stay reachable from here.
from pages._params import positive_id
from services.anomaly import actions, feed
from services.auth import ALL_ROLES, ENGINEER_ROLES, OPERATE_ROLES
from services.db.models import utcnow
from services.errors import BeaconError
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

# Every signed-in role may read the feed; wall screens show the overview instead.
PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/anomalies",
    name="Anomalies",
    title="Anomalies · Beacon",
    order=10,
    roles=PAGE_ROLES,
)
register_callbacks()  # the thresholds section's callbacks, once per app

TILES = "anomalies-tiles"
SEVERITY = "anomalies-severity"
STATUS = "anomalies-status"
CONFIDENCE = "anomalies-confidence"
REGION = "anomalies-region"
DOMAIN = "anomalies-domain"
KPI = "anomalies-kpi"
WINDOW = "anomalies-window"
ELEMENT = "anomalies-element"
SUPPRESSED = "anomalies-suppressed"
GRID = "anomalies-grid"
COUNT = "anomalies-count"
EMPTY = "anomalies-empty"
EXPORT = "anomalies-export"
VIEW = "anomalies-view"
VIEW_NAME = "anomalies-view-name"
SAVE_VIEW = "anomalies-save-view"
DELETE_VIEW = "anomalies-delete-view"
VIEW_MESSAGE = "anomalies-view-message"
VIEWS_CHANGED = "anomalies-views-changed"
ACK = "anomalies-ack"
CONFIRM = "anomalies-ack-confirm"
ACK_MESSAGE = "anomalies-ack-message"
ACK_DONE = "anomalies-ack-done"
REFRESH_MS = 60_000
ROW_LIMIT = 2000

WINDOWS = {
    "24h": ("last 24 h", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("any time", None),
}
SUPPRESSION = {
    "include": "include suppressed",
    "hide": "hide suppressed",
    "only": "only suppressed",
}
DEFAULTS: dict[str, Any] = {
    "severity": [],
    "status": ["open", "acknowledged"],
    "confidence": None,
    "region": None,
    "domain": None,
    "kpi": None,
    "window": "7d",
    "element": "",
    "suppressed": "include",
}
FILTER_IDS = (SEVERITY, STATUS, CONFIDENCE, REGION, DOMAIN, KPI, WINDOW, ELEMENT, SUPPRESSED)
FIRST_RESULTS = (
    "first results appear once a few complete periods are stored and the seasonal "
    "baseline has history (new elements lean on their peers until then)."
)


def layout(**_query: str) -> html.Div:
    """The feed frame; the grid, counts and options fill from stored data."""
    principal = current_principal()
    can_act = principal is not None and principal.role in OPERATE_ROLES and not principal.is_kiosk
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=VIEWS_CHANGED, data=0),
            dcc.Store(id=ACK_DONE, data=0),
            dcc.ConfirmDialog(id=CONFIRM, message=""),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Anomalies"),
                        html.P(
                            "Episodes the detector found, with how sure it is and the data it "
                            "stood on. Open one to see the series, the explanation and to act."
                        ),
                    ]
                ),
            ),
            html.Div(id=TILES),
            section(
                "Feed",
                html.Div(
                    [
                        feed_filters(
                            dict(zip(DEFAULTS, FILTER_IDS, strict=True)),
                            values=DEFAULTS,
                            severities=feed.SEVERITIES,
                            statuses=feed.STATUSES,
                            windows={k: text for k, (text, _) in WINDOWS.items()},
                            suppression=SUPPRESSION,
                        ),
                        saved_views(
                            view_id=VIEW,
                            name_id=VIEW_NAME,
                            save_id=SAVE_VIEW,
                            delete_id=DELETE_VIEW,
                            message_id=VIEW_MESSAGE,
                        ),
                        _grid(can_act),
                    ]
                ),
                subtitle=html.Span(id=COUNT),
                actions=[
                    html.Button(
                        "Acknowledge selected", id=ACK, className="btn", hidden=not can_act
                    ),
                    html.Button("Export CSV", id=EXPORT, className="btn btn-quiet"),
                ],
            ),
            thresholds_section(can_edit=principal is not None and principal.role in ENGINEER_ROLES),
        ],
    )


def _grid(can_act: bool) -> html.Div:
    grid = data_grid(
        GRID,
        columns=FEED_COLUMNS,
        row_id="id",
        auto_height=True,
        selectable="multiRow" if can_act else None,
        export_name="beacon-anomalies.csv",
        row_class_rules=ROW_CLASSES,
    )
    return html.Div([html.Div(id=ACK_MESSAGE), html.Div(id=EMPTY), grid], className="anomaly-feed")


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(REGION, "options"),
    Output(DOMAIN, "options"),
    Output(KPI, "options"),
    Output(VIEW, "options"),
    Input(REFRESH, "n_intervals"),
    Input(VIEWS_CHANGED, "data"),
)
@allow(PAGE_ROLES)
def load_options(_n: int | None, _changed: int | None) -> tuple[list, list, list, list]:
    """Filter choices from the inventory, and the user's own saved views."""
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    with beacon().db.session() as session:
        options = feed.filter_options(session)
        views = actions.list_views(session, actor=principal.actor())
        view_options = [{"label": v.name, "value": v.id} for v in views]
    return options["regions"], options["domains"], options["kpis"], view_options


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Output(TILES, "children"),
    Output(EMPTY, "children"),
    *(Input(id_, "value") for id_ in FILTER_IDS),
    Input(REFRESH, "n_intervals"),
    Input(ACK_DONE, "data"),
)
@allow(PAGE_ROLES)
def load_feed(*values: Any) -> tuple[list[dict], str, Any, Any]:
    """Episodes matching the filters, newest first (at most ROW_LIMIT), with counts."""
    ctx = beacon()
    now = utcnow()
    try:
        filters = to_filters(dict(zip(DEFAULTS, values[: len(FILTER_IDS)], strict=True)), now=now)
        with ctx.db.session() as session:
            page = feed.list_episodes(session, filters=filters, limit=ROW_LIMIT)
            counts = feed.feed_counts(session, filters=filters)
            stored = page.total > 0 or feed.any_episodes(session)
    except BeaconError as error:
        return [], "", None, notice(error.message, tone="warn")
    rows = [feed_grid_row(r, zone=ctx.settings.zone, now=now) for r in page.rows]
    shown = f"{count(page.total)} episodes"
    if page.total > len(rows):
        shown = f"newest {count(len(rows))} of {shown}; narrow the filters"
    empty = None if rows else feed_empty(stored=stored, first_results=FIRST_RESULTS)
    return rows, shown, count_tiles(counts), empty


def to_filters(state: dict[str, Any], *, now: Any) -> feed.FeedFilters:
    """Filter control values (as the browser sends them) to feed filters."""
    span = WINDOWS.get(state.get("window") or "7d", WINDOWS["7d"])[1]
    suppressed = {"hide": False, "only": True}.get(str(state.get("suppressed") or "include"))
    confidence = state.get("confidence")
    return feed.FeedFilters(
        severities=tuple(_strings(state.get("severity"))),
        statuses=tuple(_strings(state.get("status"))),
        min_confidence=float(confidence) if isinstance(confidence, int | float) else None,
        suppressed=suppressed,
        region=_text(state.get("region")),
        domain=_text(state.get("domain")),
        kpi=_text(state.get("kpi")),
        element=_text(state.get("element")),
        since=now - span if span else None,
    )


@dash.callback(
    *(Output(id_, "value") for id_ in FILTER_IDS),
    Output(VIEW_NAME, "value"),
    Input(VIEW, "value"),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def apply_view(view_id: int | None) -> tuple:
    """Put a saved view's filters back in the controls."""
    principal = current_principal()
    assert principal is not None
    if view_id is None:
        return tuple(dash.no_update for _ in range(len(FILTER_IDS) + 1))
    with beacon().db.session() as session:
        views = {v.id: v for v in actions.list_views(session, actor=principal.actor())}
        view = views.get(positive_id(view_id) or -1)
        if view is None:
            return tuple(dash.no_update for _ in range(len(FILTER_IDS) + 1))
        state = {**DEFAULTS, **(view.state or {})}
        name = view.name
    return (*(state[key] for key in DEFAULTS), name)


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(VIEW_MESSAGE, "children"),
    Output(VIEWS_CHANGED, "data"),
    Output(VIEW, "value", allow_duplicate=True),
    Input(SAVE_VIEW, "n_clicks"),
    Input(DELETE_VIEW, "n_clicks"),
    State(VIEW_NAME, "value"),
    State(VIEW, "value"),
    *(State(id_, "value") for id_ in FILTER_IDS),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES, mutates=True)
def change_view(
    save: int | None, delete: int | None, name: str | None, view_id: Any, *values: Any
) -> tuple:
    """Save the current filters under a name, or delete the chosen view (own views only)."""
    trigger = dash.ctx.triggered_id
    if trigger not in (SAVE_VIEW, DELETE_VIEW) or not (save or delete):
        return dash.no_update, dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    state = dict(zip(DEFAULTS, values, strict=False))
    try:
        with beacon().db.session(write=True) as session:
            if trigger == SAVE_VIEW:
                view = actions.save_view(
                    session, name=name or "", state=state, actor=principal.actor()
                )
                text, chosen = f"View “{view.name}” saved.", view.id
            else:
                picked = positive_id(view_id)
                if picked is None:
                    return notice("Choose a saved view to delete.", tone="warn"), 0, dash.no_update
                actions.delete_view(session, view_id=picked, actor=principal.actor())
                text, chosen = "View deleted.", None
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update, dash.no_update
    return notice(text, tone="ok"), utcnow().timestamp(), chosen


@dash.callback(
    Output(CONFIRM, "displayed"),
    Output(CONFIRM, "message"),
    Output(ACK_MESSAGE, "children"),
    Input(ACK, "n_clicks"),
    State(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES)
def ask_acknowledge(clicks: int | None, selected: list[dict] | None) -> tuple:
    """Ask before acknowledging: a bulk change should never be one stray click."""
    if not clicks:
        return False, dash.no_update, dash.no_update
    ids = _selected_ids(selected)
    if not ids:
        return False, "", notice("Select episodes in the grid first (tick the boxes).", tone="warn")
    return True, f"Acknowledge {len(ids)} selected episode(s)? This is audited.", None


@dash.callback(
    Output(ACK_MESSAGE, "children", allow_duplicate=True),
    Output(ACK_DONE, "data"),
    Input(CONFIRM, "submit_n_clicks"),
    State(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def acknowledge_selected(confirmed: int | None, selected: list[dict] | None) -> tuple:
    """Acknowledge the selected open episodes; already handled ones are reported."""
    ids = _selected_ids(selected)
    if not confirmed or not ids:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            result = actions.acknowledge_many(session, anomaly_ids=ids, actor=principal.actor())
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    text = f"Acknowledged {len(result.acknowledged)} episode(s)."
    if result.skipped:
        text += f" {len(result.skipped)} were already acknowledged or resolved."
    if result.missing:
        text += f" {len(result.missing)} no longer exist."
    return notice(text, tone="ok", id_="anomalies-ack-ok"), utcnow().timestamp()


dash.clientside_callback(
    "function(n) { return n ? true : false; }",
    Output(GRID, "exportDataAsCsv"),
    Input(EXPORT, "n_clicks"),
    prevent_initial_call=True,
)


def _selected_ids(selected: Any) -> list[int]:
    """Episode ids of the selected rows; anything malformed (crafted requests) is ignored."""
    if not isinstance(selected, list):
        return []
    ids = (positive_id(row.get("id")) for row in selected if isinstance(row, dict))
    return [i for i in ids if i is not None]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or [] if isinstance(v, str)]


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
