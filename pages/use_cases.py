"""Use cases: earned automation per use case — maturity ladder, criteria against metrics,
guardrails, owner and on call, promotions for admins, and the change calendar."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html

from components.cards import notice, section
from components.format import local_time
from components.grid import data_grid
from components.use_case import (
    WINDOW_COLUMNS,
    WINDOW_ROW_CLASSES,
    import_report,
    pending_table,
    use_case_card,
    window_row,
)
from pages._params import positive_id
from services.auth import ADMIN_ROLES, ALL_ROLES, ENGINEER_ROLES
from services.automation import change_windows
from services.automation.levels import level_label
from services.automation.maturity import (
    approve_change,
    criteria_checks,
    pending_changes,
    reject_change,
)
from services.automation.use_cases import list_use_cases, use_case_view
from services.db.models import UseCase, utcnow
from services.errors import BeaconError, NotFound
from services.oncall.resolve import oncall_for
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/use-cases",
    name="Use cases",
    title="Use cases · Beacon",
    order=17,
    roles=PAGE_ROLES,
)

REFRESH = "use-cases-refresh"
DONE = "use-cases-done"
CARDS = "use-cases-cards"
PENDING = "use-cases-pending"
APPROVE = "use-cases-approve"
REJECT = "use-cases-reject"
REJECT_REASON = "use-cases-reject-reason"
REASON_ROW = "use-cases-reject-reason-row"
MATURITY_MESSAGE = "use-cases-maturity-message"
WINDOWS = "use-cases-windows"
UPLOAD = "use-cases-upload"
DELETE = "use-cases-delete-window"
DELETE_CONFIRM = "use-cases-delete-confirm"
CALENDAR_MESSAGE = "use-cases-calendar-message"
REFRESH_MS = 60_000
MAX_UPLOAD = 2 * 1024 * 1024
CALENDAR_PAST = timedelta(days=7)
CSV_HELP = (
    "CSV with a header row: external_id, title, kind (change, maintenance, freeze), "
    "starts_at, ends_at (ISO 8601 with a zone), domains, regions, elements — lists inside a "
    "cell separated by “;”. The same external_id updates a window. Good rows are kept; "
    "every refused row is listed with its reason."
)


def layout(**_query: str) -> html.Div:
    """Cards per use case, pending promotions and the change calendar; forms by role."""
    principal = current_principal()
    kiosk = principal is None or principal.is_kiosk
    is_engineer = not kiosk and principal.role in ENGINEER_ROLES
    return html.Div(
        className="page trust-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=DONE, data=0),
            dcc.ConfirmDialog(id=DELETE_CONFIRM, message=""),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Use cases"),
                        html.P(
                            "Automation is earned per use case: Beacon proposes a promotion when "
                            "the measured acceptance and precision hold, an admin approves it, "
                            "and a guardrail breach or harmful rollback demotes it at once."
                        ),
                    ]
                ),
            ),
            section(
                "Pending promotions",
                html.Div(
                    [
                        html.Div(id=PENDING),
                        html.Div(
                            dcc.Input(
                                id=REJECT_REASON,
                                className="input trust-grow",
                                maxLength=2000,
                                placeholder="reason when rejecting (optional, audited)",
                            ),
                            className="trust-inline hidden",
                            id=REASON_ROW,
                        ),
                        html.Div(id=MATURITY_MESSAGE),
                    ]
                ),
                subtitle="admins approve or reject; every decision is audited",
            ),
            html.Div(id=CARDS, className="trust-cards"),
            section(
                "Change calendar",
                html.Div(
                    [
                        html.P(
                            "Freezes stop every execution they cover; planned changes and "
                            "maintenance stop actions on the parts of the network they touch.",
                            className="muted",
                        ),
                        _calendar_tools() if is_engineer else None,
                        html.Div(id=CALENDAR_MESSAGE),
                        data_grid(
                            WINDOWS,
                            columns=WINDOW_COLUMNS,
                            row_id="id",
                            auto_height=True,
                            page_size=25,
                            selectable="singleRow" if is_engineer else None,
                            row_class_rules=WINDOW_ROW_CLASSES,
                        ),
                    ]
                ),
                subtitle="last 7 days and ahead",
                actions=html.Button("Delete selected window", id=DELETE, className="btn btn-quiet")
                if is_engineer
                else None,
            ),
        ],
    )


def _calendar_tools() -> html.Div:
    return html.Div(
        className="trust-upload-row",
        children=[
            dcc.Upload(
                id=UPLOAD,
                children=html.Div(["Drop a change-calendar CSV here or ", html.A("choose a file")]),
                className="trust-upload",
                accept=".csv,text/csv",
                max_size=MAX_UPLOAD,
                multiple=False,
            ),
            html.P(CSV_HELP, className="small muted"),
        ],
    )


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(CARDS, "children"),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_use_cases(_n: int | None, _done: Any) -> list:
    """One card per use case with its ladder, owner and on call, criteria and guardrails."""
    ctx = beacon()
    now = utcnow()
    zone = ctx.settings.zone
    cards = []
    with ctx.db.session() as session:
        for case in list_use_cases(session):
            view = use_case_view(session, case=case, now=now)
            cards.append(
                use_case_card(
                    view,
                    checks=criteria_checks(case, view["metrics"]),
                    oncall=_oncall(session, case, now=now, zone=zone),
                    zone=zone,
                )
            )
    if not cards:
        return [notice("No automation use cases are configured yet.", tone="info")]
    return cards


def _oncall(session: Any, case: UseCase, *, now: Any, zone: Any) -> dict[str, Any] | None:
    try:
        answer = oncall_for(session, now=now, component=f"usecase:{case.key}")
    except NotFound:
        return None
    who = answer.oncall
    return {
        "team": {"id": who.team.id, "key": who.team.key, "name": who.team.name},
        "person": who.person.as_dict() if who.person else None,
        "until_text": local_time(who.until, zone) if who.until else None,
    }


@dash.callback(
    Output(PENDING, "children"),
    Output(REASON_ROW, "className"),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_pending(_n: int | None, _done: Any) -> tuple[Any, str]:
    """Proposed promotions, oldest first; approve and reject buttons for admins."""
    principal = current_principal()
    can_approve = principal is not None and not principal.is_kiosk and principal.role in ADMIN_ROLES
    ctx = beacon()
    with ctx.db.session() as session:
        names = {c.id: c.name for c in list_use_cases(session)}
        changes = [
            {
                "id": c.id,
                "use_case": names.get(c.use_case_id, f"#{c.use_case_id}"),
                "from_level": level_label(c.from_level),
                "to_level": level_label(c.to_level),
                "reason": c.reason or "",
                "proposed_at": c.proposed_at,
            }
            for c in pending_changes(session)
        ]
    table = pending_table(
        changes,
        can_approve=can_approve,
        approve_type=APPROVE,
        reject_type=REJECT,
        zone=ctx.settings.zone,
    )
    # The class, not `hidden`: the row's display: flex would override the attribute.
    return table, "trust-inline" if can_approve and changes else "trust-inline hidden"


@dash.callback(
    Output(WINDOWS, "rowData"),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_windows(_n: int | None, _done: Any) -> list[dict]:
    """Windows from a week ago onwards, by start time."""
    ctx = beacon()
    now = utcnow()
    with ctx.db.session() as session:
        windows = change_windows.list_windows(session, start=now - CALENDAR_PAST)
        return [
            window_row(change_windows.window_dict(w), zone=ctx.settings.zone, now=now)
            for w in windows
        ]


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(MATURITY_MESSAGE, "children"),
    Output(DONE, "data"),
    Input({"type": APPROVE, "index": ALL}, "n_clicks"),
    Input({"type": REJECT, "index": ALL}, "n_clicks"),
    State(REJECT_REASON, "value"),
    prevent_initial_call=True,
)
@allow(ADMIN_ROLES, mutates=True)
def decide_promotion(_approve: Any, _reject: Any, reason: Any) -> tuple:
    """An admin approves or rejects one proposed promotion (the service audits it)."""
    trigger = dash.ctx.triggered_id
    fired = [t for t in dash.ctx.triggered if t.get("value")]
    if not isinstance(trigger, dict) or not fired:
        return dash.no_update, dash.no_update  # buttons re-drawn, not clicked
    change_id = positive_id(trigger.get("index"))
    if change_id is None or trigger.get("type") not in (APPROVE, REJECT):
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    now = utcnow()
    try:
        with beacon().db.session(write=True) as session:
            if trigger["type"] == APPROVE:
                change = approve_change(
                    session, change_id=change_id, admin=principal.actor(), now=now
                )
                case = session.get_one(UseCase, change.use_case_id)
                text = f"{case.name} is now at {level_label(change.to_level)}."
            else:
                change = reject_change(
                    session,
                    change_id=change_id,
                    admin=principal.actor(),
                    now=now,
                    reason=reason if isinstance(reason, str) else "",
                )
                case = session.get_one(UseCase, change.use_case_id)
                text = f"Promotion of {case.name} to {level_label(change.to_level)} rejected."
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    return notice(text, tone="ok", id_="use-cases-maturity-done"), now.timestamp()


@dash.callback(
    Output(CALENDAR_MESSAGE, "children"),
    Output(DONE, "data", allow_duplicate=True),
    Input(UPLOAD, "contents"),
    State(UPLOAD, "filename"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES, mutates=True)
def upload_calendar(contents: Any, filename: Any) -> tuple:
    """Import a change-calendar CSV; good rows are kept, refused rows listed with reasons."""
    if not isinstance(contents, str) or "," not in contents:
        return dash.no_update, dash.no_update
    name = filename if isinstance(filename, str) else "upload.csv"
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        return notice(f"{name} could not be read.", tone="warn"), dash.no_update
    if len(raw) > MAX_UPLOAD:
        return notice(
            f"{name} is larger than {MAX_UPLOAD // 1024} KiB.", tone="warn"
        ), dash.no_update
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return notice(f"{name} is not UTF-8 text.", tone="warn"), dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            result = change_windows.import_csv(
                session, text=text, actor=principal.actor(), source="csv"
            )
    except BeaconError as error:
        return notice(f"{name}: {error.message}", tone="warn"), dash.no_update
    return import_report(result.as_dict(), filename=name), utcnow().timestamp()


@dash.callback(
    Output(DELETE_CONFIRM, "displayed"),
    Output(DELETE_CONFIRM, "message"),
    Output(CALENDAR_MESSAGE, "children", allow_duplicate=True),
    Input(DELETE, "n_clicks"),
    State(WINDOWS, "selectedRows"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES)
def ask_delete(clicks: int | None, selected: Any) -> tuple:
    """Ask before deleting: removing a freeze lets automation run where it was stopped."""
    if not clicks:
        return False, dash.no_update, dash.no_update
    row = _first_row(selected)
    if row is None:
        return False, "", notice("Select a window in the calendar first.", tone="warn")
    return True, f"Delete {row.get('kind')} window “{row.get('title')}”? This is audited.", None


@dash.callback(
    Output(CALENDAR_MESSAGE, "children", allow_duplicate=True),
    Output(DONE, "data", allow_duplicate=True),
    Input(DELETE_CONFIRM, "submit_n_clicks"),
    State(WINDOWS, "selectedRows"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES, mutates=True)
def delete_window(confirmed: int | None, selected: Any) -> tuple:
    """Remove the selected window (the service audits what it was)."""
    row = _first_row(selected)
    window_id = positive_id(row.get("id")) if row else None
    if not confirmed or window_id is None:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    try:
        with beacon().db.session(write=True) as session:
            change_windows.delete_window(session, window_id=window_id, actor=principal.actor())
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    return notice(f"Window #{window_id} deleted.", tone="ok"), utcnow().timestamp()


def _first_row(selected: Any) -> dict[str, Any] | None:
    if isinstance(selected, list) and selected and isinstance(selected[0], dict):
        return selected[0]
    return None
