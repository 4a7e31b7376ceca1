"""The explanation of an episode in plain language and data (stored on Anomaly.explanation).

Pure: every fact is handed in; nothing is looked up here. Times are shown in the NOC's
configured time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from services.anomaly.changes import Window
from services.anomaly.detect import (
    DEFAULT_CONFIG,
    NORMAL_COVERAGE,
    NORMAL_SIGMA,
    band_sigma,
    normal_range,
)
from services.anomaly.episodes import PeriodResult


@dataclass(frozen=True)
class Subject:
    """What the episode is about: element and KPI as humans name them."""

    element: str
    kpi: str
    unit: str
    higher_is_worse: bool = True


@dataclass(frozen=True)
class Facts:
    """Everything around an episode that its explanation reports."""

    contributing: Sequence[dict[str, Any]] = ()
    peers: dict[str, Any] | None = None
    changes: Sequence[Window] = ()
    alarms: Sequence[dict[str, Any]] = ()
    quality: dict[str, Any] = field(default_factory=dict)
    similar: Sequence[dict[str, Any]] = ()
    revisions: Sequence[dict[str, Any]] = ()
    suppressed_reason: str | None = None


def fmt(value: float, unit: str) -> str:
    """A value with its unit, rounded for reading."""
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if 0 < magnitude < 0.1:
        # Small rates (packet loss 0.007 %) keep three significant digits, not "0.01".
        text = f"{value:.3g}"
    else:
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
        text = f"{value:,.{digits}f}"
    if unit in ("", "count"):
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def sigma_text(score: float) -> str:
    """A deviation in robust sigma, readable also when the series was nearly flat."""
    magnitude = abs(score)
    if magnitude >= 999.5:
        return "over 1000σ"
    return f"{magnitude:.0f}σ" if magnitude >= 100 else f"{magnitude:.1f}σ"


def normal_of(peak: PeriodResult) -> tuple[float, float]:
    """The normal range at the peak: expected +- NORMAL_SIGMA robust sigma."""
    low, high = normal_range(peak.expected, peak.band_low, peak.band_high)
    return float(low), float(high)


def alert_threshold(peak: PeriodResult) -> float:
    """The alert band's edge on the side the episode deviates to."""
    return peak.band_high if peak.observed >= peak.expected else peak.band_low


def range_text(low: float, high: float, unit: str) -> str:
    """A range with its unit once, e.g. 38.1–44.0%."""
    return f"{fmt(low, '')}–{fmt(high, unit)}"


def seasonal(peak: PeriodResult, unit: str, zone: tzinfo) -> dict[str, Any]:
    """Typical value and normal range for the peak's weekday and time of day."""
    local = peak.period_end.astimezone(zone)
    slot = f"{local:%A %H:%M}"
    low, high = normal_of(peak)
    return {
        "slot": slot,
        "typical": round(peak.expected, 4),
        "normal_range": [round(low, 6), round(high, 6)],
        "text": (
            f"Typical for {slot} is {fmt(peak.expected, unit)}, "
            f"normally within {range_text(low, high, unit)}."
        ),
    }


def normal_doc(peak: PeriodResult, unit: str) -> dict[str, Any]:
    """The two ranges and what each means, in the words the chart and panels use."""
    low, high = normal_of(peak)
    threshold = alert_threshold(peak)
    alert = band_sigma(DEFAULT_CONFIG)
    return {
        "range": [round(low, 6), round(high, 6)],
        "sigma": NORMAL_SIGMA,
        "coverage": NORMAL_COVERAGE,
        "text": (
            f"Normal range {range_text(low, high, unit)}: the expected value ± "
            f"{NORMAL_SIGMA:g} robust σ, where about {NORMAL_COVERAGE:.0%} of ordinary "
            "periods fall."
        ),
        "alert_threshold": round(threshold, 6),
        "alert_sigma": round(alert, 2),
        "alert_text": (
            f"Alert threshold {fmt(threshold, unit)}: ± {alert:.0f} robust σ from the expected "
            "value, where one period alone is more likely than not an anomaly."
        ),
    }


