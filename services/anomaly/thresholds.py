"""Alerting thresholds per KPI and per use case: explicit, visible, changed by engineers, audited.

A threshold is the minimum calibrated confidence (0-1) at which a period counts as anomalous
for that KPI, or at which a use case acts on an anomaly. Unset means the detector's default.

Periods and episodes: a period at or above the threshold opens (or extends) an episode;
the episode then reports its own calibrated confidence (services/anomaly/calibration.py,
episode table): the probability that the episode as a whole overlaps a real incident.
That is below a period's for short, uncorroborated episodes, so an episode can report less
than the threshold that opened it. 0.5 keeps one meaning at both levels: "more likely than
not" (a period inside an incident; an episode overlapping one), and filtering the feed at
0.5 keeps the episodes that are more likely real than not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from services import audit, kv
from services.audit import Actor
from services.errors import Forbidden, InvalidInput

SETTING_KEY = "anomaly.thresholds"
# The product's own default: an anomaly is reported when its calibrated confidence reaches it.
# 0.5 = "more likely than not": the shipped table (fitted on simulated network KPIs) reaches
# it and is reliable there on held-out data (BENCHMARKS.md, "Anomaly detection").
DEFAULT_MIN_CONFIDENCE = 0.5
EDITOR_ROLES = frozenset({"engineer", "admin"})
SCOPES = ("kpi", "use_case")


@dataclass(frozen=True)
class Thresholds:
    """The effective thresholds: overrides by KPI name and by use-case key, else the default."""

    default: float = DEFAULT_MIN_CONFIDENCE
    kpi: dict[str, float] = field(default_factory=dict)
    use_case: dict[str, float] = field(default_factory=dict)

    def for_kpi(self, name: str) -> float:
        """Minimum confidence for an anomaly on this KPI."""
        return self.kpi.get(name, self.default)

    def for_use_case(self, key: str) -> float:
        """Minimum confidence for this use case to act on an anomaly."""
        return self.use_case.get(key, self.default)


def effective_thresholds(session: Session) -> Thresholds:
    """The stored overrides merged over the default."""
    stored = kv.get_value(session, SETTING_KEY, {}) or {}
    return Thresholds(
        default=float(stored.get("default", DEFAULT_MIN_CONFIDENCE)),
        kpi={k: float(v) for k, v in (stored.get("kpi") or {}).items()},
        use_case={k: float(v) for k, v in (stored.get("use_case") or {}).items()},
    )


def set_threshold(
    session: Session, *, scope: str, name: str, min_confidence: float | None, actor: Actor
) -> Thresholds:
    """Set (or, with None, clear) one override; engineers and admins only; audited."""
    if actor.role not in EDITOR_ROLES:
        raise Forbidden("Only engineers and admins change detection thresholds.")
    if scope not in SCOPES:
        raise InvalidInput(f"Unknown threshold scope {scope!r}; use one of {', '.join(SCOPES)}.")
    if not name.strip():
        raise InvalidInput("Name the KPI or use case the threshold applies to.")
    if min_confidence is not None and not 0.0 < min_confidence <= 1.0:
        raise InvalidInput("A threshold is a confidence above 0 and at most 1.")
    stored = dict(kv.get_value(session, SETTING_KEY, {}) or {})
    overrides = dict(stored.get(scope) or {})
    before = overrides.get(name)
    if min_confidence is None:
        overrides.pop(name, None)
    else:
        overrides[name] = round(float(min_confidence), 4)
    stored[scope] = overrides
    kv.set_value(
        session,
        SETTING_KEY,
        stored,
        by=actor.name,
        description="Minimum calibrated confidence per KPI and per use case",
    )
    audit.record(
        session,
        actor=actor,
        action="anomaly.threshold.set",
        object_type=scope,
        object_id=name,
        before={"min_confidence": before},
        after={"min_confidence": overrides.get(name)},
    )
    return effective_thresholds(session)


@dataclass(frozen=True)
class ThresholdRow:
    """One line of the thresholds panel: what applies to a KPI or use case, and why."""

    scope: str  # kpi, use_case
    name: str
    label: str
    effective: float
    override: float | None


def threshold_rows(session: Session) -> list[ThresholdRow]:
    """Every KPI and use case with its effective threshold; overrides kept even if unknown."""
    from sqlalchemy import select

    from services.db.models import Kpi, UseCase

    current = effective_thresholds(session)
    rows: list[ThresholdRow] = []
    kpis = {
        k.name: k.description or k.name for k in session.scalars(select(Kpi).order_by(Kpi.name))
    }
    use_cases = {u.key: u.name for u in session.scalars(select(UseCase).order_by(UseCase.key))}
    for scope, known, overrides in (
        ("kpi", kpis, current.kpi),
        ("use_case", use_cases, current.use_case),
    ):
        # An override for a KPI or use case that no longer exists still shows, so it can go.
        for name in sorted(set(known) | set(overrides)):
            override = overrides.get(name)
            rows.append(
                ThresholdRow(
                    scope=scope,
                    name=name,
                    label=known.get(name, "(not in the catalogue)"),
                    effective=override if override is not None else current.default,
                    override=override,
                )
            )
    return rows
