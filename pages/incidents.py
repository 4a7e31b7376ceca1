"""Incidents: the filtered list, and a form to open one by hand (operators and up)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from components.cards import notice, section
from components.format import count
from components.forms import field
from components.grid import data_grid
from components.incident import LIST_COLUMNS, ROW_CLASSES, list_row
from services.auth import ALL_ROLES, OPERATE_ROLES
from services.db.models import utcnow
from services.errors import BeaconError
from services.incidents import lifecycle, states
from services.incidents.queries import IncidentFilters, list_incidents
from services.notify.config import notify_config
from services.oncall.resolve import oncall_board
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path="/incidents",
    name="Incidents",
    title="Incidents · Beacon",
    order=31,
    roles=PAGE_ROLES,
)

REFRESH = "incidents-refresh"
DONE = "incidents-done"
STATUS = "incidents-status"
SEVERITY = "incidents-severity"
ORIGIN = "incidents-origin"
DOMAIN = "incidents-domain"
TEAM = "incidents-team"
AI = "incidents-ai"
OPEN_ONLY = "incidents-open-only"
TEXT = "incidents-text"
GRID = "incidents-grid"
EXPORT = "incidents-export"
COUNT = "incidents-count"
EMPTY = "incidents-empty"
NEW_TITLE = "incidents-new-title"
NEW_SEVERITY = "incidents-new-severity"
NEW_DOMAIN = "incidents-new-domain"
NEW_SUMMARY = "incidents-new-summary"
NEW_TICKET = "incidents-new-ticket"
NEW_CREATE = "incidents-new-create"
NEW_MESSAGE = "incidents-new-message"

REFRESH_MS = 30_000
ROW_LIMIT = 500
FILTER_IDS = (STATUS, SEVERITY, ORIGIN, DOMAIN, TEAM, AI, OPEN_ONLY, TEXT)
AI_CHOICES = {"any": "any", "yes": "AI involved", "no": "no AI"}
DEFAULT_DOMAINS = ("RAN", "Transport", "Core")


def layout(**_query: str) -> html.Div:
    """Filters, the list, and the new-incident form for those who may open one."""
    principal = current_principal()
    can_open = principal is not None and principal.role in OPERATE_ROLES and not principal.is_kiosk
    return html.Div(
        className="page incidents-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=DONE, data=0),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Incidents"),
                        html.P(
                            "Opened from anomaly episodes, alarms, heartbeats of the AI itself, "
                            "or by hand; routed to the owning team and escalated until someone "
                            "acknowledges."
                        ),
                    ]
                ),
            ),
            _new_incident(can_open),
            section(
                "Incidents",
                html.Div([_filters(), html.Div(id=EMPTY), _grid()]),
                subtitle=html.Span(id=COUNT),
                actions=html.Button("Export CSV", id=EXPORT, className="btn btn-quiet"),
            ),
        ],
    )


def _filters() -> html.Div:
    def multi(id_: str, values: tuple[str, ...], placeholder: str) -> dcc.Dropdown:
        return dcc.Dropdown(
            id=id_,
            options=[{"label": v, "value": v} for v in values],
            multi=True,
            placeholder=placeholder,
        )

    return html.Div(
        className="form-grid incidents-filters",
        children=[
            field("Status", multi(STATUS, states.STATUSES, "any status")),
            field("Severity", multi(SEVERITY, states.SEVERITIES, "any severity")),
            field("Origin", multi(ORIGIN, states.ORIGINS, "any origin")),
            field("Domain", dcc.Dropdown(id=DOMAIN, placeholder="any domain")),
            field("Team", dcc.Dropdown(id=TEAM, placeholder="any team")),
            field(
                "AI",
                dcc.Dropdown(
                    id=AI,
                    options=[{"label": t, "value": k} for k, t in AI_CHOICES.items()],
                    value="any",
                    clearable=False,
                ),
            ),
            field(
                "Search",
                dcc.Input(
                    id=TEXT,
                    type="search",
                    debounce=True,
                    className="input",
                    placeholder="title or ticket",
                ),
            ),
            dcc.Checklist(
                id=OPEN_ONLY,
                options=[{"label": " open only", "value": "open"}],
                value=["open"],
                className="incidents-open-only",
            ),
        ],
    )


def _grid() -> Any:
    return data_grid(
        GRID,
        columns=LIST_COLUMNS,
        row_id="id",
        auto_height=True,
        export_name="beacon-incidents.csv",
        row_class_rules=ROW_CLASSES,
    )


def _new_incident(can_open: bool) -> html.Section | None:
    if not can_open:
        return None
    body = html.Div(
        [
            html.Div(
                className="form-grid",
                children=[
                    html.Div(
                        field(
                            "Title",
                            dcc.Input(
                                id=NEW_TITLE,
                                className="input",
                                maxLength=lifecycle.MAX_TITLE,
                                placeholder="what is wrong, where",
                            ),
                        ),
                        className="incidents-wide",
                    ),
                    field(
                        "Severity",
                        dcc.Dropdown(
                            id=NEW_SEVERITY,
                            options=[{"label": s, "value": s} for s in states.SEVERITIES],
                            value="sev3",
                            clearable=False,
                        ),
                    ),
                    field(
                        "Domain (routes to its on-call)",
                        dcc.Dropdown(id=NEW_DOMAIN, placeholder="domain"),
                    ),
                    field(
                        "External ticket",
                        dcc.Input(
                            id=NEW_TICKET, className="input", maxLength=100, placeholder="optional"
                        ),
                    ),
                ],
            ),
            field(
                "Summary",
                dcc.Textarea(
                    id=NEW_SUMMARY,
                    className="input incidents-summary",
                    maxLength=lifecycle.MAX_TEXT,
                    placeholder="impact, first observations (optional)",
                ),
            ),
            html.Div(
                html.Button("Open incident", id=NEW_CREATE, className="btn"),
                className="incidents-form-actions",
            ),
            html.Div(id=NEW_MESSAGE, className="incidents-message"),
        ]
    )
    return section(
        "New incident",
        body,
        subtitle="paged to the domain's on-call at once; audited",
        id_="incidents-new-section",
    )


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(DOMAIN, "options"),
    Output(TEAM, "options"),
    Input(REFRESH, "n_intervals"),
)
@allow(PAGE_ROLES)
def load_options(_n: int | None) -> tuple[list, list]:
    """Domains and teams from the ownership map."""
    with beacon().db.session() as session:
        board = oncall_board(session, now=utcnow())
    domains = sorted({a.subject_key for a in board if a.subject_kind == "domain"})
    teams = {a.oncall.team.id: a.oncall.team.name for a in board}
    return (
        [{"label": d, "value": d} for d in domains or DEFAULT_DOMAINS],
        [{"label": n, "value": i} for i, n in sorted(teams.items(), key=lambda t: t[1])],
    )


@dash.callback(
    Output(NEW_DOMAIN, "options"),
    Input(DOMAIN, "options"),
)
@allow(OPERATE_ROLES)
def new_domain_options(options: Any) -> list:
    """The form offers the same domains as the filter."""
    return options if isinstance(options, list) else []


@dash.callback(
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Output(EMPTY, "children"),
    *(Input(id_, "value") for id_ in FILTER_IDS),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_list(*values: Any) -> tuple[list[dict], str, Any]:
    """Incidents matching the filters, newest first (at most ROW_LIMIT)."""
    ctx = beacon()
    try:
        filters = to_filters(dict(zip(FILTER_IDS, values[: len(FILTER_IDS)], strict=True)))
        with ctx.db.session() as session:
            page = list_incidents(session, filters=filters, limit=ROW_LIMIT)
            rows = [
                list_row(r, team=page.teams.get(r.team_id or -1), zone=ctx.settings.zone)
                for r in page.rows
            ]
    except BeaconError as error:
        return [], "", notice(error.message, tone="warn")
    shown = f"{count(page.total)} incident(s)"
    if page.total > len(rows):
        shown = f"newest {count(len(rows))} of {shown}; narrow the filters"
    empty = (
        None
        if rows
        else notice(
            "No incident matches these filters."
            + (" Untick “open only” to see resolved ones." if filters.open_only else ""),
            tone="info",
            id_="incidents-none",
        )
    )
    return rows, shown, empty


def to_filters(state: dict[str, Any]) -> IncidentFilters:
    """Filter control values (as the browser sends them) to list filters."""
    ai = state.get(AI)
    team = state.get(TEAM)
    return IncidentFilters(
        status=tuple(_strings(state.get(STATUS))),
        severity=tuple(_strings(state.get(SEVERITY))),
        origin=tuple(_strings(state.get(ORIGIN))),
        domain=_text(state.get(DOMAIN)),
        team_id=team if isinstance(team, int) and not isinstance(team, bool) else None,
        ai_involved={"yes": True, "no": False}.get(ai if isinstance(ai, str) else ""),
        text=_text(state.get(TEXT)),
        open_only="open" in _strings(state.get(OPEN_ONLY)),
    )


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(NEW_MESSAGE, "children"),
    Output(DONE, "data"),
    Output(NEW_TITLE, "value"),
    Input(NEW_CREATE, "n_clicks"),
    State(NEW_TITLE, "value"),
    State(NEW_SEVERITY, "value"),
    State(NEW_DOMAIN, "value"),
    State(NEW_SUMMARY, "value"),
    State(NEW_TICKET, "value"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def open_incident(
    clicks: int | None,
    title: Any,
    severity: Any,
    domain: Any,
    summary: Any,
    ticket: Any,
) -> tuple:
    """Open an incident by hand; it is routed and paged like any other."""
    if not clicks:
        return dash.no_update, dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    ctx = beacon()
    try:
        with ctx.db.session(write=True) as session:
            incident = lifecycle.create_manual(
                session,
                title=title if isinstance(title, str) else "",
                severity=severity if isinstance(severity, str) else "",
                actor=principal.actor(),
                summary=summary if isinstance(summary, str) else "",
                domain=_text(domain),
                external_ticket=_text(ticket),
                config=notify_config(ctx.settings),
            )
            number, team = incident.id, incident.team_id
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update, dash.no_update
    routed = "" if team is not None else " Nobody owns that domain, so nobody is paged."
    message = html.Div(
        [
            f"Incident #{number} opened.{routed} ",
            dcc.Link("Open it", href=f"/incidents/{number}", id="incidents-new-link"),
        ],
        className="notice notice-ok",
        role="status",
    )
    return message, utcnow().timestamp(), ""


dash.clientside_callback(
    "function(n) { return n ? true : false; }",
    Output(GRID, "exportDataAsCsv"),
    Input(EXPORT, "n_clicks"),
    prevent_initial_call=True,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or [] if isinstance(v, str)]


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
