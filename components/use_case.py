"""Use case builders: the maturity ladder, criteria against metrics, guardrails, owner and
on call, pending promotions and the change calendar. Data in, components out; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from components.cards import empty_state
from components.format import local_time

LEVEL_HINTS = {
    "L0": "shadow: recorded only, to measure the AI",
    "L1": "advisory: people act by hand",
    "L2": "approve-to-execute: a person accepts, Beacon runs it",
    "L3": "auto with guardrails: runs alone, rolls back if KPIs worsen",
    "L4": "autonomous",
}
CRITERIA_TEXT = {
    "min_decisions": "Decisions in the window",
    "min_acceptance_rate": "Acceptance rate",
    "min_precision": "Precision (accepted + reviews)",
    "no_harmful_rollback_days": "Harmful rollbacks",
}
GUARDRAIL_TEXT = {
    "min_confidence": ("Minimum confidence", "{:.0%}"),
    "max_blast_radius_cells": ("Max cells touched", "{}"),
    "max_blast_radius_users": ("Max users touched", "{}"),
    "rate_limit_per_domain_per_hour": ("Actions per domain per hour", "{}"),
    "verification_minutes": ("KPI watch after an action", "{} min"),
    "verification_tolerance_pct": ("Tolerated KPI worsening", "{}%"),
    "actuator": ("Actuator", "{}"),
}
RATES = ("min_acceptance_rate", "min_precision")
WINDOW_COLUMNS: list[dict[str, Any]] = [
    {"field": "id", "headerName": "#", "minWidth": 70, "maxWidth": 80},
    {"field": "kind", "headerName": "Kind", "minWidth": 110, "maxWidth": 130},
    {"field": "title", "headerName": "Title", "minWidth": 220, "tooltipField": "title"},
    {"field": "starts", "headerName": "Starts", "minWidth": 150},
    {"field": "ends", "headerName": "Ends", "minWidth": 150},
    {"field": "scope", "headerName": "Scope", "minWidth": 200, "tooltipField": "scope"},
    {"field": "status", "headerName": "Now", "minWidth": 110, "maxWidth": 130},
    {"field": "source", "headerName": "Source", "minWidth": 100, "maxWidth": 130},
]
WINDOW_ROW_CLASSES = {
    "trust-row-freeze": "params.data.kind === 'freeze' && params.data.status === 'in force'",
}


def ladder(current: str, *, since: datetime | None, zone: ZoneInfo) -> html.Ol:
    """L0-L4 as steps: those below the current level reached, the current one highlighted."""
    steps = []
    for label, hint in LEVEL_HINTS.items():
        if label == current:
            css = "trust-step trust-step-current"
            extra = [html.Div(f"since {local_time(since, zone)}", className="trust-step-since")]
        elif label < current:
            css, extra = "trust-step trust-step-done", []
        else:
            css, extra = "trust-step", []
        steps.append(
            html.Li(
                [html.Div(label, className="trust-step-label"), html.Div(hint), *extra],
                className=css,
                title=hint,
            )
        )
    return html.Ol(steps, className="trust-ladder")


def criteria_table(checks: Sequence[dict[str, Any]], *, window_days: int, target: str) -> html.Div:
    """Each promotion criterion: required, measured, met or not."""
    rows = []
    for check in checks:
        name = check["name"]
        required, actual = check["required"], check["actual"]
        if name in RATES:
            need = f"≥ {float(required):.0%}"
            got = "—" if actual is None else f"{float(actual):.0%}"
        elif name == "no_harmful_rollback_days":
            need = f"none in {required} days"
            got = str(actual)
        else:
            need, got = f"≥ {required}", "—" if actual is None else str(actual)
        rows.append(
            html.Tr(
                [
                    html.Td(CRITERIA_TEXT.get(name, name)),
                    html.Td(need, className="num"),
                    html.Td(got, className="num"),
                    html.Td(
                        html.Span("met", className="pill pill-ok")
                        if check["ok"]
                        else html.Span("not yet", className="pill pill-muted")
                    ),
                ]
            )
        )
    met = sum(1 for c in checks if c["ok"])
    return html.Div(
        [
            html.P(
                f"Promotion to {target}: {met} of {len(checks)} criteria met over the last "
                f"{window_days} days. An admin approves every promotion.",
                className="small muted",
            ),
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Criterion"),
                                html.Th("Required", className="num"),
                                html.Th("Measured", className="num"),
                                html.Th(""),
                            ]
                        )
                    ),
                    html.Tbody(rows),
                ],
                className="table trust-criteria",
            ),
        ]
    )


def guardrail_list(guardrails: dict[str, Any]) -> html.Dl:
    """The use case's guardrails in words."""
    pairs = []
    for key, (label, pattern) in GUARDRAIL_TEXT.items():
        if key in guardrails:
            pairs.append((label, pattern.format(guardrails[key])))
    return html.Dl([i for k, v in pairs for i in (html.Dt(k), html.Dd(v))], className="kv")


def owner_block(owner: dict[str, Any] | None, oncall: dict[str, Any] | None) -> html.Div:
    """The owning team and who is on call for this use case now."""
    # The on-call answer names the owning team too, before the use case row is linked to it.
    fallback = (oncall or {}).get("team") or {}
    team = (owner or fallback).get("name") or "no owning team yet"
    if oncall is None:
        who: Any = html.Span("nobody found on call", className="muted")
    elif oncall.get("person"):
        until = oncall.get("until_text")
        # The on-call rota may belong to another team than the stored owner: say whose it is.
        other = fallback.get("name") if fallback.get("name") != team else None
        who = [
            html.Strong(oncall["person"]["name"]),
            f" ({other})" if other else "",
            f" until {until}" if until else "",
        ]
    else:
        who = html.Span("no one on call now", className="pill pill-warn")
    return html.Div(
        [
            html.Div([html.Span("Owner ", className="muted"), html.Strong(team)]),
            html.Div([html.Span("On call ", className="muted"), *_as_list(who)]),
        ],
        className="trust-owner",
    )


