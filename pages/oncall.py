"""On call: who is on call now per domain and for the AI, hand-offs, calendar, escalation, edits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, State, dcc, html

from components.cards import notice, section
from components.forms import field
from components.oncall import (
    ai_cards,
    calendar_links,
    domain_cards,
    escalation_paths,
    graph,
    handoff_table,
    ownership_table,
    rotation_timeline,
)
from services.auth import ALL_ROLES, ENGINEER_ROLES
from services.db.models import utcnow
from services.errors import BeaconError, InvalidInput
from services.notify.config import notify_config
from services.notify.shifts import notify_shift_changes
from services.oncall import overrides
from services.oncall import rotations as rot
from services.oncall.overview import team_overviews
from services.oncall.resolve import oncall_board
from services.oncall.schedules import people_by_id, team_shifts
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES
EDIT_ROLES = ENGINEER_ROLES

dash.register_page(
    __name__,
    path="/oncall",
    name="On call",
    title="On call · Beacon",
    order=30,
    roles=PAGE_ROLES,
)

REFRESH = "oncall-refresh"
DONE = "oncall-done"
UPDATED = "oncall-updated"
DOMAINS = "oncall-domains"
AI = "oncall-ai"
HANDOFFS = "oncall-handoffs"
CALENDAR = "oncall-calendar"
ESCALATION = "oncall-escalation"
OWNERSHIP = "oncall-ownership"
ICAL = "oncall-ical"
EDITOR = "oncall-editor"
MEMBERS = "oncall-members"
OV_ROTATION = "oncall-override-rotation"
OV_PERSON = "oncall-override-person"
OV_START = "oncall-override-start"
OV_END = "oncall-override-end"
OV_REASON = "oncall-override-reason"
OV_ADD = "oncall-override-add"
SW_ROTATION = "oncall-swap-rotation"
SW_FIRST = "oncall-swap-first"
SW_SECOND = "oncall-swap-second"
SW_REASON = "oncall-swap-reason"
SW_GO = "oncall-swap-go"
RM_OVERRIDE = "oncall-remove-override"
RM_GO = "oncall-remove-go"
MESSAGE = "oncall-message"

REFRESH_MS = 60_000
CALENDAR_DAYS = 14
HANDOFF_DAYS = 7
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def layout(**_query: str) -> html.Div:
    """The frame; every panel fills from the stored schedules (and refreshes each minute)."""
    principal = current_principal()
    can_edit = principal is not None and principal.role in EDIT_ROLES and not principal.is_kiosk
    zone = beacon().settings.zone
    return html.Div(
        className="page oncall-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=DONE, data=0),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            html.H1("On call"),
                            html.P(
                                "Who answers for each network domain and for the AI itself, "
                                "right now and next; how an unacknowledged incident escalates."
                            ),
                        ]
                    ),
                    html.Span(id=UPDATED, className="muted small"),
                ],
            ),
            section(
                "On call now",
                html.Div(
                    [
                        html.Div(id=DOMAINS, className="oncall-group"),
                        html.Div(id=AI, className="oncall-group"),
                    ],
                    className="oncall-now-all",
                ),
                subtitle="per network domain (regions with their own team apart), then the AI "
                "system: ingest sources, detector, forecaster, scheduler, automation",
                id_="oncall-now-section",
            ),
            section(
                "Rotation calendar",
                dcc.Loading(graph(CALENDAR, {}), type="dot", delay_show=400),
                subtitle=f"final schedule per team, next {CALENDAR_DAYS} days · "
                f"times in {zone.key} · red line: now",
            ),
            html.Div(
                className="columns",
                children=[
                    section("Next hand-offs", html.Div(id=HANDOFFS), subtitle="soonest first"),
                    section("Calendars (iCal)", html.Div(id=ICAL)),
                ],
            ),
            section(
                "Escalation paths",
                html.Div(id=ESCALATION),
                subtitle="an unacknowledged incident moves to the next step after the wait",
            ),
            section("Ownership map", html.Div(id=OWNERSHIP), subtitle="subject → owning team"),
            _editor(can_edit, zone),
        ],
    )


def _editor(can_edit: bool, zone: ZoneInfo) -> html.Section:
    if not can_edit:
        return section(
            "Overrides and swaps",
            html.P(
                "Engineers and admins add overrides and swap shifts; every change is audited "
                "and the people whose shifts move are notified.",
                className="muted",
            ),
        )
    start = (utcnow() + timedelta(hours=1)).astimezone(zone).replace(minute=0, second=0)
    end = start + timedelta(hours=12)
    local = {"type": "datetime-local", "className": "input", "step": 60}
    body = html.Div(
        [
            dcc.Store(id=EDITOR, data=True),
            dcc.Store(id=MEMBERS, data={}),
            html.H3("Override: someone else takes the shift"),
            html.Div(
                className="form-grid",
                children=[
                    field("Rotation", dcc.Dropdown(id=OV_ROTATION, placeholder="rotation")),
                    field("Person", dcc.Dropdown(id=OV_PERSON, placeholder="team member")),
                    field(
                        f"From ({zone.key})",
                        dcc.Input(id=OV_START, value=start.strftime(LOCAL_INPUT), **local),
                    ),
                    field(
                        f"Until ({zone.key})",
                        dcc.Input(id=OV_END, value=end.strftime(LOCAL_INPUT), **local),
                    ),
                    field(
                        "Reason",
                        dcc.Input(id=OV_REASON, className="input", maxLength=200),
                    ),
                    html.Button("Add override", id=OV_ADD, className="btn"),
                ],
            ),
            html.H3("Swap two shifts of one rotation"),
            html.Div(
                className="form-grid",
                children=[
                    field("Rotation", dcc.Dropdown(id=SW_ROTATION, placeholder="rotation")),
                    field(
                        f"A moment in the first shift ({zone.key})",
                        dcc.Input(id=SW_FIRST, value=start.strftime(LOCAL_INPUT), **local),
                    ),
                    field(
                        f"A moment in the second shift ({zone.key})",
                        dcc.Input(
                            id=SW_SECOND,
                            value=(start + timedelta(days=7)).strftime(LOCAL_INPUT),
                            **local,
                        ),
                    ),
                    field("Reason", dcc.Input(id=SW_REASON, className="input", maxLength=200)),
                    html.Button("Swap shifts", id=SW_GO, className="btn"),
                ],
            ),
            html.H3("Remove an override"),
            html.Div(
                className="form-grid",
                children=[
                    field(
                        "Override",
                        dcc.Dropdown(id=RM_OVERRIDE, placeholder="current or coming override"),
                    ),
                    html.Button("Remove override", id=RM_GO, className="btn btn-quiet"),
                ],
            ),
            html.Div(id=MESSAGE, className="oncall-message"),
        ]
    )
    return section(
        "Overrides and swaps",
        body,
        subtitle="audited; everyone whose shifts move is notified",
        id_="oncall-editor-section",
    )


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(DOMAINS, "children"),
    Output(AI, "children"),
    Output(CALENDAR, "figure"),
    Output(HANDOFFS, "children"),
    Output(ICAL, "children"),
    Output(ESCALATION, "children"),
    Output(OWNERSHIP, "children"),
    Output(UPDATED, "children"),
    Input(REFRESH, "n_intervals"),
    Input(DONE, "data"),
)
@allow(PAGE_ROLES)
def load_board(_n: int | None, _done: Any) -> tuple:
    """Everything the page shows, computed for one instant."""
    ctx = beacon()
    zone = ctx.settings.zone
    now = utcnow()
    with ctx.db.session() as session:
        board = oncall_board(session, now=now)
        teams = team_overviews(session, now=now, within=timedelta(days=HANDOFF_DAYS))
        runs = _timeline_runs(session, teams, now=now)
    paths: dict[int, tuple[str, Any]] = {}
    for answer in board:
        paths.setdefault(answer.oncall.team.id, (answer.oncall.team.name, answer.escalation))
    figure = rotation_timeline(
        runs,
        zone=zone,
        now=now,
        days=CALENDAR_DAYS,
        teams=[t.oncall.team.name for t in teams],
    )
    return (
        domain_cards(board, zone=zone, now=now),
        ai_cards(board, zone=zone, now=now),
        figure,
        handoff_table(teams, zone=zone, now=now),
        calendar_links(teams),
        escalation_paths(
            sorted(paths.values(), key=lambda p: p[0]),
            repeat_note="Steps repeat when nobody acknowledges; acknowledging stops paging, and "
            "a reminder follows while the incident stays unresolved.",
        ),
        ownership_table(board, zone=zone, now=now),
        f"as of {now.astimezone(zone):%H:%M} {zone.key}",
    )


def _timeline_runs(session: Any, teams: list, *, now: datetime) -> list:
    end = now + timedelta(days=CALENDAR_DAYS)
    runs = []
    for team in teams:
        ref = team.oncall.team
        stretches = rot.person_runs(team_shifts(session, team_id=ref.id, start=now, end=end))
        people = people_by_id(session, ids={int(r.person) for r in stretches})
        for run in stretches:
            person = people.get(int(run.person))
            runs.append((ref.name, person.name if person else "?", run.start, run.end))
    return runs


@dash.callback(
    Output(OV_ROTATION, "options"),
    Output(SW_ROTATION, "options"),
    Output(MEMBERS, "data"),
    Output(RM_OVERRIDE, "options"),
    Input(EDITOR, "data"),
    Input(DONE, "data"),
)
@allow(EDIT_ROLES)
def load_edit_options(_editor: Any, _done: Any) -> tuple:
    """Rotations, their teams' members, and overrides not yet over."""
    ctx = beacon()
    zone = ctx.settings.zone
    now = utcnow()
    with ctx.db.session() as session:
        teams = team_overviews(session, now=now, within=timedelta(hours=1))
        rotations, members, removable = [], {}, []
        for team in teams:
            people: dict[int, str] = {}
            for rotation in team.rotations:
                for person in rotation.members:
                    people.setdefault(person.id, person.name)
            options = [{"label": n, "value": i} for i, n in sorted(people.items(), key=_by_name)]
            for rotation in team.rotations:
                rotations.append(
                    {"label": f"{team.oncall.team.name} · {rotation.name}", "value": rotation.id}
                )
                members[str(rotation.id)] = options
            for row in overrides.list_overrides(session, team_id=team.oncall.team.id, since=now):
                who = people.get(row.person_id, f"person {row.person_id}")
                removable.append(
                    {
                        "label": f"#{row.id} {team.oncall.team.name}: {who}, "
                        f"{row.starts_at.astimezone(zone):%a %d %b %H:%M} – "
                        f"{row.ends_at.astimezone(zone):%a %d %b %H:%M}",
                        "value": row.id,
                    }
                )
    return rotations, rotations, members, removable


