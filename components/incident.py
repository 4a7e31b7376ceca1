"""Incident parts: list rows and columns, status pills, timeline, roles, links, delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from components.cards import empty_state
from components.format import ago, local_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.db.models import Anomaly, ChangeWindow, Incident, IncidentEvent, Notification
    from services.oncall.schedules import PersonRef

SEVERITY_TEXT = {"sev1": "SEV1", "sev2": "SEV2", "sev3": "SEV3", "sev4": "SEV4"}
STATUS_PILLS = {
    "triggered": "pill pill-bad",
    "acknowledged": "pill pill-warn",
    "mitigated": "pill pill-muted",
    "resolved": "pill pill-ok",
}
DELIVERY_PILLS = {
    "delivered": "pill pill-ok",
    "pending": "pill pill-warn",
    "failed": "pill pill-bad",
}
ROLE_TEXT = {"commander": "Incident commander", "ai_liaison": "AI liaison", "scribe": "Scribe"}
EVENT_TEXT = {
    "created": "opened",
    "status": "status",
    "note": "note",
    "anomaly": "anomaly",
    "alarm": "alarm",
    "decision": "decision",
    "action": "action",
    "escalation": "escalation",
    "notification": "notified",
    "role": "role",
    "change_window": "change",
    "ticket": "ticket",
    "triage": "triage",
    "heartbeat": "heartbeat",
}
SEVERITY_CELLS = {f"incident-cell-{s}": f"params.value === '{s}'" for s in SEVERITY_TEXT}
STATUS_CELLS = {f"incident-cell-{s}": f"params.value === '{s}'" for s in STATUS_PILLS}
ROW_CLASSES = {"incident-row-open": "params.data.status !== 'resolved'"}
_COLUMNS = [
    {
        "field": "link",
        "headerName": "#",
        "cellRenderer": "markdown",
        "minWidth": 75,
        "maxWidth": 90,
        "filter": False,
    },
    {
        "field": "severity",
        "headerName": "Sev",
        "minWidth": 80,
        "maxWidth": 95,
        "cellClassRules": SEVERITY_CELLS,
        "filter": False,
    },
    {
        "field": "status",
        "headerName": "Status",
        "minWidth": 120,
        "maxWidth": 140,
        "cellClassRules": STATUS_CELLS,
        "filter": False,
    },
    {"field": "title", "headerName": "Title", "minWidth": 200, "tooltipField": "title"},
    {"field": "team", "headerName": "Team", "minWidth": 130, "tooltipField": "team"},
    {"field": "domain", "headerName": "Domain", "minWidth": 100, "maxWidth": 120},
    {"field": "origin", "headerName": "Origin", "minWidth": 90, "maxWidth": 110},
    {"field": "ai", "headerName": "AI", "minWidth": 90, "tooltipField": "ai"},
    {"field": "opened", "headerName": "Opened", "minWidth": 140, "sort": "desc"},
    {"field": "owner", "headerName": "Ack. by", "minWidth": 110, "tooltipField": "owner"},
    {"field": "ticket", "headerName": "Ticket", "minWidth": 90},
]
# The page's filters run in the database over every incident; a grid column filter would
# only narrow the rows already loaded, which reads like a second, contradicting filter.
LIST_COLUMNS = [{**column, "filter": False} for column in _COLUMNS]


def list_row(incident: Incident, *, team: str | None, zone: ZoneInfo) -> dict[str, Any]:
    """One incident as a grid row (text formatted for reading)."""
    return {
        "id": str(incident.id),
        "link": f"[#{incident.id}](/incidents/{incident.id})",
        "severity": incident.severity,
        "status": incident.status,
        "title": incident.title,
        "team": team or "unrouted",
        "domain": incident.domain or "—",
        "origin": incident.origin,
        "ai": ai_text(incident),
        "opened": local_time(incident.created_at, zone),
        "owner": incident.acknowledged_by or "",
        "ticket": incident.external_ticket or "",
    }


def ai_text(incident: Incident) -> str:
    """`detected · recommended · right` in short words; empty when the AI was not involved."""
    parts = []
    if incident.ai_detected:
        parts.append("detected")
    if incident.ai_recommended:
        parts.append("recommended")
    if parts and incident.ai_correct is not None:
        parts.append("right" if incident.ai_correct else "wrong")
    elif parts:
        parts.append("not judged")
    return " · ".join(parts)


def severity_pill(severity: str) -> html.Span:
    """SEV1 … SEV4, coloured from critical to low."""
    return html.Span(
        SEVERITY_TEXT.get(severity, severity), className=f"pill incident-sev incident-{severity}"
    )


def status_pill(status: str) -> html.Span:
    """The incident's status as a coloured pill."""
    return html.Span(status, className=STATUS_PILLS.get(status, "pill pill-muted"))


