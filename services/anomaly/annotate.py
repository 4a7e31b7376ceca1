"""Context an episode is explained with: changes, alarms, similar past episodes, peers, reach.

Reads the database in a few batched queries per set of episodes; the explanation itself is
built by the pure functions in `explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.anomaly.changes import Place, Window
from services.anomaly.episodes import EpisodeState
from services.db.models import Alarm, Anomaly, AnomalyFeedback, ChangeWindow, Element

SIMILAR_LIMIT = 5
ALARM_LIMIT = 10
PEER_LIMIT = 10
# Alarms raised a little before an episode starts usually belong to it.
ALARM_LEAD = timedelta(hours=1)


@dataclass(frozen=True)
class Inventory:
    """Elements by id with their parent and children, for places, anchors and reach."""

    frame: pd.DataFrame  # scoring.element_frame()

    def row(self, element_id: int) -> dict[str, Any]:
        """One element's inventory columns (with its id)."""
        return {"id": int(element_id), **self.frame.loc[int(element_id)].to_dict()}

    def parent(self, element_id: int) -> dict[str, Any] | None:
        """The element's parent row, if it has one."""
        parent_id = self.frame.at[int(element_id), "parent_id"]
        if pd.isna(parent_id) or int(parent_id) not in self.frame.index:
            return None
        return self.row(int(parent_id))

    def place(self, element_id: int) -> Place:
        """Where the element sits, for change-window scopes."""
        row = self.row(element_id)
        ancestors = []
        parent = self.parent(element_id)
        while parent is not None and len(ancestors) < 4:
            ancestors.append(str(parent["dn"]))
            parent = self.parent(parent["id"])
        return Place(str(row["dn"]), tuple(ancestors), row["domain"], row["region"])

    def children(self, element_id: int) -> list[int]:
        """Ids of the elements directly under this one."""
        return [int(i) for i in self.frame.index[self.frame["parent_id"] == int(element_id)]]

    def cells_under(self, element_id: int) -> int:
        """Cells the element carries: itself for a cell, its cells for a site or router."""
        row = self.row(element_id)
        if row["element_type"] == "cell":
            return 1
        children = self.children(element_id)
        kinds = self.frame.loc[children, "element_type"] if children else pd.Series(dtype=str)
        return max(1, int((kinds == "cell").sum()) or len(children))


def change_windows(session: Session, *, start: datetime, end: datetime) -> list[Window]:
    """Change-calendar entries overlapping [start, end]."""
    rows = session.scalars(
        select(ChangeWindow).where(ChangeWindow.starts_at <= end, ChangeWindow.ends_at >= start)
    )
    return [Window(w.id, w.title, w.kind, w.scope or {}, w.starts_at, w.ends_at) for w in rows]


def alarms_by_element(
    session: Session, *, element_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[Alarm]]:
    """Alarms on these elements that were active at some point of [start, end]."""
    rows = session.scalars(
        select(Alarm)
        .where(
            Alarm.element_id.in_(sorted(set(element_ids))),
            Alarm.raised_at <= end,
            (Alarm.cleared_at.is_(None)) | (Alarm.cleared_at >= start - ALARM_LEAD),
        )
        .order_by(Alarm.raised_at)
    )
    out: dict[int, list[Alarm]] = {}
    for alarm in rows:
        out.setdefault(int(alarm.element_id or 0), []).append(alarm)
    return out


def alarm_docs(
    alarms: dict[int, list[Alarm]], related: Sequence[int], *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Alarms on the element or its relatives overlapping the episode (raised up to 1 h before)."""
    docs = []
    for element_id in related:
        for alarm in alarms.get(element_id, []):
            cleared = alarm.cleared_at
            if alarm.raised_at > end or (cleared is not None and cleared < start - ALARM_LEAD):
                continue
            docs.append(
                {
                    "id": alarm.id,
                    "severity": alarm.severity,
                    "text": alarm.text or alarm.specific_problem or alarm.probable_cause or "",
                    "raised_at": alarm.raised_at.isoformat(),
                    "state": alarm.state,
                }
            )
    return sorted(docs, key=lambda d: d["raised_at"])[:ALARM_LIMIT]


def similar_episodes(
    session: Session,
    *,
    state: EpisodeState,
    element_ids: Sequence[int],
    names: dict[int, str],
    kpi_name: str,
) -> list[dict[str, Any]]:
    """Earlier episodes of the same KPI on the element or its peers, with human verdicts."""
    rows = session.execute(
        select(Anomaly.id, Anomaly.element_id, Anomaly.started_at, Anomaly.score)
        .where(
            Anomaly.kpi_id == state.kpi_id,
            Anomaly.element_id.in_(sorted(set(element_ids))),
            Anomaly.started_at < state.started_at,
        )
        .order_by(Anomaly.started_at.desc())
        .limit(SIMILAR_LIMIT)
    ).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    verdicts: dict[int, str] = {}
    feedback = session.execute(
        select(AnomalyFeedback.anomaly_id, AnomalyFeedback.label)
        .where(AnomalyFeedback.anomaly_id.in_(ids))
        .order_by(AnomalyFeedback.created_at)
    ).all()
    for anomaly_id, label in feedback:
        verdicts[anomaly_id] = label  # the latest verdict wins
    missing = {r[1] for r in rows} - set(names)
    if missing:
        found = session.execute(select(Element.id, Element.name).where(Element.id.in_(missing)))
        names = {**names, **{int(i): str(n) for i, n in found}}
    return [
        {
            "anomaly_id": int(anomaly_id),
            "started_at": started.isoformat(),
            "element": names.get(element_id, str(element_id)),
            "kpi": kpi_name,
            "sigma": round(float(score), 2),
            "verdict": verdicts.get(anomaly_id),
        }
        for anomaly_id, element_id, started, score in rows
    ]


def affected_peers(
    hits: Sequence[dict[str, Any]],
    *,
    state: EpisodeState,
    group: str | None,
    siblings: Sequence[int],
) -> list[dict[str, Any]]:
    """Other elements of the peer group or the same site anomalous on this KPI at the peak."""
    near = set(siblings)
    chosen = [
        r
        for r in hits
        if r["element_id"] != state.element_id
        and (r["element_id"] in near or (group is not None and r["peer_group"] == group))
    ]
    chosen.sort(key=lambda r: -abs(float(r["score"])))
    return [
        {
            "element_id": int(r["element_id"]),
            "name": str(r["name"]),
            "sigma": round(float(r["score"]), 2),
        }
        for r in chosen[:PEER_LIMIT]
    ]
