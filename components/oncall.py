"""On-call page parts: who is on call now, hand-offs, rotation timeline, escalation, ownership."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import dcc, html

from components.cards import empty_state
from components.figures import GRID, PALETTE, TEXT
from components.format import short_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.oncall.overview import TeamOverview
    from services.oncall.owners import OwnerLine
    from services.oncall.resolve import EscalationStepView, OnCall, OwnerAnswer
    from services.oncall.schedules import PersonRef

KIND_TEXT = {"domain": "Network domain", "region": "Region", "component": "AI component"}
TARGET_TEXT = {
    "schedule": "on call",
    "rotation": "rotation",
    "person": "person",
    "team": "whole team",
}
API = "/api/v1/oncall"


def until_text(moment: datetime | None, *, zone: ZoneInfo, now: datetime) -> str:
    """`until 09:00 (in 3 h 10 min)`; `until further notice` when beyond the look-ahead."""
    if moment is None:
        return "until further notice"
    left = moment - now
    return f"until {short_time(moment, zone, now=now)} (in {_span(left)})"


def _span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def person_line(person: PersonRef | None) -> list[Any]:
    """Phone and e-mail as links, for reaching the person now."""
    if person is None:
        return []
    parts: list[Any] = []
    if person.phone:
        parts.append(html.A(person.phone, href=f"tel:{person.phone.replace(' ', '')}"))
    if person.email:
        parts.append(html.A(person.email, href=f"mailto:{person.email}"))
    return parts


def now_card(
    label: str,
    oncall: OnCall,
    *,
    zone: ZoneInfo,
    now: datetime,
    detail: str | None = None,
    id_: str | None = None,
    ai: bool = False,
) -> html.Div:
    """A large card: what it covers, the person on call, their team and until when."""
    person = oncall.person
    props = {"id": id_} if id_ else {}
    contacts = person_line(person)
    return html.Div(
        className="oncall-now"
        + (" oncall-now-ai" if ai else "")
        + ("" if person else " oncall-now-nobody"),
        children=[
            html.Div(label, className="oncall-now-label"),
            html.Div(person.name if person else "Nobody on call", className="oncall-now-person"),
            html.Div(oncall.team.name, className="oncall-now-team"),
            html.Div(until_text(oncall.until, zone=zone, now=now), className="oncall-now-until"),
            html.Div(
                [
                    *(html.Span([c, " "]) for c in contacts),
                    html.Span(
                        f"{oncall.rotation}" if oncall.rotation else "",
                        className="oncall-now-rotation muted",
                    ),
                ],
                className="oncall-now-contacts small",
            ),
            html.Div(detail, className="oncall-now-detail muted small") if detail else None,
        ],
        **props,
    )


def domain_cards(
    answers: Sequence[OwnerAnswer], *, zone: ZoneInfo, now: datetime
) -> html.Div | Any:
    """One large card per network domain; regions with their own team listed under it."""
    domains = [a for a in answers if a.subject_kind == "domain"]
    if not domains:
        return empty_state(
            "No network domain has an owner yet",
            "Add ownership for RAN, Transport and Core so incidents are routed and paged.",
        )
    regions = [a for a in answers if a.subject_kind == "region"]
    cards = []
    for answer in domains:
        own = [
            r.subject_key.split(":", 1)[-1]
            for r in regions
            if r.subject_key.split(":", 1)[0].lower() == answer.subject_key.lower()
            and r.oncall.team.id == answer.oncall.team.id
        ]
        detail = f"also regions {', '.join(own)}" if own else None
        cards.append(
            now_card(
                answer.subject_key,
                answer.oncall,
                zone=zone,
                now=now,
                detail=detail,
                id_=f"oncall-now-{_slug(answer.subject_key)}",
            )
        )
    # Regions owned by another team than their domain: one card per team and domain.
    apart: dict[tuple[str, int], list[OwnerAnswer]] = {}
    for region in regions:
        domain = region.subject_key.split(":", 1)[0]
        owner = next((d for d in domains if d.subject_key.lower() == domain.lower()), None)
        if owner is None or owner.oncall.team.id != region.oncall.team.id:
            apart.setdefault((domain, region.oncall.team.id), []).append(region)
    for (domain, _team), rows in apart.items():
        names = " · ".join(r.subject_key.split(":", 1)[-1] for r in rows)
        cards.append(
            now_card(
                f"{domain} {names}",
                rows[0].oncall,
                zone=zone,
                now=now,
                id_=f"oncall-now-{_slug(rows[0].subject_key)}",
            )
        )
    return html.Div(cards, className="oncall-now-grid")


def ai_cards(answers: Sequence[OwnerAnswer], *, zone: ZoneInfo, now: datetime) -> Any:
    """One large card per team owning AI components, naming the components it covers."""
    components = [a for a in answers if a.subject_kind == "component"]
    if not components:
        return empty_state(
            "No AI component has an owner yet",
            "Give the detector, forecaster, each ingest source and each use case an owning team.",
        )
    by_team: dict[int, list[OwnerAnswer]] = {}
    for answer in components:
        by_team.setdefault(answer.oncall.team.id, []).append(answer)
    cards = []
    for rows in by_team.values():
        keys = [r.subject_key for r in rows]
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        cards.append(
            now_card(
                f"AI system · {rows[0].oncall.team.name}",
                rows[0].oncall,
                zone=zone,
                now=now,
                detail=f"{len(keys)} component(s): {shown}",
                id_=f"oncall-now-ai-{rows[0].oncall.team.key}",
                ai=True,
            )
        )
    return html.Div(cards, className="oncall-now-grid")


def handoff_table(teams: Sequence[TeamOverview], *, zone: ZoneInfo, now: datetime) -> Any:
    """The next hand-offs of every team, soonest first (three per team at most)."""
    rows = []
    for team in teams:
        for handoff in team.handoffs[:3]:
            rows.append((handoff.at, team, handoff))
    if not rows:
        return empty_state("No hand-offs in the next days", "Rotations hand over beyond a week.")
    rows.sort(key=lambda r: r[0])
    return html.Table(
        [
            html.Thead(html.Tr([html.Th("When"), html.Th("Team"), html.Th("From"), html.Th("To")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(
                                [
                                    short_time(at, zone, now=now),
                                    html.Span(f" · in {_span(at - now)}", className="muted"),
                                ],
                                className="nowrap",
                            ),
                            html.Td(team.oncall.team.name),
                            html.Td(h.previous.name if h.previous else "nobody"),
                            html.Td(html.Strong(h.next.name if h.next else "nobody")),
                        ]
                    )
                    for at, team, h in rows[:15]
                ]
            ),
        ],
        className="table oncall-handoffs",
        id="oncall-handoffs-table",
    )


Run = tuple[str, str, datetime, datetime]  # team name, person name, start, end


def rotation_timeline(
    runs: Sequence[Run], *, zone: ZoneInfo, now: datetime, days: int, teams: Sequence[str]
) -> go.Figure:
    """Who is on call when, per team, over the next days: one bar per stretch, SVG only."""
    fig = go.Figure()
    colours: dict[str, str] = {}
    end = now + timedelta(days=days)
    for team, person, start, stop in runs:
        start, stop = max(start, now), min(stop, end)
        if stop <= start:
            continue
        colour = colours.setdefault(person, PALETTE[len(colours) % len(PALETTE)])
        local_start = start.astimezone(zone).replace(tzinfo=None)
        local_stop = stop.astimezone(zone).replace(tzinfo=None)
        hours = (stop - start).total_seconds() / 3600
        fig.add_trace(
            go.Bar(
                y=[team],
                x=[(stop - start).total_seconds() * 1000],
                base=[local_start],
                orientation="h",
                marker={"color": colour, "line": {"color": "rgba(0,0,0,0.35)", "width": 1}},
                text=[person.split(" ")[0] if hours >= 10 else ""],
                textposition="inside",
                insidetextanchor="middle",
                textfont={"color": "#0b0f14", "size": 12},
                name=person,
                showlegend=False,
                hovertemplate=(
                    f"<b>{person}</b><br>{team}<br>"
                    f"{local_start:%a %d %b %H:%M} – {local_stop:%a %d %b %H:%M}<extra></extra>"
                ),
            )
        )
    local_now = now.astimezone(zone).replace(tzinfo=None)
    fig.add_vline(x=local_now, line={"color": "#ff7b72", "width": 2})
    fig.update_layout(
        barmode="overlay",
        bargap=0.25,
        height=70 + 56 * max(len(teams), 1),
        margin={"l": 12, "r": 16, "t": 8, "b": 36},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": TEXT, "size": 13},
        hovermode="closest",
        uirevision="keep",
    )
    fig.update_xaxes(
        type="date",
        range=[local_now, (now + timedelta(days=days)).astimezone(zone).replace(tzinfo=None)],
        gridcolor=GRID,
        dtick=86_400_000,
        tickformat="%a %d",
        zeroline=False,
    )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(teams)),
        automargin=True,
        gridcolor=GRID,
    )
    return fig


def escalation_paths(
    paths: Sequence[tuple[str, Sequence[EscalationStepView]]], *, repeat_note: str = ""
) -> Any:
    """Each team's escalation drawn as numbered steps with the wait between them."""
    if not paths:
        return empty_state("No escalation policies", "Nobody would be paged for an incident.")
    blocks = []
    for team, steps in paths:
        chain: list[Any] = []
        for i, step in enumerate(steps):
            if i:
                chain.append(
                    html.Div(
                        [
                            html.Span("→", className="oncall-step-arrow"),
                            f"{steps[i - 1].wait_minutes} min",
                        ],
                        className="oncall-step-wait",
                        title="no acknowledgement within this time: next step",
                    )
                )
            people = ", ".join(p.name for p in step.people[:3])
            if len(step.people) > 3:
                people += f" +{len(step.people) - 3}"
            chain.append(
                html.Div(
                    [
                        html.Div(str(step.position), className="oncall-step-number"),
                        html.Div(
                            [
                                html.Div(step.target_name, className="oncall-step-target"),
                                html.Div(
                                    TARGET_TEXT.get(step.target_kind, step.target_kind),
                                    className="oncall-step-kind muted small",
                                ),
                                html.Div(people or "nobody now", className="oncall-step-people"),
                            ]
                        ),
                    ],
                    className=f"oncall-step oncall-step-{step.target_kind}",
                )
            )
        blocks.append(
            html.Div(
                [
                    html.H3(team, className="oncall-path-team"),
                    html.Div(chain, className="oncall-steps"),
                ],
                className="oncall-path",
            )
        )
    if repeat_note:
        blocks.append(html.P(repeat_note, className="muted small"))
    return html.Div(blocks, className="oncall-paths")


