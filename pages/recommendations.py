"""Recommendations: what the AI proposes, decided by people with a reason, executed and rolled
back under guardrails checked on the server."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from sqlalchemy import select
from sqlalchemy.orm import Session

from components.cards import notice, section
from components.format import count
from components.forms import field
from components.grid import data_grid
from components.oncall import owner_strip
from components.recommendation import (
    COLUMNS,
    ROW_CLASSES,
    count_tiles,
    detail_panel,
    grid_row,
    no_rows,
    rollback_banner,
)
from pages._params import positive_id
from services.auth import ALL_ROLES, ENGINEER_ROLES, OPERATE_ROLES
from services.automation.dryrun import dry_run
from services.automation.execution import execute_and_commit, rollback_recommendation
from services.automation.guardrails import GuardrailBlocked
from services.automation.levels import REASON_CODES, REASON_LABELS, RECOMMENDATION_STATES
from services.automation.use_cases import list_use_cases
from services.db.models import Execution, Recommendation, utcnow
from services.decisions import decide as decisions
from services.decisions.queries import list_recommendations, recommendation_detail
from services.errors import BeaconError
from services.oncall.owners import owners_of_recommendation
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

# Every signed-in role may read them; wall screens show the overview instead.
PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/recommendations",
    name="Recommendations",
    title="Recommendations · Beacon",
    order=16,
    roles=PAGE_ROLES,
)

REFRESH = "recommendations-refresh"
SELECTED = "recommendations-selected"
DONE = "recommendations-done"
STATE = "recommendations-state"
USE_CASE = "recommendations-use-case"
TILES = "recommendations-tiles"
BANNER = "recommendations-banner"
GRID = "recommendations-grid"
COUNT = "recommendations-count"
EMPTY = "recommendations-empty"
DETAIL = "recommendations-detail"
VERDICT = "recommendations-verdict"
REASON = "recommendations-reason"
NOTE = "recommendations-note"
OVERRIDE = "recommendations-override-action"
DECIDE = "recommendations-decide"
EXECUTE = "recommendations-execute"
ROLLBACK_REASON = "recommendations-rollback-reason"
ROLLBACK = "recommendations-rollback"
MESSAGE = "recommendations-message"
BULK_VERDICT = "recommendations-bulk-verdict"
BULK_REASON = "recommendations-bulk-reason"
BULK_NOTE = "recommendations-bulk-note"
BULK = "recommendations-bulk"
BULK_CONFIRM = "recommendations-bulk-confirm"
BULK_MESSAGE = "recommendations-bulk-message"
REFRESH_MS = 30_000
ROW_LIMIT = 500

STATE_FILTERS = {
    "pending": "waiting for a decision",
    **{s: s.replace("_", " ") for s in RECOMMENDATION_STATES},
    "all": "any state",
}
REASON_OPTIONS = [{"label": REASON_LABELS[c], "value": c} for c in REASON_CODES]
VERDICT_OPTIONS = [
    {"label": "Accept", "value": "accept"},
    {"label": "Reject", "value": "reject"},
    {"label": "Override (do something else)", "value": "override"},
]


def layout(id: str | None = None, **_query: str) -> html.Div:
    """The list, the detail of the chosen one, and the forms the caller's role may use."""
    principal = current_principal()
    kiosk = principal is None or principal.is_kiosk
    can_decide = not kiosk and principal.role in OPERATE_ROLES
    can_roll_back = not kiosk and principal.role in ENGINEER_ROLES
    with beacon().db.session() as session:
        cases = [{"label": c.name, "value": c.id} for c in list_use_cases(session)]
    return html.Div(
        className="page trust-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=SELECTED, data=positive_id(id)),
            dcc.Store(id=DONE, data=0),
            dcc.ConfirmDialog(id=BULK_CONFIRM, message=""),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Recommendations"),
                        html.P(
                            "What the AI proposes and why. People decide with a reason; "
                            "guardrails are checked on the server before anything runs, and "
                            "every step is audited."
                        ),
                    ]
                ),
            ),
            html.Div(id=BANNER),
            html.Div(id=TILES),
            section(
                "Recommendations",
                html.Div(
                    [
                        html.Div(
                            className="form-grid trust-filters",
                            children=[
                                field(
                                    "State",
                                    dcc.Dropdown(
                                        id=STATE,
                                        options=[
                                            {"label": v, "value": k}
                                            for k, v in STATE_FILTERS.items()
                                        ],
                                        value="pending",
                                        clearable=False,
                                    ),
                                ),
                                field(
                                    "Use case",
                                    dcc.Dropdown(id=USE_CASE, options=cases, placeholder="all"),
                                ),
                            ],
                        ),
                        _bulk_bar() if can_decide else None,
                        html.Div(id=BULK_MESSAGE),
                        html.Div(id=EMPTY),
                        data_grid(
                            GRID,
                            columns=COLUMNS,
                            row_id="id",
                            auto_height=True,
                            page_size=25,
                            selectable="multiRow" if can_decide else "singleRow",
                            row_class_rules=ROW_CLASSES,
                        ),
                    ]
                ),
                subtitle=html.Span(id=COUNT),
            ),
            html.Div(
                className="trust-columns",
                children=[
                    section(
                        "Detail",
                        html.Div(
                            html.P(
                                "Click a recommendation to see why and what it would do.",
                                className="muted",
                            ),
                            id=DETAIL,
                        ),
                        subtitle="rationale, impact, rollback plan, guardrails",
                    ),
                    _actions(can_decide=can_decide, can_roll_back=can_roll_back),
                ],
            ),
        ],
    )


