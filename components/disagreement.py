"""Disagreement queue builders: the policy in words, grid rows, tiles, and one case side by side.

Text that came from data (notes, rationales, names) is only ever placed as component
children, which React renders as text, never as markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from components.cards import stat_tile, tile_row
from components.format import age, count, local_time

KIND_TEXT = {
    "rejected": "Recommendation rejected",
    "overridden": "Recommendation overridden",
    "false_positive": "Anomaly labelled wrong",
    "missed": "Incident the AI missed",
    "ai_wrong": "AI wrong on an incident",
    "rolled_back": "Action rolled back",
}
OUTCOME_TEXT = {
    "ai_right": "AI was right",
    "human_right": "Person was right",
    "both_reasonable": "Both reasonable",
    "data_issue": "Data issue",
    "inconclusive": "Inconclusive",
}
# What each outcome teaches the AI, in the words the review form shows next to it.
OUTCOME_EFFECT = {
    "ai_right": "counts as right in precision and calibration; an episode labelled "
    "“not an anomaly” is recorded as a true anomaly",
    "human_right": "counts as wrong in precision and calibration",
    "both_reasonable": "left out of precision; with “new normal” ticked, the detector "
    "re-baselines the element from the episode's start (recorded in data health)",
    "data_issue": "left out of precision; the data window's values leave the detector's "
    "baselines (recorded in data health)",
    "inconclusive": "left out of precision: nobody can tell",
}
POLICY = (
    (
        "The human decision stands.",
        "Whatever the review concludes, nothing the person decided is undone or redone.",
    ),
    (
        "The review decides what the AI learns.",
        "The owner of the AI use case looks at both sides and the data quality at the "
        "time, then records an outcome with a note.",
    ),
    (
        "Outcomes feed automation.",
        "“AI was right” and “Person was right” count in precision and calibration, and so in "
        "the promotion criteria of the use case; other outcomes are left out.",
    ),
    (
        "“New normal” and “data issue” change the detector's baseline.",
        "A new normal restarts the element's baseline from the episode's start; a data issue "
        "keeps the window's values out of every later baseline. Both are written to data "
        "health on the element, where the detector's owner sees them; stored measurements "
        "are never changed.",
    ),
)
KIND_SHORT = {
    "rejected": "Rejected",
    "overridden": "Overridden",
    "false_positive": "Labelled wrong",
    "missed": "AI missed it",
    "ai_wrong": "AI wrong (incident)",
    "rolled_back": "Rolled back",
}
# Overdue open cases stand out; resolved ones are muted.
ROW_CLASSES = {
    "disagreement-row-overdue": "params.data.sla.includes('overdue')",
    "disagreement-row-resolved": "params.data.state === 'resolved'",
}
DUE_CELLS = {
    "disagreement-cell-overdue": "params.data.sla.includes('overdue')",
    "disagreement-cell-escalated": "params.data.sla === 'escalated'",
}
WRAP = {"wrapText": True, "autoHeight": True}
# Widths are proportions: the grid is sized to fit, long text wraps instead of being cut.
QUEUE_COLUMNS: list[dict[str, Any]] = [
    {"field": "ref", "headerName": "#", "width": 100, "minWidth": 95, **WRAP},
    {"field": "kind_text", "headerName": "What", "width": 115, "minWidth": 105, **WRAP},
    {"field": "use_case", "headerName": "Use case", "width": 170, "minWidth": 120, **WRAP},
    {"field": "ai", "headerName": "AI said", "width": 300, "minWidth": 170, **WRAP},
    {"field": "human", "headerName": "Person decided", "width": 300, "minWidth": 170, **WRAP},
    {
        "field": "owner",
        "headerName": "Owner team · on call now",
        "width": 160,
        "minWidth": 130,
        "wrapHeaderText": True,
        "autoHeaderHeight": True,
        **WRAP,
    },
    {"field": "assignee", "headerName": "Reviewer", "width": 125, "minWidth": 105, **WRAP},
    {
        "field": "due",
        "headerName": "Review due",
        "width": 140,
        "minWidth": 125,
        "cellClassRules": DUE_CELLS,
        **WRAP,
    },
    {"field": "outcome_text", "headerName": "Outcome", "width": 120, "minWidth": 105, **WRAP},
    {"field": "review_note", "headerName": "Review note", "width": 220, "minWidth": 130, **WRAP},
]
# The page filters in the database; a second, grid-only filter would contradict them.
QUEUE_COLUMNS = [{**c, "filter": False} for c in QUEUE_COLUMNS]


def policy_panel() -> html.Div:
    """The review policy in plain words."""
    return html.Div(
        [
            html.Div([html.Strong(head), html.P(rest)], className="disagreement-policy-item")
            for head, rest in POLICY
        ],
        className="disagreement-policy",
        id="disagreements-policy-list",
    )


def queue_row(
    row: dict[str, Any], *, zone: ZoneInfo, now: datetime, oncall: dict[int, str]
) -> dict[str, Any]:
    """One case as a grid row (strings formatted for reading)."""
    team = row.get("team") or "no team"
    on_call = oncall.get(row.get("use_case_id") or 0)
    sla = sla_text(row, now=now)
    due = short_due(_parse(row.get("due_at")), zone=zone)
    return {
        "id": str(row["id"]),
        "ref": f"#{row['id']}" + (" sim." if row.get("simulated") else ""),
        "state": row["state"],
        "kind": row["kind"],
        "kind_text": KIND_SHORT.get(row["kind"], row["kind"]),
        "use_case": row.get("use_case") or "Detector (no use case)",
        "ai": row.get("ai_summary") or "",
        "human": row.get("human_summary") or "",
        "team": team,
        "oncall": on_call or "—",
        "owner": f"{team} · {on_call} on call" if on_call else team,
        "assignee": row.get("assignee") or "unassigned",
        "due": due if sla == "resolved" else f"{sla} · {due}",
        "sla": sla,
        "outcome_text": OUTCOME_TEXT.get(row.get("outcome") or "", ""),
        "review_note": row.get("review_note") or "",
        "simulated": bool(row.get("simulated")),
    }


def short_due(moment: datetime | None, *, zone: ZoneInfo) -> str:
    """`29 Nov 05:16` in the NOC's zone."""
    return "—" if moment is None else moment.astimezone(zone).strftime("%d %b %H:%M")


