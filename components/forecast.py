"""Forecast portfolio builders: grid rows, summary tiles, job progress, CSV, shared wording.

Text that came from data (element names, status details) is only placed as component
children or grid cell values, which render as text, never as markup.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from dash import html

from components.cards import empty_state, stat_tile, tile_row
from components.format import count, short_time
from services.csv_safe import safe_cell

# A series is "at risk" within a horizon when at least half its sampled futures breach
# (the same rule as `beacon forecasts status`).
AT_RISK = 0.5
STATUS_TEXT = {
    "ok": "ok",
    "insufficient_history": "insufficient history",
    "fallback": "fallback",
    "failed": "failed",
}
STATUS_PILLS = {
    "ok": "pill pill-ok",
    "insufficient_history": "pill pill-muted",
    "fallback": "pill pill-warn",
    "failed": "pill pill-bad",
}
MODEL_TEXT = {"prophet": "Prophet", "seasonal_naive": "Seasonal naive"}
BREACH_RULE = (
    "A sampled future breaches on the first day its 7-day rolling median of the daily "
    "busy-hour value is past the capacity threshold: a sustained breach, not one noisy day."
)
NUMBER = {"type": "numericColumn", "filter": False}
PERCENT_FORMAT = {"function": "params.value == null ? '—' : d3.format('.0f')(params.value) + ' %'"}
MAPE_FORMAT = {"function": "params.value == null ? '—' : d3.format('.1f')(params.value) + ' %'"}
P_CELLS = {
    "forecast-p-high": "params.value != null && params.value >= 50",
    "forecast-p-mid": "params.value != null && params.value >= 10 && params.value < 50",
}
# The grid says it shorter; the status detail is the cell's tooltip.
GRID_STATUS = {**STATUS_TEXT, "insufficient_history": "too short"}
STATUS_CELLS = {
    f"forecast-cell-{key}": f"params.value === '{text}'"
    for key, text in GRID_STATUS.items()
    if key != "ok"
}
ROW_CLASSES = {"forecast-row-urgent": "params.data.p30 != null && params.data.p30 >= 50"}


def _col(field: str, header: str, width: int, **extra: Any) -> dict[str, Any]:
    """A column that cannot be filtered in the grid (the page's filters cover every row)."""
    return {
        "field": field,
        "headerName": header,
        "minWidth": width,
        "filter": False,
        "wrapHeaderText": True,
        "autoHeaderHeight": True,
        **extra,
    }


def _share(field: str, header: str, width: int, **extra: Any) -> dict[str, Any]:
    return _col(field, header, width, **NUMBER, valueFormatter=PERCENT_FORMAT, **extra)


# Grouped, short headers: the whole portfolio fits a desk screen without scrolling sideways.
PORTFOLIO_COLUMNS: list[dict[str, Any]] = [
    _col("link", "Element", 125, cellRenderer="markdown", tooltipField="dn", pinned="left"),
    _col("kpi", "KPI", 100),
    _col("where", "Region · domain", 126, tooltipField="where"),
    {
        "headerName": "P(breach) within",
        "children": [
            _share(
                f"p{h}",
                f"{h} d",
                60,
                cellClassRules=P_CELLS,
                **({"sort": "desc"} if h == 90 else {}),
            )
            for h in (30, 60, 90)
        ],
    },
    {
        "headerName": "Likely breach",
        "children": [
            # ISO days sort correctly as text; as "text" AG Grid does not blank the dashes.
            _col("breach", "Median", 96, cellDataType="text"),
            _col("breach_range", "10–90 %", 118),
        ],
    },
    _col("now", "Last / capacity", 110),
    {
        "headerName": "Model and backtest",
        "children": [
            _col(
                "model",
                "Model",
                84,
                cellClassRules={"forecast-cell-naive": "params.value.startsWith('Naive')"},
                tooltipField="model_note",
            ),
            _col(
                "mape",
                "MAPE",
                62,
                **NUMBER,
                valueFormatter=MAPE_FORMAT,
                headerTooltip="average backtest miss of the model that produced the forecast",
            ),
            _col(
                "naive_mape",
                "Naive MAPE",
                62,
                **NUMBER,
                valueFormatter=MAPE_FORMAT,
                headerTooltip="average backtest miss of the seasonal-naive baseline",
            ),
            _share(
                "cov80",
                "80 % cov.",
                66,
                headerTooltip="share of backtest days inside the 80 % interval",
            ),
        ],
    },
    _col("status", "Status", 98, cellClassRules=STATUS_CELLS, tooltipField="status_detail"),
    _col("fitted", "Fitted", 94),
]
CSV_COLUMNS = (
    "element",
    "dn",
    "region",
    "domain",
    "kpi",
    "unit",
    "threshold",
    "last_value",
    "p_breach_30",
    "p_breach_60",
    "p_breach_90",
    "breach_date",
    "breach_date_low",
    "breach_date_high",
    "model",
    "model_version",
    "status",
    "status_detail",
    "mape",
    "baseline_mape",
    "coverage_80",
    "coverage_95",
    "fitted_at",
)


def value(raw: Any) -> float | None:
    """A finite float, or None for missing, NaN and non-numbers."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def probability(raw: Any) -> str:
    """`62 %`; `<1 %` and `>99 %` at the ends, so a near-certainty never reads as certain."""
    p = value(raw)
    if p is None:
        return "—"
    if 0 < p < 0.005:
        return "<1 %"
    if 0.995 < p < 1:
        return ">99 %"
    return f"{100 * p:.0f} %"


def percent(raw: Any) -> float | None:
    """A share 0–1 as a rounded percentage number for grids (None stays None)."""
    p = value(raw)
    return None if p is None else round(100 * p, 1)


def day(raw: Any) -> str:
    """A calendar day `2027-01-14`; an em dash when unknown."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "—"
    try:
        stamp = pd.Timestamp(raw)
    except (TypeError, ValueError):
        return "—"
    return "—" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def breach_range(low: Any, high: Any, *, horizon: int = 90, short: bool = False) -> str:
    """The 10th–90th percentile of breach dates; the top end may lie beyond the horizon."""
    if day(low) == "—":
        return "—"
    first, last = day(low), day(high)
    if short:  # `Dec 17 – Jan 08`: the year is plain from the median next to it
        first = pd.Timestamp(first).strftime("%b %d")
        last = pd.Timestamp(last).strftime("%b %d") if last != "—" else last
    if last == "—":
        return f"from {first}" if short else f"{first} – beyond {horizon} days"
    return f"{first} – {last}"


def with_unit(raw: Any, unit: str) -> str:
    """A measurement with its unit (`count` is implied), three significant figures."""
    number = value(raw)
    if number is None:
        return "—"
    text = count(number) if abs(number) >= 1000 else f"{number:.3g}"
    return text if unit in ("", "count") else f"{text} {unit}"


def model_name(model: Any, status: Any = None, *, short: bool = False) -> str:
    """`Prophet`, `Seasonal naive`, and `(fallback)` when the service fell back to it."""
    if status in ("insufficient_history", "failed"):
        return "none"
    text = MODEL_TEXT.get(str(model), str(model or "—"))
    if short:  # the grid's status column already says "fallback"
        return "Naive" if model == "seasonal_naive" else text
    return f"{text} (fallback)" if status == "fallback" else text


def status_pill(status: str) -> html.Span:
    """A pill for ok, insufficient history, fallback or failed."""
    return html.Span(
        STATUS_TEXT.get(status, status), className=STATUS_PILLS.get(status, "pill pill-muted")
    )


def portfolio_rows(
    frame: pd.DataFrame, *, zone: ZoneInfo, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The portfolio as grid rows: text for reading, numbers (percent) for sorting."""
    rows = []
    for rec in frame.to_dict("records"):
        unit = str(rec.get("unit") or "")
        threshold = value(rec.get("threshold"))
        fitted = rec.get("fitted_at")
        rows.append(
            {
                "id": f"{rec['element_id']}-{rec['kpi']}",
                "link": f"[{_md(rec.get('element_name') or rec.get('dn'))}]"
                f"(/forecasts/{rec['element_id']}/{rec['kpi']})",
                "dn": rec.get("dn") or "",
                "kpi": rec.get("kpi") or "",
                "region": rec.get("region") or "—",
                "domain": rec.get("domain") or "—",
                "where": f"{rec.get('region') or '—'} · {rec.get('domain') or '—'}",
                "p30": percent(rec.get("p_breach_30")),
                "p60": percent(rec.get("p_breach_60")),
                "p90": percent(rec.get("p_breach_90")),
                "breach": day(rec.get("breach_date")),
                "breach_range": breach_range(
                    rec.get("breach_date_low"), rec.get("breach_date_high"), short=True
                ),
                "now": f"{with_unit(rec.get('last_value'), unit)} / "
                + (with_unit(threshold, unit) if threshold is not None else "none"),
                "model": model_name(rec.get("model"), rec.get("status"), short=True),
                "model_note": f"{model_name(rec.get('model'), rec.get('status'))} · "
                f"{rec.get('model_version') or ''}",
                "mape": percent(rec.get("mape")),
                "naive_mape": percent(rec.get("baseline_mape")),
                "cov80": percent(rec.get("coverage_80")),
                "status": GRID_STATUS.get(str(rec.get("status")), str(rec.get("status"))),
                "status_detail": str(rec.get("status_detail") or ""),
                "fitted": short_time(_moment(fitted), zone, now=now),
            }
        )
    return rows


def _md(text: Any) -> str:
    """Escape markdown so an element name can only ever be link text."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()<>#+-.!|" else c for c in str(text or "?"))


def _moment(raw: Any) -> datetime | None:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    stamp = pd.Timestamp(raw)
    if pd.isna(stamp):
        return None
    return (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).to_pydatetime()


def summary_tiles(frame: pd.DataFrame) -> html.Div:
    """Series at risk within 30/60/90 days, then how many stand on weaker ground."""
    status = frame["status"] if len(frame) else pd.Series(dtype=str)

    def at_risk(h: int) -> int:
        column = f"p_breach_{h}"
        return (
            int((pd.to_numeric(frame[column], errors="coerce") >= AT_RISK).sum())
            if len(frame)
            else 0
        )

    tiles = [
        stat_tile(
            f"At risk ≤ {h} d",
            count(at_risk(h)),
            detail="P(breach) ≥ 50 %",
            tone=tone if at_risk(h) else "ok",
            id_=f"forecasts-at-risk-{h}",
        )
        for h, tone in ((30, "bad"), (60, "bad"), (90, "warn"))
    ]
    fallback = int((status == "fallback").sum())
    short = int((status == "insufficient_history").sum())
    failed = int((status == "failed").sum())
    tiles += [
        stat_tile("Series", count(len(frame)), detail="element × KPI forecasts"),
        stat_tile(
            "Fallbacks",
            count(fallback),
            detail="seasonal naive after a Prophet error or timeout",
            tone="warn" if fallback else "neutral",
        ),
        stat_tile(
            "Too little history",
            count(short),
            detail=f"{failed} failed" if failed else "forecast once data accrues",
            tone="bad" if failed else "neutral",
        ),
    ]
    return tile_row(tiles)


def portfolio_empty(*, stored: bool) -> html.Div:
    """Why the grid is empty: no forecasts yet, or the filters exclude every series."""
    if stored:
        return empty_state(
            "No forecasts match these filters", "Clear a filter or lower the minimum probability."
        )
    return empty_state(
        "No forecasts yet",
        "The nightly forecast job fits every capacity KPI once a series has four weeks of "
        "daily busy-hour history. Engineers can run it now with: beacon forecasts refresh",
    )


def portfolio_csv(frame: pd.DataFrame) -> str:
    """The filtered portfolio for capacity planning: raw shares (0–1), ISO dates, UTC times."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rec in frame.to_dict("records"):
        rec = {**rec, "element": rec.get("element_name")}
        writer.writerow([_csv_cell(name, rec.get(name)) for name in CSV_COLUMNS])
    return out.getvalue()


def _csv_cell(name: str, raw: Any) -> str:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    if name.startswith("breach_date"):
        return day(raw).replace("—", "")
    if isinstance(raw, datetime | pd.Timestamp):
        moment = _moment(raw)
        return moment.isoformat() if moment else ""
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, float):
        return f"{raw:.4g}" if name not in ("threshold", "last_value") else f"{raw:g}"
    # Cells starting with = + - @ open as formulas in spreadsheets: export them as text.
    return safe_cell(str(raw))
