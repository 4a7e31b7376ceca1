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
        [--warmup-days 3] [--sweep 0.1,0.15,0.2,0.3,0.5] [--history-days 0] [--by-day-from 8]

The report also counts the stored episodes per day of history they started on (day 0 =
the first stored day) with how many overlap an incident, and sums them from
`--by-day-from` on: on a new install (no --history-days) days 8-14 hold the second weekend.

Episode calibration (services/anomaly/calibration.py, the `episode` table): an episode's
confidence is P(it overlaps an injected incident on its element or one the incident drags
along). `--fit-episode-calibration` runs the service on simulator seeds 1, 2, 3 (28 days
of history stored, the next 14 days scored: the regime the period table was fitted in),
fits one isotonic table of the peak period confidence per stratum of duration and
corroboration, and writes it into calibration.json. `--episode-reliability` reports, on
the seed given (held out: 7), the reliability of what episodes report now and of what
they reported before (their peak period confidence), from the same stored run.

    python benchmarks/eval_simulator_anomaly.py --fit-episode-calibration [--episodes-dir D]
    python benchmarks/eval_simulator_anomaly.py --episode-reliability --seed 7 --history-days 28
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

from services.anomaly import calibration as cal
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
FIT_SEEDS = (1, 2, 3)  # as the period table (benchmarks/eval_anomaly.py)
FIT_HISTORY_DAYS = 28  # as the period table: four weekly cycles before the scored days
FIT_DAYS = 14
EPISODE_TARGET = (
    "episode overlaps an injected simulator incident on its element or an element it drags along"
)
# The first stratum holding an episode applies (see cal.StratumSpec). Chosen by
# leave-one-seed-out ECE and Brier score over the fitting seeds against peak-only,
# duration, and duration x others strata (BENCHMARKS.md): whether other KPIs of the
# element deviate with the episode is what the peak period confidence misses; duration
# adds nothing once both are known.
EPISODE_STRATA: list[cal.StratumSpec] = [
    ("alone", 1, None, 0, 0),
    ("with other KPIs", 1, None, 1, None),
]


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


def episode_frame(
    db: Database, incidents: pd.DataFrame, *, since: datetime | None = None
) -> pd.DataFrame:
    """Stored episodes with their evidence and whether each overlaps an injected incident.

    With `since`, only episodes that started then or later (the scored window: late data
    re-evaluates older periods too, and those episodes stand on partial history).
    """
    with db.session() as session:
        rows = session.execute(
            select(Element.dn, Anomaly.started_at, Anomaly.ended_at, Anomaly.peak_at,
                   Anomaly.confidence, Anomaly.related_kpis, Anomaly.data_quality,
                   Anomaly.suppressed, Anomaly.score, Anomaly.explanation, Anomaly.kpi_id)
            .join(Element, Element.id == Anomaly.element_id)
            .order_by(Anomaly.id)
        ).all()  # fmt: skip
    truth: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for row in incidents.itertuples(index=False):
        for dn in (row.dn, *row.related_dns):
            truth.setdefault(dn, []).append((row.start + STEP, row.end + STEP))
    out = []
    for dn, start, end, peak, conf, related, dq, suppressed, score_, doc, kpi_id in rows:
        doc = doc or {}
        last = pd.Timestamp(end or doc.get("last_anomalous_at") or peak)
        first = pd.Timestamp(start)
        if since is not None and first < pd.Timestamp(since):
            continue
        out.append(
            {
                "ongoing": end is None,
                "dn": dn,
                "kpi_id": kpi_id,
                "start": first,
                "end": last,
                "confidence": float(conf),
                "period_confidence": float(doc.get("period_confidence", conf)),
                "periods": int(doc.get("periods", 1)),
                "related": len(related or []),
                "flags": ",".join((dq or {}).get("flags", [])),
                "suppressed": bool(suppressed),
                "score": float(score_),
                "label": float(any(lo <= last and hi >= first for lo, hi in truth.get(dn, []))),
            }
        )
    return pd.DataFrame(out)


