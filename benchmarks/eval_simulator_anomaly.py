"""Anomaly service on the simulator: recall of injected incidents, false alarms per element-day.

The seeded simulated network (services.ingest.simulator) delivers N days of telemetry —
with its injected data defects — through the real ingest pipeline into a fresh SQLite
database; then the detection service evaluates every period exactly as the scheduler job
does (`service.backfill`) and stores episodes. Ground truth is `incidents_between`.

- An incident counts as found when an episode on its element or a related element
  (sleeping cell: the site's other cells; link flap: the link) overlaps the incident's
  periods (end exclusive start, one period of slack after the end).
- An episode is a false alarm when it overlaps no incident on its element (as the
  incident's own or a related element).
- False alarms are per 1,000 element-days of elements that carry KPIs.

The first `--warmup-days` are scored separately: the seasonal baseline needs a few days.
The stored run uses the product's default threshold. A threshold sweep re-forms episodes
in memory from the same service scoring (`scoring.score_periods` + `episodes.form_episodes`)
at other minimum confidences.

    python benchmarks/eval_simulator_anomaly.py [--days 14] [--seed 7] [--sites-per-region 6]
        [--warmup-days 3] [--sweep 0.1,0.15,0.2,0.3,0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.anomaly import detect, scoring, service
from services.anomaly.episodes import form_episodes
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE, Thresholds
from services.config import load_settings
from services.db import Database, connect, upgrade_to_head
from services.db.models import Anomaly, Element
from services.ingest.simfeed import SimulatorFeed
from services.seed import ensure_kpis

STEP = timedelta(minutes=15)
NOW = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def build(days: int, seed: int, sites: int, workdir: Path) -> tuple[Database, SimulatorFeed, float]:
    """A fresh database holding `days` of simulated telemetry, ingested for real."""
    settings = load_settings(
        {
            "BEACON_DATA_DIR": str(workdir),
            "BEACON_SIM_BACKFILL_DAYS": str(days),
            "BEACON_SIM_SITES_PER_REGION": str(sites),
        }
    )
    db = connect(settings.database_url)
    upgrade_to_head(db)
    with db.session(write=True) as session:
        ensure_kpis(session)
        from services import kv
        from services.ingest.simfeed import SEED_KEY

        kv.set_value(session, SEED_KEY, seed)
    feed = SimulatorFeed(db, settings, now=NOW)
    feed.prepare()
    started = time.perf_counter()
    feed.catch_up(now=NOW)
    return db, feed, time.perf_counter() - started


def element_spans(db: Database) -> pd.DataFrame:
    """Stored episodes with their element's dn."""
    with db.session() as session:
        rows = session.execute(
            select(Element.dn, Anomaly.started_at, Anomaly.ended_at, Anomaly.peak_at,
                   Anomaly.explanation)
            .join(Element, Element.id == Anomaly.element_id)
        ).all()  # fmt: skip
    return pd.DataFrame(
        [
            (dn, start, end or pd.Timestamp((doc or {}).get("last_anomalous_at") or peak))
            for dn, start, end, peak, doc in rows
        ],
        columns=["dn", "start", "end"],
    )


def score(
    spans: pd.DataFrame, incidents: pd.DataFrame, *, since: pd.Timestamp, element_days: float
) -> dict[str, object]:
    """Recall per kind and overall, and false alarms per 1,000 element-days, from `since` on."""
    incidents = incidents[incidents["end"] > since]
    spans = spans[pd.to_datetime(spans["end"], utc=True) >= since]
    by_dn: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for dn, start, end in spans.itertuples(index=False):
        by_dn.setdefault(dn, []).append((pd.Timestamp(start), pd.Timestamp(end)))
    found, kinds = [], {}
    truth: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for row in incidents.itertuples(index=False):
        lo, hi = row.start + STEP, row.end + STEP
        dns = [row.dn, *row.related_dns]
        hit = any(s <= hi and e >= lo for dn in dns for s, e in by_dn.get(dn, []))
        found.append(hit)
        kinds.setdefault(row.kind, []).append(hit)
        for dn in dns:
            truth.setdefault(dn, []).append((lo, hi))
    false = sum(
        1
        for dn, start, end in spans.itertuples(index=False)
        if not any(
            s <= pd.Timestamp(end) and e >= pd.Timestamp(start) for s, e in truth.get(dn, [])
        )
    )
    return {
        "incidents": len(found),
        "recall": round(sum(found) / len(found), 3) if found else None,
        "recall_by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(kinds.items())},
        "episodes": len(spans),
        "false_episodes": false,
        "false_per_1000_element_days": round(1000 * false / element_days, 1),
    }