def ownership_table(answers: Sequence[OwnerAnswer], *, zone: ZoneInfo, now: datetime) -> Any:
    """Every owned subject: what it is, the owning team, and who is on call for it now."""
    if not answers:
        return empty_state("No ownership recorded", "Nothing is routed to a team yet.")
    return html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Kind"),
                        html.Th("Subject"),
                        html.Th("Owning team"),
                        html.Th("On call now"),
                        html.Th("Until"),
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(
                                KIND_TEXT.get(a.subject_kind, a.subject_kind), className="muted"
                            ),
                            html.Td(a.subject_key, className="mono"),
                            html.Td(a.oncall.team.name),
                            html.Td(html.Strong(a.oncall.person.name) if a.oncall.person else "—"),
                            html.Td(
                                short_time(a.oncall.until, zone, now=now)
                                if a.oncall.until
                                else "—",
                                className="nowrap",
                            ),
                        ]
                    )
                    for a in answers
                ]
            ),
        ],
        className="table oncall-ownership",
        id="oncall-ownership-table",
    )


def calendar_links(teams: Sequence[TeamOverview]) -> Any:
    """iCal links: each team's schedule and each member's own shifts, to subscribe to."""
    if not teams:
        return empty_state("No teams yet", "Calendars appear once teams have rotations.")
    rows = []
    for team in teams:
        members: dict[int, PersonRef] = {}
        for rotation in team.rotations:
            for person in rotation.members:
                members.setdefault(person.id, person)
        rows.append(
            html.Div(
                [
                    html.A(
                        f"{team.oncall.team.name} (team)",
                        href=f"{API}/teams/{team.oncall.team.id}/calendar.ics",
                        className="oncall-ical-team",
                    ),
                    html.Span(
                        [
                            html.A(p.name, href=f"{API}/people/{p.id}/calendar.ics")
                            for p in sorted(members.values(), key=lambda p: p.name)
                        ],
                        className="oncall-ical-people",
                    ),
                ],
                className="oncall-ical-row",
            )
        )
    return html.Div(
        [
            html.P(
                "Subscribe in a calendar client (iCalendar, refreshed hourly); API tokens "
                "work as the password of HTTP Basic authentication.",
                className="muted small",
            ),
            *rows,
        ],
        className="oncall-ical",
    )


