"""Disagreements: every case where human and AI differ, both sides, and the review of it."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from sqlalchemy import select

from components.cards import empty_state, notice, section
from components.disagreement import (
    KIND_TEXT,
    OUTCOME_TEXT,
    QUEUE_COLUMNS,
    ROW_CLASSES,
    case_panel,
    outcome_options,
    policy_panel,
    queue_row,
    queue_tiles,
)
from components.format import count
from components.forms import field
from components.grid import data_grid
from pages._params import positive_id
from services.auth import ALL_ROLES
from services.db.models import UseCase, utcnow
from services.decisions import disagreements, queries, states
from services.errors import BeaconError, NotFound
from services.oncall import resolve
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

# Everyone signed in may read the queue (operators see what became of their decisions);
# reviews change what the AI learns, so only engineers and admins record them.
PAGE_ROLES = ALL_ROLES
REVIEW_ROLES = states.REVIEW_ROLES

dash.register_page(
    __name__,
    path="/disagreements",
    name="Disagreements",
    title="Disagreements · Beacon",
    order=41,
    roles=PAGE_ROLES,
)

REFRESH = "disagreements-refresh"
TILES = "disagreements-tiles"
STATE = "disagreements-state"
KIND = "disagreements-kind"
USE_CASE = "disagreements-use-case"
OVERDUE = "disagreements-overdue"
GRID = "disagreements-grid"
COUNT = "disagreements-count"
EMPTY = "disagreements-empty"
SIM_NOTE = "disagreements-simulated"
SELECTED = "disagreements-selected"
CHANGED = "disagreements-changed"
DETAIL = "disagreements-detail"
DETAIL_TITLE = "disagreements-detail-title"
REVIEW_FORM = "disagreements-review-form"
OUTCOME = "disagreements-outcome"
NOTE = "disagreements-note"
NEW_NORMAL = "disagreements-new-normal"
NEW_NORMAL_ROW = "disagreements-new-normal-row"
SUBMIT = "disagreements-review-submit"
REVIEW_MESSAGE = "disagreements-review-message"
BULK_FORM = "disagreements-bulk-form"
BULK_OUTCOME = "disagreements-bulk-outcome"
BULK_NOTE = "disagreements-bulk-note"
BULK = "disagreements-bulk-submit"
BULK_CONFIRM = "disagreements-bulk-confirm"
BULK_MESSAGE = "disagreements-bulk-message"
REFRESH_MS = 60_000
ROW_LIMIT = 1000
STATES = {"open": "open", "resolved": "resolved", "all": "all"}
# Where a recommendation opens; the recommendations page reads `?id=`.
RECOMMENDATION_HREF = "/recommendations?id={id}"


def layout(case: str | None = None, **_query: str) -> html.Div:
    """The queue frame; `?case=<id>` opens that case below the queue."""
    principal = current_principal()
    can_review = principal is not None and principal.role in REVIEW_ROLES and not principal.is_kiosk
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=SELECTED, data=positive_id(case)),
            dcc.Store(id=CHANGED, data=0),
            dcc.ConfirmDialog(id=BULK_CONFIRM, message=""),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Disagreements"),
                        html.P(
                            "Every case where a person and the AI differed: a rejected or "
                            "overridden recommendation, an anomaly labelled wrong, an incident "
                            "the AI missed, an action rolled back. Click a row to see both sides."
                        ),
                    ]
                ),
            ),
            section("How disagreements are handled", policy_panel(), id_="disagreements-policy"),
            html.Div(id=SIM_NOTE),
            html.Div(id=TILES),
            section(
                "Queue",
                html.Div(
                    [
                        _filters(),
                        html.Div(id=EMPTY),
                        _grid(can_review),
                        _bulk_form(can_review),
                    ]
                ),
                subtitle=html.Span(id=COUNT),
            ),
            section(
                "Case",
                html.Div(
                    [
                        html.Div(
                            id=DETAIL,
                            children=empty_state(
                                "No case chosen", "Click a row of the queue to see both sides."
                            ),
                        ),
                        _review_form(),
                        # Outside the form: the form hides once the case is resolved.
                        html.Div(id=REVIEW_MESSAGE, className="disagreement-review-message"),
                    ]
                ),
                subtitle=html.Span(id=DETAIL_TITLE),
                id_="disagreements-case",
            ),
        ],
    )


def _filters() -> html.Div:
    return html.Div(
        [
            field(
                "State",
                dcc.Dropdown(
                    id=STATE,
                    options=[{"label": v, "value": k} for k, v in STATES.items()],
                    value="open",
                    clearable=False,
                ),
            ),
            field(
                "What happened",
                dcc.Dropdown(
                    id=KIND,
                    options=[{"label": v, "value": k} for k, v in KIND_TEXT.items()],
                    placeholder="any",
                ),
            ),
            field("Use case", dcc.Dropdown(id=USE_CASE, placeholder="any use case")),
            field(
                "SLA",
                dcc.Checklist(
                    id=OVERDUE,
                    options=[{"label": " only overdue", "value": "overdue"}],
                    value=[],
                    className="disagreement-check",
                ),
            ),
        ],
        className="form-grid disagreement-filters",
    )


def _grid(can_review: bool) -> Any:
    grid = data_grid(
        GRID,
        columns=QUEUE_COLUMNS,
        row_id="id",
        auto_height=True,
        page_size=25,
        selectable="multiRow" if can_review else None,
        row_class_rules=ROW_CLASSES,
    )
    grid.className = "beacon-grid disagreement-grid"
    if can_review:
        # Ticking boxes selects for bulk review; clicking a row opens it instead.
        grid.dashGridOptions["rowSelection"]["enableClickSelection"] = False
    return grid


def _bulk_form(can_review: bool) -> html.Div:
    return html.Div(
        [
            html.H3("Review the ticked cases at once"),
            html.Div(
                [
                    field(
                        "Outcome",
                        dcc.Dropdown(
                            id=BULK_OUTCOME,
                            options=[{"label": v, "value": k} for k, v in OUTCOME_TEXT.items()],
                            placeholder="choose an outcome",
                        ),
                    ),
                    field(
                        "Note (shown on the queue)",
                        dcc.Input(id=BULK_NOTE, className="input", maxLength=2000, value=""),
                    ),
                    html.Button("Review ticked cases", id=BULK, className="btn"),
                ],
                className="disagreement-bulk-row",
            ),
            html.Div(id=BULK_MESSAGE),
        ],
        id=BULK_FORM,
        className="disagreement-bulk",
        hidden=not can_review,
    )


def _review_form() -> html.Div:
    return html.Div(
        [
            html.H3("Review this case"),
            dcc.RadioItems(
                id=OUTCOME, options=outcome_options(), className="disagreement-outcomes"
            ),
            html.Div(
                dcc.Checklist(
                    id=NEW_NORMAL,
                    options=[
                        {
                            "label": " The level is the new normal: record it in data "
                            "health for the detector's owner",
                            "value": "new_normal",
                        }
                    ],
                    value=[],
                    className="disagreement-check",
                ),
                id=NEW_NORMAL_ROW,
                hidden=True,
            ),
            field(
                "Note (shown on the queue)",
                dcc.Textarea(id=NOTE, className="input", maxLength=2000, value="", rows=3),
            ),
            html.Button("Record review", id=SUBMIT, className="btn"),
        ],
        id=REVIEW_FORM,
        className="disagreement-review-form",
        hidden=True,
    )


# --- reads -------------------------------------------------------------------------------


@dash.callback(Output(USE_CASE, "options"), Input(REFRESH, "n_intervals"))
@allow(PAGE_ROLES)
def load_use_cases(_n: int | None) -> list[dict[str, Any]]:
    """The use-case filter's choices."""
    with beacon().db.session() as session:
        rows = session.execute(select(UseCase.id, UseCase.name).order_by(UseCase.id)).all()
    return [{"label": name, "value": case_id} for case_id, name in rows]


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Output(TILES, "children"),
    Output(EMPTY, "children"),
    Output(SIM_NOTE, "children"),
    Input(STATE, "value"),
    Input(KIND, "value"),
    Input(USE_CASE, "value"),
    Input(OVERDUE, "value"),
    Input(REFRESH, "n_intervals"),
    Input(CHANGED, "data"),
)
@allow(PAGE_ROLES)
def load_queue(state: Any, kind: Any, use_case: Any, overdue: Any, _n: Any, _changed: Any) -> tuple:
    """Cases matching the filters, the most urgent first, with who is on call for each."""
    ctx = beacon()
    now = utcnow()
    filters = to_filters(state=state, kind=kind, use_case=use_case, overdue=overdue)
    try:
        with ctx.db.session() as session:
            rows = queries.list_cases(session, now=now, limit=ROW_LIMIT, **filters)
            total = queries.count_cases(session, now=now, **filters)
            counts = {
                name: queries.count_cases(session, now=now, state=name)
                for name in ("open", "overdue", "escalated", "resolved")
            }
            simulated = queries.count_cases(session, now=now, simulated=True)
            oncall = _oncall_now(session, now=now)
    except BeaconError as error:
        return [], "", None, notice(error.message, tone="warn"), None
    if filters["state"] == "resolved":
        # Resolved cases read like a log: the latest review first.
        rows.sort(key=lambda r: r.get("reviewed_at") or "", reverse=True)
    grid_rows = [queue_row(r, zone=ctx.settings.zone, now=now, oncall=oncall) for r in rows]
    shown = f"{count(total)} cases"
    if total > len(grid_rows):
        shown = f"most urgent {count(len(grid_rows))} of {shown}; narrow the filters"
    empty = None
    if not grid_rows:
        empty = empty_state(
            "No cases match these filters",
            "Nobody disagreed with the AI here yet, or the filters exclude every case.",
        )
    sim = None
    if simulated:
        sim = notice(
            f"{count(simulated)} cases are simulated history from the demo (marked "
            "“sim.” next to the case number); they show how the queue works, not real "
            "decisions.",
            tone="info",
            id_="disagreements-simulated-note",
        )
    return grid_rows, shown, queue_tiles(counts), empty, sim


