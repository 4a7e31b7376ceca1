"""What a recommended action would do: parameters, blast radius, impact and rollback plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Element, Kpi, Measurement

USERS_KPI = "active_users"
USERS_LOOKBACK = timedelta(hours=24)


@dataclass(frozen=True)
class Plan:
    """What an action would do and how to undo it, in parameters and plain words."""

    parameters: dict[str, Any]
    impact: str
    rollback: dict[str, Any]


def blast_cells(session: Session, *, element: Element, action: str) -> list[Element]:
    """The cells an action touches: the cell itself, its site's cells, or those behind a link."""
    if element.element_type == "link":
        return _behind_link(session, element)
    if element.element_type != "cell":
        return []
    if action != "lb_param_change" or element.parent_id is None:
        return [element]
    return _cells_of(session, element.parent_id) or [element]


def _behind_link(session: Session, link: Element) -> list[Element]:
    # The far end is the inventory's peer, else the site the link is named after
    # (the simulated network names links "Link=<site>").
    peer = (link.attributes or {}).get("peer_dn")
    if peer:
        site_id = session.scalar(select(Element.id).where(Element.dn == peer))
    else:
        site_name = link.dn.rsplit("=", 1)[-1]
        site_id = session.scalar(
            select(Element.id)
            .where(Element.element_type == "site", Element.name == site_name)
            .limit(1)
        )
    return [] if site_id is None else _cells_of(session, site_id)


def _cells_of(session: Session, site_id: int) -> list[Element]:
    return list(
        session.scalars(
            select(Element)
            .where(Element.parent_id == site_id, Element.element_type == "cell")
            .order_by(Element.id)
        )
    )


def estimated_users(session: Session, *, cells: list[Element], now: datetime) -> int:
    """Active users on the cells at their latest measurement of the last day."""
    kpi_id = session.scalar(select(Kpi.id).where(Kpi.name == USERS_KPI))
    if kpi_id is None:
        return 0
    total = 0.0
    for cell in cells:
        value = session.scalar(
            select(Measurement.value)
            .where(
                Measurement.element_id == cell.id,
                Measurement.kpi_id == kpi_id,
                Measurement.period_end <= now,
                Measurement.period_end >= now - USERS_LOOKBACK,
                Measurement.superseded.is_(False),
            )
            .order_by(Measurement.period_end.desc())
            .limit(1)
        )
        total += float(value or 0.0)
    return round(total)


def plan_for(
    action: str, *, element: Element, cells: list[Element], context: dict[str, Any]
) -> Plan:
    """Parameters, expected impact and rollback of a use case's action on an element."""
    target = {"element_dn": element.dn, "element_name": element.name}
    neighbours = [c.dn for c in cells if c.id != element.id]
    if action == "lb_param_change":
        return Plan(
            parameters={
                **target,
                "parameter": "lb_offload_pct",
                "value": 30,
                "previous": 0,
                "neighbours": neighbours,
            },
            impact=f"Moves about 30% of {element.name}'s load to {len(neighbours)} neighbour "
            "cells; congestion should ease within two periods.",
            rollback={
                "action": "lb_param_change",
                "parameters": {**target, "value": 0},
                "text": "Set the load-balancing offload back to 0%.",
            },
        )
    if action == "cell_restart":
        return Plan(
            parameters={**target},
            impact=f"{element.name} is unavailable for about 5 minutes, then carries traffic "
            "again.",
            rollback={
                "action": "none",
                "parameters": {**target},
                "text": "A restart cannot be undone; if the cell stays silent, lock it "
                "and dispatch a field team.",
            },
        )
    if action == "traffic_reroute":
        return Plan(
            parameters={**target, "path": "backup"},
            impact=f"Traffic of {element.name} moves to its backup path, relieving "
            f"{len(cells)} cells behind it of loss and latency.",
            rollback={
                "action": "traffic_reroute",
                "parameters": {**target, "path": "primary"},
                "text": "Move the traffic back to the primary path.",
            },
        )
    if action == "carrier_add_ticket":
        return Plan(
            parameters={
                **target,
                "kpi": context.get("kpi"),
                "breach_date": context.get("breach_date"),
                "ticket": "carrier_add",
            },
            impact=f"A planning ticket asks for an extra carrier on {element.name} before the "
            "forecast breach; nothing changes in the network now.",
            rollback={
                "action": "close_ticket",
                "parameters": {**target},
                "text": "Close the planning ticket.",
            },
        )
    return Plan(
        parameters={**target},
        impact=f"Runs {action} on {element.name}.",
        rollback={"action": "none", "parameters": {**target}, "text": "No automatic rollback."},
    )
