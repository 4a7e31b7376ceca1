"""One incident: timeline, roles, linked anomalies and changes, delivery log, actions by role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html

from components.cards import notice, section
from components.forms import field
from components.incident import (
    anomalies_list,
    change_windows_list,
    delivery_table,
    roles_list,
    severity_pill,
    status_pill,
    summary_list,
    timeline_list,
)
from pages._params import positive_id
from services.auth import ALL_ROLES, OPERATE_ROLES
from services.db.models import utcnow
from services.errors import BeaconError, InvalidInput, NotFound
from services.incidents import escalation, lifecycle, states, triage
from services.incidents.queries import IncidentDetail, incident_detail
from services.notify import outbox
from services.notify.config import notify_config
from services.oncall.overview import team_overviews
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES
ACT_ROLES = OPERATE_ROLES

dash.register_page(
    __name__,
    path_template="/incidents/<incident_id>",
    name="Incident",
    title="Incident · Beacon",
    order=32,
    roles=PAGE_ROLES,
)

INCIDENT = "incident-id"
STATUS = "incident-status"
FACTS = "incident-facts"
ROLES = "incident-roles"
TIMELINE = "incident-timeline-panel"
DELIVERIES = "incident-deliveries-panel"
MESSAGE = "incident-message"
ACK = "incident-ack"
ESCALATE = "incident-escalate"
MITIGATE = "incident-mitigate"
RESOLVE = "incident-resolve"
RESOLUTION = "incident-resolution"
NOTE = "incident-note"
NOTE_ADD = "incident-note-add"
ROLE = "incident-role"
PERSON = "incident-person"
ROLE_ASSIGN = "incident-role-assign"
SEVERITY = "incident-severity"
SEVERITY_SET = "incident-severity-set"
TICKET = "incident-ticket"
TICKET_SAVE = "incident-ticket-save"
AI_DETECTED = "incident-ai-detected"
AI_RECOMMENDED = "incident-ai-recommended"
AI_CORRECT = "incident-ai-correct"
TRIAGE_SAVE = "incident-triage-save"
RETRY = "incident-retry"

TRI_STATE = [
    {"label": "not known", "value": "unknown"},
    {"label": "yes", "value": "yes"},
    {"label": "no", "value": "no"},
]
ACTION_IDS = (ACK, ESCALATE, MITIGATE, RESOLVE, NOTE_ADD, ROLE_ASSIGN, SEVERITY_SET)
ACTION_IDS += (TICKET_SAVE, TRIAGE_SAVE)


def layout(incident_id: str | None = None, **_query: str) -> html.Div:
    """The incident as stored now; actions redraw the parts they change."""
    number = positive_id(incident_id)
    ctx = beacon()
    try:
        if number is None:
            raise NotFound(f"“{incident_id}” is not an incident number.")
        with ctx.db.session() as session:
            detail = incident_detail(session, incident_id=number)
            panels = _panels(detail, can_act=_can_act())
    except NotFound as error:
        return html.Div(
            className="page-message",
            id="incident-not-found",
            children=[
                html.H2("Incident not found"),
                html.P(error.message),
                dcc.Link("Back to incidents", href="/incidents"),
            ],
        )
    incident = detail.incident
    zone = ctx.settings.zone
    return html.Div(
        className="page incident-page",
        children=[
            dcc.Store(id=INCIDENT, data=incident.id),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            dcc.Link("← Incidents", href="/incidents", className="muted"),
                            html.H1(f"#{incident.id} {incident.title}", id="incident-title"),
                            html.P(incident.summary, className="incident-summary")
                            if incident.summary
                            else None,
                        ]
                    ),
                    html.Div(panels["status"], id=STATUS, className="incident-status"),
                ],
            ),
            html.Div(
                className="columns incident-top",
                children=[
                    section("Facts", html.Div(panels["facts"], id=FACTS)),
                    section(
                        "Roles",
                        html.Div(panels["roles"], id=ROLES),
                        subtitle="who leads, who speaks for the AI, who writes it down",
                    ),
                ],
            ),
            _actions(detail),
            section(
                "Timeline",
                html.Div(panels["timeline"], id=TIMELINE),
                subtitle="every event, newest first",
            ),
            html.Div(
                className="columns",
                children=[
                    section(
                        "Linked anomalies",
                        anomalies_list(detail.anomalies, zone=zone),
                        subtitle="open one for its series and explanation",
                    ),
                    section(
                        "Change windows", change_windows_list(detail.change_windows, zone=zone)
                    ),
                ],
            ),
            section(
                "Delivery log",
                html.Div(panels["deliveries"], id=DELIVERIES),
                subtitle="pages, reminders and status events: webhook, e-mail, log",
            ),
        ],
    )


def _can_act() -> bool:
    principal = current_principal()
    return principal is not None and principal.role in ACT_ROLES and not principal.is_kiosk


def _panels(detail: IncidentDetail, *, can_act: bool) -> dict[str, Any]:
    """The parts of the page an action can change, drawn from one read."""
    zone = beacon().settings.zone
    now = utcnow()
    incident = detail.incident
    return {
        "status": [severity_pill(incident.severity), " ", status_pill(incident.status)],
        "facts": summary_list(incident, team=detail.team, policy=detail.policy, zone=zone, now=now),
        "roles": roles_list(detail.roles),
        "timeline": timeline_list(detail.timeline, zone=zone),
        "deliveries": delivery_table(detail.notifications, zone=zone, can_retry=can_act),
    }


def _actions(detail: IncidentDetail) -> html.Section:
    if not _can_act():
        return section(
            "Actions",
            html.P(
                "Your role can read this incident. Operators, engineers and admins acknowledge, "
                "escalate, assign roles, add notes and resolve it.",
                className="muted",
            ),
        )
    incident = detail.incident
    is_open = incident.status in states.OPEN_STATES
    yes_no = {True: "yes", False: "no", None: "unknown"}
    body = html.Div(
        [
            html.Div(
                className="incident-buttons",
                children=[
                    html.Button(
                        "Acknowledge",
                        id=ACK,
                        className="btn",
                        disabled=incident.status != "triggered",
                        title="I am on it: paging stops (audited)",
                    ),
                    html.Button(
                        "Escalate now",
                        id=ESCALATE,
                        className="btn btn-quiet",
                        disabled=not is_open or incident.escalation_policy_id is None,
                        title="Page the next step of the escalation path at once",
                    ),
                    html.Button(
                        "Mitigated",
                        id=MITIGATE,
                        className="btn btn-quiet",
                        disabled=incident.status not in ("triggered", "acknowledged"),
                        title="Impact contained; the note below is added if written",
                    ),
                ],
            ),
            html.Div(
                className="columns incident-forms",
                children=[
                    html.Div(
                        [
                            field(
                                "Note for the timeline",
                                dcc.Textarea(
                                    id=NOTE,
                                    className="input incident-text",
                                    maxLength=triage.MAX_NOTE,
                                    placeholder="what you saw, what you tried",
                                ),
                            ),
                            html.Button("Add note", id=NOTE_ADD, className="btn"),
                        ],
                        className="incident-form",
                    ),
                    html.Div(
                        [
                            field(
                                "Resolution note (required to resolve)",
                                dcc.Textarea(
                                    id=RESOLUTION,
                                    className="input incident-text",
                                    maxLength=lifecycle.MAX_TEXT,
                                    placeholder="what happened and what fixed it",
                                ),
                            ),
                            html.Button(
                                "Resolve",
                                id=RESOLVE,
                                className="btn btn-danger",
                                disabled=not is_open,
                            ),
                        ],
                        className="incident-form",
                    ),
                ],
            ),
            html.Div(
                className="form-grid incident-grid-form",
                children=[
                    field(
                        "Role",
                        dcc.Dropdown(
                            id=ROLE,
                            options=[
                                {"label": text, "value": key}
                                for key, text in triage.ROLE_TEXT.items()
                            ],
                            value="commander",
                            clearable=False,
                        ),
                    ),
                    field("Person", dcc.Dropdown(id=PERSON, placeholder="who")),
                    html.Button("Assign role", id=ROLE_ASSIGN, className="btn btn-quiet"),
                    field(
                        "Severity",
                        dcc.Dropdown(
                            id=SEVERITY,
                            options=[{"label": s, "value": s} for s in states.SEVERITIES],
                            value=incident.severity,
                            clearable=False,
                        ),
                    ),
                    html.Button("Set severity", id=SEVERITY_SET, className="btn btn-quiet"),
                    field(
                        "External ticket",
                        dcc.Input(
                            id=TICKET,
                            className="input",
                            maxLength=100,
                            value=incident.external_ticket or "",
                        ),
                    ),
                    html.Button("Save ticket", id=TICKET_SAVE, className="btn btn-quiet"),
                ],
            ),
            html.H3("AI involved (triage)"),
            html.Div(
                className="form-grid incident-grid-form",
                children=[
                    field(
                        "Did the AI detect it?",
                        dcc.Dropdown(
                            id=AI_DETECTED,
                            options=TRI_STATE,
                            value=yes_no[incident.ai_detected],
                            clearable=False,
                        ),
                    ),
                    field(
                        "Did the AI recommend an action?",
                        dcc.Dropdown(
                            id=AI_RECOMMENDED,
                            options=TRI_STATE,
                            value=yes_no[incident.ai_recommended],
                            clearable=False,
                        ),
                    ),
                    field(
                        "Was the AI right?",
                        dcc.Dropdown(
                            id=AI_CORRECT,
                            options=TRI_STATE,
                            value=yes_no[incident.ai_correct],
                            clearable=False,
                        ),
                    ),
                    html.Button("Save triage", id=TRIAGE_SAVE, className="btn btn-quiet"),
                ],
            ),
            html.Div(id=MESSAGE, className="incident-message"),
        ]
    )
    return section(
        "Actions",
        body,
        subtitle="every action is audited and lands on the timeline",
        id_="incident-actions",
    )


@dash.callback(
    Output(PERSON, "options"),
    Input(INCIDENT, "data"),
)
@allow(ACT_ROLES)
def load_people(_incident: Any) -> list[dict]:
    """People who can take a role: every member of every on-call team."""
    with beacon().db.session() as session:
        teams = team_overviews(session, now=utcnow(), within=timedelta(hours=1))
    people: dict[int, str] = {}
    for team in teams:
        for rotation in team.rotations:
            for person in rotation.members:
                people.setdefault(person.id, f"{person.name} · {team.oncall.team.name}")
    return [{"label": label, "value": pid} for pid, label in sorted(people.items(), key=_second)]


def _second(item: tuple[int, str]) -> str:
    return item[1]


@dash.callback(
    Output(MESSAGE, "children"),
    Output(STATUS, "children"),
    Output(FACTS, "children"),
    Output(ROLES, "children"),
    Output(TIMELINE, "children"),
    Output(DELIVERIES, "children"),
    Output(NOTE, "value"),
    Output(RESOLUTION, "value"),
    *(Input(id_, "n_clicks") for id_ in ACTION_IDS),
    State(INCIDENT, "data"),
    State(NOTE, "value"),
    State(RESOLUTION, "value"),
    State(ROLE, "value"),
    State(PERSON, "value"),
    State(SEVERITY, "value"),
    State(TICKET, "value"),
    State(AI_DETECTED, "value"),
    State(AI_RECOMMENDED, "value"),
    State(AI_CORRECT, "value"),
    prevent_initial_call=True,
)
@allow(ACT_ROLES, mutates=True)
def act(*values: Any) -> tuple:
    """Run the clicked action through its service (which checks the role again and audits)."""
    clicks = dict(zip(ACTION_IDS, values[: len(ACTION_IDS)], strict=True))
    (incident_id, note, resolution, role, person, severity, ticket, *ai) = values[len(ACTION_IDS) :]
    trigger = dash.ctx.triggered_id
    number = positive_id(incident_id)
    nothing = tuple(dash.no_update for _ in range(8))
    if trigger not in clicks or not clicks[trigger] or number is None:
        return nothing
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    actor = principal.actor()
    ctx = beacon()
    config = notify_config(ctx.settings)
    clear_note: Any = dash.no_update
    clear_resolution: Any = dash.no_update
    try:
        with ctx.db.session(write=True) as session:
            common = {"session": session, "incident_id": number, "actor": actor}
            if trigger == ACK:
                lifecycle.acknowledge(**common, config=config)
                text = "Acknowledged: paging stopped."
            elif trigger == ESCALATE:
                outcome = escalation.escalate_now(**common, config=config)
                text = f"Escalated: {outcome}."
            elif trigger == MITIGATE:
                lifecycle.mitigate(**common, note=_str(note), config=config)
                text, clear_note = "Marked mitigated.", ""
            elif trigger == RESOLVE:
                lifecycle.resolve(**common, note=_str(resolution), config=config)
                text, clear_resolution = "Resolved.", ""
            elif trigger == NOTE_ADD:
                triage.add_note(**common, text=_str(note))
                text, clear_note = "Note added.", ""
            elif trigger == ROLE_ASSIGN:
                picked = positive_id(person)
                if picked is None:
                    raise InvalidInput("Choose a person for the role.")
                triage.assign_role(**common, role=_str(role), person_id=picked)
                text = f"{triage.ROLE_TEXT.get(_str(role), 'Role')} assigned."
            elif trigger == SEVERITY_SET:
                triage.set_severity(**common, severity=_str(severity))
                text = f"Severity now {severity}."
            elif trigger == TICKET_SAVE:
                triage.set_external_ticket(**common, ticket=_str(ticket))
                text = "External ticket saved."
            else:
                detected, recommended, correct = (_tri(v) for v in ai)
                triage.set_ai_triage(
                    **common,
                    ai_detected=detected,
                    ai_recommended=recommended,
                    ai_correct=correct,
                )
                text = "AI triage saved."
    except BeaconError as error:
        return (notice(error.message, tone="warn"), *nothing[1:])
    with ctx.db.session() as session:
        panels = _panels(incident_detail(session, incident_id=number), can_act=True)
    return (
        notice(text, tone="ok", id_="incident-done"),
        panels["status"],
        panels["facts"],
        panels["roles"],
        panels["timeline"],
        panels["deliveries"],
        clear_note,
        clear_resolution,
    )


@dash.callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Output(DELIVERIES, "children", allow_duplicate=True),
    Input({"type": RETRY, "index": ALL}, "n_clicks"),
    State(INCIDENT, "data"),
    prevent_initial_call=True,
)
@allow(ACT_ROLES, mutates=True)
def retry_delivery(_clicks: Any, incident_id: Any) -> tuple:
    """Queue a failed notification of this incident again; audited."""
    number = positive_id(incident_id)
    notification_id = positive_id(_clicked_index())
    if number is None or notification_id is None:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None
    ctx = beacon()
    try:
        with ctx.db.session(write=True) as session:
            states.require_responder(principal.actor())
            mine = {n.id for n in outbox.delivery_log(session, incident_id=number)}
            if notification_id not in mine:
                raise NotFound(f"Notification #{notification_id} is not one of this incident's.")
            outbox.retry(session, notification_id=notification_id, actor=principal.actor())
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    with ctx.db.session() as session:
        detail = incident_detail(session, incident_id=number)
    table = delivery_table(detail.notifications, zone=ctx.settings.zone, can_retry=True)
    return notice(f"Notification #{notification_id} queued again.", tone="ok"), table


def _clicked_index() -> Any:
    """The `index` of the retry button really clicked (a redraw fires without a click)."""
    triggered = dash.ctx.triggered
    if not triggered or not triggered[0].get("value"):
        return None
    trigger = dash.ctx.triggered_id
    return trigger.get("index") if isinstance(trigger, dict) else None


def _tri(value: Any) -> bool | None:
    return {"yes": True, "no": False}.get(value if isinstance(value, str) else "")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