def summary(
    subject: Subject,
    peak: PeriodResult,
    *,
    started_at: datetime,
    ended_at: datetime | None,
    zone: tzinfo,
    facts: Facts,
) -> str:
    """One or two sentences a NOC operator can read at a glance."""
    direction = "above" if peak.observed >= peak.expected else "below"
    since = started_at.astimezone(zone)
    if ended_at is None:
        when = f"from {since:%a %H:%M}, ongoing"
    elif ended_at == started_at:
        when = f"at {since:%a %H:%M}"
    else:
        when = f"from {since:%a %H:%M} to {ended_at.astimezone(zone):%H:%M}"
    normal = range_text(*normal_of(peak), subject.unit)
    threshold = fmt(alert_threshold(peak), subject.unit)
    if peak.band_low <= peak.observed <= peak.band_high:
        # No single period crossed the alert threshold: the detector's slower statistic saw
        # the level of the last hour move away from its long-run reference (a build-up or a
        # shift).
        first = (
            f"{subject.kpi} on {subject.element} moved {direction} its usual level"
            f"{'' if ended_at == started_at else ' and stayed there'} {when}: "
            f"{fmt(peak.observed, subject.unit)} against an expected "
            f"{fmt(peak.expected, subject.unit)} (normal range {normal}, "
            f"{sigma_text(peak.score)}). It is a sustained shift rather than a spike; no single "
            f"period crossed the alert threshold {threshold}."
        )
    else:
        first = (
            f"{subject.kpi} on {subject.element} reached {fmt(peak.observed, subject.unit)}, "
            f"{direction} the expected {fmt(peak.expected, subject.unit)} "
            f"(normal range {normal}, {sigma_text(peak.score)}; alert threshold {threshold}) "
            f"{when}."
        )
    extras = []
    if facts.contributing:
        names = ", ".join(c["kpi"] for c in facts.contributing[:3])
        extras.append(f"also deviating: {names}")
    affected = (facts.peers or {}).get("affected") or []
    if affected:
        extras.append(f"{len(affected)} peer element(s) deviate at the same time")
    if facts.alarms:
        extras.append(f"{len(facts.alarms)} overlapping alarm(s)")
    if facts.suppressed_reason:
        extras.append(facts.suppressed_reason.lower().replace("inside", "inside a", 1))
    elif facts.changes:
        extras.append(f"overlaps {facts.changes[0].kind} “{facts.changes[0].title}”")
    if not extras:
        return first
    text = "; ".join(extras)
    return f"{first} {text[0].upper()}{text[1:]}."


def explanation(
    subject: Subject,
    peak: PeriodResult,
    *,
    started_at: datetime,
    ended_at: datetime | None,
    zone: tzinfo,
    facts: Facts,
) -> dict[str, Any]:
    """The explanation dict stored on the Anomaly row."""
    doc: dict[str, Any] = {
        "summary": summary(
            subject, peak, started_at=started_at, ended_at=ended_at, zone=zone, facts=facts
        ),
        "unit": subject.unit,
        "direction": "above" if peak.observed >= peak.expected else "below",
        "observed": round(peak.observed, 6),
        "expected": round(peak.expected, 6),
        # The alert band (kept under its old key for API readers); "normal" is what people see.
        "band": [round(peak.band_low, 6), round(peak.band_high, 6)],
        "normal": normal_doc(peak, subject.unit),
        "sigma": round(peak.score, 3),
        "seasonal": seasonal(peak, subject.unit, zone),
        "contributing_kpis": list(facts.contributing),
        "changes": [
            {
                "id": w.id,
                "title": w.title,
                "kind": w.kind,
                "starts_at": w.starts_at.isoformat(),
                "ends_at": w.ends_at.isoformat(),
            }
            for w in facts.changes
        ],
        "alarms": list(facts.alarms),
        "data_quality": {
            "flags": list(facts.quality.get("flags", [])),
            "text": str(facts.quality.get("text", "")),
        },
        "similar": list(facts.similar),
        "revisions": list(facts.revisions),
    }
    if facts.peers:
        doc["peers"] = facts.peers
    return doc


def peers_doc(
    group: str, size: int, median: float | None, affected: Sequence[dict[str, Any]], unit: str
) -> dict[str, Any]:
    """The peers section: the comparison group and which members deviate too."""
    med = float("nan") if median is None else float(median)
    if affected:
        text = f"{len(affected)} of {size} {group} deviate at the same time."
    else:
        text = f"None of the other {max(0, size - 1)} {group} deviate: the problem is local."
    if median is not None:
        text += f" Peer median {fmt(med, unit)}."
    return {
        "group": group,
        "size": int(size),
        "median": None if median is None else round(med, 6),
        "affected": list(affected),
        "text": text,
    }
