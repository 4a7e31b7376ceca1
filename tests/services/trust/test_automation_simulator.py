"""Simulator actuator: executed actions change later simulated KPIs; rollback restores them."""

from __future__ import annotations

from datetime import UTC, datetime

import automation_support as kit
import numpy as np
import pandas as pd
import pytest
from automation_support import CELL, ENGINEER, LINK, accept, recommend, small_simulator
from sqlalchemy.orm import Session

from services.automation import actuators, execution
from services.ingest.simulator.actions import Effect

pytestmark = pytest.mark.xdist_group("automation-simulator")
auto_db = kit.auto_db
session = kit.session
# Ground truth of the small simulated network (seed 7, one site per region):
CONGESTION_AT = datetime(2026, 11, 5, 16, 5, tzinfo=UTC)  # C1 congested 15:45-19:15
SLEEPING_CELL = "SubNetwork=North,ManagedElement=SITE-0001,NRCellDU=N1"
SLEEPING_AT = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # asleep 02:15-09:00


def series(sim, dn: str, kpi: str, start: str, end: str) -> pd.Series:
    ends = pd.date_range(start, end, freq="15min", tz="UTC")
    truth = sim.truth(ends)
    rows = truth[(truth["dn"] == dn) & (truth["kpi"] == kpi)]
    return pd.Series(rows["value"].to_numpy(), index=rows["period_end"])


def test_load_balancing_lowers_later_load_until_rolled_back(session: Session) -> None:
    sim = small_simulator()
    before = series(sim, CELL, "prb_util_dl", "2026-11-05 16:00", "2026-11-05 17:30")
    assert (before.iloc[1:] > 90).all()  # the congestion the recommendation is about
    rec = recommend(session, parameters={"parameter": "lb_offload_pct", "value": 40})
    accept(session, rec)
    run = execution.execute(session, recommendation_id=rec.id, actor=ENGINEER, now=CONGESTION_AT)
    sim.set_effects(actuators.simulator_effects(session))
    after = series(sim, CELL, "prb_util_dl", "2026-11-05 16:00", "2026-11-05 17:30")
    assert after.iloc[0] == before.iloc[0]  # the period before the action is history
    expected = 1.5 + (before.iloc[1:] - 1.5) * 0.6
    np.testing.assert_allclose(after.iloc[1:], expected)
    # Deliveries carry the changed values too: what the pipeline ingests later is lower.
    delivered = pd.concat(
        b.records for b in sim.batches(pd.Timestamp("2026-11-05 16:30", tz="UTC"))
    )
    value = delivered[(delivered["dn"] == CELL) & (delivered["kpi"] == "prb_util_dl")]["value"]
    assert len(value) == 1
    assert float(value.iloc[0]) < 80
    execution.rollback(
        session,
        execution_id=run.id,
        actor=ENGINEER,
        now=datetime(2026, 11, 5, 17, 0, tzinfo=UTC),
        reason="test",
    )
    sim.set_effects(actuators.simulator_effects(session))
    restored = series(sim, CELL, "prb_util_dl", "2026-11-05 16:00", "2026-11-05 17:30")
    assert (restored.loc["2026-11-05 16:15":"2026-11-05 17:00"] < 70).all()
    np.testing.assert_allclose(restored.loc["2026-11-05 17:15":], before.loc["2026-11-05 17:15":])


def test_restart_wakes_a_sleeping_cell(session: Session) -> None:
    sim = small_simulator()
    asleep = series(
        sim, SLEEPING_CELL, "dl_throughput_mbps", "2026-11-18 04:15", "2026-11-18 08:45"
    )
    assert (asleep < 0.1).all()
    rec = recommend(session, "sleeping_cell_restart", dn=SLEEPING_CELL)
    run = execution.execute(
        session, recommendation_id=rec.id, actor="system", now=SLEEPING_AT, automatic=True
    )
    assert run.state == "succeeded"
    sim.set_effects(actuators.simulator_effects(session))
    awake = series(sim, SLEEPING_CELL, "dl_throughput_mbps", "2026-11-18 04:15", "2026-11-18 08:45")
    assert (awake > 1).all()


def test_reroute_takes_a_flapping_link_off_its_loss() -> None:
    sim = small_simulator()
    lossy = series(sim, LINK, "packet_loss_pct", "2026-11-09 15:45", "2026-11-09 16:15")
    assert lossy.max() > 5
    start = pd.Timestamp("2026-11-09 15:35", tz="UTC")
    sim.set_effects([Effect("traffic_reroute", LINK, start, parameters={"share_pct": 50})])
    clean = series(sim, LINK, "packet_loss_pct", "2026-11-09 15:45", "2026-11-09 16:15")
    assert clean.max() < 1
    sim.set_effects([])  # no effects: the pure simulator again
    np.testing.assert_allclose(
        series(sim, LINK, "packet_loss_pct", "2026-11-09 15:45", "2026-11-09 16:15"), lossy
    )


def test_unknown_elements_and_ticket_actions_change_nothing() -> None:
    sim = small_simulator()
    base = sim.truth(pd.date_range("2026-11-05 16:00", periods=3, freq="15min", tz="UTC"))
    at = pd.Timestamp("2026-11-05 15:00", tz="UTC")
    sim.set_effects(
        [
            Effect("lb_param_change", "SubNetwork=Nowhere", at),
            Effect("carrier_add_ticket", CELL, at),
        ]
    )
    again = sim.truth(pd.date_range("2026-11-05 16:00", periods=3, freq="15min", tz="UTC"))
    np.testing.assert_array_equal(base["value"].to_numpy(), again["value"].to_numpy())
