"""Calibrated confidence: evidence -> probability of a true anomaly, plus reliability helpers.

The mapping is an isotonic (monotone non-decreasing) step function of the detector's
evidence (|robust score|, or the weighted slower-scale shift when larger; see
services/anomaly/detect.py), fitted offline on labelled data and shipped as
`calibration.json` next to this module. `benchmarks/eval_anomaly.py --fit-calibration`
refits it reproducibly from the built-in simulator. What "true anomaly" means and what the
table was fitted on are stored in the file itself (`target`, `fitted_on`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

TABLE_PATH = Path(__file__).with_name("calibration.json")
SCORE_GRID = 0.05
SCORE_CAP = 60.0  # evidence beyond this shares the top block (few labelled points there)


@dataclass(frozen=True)
class CalibrationTable:
    """Isotonic step function: breakpoints in |score| and the confidence from each on."""

    version: str
    target: str
    scores: tuple[float, ...]
    confidences: tuple[float, ...]
    fitted_on: str = ""

    def confidence(self, score: np.ndarray | float) -> np.ndarray:
        """Calibrated confidence for signed scores (NaN -> 0)."""
        magnitude = np.abs(np.asarray(score, dtype=np.float64))
        edges = np.asarray(self.scores)
        values = np.asarray(self.confidences)
        # Right-continuous steps: a score at or above a breakpoint gets that block's value.
        index = np.searchsorted(edges, np.nan_to_num(magnitude, nan=-1.0), side="right") - 1
        out = np.where(index >= 0, values[np.clip(index, 0, len(values) - 1)], 0.0)
        return np.where(np.isnan(magnitude), 0.0, out)

    def score_for(self, confidence: float) -> float:
        """Smallest |score| whose calibrated confidence reaches `confidence` (inf if none)."""
        reached = [s for s, c in zip(self.scores, self.confidences, strict=True) if c >= confidence]
        return float(reached[0]) if reached else float("inf")

    def to_json(self) -> str:
        """Serialised form written to the data file."""
        body = {
            "version": self.version,
            "target": self.target,
            "fitted_on": self.fitted_on,
            "scores": [round(s, 6) for s in self.scores],
            "confidences": [round(c, 6) for c in self.confidences],
        }
        return json.dumps(body, indent=1) + "\n"


@lru_cache(maxsize=4)
def load_table(path: Path = TABLE_PATH) -> CalibrationTable:
    """The shipped calibration table (cached: it is immutable data)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    return CalibrationTable(
        version=str(body["version"]),
        target=str(body["target"]),
        scores=tuple(float(s) for s in body["scores"]),
        confidences=tuple(float(c) for c in body["confidences"]),
        fitted_on=str(body.get("fitted_on", "")),
    )


def calibrated(score: np.ndarray | float, table: CalibrationTable | None = None) -> np.ndarray:
    """Calibrated confidence 0-1 for robust scores, from the shipped table by default."""
    return (table or load_table()).confidence(score)


def isotonic_fit(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: block start x and non-decreasing fitted y."""
    order = np.argsort(x, kind="mergesort")
    xs = np.asarray(x, dtype=np.float64)[order]
    ys = np.asarray(y, dtype=np.float64)[order]
    ws = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=np.float64)[order]
    # Start from one block per distinct x so equal scores always share a confidence.
    starts = np.flatnonzero(np.r_[True, np.diff(xs) > 0])
    sums = np.add.reduceat(ys * ws, starts)
    wsum = np.add.reduceat(ws, starts)
    block_x: list[float] = []
    block_sum: list[float] = []
    block_w: list[float] = []
    for bx, s, w in zip(xs[starts], sums, wsum, strict=True):
        block_x.append(float(bx))
        block_sum.append(float(s))
        block_w.append(float(w))
        while len(block_x) > 1 and block_sum[-2] / block_w[-2] >= block_sum[-1] / block_w[-1]:
            merged_sum, merged_w = block_sum.pop(), block_w.pop()
            block_sum[-1] += merged_sum
            block_w[-1] += merged_w
            block_x.pop()
    return np.asarray(block_x), np.asarray(block_sum) / np.asarray(block_w)


def fit_table(
    scores: np.ndarray, labels: np.ndarray, *, version: str, target: str, fitted_on: str
) -> CalibrationTable:
    """Isotonic calibration table from |score| and 0/1 labels (NaN scores dropped)."""
    magnitude = np.abs(np.asarray(scores, dtype=np.float64))
    keep = ~np.isnan(magnitude)
    # A 0.05-sigma grid capped at SCORE_CAP keeps the shipped table small.
    grid = np.floor(np.minimum(magnitude[keep], SCORE_CAP) / SCORE_GRID) * SCORE_GRID
    xs, ys = isotonic_fit(grid, np.asarray(labels, dtype=np.float64)[keep])
    # Adjacent blocks with equal confidence are one step.
    distinct = np.r_[True, np.diff(ys) > 1e-12]
    xs, ys = xs[distinct], ys[distinct]
    # Anchor at 0 so every finite score maps to a block.
    if xs[0] > 0:
        xs = np.r_[0.0, xs]
        ys = np.r_[ys[0], ys]
    return CalibrationTable(
        version=version,
        target=target,
        scores=tuple(float(v) for v in xs),
        confidences=tuple(float(v) for v in ys),
        fitted_on=fitted_on,
    )


def reliability_table(confidence: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-width confidence bins: count, mean confidence and observed frequency in each."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(outcome, dtype=np.float64)
    keep = ~np.isnan(conf) & ~np.isnan(hit)
    conf, hit = conf[keep], hit[keep]
    index = np.clip((conf * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        member = index == b
        n = int(member.sum())
        rows.append(
            {
                "bin_low": b / bins,
                "bin_high": (b + 1) / bins,
                "count": n,
                "mean_confidence": float(conf[member].mean()) if n else float("nan"),
                "observed_rate": float(hit[member].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, bins: int = 10
) -> float:
    """ECE: count-weighted mean |observed rate - mean confidence| over equal-width bins."""
    table = reliability_table(confidence, outcome, bins)
    filled = table[table["count"] > 0]
    if filled.empty:
        return float("nan")
    gap = (filled["observed_rate"] - filled["mean_confidence"]).abs()
    return float((gap * filled["count"]).sum() / filled["count"].sum())
