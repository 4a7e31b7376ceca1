"""Realistic stored anomaly episodes (as the detection service writes them) for feed tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.db.models import Anomaly, Element, Kpi, Measurement, utcnow

STEP = timedelta(minutes=15)
SITE = "SubNetwork=NorthMetro,ManagedElement=SITE-0042"


@dataclass(frozen=True)
class Sample:
    """Ids of what `add_episodes` stored."""

    now: datetime
    cell_a: int
    cell_b: int
    link: int
    spike: int  # ongoing critical episode on cell A prb_util_dl (with measurements)
    drop: int  # ended major episode on cell B, same site group
    link_loss: int  # suppressed minor episode on the link (change window)
    old: int  # resolved warning, ten days ago


def add_episodes(session: Session, *, now: datetime | None = None, series: bool = True) -> Sample:
    """Three elements, four episodes and (optionally) eight days of cell A's PRB series."""
    now = (now or utcnow()).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    kpis = {k.name: k for k in session.scalars(select(Kpi))}
    cell_a = _element(session, f"{SITE},EUtranCellFDD=C1", "SITE-0042 C1", "cell", "RAN", "North")
    cell_b = _element(session, f"{SITE},EUtranCellFDD=C2", "SITE-0042 C2", "cell", "RAN", "North")
    link = _element(
        session, "Transport=Backhaul,Link=L-0042", "Backhaul L-0042", "link", "Transport", "South"
    )
    start = now - timedelta(hours=2)
    group = f"site:{SITE}:{start.isoformat()}"
    spike = _episode(
        session,
        element=cell_a,
        kpi=kpis["prb_util_dl"],
        started_at=start,
        peak_at=now - timedelta(minutes=30),
        ended_at=None,
        observed=97.4,
        expected=58.2,
        band=(49.0, 67.5),
        score=6.8,
        confidence=0.91,
        severity="critical",
        group_key=group,
        related=["active_users"],
        flags=["late_data"],
        summary="Downlink PRB utilisation on SITE-0042 C1 is 97.4 %, far above the 49–68 % "
        "expected for Tuesday 18:00 (6.8 σ); active users rose with it.",
    )
    drop = _episode(
        session,
        element=cell_b,
        kpi=kpis["rrc_setup_sr"],
        started_at=start + STEP,
        peak_at=start + 2 * STEP,
        ended_at=now - timedelta(minutes=45),
        observed=81.0,
        expected=99.1,
        band=(97.8, 99.9),
        score=-5.2,
        confidence=0.74,
        severity="major",
        group_key=group,
        related=[],
        flags=[],
        summary="RRC setup success on SITE-0042 C2 fell to 81 % (expected 99 %).",
    )
    link_loss = _episode(
        session,
        element=link,
        kpi=kpis["packet_loss_pct"],
        started_at=now - timedelta(hours=5),
        peak_at=now - timedelta(hours=4),
        ended_at=now - timedelta(hours=3),
        observed=2.4,
        expected=0.1,
        band=(0.0, 0.4),
        score=4.1,
        confidence=0.55,
        severity="minor",
        group_key=None,
        related=[],
        flags=["gap", "stale_source"],
        summary="Packet loss on Backhaul L-0042 reached 2.4 % during planned maintenance.",
        suppressed=True,
    )
    old = _episode(
        session,
        element=cell_a,
        kpi=kpis["erab_drop_rate"],
        started_at=now - timedelta(days=10),
        peak_at=now - timedelta(days=10) + STEP,
        ended_at=now - timedelta(days=10) + 4 * STEP,
        observed=3.1,
        expected=0.6,
        band=(0.2, 1.1),
        score=3.9,
        confidence=0.42,
        severity="warning",
        group_key=None,
        related=[],
        flags=["cold_start"],
        summary="E-RAB drops on SITE-0042 C1 rose to 3.1 %.",
        status="resolved",
    )
    if series:
        _series(session, cell_a, kpis["prb_util_dl"].id, now=now, spike_from=start)
    session.flush()
    return Sample(
        now=now,
        cell_a=cell_a.id,
        cell_b=cell_b.id,
        link=link.id,
        spike=spike,
        drop=drop,
        link_loss=link_loss,
        old=old,
    )