def use_case_card(
    view: dict[str, Any],
    *,
    checks: Sequence[dict[str, Any]],
    oncall: dict[str, Any] | None,
    zone: ZoneInfo,
) -> html.Section:
    """One use case: ladder, owner, metrics, criteria and guardrails."""
    metrics = view["metrics"]
    level = view["maturity_level"]
    target = f"L{min(int(level[1]) + 1, 4)}"
    rate = metrics.get("acceptance_rate")
    precision = metrics.get("precision")
    summary = (
        f"{metrics['decisions']} decisions · "
        f"{'—' if rate is None else f'{rate:.0%}'} accepted · "
        f"precision {'—' if precision is None else f'{precision:.0%}'} · "
        f"{metrics['executions']} executions ({metrics['automated_executions']} automatic) · "
        f"{metrics['rollbacks']} rollbacks"
    )
    status = None if view.get("enabled") else html.Span("switched off", className="pill pill-bad")
    return html.Section(
        className="card trust-use-case",
        id=f"use-case-{view['key']}",
        children=[
            html.Div(
                className="section-head",
                children=[
                    html.Div(
                        [
                            html.H2(view["name"]),
                            html.Span(
                                f"{view['domain']} · {view['trigger']} → {view['action']}",
                                className="section-subtitle",
                            ),
                            status,
                        ],
                        className="section-titles",
                    ),
                    owner_block(view.get("owner"), oncall),
                ],
            ),
            html.Div(
                className="section-body",
                children=[
                    html.P(view.get("description") or "", className="muted"),
                    ladder(level, since=_parse(view.get("level_since")), zone=zone),
                    html.P(summary, className="trust-metrics"),
                    html.Div(
                        className="trust-use-case-grid",
                        children=[
                            html.Div(
                                [
                                    html.H3("Promotion criteria vs now"),
                                    criteria_table(
                                        checks, window_days=metrics["window_days"], target=target
                                    )
                                    if level != "L4"
                                    else html.P("At the top level.", className="muted"),
                                ]
                            ),
                            html.Div(
                                [
                                    html.H3("Guardrails"),
                                    guardrail_list(view.get("guardrails") or {}),
                                ]
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


def pending_table(
    changes: Sequence[dict[str, Any]],
    *,
    can_approve: bool,
    approve_type: str,
    reject_type: str,
    zone: ZoneInfo,
) -> html.Div:
    """Proposed promotions with their evidence; admins get approve and reject buttons."""
    if not changes:
        return empty_state(
            "No promotion waiting",
            "Beacon proposes one when a use case meets every criterion; an admin approves it.",
        )
    rows = []
    for change in changes:
        buttons: Any = html.Span("admins decide", className="muted small")
        if can_approve:
            buttons = html.Div(
                [
                    html.Button(
                        "Approve",
                        id={"type": approve_type, "index": change["id"]},
                        className="btn",
                    ),
                    html.Button(
                        "Reject",
                        id={"type": reject_type, "index": change["id"]},
                        className="btn btn-quiet",
                    ),
                ],
                className="trust-inline",
            )
        rows.append(
            html.Tr(
                [
                    html.Td(f"#{change['id']}"),
                    html.Td(change["use_case"]),
                    html.Td(f"{change['from_level']} → {change['to_level']}"),
                    html.Td(change["reason"]),
                    html.Td(local_time(_parse(change["proposed_at"]), zone), className="nowrap"),
                    html.Td(buttons),
                ]
            )
        )
    return html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("#"),
                        html.Th("Use case"),
                        html.Th("Change"),
                        html.Th("Why"),
                        html.Th("Proposed"),
                        html.Th(""),
                    ]
                )
            ),
            html.Tbody(rows),
        ],
        className="table trust-pending",
    )


def window_row(window: dict[str, Any], *, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """One change-calendar grid row from the service's window dict."""
    starts, ends = _parse(window["starts_at"]), _parse(window["ends_at"])
    if starts and ends and starts <= now < ends:
        status = "in force"
    elif ends and ends <= now:
        status = "over"
    else:
        status = "planned"
    scope = window.get("scope") or {}
    parts = [f"{k}: {', '.join(v)}" for k, v in scope.items() if v]
    return {
        "id": str(window["id"]),
        "kind": window["kind"],
        "title": window["title"],
        "starts": local_time(starts, zone),
        "ends": local_time(ends, zone),
        "scope": "; ".join(parts) or "network-wide",
        "status": status,
        "source": window.get("source") or "",
    }


def import_report(result: dict[str, Any], *, filename: str) -> html.Div:
    """What a CSV import did, with every refused row and why."""
    head = (
        f"{filename}: {result['created']} window(s) created, {result['updated']} updated, "
        f"{len(result['errors'])} row(s) refused."
    )
    tone = "notice-ok" if not result["errors"] else "notice-warn"
    return html.Div(
        [
            html.Div(head),
            html.Ul([html.Li(f"line {e['line']}: {e['message']}") for e in result["errors"]])
            if result["errors"]
            else None,
        ],
        className=f"notice {tone}",
        id="use-cases-import-report",
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
