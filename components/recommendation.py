"""Recommendation builders: grid rows, count tiles, the detail panel and the guardrail preview.

Everything here takes the JSON-ready dicts the decisions and automation services return.
Text from data (rationale, notes, element names) is only ever placed as component children,
which React renders as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from components.cards import empty_state, notice, stat_tile, tile_row
from components.format import age, local_time, short_time

STATE_TEXT = {
    "open": "open",
    "awaiting_second_approval": "needs second approval",
    "accepted": "accepted",
    "rejected": "rejected",
    "overridden": "overridden",
    "executing": "executing",
    "executed": "executed",
    "rolled_back": "rolled back",
    "expired": "expired",
    "shadow": "shadow (L0)",
}
STATE_PILLS = {
    "open": "pill pill-warn",
    "awaiting_second_approval": "pill trust-pill-second",
    "accepted": "pill pill-ok",
    "executed": "pill pill-ok",
    "rejected": "pill pill-muted",
    "overridden": "pill pill-muted",
    "rolled_back": "pill pill-bad",
    "expired": "pill pill-muted",
}
VERDICT_TEXT = {"accept": "accepted", "reject": "rejected", "override": "overrode"}
EXECUTION_TEXT = {
    "running": "running",
    "succeeded": "succeeded, verifying",
    "failed": "failed",
    "verified": "verified: KPIs held",
    "rollback_recommended": "rollback recommended: KPIs got worse",
    "rolled_back": "rolled back",
}
GUARDRAIL_TEXT = {
    "recommendation_state": "State",
    "use_case_enabled": "Use case enabled",
    "maturity_level": "Maturity level",
    "human_approval": "Human approval",
    "two_person_approval": "Two-person approval",
    "expiry": "Expiry",
    "min_confidence": "Confidence",
    "blast_radius_cells": "Blast radius (cells)",
    "blast_radius_users": "Blast radius (users)",
    "change_freeze": "Change freeze",
    "planned_work": "Planned work",
    "rate_limit": "Rate limit",
}
ROW_CLASSES = {
    "trust-row-simulated": "params.data.simulated === 'simulated'",
    "trust-row-second": "params.data.state === 'needs second approval'",
}
NUMBER = {"type": "numericColumn"}
COLUMNS: list[dict[str, Any]] = [
    {"field": "id", "headerName": "#", "minWidth": 70, "maxWidth": 85},
    {"field": "use_case", "headerName": "Use case", "minWidth": 200, "tooltipField": "use_case"},
    {"field": "level", "headerName": "Level", "minWidth": 70, "maxWidth": 80, "filter": False},
    {"field": "action", "headerName": "Action", "minWidth": 130},
    {"field": "element", "headerName": "Element", "minWidth": 130, "tooltipField": "dn"},
    {
        "field": "confidence",
        "headerName": "Confidence",
        "minWidth": 105,
        "maxWidth": 120,
        "filter": False,
        **NUMBER,
        "valueFormatter": {"function": "d3.format('.0%')(params.value)"},
    },
    {"field": "severity", "headerName": "Severity", "minWidth": 95, "maxWidth": 110},
    {
        "field": "blast",
        "headerName": "Cells · users",
        "headerTooltip": "Blast radius: cells and users the action touches",
        "minWidth": 115,
        "filter": False,
    },
    {
        "field": "expires",
        "headerName": "Expires",
        "minWidth": 100,
        "filter": False,
        "tooltipField": "expires_in",
    },
    {"field": "state", "headerName": "State", "minWidth": 120},
    {"field": "simulated", "headerName": "Data", "minWidth": 95, "maxWidth": 110},
]


def grid_row(row: dict[str, Any], *, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """One grid row from a recommendation row of the decisions service."""
    element = row.get("element") or {}
    blast = row.get("blast_radius") or {}
    expires = _parse(row.get("expires_at"))
    if expires is None:
        expiry, expires_in = "—", "no expiry"
    elif expires <= now:
        expiry, expires_in = "expired", f"expired at {local_time(expires, zone)}"
    else:
        expiry = short_time(expires, zone, now=now)
        expires_in = f"in {age(now, now=expires)} ({local_time(expires, zone)})"
    return {
        "id": str(row["id"]),
        "use_case": row.get("use_case") or f"use case #{row.get('use_case_id')}",
        "level": row.get("maturity_level"),
        "action": row.get("action"),
        "element": element.get("name") or "—",
        "dn": element.get("dn") or "",
        "confidence": round(float(row.get("confidence") or 0.0), 3),
        "severity": row.get("severity"),
        "blast": f"{blast.get('cells', 0)} · {blast.get('users', 0)}",
        "expires": expiry,
        "expires_in": expires_in,
        "state": STATE_TEXT.get(row.get("state", ""), row.get("state")),
        "simulated": "simulated" if row.get("simulated") else "live",
    }


def count_tiles(rows: Sequence[dict[str, Any]], *, rollback_recommended: int) -> html.Div:
    """Pending, needing a second approver, high severity, and rollbacks recommended."""
    pending = [r for r in rows if r.get("state") in ("open", "awaiting_second_approval")]
    second = sum(1 for r in pending if r.get("state") == "awaiting_second_approval")
    high = sum(1 for r in pending if r.get("severity") in ("critical", "major"))
    simulated = sum(1 for r in pending if r.get("simulated"))
    return tile_row(
        [
            stat_tile(
                "Waiting for a decision",
                str(len(pending)),
                detail=f"{simulated} simulated" if simulated else "all live",
                tone="warn" if pending else "ok",
            ),
            stat_tile(
                "Need a second approver",
                str(second),
                detail="high-severity L2 actions",
                tone="warn" if second else "neutral",
            ),
            stat_tile("High severity", str(high), detail="critical or major"),
            stat_tile(
                "Rollback recommended",
                str(rollback_recommended),
                detail="KPIs got worse after an action",
                tone="bad" if rollback_recommended else "ok",
            ),
        ]
    )


def rollback_banner(items: Sequence[dict[str, Any]]) -> html.Div | None:
    """A banner naming each execution whose verification recommends rolling it back."""
    if not items:
        return None
    lines = [
        html.Li(
            f"Recommendation #{i['recommendation_id']} ({i['action']} on {i['element']}): "
            f"{i['detail']}"
        )
        for i in items
    ]
    return html.Div(
        [
            html.Strong("Rollback recommended"),
            html.Span(
                " — KPIs got worse after these actions. An engineer should roll them back "
                "(select the row, then Roll back)."
            ),
            html.Ul(lines),
        ],
        className="trust-banner",
        role="alert",
        id="recommendations-rollback-banner",
    )


def approval_status(detail: dict[str, Any]) -> html.Div | None:
    """Two-person approval in words: who approved, and whether a second person is needed."""
    state = detail.get("state")
    firsts = [d for d in detail.get("decisions", []) if d.get("verdict") == "accept"]
    if state == "awaiting_second_approval":
        by = firsts[-1].get("by") if firsts else None
        return html.Div(
            [
                html.Strong("Needs second approval. "),
                f"Accepted by {by or 'one person'}; a different signed-in person must accept "
                "it before it can run (high-severity action at L2).",
            ],
            className="notice notice-warn trust-approval",
        )
    if detail.get("needs_second_approval") and state == "open":
        return html.Div(
            "Two-person approval: this high-severity L2 action needs two different people "
            "to accept it.",
            className="notice notice-info trust-approval",
        )
    if detail.get("needs_second_approval") and len({d.get("by") for d in firsts}) >= 2:
        return html.Div(
            "Approved by two people: " + ", ".join(str(d.get("by")) for d in firsts) + ".",
            className="notice notice-ok trust-approval",
        )
    return None


def detail_panel(
    detail: dict[str, Any],
    *,
    preview: dict[str, Any] | None,
    zone: ZoneInfo,
    now: datetime,
) -> html.Div:
    """Everything about one recommendation: why, what it would do, what guards it, history."""
    element = detail.get("element") or {}
    explanation = detail.get("explanation") or {}
    rollback = detail.get("rollback_plan") or {}
    blast = detail.get("blast_radius") or {}
    expires = _parse(detail.get("expires_at"))
    pills: list[Any] = [
        html.Span(
            STATE_TEXT.get(detail["state"], detail["state"]),
            className=STATE_PILLS.get(detail["state"], "pill pill-muted"),
        ),
        html.Span(detail.get("maturity_level"), className="pill pill-muted"),
        html.Span(detail.get("severity"), className="pill pill-muted"),
    ]
    if detail.get("simulated"):
        pills.append(html.Span("simulated", className="pill trust-pill-simulated"))
    facts = [
        ("Use case", detail.get("use_case") or "—"),
        ("Element", element.get("dn") or "—"),
        ("Confidence", f"{float(detail.get('confidence') or 0):.0%}"),
        ("Blast radius", f"{blast.get('cells', 0)} cells · {blast.get('users', 0)} users"),
        ("Raised", local_time(_parse(detail.get("created_at")), zone)),
        (
            "Expires",
            "—"
            if expires is None
            else local_time(expires, zone) + (" (expired)" if expires <= now else ""),
        ),
    ]
    return html.Div(
        className="trust-detail",
        children=[
            html.Div(
                [
                    html.H3(
                        f"#{detail['id']} {detail.get('action')} on {element.get('name', '—')}"
                    ),
                    html.Div(pills, className="trust-pills"),
                ],
                className="trust-detail-head",
            ),
            approval_status(detail),
            _execution_notice(detail),
            html.Div(
                className="trust-detail-grid",
                children=[
                    html.Div(
                        [
                            html.H4("Why"),
                            html.P(detail.get("rationale") or "—", className="trust-rationale"),
                            _explanation(explanation),
                            html.H4("Expected impact"),
                            html.P(detail.get("expected_impact") or "—"),
                            html.H4("Rollback plan"),
                            html.P(rollback.get("text") or "No rollback plan stored."),
                        ]
                    ),
                    html.Div(
                        [
                            _kv(facts),
                            html.H4("Parameters"),
                            _kv(
                                [
                                    (k, _short(v))
                                    for k, v in (detail.get("parameters") or {}).items()
                                    if k not in ("element_dn",)
                                ]
                            ),
                        ]
                    ),
                ],
            ),
            html.H4("Guardrails now (dry run — changes nothing)"),
            guardrail_preview(preview, state=detail["state"]),
            html.H4("Decisions and executions"),
            history(detail, zone=zone),
        ],
    )


def guardrail_preview(preview: dict[str, Any] | None, *, state: str = "") -> html.Div:
    """The dry run's verdict and each guardrail with its plain-language reason."""
    if preview is None:
        settled = STATE_TEXT.get(state, state.replace("_", " ")) or "settled"
        return html.Div(
            html.P(f"Nothing to check: the recommendation is {settled}.", className="muted"),
            className="trust-guardrails",
        )
    report = preview.get("guardrails") or {}
    blocking = report.get("blocking")
    if report.get("allowed"):
        head = notice(
            f"Execute would run {preview.get('action')} through the {preview.get('actuator')} "
            f"actuator, then watch the KPIs for {preview.get('verification_minutes')} min.",
            tone="ok",
        )
    else:
        head = notice(
            f"Execute is blocked by {GUARDRAIL_TEXT.get(blocking['name'], blocking['name'])}: "
            f"{blocking['detail']}"
            if blocking
            else "Execute is blocked.",
            tone="warn",
        )
    rows = [
        html.Li(
            [
                html.Span("✓" if r.get("ok") else "✕", className="trust-mark"),
                html.Strong(GUARDRAIL_TEXT.get(r.get("name", ""), r.get("name", "")) + ": "),
                r.get("detail", ""),
            ],
            className="trust-guardrail-ok" if r.get("ok") else "trust-guardrail-blocked",
        )
        for r in report.get("results", [])
    ]
    return html.Div(
        [head, html.Ul(rows, className="trust-guardrail-list")], className="trust-guardrails"
    )