def to_filters(*, state: Any, kind: Any, use_case: Any, overdue: Any) -> dict[str, Any]:
    """Filter control values (as the browser sends them) to the queue query's filters."""
    chosen = state if state in ("open", "resolved") else None
    if isinstance(overdue, list) and "overdue" in overdue:
        chosen = "overdue"  # overdue cases are open ones
    return {
        "state": chosen,
        "kind": kind if kind in KIND_TEXT else None,
        "use_case_id": positive_id(use_case),
    }


@dash.callback(
    Output(SELECTED, "data"),
    Input(GRID, "cellClicked"),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def select_case(clicked: Any) -> Any:
    """Open the clicked row's case (the tick boxes only select for bulk review)."""
    if not isinstance(clicked, dict) or clicked.get("colId") in (None, "ag-Grid-SelectionColumn"):
        return dash.no_update
    picked = positive_id(clicked.get("rowId"))
    return dash.no_update if picked is None else picked


@dash.callback(
    Output(DETAIL, "children"),
    Output(DETAIL_TITLE, "children"),
    Output(REVIEW_FORM, "hidden"),
    Output(NEW_NORMAL_ROW, "hidden"),
    Input(SELECTED, "data"),
    Input(CHANGED, "data"),
)
@allow(PAGE_ROLES)
def show_case(case_id: Any, _changed: Any) -> tuple:
    """Both sides of the chosen case; the review form for engineers while it is open."""
    picked = positive_id(case_id)
    if picked is None:
        return dash.no_update, "", True, True
    ctx = beacon()
    now = utcnow()
    try:
        with ctx.db.session() as session:
            case = queries.case_detail(session, disagreement_id=picked, now=now)
    except NotFound as error:
        return notice(error.message, tone="warn"), "", True, True
    principal = current_principal()
    can_review = principal is not None and principal.role in REVIEW_ROLES and not principal.is_kiosk
    panel = case_panel(
        case,
        zone=ctx.settings.zone,
        now=now,
        recommendation_href=RECOMMENDATION_HREF.format(id=case["recommendation_id"])
        if case.get("recommendation_id")
        else None,
    )
    title = f"#{case['id']} · {case.get('use_case') or 'detector'}"
    # Only an anomaly episode has a level that can become the new normal.
    return panel, title, not (can_review and case["state"] == "open"), not case.get("anomaly_id")


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(REVIEW_MESSAGE, "children"),
    Output(CHANGED, "data"),
    Input(SUBMIT, "n_clicks"),
    State(SELECTED, "data"),
    State(OUTCOME, "value"),
    State(NOTE, "value"),
    State(NEW_NORMAL, "value"),
    prevent_initial_call=True,
)
@allow(REVIEW_ROLES, mutates=True)
def submit_review(
    clicks: int | None, case_id: Any, outcome: Any, note: Any, new_normal: Any
) -> tuple:
    """Resolve the chosen case with the outcome and note; what the AI learns follows."""
    picked = positive_id(case_id)
    if not clicks or picked is None:
        return dash.no_update, dash.no_update
    if outcome not in OUTCOME_TEXT:
        return notice("Choose an outcome first.", tone="warn"), dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    try:
        with beacon().db.session(write=True) as session:
            disagreements.review(
                session,
                disagreement_id=picked,
                outcome=str(outcome),
                note=note if isinstance(note, str) else "",
                reviewer=principal.actor(),
                now=utcnow(),
                new_normal=isinstance(new_normal, list) and "new_normal" in new_normal,
            )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    text = f"Case #{picked} resolved: {OUTCOME_TEXT[str(outcome)]}."
    return notice(text, tone="ok", id_="disagreements-review-ok"), utcnow().timestamp()


