"""`beacon detect`: one JSON line per row, streaming semantics, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from services.cli import cli

KEYS = ["timestamp", "value", "score", "confidence", "anomaly", "status"]


def run(*args: str) -> Result:
    """Invoke `beacon ARGS` without touching any database."""
    result = CliRunner().invoke(cli, list(args), env={"BEACON_DATABASE_URL": None})
    assert "Traceback" not in result.output
    assert "Traceback" not in (result.stderr or "")
    return result


def lines(result: Result) -> list[dict]:
    """The JSON objects printed on stdout."""
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def write_series(
    path: Path, n: int = 700, *, names: tuple[str, str] = ("timestamp", "value")
) -> Path:
    """A 5-minute series with a daily cycle, noise and one spike at row 650."""
    rng = np.random.default_rng(4)
    stamps = pd.date_range("2026-01-01", periods=n, freq="5min")
    values = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 0.5, n)
    if n > 650:
        values[650] += 60
    frame = pd.DataFrame({names[0]: stamps.strftime("%Y-%m-%d %H:%M:%S"), names[1]: values})
    frame.to_csv(path, index=False)
    return path


def test_one_json_line_per_row_in_input_order(tmp_path: Path) -> None:
    path = write_series(tmp_path / "s.csv")
    rows = lines(run("detect", str(path)))
    source = pd.read_csv(path)
    assert len(rows) == len(source)
    assert all(list(row) == KEYS for row in rows)
    assert [r["timestamp"] for r in rows] == source["timestamp"].tolist()
    assert rows[0]["status"] == "insufficient_data"
    assert rows[0]["score"] is None
    assert rows[0]["anomaly"] is False
    assert rows[650]["anomaly"] is True
    assert rows[650]["score"] > 0
    assert 0 < rows[650]["confidence"] <= 1
    assert sum(r["anomaly"] for r in rows) <= 3


def test_ds_y_columns_are_picked_up(tmp_path: Path) -> None:
    path = write_series(tmp_path / "p.csv", names=("ds", "y"))
    rows = lines(run("detect", str(path)))
    assert rows[650]["anomaly"] is True


def test_explicit_columns(tmp_path: Path) -> None:
    path = write_series(tmp_path / "c.csv", names=("when", "kbps"))
    rows = lines(run("detect", str(path), "--time-col", "when", "--value-col", "kbps"))
    assert len(rows) == 700


def test_truncated_file_gives_the_same_lines(tmp_path: Path) -> None:
    full_path = write_series(tmp_path / "full.csv")
    full = run("detect", str(full_path)).stdout.splitlines()
    for cut in (100, 651):
        part_path = tmp_path / f"part{cut}.csv"
        pd.read_csv(full_path).iloc[:cut].to_csv(part_path, index=False)
        assert run("detect", str(part_path)).stdout.splitlines() == full[:cut]


def test_empty_and_nan_values_are_missing(tmp_path: Path) -> None:
    path = write_series(tmp_path / "g.csv", n=300)
    text = path.read_text().splitlines()
    text[200] = text[200].split(",")[0] + ","
    text[201] = text[201].split(",")[0] + ",NaN"
    path.write_text("\n".join(text) + "\n")
    rows = lines(run("detect", str(path)))
    assert [rows[199]["status"], rows[200]["status"]] == ["missing", "missing"]
    assert rows[199]["value"] is None
    assert rows[199]["anomaly"] is False
    assert rows[210]["status"] == "ok"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("time,v\n2026-01-01,1\n", (), "no time column"),
        ("timestamp,v\n2026-01-01,1\n", (), "no value column"),
        ("timestamp,value\n2026-01-01,1\n", ("--value-col", "kpi"), "no value column 'kpi'"),
        ("timestamp,value\n2026-01-01,1\nyesterday,2\n", (), "line 3: cannot read timestamp"),
        ("timestamp,value\n2026-01-01,1\n2026-01-02,high\n", (), "line 3: value 'high'"),
        ("", (), "empty"),
    ],
)
def test_bad_input_is_a_clear_error_with_status_2(
    tmp_path: Path, content: str, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run("detect", str(path), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("error: ")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    result = run("detect", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "no such file" in result.stderr
