"""The NOC wall screen: a plain view model from wall data, and the panels drawn from it.

The page keeps the view model in a dcc.Store and redraws only the panels whose part of it
changed, so everything shown (including ages) is computed here, once per refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dash import Patch, dcc, html, no_update

from components.format import age, ago, count, short_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.anomaly.wall import AreaHealth, EpisodeRow, WallSnapshot
    from services.ingest.health import SourceFreshness
    from services.oncall.resolve import OwnerAnswer

SEVERITIES = ("critical", "major", "minor", "warning")
SEVERITY_LABELS = {"critical": "Critical", "major": "Major", "minor": "Minor", "warning": "Warning"}
View = dict[str, Any]
# What the feed says before the first answer, so a wall never starts as a blank panel.
LOADING: View = {"title": "Loading open episodes…", "hint": "", "tone": "wait"}


def wall_view(
    snapshot: WallSnapshot,
    freshness: Sequence[SourceFreshness],
    *,
    zone: ZoneInfo,
    now: datetime,
) -> View:
    """Everything the wall shows, as JSON-able data compared between refreshes."""
    sources = [f for f in freshness if f.status != "disabled"]
    return {
        "counts": {
            **{s: snapshot.counts.get(s, 0) for s in SEVERITIES},
            "suppressed": snapshot.suppressed,
            "affected": snapshot.affected_elements,
        },
        "feed": [_episode(e, zone=zone, now=now) for e in snapshot.episodes],
        "feed_empty": None if snapshot.episodes else _feed_empty(snapshot, now=now),
        "regions": [_area(a) for a in snapshot.regions],
        "domains": [_area(a) for a in snapshot.domains],
        "sources": [
            {
                "name": f.name,
                "status": f.status,
                "age": ago(f.last_received_at, now=now),
                "limit": age_limit(f.stale_after_s),
            }
            for f in sources
        ],
        "banner": stale_text(sources, now=now),
    }


def age_limit(seconds: int) -> str:
    """A staleness threshold in words: `45 min`, `2 h`."""
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def stale_text(sources: Sequence[SourceFreshness], *, now: datetime) -> str:
    """The stale-data banner: which sources are silent past their threshold, or ''."""
    stale = [f for f in sources if f.status == "stale"]
    if not stale:
        return ""
    parts = [
        f"{f.name} silent for {age(f.last_received_at, now=now)} "
        f"(limit {age_limit(f.stale_after_s)})"
        for f in stale
    ]
    return "Stale data: " + "; ".join(parts) + " — what this screen shows may be out of date."


def _episode(row: EpisodeRow, *, zone: ZoneInfo, now: datetime) -> View:
    ongoing = row.ended_at is None
    return {
        "id": row.id,
        "severity": row.severity,
        "element": row.element,
        "area": row.area,
        "kpi": row.kpi,
        "confidence": f"{round(row.confidence * 100)}%",
        "since": short_time(row.started_at, zone, now=now),
        "for": age(row.started_at, now=now),
        "state": "ongoing" if ongoing else f"ended {short_time(row.ended_at, zone, now=now)}",
        "ongoing": ongoing,
        "acknowledged": row.status == "acknowledged",
        "revised": row.revised,
    }


def _area(area: AreaHealth) -> View:
    return {"name": area.name, "affected": area.affected, "total": area.total, "worst": area.worst}


def _feed_empty(snapshot: WallSnapshot, *, now: datetime) -> View:
    """Say why the feed is empty: nothing open, or the detector is not running."""
    run = snapshot.detector
    if run is None:
        return {
            "title": "No open anomaly episodes",
            "hint": "The detector has not run yet; episodes appear here once it does.",
            "tone": "warn",
        }
    hint = f"Detector last ran {ago(run.started_at, now=now)} ({run.status})."
    if snapshot.suppressed:
        hint += f" {snapshot.suppressed} open in change windows, not shown."
    return {
        "title": "No open anomaly episodes",
        "hint": hint,
        "tone": "ok" if run.status == "ok" else "warn",
    }


def severity_counts(counts: View) -> list[Any]:
    """Four large counters, one per severity, then the suppressed and affected notes."""
    tiles = [
        html.Div(
            [
                html.Div(SEVERITY_LABELS[s], className="wall-count-label"),
                html.Div(count(counts[s]), className="wall-count-value"),
            ],
            className=f"wall-count wall-sev-{s}" + ("" if counts[s] else " wall-count-zero"),
        )
        for s in SEVERITIES
    ]
    notes = html.Div(
        [
            html.Div(f"{count(counts['affected'])} elements affected", className="wall-count-note"),
            html.Div(
                f"{count(counts['suppressed'])} suppressed (change windows)",
                className="wall-count-note wall-suppressed muted",
            ),
        ],
        className="wall-count-notes",
    )
    return [*tiles, notes]


def feed_row(row: View) -> html.Tr:
    """One feed line; the React key keeps its DOM node when other lines change."""
    badges = []
    if row["acknowledged"]:
        badges.append(html.Span("ack", className="wall-badge wall-badge-ack"))
    if row["revised"]:
        badges.append(html.Span("revised", className="wall-badge wall-badge-revised"))
    return html.Tr(
        key=str(row["id"]),
        className=f"wall-feed-row wall-sev-{row['severity']}",
        children=[
            html.Td(
                html.Span(SEVERITY_LABELS.get(row["severity"], row["severity"])),
                className="wall-feed-sev",
            ),
            html.Td(
                [
                    dcc.Link(row["element"], href=f"/anomalies/{row['id']}"),
                    html.Div(row["area"], className="wall-feed-area"),
                ],
                className="wall-feed-element",
            ),
            html.Td(row["kpi"], className="wall-feed-kpi"),
            html.Td(row["confidence"], className="num wall-feed-conf"),
            html.Td(
                [html.Span(row["since"]), html.Span(f" · {row['for']}", className="muted")],
                className="nowrap",
            ),
            html.Td(
                [
                    html.Span(
                        row["state"],
                        className="wall-state-ongoing" if row["ongoing"] else "muted",
                    ),
                    *badges,
                ],
                className="nowrap wall-feed-state",
            ),
        ],
    )


def feed_rows(rows: Sequence[View], empty: View | None) -> list[html.Tr]:
    """The feed body; when empty, one line saying why."""
    if rows:
        return [feed_row(r) for r in rows]
    empty = empty or {"title": "No open anomaly episodes", "hint": "", "tone": "ok"}
    return [
        html.Tr(
            html.Td(
                [html.Strong(empty["title"]), html.P(empty["hint"])],
                colSpan=6,
                className=f"wall-feed-empty wall-feed-empty-{empty['tone']}",
            ),
            key="empty",
        )
    ]


FEED_HEAD = html.Thead(
    html.Tr(
        [
            html.Th("Severity"),
            html.Th("Element"),
            html.Th("KPI"),
            html.Th("Conf.", className="num"),
            html.Th("Since"),
            html.Th("Status"),
        ]
    )
)


def area_tiles(areas: Sequence[View], *, what: str) -> list[Any] | html.Div:
    """One tile per region or domain: affected / total elements, coloured by worst severity."""
    if not areas:
        return html.Div(f"No elements registered yet, so no {what} to show.", className="muted")
    return [
        html.Div(
            [
                html.Div(a["name"], className="wall-area-name"),
                html.Div(
                    SEVERITY_LABELS[a["worst"]] if a["worst"] else "ok",
                    className="wall-area-worst",
                ),
                html.Div(
                    [
                        html.Span(count(a["affected"]), className="wall-area-hit"),
                        html.Span(f" / {count(a['total'])}", className="wall-area-total"),
                    ],
                    className="wall-area-value",
                ),
            ],
            className=f"wall-area wall-sev-{a['worst'] or 'none'}",
        )
        for a in areas
    ]


def source_list(sources: Sequence[View]) -> html.Div | html.Table:
    """Data freshness per source: status, age of the newest delivery, and its limit."""
    if not sources:
        return html.Div(
            "No data sources yet: nothing is delivering, so nothing can be fresh.",
            className="wall-empty-note",
        )
    return html.Table(
        html.Tbody(
            [
                html.Tr(
                    [
                        html.Td(s["name"], className="wall-source-name"),
                        html.Td(
                            s["status"],
                            className=f"wall-source-status wall-source-{s['status']}",
                        ),
                        html.Td(s["age"], className="nowrap num"),
                        html.Td(f"limit {s['limit']}", className="nowrap muted num"),
                    ],
                    key=s["name"],
                )
                for s in sources
            ]
        ),
        className="table wall-sources",
    )


def stale_banner(text: str) -> tuple[str, str]:
    """Children and class of the wall's stale-data banner (hidden when all is fresh)."""
    return text, "wall-banner" if text else "wall-banner hidden"


