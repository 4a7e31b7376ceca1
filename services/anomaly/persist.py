"""Episode state <-> Anomaly rows: severity, grouping, suppression and explanation on write.

Only the detector's own columns are written; status, acknowledgement and incident links
belong to humans (except that an acknowledged episode that ends becomes resolved).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.anomaly import annotate, changes, detect, explain, quality, severity
from services.anomaly.episodes import EpisodeState, PeriodResult, episode_confidence
from services.anomaly.scoring import KpiInfo
from services.db.models import Anomaly

log = logging.getLogger(__name__)
USERS_KPI = "active_users"
RECORD_COLUMNS = [
    "element_id", "kpi_id", "kpi", "period_end", "observed", "expected", "score",
    "anomalous", "peer_group", "peer_median", "peer_size",
]  # fmt: skip


@dataclass
class Batch:
    """What one write needs: verdicts of the periods just scored and shared lookups."""

    verdicts: pd.DataFrame
    inventory: annotate.Inventory
    kpis: dict[int, KpiInfo]
    zone: tzinfo
    step: timedelta
    windows: list[changes.Window] = field(default_factory=list)
    anomalous: pd.DataFrame = field(default_factory=pd.DataFrame)
    members: dict[str, set[int]] = field(default_factory=dict)
    _at: dict[tuple[int, pd.Timestamp], list[dict[str, Any]]] = field(default_factory=dict)
    _hits_at: dict[tuple[int, pd.Timestamp], list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.verdicts):
            hits = self.verdicts[self.verdicts["anomalous"]].copy()
            hits["name"] = self.inventory.frame["name"].reindex(hits["element_id"]).to_numpy()
            self.anomalous = hits

    def index_for(self, states: list[EpisodeState]) -> None:
        """Pre-select the verdict rows the episodes' peaks need, as plain records (fast)."""
        if self.verdicts.empty or not states:
            return
        peaks = {(s.element_id, pd.Timestamp(s.peak.period_end)) for s in states}
        kpi_peaks = {(s.kpi_id, pd.Timestamp(s.peak.period_end)) for s in states}
        rows = self.verdicts
        keys = pd.MultiIndex.from_arrays([rows["element_id"], rows["period_end"]])
        for record in rows[keys.isin(list(peaks))][RECORD_COLUMNS].to_dict("records"):
            key = (int(record["element_id"]), pd.Timestamp(record["period_end"]))
            self._at.setdefault(key, []).append(record)
        hits = self.anomalous
        if len(hits):
            hit_keys = pd.MultiIndex.from_arrays([hits["kpi_id"], hits["period_end"]])
            chosen = hits[hit_keys.isin(list(kpi_peaks))][[*RECORD_COLUMNS, "name"]]
            for record in chosen.to_dict("records"):
                key = (int(record["kpi_id"]), pd.Timestamp(record["period_end"]))
                self._hits_at.setdefault(key, []).append(record)

    def rows_at(self, element_id: int, period: datetime) -> list[dict[str, Any]] | None:
        """Verdict records of one element at one period (all KPIs), if scored in this batch."""
        return self._at.get((element_id, pd.Timestamp(period)))

    def hits_at(self, kpi_id: int, period: datetime) -> list[dict[str, Any]]:
        """Anomalous records of one KPI at one period."""
        return self._hits_at.get((kpi_id, pd.Timestamp(period)), [])


def state_from_row(row: Anomaly) -> EpisodeState:
    """The tracking state of a stored episode."""
    doc = row.explanation or {}
    dq = row.data_quality or {}
    last = doc.get("last_anomalous_at")
    # The row reports the episode's calibrated confidence; tracking continues on the
    # periods' own (rows written before episode calibration hold only that).
    period_confidence = float(doc.get("period_confidence", row.confidence))
    peak = PeriodResult(
        row.peak_at,
        row.observed,
        row.expected,
        row.band_low,
        row.band_high,
        row.score,
        period_confidence,
        True,
    )
    return EpisodeState(
        element_id=row.element_id,
        kpi_id=row.kpi_id,
        started_at=row.started_at,
        last_anomalous_at=datetime.fromisoformat(last) if last else (row.ended_at or row.peak_at),
        peak=peak,
        confidence=period_confidence,
        periods=int(doc.get("periods", 1)),
        ended_at=row.ended_at,
        last_evaluated_at=row.last_evaluated_at,
        anomaly_id=row.id,
        related_kpis=set(row.related_kpis or []),
        group_key=row.group_key,
        flags=set(dq.get("flags", [])),
        history_points=int(dq.get("history_points", 0)),
        revisions=list(doc.get("revisions", [])),
        revised=row.revised,
        changed=False,
        last_deviation_at=(
            datetime.fromisoformat(doc["last_deviation_at"])
            if doc.get("last_deviation_at")
            else (row.ended_at or row.peak_at)
        ),
    )