def episode_run(
    seed: int, *, days: int, history_days: int, sites: int, workdir: Path
) -> pd.DataFrame:
    """The service's stored episodes of one simulated network, with evidence and label."""
    db, feed, _ingest_s = build(days + history_days, seed, sites, workdir)
    service.backfill(db, days=days + (0 if history_days else 1), now=NOW)
    incidents = feed.simulator.incidents_between(feed.anchor, pd.Timestamp(NOW))
    since = NOW - timedelta(days=days) if history_days else None
    frame = episode_frame(db, incidents, since=since).assign(seed=seed)
    db.dispose()
    return frame


def fit_episodes(frame: pd.DataFrame, seeds: tuple[int, ...]) -> cal.EpisodeTable:
    """The episode table from stored episodes of the fitting seeds."""
    return cal.fit_episode_table(
        frame["period_confidence"].to_numpy(),
        frame["periods"].to_numpy(),
        frame["related"].to_numpy(),
        frame["label"].to_numpy(),
        strata=EPISODE_STRATA,
        version="ep-sim-" + "-".join(map(str, seeds)),
        target=EPISODE_TARGET,
        fitted_on=(
            f"the detection service's episodes on NetworkSimulator seeds "
            f"{', '.join(map(str, seeds))} ({FIT_DAYS} days scored after "
            f"{FIT_HISTORY_DAYS} days of history)"
        ),
    )