def graph(id_: str, figure: go.Figure) -> dcc.Graph:
    """A chart without the mode bar (it would cover the first day)."""
    return dcc.Graph(id=id_, figure=figure, config={"displaylogo": False, "displayModeBar": False})


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def owner_strip(lines: Sequence[OwnerLine], *, zone: ZoneInfo, now: datetime, id_: str) -> Any:
    """Who answers for this output: network owner and AI owner, each with the on-call person.

    A subject nobody owns is said plainly, so a missing route is noticed, not assumed.
    """
    items = []
    for line in lines:
        oncall = line.oncall
        if oncall is None:
            body: list[Any] = [html.Span("no owning team", className="pill pill-warn")]
        else:
            person = oncall.person
            body = [
                html.Strong(person.name if person else "nobody on call"),
                f" · {oncall.team.name}",
                html.Span(
                    f" {until_text(oncall.until, zone=zone, now=now)}" if person else "",
                    className="muted",
                ),
                *(html.Span([" ", c]) for c in person_line(person)),
            ]
        items.append(
            html.Div(
                [html.Span(line.label, className="owner-strip-label muted"), " ", *body],
                className="owner-strip-item" + (" owner-strip-ai" if line.ai else ""),
            )
        )
    return html.Div(
        [html.Span("Who answers for this", className="owner-strip-title"), *items],
        className="owner-strip",
        id=id_,
    )
