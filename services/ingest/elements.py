"""Resolving distinguished names to elements; unknown ones are registered as `new`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.db.models import Element, utcnow

# The last RDN's class tells what an element is (3GPP NRM class names and common vendor ones).
_TYPE_BY_CLASS = {
    "eutrancellfdd": "cell",
    "eutrancelltdd": "cell",
    "nrcelldu": "cell",
    "nrcellcu": "cell",
    "utrancell": "cell",
    "gsmcell": "cell",
    "lncel": "cell",
    "link": "link",
    "ethernetport": "link",
    "interface": "link",
}
FULL_SCAN_ABOVE = 2000
_DOMAIN_BY_TYPE = {"cell": "RAN", "site": "RAN", "link": "Transport", "router": "Transport"}


def parse_dn(dn: str) -> list[tuple[str, str]]:
    """`A=1,B=2` -> [("A", "1"), ("B", "2")]; parts without `=` are kept as (part, "")."""
    pairs = []
    for part in dn.split(","):
        key, _, value = part.partition("=")
        pairs.append((key.strip(), value.strip()))
    return pairs


def infer_element(dn: str) -> dict[str, Any]:
    """Best-effort type, domain, region and name of an element seen only by its DN."""
    rdns = parse_dn(dn)
    last_class, last_value = rdns[-1]
    subnetwork = next((v for k, v in rdns if k.lower() == "subnetwork"), None)
    element_type = _TYPE_BY_CLASS.get(last_class.lower())
    if element_type is None:
        upper = last_value.upper()
        if upper.startswith(("AGG", "RTR", "CSR", "PE")):
            element_type = "router"
        elif upper.startswith(("UPF", "AMF", "SMF", "MME", "SGW", "PGW")):
            element_type = "core"
        else:
            element_type = "site"
    domain = _DOMAIN_BY_TYPE.get(element_type, "Core")
    if subnetwork in ("Transport", "Core"):
        domain = subnetwork
    region = subnetwork if subnetwork not in (None, "Transport", "Core") else None
    return {
        "element_type": element_type,
        "domain": domain,
        "region": region,
        "name": last_value or dn[-200:],
    }


def resolve_elements(
    session: Session,
    dns: Iterable[str],
    *,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, int], list[str]]:
    """Map each DN to its element id, registering unknown DNs as new elements.

    Returns the mapping and the DNs that were new. `attributes` may give vendor and
    software version per DN (from the file header or event) for new elements.
    """
    # Arrays (numpy, pandas) convert in one call; iterating them builds a scalar per value.
    wanted = set(dns.tolist() if hasattr(dns, "tolist") else dns)
    known: dict[str, int] = {}
    if len(wanted) > FULL_SCAN_ABOVE:
        # One scan of (dn, id) beats dozens of IN-list queries for a big batch.
        everything = _all_ids(session)
        known = {dn: everything[dn] for dn in wanted if dn in everything}
    else:
        for chunk in _chunks(sorted(wanted), 900):
            known.update(_ids(session, chunk))
    # Sorted, so new elements are registered (and numbered) in the same order every time.
    missing = sorted(dn for dn in wanted if dn not in known)
    if missing:
        now = utcnow()
        rows = []
        given = attributes if attributes is not None else {}
        for dn in missing:
            extra = given.get(dn, {})
            rows.append(
                {
                    "dn": dn,
                    **infer_element(dn),
                    "vendor": extra.get("vendor"),
                    "sw_version": extra.get("sw_version"),
                    "is_new": True,
                    "first_seen": now,
                    "attributes": {"registered_from": "data"},
                }
            )
        session.execute(insert(Element), rows)
        for chunk in _chunks(missing, 900):
            known.update(_ids(session, chunk))
    return known, missing


def _all_ids(session: Session) -> dict[str, int]:
    """dn -> id for the whole inventory, read with the plain driver (no row objects)."""
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute("SELECT dn, id FROM elements")
        return dict(cursor.fetchall())
    finally:
        cursor.close()


def _ids(session: Session, dns: list[str]) -> dict[str, int]:
    rows = session.execute(select(Element.dn, Element.id).where(Element.dn.in_(dns))).all()
    return {dn: element_id for dn, element_id in rows}


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