def _by_name(item: tuple[int, str]) -> str:
    return item[1]


dash.clientside_callback(
    """
    function(rotation, members) {
        if (!rotation || !members) { return []; }
        return members[String(rotation)] || [];
    }
    """,
    Output(OV_PERSON, "options"),
    Input(OV_ROTATION, "value"),
    State(MEMBERS, "data"),
)


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(MESSAGE, "children"),
    Output(DONE, "data"),
    Input(OV_ADD, "n_clicks"),
    Input(SW_GO, "n_clicks"),
    Input(RM_GO, "n_clicks"),
    State(OV_ROTATION, "value"),
    State(OV_PERSON, "value"),
    State(OV_START, "value"),
    State(OV_END, "value"),
    State(OV_REASON, "value"),
    State(SW_ROTATION, "value"),
    State(SW_FIRST, "value"),
    State(SW_SECOND, "value"),
    State(SW_REASON, "value"),
    State(RM_OVERRIDE, "value"),
    prevent_initial_call=True,
)
@allow(EDIT_ROLES, mutates=True)
def change_schedule(
    add: int | None,
    swap: int | None,
    remove: int | None,
    rotation_id: Any,
    person_id: Any,
    start: Any,
    end: Any,
    reason: Any,
    swap_rotation: Any,
    first: Any,
    second: Any,
    swap_reason: Any,
    override_id: Any,
) -> tuple:
    """Add an override, swap two shifts or remove an override; audited, people notified."""
    trigger = dash.ctx.triggered_id
    clicks = {OV_ADD: add, SW_GO: swap, RM_GO: remove}
    if trigger not in clicks or not clicks[trigger]:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    actor = principal.actor()
    ctx = beacon()
    zone = ctx.settings.zone
    now = utcnow()
    try:
        with ctx.db.session(write=True) as session:
            if trigger == OV_ADD:
                result = overrides.create_override(
                    session,
                    rotation_id=_required_id(rotation_id, "Choose a rotation."),
                    person_id=_required_id(person_id, "Choose who takes the shift."),
                    starts_at=_local(start, zone, "the start"),
                    ends_at=_local(end, zone, "the end"),
                    actor=actor,
                    now=now,
                    reason=_text(reason),
                )
                text = f"Override #{result.overrides[0].id} added."
            elif trigger == SW_GO:
                result = overrides.swap_shifts(
                    session,
                    rotation_id=_required_id(swap_rotation, "Choose a rotation."),
                    first_at=_local(first, zone, "the first shift"),
                    second_at=_local(second, zone, "the second shift"),
                    actor=actor,
                    now=now,
                    reason=_text(swap_reason),
                )
                text = "Shifts swapped."
            else:
                result = overrides.delete_override(
                    session,
                    override_id=_required_id(override_id, "Choose an override to remove."),
                    actor=actor,
                    now=now,
                )
                text = "Override removed."
            queued = notify_shift_changes(
                session, result=result, config=notify_config(ctx.settings), now=now
            )
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update
    moved = ", ".join(c.person.name for c in result.changes) or "nobody"
    text += f" Shifts moved for {moved}; {queued} notification(s) queued."
    return notice(text, tone="ok", id_="oncall-change-ok"), now.timestamp()


def _required_id(value: Any, message: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise InvalidInput(message) from None
    if number <= 0:
        raise InvalidInput(message)
    return number


def _local(value: Any, zone: ZoneInfo, what: str) -> datetime:
    """A datetime-local value (wall-clock time in the NOC's zone) as an aware datetime."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"Give {what} as date and time.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _text(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""
