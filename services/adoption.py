"""Adoption and trust metrics per AI use case and network-wide, for executives.

Definitions (the page and the CSV use the same words):
- a recommendation is *decided* once a person settled it; its verdict is the last decision
  (a two-person approval counts once, by its outcome); one awaiting its second approver
  (or that expired waiting) is not decided;
- acceptance / override / rejection rate = accepted / overridden / rejected ÷ decided;
- time to decision = from raising to the first person's decision (median, hours);
- precision = right ÷ judged (services/decisions/learning.py: accepted or executed counts
  right, reviews say "AI right" / "human right"; other outcomes are left out);
- weeks start on Monday (UTC) and are labelled by that Monday's date.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.automation.levels import LEVELS, REASON_CODES, level_label
from services.db.models import (
    MaturityChange,
    Recommendation,
    UseCase,
)
from services.decisions import adoption_data, impact

DEFAULT_WEEKS = 12
APPLIED_CHANGES = ("approved", "applied")
UNSETTLED = ("awaiting_second_approval", "expired")
TREND_COLUMNS = (
    "week",
    "use_case_id",
    "use_case",
    "recommendations",
    "decided",
    "accepted",
    "overridden",
    "rejected",
    "acceptance_rate",
    "override_rate",
    "rejection_rate",
    "judged",
    "right",
    "precision",
    "automated_actions",
    "rollbacks",
    "disagreements",
    "reviews",
)


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the moment's week."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def summarise(data: dict[str, pd.DataFrame], *, use_case_id: int | None) -> dict[str, Any]:
    """Rates, reasons, time to decision, precision and automation over the frames given."""
    recs = _of(data["recs"], use_case_id)
    ids = set(recs["id"])
    decisions = data["decisions"][data["decisions"].rec_id.isin(ids)]
    settled = _settled(recs, decisions)
    counts = settled["verdict"].value_counts()
    decided = len(settled)
    first = decisions.sort_values("id").groupby("rec_id")["at"].first()
    waits = (first - recs.set_index("id")["created_at"].reindex(first.index)).dt.total_seconds()
    judged = data["judged"][data["judged"].rec_id.isin(ids)]
    executions = data["executions"][data["executions"].rec_id.isin(ids)]
    cases, reviews = _of(data["cases"], use_case_id), _of(data["reviews"], use_case_id)
    against = settled[settled.verdict.isin(("reject", "override"))]["reason_code"].value_counts()
    return {
        "recommendations": len(recs),
        "simulated_share": _rate(int(recs["simulated"].sum()), len(recs)),
        "decided": decided,
        "accepted": int(counts.get("accept", 0)),
        "overridden": int(counts.get("override", 0)),
        "rejected": int(counts.get("reject", 0)),
        "acceptance_rate": _rate(int(counts.get("accept", 0)), decided),
        "override_rate": _rate(int(counts.get("override", 0)), decided),
        "rejection_rate": _rate(int(counts.get("reject", 0)), decided),
        "reason_codes": {code: int(against.get(code, 0)) for code in REASON_CODES},
        "median_hours_to_decision": None if waits.empty else round(float(waits.median()) / 3600, 2),
        "judged": len(judged),
        "right": int(judged["correct"].sum()),
        "precision": _rate(int(judged["correct"].sum()), len(judged)),
        "automated_actions": int(executions["automatic"].sum()),
        "executions": len(executions),
        "rollbacks": int(executions["rolled_back"].sum()),
        "harmful_rollbacks": int(executions["harmful"].sum()),
        "disagreements": len(cases),
        "open_disagreements": int((cases["state"] == "open").sum()),
        "review_outcomes": {k: int(v) for k, v in reviews["outcome"].value_counts().items()},
    }


def weekly_trend(session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS) -> pd.DataFrame:
    """One row per week and use case, plus network-wide rows (use_case_id 0, "All use cases")."""
    start = week_start(now) - timedelta(weeks=weeks - 1)
    data = adoption_data.frames(session, since=start, until=now)
    names = dict(session.execute(select(UseCase.id, UseCase.name)).all())
    rows = []
    for offset in range(weeks):
        lo = start + timedelta(weeks=offset)
        part = _slice(data, lo, lo + timedelta(weeks=1))
        for case_id, name in [(0, "All use cases"), *sorted(names.items())]:
            s = summarise(part, use_case_id=case_id or None)
            rows.append(
                {
                    "week": lo.date().isoformat(),
                    "use_case_id": case_id,
                    "use_case": name,
                    **{k: s[k] for k in TREND_COLUMNS[3:] if k in s},
                    "disagreements": s["disagreements"],
                    "reviews": sum(s["review_outcomes"].values()),
                }
            )
    return pd.DataFrame(rows, columns=list(TREND_COLUMNS))


def use_case_adoption(
    session: Session,
    *,
    case: UseCase,
    now: datetime,
    weeks: int = DEFAULT_WEEKS,
    data: dict[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Everything the adoption page shows for one use case (`data`: frames already loaded)."""
    since = week_start(now) - timedelta(weeks=weeks - 1)
    if data is None:
        data = adoption_data.frames(session, since=since, until=now)
    return {
        "id": case.id,
        "key": case.key,
        "name": case.name,
        "maturity_level": level_label(case.maturity_level),
        "ladder": maturity_ladder(session, case=case, now=now),
        "window_start": since.isoformat(),
        **summarise(data, use_case_id=case.id),
        "decisions_per_week": _per_week(data, case.id, since, weeks),
        "incidents": impact.use_case_incidents(session, case=case, now=now),
    }


