"""`beacon forecast`: CSV out, interval levels, breach summary, clear input errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from services.cli import cli


def run(*args: str) -> Result:
    """Invoke `beacon ARGS` without touching any database."""
    result = CliRunner().invoke(cli, list(args), env={"BEACON_DATABASE_URL": None})
    assert "Traceback" not in result.output
    assert "Traceback" not in (result.stderr or "")
    return result


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "series.csv"
    ds = pd.date_range("2026-01-05", periods=70, freq="D")
    rng = np.random.default_rng(3)
    y = 60 + 0.3 * np.arange(70) - 10 * (ds.day_of_week >= 5) + rng.normal(0, 1, 70)
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%d"), "value": y}).to_csv(path, index=False)
    return path


def table(result: Result) -> pd.DataFrame:
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout))


def test_prints_the_forecast_as_csv(series_csv: Path) -> None:
    result = run(
        "forecast", str(series_csv), "--horizon", "14", "--samples", "100", "--cutoffs", "1"
    )
    out = table(result)
    assert list(out.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(out) == 14
    assert out["ds"].iloc[0] == "2026-03-16T00:00:00"
    assert (out["yhat_lower"] < out["yhat"]).all()
    assert (out["yhat"] < out["yhat_upper"]).all()
    assert set(out["model"]) <= {"prophet", "seasonal_naive"}
    assert "ok" in result.stderr


def test_other_interval_levels_come_from_the_paths(series_csv: Path) -> None:
    args = ("forecast", str(series_csv), "--horizon", "7", "--samples", "200", "--cutoffs", "1")
    narrow = table(run(*args, "--interval", "0.5"))
    wide = table(run(*args, "--interval", "0.95"))
    assert (
        (narrow["yhat_upper"] - narrow["yhat_lower"]) < (wide["yhat_upper"] - wide["yhat_lower"])
    ).all()


def test_capacity_adds_a_breach_summary_on_stderr(series_csv: Path) -> None:
    result = run(
        "forecast",
        str(series_csv),
        "--horizon",
        "60",
        "--samples",
        "100",
        "--capacity",
        "75",
        "--cutoffs",
        "1",
    )
    table(result)
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["capacity"] == 75.0
    assert summary["p_breach_30"] <= summary["p_breach_60"]
    assert summary["p_breach_60"] > 0.5
    assert summary["p_breach_90"] is None  # a 60-day forecast says nothing about 90 days
    assert summary["breach_date"] is not None


def test_ds_y_columns_and_explicit_names(tmp_path: Path) -> None:
    path = tmp_path / "named.csv"
    ds = pd.date_range("2026-01-01", periods=40, freq="D")
    load = np.linspace(10, 20, 40) + np.random.default_rng(0).normal(0, 0.5, 40)
    pd.DataFrame({"when": ds, "load": load}).to_csv(path, index=False)
    args = ("forecast", str(path), "--horizon", "3", "--samples", "50", "--cutoffs", "0")
    out = table(run(*args, "--time-col", "when", "--value-col", "load"))
    assert len(out) == 3


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("ds,y\n2026-01-01,1\n", ["--value-col", "load"], "no value column 'load'"),
        ("a,b\n1,2\n", [], "no time column"),
        ("ds,y\nyesterday,1\n", [], "cannot read timestamp"),
        ("ds,y\n2026-01-01,lots\n", [], "is not a number"),
        ("", [], "the file is empty"),
    ],
)
def test_bad_input_is_a_usage_error(
    tmp_path: Path, content: str, extra: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run("forecast", str(path), "--horizon", "3", *extra)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_file_and_bad_frequency(tmp_path: Path, series_csv: Path) -> None:
    missing = run("forecast", str(tmp_path / "nope.csv"), "--horizon", "3")
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    bad = run("forecast", str(series_csv), "--horizon", "3", "--freq", "fortnightly")
    assert bad.exit_code == 2
    assert "not a pandas frequency" in bad.stderr


def test_too_short_history_fails_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    ds = pd.date_range("2026-01-01", periods=10, freq="D")
    pd.DataFrame({"ds": ds, "y": np.arange(10.0)}).to_csv(path, index=False)
    result = run("forecast", str(path), "--horizon", "3")
    assert result.exit_code == 1
    assert "needs at least 28" in result.stderr
