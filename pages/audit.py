"""Audit: browse and filter the hash-chained trail of every state change; verify the chain."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dash
from dash import Input, Output, dcc, html

from components.cards import notice, section
from components.format import count, local_time
from components.forms import field
from components.grid import data_grid
from services import audit
from services.auth import AUDIT_ROLES
from services.db.models import AuditEvent
from services.web.authz import allow
from services.web.context import beacon

dash.register_page(
    __name__,
    path="/audit",
    name="Audit",
    title="Audit · Beacon",
    order=90,
    roles=AUDIT_ROLES,
)

ACTOR = "audit-actor"
ACTION = "audit-action"
OBJECT_TYPE = "audit-object-type"
DATES = "audit-dates"
TEXT = "audit-text"
GRID = "audit-grid"
DETAIL = "audit-detail"
VERIFY = "audit-verify"
VERIFY_RESULT = "audit-verify-result"
EXPORT = "audit-export"
COUNT = "audit-count"
REFRESH = "audit-refresh"
ROW_LIMIT = 5000

COLUMNS = [
    {"field": "seq", "headerName": "#", "maxWidth": 100, "sort": "desc"},
    {"field": "at", "headerName": "Time", "minWidth": 170},
    {"field": "actor", "headerName": "Actor", "minWidth": 140},
    {"field": "actor_role", "headerName": "Role", "maxWidth": 120},
    {"field": "action", "headerName": "Action", "minWidth": 170},
    {"field": "object", "headerName": "Object", "minWidth": 150},
    {"field": "ip", "headerName": "Address", "maxWidth": 150},
    {"field": "hash", "headerName": "Hash", "minWidth": 140, "cellClass": "mono"},
]


def layout(**_query: str) -> html.Div:
    today = datetime.now(UTC).date()
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=60_000),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            html.H1("Audit trail"),
                            html.P(
                                "Every state change: who, when, what, before and after. "
                                "Each event's hash covers the one before it."
                            ),
                        ]
                    ),
                    html.Button("Verify chain", id=VERIFY, className="btn"),
                ],
            ),
            html.Div(id=VERIFY_RESULT),
            section(
                "Events",
                html.Div(
                    [
                        html.Div(
                            className="form-grid",
                            children=[
                                field("Actor", dcc.Dropdown(id=ACTOR, placeholder="any actor")),
                                field("Action", dcc.Dropdown(id=ACTION, placeholder="any action")),
                                field(
                                    "Object", dcc.Dropdown(id=OBJECT_TYPE, placeholder="any type")
                                ),
                                field(
                                    "Between",
                                    dcc.DatePickerRange(
                                        id=DATES,
                                        start_date=today - timedelta(days=30),
                                        end_date=today,
                                        display_format="YYYY-MM-DD",
                                    ),
                                ),
                                field(
                                    "Search",
                                    dcc.Input(
                                        id=TEXT,
                                        type="search",
                                        debounce=True,
                                        placeholder="action, actor or object id",
                                        className="input",
                                    ),
                                ),
                            ],
                        ),
                        html.Div(style={"height": "12px"}),
                        data_grid(
                            GRID,
                            columns=COLUMNS,
                            row_id="seq",
                            height="460px",
                            selectable="singleRow",
                            export_name="beacon-audit.csv",
                        ),
                    ]
                ),
                subtitle=html.Span(id=COUNT),
                actions=html.Button("Export CSV", id=EXPORT, className="btn btn-quiet"),
            ),
            section(
                "Selected event",
                html.Div(
                    id=DETAIL,
                    children=html.P("Select an event to see what changed.", className="muted"),
                ),
            ),
        ],
    )


@dash.callback(
    Output(ACTOR, "options"),
    Output(ACTION, "options"),
    Output(OBJECT_TYPE, "options"),
    Input(REFRESH, "n_intervals"),
)
@allow(AUDIT_ROLES)
def load_filter_options(_n: int | None) -> tuple[list[str], list[str], list[str]]:
    """Filter choices from the values present in the trail."""
    with beacon().db.session() as session:
        values = audit.distinct_values(session)
    return values["actors"], values["actions"], values["object_types"]


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Input(ACTOR, "value"),
    Input(ACTION, "value"),
    Input(OBJECT_TYPE, "value"),
    Input(DATES, "start_date"),
    Input(DATES, "end_date"),
    Input(TEXT, "value"),
    Input(REFRESH, "n_intervals"),
)
@allow(AUDIT_ROLES)
def search_events(
    actor: str | None,
    action: str | None,
    object_type: str | None,
    start: str | None,
    end: str | None,
    text: str | None,
    _n: int | None,
) -> tuple[list[dict], str]:
    """Newest-first events matching the filters (at most ROW_LIMIT)."""
    ctx = beacon()
    since = _day_start(start)
    until = _day_start(end) + timedelta(days=1) if end else None
    with ctx.db.session() as session:
        events = audit.search(
            session,
            limit=ROW_LIMIT,
            actor=actor,
            action=action,
            object_type=object_type,
            since=since,
            until=until,
            text_filter=(text or "").strip() or None,
        )
    rows = [_row(e, ctx.settings.zone) for e in events]
    shown = f"{count(len(rows))} events" + (
        " (newest shown; narrow the filters)" if len(rows) >= ROW_LIMIT else ""
    )
    return rows, shown


@dash.callback(
    Output(DETAIL, "children"),
    Input(GRID, "selectedRows"),
)
@allow(AUDIT_ROLES)
def show_event(selected: list[dict] | None) -> html.Div | html.P:
    """Before and after of the selected event, read fresh from the database."""
    if not selected:
        return html.P("Select an event to see what changed.", className="muted")
    seq = int(selected[0]["seq"])
    ctx = beacon()
    with ctx.db.session() as session:
        event = session.query(AuditEvent).filter(AuditEvent.seq == seq).one_or_none()
        if event is None:
            return html.P(f"Event #{seq} is no longer in the trail.", className="muted")
        facts = [
            ("Event", f"#{event.seq}"),
            ("Time", local_time(event.at, ctx.settings.zone, seconds=True)),
            ("Actor", f"{event.actor} ({event.actor_role or 'no role'})"),
            ("Action", event.action),
            ("Object", f"{event.object_type or '—'} {event.object_id or ''}"),
            ("Address", event.ip or "—"),
            ("Hash", event.hash),
            ("Previous hash", event.prev_hash),
        ]
        before, after = event.before, event.after
    return html.Div(
        className="columns",
        children=[
            html.Dl(
                [
                    item
                    for k, v in facts
                    for item in (html.Dt(k), html.Dd(v, className="mono" if "ash" in k else None))
                ],
                className="kv",
            ),
            html.Div([html.H3("Before"), html.Pre(_pretty(before), className="json-block")]),
            html.Div([html.H3("After"), html.Pre(_pretty(after), className="json-block")]),
        ],
    )


@dash.callback(
    Output(VERIFY_RESULT, "children"),
    Input(VERIFY, "n_clicks"),
    prevent_initial_call=True,
)
@allow(AUDIT_ROLES)
def verify_chain(_clicks: int | None) -> html.Div:
    """Recompute every hash and report the first broken event, if any."""
    with beacon().db.session() as session:
        result = audit.verify(session)
    if result.ok:
        return notice(
            f"Chain intact: {count(result.checked)} events verified; head #{result.head_seq} "
            f"{result.head_hash[:16]}… Record the head elsewhere to detect truncation later.",
            tone="ok",
            id_="audit-verify-ok",
        )
    return notice(
        f"Chain broken at event #{result.broken_seq}: {result.problem}. "
        f"{count(result.checked)} events before it verified.",
        tone="bad",
        id_="audit-verify-broken",
    )


dash.clientside_callback(
    "function(n) { return n ? true : false; }",
    Output(GRID, "exportDataAsCsv"),
    Input(EXPORT, "n_clicks"),
    prevent_initial_call=True,
)


def _row(event: AuditEvent, zone) -> dict:  # type: ignore[no-untyped-def]
    obj = " ".join(x for x in (event.object_type, event.object_id) if x)
    return {
        "seq": event.seq,
        "at": local_time(event.at, zone, seconds=True),
        "actor": event.actor,
        "actor_role": event.actor_role or "",
        "action": event.action,
        "object": obj,
        "ip": event.ip or "",
        "hash": event.hash[:16],
    }


def _day_start(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(value[:10]), datetime.min.time(), tzinfo=UTC)


def _pretty(doc: dict | None) -> str:
    return "—" if doc is None else json.dumps(doc, indent=2, sort_keys=True, default=str)
