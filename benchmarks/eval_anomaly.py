"""NAB evaluation of the seasonal robust detector against a rolling z-score baseline.

Runs the detector exactly as `beacon detect` does (services.anomaly.stream.decide, product
default threshold, alert onsets), scores both detectors with NAB's rules
(benchmarks/nab_scoring.py) for the three profiles, per category and overall, and measures
calibration on held-out files (5-fold cross-validation by file).

    python benchmarks/eval_anomaly.py [--nab ../shared/data/nab] [--fit-calibration]

--fit-calibration refits services/anomaly/calibration.json on the built-in simulator
(seeds FIT_SEEDS: three different networks with their own injected incidents) and stops.
The product runs on network KPIs, so the shipped table is fitted on network data.

"True anomaly", per source:
- simulator: the period lies inside an injected incident on that element (or an element it
  drags along) and on a KPI the incident moves (NetworkSimulator.incidents_between);
- NAB, per period: the period lies inside a labelled window (after the probationary rows);
- NAB, per alert: the alert onset lies inside a labelled window.
Reliability is measured on held-out data only: simulator seed HELD_OUT_SEED (a network and
incidents the table never saw) and NAB (never used for fitting the shipped table; NAB-fitted
and pooled tables are compared with 5-fold cross-validation by file).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import nab_scoring as nab  # noqa: E402

from services.anomaly import calibration as cal  # noqa: E402
from services.anomaly.detect import (  # noqa: E402
    DEFAULT_CONFIG,
    NORMAL_COVERAGE,
    NORMAL_SIGMA,
    DetectorConfig,
    band_for_series,
    detect_series_matrix,
    evidence,
    stream_step,
)
from services.anomaly.stream import alert_onsets, clear_rows, decide, with_onsets  # noqa: E402
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE  # noqa: E402
from services.ingest.simulator.network import NetworkSimulator  # noqa: E402
from services.ingest.simulator.topology import SimConfig  # noqa: E402

FOLDS = 5
SIM_HISTORY_DAYS = 28  # history before the scored days (four weekly cycles)
SIM_EVAL_DAYS = 14
FIT_SEEDS = (1, 2, 3)  # simulator networks the shipped table is fitted on
ALT_SEEDS = (4, 5, 6)  # a second, disjoint fit: how much the threshold depends on the draw
HELD_OUT_SEED = 7  # the simulator's default network: held out for reliability
SIM_TARGET = "period inside an injected simulator incident on that element and KPI"
NAB_TARGET = "period inside a labelled NAB anomaly window (after probation)"
BASELINE_WINDOW = 6400  # NAB's Windowed Gaussian window
BASELINE_SIGMA = 3.0
PUBLISHED = {  # NAB scoreboard (full 58-file corpus): standard, low FP, low FN
    "Numenta HTM": (70.5, 62.6, 75.2),
    "CAD OSE": (69.9, 67.0, 73.2),
    "KNN CAD": (58.0, 43.4, 64.8),
    "Windowed Gaussian": (39.6, 20.9, 47.4),
}


def series_of(file: nab.NabFile) -> pd.Series:
    """The file as a value series indexed by timestamp."""
    return pd.Series(file.frame["value"].to_numpy(dtype=float), index=file.frame["timestamp"])


def labels_of(file: nab.NabFile) -> np.ndarray:
    """1 inside a labelled window, 0 outside, NaN in the probationary rows."""
    n = len(file.frame)
    label = np.zeros(n)
    for left, right in nab.window_bounds(file.frame["timestamp"], file.windows):
        label[left : right + 1] = 1.0
    label[: nab.probationary_length(n)] = np.nan
    return label


def baseline_onsets(values: pd.Series) -> np.ndarray:
    """Rolling z-score over the previous rows (Windowed Gaussian-like), same alert onsets."""
    past = values.shift(1).rolling(BASELINE_WINDOW, min_periods=30)
    z = (values - past.mean()) / past.std()
    anomaly = (z.abs() >= BASELINE_SIGMA).to_numpy()
    return alert_onsets(anomaly, clear_rows(values.index))


def fold_of(index: int) -> int:
    """Deterministic fold of the i-th file (sorted by key)."""
    return index % FOLDS


def nab_rows(
    files: list[nab.NabFile], scored: dict[str, pd.DataFrame]
) -> tuple[np.ndarray, np.ndarray]:
    """Evidence and window labels of the given files' ok rows after probation."""
    stats, labels = [], []
    for f in files:
        out = scored[f.key]
        label = labels_of(f)
        keep = (out["status"].to_numpy() == "ok") & ~np.isnan(label)
        stats.append(evidence(out, DEFAULT_CONFIG)[keep])
        labels.append(label[keep])
    return np.concatenate(stats), np.concatenate(labels)


