"""First-start seeding: the KPI catalogue, the admin account, the demo network inventory."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services import audit, auth
from services.audit import SYSTEM
from services.config import ConfigError, Settings
from services.db.models import Element, Kpi, User
from services.errors import InvalidInput
from services.ingest.pipeline import ensure_source
from services.ingest.simulator import KPI_CATALOGUE, Topology

log = logging.getLogger(__name__)

SIMULATOR_SOURCES = {
    "sim-pm-ericsson": "Simulated Ericsson RAN PM files (15-minute periods)",
    "sim-pm-nokia": "Simulated Nokia RAN PM files (15-minute periods)",
    "sim-transport": "Simulated transport network telemetry (backhaul links)",
    "sim-core": "Simulated core network function telemetry",
}


@dataclass(frozen=True)
class AdminBootstrap:
    """The admin created on first start; `generated_password` is shown once, then forgotten."""

    username: str
    generated_password: str | None


def ensure_kpis(session: Session) -> int:
    """Insert KPIs of the catalogue that are missing; returns how many were added."""
    existing = set(session.scalars(select(Kpi.name)))
    added = 0
    for spec in KPI_CATALOGUE:
        if spec.name in existing:
            continue
        session.add(
            Kpi(
                name=spec.name,
                unit=spec.unit,
                element_type=spec.element_type,
                valid_min=spec.valid_min,
                valid_max=spec.valid_max,
                higher_is_worse=spec.higher_is_worse,
                capacity_threshold=spec.capacity_threshold,
                criticality=spec.criticality,
                description=spec.description,
            )
        )
        added += 1
    if added:
        session.flush()
        audit.record(session, actor=SYSTEM, action="seed.kpis", after={"added": added})
    return added


def ensure_admin(session: Session, settings: Settings) -> AdminBootstrap | None:
    """Create user `admin` when no user exists yet; None when users already exist."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    password = settings.admin_password
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(12)
    try:
        auth.create_user(
            session,
            username="admin",
            role=auth.Role.ADMIN,
            password=password,
            actor=SYSTEM,
            display_name="Administrator",
        )
    except InvalidInput as exc:
        raise ConfigError(f"BEACON_ADMIN_PASSWORD is not acceptable: {exc.message}") from exc
    return AdminBootstrap(username="admin", generated_password=generated)


def ensure_simulator_sources(session: Session) -> None:
    """Register the simulator's feeds so freshness is tracked from the first minute."""
    for name, description in SIMULATOR_SOURCES.items():
        ensure_source(
            session,
            name=name,
            kind="simulator",
            description=description,
            expected_cadence_s=900,
            allowed_lateness_s=3600,
            stale_after_s=2700,
        )


def register_topology(session: Session, topology: Topology) -> int:
    """Insert the simulated network's elements that are not yet known; returns how many."""
    elements = topology.elements
    known = set(session.scalars(select(Element.dn)))
    fresh = elements[~elements["dn"].isin(known)]
    if fresh.empty:
        return 0
    rows = [
        {
            "dn": row["dn"],
            "name": row["name"],
            "element_type": row["element_type"],
            "vendor": _text(row.get("vendor")),
            "sw_version": _text(row.get("sw_version")),
            "technology": _text(row.get("technology")),
            "domain": row["domain"],
            "region": _text(row.get("region")),
            # Known from inventory, so not "new"; the detectors decide when a baseline exists.
            "is_new": False,
            "attributes": {"simulated": True},
        }
        for row in fresh.to_dict("records")
    ]
    session.execute(insert(Element), rows)
    _link_parents(session, fresh)
    audit.record(
        session,
        actor=SYSTEM,
        action="seed.inventory",
        object_type="element",
        after={"added": len(rows), "simulated": True},
    )
    return len(rows)


def _link_parents(session: Session, fresh: pd.DataFrame) -> None:
    ids = dict(session.execute(select(Element.dn, Element.id)).all())
    with_parent = fresh[fresh["parent_dn"].notna()]
    updates = [
        {"id": ids[dn], "parent_id": ids.get(parent)}
        for dn, parent in zip(with_parent["dn"], with_parent["parent_dn"], strict=True)
        if parent in ids
    ]
    if updates:
        from sqlalchemy import update

        session.execute(update(Element), updates)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)