def save(session: Session, states: Iterable[EpisodeState], batch: Batch) -> int:
    """Write every changed state; one failing episode is logged and skipped."""
    written = 0
    todo = [s for s in states if s.changed]
    batch.index_for(todo)
    for state in todo:
        if state.group_key is not None:
            batch.members.setdefault(state.group_key, set()).add(state.element_id)
    for state in todo:
        try:
            with session.begin_nested():
                _save_one(session, state, batch)
            written += 1
        except Exception:  # one bad episode must not lose the others
            log.exception("could not save episode on element %s kpi %s", *state.key)
    return written


def _save_one(session: Session, state: EpisodeState, batch: Batch) -> None:
    row = session.get(Anomaly, state.anomaly_id) if state.anomaly_id else None
    old_doc = (row.explanation or {}) if row is not None else {}
    kpi = batch.kpis[state.kpi_id]
    inv = batch.inventory
    element = inv.row(state.element_id)
    peak = state.peak
    end = state.ended_at or state.last_anomalous_at
    place = inv.place(state.element_id)
    windows = changes.overlapping(
        batch.windows, place, start=state.started_at - batch.step, end=end
    )
    window_id, reason = changes.suppression(windows, tz_label=_zone_label(batch.zone))
    parent = inv.parent(state.element_id)
    related = [state.element_id, *inv.children(state.element_id)]
    if parent is not None:
        related.append(int(parent["id"]))
    alarms = annotate.alarm_docs(
        annotate.alarms_by_element(session, element_ids=related, start=state.started_at, end=end),
        related,
        start=state.started_at,
        end=end,
    )
    siblings = inv.children(int(parent["id"])) if parent is not None else []
    at_peak = batch.rows_at(state.element_id, peak.period_end)
    if at_peak is None:
        contributing = old_doc.get("contributing_kpis", [])
        peers = old_doc.get("peers")
        users = None
    else:
        contributing = _contributing(at_peak, state)
        peers = _peers(batch, state, at_peak, siblings, kpi.unit)
        users = _users(at_peak)
    similar = annotate.similar_episodes(
        session,
        state=state,
        element_ids=sorted({state.element_id, *siblings}),
        names={int(i): str(inv.frame.at[i, "name"]) for i in siblings},
        kpi_name=kpi.name,
    )
    dq = quality.quality_dict(
        state.flags | ({"revised"} if state.revised else set()), state.history_points
    )
    facts = explain.Facts(
        contributing=contributing,
        peers=peers,
        changes=windows,
        alarms=alarms,
        quality=dq,
        similar=similar,
        revisions=state.revisions,
        suppressed_reason=reason,
    )
    subject = explain.Subject(str(element["name"]), kpi.name, kpi.unit, kpi.higher_is_worse)
    doc = explain.explanation(
        subject, peak, started_at=state.started_at, ended_at=state.ended_at,
        zone=batch.zone, facts=facts,
    )  # fmt: skip
    doc["periods"] = state.periods
    doc["period_confidence"] = round(float(state.confidence), 4)
    doc["last_anomalous_at"] = state.last_anomalous_at.isoformat()
    doc["last_deviation_at"] = (state.last_deviation_at or state.last_anomalous_at).isoformat()
    # A problem on several cells of one site at once reaches all of them.
    cells = max(inv.cells_under(state.element_id), _group_cells(session, state, batch))
    doc["cells"] = cells
    if users is None and old_doc.get("users") is not None:
        users = float(old_doc["users"])
    if users is not None:
        doc["users"] = round(users, 1)
    score = severity.severity_score(criticality=kpi.criticality, cells=cells, users=users)
    if row is None:
        row = Anomaly(element_id=state.element_id, kpi_id=state.kpi_id, status="open")
        session.add(row)
    row.related_kpis = sorted(state.related_kpis - {kpi.name})
    row.group_key = state.group_key
    row.started_at = state.started_at
    row.peak_at = peak.period_end
    if row.status == "acknowledged" and state.ended_at is not None and row.ended_at is None:
        row.status = "resolved"
    row.ended_at = state.ended_at
    row.last_evaluated_at = state.last_evaluated_at or end
    row.observed = _finite(peak.observed)
    row.expected = _finite(peak.expected)
    row.band_low = _finite(peak.band_low)
    row.band_high = _finite(peak.band_high)
    row.score = _finite(peak.score)
    row.confidence = round(episode_confidence(state, kpi.name), 4)
    row.severity = severity.severity_label(score)
    row.severity_score = score
    row.data_quality = dq
    row.detector = detect.DETECTOR
    row.model_version = detect.MODEL_VERSION
    row.explanation = doc
    row.suppressed = window_id is not None
    row.suppressed_reason = reason
    row.change_window_id = window_id
    row.revised = state.revised
    session.flush()
    state.anomaly_id = row.id
    state.changed = False