def _element(session: Session, dn: str, name: str, kind: str, domain: str, region: str) -> Element:
    element = Element(
        dn=dn, name=name, element_type=kind, domain=domain, region=region, vendor="Ericsson"
    )
    session.add(element)
    session.flush()
    return element


def _episode(session: Session, **fields: Any) -> int:
    element: Element = fields.pop("element")
    kpi: Kpi = fields.pop("kpi")
    low, high = fields.pop("band")
    flags = fields.pop("flags")
    summary = fields.pop("summary")
    related = fields.pop("related")
    explanation = {
        "summary": summary,
        "unit": kpi.unit,
        "direction": "above" if fields["observed"] > fields["expected"] else "below",
        "observed": fields["observed"],
        "expected": fields["expected"],
        "band": [low, high],
        "sigma": fields["score"],
        "seasonal": {
            "slot": "Tuesday 18:00",
            "typical": fields["expected"],
            "text": f"Typical for Tuesday 18:00 is {fields['expected']:g} {kpi.unit}.",
        },
        "contributing_kpis": [
            {"kpi": name, "sigma": 3.4, "observed": 812.0, "expected": 455.0} for name in related
        ],
        "peers": {
            "group": "cells of SITE-0042",
            "size": 3,
            "median": fields["expected"],
            "affected": [{"element_id": 9, "name": "SITE-0042 C3", "sigma": 3.1}],
            "text": "Two of three cells on the site deviate at the same time.",
        },
        "changes": [
            {
                "id": 3,
                "title": "Backhaul maintenance",
                "kind": "maintenance",
                "starts_at": (fields["started_at"] - timedelta(hours=1)).isoformat(),
                "ends_at": (fields["started_at"] + timedelta(hours=3)).isoformat(),
            }
        ]
        if fields.get("suppressed")
        else [],
        "alarms": [
            {
                "id": 7,
                "severity": "major",
                "text": "<b>S1 link degraded</b>",
                "raised_at": fields["started_at"].isoformat(),
                "state": "active",
            }
        ],
        "data_quality": {"flags": flags, "text": "Built on 2,688 reference periods."},
        "similar": [
            {
                "anomaly_id": 1,
                "started_at": (fields["started_at"] - timedelta(days=7)).isoformat(),
                "element": element.name,
                "kpi": kpi.name,
                "sigma": 5.9,
                "verdict": "true_anomaly",
            }
        ],
        "revisions": [
            {
                "at": fields["peak_at"].isoformat(),
                "reason": "late",
                "text": "Two late periods re-evaluated; the peak is unchanged.",
            }
        ]
        if "late_data" in flags
        else [],
    }
    anomaly = Anomaly(
        element_id=element.id,
        kpi_id=kpi.id,
        related_kpis=related,
        group_key=fields.pop("group_key"),
        band_low=low,
        band_high=high,
        detector="seasonal_robust",
        model_version="test-1",
        severity_score=3.0,
        data_quality={"flags": flags, "factor": 0.9 if flags else 1.0, "history_points": 2688},
        explanation=explanation,
        last_evaluated_at=utcnow(),
        suppressed=fields.pop("suppressed", False),
        suppressed_reason="inside change window #3 (backhaul maintenance)"
        if fields.get("severity") == "minor"
        else None,
        status=fields.pop("status", "open"),
        **fields,
    )
    session.add(anomaly)
    session.flush()
    return anomaly.id


def _series(
    session: Session, element: Element, kpi_id: int, *, now: datetime, spike_from: datetime
) -> None:
    """Eight days of a daily PRB shape, with the episode's spike at the end."""
    rows = []
    moment = now - timedelta(days=8)
    while moment <= now:
        hour = moment.hour + moment.minute / 60
        value = 45 + 15 * math.sin((hour - 8) / 24 * 2 * math.pi) + 3 * math.sin(hour * 3.1)
        if moment >= spike_from:
            value = 92 + 5 * math.sin(hour * 2)
        rows.append(
            {
                "element_id": element.id,
                "kpi_id": kpi_id,
                "period_end": moment,
                "revision": 0,
                "value": round(value, 2),
                "superseded": False,
                "late": False,
                "suspect": False,
                "received_at": moment,
            }
        )
        moment += STEP
    session.execute(insert(Measurement), rows)