def fit(parts: list[tuple[np.ndarray, np.ndarray]], name: str, target: str, fitted_on: str):
    """Isotonic table on pooled (evidence, label) parts."""
    return cal.fit_table(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        version=name,
        target=target,
        fitted_on=fitted_on,
    )


def nab_table(
    files: list[nab.NabFile], onsets: dict[str, np.ndarray], profiles: list[nab.Profile]
) -> pd.DataFrame:
    """Normalised NAB score per category and overall for each profile."""
    rows = []
    categories = sorted({f.category for f in files})
    for group in [*categories, "overall"]:
        members = [f for f in files if group in ("overall", f.category)]
        row: dict[str, object] = {"set": group, "files": len(members)}
        for profile in profiles:
            parts = [
                nab.score_file(onsets[f.key], f.frame["timestamp"], f.windows, profile, f.key)
                for f in members
            ]
            row[profile.name] = round(nab.normalised(parts), 1)
            if profile.name == "standard":
                row["tp"] = sum(p.tp for p in parts)
                row["fn"] = sum(p.fn for p in parts)
                row["fp"] = sum(p.fp for p in parts)
        rows.append(row)
    return pd.DataFrame(rows)


def sensitivity(
    files: list[nab.NabFile], scored: dict[str, pd.DataFrame], profiles: list[nab.Profile]
) -> pd.DataFrame:
    """Overall NAB scores for other thresholds and alert clear delays (same scores)."""
    rows = []
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        for hours in (0, 4, 8, 12):
            onsets = {}
            for f in files:
                out = scored[f.key].copy()
                delay = 1 if hours == 0 else max(1, round(pd.Timedelta(hours=hours) / step_of(out)))
                onsets[f.key] = with_onsets(out, threshold, delay)["onset"].to_numpy()
            overall = nab_table(files, onsets, profiles).iloc[-1]
            row = {
                "min confidence": threshold,
                "clear after": f"{hours} h" if hours else "1 period",
            }
            row.update({p.name: overall[p.name] for p in profiles})
            rows.append(row)
    return pd.DataFrame(rows)


def step_of(out: pd.DataFrame) -> pd.Timedelta:
    """The stream step of a scored file."""
    return stream_step(pd.DatetimeIndex(out.index))


def simulator_scored(seed: int) -> dict[str, np.ndarray]:
    """Score SIM_EVAL_DAYS of one simulated network after SIM_HISTORY_DAYS of history."""
    start = pd.Timestamp("2026-01-05", tz="UTC")
    sim = NetworkSimulator(SimConfig(start=start, seed=seed))
    step = sim.config.period
    ends = pd.date_range(start + step, periods=(SIM_HISTORY_DAYS + SIM_EVAL_DAYS) * 96, freq=step)
    truth = sim.truth(ends)
    matrix = truth.pivot_table(index=["dn", "kpi"], columns="period_end", values="value")
    targets = ends[SIM_HISTORY_DAYS * 96 :]
    config = DetectorConfig(step=step)
    result = detect_series_matrix(matrix, targets, config)
    dn = np.array([key[0] for key in result["series"]], dtype=object)
    kpi = np.array([key[1] for key in result["series"]], dtype=object)
    period = pd.DatetimeIndex(result["period_end"]).as_unit("ns").asi8
    label = np.zeros(len(result))
    incident_of = np.full(len(result), -1)
    incidents = sim.incidents_between(targets[0], targets[-1])
    for number, incident in enumerate(incidents.itertuples()):
        # The incident's element and the elements it drags along, on the KPIs it moves.
        member = np.isin(dn, [incident.dn, *incident.related_dns]) & np.isin(
            kpi, list(incident.kpis)
        )
        member &= (period > incident.start.value) & (period <= incident.end.value)
        label[member] = 1.0
        incident_of[member] = number
    ok = result["status"].to_numpy() == "ok"
    return {
        "score": result["score"].to_numpy(dtype=np.float64)[ok],
        "evidence": evidence(result, config)[ok],
        "label": label[ok],
        "incident": incident_of[ok],
        "incidents": np.array(len(incidents)),
        "series": np.array(len(matrix)),
    }