def sweep(
    db: Database, thresholds: list[float], *, start: datetime, end: datetime
) -> dict[float, pd.DataFrame]:
    """Episodes at other thresholds, formed in memory from the service's own scoring."""
    with db.session() as session:
        kpis = scoring.kpi_infos(session)
        elements = scoring.element_frame(session)
    low = Thresholds(default=min(thresholds))
    periods = pd.date_range(start + STEP, end, freq=STEP).to_pydatetime().tolist()
    parts = []
    for i in range(0, len(periods), 96):
        with db.session() as session:
            scored = scoring.score_periods(
                session, targets=periods[i : i + 96], step=STEP, kpis=kpis,
                elements=elements, thresholds=low, now=end,
            )  # fmt: skip
        parts.append(scored.verdicts)
    verdicts = pd.concat(parts, ignore_index=True)
    out = {}
    for threshold in thresholds:
        frame = verdicts.assign(
            anomalous=verdicts["anomalous"] & (verdicts["confidence"] >= threshold)
        )
        episodes = form_episodes(frame, step=STEP)
        out[threshold] = pd.DataFrame(
            [
                (elements.at[e.element_id, "dn"], e.started_at, e.ended_at or e.last_anomalous_at)
                for e in episodes
            ],
            columns=["dn", "start", "end"],
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sites-per-region", type=int, default=6)
    parser.add_argument("--warmup-days", type=float, default=3.0)
    parser.add_argument("--sweep", default="0.1,0.15,0.2,0.3,0.5")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="beacon-eval-sim-") as tmp:
        db, feed, ingest_s = build(args.days, args.seed, args.sites_per_region, Path(tmp))
        started = time.perf_counter()
        run = service.backfill(db, days=args.days + 1, now=NOW)
        detect_s = time.perf_counter() - started
        start = feed.anchor
        incidents = feed.simulator.incidents_between(start, pd.Timestamp(NOW))
        topology = feed.simulator.topology.elements
        measured = int(topology["element_type"].isin(["cell", "link", "core"]).sum())
        warm = start + pd.Timedelta(days=args.warmup_days)
        report: dict[str, object] = {
            "model_version": detect.MODEL_VERSION,
            "days": args.days,
            "seed": args.seed,
            "elements_with_kpis": measured,
            "ingest_seconds": round(ingest_s, 1),
            "detect_seconds": round(detect_s, 1),
            "periods_evaluated": run.periods,
            "failures": len(run.failures),
        }
        spans = element_spans(db)
        for label, since in (("all", start), (f"after_{args.warmup_days:g}d_warmup", warm)):
            days = (pd.Timestamp(NOW) - since) / pd.Timedelta(days=1)
            report[f"default_threshold_{DEFAULT_MIN_CONFIDENCE}_{label}"] = score(
                spans, incidents, since=since, element_days=measured * days
            )
        thresholds = [float(t) for t in args.sweep.split(",") if t]
        if thresholds:
            by_threshold = sweep(db, thresholds, start=start.to_pydatetime(), end=NOW)
            days = (pd.Timestamp(NOW) - warm) / pd.Timedelta(days=1)
            report["sweep_after_warmup"] = {
                str(t): score(spans_t, incidents, since=warm, element_days=measured * days)
                for t, spans_t in by_threshold.items()
            }
        db.dispose()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