@dash.callback(
    Output(BULK_CONFIRM, "displayed"),
    Output(BULK_CONFIRM, "message"),
    Output(BULK_MESSAGE, "children"),
    Input(BULK, "n_clicks"),
    State(GRID, "selectedRows"),
    State(BULK_OUTCOME, "value"),
    prevent_initial_call=True,
)
@allow(REVIEW_ROLES)
def ask_bulk(clicks: int | None, selected: Any, outcome: Any) -> tuple:
    """Ask before a bulk review: many cases should never be one stray click."""
    if not clicks:
        return False, dash.no_update, dash.no_update
    ids = _selected_ids(selected)
    if not ids:
        return False, "", notice("Tick cases in the queue first.", tone="warn")
    if outcome not in OUTCOME_TEXT:
        return False, "", notice("Choose an outcome for the ticked cases.", tone="warn")
    message = (
        f"Resolve {len(ids)} ticked case(s) as “{OUTCOME_TEXT[str(outcome)]}”? "
        "Each review is audited and changes what the AI learns."
    )
    return True, message, None


@dash.callback(
    Output(BULK_MESSAGE, "children", allow_duplicate=True),
    Output(CHANGED, "data", allow_duplicate=True),
    Input(BULK_CONFIRM, "submit_n_clicks"),
    State(GRID, "selectedRows"),
    State(BULK_OUTCOME, "value"),
    State(BULK_NOTE, "value"),
    prevent_initial_call=True,
)
@allow(REVIEW_ROLES, mutates=True)
def bulk_review(confirmed: int | None, selected: Any, outcome: Any, note: Any) -> tuple:
    """The same outcome and note on every ticked case; resolved ones are reported."""
    ids = _selected_ids(selected)
    if not confirmed or not ids:
        return dash.no_update, dash.no_update
    if outcome not in OUTCOME_TEXT:
        return notice("Choose an outcome for the ticked cases.", tone="warn"), dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            result = disagreements.review_many(
                session,
                disagreement_ids=ids,
                outcome=str(outcome),
                note=note if isinstance(note, str) else "",
                reviewer=principal.actor(),
                now=utcnow(),
            )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    text = f"Reviewed {len(result.reviewed)} case(s) as “{OUTCOME_TEXT[str(outcome)]}”."
    if result.skipped:
        text += f" {len(result.skipped)} were already resolved."
    if result.missing:
        text += f" {len(result.missing)} no longer exist."
    return notice(text, tone="ok", id_="disagreements-bulk-ok"), utcnow().timestamp()


def _oncall_now(session: Any, *, now: Any) -> dict[int, str]:
    """Who is on call now for each use case ("usecase:<key>"), by use case id."""
    out: dict[int, str] = {}
    for case_id, key in session.execute(select(UseCase.id, UseCase.key)).all():
        try:
            answer = resolve.oncall_for(session, now=now, component=f"usecase:{key}")
        except NotFound:
            continue
        if answer.oncall.person is not None:
            out[case_id] = answer.oncall.person.name
    return out


def _selected_ids(selected: Any) -> list[int]:
    """Case ids of the ticked rows; anything malformed (crafted requests) is ignored."""
    if not isinstance(selected, list):
        return []
    ids = (positive_id(row.get("id")) for row in selected if isinstance(row, dict))
    return [i for i in ids if i is not None]