def by_day(frame: pd.DataFrame, start: pd.Timestamp, *, from_day: int) -> dict[str, object]:
    """Episodes and the share overlapping an incident per day of history they started on."""
    day = ((pd.to_datetime(frame["start"], utc=True) - start) // pd.Timedelta(days=1)).astype(int)
    counts = frame.assign(day=day).groupby("day")["label"].agg(["count", "sum"])
    later = frame[day >= from_day]
    return {
        "per_day": {
            int(d): f"{int(r['count'])} ({int(r['sum'])} real)" for d, r in counts.iterrows()
        },
        f"from_day_{from_day}": {
            "episodes": len(later),
            "overlapping_an_incident": int(later["label"].sum()),
            "share_real": round(float(later["label"].mean()), 3) if len(later) else None,
        },
    }


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def episode_reliability(frame: pd.DataFrame, table: cal.EpisodeTable) -> dict[str, object]:
    """ECE and reliability of episode confidence: before (peak period) and after (table)."""
    hit = frame["label"].to_numpy()
    before = frame["period_confidence"].to_numpy()
    after = table.confidence(before, frame["periods"].to_numpy(), frame["related"].to_numpy())
    out: dict[str, object] = {"episodes": len(frame), "overlap an incident": float(hit.mean())}
    for name, conf in (("before", before), ("after", after)):
        flagged = conf >= DEFAULT_MIN_CONFIDENCE
        out[f"ECE {name}"] = round(cal.expected_calibration_error(conf, hit), 4)
        out[f"mean confidence {name}"] = round(float(conf.mean()), 3)
        out[f"episodes >= {DEFAULT_MIN_CONFIDENCE} {name}"] = int(flagged.sum())
        out[f"of those overlapping an incident {name}"] = (
            round(float(hit[flagged].mean()), 3) if flagged.any() else None
        )
        out[f"reliability {name}"] = cal.reliability_table(conf, hit).round(3)
    # What the service stored (the product path): equals "after" once the table is shipped.
    stored = frame["confidence"].to_numpy()
    out["ECE of the stored confidence"] = round(cal.expected_calibration_error(stored, hit), 4)
    out["stored = after"] = bool(abs(stored - after.round(4)).max() < 1e-4)
    return out


def print_reliability(report: dict[str, object]) -> None:
    """The figures, then each reliability table as markdown."""
    for key, value in report.items():
        if isinstance(value, pd.DataFrame):
            print(f"\n{key}\n\n{markdown(value[value['count'] > 0])}")
        else:
            print(f"{key}: {value}")


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


def seed_episodes(seed: int, args: argparse.Namespace, *, days: int, history: int) -> pd.DataFrame:
    """Stored episodes of one seed, from --episodes-dir when a run was kept there."""
    name = f"episodes-seed{seed}-{days}d-after-{history}d.csv"
    kept = args.episodes_dir / name if args.episodes_dir else None
    if kept is not None and kept.exists():
        frame = pd.read_csv(kept, parse_dates=["start", "end"])
        # Only the scored window (runs kept before episode_frame filtered it themselves).
        since = pd.Timestamp(NOW - timedelta(days=days)) if history else None
        return frame if since is None else frame[frame["start"] >= since]
    with tempfile.TemporaryDirectory(prefix="beacon-eval-ep-") as tmp:
        frame = episode_run(
            seed, days=days, history_days=history, sites=args.sites_per_region, workdir=Path(tmp)
        )
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(kept, index=False)
    return frame


def episode_main(args: argparse.Namespace) -> None:
    """Fit the episode table on FIT_SEEDS, or report episode reliability on --seed."""
    if args.fit_episode_calibration:
        frame = pd.concat(
            [seed_episodes(s, args, days=FIT_DAYS, history=FIT_HISTORY_DAYS) for s in FIT_SEEDS],
            ignore_index=True,
        )
        table = fit_episodes(frame, FIT_SEEDS)
        cal.save_tables(episode=table)
        print(f"wrote the episode table {table.version} to {cal.TABLE_PATH}")
        for stratum in table.strata:
            print(f"  {stratum.name}: {stratum.episodes} episodes, "
                  f"{len(stratum.table.scores)} steps")  # fmt: skip
        print_reliability(episode_reliability(frame, table))
        return
    frame = seed_episodes(args.seed, args, days=args.days, history=args.history_days)
    table = cal.load_episode_table()
    print(f"seed {args.seed}, {args.days} days after {args.history_days} days of history, "
          f"episode table {table.version}")  # fmt: skip
    print_reliability(episode_reliability(frame, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sites-per-region", type=int, default=6)
    parser.add_argument("--warmup-days", type=float, default=3.0)
    parser.add_argument("--sweep", default="0.1,0.15,0.2,0.3,0.5")
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--episodes-out", type=Path, default=None)
    parser.add_argument(
        "--by-day-from", type=int, default=8, help="summarise episodes from this day of history"
    )
    parser.add_argument("--fit-episode-calibration", action="store_true")
    parser.add_argument("--episode-reliability", action="store_true")
    parser.add_argument(
        "--episodes-dir", type=Path, default=None, help="reuse/keep per-seed episode CSVs here"
    )
    args = parser.parse_args()
    if args.fit_episode_calibration or args.episode_reliability:
        episode_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="beacon-eval-sim-") as tmp:
        total = args.days + args.history_days
        db, feed, ingest_s = build(total, args.seed, args.sites_per_region, Path(tmp))
        started = time.perf_counter()
        # With --history-days, that much history is stored but only the last --days scored.
        run = service.backfill(db, days=args.days + (0 if args.history_days else 1), now=NOW)
        detect_s = time.perf_counter() - started
        start = feed.anchor + pd.Timedelta(days=args.history_days)
        incidents = feed.simulator.incidents_between(feed.anchor, pd.Timestamp(NOW))
        topology = feed.simulator.topology.elements
        measured = int(topology["element_type"].isin(["cell", "link", "core"]).sum())
        warm = start + pd.Timedelta(days=args.warmup_days)
        report: dict[str, object] = {
            "model_version": detect.MODEL_VERSION,
            "days": args.days,
            "history_days": args.history_days,
            "seed": args.seed,
            "elements_with_kpis": measured,
            "ingest_seconds": round(ingest_s, 1),
            "detect_seconds": round(detect_s, 1),
            "periods_evaluated": run.periods,
            "failures": len(run.failures),
        }
        spans = element_spans(db)
        stored = episode_frame(db, incidents)
        if args.episodes_out is not None:
            stored.to_csv(args.episodes_out, index=False)
        if len(stored):
            # By day of history (day 0 = the first stored day): cold start and weekends.
            report["episodes_by_day_of_history"] = by_day(
                stored, feed.anchor, from_day=args.by_day_from
            )
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
