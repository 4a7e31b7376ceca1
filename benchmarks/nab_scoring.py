"""NAB scoring, following numenta/NAB `nab/sweeper.py` and `runner.normalize` (v1.1 rules).

Per file: the first min(floor(0.15 n), 0.15 × 5000) rows are probationary and not scored.
A detection inside a labelled window scores scaledSigmoid(-(right - i + 1) / width) ×
tpWeight / scaledSigmoid(-1) and only the best (earliest) detection of a window counts; a
window without detection costs -fnWeight; a detection outside any window costs
fpWeight × scaledSigmoid(distance past the preceding window / (its width - 1)), or
-fpWeight when no window precedes it. Corpus normalisation: 100 × (raw - null) /
(perfect - null), with null = the score of no detections and perfect = tpWeight × windows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class Profile:
    """One NAB application profile's cost matrix."""

    name: str
    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class NabFile:
    """One labelled NAB series."""

    key: str  # "category/file.csv", as in combined_windows.json
    frame: pd.DataFrame  # timestamp, value
    windows: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]

    @property
    def category(self) -> str:
        """The corpus category (folder)."""
        return self.key.split("/", 1)[0]


@dataclass(frozen=True)
class FileScore:
    """Raw NAB score of one file under one profile, with its parts."""

    key: str
    raw: float
    null: float
    perfect: float
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # detections outside windows (after probation)


def load_profiles(path: Path) -> list[Profile]:
    """The profiles from NAB's profiles.json."""
    body = json.loads(path.read_text(encoding="utf-8"))
    profiles = []
    for name, entry in body.items():
        cost = entry["CostMatrix"]
        profiles.append(Profile(name, cost["tpWeight"], cost["fpWeight"], cost["fnWeight"]))
    return profiles


def load_corpus(root: Path) -> list[NabFile]:
    """Every labelled file under root/data, with its windows, in a stable order."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text(encoding="utf-8"))
    files = []
    for key in sorted(windows):
        path = root / "data" / key
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        limits = tuple((pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows[key])
        files.append(NabFile(key, frame, limits))
    return files


def probationary_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored."""
    return int(min(math.floor(percent * rows), percent * 5000))


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's scaled sigmoid: 2·sigmoid(-5x) - 1, and -1 from x >= 3."""
    x = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, value)


def window_bounds(timestamps: pd.Series, windows: tuple) -> list[tuple[int, int]]:
    """Row index of the first and last row of each window (rows with start <= t <= end)."""
    stamps = pd.DatetimeIndex(timestamps)
    bounds = []
    for start, end in windows:
        # A mask, not a binary search: some NAB files step back in time once.
        inside = np.flatnonzero((stamps >= start) & (stamps <= end))
        if len(inside):
            bounds.append((int(inside[0]), int(inside[-1])))
    return bounds


def sweep_scores(
    n: int, bounds: list[tuple[int, int]], profile: Profile
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the weighted score a detection there earns, and its window (-1 = none)."""
    index = np.arange(n)
    score = np.empty(n)
    window = np.full(n, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(np.array(-1.0)))
    previous_right, previous_width = None, None
    cursor = 0
    for w, (left, right) in enumerate([*bounds, (n, n)]):
        gap = index[cursor:left]
        if previous_right is None:
            position = np.full(len(gap), 3.0)
        else:
            with np.errstate(divide="ignore"):
                position = np.abs(previous_right - gap) / float(previous_width - 1)
        score[cursor:left] = scaled_sigmoid(position) * profile.fp
        if left >= n:
            break
        width = float(right - left + 1)
        inside = index[left : right + 1]
        position = -(right - inside + 1) / width
        score[left : right + 1] = scaled_sigmoid(position) * profile.tp / max_tp
        window[left : right + 1] = w
        previous_right, previous_width = right, width
        cursor = right + 1
    return score, window


def score_file(
    detections: np.ndarray, timestamps: pd.Series, windows: tuple, profile: Profile, key: str = ""
) -> FileScore:
    """NAB raw score of boolean detections (one per row) on one file."""
    hits = np.asarray(detections, dtype=bool)
    n = len(hits)
    bounds = window_bounds(timestamps, windows)
    score, window = sweep_scores(n, bounds, profile)
    scorable = np.arange(n) >= probationary_length(n)
    raw, tp, fn = 0.0, 0, 0
    scored_windows = 0
    for w in range(len(bounds)):
        member = scorable & (window == w)
        if not member.any():
            continue  # a window wholly inside probation is not scored (NAB drops its rows)
        scored_windows += 1
        found = member & hits
        if found.any():
            tp += 1
            raw += max(-profile.fn, float(score[found].max()))
        else:
            fn += 1
            raw -= profile.fn
    false_alarm = scorable & hits & (window < 0)
    raw += float(score[false_alarm].sum())
    return FileScore(
        key=key,
        raw=raw,
        null=-profile.fn * scored_windows,
        perfect=profile.tp * len(windows),
        tp=tp,
        fn=fn,
        fp=int(false_alarm.sum()),
    )


def normalised(scores: list[FileScore]) -> float:
    """NAB's normalised score of a set of files: null = 0, perfect = 100."""
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    if perfect == null:
        # A set with no windows (artificialNoAnomaly): only false positives can move it.
        return float("nan")
    return 100.0 * (raw - null) / (perfect - null)