def history(detail: dict[str, Any], *, zone: ZoneInfo) -> html.Ul | html.P:
    """Decisions and executions, oldest first."""
    items: list[tuple[str, Any]] = []
    for d in detail.get("decisions", []):
        step = " (second approval)" if d.get("approval_step") == 2 else ""
        text = f"{d.get('by') or 'API token'} {VERDICT_TEXT.get(d['verdict'], d['verdict'])}{step}"
        text += f" — {d.get('reason_label') or d.get('reason_code')}"
        if d.get("override_action"):
            text += f"; did {d['override_action']} instead"
        if d.get("note"):
            text += f". “{d['note']}”"
        items.append((d.get("at") or "", text))
    for e in detail.get("executions", []):
        outcome = EXECUTION_TEXT.get(e["state"], e["state"])
        text = f"Execution #{e['id']} via {e['actuator']}: {outcome}"
        items.append((e.get("started_at") or "", text))
    if not items:
        return html.P("No decision yet.", className="muted")
    return html.Ul(
        [
            html.Li([html.Span(local_time(_parse(at), zone), className="muted mono"), " ", text])
            for at, text in sorted(items, key=lambda item: item[0])
        ],
        className="trust-history",
    )


def _execution_notice(detail: dict[str, Any]) -> html.Div | None:
    states = [e.get("state") for e in detail.get("executions", [])]
    if "rollback_recommended" in states:
        return html.Div(
            [
                html.Strong("Rollback recommended. "),
                "The KPIs got worse after this action; an engineer should roll it back.",
            ],
            className="trust-banner",
            role="alert",
        )
    return None


