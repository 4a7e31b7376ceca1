"""Which AI output a use case acts on: its trigger ("anomaly:congestion", "forecast:...").

An anomaly trigger names a pattern: the element type and the KPIs (with the direction of
the deviation) that signal it. A trigger naming a KPI instead ("anomaly:latency_ms")
matches any deviation of that KPI. Forecast triggers act on capacity breach risk.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.db.models import Anomaly, CapacityRisk, Element, Kpi, UseCase


@dataclass(frozen=True)
class Pattern:
    """What an anomaly must look like to match a named trigger."""

    element_type: str
    kpis: dict[str, str]  # KPI name -> "above" or "below" the expected value


ANOMALY_PATTERNS: dict[str, Pattern] = {
    "congestion": Pattern(
        "cell", {"prb_util_dl": "above", "prb_util_ul": "above", "active_users": "above"}
    ),
    "sleeping_cell": Pattern(
        "cell",
        {"active_users": "below", "dl_throughput_mbps": "below", "prb_util_dl": "below"},
    ),
    "link_degraded": Pattern("link", {"latency_ms": "above", "packet_loss_pct": "above"}),
}
FORECAST_TRIGGERS = ("forecast:capacity_breach", "forecast:breach")
# A forecast breach is worth a planning ticket once it is more likely than not in 90 days.
MIN_BREACH_PROBABILITY = 0.5


def trigger_kind(trigger: str) -> str:
    """ "anomaly", "forecast" or "" for a trigger string."""
    head, _, _ = (trigger or "").partition(":")
    return head if head in ("anomaly", "forecast") else ""


def direction(anomaly: Anomaly) -> str:
    """ "above" or "below": which side of the expected value the episode lies."""
    return "above" if anomaly.observed >= anomaly.expected else "below"


def matches_anomaly(case: UseCase, *, anomaly: Anomaly, element: Element, kpi: Kpi) -> bool:
    """True when the use case's trigger fires on this anomaly episode."""
    if not case.enabled or trigger_kind(case.trigger) != "anomaly":
        return False
    if case.domain and element.domain and case.domain.lower() != element.domain.lower():
        return False
    name = case.trigger.partition(":")[2]
    pattern = ANOMALY_PATTERNS.get(name)
    if pattern is None:
        return kpi.name == name
    if element.element_type != pattern.element_type:
        return False
    wanted = pattern.kpis.get(kpi.name)
    return wanted is not None and wanted == direction(anomaly)


def matches_risk(case: UseCase, *, risk: CapacityRisk, element: Element) -> bool:
    """True when the use case's trigger fires on this capacity breach risk."""
    if not case.enabled or case.trigger not in FORECAST_TRIGGERS:
        return False
    if case.domain and element.domain and case.domain.lower() != element.domain.lower():
        return False
    return max(risk.p_breach_30, risk.p_breach_60, risk.p_breach_90) >= MIN_BREACH_PROBABILITY


def risk_severity(risk: CapacityRisk) -> str:
    """Severity of a breach risk: how soon and how likely."""
    if risk.p_breach_30 >= 0.8:
        return "critical"
    if risk.p_breach_30 >= 0.5 or risk.p_breach_60 >= 0.8:
        return "major"
    return "minor"
