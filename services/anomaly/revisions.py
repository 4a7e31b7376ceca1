"""Late data and corrections: re-evaluate marked periods and revise the episodes they touch.

Also keeps the site/router groups of simultaneous episodes while a run steps through periods.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.anomaly import annotate, scoring
from services.anomaly.episodes import (
    EpisodeState,
    GroupSpan,
    extend,
    group_anchor,
    group_key_for,
    open_episode,
    results_at,
    with_revision,
)
from services.anomaly.persist import Batch, save, state_from_row
from services.anomaly.thresholds import effective_thresholds
from services.db import Database
from services.db.models import Anomaly, ReevaluationMark

if TYPE_CHECKING:
    from services.anomaly.service import Context, DetectionRun

log = logging.getLogger(__name__)


@dataclass
class Group:
    """One group of simultaneous episodes on an anchor (a site, a router)."""

    key: str
    anchor: str
    started_at: datetime
    until: datetime | None


def anchor_of(inventory: annotate.Inventory, element_id: int) -> str:
    """The grouping anchor of an element."""
    return group_anchor(inventory.row(element_id), inventory.parent(element_id))


def group_spans(session: Session, inventory: annotate.Inventory, *, since: datetime) -> list[Group]:
    """Groups still running, or ended after `since`."""
    rows = session.execute(
        select(Anomaly.group_key, Anomaly.element_id, Anomaly.started_at, Anomaly.ended_at).where(
            Anomaly.group_key.is_not(None),
            or_(Anomaly.ended_at.is_(None), Anomaly.ended_at >= since),
        )
    ).all()
    groups: dict[str, Group] = {}
    for key, element_id, started, ended in rows:
        if element_id not in inventory.frame.index:
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = Group(key, anchor_of(inventory, element_id), started, ended)
            continue
        group.started_at = min(group.started_at, started)
        group.until = None if ended is None or group.until is None else max(group.until, ended)
    return list(groups.values())


def assign_group(
    groups: list[Group], inventory: annotate.Inventory, *, state: EpisodeState, step: timedelta
) -> str:
    """The group key of a new episode: join a running group on its anchor, or start one."""
    anchor = anchor_of(inventory, state.element_id)
    spans = [GroupSpan(g.key, g.anchor, g.started_at, g.until) for g in groups]
    key = group_key_for(anchor, state.started_at, spans, step=step)
    for group in groups:
        if group.key == key:
            group.until = None
            return key
    groups.append(Group(key, anchor, state.started_at, None))
    return key


def close_group(groups: list[Group], state: EpisodeState) -> None:
    """Note an ended member; a group stays joinable until one period after its last end."""
    for group in groups:
        if group.key == state.group_key and state.ended_at is not None:
            group.until = (
                state.ended_at if group.until is None else max(group.until, state.ended_at)
            )


def reevaluate(
    db: Database,
    *,
    ctx: Context,
    cursor: datetime,
    now: datetime,
    run: DetectionRun,
    limit: int,
) -> None:
    """Score marked periods again and revise, extend or add the episodes they change."""
    with db.session() as session:
        marks = session.execute(
            select(ReevaluationMark.kpi_id, ReevaluationMark.period_end, ReevaluationMark.reason)
            .where(ReevaluationMark.processed_at.is_(None))
            .order_by(ReevaluationMark.period_end)
            .limit(limit)
        ).all()
        due = [m for m in marks if m.period_end <= cursor and m.kpi_id in ctx.kpis]
        scored = None
        if due:
            periods = sorted({m.period_end for m in due})
            kpis = [ctx.kpis[k] for k in sorted({m.kpi_id for m in due})]
            scored = scoring.score_periods(
                session,
                targets=periods,
                step=ctx.step,
                kpis=kpis,
                elements=ctx.inventory.frame,
                thresholds=effective_thresholds(session),
                now=now,
            )
            windows = annotate.change_windows(
                session, start=periods[0] - timedelta(days=1), end=periods[-1] + timedelta(days=1)
            )
    if not marks:
        return
    with db.session(write=True) as session:
        if scored is not None and len(scored.verdicts):
            wanted = {(m.kpi_id, pd.Timestamp(m.period_end)) for m in due}
            verdicts = scored.verdicts
            keep = [
                (k, p) in wanted
                for k, p in zip(verdicts["kpi_id"], verdicts["period_end"], strict=True)
            ]
            verdicts = verdicts[keep].reset_index(drop=True)
            reasons = {(m.kpi_id, m.period_end): m.reason for m in due}
            batch = Batch(verdicts, ctx.inventory, ctx.kpis, ctx.zone, ctx.step, windows)
            changed = _revise(
                session, batch=batch, ctx=ctx, cursor=cursor, now=now, reasons=reasons
            )
            run.revised += len(changed)
            run.written += save(session, changed, batch)
            run.failures += scored.failures
        failed = {
            k.id
            for k in ctx.kpis.values()
            if scored is not None and any(f.startswith(f"{k.name}:") for f in scored.failures)
        }
        for mark in marks:
            if mark.kpi_id in failed:
                continue  # scoring failed: keep the mark so the next run tries again
            session.execute(
                update(ReevaluationMark)
                .where(
                    ReevaluationMark.kpi_id == mark.kpi_id,
                    ReevaluationMark.period_end == mark.period_end,
                )
                .values(processed_at=now)
            )
    run.reevaluated += len({m.period_end for m in due})


def _revise(
    session: Session,
    *,
    batch: Batch,
    ctx: Context,
    cursor: datetime,
    now: datetime,
    reasons: dict[tuple[int, datetime], str],
) -> list[EpisodeState]:
    """Apply each re-scored (series, period) to the stored episodes of that series."""
    reach = ctx.step * ctx.end_after
    changed: dict[int, EpisodeState] = {}
    fresh: list[EpisodeState] = []
    groups = group_spans(session, ctx.inventory, since=cursor - timedelta(days=30))
    verdicts = batch.verdicts.sort_values("period_end")
    for period, part in verdicts.groupby("period_end", sort=True):
        stamp = pd.Timestamp(period).to_pydatetime()
        stored = _stored(session, part, start=stamp - reach, end=stamp + reach)
        for key, result in results_at(part).items():
            reason = reasons.get((key[1], stamp), "late")
            candidates = [changed.get(s.anomaly_id or -1, s) for s in stored.get(key, [])]
            candidates += [s for s in fresh if s.key == key]
            text = None
            state = next((s for s in candidates if s.covers(stamp)), None)
            if state is not None:
                new_state, text = with_revision(state, result)
                if text:
                    state = new_state
            elif result.anomalous:
                state = next((s for s in candidates if _adjacent(s, stamp, reach)), None)
                if state is not None:
                    extend(state, result)
                    text = "late or corrected data extended the episode"
                else:
                    state = open_episode(key, result)
                    ongoing = any(s.ongoing for s in candidates)
                    if ongoing or cursor - stamp >= reach:
                        state.ended_at = stamp
                    state.group_key = assign_group(
                        groups, ctx.inventory, state=state, step=ctx.step
                    )
                    text = "found when late or corrected data arrived"
                    fresh.append(state)
            if state is None or text is None:
                continue
            state.revised = True
            state.changed = True
            state.flags.add("revised")
            state.revisions = [
                *state.revisions,
                {
                    "at": now.isoformat(),
                    "reason": reason,
                    "text": f"{stamp:%Y-%m-%d %H:%M} UTC: {text}",
                },
            ]
            if state.anomaly_id is not None:
                changed[state.anomaly_id] = state
    return [*changed.values(), *fresh]


def _adjacent(state: EpisodeState, period: datetime, reach: timedelta) -> bool:
    end = state.ended_at or state.last_anomalous_at
    return end < period <= end + reach or state.started_at - reach <= period < state.started_at


def _stored(
    session: Session, part: pd.DataFrame, *, start: datetime, end: datetime
) -> dict[tuple[int, int], list[EpisodeState]]:
    element_ids = sorted({int(e) for e in part["element_id"]})
    kpi_ids = sorted({int(k) for k in part["kpi_id"]})
    rows = session.scalars(
        select(Anomaly).where(
            Anomaly.element_id.in_(element_ids),
            Anomaly.kpi_id.in_(kpi_ids),
            Anomaly.started_at <= end,
            or_(Anomaly.ended_at.is_(None), Anomaly.ended_at >= start),
        )
    )
    out: dict[tuple[int, int], list[EpisodeState]] = {}
    for row in rows:
        state = state_from_row(row)
        out.setdefault(state.key, []).append(state)
    return out
