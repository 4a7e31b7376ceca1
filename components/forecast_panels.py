"""Forecast series panels: the page's view of a stored series, banners, risk, backtest quality.

Risks are plain dicts: p_breach_30/60/90 (0–1), breach_date, breach_date_low, breach_date_high.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from dash import html

from components.cards import notice, stat_tile, tile_row
from components.forecast import (
    BREACH_RULE,
    MODEL_TEXT,
    breach_range,
    day,
    model_name,
    probability,
    value,
    with_unit,
)
from components.format import age, local_time

HORIZONS = (30, 60, 90)
# Empirical coverage within this many points of nominal reads as "about right".
COVERAGE_SLACK = 0.05


def status_banner(status: str, detail: str, *, model: str, note: str = "") -> html.Div | None:
    """Why this forecast deserves more (or less) caution than usual, in one box."""
    detail = detail.strip()
    if status == "insufficient_history":
        return notice(
            "Not enough history to forecast yet. " + (detail or "The series is too short."),
            tone="warn",
            id_="forecast-series-banner",
        )
    if status == "fallback":
        return notice(
            "Fallback forecast. "
            + (detail or "Prophet could not produce this forecast.")
            + " The seasonal-naive baseline (the same weekday a week earlier) stands in, with "
            "intervals from its own backtest errors: a rough guide until Prophet fits again.",
            tone="warn",
            id_="forecast-series-banner",
        )
    if status == "failed":
        return notice(
            "The last forecast run failed for this series; no forecast is shown. "
            + (detail or "The job log has the cause."),
            tone="bad",
            id_="forecast-series-banner",
        )
    if model != "prophet":
        text = note or "The seasonal-naive baseline beat Prophet in backtest, so it produced this."
        return notice(text, tone="info", id_="forecast-series-banner")
    return None


def age_notice(fitted_at: Any, *, now: datetime, max_age_days: int = 2) -> html.Div | None:
    """A warning when the stored forecast is older than the nightly cadence explains."""
    fitted = _moment(fitted_at)
    if fitted is None or now - fitted <= timedelta(days=max_age_days):
        return None
    return notice(
        f"This forecast was fitted {age(fitted, now=now)} ago and has not been refreshed "
        "since; check the forecast job on the Data health page.",
        tone="warn",
        id_="forecast-series-old",
    )


def risk_tiles(
    risk: Mapping[str, Any] | None,
    *,
    threshold: float | None,
    unit: str,
    last_value: float | None,
    higher_is_worse: bool = True,
    horizon: int = 90,
    prefix: str = "forecast-series",
) -> html.Div:
    """P(breach) by horizon, the likely breach date with its range, and where it stands now."""
    now = stat_tile(
        "Latest busy hour",
        with_unit(last_value, unit),
        detail=f"capacity {with_unit(threshold, unit)}" if threshold is not None else None,
        id_=f"{prefix}-last",
    )
    if threshold is None:
        return tile_row(
            [
                now,
                stat_tile(
                    "Breach risk",
                    "n/a",
                    detail="this KPI has no capacity threshold: forecast only",
                    id_=f"{prefix}-p90",
                ),
            ]
        )
    if risk is None:
        return tile_row(
            [
                now,
                stat_tile(
                    "Breach risk",
                    "—",
                    detail="not estimated: no forecast with sample paths is stored",
                    id_=f"{prefix}-p90",
                ),
            ]
        )
    direction = "above" if higher_is_worse else "below"
    tiles = [
        stat_tile(
            f"P(breach) ≤ {h} d",
            probability(risk.get(f"p_breach_{h}")),
            detail=f"sustained {direction} {with_unit(threshold, unit)}",
            tone=_tone(value(risk.get(f"p_breach_{h}"))),
            id_=f"{prefix}-p{h}",
        )
        for h in HORIZONS
    ]
    likely, spread = _likely(risk, horizon)
    tiles.append(
        stat_tile(
            "Likely breach",
            likely,
            detail=spread,
            tone=_tone(value(risk.get(f"p_breach_{horizon}"))),
            id_=f"{prefix}-date",
        )
    )
    return tile_row([*tiles, now])


def _likely(risk: Mapping[str, Any], horizon: int) -> tuple[str, str]:
    """The median breach date and its 10–90 % range, or why there is none."""
    low, high = risk.get("breach_date_low"), risk.get("breach_date_high")
    if day(low) == "—":
        return "none", f"fewer than 1 in 10 futures breach within {horizon} d"
    if day(risk.get("breach_date")) == "—":
        return "none likely", f"earliest 10 % of futures breach by {day(low)}"
    return day(risk.get("breach_date")), f"10–90 %: {breach_range(low, high, horizon=horizon)}"


def _tone(p: float | None) -> str:
    if p is None:
        return "neutral"
    return "bad" if p > 0.5 else "warn" if p >= 0.1 else "ok"


def backtest_panel(backtest: Mapping[str, Any], *, model: str, status: str) -> html.Div:
    """Backtest quality in plain language: error vs the naive baseline, coverage, the choice."""
    if not backtest:
        text = {
            "insufficient_history": "No backtest yet: there is too little history to hold "
            "any back.",
            "fallback": "No backtest is stored with this fallback forecast, so its error is "
            "unknown; treat the bands with extra caution.",
        }.get(status, "No backtest is stored for this forecast.")
        return html.Div(html.P(text, className="muted"), id="forecast-series-backtest")
    chosen = str(backtest.get("choice") or model)
    cutoffs = int(value(backtest.get("cutoffs")) or 0)
    horizon = int(value(backtest.get("horizon")) or 0)
    lines: list[Any] = []
    if backtest.get("note"):
        lines.append(html.P(html.Strong(str(backtest["note"])), className="forecast-note"))
    produced = model_name(model, status)
    lines.append(
        html.P(
            f"{produced} produced this forecast. Both models were scored by rolling-origin "
            f"backtest: fitted up to {cutoffs} past cutoffs and checked against the "
            f"{horizon} days that followed each."
        )
    )
    rows = []
    for key in ("prophet", "seasonal_naive"):
        scores = backtest.get(key)
        if not isinstance(scores, Mapping):
            continue
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [MODEL_TEXT.get(key, key)]
                        + (
                            [" ", html.Span("chosen", className="pill pill-ok")]
                            if key == chosen
                            else []
                        )
                    ),
                    html.Td(_pct(scores.get("mape")), className="num"),
                    html.Td(_coverage_cell(scores.get("coverage_80"), 0.8), className="num"),
                    html.Td(_coverage_cell(scores.get("coverage_95"), 0.95), className="num"),
                ]
            )
        )
    if rows:
        lines.append(
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Model"),
                                html.Th("MAPE (avg. miss)", className="num"),
                                html.Th("80 % interval covered", className="num"),
                                html.Th("95 % interval covered", className="num"),
                            ]
                        )
                    ),
                    html.Tbody(rows),
                ],
                className="table forecast-backtest",
            )
        )
    used = backtest.get(chosen) if isinstance(backtest.get(chosen), Mapping) else {}
    lines.append(html.P(_coverage_sentence(used or {}, backtest)))
    modes = backtest.get("modes")
    if isinstance(modes, Mapping) and len(modes) > 1:
        scored = ", ".join(
            f"{mode} {_pct(m.get('mape'))}" for mode, m in modes.items() if isinstance(m, Mapping)
        )
        lines.append(
            html.P(
                f"Prophet's seasonality: {backtest.get('prophet_mode') or 'additive'}, the "
                f"lower backtest MAPE of the modes tried ({scored}).",
                className="muted",
            )
        )
    return html.Div(lines, id="forecast-series-backtest")


def _pct(raw: Any) -> str:
    number = value(raw)
    return "—" if number is None else f"{100 * number:.1f} %"


def _coverage_cell(raw: Any, nominal: float) -> Any:
    number = value(raw)
    if number is None:
        return "—"
    gap = number - nominal
    css = "" if abs(gap) <= COVERAGE_SLACK else "forecast-off"
    return html.Span(f"{100 * number:.0f} % (of {100 * nominal:.0f})", className=css)


def _coverage_sentence(scores: Mapping[str, Any], backtest: Mapping[str, Any]) -> str:
    cov = value(scores.get("coverage_80"))
    scale = value(backtest.get("scale_80"))
    parts = []
    if cov is not None:
        if abs(cov - 0.8) <= COVERAGE_SLACK:
            verdict = "about what it claims"
        elif cov < 0.8:
            verdict = "less than it claims (too narrow, over-confident)"
        else:
            verdict = "more than it claims (wider than needed)"
        parts.append(
            f"In backtest the 80 % interval held {100 * cov:.0f} % of the actual days: {verdict}."
        )
    if scale is not None and abs(scale - 1.0) > 0.02:
        how = "widened" if scale > 1 else "narrowed"
        parts.append(
            f"The stored bands and sample paths are {how} ×{scale:.2f} (80 %) and "
            f"×{value(backtest.get('scale_95')) or 1.0:.2f} (95 %) from the backtest errors "
            "(conformal calibration), so an 80 % band should cover about 80 % of future days."
        )
    elif scale is not None:
        parts.append(
            "No recalibration was needed: the backtest intervals already covered as claimed."
        )
    return " ".join(parts) or "The backtest did not score interval coverage."


def model_facts(meta: Mapping[str, Any], *, zone: ZoneInfo) -> html.Dl:
    """Which model, version, when fitted, on what window, how long it took."""
    start, end = meta.get("training_start"), meta.get("training_end")
    seconds = value(meta.get("fit_seconds"))
    facts = [
        ("Model", model_name(meta.get("model"), meta.get("status"))),
        ("Version", html.Span(str(meta.get("model_version") or "—"), className="mono")),
        ("Fitted", local_time(_moment(meta.get("fitted_at")), zone)),
        ("Trained on", f"{day(start)} – {day(end)} (daily busy hour)"),
        ("Horizon", f"{int(value(meta.get('horizon_days')) or 90)} days"),
        ("Fit time", f"{seconds:.1f} s" if seconds is not None else "—"),
        ("Breach rule", BREACH_RULE),
    ]
    children: list[Any] = []
    for label, text in facts:
        children += [html.Dt(label), html.Dd(text)]
    return html.Dl(children, className="kv")


def _moment(raw: Any) -> datetime | None:
    if raw is None:
        return None
    stamp = pd.Timestamp(raw)
    if pd.isna(stamp):
        return None
    return (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).to_pydatetime()


class SeriesView:
    """The fields this page shows, read once from the stored series detail."""

    def __init__(self, detail: Any) -> None:
        element, kpi, meta = (
            _part(detail, "element"),
            _part(detail, "kpi"),
            _part(detail, "forecast"),
        )
        self.element_id = int(_get(element, "id"))
        self.element_name = str(_get(element, "name") or _get(element, "dn"))
        self.dn = str(_get(element, "dn") or "")
        self.region = _get(element, "region")
        self.domain = str(_get(element, "domain") or "")
        self.kpi = str(_get(kpi, "name"))
        self.unit = str(_get(kpi, "unit") or "")
        self.threshold = value(_get(kpi, "threshold"))
        self.higher_is_worse = bool(_get(kpi, "higher_is_worse", True))
        self.meta = meta
        self.status = str(_get(meta, "status") or "ok")
        self.status_detail = str(_get(meta, "status_detail") or "")
        self.model = str(_get(meta, "model") or "prophet")
        self.backtest = _get(meta, "backtest") or {}
        self.note = str(self.backtest.get("note") or "") if isinstance(self.backtest, dict) else ""
        self.components = _get(meta, "components") or {}
        self.changepoints = _get(meta, "changepoints") or []
        self.horizon = int(value(_get(meta, "horizon_days")) or 90)
        self.history: pd.DataFrame = _get(detail, "history")
        self.points: pd.DataFrame = _get(detail, "points")
        self.risk = _get(detail, "risk")
        self.paths = _samples(_get(detail, "paths"), len(self.points))
        finite = self.history["y"].dropna() if len(self.history) else pd.Series(dtype=float)
        self.last_value = float(finite.iloc[-1]) if len(finite) else None

    @classmethod
    def of(cls, detail: Any) -> SeriesView:
        return cls(detail)


def _part(detail: Any, name: str) -> Any:
    part = _get(detail, name)
    return detail if part is None else part


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _samples(paths: Any, horizon: int) -> np.ndarray | None:
    """Stored paths as (horizon, n_paths), whichever way round they were kept."""
    if paths is None:
        return None
    array = np.asarray(paths, dtype=float)
    if array.ndim != 2 or not array.size or horizon == 0:
        return None
    if array.shape[0] != horizon and array.shape[1] == horizon:
        array = array.T
    return array if array.shape[0] == horizon else None