def simulator_figures(sim: dict[str, np.ndarray], table, min_confidence: float) -> dict:
    """Incident recall and precision of anomalous periods at the threshold under a table."""
    conf = table.confidence(sim["evidence"])
    flagged = conf >= min_confidence
    days = float(sim["series"]) * SIM_EVAL_DAYS
    return {
        "series": float(sim["series"]),
        "incidents": float(sim["incidents"]),
        "incidents detected": float(len(set(sim["incident"][flagged & (sim["incident"] >= 0)]))),
        "anomalous periods": float(flagged.sum()),
        "precision of anomalous periods": float(sim["label"][flagged].mean())
        if flagged.any()
        else 0.0,
        "flagged periods outside incidents per 1,000 series-days": float(
            (flagged & (sim["label"] == 0)).sum() / days * 1000
        ),
        "base rate": float(sim["label"].mean()),
    }


def sim_parts(seeds: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(evidence, label) of each simulator seed."""
    return [(d["evidence"], d["label"]) for d in (simulator_scored(s) for s in seeds)]


def sim_table(parts: list[tuple[np.ndarray, np.ndarray]], seeds: tuple[int, ...], name: str):
    """The simulator-fitted table (what --fit-calibration ships)."""
    seeds_text = ", ".join(str(s) for s in seeds)
    return fit(parts, name, SIM_TARGET, f"NetworkSimulator seeds {seeds_text}")


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def reliability(name: str, conf: np.ndarray, hit: np.ndarray) -> float:
    """Print the reliability table and ECE of one held-out source; return the ECE."""
    ece = cal.expected_calibration_error(conf, hit)
    print(f"\n#### {name}: ECE = {ece:.4f}, {len(conf)} outputs\n")
    print(markdown(cal.reliability_table(conf, hit).round(4)))
    return ece


def nab_cv(files, scored, extra: list[tuple[np.ndarray, np.ndarray]], name: str):
    """Held-out NAB confidences of a table fitted on the other folds (plus `extra` data)."""
    conf, hit = [], []
    for k in range(FOLDS):
        train = [f for i, f in enumerate(files) if fold_of(i) != k]
        held = [f for i, f in enumerate(files) if fold_of(i) == k]
        table = fit([*extra, nab_rows(train, scored)], f"{name}{k}", NAB_TARGET, "cv")
        stats, labels = nab_rows(held, scored)
        conf.append(table.confidence(stats))
        hit.append(labels)
    return np.concatenate(conf), np.concatenate(hit)


def onset_reliability(files, outs: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Confidence at each NAB alert onset (after probation) and whether it is in a window."""
    conf, hit = [], []
    for f in files:
        out, label = outs[f.key], labels_of(f)
        at = out["onset"].to_numpy() & ~np.isnan(label)
        conf.append(out["confidence"].to_numpy()[at])
        hit.append(label[at])
    return np.concatenate(conf), np.concatenate(hit)


def normal_range_coverage() -> None:
    """Share of ordinary periods (outside incidents) inside expected +- k robust sigma."""
    rows = []
    for seed in (*FIT_SEEDS, HELD_OUT_SEED):
        sim = simulator_scored(seed)
        score = np.abs(sim["score"][sim["label"] == 0])
        score = score[~np.isnan(score)]
        row: dict[str, object] = {"seed": seed, "ordinary periods": len(score)}
        row.update({f"within {k:g} sigma": round(float((score <= k).mean()), 4) for k in (2, 3, 4)})
        rows.append(row)
    print(f"Normal range shown: expected +- {NORMAL_SIGMA:g} robust sigma "
          f"(stated coverage {NORMAL_COVERAGE:.0%})\n")  # fmt: skip
    print(markdown(pd.DataFrame(rows)))


def main() -> None:
    """Score, calibrate and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    parser.add_argument("--fit-calibration", action="store_true")
    parser.add_argument("--normal-range", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.normal_range:
        normal_range_coverage()
        return
    fit_parts = sim_parts(FIT_SEEDS)
    if args.fit_calibration:
        table = sim_table(fit_parts, FIT_SEEDS, "sim-" + "-".join(map(str, FIT_SEEDS)))
        cal.TABLE_PATH.write_text(table.to_json(), encoding="utf-8")
        cal.load_table.cache_clear()
        print(f"wrote {cal.TABLE_PATH} ({len(table.scores)} steps); re-run without the flag")
        return
    files = nab.load_corpus(args.nab)
    profiles = nab.load_profiles(args.nab / "profiles.json")
    print(f"NAB files: {len(files)}, windows: {sum(len(f.windows) for f in files)}")
    scored = {f.key: band_for_series(series_of(f)) for f in files}

    detect_start = time.perf_counter()
    decided = {f.key: decide(series_of(f)) for f in files}
    ours = {key: out["onset"].to_numpy() for key, out in decided.items()}
    detect_seconds = time.perf_counter() - detect_start
    baseline = {f.key: baseline_onsets(series_of(f)) for f in files}
    # The same detector under a table fitted on other simulated networks.
    alt_table = sim_table(sim_parts(ALT_SEEDS), ALT_SEEDS, "alt")
    alt = {f.key: decide(series_of(f), table=alt_table)["onset"].to_numpy() for f in files}

    shipped = cal.load_table()
    print(f"\nDefault threshold: confidence >= {DEFAULT_MIN_CONFIDENCE}")
    print(f"  = evidence >= {shipped.score_for(DEFAULT_MIN_CONFIDENCE):.2f} (shipped table)")
    print(f"  = evidence >= {alt_table.score_for(DEFAULT_MIN_CONFIDENCE):.2f} (seeds {ALT_SEEDS})")
    for name, onsets in [
        ("seasonal_robust (shipped calibration)", ours),
        (f"seasonal_robust (calibration fitted on simulator seeds {ALT_SEEDS})", alt),
        (f"rolling z-score baseline (window {BASELINE_WINDOW}, |z| >= 3, same onsets)", baseline),
    ]:
        print(f"\n### {name}\n")
        print(markdown(nab_table(files, onsets, profiles)))
    print("\n### Sensitivity (shipped calibration, overall, standard / low FP / low FN)\n")
    print(markdown(sensitivity(files, scored, profiles)))
    print("\nPublished scoreboard (full NAB corpus, 58 files): standard / low FP / low FN")
    for name, (s, lfp, lfn) in PUBLISHED.items():
        print(f"  {name}: {s} / {lfp} / {lfn}")

    print("\n### Calibration on held-out data, per source")
    held = simulator_scored(HELD_OUT_SEED)
    sim_conf = shipped.confidence(held["evidence"])
    reliability(f"shipped table, simulator seed {HELD_OUT_SEED}", sim_conf, held["label"])
    figures = simulator_figures(held, shipped, DEFAULT_MIN_CONFIDENCE)
    print("\n  " + ", ".join(f"{k}: {v:.4g}" for k, v in figures.items()))
    nab_stats, nab_labels = nab_rows(files, scored)
    reliability("shipped table, NAB periods", shipped.confidence(nab_stats), nab_labels)
    reliability("shipped table, NAB alert onsets", *onset_reliability(files, decided))
    # Which table to ship: each candidate's ECE on both held-out sources.
    nab_only = fit([nab_rows(files, scored)], "nab", NAB_TARGET, "NAB")
    pooled_sim = fit([*fit_parts, nab_rows(files, scored)], "pooled", "pooled", "pooled")
    rows = []
    for name, sim_c, nab_pair in [
        ("simulator (shipped)", sim_conf, (shipped.confidence(nab_stats), nab_labels)),
        ("NAB", nab_only.confidence(held["evidence"]), nab_cv(files, scored, [], "nab")),
        (
            "pooled simulator + NAB",
            pooled_sim.confidence(held["evidence"]),
            nab_cv(files, scored, fit_parts, "pooled"),
        ),
    ]:
        sim_ece = cal.expected_calibration_error(sim_c, held["label"])
        flagged = sim_c >= DEFAULT_MIN_CONFIDENCE
        rows.append(
            {
                "table fitted on": name,
                "ECE simulator (held-out seed)": round(sim_ece, 4),
                "ECE NAB (held-out files)": round(cal.expected_calibration_error(*nab_pair), 4),
                "max confidence": round(float(np.max(sim_c)), 3),
                "sim periods >= default": int(flagged.sum()),
            }
        )
    print("\n### Candidate tables, held-out ECE per source\n")
    print(markdown(pd.DataFrame(rows)))
    rows_total = sum(len(f.frame) for f in files)
    total = time.perf_counter() - started
    print(f"\nDetection: {rows_total} rows in {detect_seconds:.2f} s; total run {total:.1f} s")


if __name__ == "__main__":
    main()