def sla_text(row: dict[str, Any], *, now: datetime) -> str:
    """`overdue`, `escalated`, `due in 5 h` or `resolved`."""
    if row["state"] != "open":
        return "resolved"
    due = _parse(row.get("due_at"))
    escalated = row.get("escalated_at") is not None
    if row.get("overdue"):
        return "escalated, overdue" if escalated else "overdue"
    if escalated:
        return "escalated"
    if due is None:
        return "no SLA"
    return f"due in {age(now, now=due)}"


def queue_tiles(counts: dict[str, int]) -> html.Div:
    """Open, overdue, escalated and resolved cases."""
    overdue = counts.get("overdue", 0)
    return tile_row(
        [
            stat_tile(
                "Open",
                count(counts.get("open", 0)),
                detail="waiting for a review",
                tone="warn" if counts.get("open") else "ok",
                id_="disagreements-tile-open",
            ),
            stat_tile(
                "Overdue",
                count(overdue),
                detail="past the review SLA",
                tone="bad" if overdue else "ok",
                id_="disagreements-tile-overdue",
            ),
            stat_tile(
                "Escalated",
                count(counts.get("escalated", 0)),
                detail="handed to the next person",
                id_="disagreements-tile-escalated",
            ),
            stat_tile(
                "Resolved",
                count(counts.get("resolved", 0)),
                detail="reviewed, outcome recorded",
                id_="disagreements-tile-resolved",
            ),
        ]
    )


