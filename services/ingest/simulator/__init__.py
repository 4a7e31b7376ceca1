"""Seeded synthetic mobile network for demos and tests: truth, deliveries, ground truth."""

from services.ingest.simulator.catalogue import KPI_CATALOGUE, KpiSpec
from services.ingest.simulator.defects import DEFECT_KINDS, MALFORMED_FORMS
from services.ingest.simulator.network import NetworkSimulator, SimBatch
from services.ingest.simulator.scenario import INCIDENT_KINDS
from services.ingest.simulator.topology import (
    SOURCES,
    DefectRates,
    IncidentRates,
    ScaleShift,
    SimConfig,
    Topology,
    build_topology,
    live_start,
)

__all__ = [
    "DEFECT_KINDS",
    "INCIDENT_KINDS",
    "KPI_CATALOGUE",
    "MALFORMED_FORMS",
    "SOURCES",
    "DefectRates",
    "IncidentRates",
    "KpiSpec",
    "NetworkSimulator",
    "ScaleShift",
    "SimBatch",
    "SimConfig",
    "Topology",
    "build_topology",
    "live_start",
]