def summary_list(
    incident: Incident, *, team: str | None, policy: str | None, zone: ZoneInfo, now: datetime
) -> html.Dl:
    """Facts of the incident: who owns it, when it changed, where escalation stands."""
    rows: list[tuple[str, Any]] = [
        ("Team", team or "unrouted: nobody is paged"),
        ("Escalation", policy or "no policy"),
        ("Origin", incident.origin),
        ("Domain", incident.domain or "—"),
        (
            "Opened",
            f"{local_time(incident.created_at, zone)} ({ago(incident.created_at, now=now)})",
        ),
    ]
    if incident.created_by:
        rows.append(("Opened by", incident.created_by))
    if incident.acknowledged_at:
        rows.append(
            (
                "Acknowledged",
                f"{local_time(incident.acknowledged_at, zone)} by {incident.acknowledged_by}",
            )
        )
    if incident.mitigated_at:
        rows.append(("Mitigated", local_time(incident.mitigated_at, zone)))
    if incident.resolved_at:
        rows.append(
            ("Resolved", f"{local_time(incident.resolved_at, zone)} by {incident.resolved_by}")
        )
        rows.append(("Resolution", incident.resolution_note or ""))
    if incident.status != "resolved" and incident.next_escalation_at is not None:
        verb = "pages the next step" if incident.status == "triggered" else "reminds"
        where = (
            f" (after step {incident.escalation_position}, round {incident.escalation_round + 1})"
            if incident.escalation_position
            else ""
        )
        rows.append(
            (
                "Next escalation",
                f"{verb} now (the escalation runner is due){where}"
                if incident.next_escalation_at <= now
                else f"{verb} at {local_time(incident.next_escalation_at, zone)}{where}",
            )
        )
    rows.append(("External ticket", incident.external_ticket or "—"))
    rows.append(("AI involved", ai_text(incident) or "no / not recorded"))
    children: list[Any] = []
    for label, value in rows:
        children += [html.Dt(label), html.Dd(value)]
    return html.Dl(children, className="kv incident-facts")


def timeline_list(events: Sequence[IncidentEvent], *, zone: ZoneInfo) -> Any:
    """Every event, newest first: time, kind, who, and the text (never parsed as markup)."""
    if not events:
        return empty_state("Nothing recorded yet", "Events appear here as the incident moves.")
    return html.Ol(
        [
            html.Li(
                [
                    html.Span(local_time(e.at, zone, seconds=True), className="incident-tl-time"),
                    html.Span(
                        EVENT_TEXT.get(e.kind, e.kind),
                        className=f"incident-tl-kind incident-tl-{e.kind}",
                    ),
                    html.Span(e.text, className="incident-tl-text"),
                    html.Span(e.actor or "", className="incident-tl-actor muted"),
                ],
                className="incident-tl-item",
            )
            for e in sorted(events, key=lambda e: (e.at, e.id), reverse=True)
        ],
        className="incident-timeline",
        id="incident-timeline",
    )


def roles_list(roles: dict[str, PersonRef]) -> html.Dl:
    """Incident commander, AI liaison and scribe, or who is still missing."""
    children: list[Any] = []
    for role, text in ROLE_TEXT.items():
        person = roles.get(role)
        children += [
            html.Dt(text),
            html.Dd(person.name if person else html.Span("not assigned", className="muted")),
        ]
    return html.Dl(children, className="kv incident-roles")


def anomalies_list(anomalies: Sequence[Anomaly], *, zone: ZoneInfo) -> Any:
    """Linked anomaly episodes, each a link to its drill-down."""
    if not anomalies:
        return html.P("No anomaly episodes linked.", className="muted")
    return html.Ul(
        [
            html.Li(
                [
                    dcc.Link(f"Episode #{a.id}", href=f"/anomalies/{a.id}"),
                    html.Span(
                        f" · {a.severity} · started {local_time(a.started_at, zone)} · {a.status}",
                        className="muted",
                    ),
                ]
            )
            for a in anomalies
        ],
        className="incident-links",
        id="incident-anomalies",
    )


def change_windows_list(windows: Sequence[ChangeWindow], *, zone: ZoneInfo) -> Any:
    """Linked change and freeze windows."""
    if not windows:
        return html.P("No change windows linked.", className="muted")
    return html.Ul(
        [
            html.Li(
                [
                    html.Strong(f"#{w.id} {w.title}"),
                    html.Span(
                        f" · {w.kind} · {local_time(w.starts_at, zone)} – "
                        f"{local_time(w.ends_at, zone)}",
                        className="muted",
                    ),
                ]
            )
            for w in windows
        ],
        className="incident-links",
    )


def delivery_table(rows: Sequence[Notification], *, zone: ZoneInfo, can_retry: bool) -> Any:
    """The delivery log: each notification, its state and attempts; failed ones retryable."""
    if not rows:
        return html.P(
            "Nothing sent yet: pages and status events appear here as they are queued.",
            className="muted",
        )
    head = ["Queued", "Channel", "To", "State", "Attempts", "Last error"]
    if can_retry:
        head.append("")
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in head])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(
                                local_time(n.created_at, zone, seconds=True), className="nowrap"
                            ),
                            html.Td(n.notifier),
                            html.Td(n.target, className="incident-target"),
                            html.Td(
                                html.Span(
                                    n.status,
                                    className=DELIVERY_PILLS.get(n.status, "pill pill-muted"),
                                )
                            ),
                            html.Td(str(n.attempts), className="num"),
                            html.Td(n.last_error or "", className="incident-error small"),
                            *(
                                [
                                    html.Td(
                                        html.Button(
                                            "Retry",
                                            id={"type": "incident-retry", "index": n.id},
                                            className="btn btn-quiet incident-retry",
                                        )
                                        if n.status == "failed"
                                        else ""
                                    )
                                ]
                                if can_retry
                                else []
                            ),
                        ]
                    )
                    for n in rows
                ]
            ),
        ],
        className="table incident-deliveries",
        id="incident-deliveries",
    )