def case_panel(
    case: dict[str, Any], *, zone: ZoneInfo, now: datetime, recommendation_href: str | None
) -> html.Div:
    """A case in full: both sides side by side, data quality, links, reviews and history."""
    head = [
        html.Span(KIND_TEXT.get(case["kind"], case["kind"]), className="pill pill-muted"),
        html.Span(
            case["state"],
            className="pill pill-warn" if case["state"] == "open" else "pill pill-ok",
            id="disagreements-case-state",
        ),
        html.Span(sla_text(case, now=now), className="muted"),
    ]
    if case.get("simulated"):
        head.append(html.Span("simulated", className="pill pill-sim"))
    owner = (
        f"Owner: {case.get('team') or 'no team'} · reviewer: {case.get('assignee') or 'unassigned'}"
        f" · due {local_time(_parse(case.get('due_at')), zone)}"
    )
    return html.Div(
        [
            html.Div(head, className="disagreement-case-head"),
            html.P(owner, className="muted small"),
            html.Div(
                [
                    html.Div(
                        [html.H3("What the AI said"), ai_side(case.get("ai_side") or {})],
                        className="disagreement-side disagreement-side-ai",
                        id="disagreements-ai-side",
                    ),
                    html.Div(
                        [
                            html.H3("What the person decided"),
                            human_side(case.get("human_side") or {}, zone=zone),
                        ],
                        className="disagreement-side disagreement-side-human",
                        id="disagreements-human-side",
                    ),
                ],
                className="disagreement-sides",
            ),
            data_quality_block(case.get("data_quality") or {}),
            links(case, recommendation_href=recommendation_href),
            reviews_block(case.get("reviews") or [], zone=zone),
        ],
        className="disagreement-case",
    )


def ai_side(side: dict[str, Any]) -> html.Div:
    """The AI output with its explanation and confidence."""
    kind = side.get("kind")
    if kind == "recommendation":
        rows = [
            ("Proposed", _words(side.get("action"))),
            ("Confidence", _percent(side.get("confidence"))),
            ("Severity", side.get("severity")),
            ("Maturity level", side.get("maturity_level")),
            ("Expected impact", side.get("expected_impact")),
            ("Blast radius", _blast(side.get("blast_radius"))),
            ("Model", side.get("model_version")),
        ]
        parts: list[Any] = [html.P(side.get("rationale") or "", className="disagreement-why")]
        parts.append(_kv(rows))
        if isinstance(side.get("anomaly"), dict):
            parts += [html.H4("The episode behind it"), _anomaly(side["anomaly"])]
        return html.Div(parts)
    if kind == "anomaly":
        return _anomaly(side)
    return html.P(side.get("text") or "No AI output was recorded.", className="disagreement-why")


def human_side(side: dict[str, Any], *, zone: ZoneInfo) -> html.Div:
    """The human decision with its reason and note."""
    kind = side.get("kind")
    at = local_time(_parse(side.get("at")), zone)
    if kind == "decision":
        rows = [
            ("Who", side.get("by")),
            ("Decision", side.get("verdict")),
            ("Reason", side.get("reason") or side.get("reason_code")),
            ("Did instead", _words(side.get("override_action"))),
            ("When", at),
        ]
    elif kind == "feedback":
        rows = [
            ("Who", side.get("by")),
            ("Label", _words(side.get("label"))),
            ("When", at),
        ]
    elif kind == "triage":
        took_part = [
            word
            for word, key in (("detected", "ai_detected"), ("recommended", "ai_recommended"))
            if side.get(key)
        ]
        rows = [
            ("Who", side.get("by")),
            ("Incident", f"#{side.get('incident_id')} {side.get('title') or ''}"),
            ("Verdict", f"the AI {' and '.join(took_part) or 'took part'}, and was wrong"),
            ("Severity", side.get("severity")),
            ("When", at),
        ]
    elif kind == "incident":
        rows = [
            ("Who", side.get("by")),
            ("Opened incident", f"#{side.get('incident_id')} {side.get('title') or ''}"),
            ("Severity", side.get("severity")),
            ("Domain", side.get("domain")),
            ("When", at),
        ]
    else:
        verification = side.get("verification") or {}
        rows = [
            ("Who", side.get("by")),
            ("Reason", side.get("reason")),
            ("Verification", verification.get("outcome")),
            ("When", at),
        ]
    note = side.get("note")
    return html.Div(
        [
            _kv(rows),
            html.Blockquote(note, className="disagreement-note")
            if note
            else html.P("No note.", className="muted small"),
        ]
    )


def data_quality_block(quality: dict[str, Any]) -> html.Div:
    """The data quality when the case opened: the sentence, stale sources, element events."""
    ok = bool(quality.get("ok", True))
    # The sentence already names stale sources, gaps and flags; the events need their words.
    element = quality.get("element") or {}
    items = [
        html.Li(f"{_words(event.get('kind'))}: {event.get('summary')}")
        for event in element.get("health_events") or []
    ]
    return html.Div(
        [
            html.H3("Data quality at the time"),
            html.P(
                quality.get("text") or "Not recorded.",
                className="notice notice-ok" if ok else "notice notice-warn",
                id="disagreements-data-quality",
            ),
            html.Ul(items) if items else None,
        ],
        className="disagreement-quality",
    )