def _bulk_bar() -> html.Div:
    return html.Div(
        className="trust-bulk",
        children=[
            html.Span("Selected rows:", className="field-label"),
            dcc.RadioItems(
                id=BULK_VERDICT,
                options=VERDICT_OPTIONS[:2],
                value="reject",
                inline=True,
                className="trust-radio",
            ),
            dcc.Dropdown(
                id=BULK_REASON,
                options=REASON_OPTIONS,
                placeholder="reason (required)",
                className="trust-reason",
            ),
            dcc.Input(
                id=BULK_NOTE,
                className="input trust-bulk-note",
                maxLength=decisions.MAX_NOTE,
                placeholder="note (optional)",
            ),
            html.Button("Decide selected", id=BULK, className="btn btn-quiet"),
        ],
    )


def _actions(*, can_decide: bool, can_roll_back: bool) -> html.Section:
    if not can_decide:
        return section(
            "Decide",
            html.P(
                "Your role can read recommendations. Operators, engineers and admins decide "
                "and execute; engineers and admins roll back.",
                className="muted",
            ),
        )
    rollback_controls: list[Any] = []
    if can_roll_back:
        rollback_controls = [
            html.H3("Roll back"),
            html.Div(
                className="trust-inline",
                children=[
                    dcc.Input(
                        id=ROLLBACK_REASON,
                        className="input trust-grow",
                        maxLength=2000,
                        placeholder="why (required, audited)",
                    ),
                    html.Button("Roll back", id=ROLLBACK, className="btn btn-danger"),
                ],
            ),
        ]
    body = html.Div(
        [
            field(
                "Verdict",
                dcc.RadioItems(
                    id=VERDICT,
                    options=VERDICT_OPTIONS,
                    value="accept",
                    inline=True,
                    className="trust-radio",
                ),
            ),
            field(
                "Reason (required)",
                dcc.Dropdown(id=REASON, options=REASON_OPTIONS, placeholder="choose a reason"),
            ),
            field(
                "Override action (only for override)",
                dcc.Input(
                    id=OVERRIDE,
                    className="input",
                    maxLength=64,
                    placeholder="e.g. manual_tilt_change",
                ),
            ),
            field(
                "Note",
                dcc.Textarea(
                    id=NOTE,
                    className="input trust-note",
                    maxLength=decisions.MAX_NOTE,
                    placeholder="optional: what you saw (kept for review)",
                ),
            ),
            html.Div(
                className="trust-inline",
                children=[
                    html.Button("Record decision", id=DECIDE, className="btn"),
                    html.Button(
                        "Execute",
                        id=EXECUTE,
                        className="btn btn-quiet",
                        title="Runs only if every guardrail allows it",
                    ),
                ],
            ),
            *rollback_controls,
            html.Div(id=MESSAGE, className="trust-message"),
        ],
        className="trust-form",
    )
    return section("Decide", body, subtitle="for the recommendation shown in Detail")


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Output(TILES, "children"),
    Output(BANNER, "children"),
    Output(EMPTY, "children"),
    Input(STATE, "value"),
    Input(USE_CASE, "value"),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_grid(state: Any, use_case: Any, _n: int | None, _done: Any) -> tuple:
    """Recommendations matching the filters, newest first, with counts and rollback banner."""
    ctx = beacon()
    now = utcnow()
    wanted = state if isinstance(state, str) and state in STATE_FILTERS else "pending"
    try:
        with ctx.db.session() as session:
            rows = list_recommendations(
                session,
                state=None if wanted == "all" else wanted,
                use_case_id=positive_id(use_case),
                limit=ROW_LIMIT,
            )
            pending = list_recommendations(session, state="pending", limit=ROW_LIMIT)
            worse = rollback_recommended(session)
    except BeaconError as error:
        return [], "", None, None, notice(error.message, tone="warn")
    grid = [grid_row(r, zone=ctx.settings.zone, now=now) for r in rows]
    shown = f"{count(len(grid))} recommendations" + (
        " (newest shown)" if len(grid) >= ROW_LIMIT else ""
    )
    empty = None if grid else no_rows(filtered=wanted != "all" or use_case is not None)
    tiles = count_tiles(pending, rollback_recommended=len(worse))
    return grid, shown, tiles, rollback_banner(worse), empty