def _group_cells(session: Session, state: EpisodeState, batch: Batch) -> int:
    """Distinct cells with an episode in the same group (this one included)."""
    if state.group_key is None:
        return 1
    inv = batch.inventory
    members = (
        batch.members.get(state.group_key, set())
        | set(
            session.scalars(
                select(Anomaly.element_id).where(Anomaly.group_key == state.group_key).distinct()
            )
        )
        | {state.element_id}
    )
    known = [m for m in members if m in inv.frame.index]
    return max(1, int((inv.frame.loc[known, "element_type"] == "cell").sum()))


def _zone_label(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _finite(value: float) -> float:
    return 0.0 if value != value else float(value)


def _contributing(at_peak: list[dict[str, Any]], state: EpisodeState) -> list[dict[str, Any]]:
    others = [r for r in at_peak if r["kpi_id"] != state.kpi_id and r["anomalous"]]
    others.sort(key=lambda r: -abs(float(r["score"])))
    return [
        {
            "kpi": str(r["kpi"]),
            "sigma": round(float(r["score"]), 2),
            "observed": round(float(r["observed"]), 4),
            "expected": round(float(r["expected"]), 4),
        }
        for r in others
    ]


def _peers(
    batch: Batch,
    state: EpisodeState,
    at_peak: list[dict[str, Any]],
    siblings: list[int],
    unit: str,
) -> dict[str, Any] | None:
    own = next((r for r in at_peak if r["kpi_id"] == state.kpi_id), None)
    if own is None:
        return None
    group = str(own["peer_group"]) if pd.notna(own["peer_group"]) else None
    affected = annotate.affected_peers(
        batch.hits_at(state.kpi_id, state.peak.period_end),
        state=state,
        group=group,
        siblings=siblings,
    )
    size = int(own["peer_size"]) if pd.notna(own["peer_size"]) else 0
    if group is None or size < 2:
        return None
    median = float(own["peer_median"]) if pd.notna(own["peer_median"]) else None
    return explain.peers_doc(group, size, median, affected, unit)


def _users(at_peak: list[dict[str, Any]]) -> float | None:
    row = next((r for r in at_peak if r["kpi"] == USERS_KPI), None)
    if row is None:
        return None
    values = [v for v in (row["observed"], row["expected"]) if pd.notna(v)]
    return float(max(values)) if values else None


def load_ongoing(session: Session) -> dict[tuple[int, int], EpisodeState]:
    """Every ongoing episode by series."""
    rows = session.scalars(select(Anomaly).where(Anomaly.ended_at.is_(None)))
    return {(r.element_id, r.kpi_id): state_from_row(r) for r in rows}
