"""VES parsing without a database: naming rules, schema handling and mutated inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from testkit import SHARED_DATA

from services.ingest.sources import ves_errors
from services.ingest.sources.ves_errors import VesRefusal
from services.ingest.sources.ves_measurements import (
    measurement_payload,
    measurement_records,
    parse_ves_measurements,
)
from services.ingest.sources.ves_models import MEASUREMENT_BLOCKS, epoch_datetime
from services.ingest.sources.ves_parse import VesRequest, parse_request
from services.ingest.sources.ves_schema import _same_major, cef_file

VES = SHARED_DATA / "ves"
SCHEMA_DIR = VES / "dcaegen2-collectors-ves" / "etc"
RESOURCES = VES / "dcaegen2-collectors-ves" / "src" / "test" / "resources"
CEF = VES / "dcaegen2-analytics-tca-gen2/dcae-analytics/dcae-analytics-test/src/main/resources"
HEARTBEATS = VES / "dcaegen2-services-heartbeat" / "tests"

# (file, API version, batch endpoint): valid events of every domain Beacon stores.
BASES = [
    (RESOURCES / "measurement7x.json", "v7", False),
    (RESOURCES / "measurement5x.json", "v5", False),
    (RESOURCES / "ves7_valid_30_1_1_event.json", "v7", False),
    (RESOURCES / "ves7_batch_valid.json", "v7", True),
    (RESOURCES / "ves_stdnDefined_valid.json", "v7", False),
    (RESOURCES / "ves7_batch_stdnDefined_withSameStndDefinedNamespace.json", "v7", True),
    (HEARTBEATS / "test1.json", "v7", False),
    (HEARTBEATS / "test4.json", "v5", False),
    (CEF / "data/json/cef/cef_message.json", "v5", False),
]


def parse(path: Path, version: str, *, batch: bool = False, schemas: bool = False) -> VesRequest:
    return parse_request(
        path.read_bytes(),
        api_version=version,
        batch=batch,
        schema_dir=SCHEMA_DIR if schemas else None,
    )


def records_of(path: Path, version: str) -> list[dict[str, Any]]:
    (event,) = parse(path, version).events
    return measurement_records(event)


# --- naming -------------------------------------------------------------------------------


def test_v7_measurement_counters_and_elements() -> None:
    rows = records_of(RESOURCES / "measurement7x.json", "v7")
    by_key = {(r["dn"], r["kpi"]): r for r in rows}
    cpu = by_key[("bgtnj05vmh01afx,cpuUsage=cpu0", "cpuUsage.percentUsage")]
    assert cpu["value"] == 0.36
    assert cpu["period_end"] == "2018-08-21T16:23:22.564759+00:00"
    assert cpu["event_id"] == "measurementsForVfScaling_vAfx_127.0.0.1"
    assert ("bgtnj05vmh01afx,memoryUsage=RAM", "memoryUsage.memoryFree") in by_key
    nic = by_key[
        ("bgtnj05vmh01afx,nicPerformance=ens2   DNS2_RSLOTPORT_VLAN_CLASSTYPE",
         "nicPerformance.receivedOctetsDelta")
    ]  # fmt: skip
    assert nic["suspect"] is True
    assert not any(r["kpi"].endswith(("Identifier", "valuesAreSuspect")) for r in rows)
    assert not any(r["kpi"] == "measurement.measurementInterval" for r in rows)


def test_v5_and_v7_share_counter_names() -> None:
    v7 = {r["kpi"] for r in records_of(RESOURCES / "measurement7x.json", "v7")}
    v5 = {r["kpi"] for r in records_of(RESOURCES / "measurement5x.json", "v5")}
    assert {"cpuUsage.percentUsage", "nicPerformance.receivedOctetsDelta"} <= v5 & v7


def test_scalars_additional_measurements_and_instances() -> None:
    document = json.loads((RESOURCES / "measurement5x.json").read_bytes())
    fields = document["event"]["measurementsForVfScalingFields"]
    fields.update(
        vnfcScalingMetric=40,
        requestRate=12.5,
        additionalMeasurements=[{"name": "Calls", "arrayOfFields": [{"name": "up", "value": "3"}]}],
        loadArray=[{"shortTerm": 0.5}],
        diskUsageArray=[{"diskOctetsReadAvg": 1}, {"diskOctetsReadAvg": 2}],
        memoryUsageArray=[{"vmIdentifier": "a,b=c", "memoryFree": 10**400}],
    )
    request = parse_request(
        json.dumps(document).encode(), api_version="v5", batch=False, schema_dir=None
    )
    rows = {(r["dn"], r["kpi"]): r["value"] for r in measurement_records(request.events[0])}
    assert rows[("bgtnj05vmh01afx", "measurement.nfcScalingMetric")] == 40.0
    assert rows[("bgtnj05vmh01afx", "measurement.requestRate")] == 12.5
    assert rows[("bgtnj05vmh01afx", "Calls.up")] == "3"
    assert rows[("bgtnj05vmh01afx", "load.shortTerm")] == 0.5  # a lone item: the VNF itself
    assert rows[("bgtnj05vmh01afx,diskUsage=1", "diskUsage.diskOctetsReadAvg")] == 2.0
    # `,` and `=` would break the DN apart; a value beyond float range stays text.
    assert rows[("bgtnj05vmh01afx,memoryUsage=a_b_c", "memoryUsage.memoryFree")] == str(10**400)


def test_the_replay_parser_reads_what_the_endpoint_read() -> None:
    body = (RESOURCES / "measurement7x.json").read_bytes()
    replayed = parse_ves_measurements(body, name="batch-1")
    live = measurement_payload(parse(RESOURCES / "measurement7x.json", "v7").events)
    assert replayed.records.equals(live.records)
    assert replayed.meta == {"format": "ves", "file": "batch-1"}
    refused = parse_ves_measurements(b"not json")
    assert [r.reason_code for r in refused.rejected] == ["malformed_payload"]
    fault = parse_ves_measurements((RESOURCES / "ves7_valid_30_1_1_event.json").read_bytes())
    assert [r.reason_code for r in fault.rejected] == ["unsupported_event"]


def test_epochs_outside_the_calendar_have_no_time() -> None:
    assert epoch_datetime(-1) is None
    assert epoch_datetime(1e30) is None
    assert epoch_datetime(0).year == 1970


# --- schemas and errors -------------------------------------------------------------------


def test_schema_files_follow_the_collector_configuration() -> None:
    assert cef_file(SCHEMA_DIR, "v5") == "CommonEventFormat_28.4.1.json"
    assert cef_file(SCHEMA_DIR, "v7") == "CommonEventFormat_30.2.1_ONAP.json"
    assert cef_file(SCHEMA_DIR, "v4") == "CommonEventFormat_27.2.json"


def test_only_a_newer_minor_of_a_known_major_is_coerced() -> None:
    allowed = ["7.0", "7.0.1", "7.1", "7.1.1", "7.2", "7.2.1"]
    assert _same_major("7.0.2", allowed) == "7.2.1"
    assert _same_major("7.2.1", allowed) is None
    assert _same_major("30.0.1", allowed) is None
    assert _same_major("7.x", allowed) is None
    assert _same_major(7, allowed) is None


def test_coercions_are_reported_with_their_path() -> None:
    request = parse(HEARTBEATS / "test1.json", "v7", schemas=True)
    paths = {(c.path, c.original, c.accepted_as) for c in request.coercions}
    assert paths == {
        ("commonEventHeader.version", "4.0.2", "4.1"),
        ("commonEventHeader.vesEventListenerVersion", "7.0.2", "7.2.1"),
    }
    cef = parse(CEF / "data/json/cef/cef_message.json", "v5", schemas=True)
    (coercion,) = cef.coercions
    path = "measurementsForVfScalingFields.vNicPerformanceArray[0].valuesAreSuspect"
    assert (coercion.path, coercion.original, coercion.accepted_as) == (path, False, "false")


def test_stnd_defined_data_is_checked_only_with_schemas() -> None:
    invalid = RESOURCES / "ves_stdnDefined_invalid.json"
    assert parse(invalid, "v7").events[0].schema_check.startswith("not checked")
    with pytest.raises(VesRefusal) as refused:
        parse(invalid, "v7", schemas=True)
    assert refused.value.reason_code == "schema_invalid"
    assert refused.value.error.message_id == "SVC2000"
    assert (
        parse(RESOURCES / "ves_stdnDefined_valid.json", "v7", schemas=True).events[0].schema_check
        == "passed"
    )


def test_error_text_fills_its_variables() -> None:
    error = ves_errors.missing_input("event.commonEventHeader.sourceName", empty=True)
    assert error.sentence() == (
        "Mandatory input attribute event.commonEventHeader.sourceName is empty in request"
    )
    assert error.body() == {
        "requestError": {
            "serviceException": {
                "messageId": "SVC2006",
                "text": "Mandatory input %1 %2 is empty in request",
                "variables": ["attribute", "event.commonEventHeader.sourceName"],
            }
        }
    }
    assert ves_errors.clip("a\x00b\n c" + "x" * 400).startswith("ab c")
    assert len(ves_errors.clip("x" * 400)) == ves_errors.MAX_DETAIL


# --- mutated inputs -----------------------------------------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    """A valid sample with one to three nodes deleted, blanked or replaced by any JSON."""
    path, version, batch = draw(st.sampled_from(BASES))
    document = copy.deepcopy(json.loads(path.read_bytes()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        spots = _paths(document)
        if not spots:
            break
        spot = draw(st.sampled_from(spots))
        parent = document
        for key in spot[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "blank", "replace"]))
        if action == "delete":
            del parent[spot[-1]]
        else:
            parent[spot[-1]] = "" if action == "blank" else draw(VALUES)
    return json.dumps(document).encode(), version, batch


REFUSALS = {
    "malformed_payload",
    "missing_field",
    "schema_invalid",
    "schema_reference_unresolved",
    "mixed_domains",
    "mixed_namespaces",
}


def _read(body: bytes, version: str, *, batch: bool, schemas: bool) -> VesRequest | VesRefusal:
    try:
        return parse_request(
            body, api_version=version, batch=batch, schema_dir=SCHEMA_DIR if schemas else None
        )
    except VesRefusal as refusal:
        return refusal


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), schemas=st.booleans())
def test_mutated_events_are_read_or_refused_never_crash(
    case: tuple[bytes, str, bool], schemas: bool
) -> None:
    body, version, batch = case
    request = _read(body, version, batch=batch, schemas=schemas)
    event(type(request).__name__ if isinstance(request, VesRefusal) else request.domain)
    if isinstance(request, VesRefusal):
        assert request.reason_code in REFUSALS
        assert request.error.status == 400
        json.dumps(request.error.body())
        json.dumps(request.facts)
        return
    assert request.events
    if request.domain not in MEASUREMENT_BLOCKS:
        return
    # Exact conservation: every event yields its records, or exactly one refusal.
    parsed = measurement_payload(request.events)
    per_event = [len(measurement_records(e)) for e in request.events]
    assert len(parsed.records) == sum(per_event)
    assert len(parsed.rejected) == per_event.count(0)
    assert parsed.received == sum(max(n, 1) for n in per_event)
    replayed = parse_ves_measurements(body)
    assert replayed.received == parsed.received


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_the_replay_parser_takes_any_bytes(body: bytes) -> None:
    parsed = parse_ves_measurements(body)
    assert parsed.received == len(parsed.records) + len(parsed.rejected)
    assert parsed.received >= 1 or parsed.records.empty
