"""Read endpoints over the network: KPI catalogue, element inventory, data sources."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from services.api.blueprint import api, endpoint
from services.api.paging import paginate
from services.api.schemas.inventory import (
    ElementOut,
    ElementPage,
    ElementQuery,
    KpiList,
    KpiOut,
    SourceList,
    SourceOut,
)
from services.auth import Scope
from services.db.models import Element, Kpi
from services.ingest.health import SourceFreshness, source_freshness
from services.web.context import beacon


@api.get("/kpis")
@endpoint(scope=Scope.READ, resp=KpiList, tags=["inventory"])
def list_kpis() -> KpiList:
    """The KPI catalogue: units, valid ranges, direction and capacity thresholds."""
    with beacon().db.session() as session:
        kpis = session.scalars(select(Kpi).order_by(Kpi.name))
        return KpiList(items=[_kpi(kpi) for kpi in kpis])


@api.get("/elements")
@endpoint(scope=Scope.READ, resp=ElementPage, tags=["inventory"])
def list_elements(query: ElementQuery) -> ElementPage:
    """The element inventory, filtered and paginated, ordered by distinguished name."""
    with beacon().db.session() as session:
        rows, total = paginate(session, _element_filter(query), page=query)
        return ElementPage(
            items=[_element(row) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )


@api.get("/sources")
@endpoint(scope=Scope.READ, resp=SourceList, tags=["inventory"])
def list_sources() -> SourceList:
    """Every data source with its freshness and the last 24 hours' volume."""
    with beacon().db.session() as session:
        return SourceList(items=[_source(item) for item in source_freshness(session)])


def _element_filter(query: ElementQuery) -> Select[tuple[Element]]:
    statement = select(Element).order_by(Element.dn)
    exact = {
        Element.element_type: query.element_type,
        Element.domain: query.domain,
        Element.region: query.region,
        Element.vendor: query.vendor,
    }
    for column, value in exact.items():
        if value is not None:
            statement = statement.where(column == value)
    if query.new is not None:
        statement = statement.where(Element.is_new == query.new)
    if query.q:
        # autoescape: a `%` or `_` typed by the caller is matched literally.
        needle = query.q.lower()
        statement = statement.where(
            func.lower(Element.dn).contains(needle, autoescape=True)
            | func.lower(Element.name).contains(needle, autoescape=True)
        )
    return statement


def _kpi(kpi: Kpi) -> KpiOut:
    return KpiOut(
        name=kpi.name,
        unit=kpi.unit,
        element_type=kpi.element_type,
        valid_min=kpi.valid_min,
        valid_max=kpi.valid_max,
        direction="higher_is_worse" if kpi.higher_is_worse else "higher_is_better",
        capacity_threshold=kpi.capacity_threshold,
        criticality=kpi.criticality,
        description=kpi.description,
    )


def _element(element: Element) -> ElementOut:
    return ElementOut(
        id=element.id,
        dn=element.dn,
        name=element.name,
        element_type=element.element_type,
        vendor=element.vendor,
        sw_version=element.sw_version,
        technology=element.technology,
        domain=element.domain,
        region=element.region,
        parent_id=element.parent_id,
        new=element.is_new,
        first_seen=element.first_seen,
        last_seen=element.last_seen,
        attributes=element.attributes or {},
    )


def _source(item: SourceFreshness) -> SourceOut:
    return SourceOut(
        id=item.source_id,
        name=item.name,
        kind=item.kind,
        status=item.status,
        newest_period=item.newest_period,
        last_received_at=item.last_received_at,
        age_seconds=item.age_seconds,
        stale_after_s=item.stale_after_s,
        batches_24h=item.batches_24h,
        records_24h=item.records_24h,
        quarantined_24h=item.quarantined_24h,
    )