def _explanation(explanation: dict[str, Any]) -> html.Div | None:
    facts: list[tuple[str, Any]] = []
    if explanation.get("kpi"):
        facts.append(("KPI", explanation["kpi"]))
    if explanation.get("observed") is not None:
        expected = explanation.get("expected")
        facts.append(
            (
                "Observed",
                f"{explanation['observed']:.4g}"
                + (f" (expected {expected:.4g})" if isinstance(expected, int | float) else ""),
            )
        )
    band = explanation.get("band")
    if isinstance(band, list) and len(band) == 2 and all(isinstance(b, int | float) for b in band):
        facts.append(("Normal band", f"{band[0]:g} – {band[1]:g}"))
    if explanation.get("p_breach"):
        p = explanation["p_breach"]
        facts.append(
            ("Breach probability", " · ".join(f"{k} d {float(v):.0%}" for k, v in p.items()))
        )
    if explanation.get("detector") or explanation.get("model"):
        facts.append(
            (
                "Model",
                " ".join(
                    str(x)
                    for x in (
                        explanation.get("detector") or explanation.get("model"),
                        explanation.get("model_version"),
                    )
                    if x
                ),
            )
        )
    quality = explanation.get("data_quality") or {}
    if quality.get("text"):
        facts.append(("Data quality", quality["text"]))
    source = explanation.get("source") or {}
    link = None
    if source.get("kind") == "anomaly" and source.get("id"):
        link = dcc.Link(f"Open anomaly #{source['id']}", href=f"/anomalies/{source['id']}")
    if not facts and link is None:
        return None
    return html.Div([_kv(facts), link], className="trust-explanation")


def _kv(pairs: Sequence[tuple[str, Any]]) -> html.Dl:
    return html.Dl([item for k, v in pairs for item in (html.Dt(k), html.Dd(v))], className="kv")


def _short(value: Any) -> str:
    if isinstance(value, list):
        # DNs are long: their last part (the cell) says enough next to the element's own DN.
        names = [str(v).rsplit(",", 1)[-1] for v in value]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return shown or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
    return "—" if value is None else str(value)


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def no_rows(*, filtered: bool) -> html.Div:
    """What the grid area says when nothing matches."""
    if filtered:
        return empty_state(
            "No recommendations match",
            "Nothing waits for a decision right now. Change the state filter to see settled ones.",
        )
    return empty_state(
        "No recommendations yet",
        "Recommendations appear when the detector or the forecaster finds something a use "
        "case acts on.",
    )