def panel_updates(view: View, previous: View | None) -> tuple:
    """Outputs for a new view: each panel redrawn only when its data differs from before."""
    old = previous or {}
    no = no_update

    def changed(*keys: str) -> bool:
        return any(old.get(k, no) != view[k] for k in keys)

    counts = view["counts"]
    total = sum(counts[s] for s in SEVERITIES)
    shown = len(view["feed"])
    note = f"top {shown} of {total} open · worst first" if total else "nothing open"
    banner = stale_banner(view["banner"]) if changed("banner") else (no, no)
    return (
        view if changed(*view) else no,
        severity_counts(counts) if changed("counts") else no,
        note if changed("counts", "feed") else no,
        _feed_update(view, old),
        area_tiles(view["regions"], what="regions") if changed("regions") else no,
        area_tiles(view["domains"], what="domains") if changed("domains") else no,
        source_list(view["sources"]) if changed("sources") else no,
        *banner,
    )


def _feed_update(view: View, old: View) -> Any:
    """The feed body: untouched, patched line by line, or rebuilt when its lines changed."""
    rows, before = view["feed"], old.get("feed")
    if before == rows and old.get("feed_empty") == view["feed_empty"]:
        return no_update
    same_lines = (
        before is not None and rows and [r["id"] for r in rows] == [r["id"] for r in before]
    )
    if not same_lines:
        return feed_rows(rows, view["feed_empty"])
    patch = Patch()
    for i, (new, was) in enumerate(zip(rows, before, strict=True)):
        if new != was:
            patch[i] = feed_row(new)
    return patch


