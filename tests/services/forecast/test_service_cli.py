"""`beacon forecasts refresh` and `beacon forecasts status` against a SQLite data dir."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from forecast_service_support import quick_fit
from sqlalchemy import select
from testkit import ADMIN_PASSWORD, seeded_database

from services.cli import cli
from services.cli import forecasts as forecasts_cli
from services.db import Database
from services.db.models import DailyAggregate, Element, Forecast, Kpi
from services.forecast.executor import make_executor

DN = "SubNetwork=North,ManagedElement=S1,EUtranCellFDD=C{}"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    with (
        seeded_database(f"sqlite:///{tmp_path / 'beacon.db'}") as db,
        db.session(write=True) as session,
    ):
        kpis = dict(session.execute(select(Kpi.name, Kpi.id)).all())
        for i, days in ((1, 30), (2, 30), (3, 5)):
            element = Element(dn=DN.format(i), name=f"S1-C{i}", element_type="cell",
                              domain="RAN", region="North")  # fmt: skip
            session.add(element)
            session.flush()
            for kpi in ("prb_util_dl", "rrc_setup_sr"):
                for n in range(days):
                    session.add(DailyAggregate(element_id=element.id, kpi_id=kpis[kpi],
                                               day=date(2026, 11, 1) + timedelta(days=n),
                                               busy_hour_value=50.0 + n % 7 + i,
                                               busy_hour=20, daily_mean=30.0,
                                               daily_max=60.0, samples=96))  # fmt: skip
    real = make_executor
    monkeypatch.setattr(
        forecasts_cli,
        "make_executor",
        lambda spec, *, workers: real(spec, workers=workers, fit=quick_fit),
    )
    return {
        "BEACON_DATA_DIR": str(tmp_path),
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIMULATOR": "0",
        "BEACON_DATABASE_URL": None,
        "BEACON_SECRET_KEY": None,
        "BEACON_FORECAST_WORKERS": "1",
    }


def run(env: dict[str, str | None], *args: str) -> Result:
    result = CliRunner().invoke(cli, ["forecasts", *args], env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 1, 2), result.output
    return result


def current(tmp_path: Path) -> dict[int, Forecast]:
    with seeded_database(f"sqlite:///{tmp_path / 'beacon.db'}") as db:
        return _current(db)


def _current(db: Database) -> dict[int, Forecast]:
    with db.session() as session:
        rows = session.scalars(select(Forecast).where(Forecast.is_current.is_(True)))
        return {f.element_id: f for f in rows}


def test_refresh_fits_stale_series_then_status_reports_them(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run(env, "refresh", "--workers", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["planned"] == 3
    assert summary["fitted"] == 2
    assert summary["insufficient"] == 1
    assert "forecasts" in result.stderr  # the progress bar's label
    assert len(current(tmp_path)) == 3

    again = json.loads(run(env, "refresh").stdout.strip().splitlines()[-1])
    assert again["planned"] == 0
    assert again["skipped"] == 3

    text = run(env, "status").stdout
    assert "3 current daily busy-hour series" in text
    assert "ok:" in text
    assert "insufficient_history:" in text
    assert "stale:       0 series" in text
    assert "last run:    never" in text
    status = json.loads(run(env, "status", "--json").stdout)
    assert status["forecasts"]["ok"] == 2
    assert status["stale"] == 0


def test_refresh_of_one_element_refits_it_even_when_current(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(env, "refresh", "--limit", "1")
    first = current(tmp_path)
    assert len(first) == 1
    (element_id,) = first
    result = run(env, "refresh", "--element", DN.format(1), "--kpi", "prb_util_dl")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["planned"] == 1
    assert summary["fitted"] == 1
    assert current(tmp_path)[element_id].id != first[element_id].id
    by_id = run(env, "refresh", "--element", str(element_id))
    assert json.loads(by_id.stdout.strip().splitlines()[-1])["planned"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kpi", "rrc_setup_sr"), "rrc_setup_sr is not forecast"),
        (("--kpi", "nonsense"), "nonsense is not a KPI"),
        (("--element", "SubNetwork=Nowhere"), "no element 'SubNetwork=Nowhere'"),
        (("--kpi", "link_util"), "no stored daily data matches"),
    ],
)
def test_refresh_explains_bad_filters(env, args, message) -> None:  # type: ignore[no-untyped-def]
    result = run(env, "refresh", *args)
    assert result.exit_code == 1
    assert message in result.stderr
