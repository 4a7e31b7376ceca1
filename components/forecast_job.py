"""The forecast job on the portfolio page: progress of a running fit, outcome of the last."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from components.forecast import value
from components.format import ago, local_time


def job_status(runs: Sequence[Any], *, zone: ZoneInfo, now: datetime) -> html.Div:
    """The forecast job: a progress bar while it runs, and how and when it last ended."""
    if not runs:
        return html.P(
            "The forecast job has not run yet; it starts with the scheduler and then runs "
            "every hour, refitting series that have a new complete day.",
            className="muted",
        )
    latest = runs[0]
    finished = next((r for r in runs if r.status != "running"), None)
    last = _finished_line(finished, zone=zone, now=now) if finished is not None else None
    if latest.status != "running":
        return html.Div(last)
    share = value(latest.progress)
    width = f"{100 * min(max(share or 0.0, 0.0), 1.0):.0f}%"
    return html.Div(
        [
            html.Div(
                [
                    html.Strong("Forecast run in progress"),
                    html.Span(
                        f" · started {local_time(latest.started_at, zone)} "
                        f"({ago(latest.started_at, now=now)}) · "
                        + (f"{width} done" if share is not None else "planning"),
                        className="muted",
                    ),
                ]
            ),
            html.Div(
                html.Div(className="forecast-progress-bar", style={"width": width}),
                className="forecast-progress",
                role="progressbar",
                **{"aria-valuenow": width.rstrip("%"), "aria-valuemin": 0, "aria-valuemax": 100},
            ),
            html.Div(["Previous: ", *last], className="small forecast-job-previous")
            if last
            else None,
        ],
        id="forecasts-job-running",
    )


def _finished_line(run: Any, *, zone: ZoneInfo, now: datetime) -> list[Any]:
    return [
        html.Span(run.status, className=f"pill {_RUN_PILLS.get(run.status, 'pill-muted')}"),
        html.Span(f" last run {local_time(run.started_at, zone)} ({ago(run.started_at, now=now)})"),
        html.Span(" · " + run_summary(run), className="muted"),
    ]


_RUN_PILLS = {"ok": "pill-ok", "failed": "pill-bad", "skipped": "pill-muted"}
_RUN_WORDS = (
    ("fitted", "fitted"),
    ("fallback", "fallback"),
    ("timed_out", "timed out"),
    ("failed", "failed"),
    ("insufficient", "too short"),
    ("skipped", "up to date"),
    ("deferred", "left for the next run"),
)


def run_summary(run: Any) -> str:
    """What a finished run did, from its detail counts, or its error."""
    if run.error:
        return str(run.error).splitlines()[0][:200]
    detail: Mapping[str, Any] = run.detail or {}
    parts = [f"{int(detail[k])} {word}" for k, word in _RUN_WORDS if value(detail.get(k))]
    seconds = value(detail.get("seconds"))
    if seconds is not None:
        parts.append(f"{seconds:.0f} s")
    return ", ".join(parts) or f"{run.rows} series"
