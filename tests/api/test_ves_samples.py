"""Every file under ../shared/data/ves, posted to the collector with and without the schemas.

The expectation of each file is written down below; a file that appears in the shared
data without an entry fails `test_every_sample_has_an_expectation`, so none is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from test_ves_support import (
    SCHEMA_DIR,
    SCHEMA_ENV,
    VES_DATA,
    assert_conserved,
    batches_after,
    events_of,
    last_batch_id,
    load,
    post,
    quarantine_of,
    ves_error,
)

from services.db import Database
from services.db.models import Alarm, Source
from services.ingest.pipeline import read_raw


@dataclass(frozen=True)
class Outcome:
    """What the collector answers and what Beacon keeps."""

    status: int
    stores: str = ""  # alarm, measurements, heartbeat, unsupported (for 202)
    reason: str = ""  # the quarantined reason code (for a refused body)
    message_id: str = ""


@dataclass(frozen=True)
class Sample:
    """Where a sample file is posted and what happens with (checked) and without schemas."""

    endpoint: str
    checked: Outcome
    unchecked: Outcome | None = None  # None: the same as checked
    why: str = ""


ALARM = Outcome(202, "alarm")
MEASURED = Outcome(202, "measurements")
HEARTBEAT = Outcome(202, "heartbeat")
UNSUPPORTED = Outcome(202, "unsupported")
NO_EVENT = Outcome(400, reason="missing_field", message_id="SVC2006")
MISSING = Outcome(400, reason="missing_field", message_id="SVC2006")
NOT_AN_OBJECT = Outcome(400, reason="malformed_payload", message_id="SVC0002")
SCHEMA = Outcome(400, reason="schema_invalid", message_id="SVC0002")
NO_LOCAL_SCHEMA = Outcome(400, reason="schema_reference_unresolved", message_id="SVC2004")
WRONG_POINTER = Outcome(400, reason="schema_reference_unresolved", message_id="SVC2000")
DATA_INVALID = Outcome(400, reason="schema_invalid", message_id="SVC2000")

R = "dcaegen2-collectors-ves/src/test/resources/"
T = "dcaegen2-analytics-tca-gen2/dcae-analytics/dcae-analytics-test/src/main/resources/data/json/"
H = "dcaegen2-services-heartbeat/tests/"
E = "dcaegen2-collectors-ves/etc/"
V7, V7B, V5, V5B = "v7", "v7/eventBatch", "v5", "v5/eventBatch"
IP_INVALID = "invalid IP address: the schema's ipv4/ipv6 format; Beacon reads no pnfRegistration"

SAMPLES: dict[str, Sample] = {
    R + "eventsAfterTransformation/ves7_valid_event.json": Sample(V7, ALARM),
    R + "eventsAfterTransformation/ves_stdnDefined_empty_namespace_invalid.json": Sample(
        V7, MISSING
    ),
    R + "eventsAfterTransformation/ves_stdnDefined_missing_namespace_invalid.json": Sample(
        V7, MISSING
    ),
    R + "eventsAfterTransformation/ves_stdnDefined_valid.json": Sample(
        V7,
        NO_LOCAL_SCHEMA,
        UNSUPPORTED,
        "its schemaReference (www.3gpp.org TS28532 JSON) is not in the shipped schema-map",
    ),
    R + "measurement5x.json": Sample(V5, MEASURED),
    R + "measurement7x.json": Sample(V7, MEASURED),
    R + "ves4_invalid.json": Sample(V5, SCHEMA, MISSING, "VES 4.x, and it has no sourceName"),
    R + "ves4_valid.json": Sample(
        V5, SCHEMA, ALARM, "VES 4.x lacks eventName, required by 5.x; Beacon needs no eventName"
    ),
    R + "ves7_batch_stdnDefined_withDifferentStndDefinedNamespace.json": Sample(
        V7B, Outcome(400, reason="mixed_namespaces", message_id="SVC0001")
    ),
    R + "ves7_batch_stdnDefined_withSameStndDefinedNamespace.json": Sample(V7B, UNSUPPORTED),
    R + "ves7_batch_valid.json": Sample(V7B, ALARM),
    R + "ves7_batch_valid_two_different_domain.json": Sample(
        V7B, Outcome(400, reason="mixed_domains", message_id="SVC0001")
    ),
    R + "ves7_batch_with_stndDefined_valid.json": Sample(
        V7B,
        NO_LOCAL_SCHEMA,
        UNSUPPORTED,
        "its schemaReference (sa5/data-models REL-16) is not in the shipped schema-map",
    ),
    R + "ves7_invalid_30_1_1_event.json": Sample(
        V7, SCHEMA, why="vesEventListenerVersion 30.0.1 is not a 7.x version"
    ),
    R + "ves7_valid_30_1_1_event.json": Sample(V7, ALARM),
    **{
        R + f"ves7_invalid_{name}.json": Sample(V7, SCHEMA, UNSUPPORTED, IP_INVALID)
        for name in (
            "ip_v4_with_ipv6_format",
            "ip_v6_double_colon_more_than_once",
            "ip_v6_out_of_range",
            "ip_v6_short_with_more_than_two_colons",
            "ip_v6_short_with_too_many_colons",
            "ip_v6_with_ipv4_format",
            "ip_v6_with_one_colon_at_begining",
            "ipv4",
        )
    },
    **{
        R + f"ves7_valid_{name}.json": Sample(V7, UNSUPPORTED)
        for name in (
            "ip_v4",
            "ip_v6",
            "ip_v6_full",
            "ip_v6_ipv4_translated",
            "ip_v6_multicast_example",
            "ip_v6_short_one",
            "ip_v6_short_with_big_letters",
            "ip_v6_short_without_end",
            "ip_v6_with_zone_index",
        )
    },
    R + "ves_stdnDefined_empty_namespace_invalid.json": Sample(V7, MISSING),
    R + "ves_stdnDefined_invalid.json": Sample(V7, DATA_INVALID, UNSUPPORTED),
    R + "ves_stdnDefined_missing_local_schema_reference.json": Sample(
        V7, NO_LOCAL_SCHEMA, UNSUPPORTED, "the reference names a file but no schema inside it"
    ),
    R + "ves_stdnDefined_missing_namespace_invalid.json": Sample(V7, MISSING),
    R + "ves_stdnDefined_valid.json": Sample(V7, UNSUPPORTED),
    R + "ves_stdnDefined_valid_unknown_topic.json": Sample(
        V7, UNSUPPORTED, why="Beacon routes nothing by namespace, so no topic can be missing"
    ),
    R + "ves_stdnDefined_with_empty_stndDefined_fields_data.json": Sample(
        V7, DATA_INVALID, UNSUPPORTED
    ),
    R + "ves_stdnDefined_without_schema_reference.json": Sample(V7, UNSUPPORTED),
    R + "ves_stdnDefined_wrong_internal_file_reference.json": Sample(
        V7, WRONG_POINTER, UNSUPPORTED
    ),
    H + "test1.json": Sample(V7, HEARTBEAT, why="version 4.0.2 is coerced and recorded"),
    H + "test2.json": Sample(V7, HEARTBEAT),
    H + "test3.json": Sample(V7, HEARTBEAT),
    H + "test4.json": Sample(V5, HEARTBEAT, why="a 5.x heartbeat without heartbeatFields"),
    **{
        T + f"cef/{name}.json": Sample(
            V5, MEASURED, why="valuesAreSuspect sent as a boolean is coerced and recorded"
        )
        for name in (
            "cef_message",
            "cef_message_with_abatement",
            "cef_message_with_violation",
            "cef_meesage_with_inapplicable_event_name",
        )
    },
    T + "cef/cef_messages.json": Sample(
        V5B, NOT_AN_OBJECT, why="a JSON list of events; its events: test_cef_message_list"
    ),
    T + "cef/cef_unescaped_messages.txt": Sample(
        V5B, NOT_AN_OBJECT, why="a list of JSON strings; its events: test_cef_message_list"
    ),
    T + "facade/tca_alert.json": Sample(V7, NO_EVENT, why="TCA's policy output, not a VES event"),
    T + "policy/tca_policy.json": Sample(V5B, NOT_AN_OBJECT, why="a TCA policy, not VES"),
    "dcaegen2-collectors-ves/swagger_vescollector_1.5.4.json": Sample(V7, NO_EVENT),
    E + "api_version_description.json": Sample(V7, NO_EVENT),
    E + "externalRepo/schema-map.json": Sample(V7, NOT_AN_OBJECT),
    **{
        E + f"CommonEventFormat_{version}.json": Sample(V7, NO_EVENT)
        for version in ("27.2", "28.3", "28.4.1", "30.0.1", "30.1.1", "30.2_ONAP", "30.2.1_ONAP")
    },
}


def _sample_files() -> list[str]:
    found = [*VES_DATA.rglob("*.json"), *VES_DATA.rglob("*.txt")]
    # Licence texts travel with the data; everything else is posted.
    return sorted(str(p.relative_to(VES_DATA)) for p in found if not p.name.startswith("LICENSE"))


def test_every_sample_has_an_expectation() -> None:
    assert VES_DATA.is_dir(), f"the shared VES samples are missing at {VES_DATA}"
    files = _sample_files()
    assert len(files) >= 60
    assert set(files) == set(SAMPLES), {
        "without an expectation": sorted(set(files) - set(SAMPLES)),
        "no longer in the shared data": sorted(set(SAMPLES) - set(files)),
    }


@pytest.mark.parametrize("schemas", ["checked", "unchecked"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample(
    name: str,
    schemas: str,
    client: FlaskClient,
    db: Database,
    ves_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = SAMPLES[name]
    if schemas == "checked":
        monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))
        expected = sample.checked
    else:
        monkeypatch.delenv(SCHEMA_ENV, raising=False)
        expected = sample.unchecked or sample.checked
    body = (VES_DATA / name).read_bytes()
    version, _, batch = sample.endpoint.partition("/")
    before = last_batch_id(db)

    response = post(client, ves_token, body, version=version, batch=bool(batch))

    batches = batches_after(db, before)
    assert batches, "every request leaves a batch"
    assert_conserved(db)
    if expected.status == 400:
        ves_error(response, 400, expected.message_id)
        assert [(b.raw_format, b.received, b.quarantined) for b in batches] == [
            ("ves-rejected", 1, 1)
        ]
        assert read_raw(batches[0]) == body
        (record,) = quarantine_of(db, [batches[0].id])
        assert record.reason_code == expected.reason
        return
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_data() == b""
    CHECKS[expected.stores](db, batches, load(VES_DATA / name), schemas)


def _alarms(db: Database, batches: list, document: dict, schemas: str) -> None:
    del schemas
    events = events_of(document)
    assert sum(b.received for b in batches) == len(events)
    assert all(b.raw_format == "ves-events" for b in batches)
    assert sum(b.accepted + b.duplicates for b in batches) == len(events)
    ids = {e["commonEventHeader"]["eventId"] for e in events}
    with db.session() as session:
        alarms = session.scalars(select(Alarm).where(Alarm.external_id.in_(ids))).all()
    assert {a.external_id for a in alarms} == ids
    assert all(a.state == "active" and a.severity == "critical" for a in alarms)


def _measurements(db: Database, batches: list, document: dict, schemas: str) -> None:
    del document, schemas
    assert all(b.raw_format == "ves" for b in batches)
    assert sum(b.received for b in batches) > 0
    quarantined = quarantine_of(db, [b.id for b in batches])
    # The samples are years old: their records are kept, refused as older than retention.
    assert {q.reason_code for q in quarantined} == {"too_old"}
    assert all("." in q.record["kpi"] for q in quarantined)


def _heartbeat(db: Database, batches: list, document: dict, schemas: str) -> None:
    del schemas
    (batch,) = batches
    assert (batch.raw_format, batch.received, batch.accepted) == ("ves-events", 1, 1)
    header = document["event"]["commonEventHeader"]
    interval = document["event"].get("heartbeatFields", {}).get("heartbeatInterval")
    with db.session() as session:
        source = session.scalars(
            select(Source).where(Source.name == f"ves:{header['reportingEntityName']}")
        ).one()
    assert source.last_received_at == batch.received_at
    if interval:
        assert (source.expected_cadence_s, source.stale_after_s) == (interval, 3 * interval)


def _unsupported(db: Database, batches: list, document: dict, schemas: str) -> None:
    events = events_of(document)
    assert sum(b.received for b in batches) == len(events)
    quarantined = quarantine_of(db, [b.id for b in batches])
    assert [q.reason_code for q in quarantined] == ["unsupported_event"] * len(events)
    for record in quarantined:
        if record.record["domain"] != "stndDefined":
            continue
        check = record.record["schema_check"]
        if schemas == "unchecked":
            assert check.startswith("not checked"), check
        elif record.record.get("schemaReference"):
            assert check == "passed"
        assert check in record.reason


CHECKS: dict[str, Callable[[Database, list, dict, str], None]] = {
    "alarm": _alarms,
    "measurements": _measurements,
    "heartbeat": _heartbeat,
    "unsupported": _unsupported,
}


@pytest.fixture
def ves_token(token_for: Callable[..., str]) -> str:
    return token_for("operator", scopes=["ingest"], name="ves-sender")


@pytest.mark.parametrize("schemas", ["checked", "unchecked"])
def test_cef_message_list(
    schemas: str,
    client: FlaskClient,
    db: Database,
    ves_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The events inside the TCA message lists, as the v5 batches they would arrive in."""
    if schemas == "checked":
        monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))
    else:
        monkeypatch.delenv(SCHEMA_ENV, raising=False)
    cef = VES_DATA / T / "cef"
    listed = [item["event"] for item in load(cef / "cef_messages.json")]
    before = last_batch_id(db)
    response = post(client, ves_token, {"eventList": listed}, version="v5", batch=True)
    assert response.status_code == 202, response.get_data(as_text=True)
    batches = batches_after(db, before)
    # 31 events from 31 reporting entities: one source and one batch each.
    assert len(batches) == len(listed) == 31
    assert len({b.source_id for b in batches}) == 31
    assert_conserved(db)

    unescaped = Path(cef / "cef_unescaped_messages.txt").read_text(encoding="utf-8")
    for text in json.loads(unescaped):
        response = post(client, ves_token, text.encode(), version="v5")
        # These copies carry neither sourceName nor reportingEntityName.
        if schemas == "checked":
            detail = ves_error(response, 400, "SVC0002")
            assert "is a required property" in detail["variables"][0]
        else:
            detail = ves_error(response, 400, "SVC2006")
            assert detail["variables"][1] == "event.commonEventHeader.sourceName"
    assert_conserved(db)