def rollback_recommended(session: Session) -> list[dict[str, Any]]:
    """Executions whose verification found worse KPIs and that no one rolled back yet."""
    rows = session.execute(
        select(Execution, Recommendation)
        .join(Recommendation, Recommendation.id == Execution.recommendation_id)
        .where(Execution.state == "rollback_recommended")
        .order_by(Execution.id)
    ).all()
    out = []
    for execution, rec in rows:
        kpis = (execution.verification or {}).get("kpis") or {}
        worse = [k for k, c in kpis.items() if isinstance(c, dict) and c.get("verdict") == "worse"]
        out.append(
            {
                "recommendation_id": rec.id,
                "execution_id": execution.id,
                "action": rec.action,
                "element": ((rec.explanation or {}).get("element") or {}).get("name", "—"),
                "detail": "worse: " + ", ".join(worse) if worse else "KPIs got worse",
            }
        )
    return out


@dash.callback(
    Output(SELECTED, "data"),
    Input(GRID, "cellClicked"),
    prevent_initial_call=True,
)
@allow(PAGE_ROLES)
def pick(cell: Any) -> Any:
    """The clicked row becomes the one shown in Detail."""
    picked = positive_id(cell.get("rowId")) if isinstance(cell, dict) else None
    return dash.no_update if picked is None else picked


