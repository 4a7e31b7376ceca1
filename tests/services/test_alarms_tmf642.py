"""The TMF642 parser against the TM Forum Alarm Management v4 swagger.

The swagger's schemas carry no examples, so payloads are built from each definition's
required properties with realistic values, then broken one field at a time.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from testkit import SHARED_DATA

from services.alarms import fingerprint
from services.ingest.sources.alarms_common import ParsedAlarms
from services.ingest.sources.alarms_tmf642 import (
    Tmf642AlarmCreate,
    Tmf642ClearAlarms,
    parse_tmf642,
)

SWAGGER = json.loads(
    (SHARED_DATA / "alarms" / "tmf642" / "TMF642-Alarm-v4.0.0.swagger.json").read_text()
)
DEFINITIONS = SWAGGER["definitions"]
T0 = "2026-11-20T10:00:00Z"
DN = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
# Realistic values for the TMF642 fields the swagger requires (its schemas have no examples).
TMF_VALUES: dict[str, Any] = {
    "alarmType": "Communications Alarm",
    "perceivedSeverity": "major",
    "probableCause": "Loss of signal",
    "alarmedObject": {"id": DN, "@type": "EUtranCellFDD"},
    "sourceSystemId": "EMS-North",
    "state": "raised",
    "clearSystemId": "NOC-portal",
    "clearUserId": "operator-7",
    "alarmPattern": [{"alarmedObject": {"id": DN}, "alarmType": "Communications Alarm"}],
}


def minimal(name: str, **overrides: Any) -> dict[str, Any]:
    """The smallest instance of a TMF642 definition: its required properties only."""
    definition = DEFINITIONS[name]
    instance = {
        prop: _sample(prop, definition["properties"][prop])
        for prop in definition.get("required", [])
    }
    return {**instance, **overrides}


def _sample(prop: str, spec: dict[str, Any]) -> Any:
    if prop in TMF_VALUES:
        return copy.deepcopy(TMF_VALUES[prop])
    if spec.get("format") == "date-time":
        return T0
    return {"string": f"{prop}-1", "boolean": False, "integer": 1}[spec["type"]]


def parse(body: Any) -> ParsedAlarms:
    return parse_tmf642(body if isinstance(body, bytes) else json.dumps(body).encode())


def codes(parsed: ParsedAlarms) -> list[str]:
    return [r.reason_code for r in parsed.rejected]


# --- TMF642: shapes derived from the swagger ---


def test_alarm_create_required_fields_match_the_swagger() -> None:
    required = set(DEFINITIONS["Alarm_Create"]["required"])
    ours = {name for name, f in Tmf642AlarmCreate.model_fields.items() if f.is_required()}
    assert ours == required
    documented = set(DEFINITIONS["Alarm_Create"]["properties"]) - {
        "@baseType",
        "@schemaLocation",
        "@type",
    }
    assert documented <= set(Tmf642AlarmCreate.model_fields)
    clear_required = set(DEFINITIONS["ClearAlarms_Create"]["required"])
    assert {
        n for n, f in Tmf642ClearAlarms.model_fields.items() if f.is_required()
    } == clear_required


def test_minimal_alarm_create_raises_with_x733_identity() -> None:
    parsed = parse(minimal("Alarm_Create"))
    assert codes(parsed) == []
    assert parsed.source == "tmf642:EMS-North"
    facts = parsed.events[0].facts
    assert facts is not None
    assert facts.element_ref == DN
    assert facts.key == fingerprint(
        {
            "alarmedObject.id": DN,
            "alarmType": "Communications Alarm",
            "probableCause": "Loss of signal",
            "specificProblem": "",
        }
    )


@pytest.mark.parametrize("field", DEFINITIONS["Alarm_Create"]["required"])
def test_alarm_create_without_a_required_field_is_quarantined(field: str) -> None:
    body = {k: v for k, v in minimal("Alarm_Create").items() if k != field}
    parsed = parse(body)
    assert codes(parsed) == ["missing_field"]
    assert parsed.rejected[0].field == field


@pytest.mark.parametrize(
    "field",
    [
        p
        for p, spec in DEFINITIONS["Alarm_Create"]["properties"].items()
        if spec.get("format") == "date-time"
    ],
)
def test_alarm_times_must_be_rfc3339(field: str) -> None:
    parsed = parse(minimal("Alarm_Create", **{field: "20.11.2026 10:00"}))
    assert codes(parsed) == ["bad_timestamp"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"alarmType": 5}, "schema_invalid"),
        ({"alarmedObject": "SITE-1"}, "schema_invalid"),
        ({"alarmedObject": {"href": "x"}}, "missing_field"),
        ({"probableCause": "  "}, "missing_field"),
        ({"isRootCause": "perhaps"}, "schema_invalid"),
        ({"specificProblem": "x" * 401}, "schema_invalid"),
    ],
)
def test_alarm_create_type_errors(overrides: dict[str, Any], code: str) -> None:
    assert codes(parse(minimal("Alarm_Create", **overrides))) == [code]


@pytest.mark.parametrize(
    "marker",
    [
        {"state": "cleared"},
        {"perceivedSeverity": "Cleared"},
        {"alarmClearedTime": "2026-11-20T11:00:00Z"},
    ],
)
def test_an_alarm_marked_cleared_is_a_clear_pattern(marker: dict[str, Any]) -> None:
    parsed = parse(minimal("Alarm_Create", externalAlarmId="E-1", **marker))
    [event] = parsed.events
    assert event.action == "clear"
    assert event.anchor == "alarmedObject.id"
    assert event.pattern == {
        "sourceSystemId": "EMS-North",
        "alarmedObject.id": DN,
        "alarmType": "Communications Alarm",
        "probableCause": "Loss of signal",
        "externalAlarmId": "E-1",
    }


def test_alarm_update_shape_clear_needs_a_target() -> None:
    skipped = DEFINITIONS["Alarm_Update"]["description"]
    assert "sourceSystemId" in skipped
    assert "alarmRaisedTime" in skipped
    good = parse({"state": "cleared", "externalAlarmId": "E-9"})
    assert good.events[0].anchor == "externalAlarmId"
    by_id = parse({"perceivedSeverity": "cleared", "id": 42})
    assert by_id.events[0].pattern == {"id": "42"}
    nothing = parse({"state": "cleared", "probableCause": "Loss of signal"})
    assert codes(nothing) == ["missing_field"]


def test_clear_alarms_task_gives_one_item_per_pattern() -> None:
    task = minimal(
        "ClearAlarms_Create",
        alarmClearedTime="2026-11-20T11:00:00Z",
        alarmPattern=[
            {"alarmedObject": {"id": DN}, "alarmType": "Communications Alarm"},
            {"externalAlarmId": "E-1"},
            {"probableCause": "anything"},
            "junk",
        ],
    )
    parsed = parse(task)
    assert parsed.source == "tmf642:NOC-portal"
    assert parsed.received == 4
    assert [e.anchor for e in parsed.events] == ["alarmedObject.id", "externalAlarmId"]
    assert all(e.cleared_at and e.cleared_at.hour == 11 for e in parsed.events)
    assert codes(parsed) == ["missing_field", "schema_invalid"]
    assert parsed.rejected[0].record["clearSystemId"] == "NOC-portal"


@pytest.mark.parametrize("field", DEFINITIONS["ClearAlarms_Create"]["required"])
def test_clear_alarms_without_a_required_field_is_refused_whole(field: str) -> None:
    task = {k: v for k, v in minimal("ClearAlarms_Create").items() if k != field}
    parsed = parse(task)
    assert codes(parsed) == ["missing_field"]
    # Without alarmPattern the body reads as an Alarm-shaped clear, which names no alarm.
    assert parsed.refused_whole is (field != "alarmPattern")


def test_hub_notifications_carry_the_alarm() -> None:
    assert "event" in DEFINITIONS["AlarmStateChangeEvent"]["properties"]
    create = {
        "eventId": "1",
        "eventType": "AlarmCreateEvent",
        "event": {"alarm": minimal("Alarm_Create")},
    }
    change = {
        "eventId": "2",
        "eventType": "AlarmStateChangeEvent",
        "event": {"alarm": minimal("Alarm_Create", state="cleared")},
    }
    deleted = {"eventId": "3", "eventType": "AlarmDeleteEvent", "event": {"alarm": {}}}
    empty = {"eventId": "4", "eventType": "AlarmCreateEvent", "event": {}}
    parsed = parse([create, change, deleted, empty])
    assert [e.action for e in parsed.events] == ["raise", "clear"]
    assert codes(parsed) == ["unsupported_event", "missing_field"]


def test_a_list_keeps_to_one_source_system() -> None:
    other = minimal("Alarm_Create", sourceSystemId="EMS-South")
    parsed = parse([minimal("Alarm_Create"), other, 7])
    assert parsed.source == "tmf642:EMS-North"
    assert codes(parsed) == ["mixed_sources", "schema_invalid"]
    assert parsed.rejected[0].record == {"index": 1, "item": other}


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{", "malformed_payload"), (b"42", "schema_invalid"), (b"null", "schema_invalid")],
)
def test_tmf642_whole_payload_refusals(body: bytes, code: str) -> None:
    parsed = parse_tmf642(body)
    assert parsed.refused_whole
    assert codes(parsed) == [code]
    assert parsed.source == "tmf642:unknown"
