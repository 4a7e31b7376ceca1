"""Severity of an episode: KPI criticality (1-3) × reach (cells and users affected)."""

from __future__ import annotations

import math

# Worst first: the order every feed, count and tile uses.
SEVERITIES = ("critical", "major", "minor", "warning")
# severity_score at or above each bound, highest first.
BANDS = ((9.0, "critical"), (6.0, "major"), (3.0, "minor"))
# Users at which reach gains one full point: a busy LTE cell serves a few hundred.
USERS_PER_POINT = 500.0


def reach(*, cells: int, users: float | None) -> float:
    """1 for one quiet cell; grows with the log of cells and linearly with users."""
    cells_term = math.log2(max(1, cells))
    users_term = (users or 0.0) / USERS_PER_POINT
    return round(1.0 + cells_term + users_term, 3)


def severity_score(*, criticality: int, cells: int, users: float | None) -> float:
    """Criticality × reach."""
    return round(max(1, min(3, criticality)) * reach(cells=cells, users=users), 3)


def severity_label(score: float) -> str:
    """critical / major / minor / warning from a severity score."""
    for bound, label in BANDS:
        if score >= bound:
            return label
    return "warning"