@dash.callback(
    Output(DETAIL, "children"),
    Input(SELECTED, "data"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def show_detail(selected: Any, _done: Any) -> Any:
    """The chosen recommendation in full, with a dry run of its guardrails (changes nothing)."""
    rec_id = positive_id(selected)
    if rec_id is None:
        return html.P("Click a recommendation to see why and what it would do.", className="muted")
    ctx = beacon()
    now = utcnow()
    try:
        with ctx.db.session() as session:
            detail = recommendation_detail(session, recommendation_id=rec_id)
            owners = owners_of_recommendation(session, now=now, recommendation_id=rec_id)
            preview = None
            if detail["state"] in ("open", "accepted", "overridden", "awaiting_second_approval"):
                preview = dry_run(session, recommendation_id=rec_id, now=now).as_dict()
    except BeaconError as error:
        return notice(error.message, tone="warn")
    for d in detail["decisions"]:
        d["reason_label"] = REASON_LABELS.get(d.get("reason_code") or "", d.get("reason_code"))
    zone = ctx.settings.zone
    return html.Div(
        [
            owner_strip(owners, zone=zone, now=now, id_="recommendations-owners"),
            detail_panel(detail, preview=preview, zone=zone, now=now),
        ]
    )


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(MESSAGE, "children"),
    Output(DONE, "data"),
    Output(NOTE, "value"),
    Input(DECIDE, "n_clicks"),
    State(SELECTED, "data"),
    State(VERDICT, "value"),
    State(REASON, "value"),
    State(NOTE, "value"),
    State(OVERRIDE, "value"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def decide_one(
    clicks: int | None,
    selected: Any,
    verdict: Any,
    reason: Any,
    note: Any,
    override_action: Any,
) -> tuple:
    """Record a verdict with its reason on the shown recommendation (the service audits it)."""
    rec_id = positive_id(selected)
    if not clicks:
        return dash.no_update, dash.no_update, dash.no_update
    if rec_id is None:
        return notice("Click a recommendation first.", tone="warn"), dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    try:
        with beacon().db.session(write=True) as session:
            decisions.decide(
                session,
                recommendation_id=rec_id,
                verdict=_text(verdict) or "",
                reason_code=_text(reason),
                note=_text(note) or "",
                override_action=_text(override_action),
                actor=principal.actor(),
                now=utcnow(),
            )
            state = session.get_one(Recommendation, rec_id).state
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update, dash.no_update
    text = f"Recommendation #{rec_id}: {state.replace('_', ' ')}."
    if state == "awaiting_second_approval":
        text += " A different person must now accept it too."
    return notice(text, tone="ok", id_="recommendations-decided"), utcnow().timestamp(), ""


@dash.callback(
    Output(BULK_CONFIRM, "displayed"),
    Output(BULK_CONFIRM, "message"),
    Output(BULK_MESSAGE, "children"),
    Input(BULK, "n_clicks"),
    State(GRID, "selectedRows"),
    State(BULK_VERDICT, "value"),
    State(BULK_REASON, "value"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES)
def ask_bulk(clicks: int | None, selected: Any, verdict: Any, reason: Any) -> tuple:
    """Ask before a bulk decision: many verdicts should never be one stray click."""
    if not clicks:
        return False, dash.no_update, dash.no_update
    ids = _selected_ids(selected)
    if not ids:
        return False, "", notice("Tick the recommendations to decide on first.", tone="warn")
    if _text(reason) not in REASON_CODES:
        return False, "", notice("Choose a reason for the bulk decision.", tone="warn")
    word = "Accept" if verdict == "accept" else "Reject"
    label = REASON_LABELS[str(reason)]
    return (
        True,
        f"{word} {len(ids)} recommendation(s) with reason “{label}”? This is audited.",
        None,
    )


@dash.callback(
    Output(BULK_MESSAGE, "children", allow_duplicate=True),
    Output(DONE, "data", allow_duplicate=True),
    Input(BULK_CONFIRM, "submit_n_clicks"),
    State(GRID, "selectedRows"),
    State(BULK_VERDICT, "value"),
    State(BULK_REASON, "value"),
    State(BULK_NOTE, "value"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def decide_bulk(
    confirmed: int | None, selected: Any, verdict: Any, reason: Any, note: Any
) -> tuple:
    """The same verdict and reason on every selected recommendation; refusals are reported."""
    ids = _selected_ids(selected)
    if not confirmed or not ids:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            result = decisions.decide_many(
                session,
                recommendation_ids=ids,
                verdict=_text(verdict) or "",
                reason_code=_text(reason),
                note=_text(note) or "",
                actor=principal.actor(),
                now=utcnow(),
            )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    parts = [f"Decided {len(result.decided)} recommendation(s)."]
    parts += [f"#{i}: {why}" for i, why in sorted(result.skipped.items())]
    if result.missing:
        parts.append(f"{len(result.missing)} no longer exist.")
    tone = "ok" if not result.skipped else "warn"
    return notice(" ".join(parts), tone=tone, id_="recommendations-bulk-done"), utcnow().timestamp()


@dash.callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Output(DONE, "data", allow_duplicate=True),
    Input(EXECUTE, "n_clicks"),
    State(SELECTED, "data"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def execute_selected(clicks: int | None, selected: Any) -> tuple:
    """Execute the shown recommendation if every guardrail allows; else say which one blocks."""
    rec_id = positive_id(selected)
    if not clicks:
        return dash.no_update, dash.no_update
    if rec_id is None:
        return notice("Click a recommendation first.", tone="warn"), dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        run = execute_and_commit(
            beacon().db, recommendation_id=rec_id, actor=principal.actor(), now=utcnow()
        )
    except GuardrailBlocked as blocked:
        # Audited and committed by the service; the refusal is news, not a failure.
        return (
            notice(blocked.message, tone="warn", id_="recommendations-blocked"),
            utcnow().timestamp(),
        )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    if run["state"] == "failed":
        text, tone = f"Execution #{run['id']} failed: {run['error']}", "warn"
    else:
        text, tone = (
            f"Executed #{rec_id} via {run['actuator']} (execution #{run['id']}); KPIs are "
            "verified after the watch window.",
            "ok",
        )
    return notice(text, tone=tone, id_="recommendations-executed"), utcnow().timestamp()


@dash.callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Output(DONE, "data", allow_duplicate=True),
    Output(ROLLBACK_REASON, "value"),
    Input(ROLLBACK, "n_clicks"),
    State(SELECTED, "data"),
    State(ROLLBACK_REASON, "value"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES, mutates=True)
def rollback_selected(clicks: int | None, selected: Any, reason: Any) -> tuple:
    """Restore the pre-state of the shown recommendation's latest execution (engineers+)."""
    rec_id = positive_id(selected)
    if not clicks:
        return dash.no_update, dash.no_update, dash.no_update
    if rec_id is None:
        return notice("Click a recommendation first.", tone="warn"), dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            execution = rollback_recommendation(
                session,
                recommendation_id=rec_id,
                actor=principal.actor(),
                now=utcnow(),
                reason=_text(reason) or "",
            )
            text = f"Execution #{execution.id} of recommendation #{rec_id} rolled back."
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update, dash.no_update
    return notice(text, tone="ok", id_="recommendations-rolled-back"), utcnow().timestamp(), ""


def _selected_ids(selected: Any) -> list[int]:
    """Ids of the ticked rows; anything malformed (crafted requests) is ignored."""
    if not isinstance(selected, list):
        return []
    ids = (positive_id(row.get("id")) for row in selected if isinstance(row, dict))
    return [i for i in ids if i is not None]


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
