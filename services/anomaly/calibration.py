"""Calibrated confidence: evidence -> probability of a true anomaly, plus reliability helpers.

Two tables, both shipped in `calibration.json` next to this module, each with what it
predicts (`target`) and what it was fitted on (`fitted_on`):

- periods: an isotonic (monotone non-decreasing) step function of the detector's evidence
  (|robust score|, or the weighted slower-scale shift when larger; see
  services/anomaly/detect.py) -> P(the period lies inside an incident). Refit with
  `benchmarks/eval_anomaly.py --fit-calibration`.
- episodes (`episode`): an episode is judged as a whole (does it overlap an incident?),
  and its periods' confidences overstate that: a one-period blip at 0.9 is a real
  incident far less often than an hour-long deviation at 0.9. So the episode's confidence
  is its own isotonic function of its peak period confidence, fitted separately per
  stratum of how long the episode has lasted and how many other KPIs of the element
  deviated with it. Refit with `benchmarks/eval_simulator_anomaly.py
  --fit-episode-calibration` (the service's own episodes on the simulator).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

TABLE_PATH = Path(__file__).with_name("calibration.json")
SCORE_GRID = 0.05
SCORE_CAP = 60.0  # evidence beyond this shares the top block (few labelled points there)
EPISODE_BOUNDS = (0.01, 0.99)  # episode confidence never claims certainty


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


@dataclass(frozen=True)
class EpisodeStratum:
    """Episodes of a duration range and a range of other KPIs deviating with them."""

    name: str
    min_periods: int
    max_periods: int | None  # None: no upper bound
    min_others: int  # other KPIs of the element anomalous during the episode
    max_others: int | None
    table: CalibrationTable  # peak period confidence -> P(episode overlaps an incident)
    episodes: int = 0  # how many fitting episodes the stratum held

    def holds(self, periods: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Which episodes fall in this stratum."""
        count, other = np.asarray(periods), np.asarray(others)
        inside = (count >= self.min_periods) & (other >= self.min_others)
        if self.max_periods is not None:
            inside &= count <= self.max_periods
        if self.max_others is not None:
            inside &= other <= self.max_others
        return inside

    def as_dict(self) -> dict[str, object]:
        """Serialised form (inside the episode section of the data file)."""
        return {
            "name": self.name,
            "min_periods": self.min_periods,
            "max_periods": self.max_periods,
            "min_others": self.min_others,
            "max_others": self.max_others,
            "episodes": self.episodes,
            "scores": [round(s, 6) for s in self.table.scores],
            "confidences": [round(c, 6) for c in self.table.confidences],
        }


# (name, min periods, max periods, min other KPIs, max other KPIs); None = unbounded.
StratumSpec = tuple[str, int, int | None, int, int | None]


@dataclass(frozen=True)
class EpisodeTable:
    """Episode confidence: per stratum, an isotonic map of the peak period confidence."""

    version: str
    target: str
    fitted_on: str
    strata: tuple[EpisodeStratum, ...]

    def confidence(
        self,
        period_confidence: np.ndarray | float,
        periods: np.ndarray | int,
        others: np.ndarray | int,
    ) -> np.ndarray:
        """Calibrated episode confidence; the first stratum that holds an episode applies."""
        conf = np.atleast_1d(np.asarray(period_confidence, dtype=np.float64))
        count = np.broadcast_to(np.asarray(periods, dtype=np.int64), conf.shape)
        other = np.broadcast_to(np.asarray(others, dtype=np.int64), conf.shape)
        out = np.full(conf.shape, np.nan)
        for stratum in self.strata:
            todo = np.isnan(out) & stratum.holds(count, other)
            out[todo] = stratum.table.confidence(conf[todo])
        # No stratum (never with the shipped table, whose strata cover every episode):
        # the period confidence stands.
        out = np.where(np.isnan(out), conf, out)
        # A few hundred episodes never make an episode certain either way.
        return np.clip(out, *EPISODE_BOUNDS) if self.strata else out

    def to_dict(self) -> dict[str, object]:
        """Serialised form (the `episode` section of the data file)."""
        return {
            "version": self.version,
            "target": self.target,
            "fitted_on": self.fitted_on,
            "evidence": (
                "peak period confidence, per stratum of anomalous periods so far and of other "
                "KPIs of the element anomalous with the episode"
            ),
            "strata": [s.as_dict() for s in self.strata],
        }


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


@lru_cache(maxsize=4)
def load_episode_table(path: Path = TABLE_PATH) -> EpisodeTable:
    """The shipped episode table (the `episode` section of the data file).

    A file without one (as before episode calibration) gives no strata: episodes then
    report their peak period confidence, as they did.
    """
    body = json.loads(path.read_text(encoding="utf-8")).get("episode")
    if body is None:
        return EpisodeTable(version="none", target="", fitted_on="", strata=())
    version = str(body["version"])
    strata = tuple(
        EpisodeStratum(
            name=str(s["name"]),
            min_periods=int(s["min_periods"]),
            max_periods=None if s.get("max_periods") is None else int(s["max_periods"]),
            min_others=int(s["min_others"]),
            max_others=None if s.get("max_others") is None else int(s["max_others"]),
            episodes=int(s.get("episodes", 0)),
            table=CalibrationTable(
                version=version,
                target=str(body["target"]),
                scores=tuple(float(v) for v in s["scores"]),
                confidences=tuple(float(v) for v in s["confidences"]),
            ),
        )
        for s in body["strata"]
    )
    return EpisodeTable(
        version=version, target=str(body["target"]), fitted_on=str(body["fitted_on"]),
        strata=strata,
    )  # fmt: skip


def save_tables(
    *,
    period: CalibrationTable | None = None,
    episode: EpisodeTable | None = None,
    path: Path = TABLE_PATH,
) -> None:
    """Write one or both tables to the data file, keeping the other as shipped."""
    body = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if period is not None:
        body.update(json.loads(period.to_json()))
    if episode is not None:
        body["episode"] = episode.to_dict()
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    load_table.cache_clear()
    load_episode_table.cache_clear()


def fit_episode_table(
    period_confidence: np.ndarray,
    periods: np.ndarray,
    others: np.ndarray,
    labels: np.ndarray,
    *,
    strata: Sequence[StratumSpec],
    version: str,
    target: str,
    fitted_on: str,
) -> EpisodeTable:
    """One isotonic table per stratum; an episode belongs to the first stratum holding it."""
    conf = np.asarray(period_confidence, dtype=np.float64)
    count = np.asarray(periods, dtype=np.int64)
    other = np.asarray(others, dtype=np.int64)
    hit = np.asarray(labels, dtype=np.float64)
    fitted = []
    free = np.ones(len(conf), dtype=bool)
    empty = CalibrationTable("", "", (0.0,), (0.0,))
    for name, low, high, low_others, high_others in strata:
        shape = EpisodeStratum(name, low, high, low_others, high_others, empty)
        member = free & shape.holds(count, other)
        free &= ~member
        if not member.any():
            raise ValueError(f"no fitting episodes in stratum {name!r}")
        table = fit_table(conf[member], hit[member], version=version, target=target,
                          fitted_on=fitted_on)  # fmt: skip
        fitted.append(replace(shape, table=table, episodes=int(member.sum())))
    return EpisodeTable(version=version, target=target, fitted_on=fitted_on, strata=tuple(fitted))


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
