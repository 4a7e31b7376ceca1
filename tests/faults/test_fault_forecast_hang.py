"""A forecast fit that hangs: killed at its timeout, recorded, and the fallback shown.

The executor and the service are tested on their own elsewhere; this follows one hang
through the real process pool to what people see: the API and the series page say the
forecast is a labelled seasonal-naive fallback and why, and the other series are fine.
"""

from __future__ import annotations

import importlib
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dash import Dash
from fault_fits import HANG_MARKER, hang_on_marked_series
from flask_login import login_user
from sqlalchemy import select
from testkit import add_user, settings_for

from services import audit, auth
from services.config import Settings
from services.db import Database
from services.db.models import DailyAggregate, Element, Kpi, utcnow
from services.forecast import service
from services.forecast.executor import LocalExecutor
from services.web.principal import user_principal

pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(120)]

TIMEOUT_S = 3
DAYS = 42


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    return settings_for(
        tmp_path,
        BEACON_FORECAST_TIMEOUT_S=str(TIMEOUT_S),
        BEACON_FORECAST_HORIZON_DAYS="30",
    )


def add_series(db: Database, dn: str, *, first_value: float | None = None) -> int:
    """A cell with DAYS of daily busy-hour PRB history ending yesterday."""
    rng = np.random.default_rng(len(dn))
    yesterday = utcnow().date() - timedelta(days=1)
    with db.session(write=True) as session:
        kpi = session.scalar(select(Kpi).where(Kpi.name == "prb_util_dl"))
        assert kpi is not None
        cell = Element(dn=dn, name=dn.rsplit("=", 1)[-1], element_type="cell", domain="RAN",
                       region="North", is_new=False)  # fmt: skip
        session.add(cell)
        session.flush()
        for n in range(DAYS):
            value = 40 + 3 * np.sin(2 * np.pi * n / 7) + rng.normal(0, 1)
            if n == 0 and first_value is not None:
                value = first_value
            session.add(DailyAggregate(element_id=cell.id, kpi_id=kpi.id,
                                       day=yesterday - timedelta(days=DAYS - 1 - n),
                                       busy_hour_value=float(value), busy_hour=20,
                                       daily_mean=float(value) * 0.6, daily_max=float(value),
                                       samples=96, source="measurements"))  # fmt: skip
        return cell.id


def text_of(component: Any) -> str:
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def test_a_hanging_fit_is_killed_recorded_and_its_fallback_shown(
    app: Dash, db: Database, settings: Settings
) -> None:
    hung = add_series(db, "SubNetwork=North,ManagedElement=H1,EUtranCellFDD=C1",
                      first_value=HANG_MARKER)  # fmt: skip
    calm = add_series(db, "SubNetwork=North,ManagedElement=H2,EUtranCellFDD=C1")
    executor = LocalExecutor(workers=1, fit=hang_on_marked_series)
    started = time.monotonic()
    try:
        run = service.run_forecasts(db, settings, executor=executor)
    finally:
        executor.close()
    elapsed = time.monotonic() - started
    # Killed at its timeout: the run went on and finished the other series.
    assert (run.timed_out, run.fallback, run.fitted, run.failed) == (1, 1, 1, 0)
    assert elapsed < TIMEOUT_S + 30

    with db.session(write=True) as session:
        token = auth.create_api_token(
            session, name="reader", role="viewer", actor=audit.SYSTEM, scopes=["read"]
        ).plaintext
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/forecasts", headers=headers).get_json()["items"]
    by_element = {item["element"]["id"]: item for item in listed}
    assert by_element[calm]["status"] == "ok"
    fallback = by_element[hung]
    assert (fallback["status"], fallback["model"]) == ("fallback", "seasonal_naive")
    limit = f"did not finish within the {TIMEOUT_S} s limit"
    assert limit in fallback["status_detail"]
    one = client.get(f"/api/v1/forecasts/{hung}/prb_util_dl", headers=headers)
    assert one.status_code == 200
    assert one.get_json()["status"] == "fallback"
    assert one.get_json()["points"], "a fallback still forecasts: never a silent gap"

    # The series page, as a viewer opens it.
    add_user(db, "wall-viewer", "viewer")
    with db.session() as session:
        user = auth.get_user(session, username="wall-viewer")
        principal = user_principal(user_id=user.id, epoch=user.session_epoch,
                                   username=user.username, role=user.role,
                                   display=user.display_name)  # fmt: skip
    page = importlib.import_module("pages.forecast_series")
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        login_user(principal)
        shown = text_of(page.layout(element_id=str(hung), kpi="prb_util_dl"))
        calm_page = text_of(page.layout(element_id=str(calm), kpi="prb_util_dl"))
    assert "Fallback forecast" in shown
    assert limit in shown
    assert "Seasonal naive (fallback)" in shown
    assert "Fallback forecast" not in calm_page