# --- On call now (its own callback on the wall's refresh; redrawn only when it changes) -------


def oncall_view(answers: Sequence[OwnerAnswer], *, zone: ZoneInfo, now: datetime) -> list[View]:
    """Who is on call now per network domain, then per team owning AI components.

    Only the hand-off time is shown (not a countdown), so the tile changes at hand-offs only.
    """
    tiles = [
        _oncall_tile(a.subject_key, a, zone=zone, now=now)
        for a in answers
        if a.subject_kind == "domain"
    ]
    seen: set[int] = set()
    for answer in answers:
        team = answer.oncall.team
        if answer.subject_kind == "component" and team.id not in seen:
            seen.add(team.id)
            tiles.append(_oncall_tile(team.name, answer, zone=zone, now=now, ai=True))
    return tiles


def _oncall_tile(
    label: str, answer: OwnerAnswer, *, zone: ZoneInfo, now: datetime, ai: bool = False
) -> View:
    oncall = answer.oncall
    if ai and "ai" not in label.lower().split():
        label = f"AI · {label}"
    return {
        "label": label,
        "ai": ai,
        "person": oncall.person.name if oncall.person else None,
        "team": oncall.team.name,
        "until": handoff_text(oncall.until, zone=zone, now=now),
    }


def handoff_text(moment: datetime | None, *, zone: ZoneInfo, now: datetime) -> str:
    """`until 07:00` today, `until Fri 07:00` within a week, `until Dec 04` beyond; '' unknown."""
    if moment is None:
        return ""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"until {local:%H:%M}"
    if (local.date() - today).days < 7:
        return f"until {local:%a %H:%M}"
    return f"until {local:%b %d}"


def oncall_tiles(view: Sequence[View]) -> list[Any] | html.Div:
    """The on-call strip: the label, then one tile per domain and for the AI."""
    if not view:
        return html.Div(
            "On call: no ownership recorded yet, so nobody would be paged.",
            className="wall-oncall-empty",
        )
    tiles = [
        html.Div(
            [
                html.Div(t["label"], className="wall-oncall-label", title=t["team"]),
                html.Div(t["person"] or "nobody on call", className="wall-oncall-person"),
                html.Div(t["until"], className="wall-oncall-until"),
            ],
            className="wall-oncall-tile"
            + (" wall-oncall-ai" if t["ai"] else "")
            + ("" if t["person"] else " wall-oncall-nobody"),
            key=f"{'ai' if t['ai'] else 'domain'}-{t['label']}",
        )
        for t in view
    ]
    return [html.Div("On call now", className="wall-oncall-title"), *tiles]


def oncall_updates(view: list[View], previous: list[View] | None) -> tuple[Any, Any]:
    """(stored view, tiles): both untouched when nothing changed since the last refresh."""
    if previous == view:
        return no_update, no_update
    return view, oncall_tiles(view)