def network_summary(
    session: Session,
    *,
    now: datetime,
    weeks: int = DEFAULT_WEEKS,
    data: dict[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The top of the page: every use case together, levels reached, incidents and MTTA/MTTR."""
    since = week_start(now) - timedelta(weeks=weeks - 1)
    if data is None:
        data = adoption_data.frames(session, since=since, until=now)
    cases = list(session.scalars(select(UseCase).order_by(UseCase.id)))
    levels = {level_label(k): 0 for k in LEVELS}
    for case in cases:
        levels[level_label(case.maturity_level)] += 1
    return {
        "window_start": since.isoformat(),
        "use_cases": len(cases),
        "use_cases_by_level": levels,
        **summarise(data, use_case_id=None),
        "incidents": impact.network_incidents(session, now=now),
    }


def adoption_report(
    session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS
) -> dict[str, Any]:
    """The REST document of GET /api/v1/adoption: network summary plus every use case."""
    cases = session.scalars(select(UseCase).order_by(UseCase.id)).all()
    since = week_start(now) - timedelta(weeks=weeks - 1)
    data = adoption_data.frames(session, since=since, until=now)
    return {
        "generated_at": now.isoformat(),
        "weeks": weeks,
        "network": network_summary(session, now=now, weeks=weeks, data=data),
        "use_cases": [
            use_case_adoption(session, case=c, now=now, weeks=weeks, data=data) for c in cases
        ],
    }


def maturity_ladder(session: Session, *, case: UseCase, now: datetime) -> list[dict[str, Any]]:
    """Each level with the days spent at it, from applied maturity changes and the current level."""
    changes = session.execute(
        select(MaturityChange.from_level, MaturityChange.to_level, MaturityChange.decided_at)
        .where(
            MaturityChange.use_case_id == case.id,
            MaturityChange.status.in_(APPLIED_CHANGES),
            MaturityChange.decided_at.is_not(None),
        )
        .order_by(MaturityChange.decided_at, MaturityChange.id)
    ).all()
    first_rec = session.scalar(
        select(Recommendation.created_at)
        .where(Recommendation.use_case_id == case.id)
        .order_by(Recommendation.created_at)
        .limit(1)
    )
    spent = dict.fromkeys(LEVELS, 0.0)
    if changes:
        at = min(changes[0].decided_at, first_rec or changes[0].decided_at)
        level = changes[0].from_level
        for change in changes:
            spent[level] += max(0.0, (change.decided_at - at).total_seconds())
            at, level = change.decided_at, change.to_level
        spent[case.maturity_level] += max(0.0, (now - at).total_seconds())
    else:
        spent[case.maturity_level] = max(0.0, (now - case.level_since).total_seconds())
    return [
        {
            "level": level_label(k),
            "name": LEVELS[k],
            "days": round(spent[k] / 86400, 1),
            "current": k == case.maturity_level,
            "reached": spent[k] > 0 or k <= case.maturity_level,
        }
        for k in LEVELS
    ]


def trend_csv(session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS) -> str:
    """The weekly trend as CSV (one row per week and use case, rates as fractions)."""
    buffer = io.StringIO()
    weekly_trend(session, now=now, weeks=weeks).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def summary_csv(session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS) -> str:
    """One row per use case plus the network: the headline numbers of the page, as CSV."""
    report = adoption_report(session, now=now, weeks=weeks)
    rows = [{"use_case": "All use cases", "maturity_level": "", **_flat(report["network"])}]
    rows += [
        {"use_case": u["name"], "maturity_level": u["maturity_level"], **_flat(u)}
        for u in report["use_cases"]
    ]
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _flat(doc: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "recommendations",
        "decided",
        "acceptance_rate",
        "override_rate",
        "rejection_rate",
        "median_hours_to_decision",
        "precision",
        "automated_actions",
        "rollbacks",
        "disagreements",
        "open_disagreements",
        "simulated_share",
    )
    out = {k: doc.get(k) for k in keep}
    out.update({f"reason_{k}": v for k, v in (doc.get("reason_codes") or {}).items()})
    return out


def _of(frame: pd.DataFrame, use_case_id: int | None) -> pd.DataFrame:
    return frame if use_case_id is None else frame[frame["use_case_id"] == use_case_id]


def _settled(recs: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    # The last decision of each recommendation a person settled; one that waited for its
    # second approver (still, or until it expired) was never settled.
    waiting = set(recs.loc[recs["state"].isin(UNSETTLED), "id"])
    last = decisions.sort_values("id").groupby("rec_id").tail(1)
    return last[~last.rec_id.isin(waiting)]


def _per_week(
    data: dict[str, pd.DataFrame], case_id: int, since: datetime, weeks: int
) -> list[dict[str, Any]]:
    recs = data["recs"][data["recs"].use_case_id == case_id]
    settled = _settled(recs, data["decisions"][data["decisions"].rec_id.isin(set(recs["id"]))])
    out = []
    for offset in range(weeks):
        lo = since + timedelta(weeks=offset)
        inside = settled[(settled["at"] >= lo) & (settled["at"] < lo + timedelta(weeks=1))]
        out.append({"week": lo.date().isoformat(), "decisions": len(inside)})
    return out


def _slice(data: dict[str, pd.DataFrame], lo: datetime, hi: datetime) -> dict[str, pd.DataFrame]:
    # Recommendations (and what hangs off them) by when raised; cases and reviews by their own time.
    recs = data["recs"][(data["recs"].created_at >= lo) & (data["recs"].created_at < hi)]
    ids = set(recs["id"])
    return {
        "recs": recs,
        "decisions": data["decisions"][data["decisions"].rec_id.isin(ids)],
        "executions": data["executions"][data["executions"].rec_id.isin(ids)],
        "judged": data["judged"][data["judged"].rec_id.isin(ids)],
        "cases": data["cases"][(data["cases"]["at"] >= lo) & (data["cases"]["at"] < hi)],
        "reviews": data["reviews"][(data["reviews"]["at"] >= lo) & (data["reviews"]["at"] < hi)],
    }


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 4)
