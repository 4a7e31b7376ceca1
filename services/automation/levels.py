"""Shared trust taxonomies: maturity levels, reason codes, verdicts, outcomes and states."""

from __future__ import annotations

import re

from services.errors import InvalidInput

LEVELS: dict[int, str] = {
    0: "L0 shadow",
    1: "L1 advisory",
    2: "L2 approve-to-execute",
    3: "L3 auto with guardrails",
    4: "L4 autonomous",
}
SHADOW, ADVISORY, APPROVE_TO_EXECUTE, AUTO_WITH_GUARDRAILS, AUTONOMOUS = 0, 1, 2, 3, 4

REASON_CODES: tuple[str, ...] = (
    "wrong_diagnosis",
    "right_diagnosis_wrong_action",
    "maintenance_in_progress",
    "data_issue",
    "risk_too_high",
    "already_handled",
    "other",
)
REASON_LABELS: dict[str, str] = {
    "wrong_diagnosis": "Wrong diagnosis",
    "right_diagnosis_wrong_action": "Right diagnosis, wrong action",
    "maintenance_in_progress": "Maintenance or change in progress",
    "data_issue": "Data issue",
    "risk_too_high": "Risk too high",
    "already_handled": "Already handled",
    "other": "Other",
}
VERDICTS: tuple[str, ...] = ("accept", "reject", "override")
REVIEW_OUTCOMES: tuple[str, ...] = (
    "ai_right",
    "human_right",
    "both_reasonable",
    "data_issue",
    "inconclusive",
)
DISAGREEMENT_KINDS: tuple[str, ...] = (
    "rejected",
    "overridden",
    "false_positive",
    "missed",
    "ai_wrong",
    "rolled_back",
)
RECOMMENDATION_STATES: tuple[str, ...] = (
    "open",
    "accepted",
    "awaiting_second_approval",
    "rejected",
    "overridden",
    "executing",
    "executed",
    "rolled_back",
    "expired",
    "shadow",
)
# running -> succeeded | failed; succeeded -> verified | rollback_recommended | rolled_back.
EXECUTION_STATES: tuple[str, ...] = (
    "running",
    "succeeded",
    "failed",
    "verified",
    "rollback_recommended",
    "rolled_back",
)
CHANGE_WINDOW_KINDS: tuple[str, ...] = ("change", "maintenance", "freeze")
MATURITY_CHANGE_KINDS: tuple[str, ...] = ("promotion", "demotion", "manual")
# Demotions and admin-set levels are recorded directly as "approved".
MATURITY_CHANGE_STATES: tuple[str, ...] = ("proposed", "approved", "rejected")

_LEVEL_RE = re.compile(r"^\s*[lL]?\s*([0-4])\s*$")


def level_label(level: int) -> str:
    """Short label for a maturity level: 2 -> "L2"."""
    if level not in LEVELS:
        raise InvalidInput(f"unknown maturity level {level!r}; expected 0-4")
    return f"L{level}"


def level_name(level: int) -> str:
    """Full label for a maturity level: 2 -> "L2 approve-to-execute"."""
    level_label(level)
    return LEVELS[level]


def parse_level(text: str | int) -> int:
    """Parse "L2" / "l2" / "2" (or an int) into 2; InvalidInput otherwise."""
    if isinstance(text, bool):
        raise InvalidInput(f"invalid maturity level {text!r}; expected L0-L4")
    if isinstance(text, int):
        if text in LEVELS:
            return text
        raise InvalidInput(f"invalid maturity level {text!r}; expected L0-L4")
    match = _LEVEL_RE.match(str(text or ""))
    if not match:
        raise InvalidInput(f"invalid maturity level {text!r}; expected L0-L4")
    return int(match.group(1))