def links(case: dict[str, Any], *, recommendation_href: str | None) -> html.Div:
    """Where the case stems from."""
    anchors: list[Any] = []
    if case.get("recommendation_id"):
        text = f"Recommendation #{case['recommendation_id']}"
        anchors.append(
            dcc.Link(text, href=recommendation_href, id="disagreements-link-recommendation")
            if recommendation_href
            else html.Span(text, id="disagreements-link-recommendation")
        )
    if case.get("anomaly_id"):
        anchors.append(
            dcc.Link(
                f"Anomaly #{case['anomaly_id']}",
                href=f"/anomalies/{case['anomaly_id']}",
                id="disagreements-link-anomaly",
            )
        )
    if case.get("incident_id"):
        anchors.append(
            dcc.Link(
                f"Incident #{case['incident_id']}",
                href=f"/incidents/{case['incident_id']}",
                id="disagreements-link-incident",
            )
        )
    if case.get("execution_id"):
        anchors.append(html.Span(f"Execution #{case['execution_id']}"))
    if not anchors:
        return html.Div()
    return html.Div(
        [html.Strong("Stems from: "), *_joined(anchors)], className="disagreement-links"
    )


def reviews_block(reviews: list[dict[str, Any]], *, zone: ZoneInfo) -> html.Div:
    """Each review: outcome, who, when and the note."""
    if not reviews:
        return html.Div()
    return html.Div(
        [
            html.H3("Review"),
            *[
                html.Div(
                    [
                        html.Strong(OUTCOME_TEXT.get(r["outcome"], r["outcome"])),
                        html.Span(
                            f" · {r.get('reviewer') or 'API client'} · "
                            f"{local_time(_parse(r.get('at')), zone)}",
                            className="muted",
                        ),
                        html.Blockquote(r["note"], className="disagreement-note")
                        if r.get("note")
                        else None,
                    ],
                    className="disagreement-review",
                )
                for r in reviews
            ],
        ],
        id="disagreements-reviews",
    )


def outcome_options() -> list[dict[str, Any]]:
    """Radio options: the outcome in words and what it teaches the AI."""
    return [
        {
            "label": html.Span(
                [html.Strong(OUTCOME_TEXT[k]), html.Span(f" — {v}", className="muted")]
            ),
            "value": k,
        }
        for k, v in OUTCOME_EFFECT.items()
    ]


def _anomaly(side: dict[str, Any]) -> html.Div:
    band = side.get("band") or [None, None]
    rows = [
        ("Element", side.get("element")),
        ("KPI", side.get("kpi")),
        ("Observed / expected", f"{_num(side.get('observed'))} vs {_num(side.get('expected'))}"),
        ("Normal band", f"{_num(band[0])} – {_num(band[1])}"),
        ("Confidence", _percent(side.get("confidence"))),
        ("Severity", side.get("severity")),
        ("Detector", f"{side.get('detector') or '—'} {side.get('model_version') or ''}".strip()),
    ]
    return html.Div([html.P(side.get("rationale") or "", className="disagreement-why"), _kv(rows)])


def _kv(rows: list[tuple[str, Any]]) -> html.Dl:
    body: list[Any] = []
    for label, value in rows:
        if value in (None, "", "—"):
            continue
        body += [html.Dt(label), html.Dd(str(value))]
    return html.Dl(body, className="kv")


def _joined(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for i, item in enumerate(items):
        if i:
            out.append(" · ")
        out.append(item)
    return out


def _blast(blast: Any) -> str | None:
    if not isinstance(blast, dict) or blast.get("cells") is None:
        return None
    users = blast.get("users")
    return f"{blast['cells']} cells" + (f", about {count(users)} users" if users else "")


def _percent(value: Any) -> str | None:
    return None if value is None else f"{float(value):.0%}"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):.3g}"


def _words(value: Any) -> str | None:
    return None if not value else str(value).replace("_", " ")


def _parse(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)
