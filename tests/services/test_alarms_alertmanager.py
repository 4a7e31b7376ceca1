"""The Alertmanager webhook parser against its documented format and the v2 OpenAPI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from testkit import SHARED_DATA

from services.alarms import fingerprint
from services.ingest.reasons import REASONS
from services.ingest.sources.alarms_alertmanager import (
    AlertmanagerAlert,
    AlertmanagerWebhook,
    parse_alertmanager,
)
from services.ingest.sources.alarms_common import ParsedAlarms

ALERTMANAGER = SHARED_DATA / "alarms" / "alertmanager"
WEBHOOK_DOC = ALERTMANAGER / "webhook_payload_format_excerpt_from_docs_configuration.md"
AM_OPENAPI = ALERTMANAGER / "api_v2_openapi.yaml"
T0 = "2026-11-20T10:00:00Z"
DN = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"

AM_VALUES = {
    '"<resolved|firing>"': '"firing"',
    '"<rfc3339>"': f'"{T0}"',
    "<int>": "0",
    "<string>": '"sample"',
    "<object>": '{"alertname": "SampleAlert"}',
}


def doc_block() -> str:
    """The JSON-like block of the Alertmanager webhook documentation excerpt."""
    return WEBHOOK_DOC.read_text().split("```")[1]


def webhook_from_doc() -> dict[str, Any]:
    """The documented webhook with its placeholders filled in with typed sample values."""
    text = re.sub(r"//.*$", "", doc_block(), flags=re.MULTILINE)
    text = "\n".join(line for line in text.splitlines() if line.strip() != "...")
    for placeholder, value in AM_VALUES.items():
        text = text.replace(placeholder, value)
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "LinkDown", "instance": "SITE-0001:9100", **labels},
        "annotations": {"summary": "link down"},
        "startsAt": T0,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-20T10:30:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "c0ffee",
    }


def webhook(*alerts: Any, **envelope: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="LinkDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "beacon",
        "groupLabels": {"alertname": "LinkDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
        **envelope,
    }


def parse(body: Any) -> ParsedAlarms:
    return parse_alertmanager(body if isinstance(body, bytes) else json.dumps(body).encode())


def codes(parsed: ParsedAlarms) -> list[str]:
    return [r.reason_code for r in parsed.rejected]


# --- Alertmanager: the documentation excerpt and the v2 OpenAPI ---


def test_doc_excerpt_is_not_json_verbatim_and_is_refused_as_malformed() -> None:
    verbatim = doc_block().encode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(verbatim)
    parsed = parse_alertmanager(verbatim)
    assert parsed.refused_whole
    assert codes(parsed) == ["malformed_payload"]
    assert parsed.rejected[0].record["body"] == verbatim.decode()


def test_every_field_of_the_documented_format_is_modelled() -> None:
    keys = set(re.findall(r'"(\w+)":', doc_block()))
    alert_keys = {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert alert_keys <= keys
    assert keys - alert_keys <= set(AlertmanagerWebhook.model_fields)
    assert alert_keys <= set(AlertmanagerAlert.model_fields)


def test_documented_webhook_with_sample_values_raises_one_alarm() -> None:
    body = webhook_from_doc()
    AlertmanagerWebhook.model_validate(body)
    parsed = parse(body)
    assert parsed.source == "alertmanager:sample"
    assert codes(parsed) == []
    [event] = parsed.events
    assert event.action == "raise"
    assert event.facts is not None
    assert event.facts.key == fingerprint({"alertname": "SampleAlert"})
    assert event.facts.external_id == "sample"  # the sender's fingerprint, kept, not trusted


def test_alertmanager_openapi_label_sets_are_strings_and_labels_required() -> None:
    yaml = pytest.importorskip("yaml")
    definitions = yaml.safe_load(AM_OPENAPI.read_text())["definitions"]
    assert definitions["labelSet"]["additionalProperties"] == {"type": "string"}
    assert definitions["alert"]["required"] == ["labels"]
    numeric = alert()
    numeric["labels"]["port"] = 9100
    unlabelled = {k: v for k, v in alert().items() if k != "labels"}
    parsed = parse(webhook(numeric, unlabelled))
    assert codes(parsed) == ["schema_invalid", "missing_field"]
    assert [r.field for r in parsed.rejected] == ["labels.port", "labels"]


def test_api_v2_alert_shapes_are_not_webhook_alerts() -> None:
    """A gettableAlert (status object) or a postableAlert (no status) is refused per alert."""
    yaml = pytest.importorskip("yaml")
    definitions = yaml.safe_load(AM_OPENAPI.read_text())["definitions"]
    gettable_required = set(definitions["gettableAlert"]["allOf"][0]["required"])
    assert "status" in gettable_required
    gettable = {
        **alert(),
        "receivers": [{"name": "beacon"}],
        "updatedAt": T0,
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
    }
    assert gettable_required <= set(gettable)
    postable_fields = set(definitions["postableAlert"]["allOf"][0]["properties"])
    postable = {k: v for k, v in alert().items() if k in postable_fields | {"labels"}}
    parsed = parse(webhook(gettable, postable, alert()))
    assert codes(parsed) == ["schema_invalid", "missing_field"]
    assert [r.field for r in parsed.rejected] == ["status", "status"]
    assert len(parsed.events) == 1


# --- Alertmanager: items, times and the envelope ---


def test_firing_raises_and_resolved_clears_the_same_label_set() -> None:
    parsed = parse(webhook(alert("firing"), alert("resolved")))
    raise_, clear = parsed.events
    assert (raise_.action, clear.action) == ("raise", "clear")
    assert raise_.facts is not None
    assert clear.facts is not None
    assert raise_.facts.key == clear.facts.key
    assert clear.cleared_at == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert raise_.facts.element_ref == "SITE-0001:9100"
    assert raise_.facts.probable_cause == "LinkDown"


def test_element_labels_prefer_the_most_specific() -> None:
    parsed = parse(webhook(alert(dn=DN, element="SITE-0001")))
    assert parsed.events[0].facts is not None
    assert parsed.events[0].facts.element_ref == DN


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-11-20T10:00:00.123456789Z", None),  # Go's RFC3339Nano
        ("2026-11-20T12:00:00+02:00", None),
        ("2026-11-20 10:00:00", None),  # no zone: taken as UTC
        ("2026-11-20", "bad_timestamp"),
        ("yesterday", "bad_timestamp"),
        ("0001-01-01T00:00:00Z", "bad_timestamp"),  # Go's zero time: never set
        ("0001-01-01T00:00:00+01:00", "bad_timestamp"),  # before year 1 in UTC
        (1732096800, "bad_timestamp"),
        (None, "bad_timestamp"),
    ],
)
def test_starts_at_must_be_an_rfc3339_time(value: Any, code: str | None) -> None:
    parsed = parse(webhook({**alert(), "startsAt": value}))
    assert codes(parsed) == ([code] if code else [])
    if code is None:
        facts = parsed.events[0].facts
        assert facts is not None
        assert facts.raised_at.replace(microsecond=0) == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_resolved_without_end_time_clears_at_arrival() -> None:
    parsed = parse(webhook({**alert("resolved"), "endsAt": "0001-01-01T00:00:00Z"}))
    assert parsed.events[0].cleared_at is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "malformed_payload"),
        (b"\xff\xfe not utf-8", "malformed_payload"),
        (b'{"version": "4", "receiver": "x", "alerts": [NaN]}', "malformed_payload"),
        (b'{"version": "4", "receiver": "x", "alerts": [1e999]}', "malformed_payload"),
        (b"[" * 100 + b"]" * 100, "malformed_payload"),
        (b"[]", "schema_invalid"),
        (b'"a string"', "schema_invalid"),
        (b'{"version": "3", "receiver": "x", "alerts": []}', "unsupported_format"),
        (b'{"version": "4", "alerts": []}', "missing_field"),
        (b'{"version": "4", "receiver": "x"}', "missing_field"),
        (b'{"receiver": "x", "alerts": []}', "missing_field"),
        (b'{"version": "4", "receiver": "x", "alerts": {}}', "schema_invalid"),
        (b'{"version": "4", "receiver": "x", "alerts": [], "groupLabels": []}', "schema_invalid"),
    ],
)
def test_whole_payload_refusals(body: bytes, code: str) -> None:
    parsed = parse_alertmanager(body)
    assert parsed.refused_whole
    assert codes(parsed) == [code]
    assert parsed.received == 1


def test_bad_alerts_are_refused_one_by_one() -> None:
    body = webhook(
        alert(),
        {**alert(), "labels": {}},
        {k: v for k, v in alert().items() if k != "startsAt"},
        {**alert(), "status": "pending"},
        {**alert(), "annotations": {"runbook": ["a"]}},
        "not an alert",
        alert("resolved"),
    )
    parsed = parse(body)
    assert parsed.received == 7
    assert [e.index for e in parsed.events] == [0, 6]
    assert codes(parsed) == [
        "missing_field",
        "missing_field",
        "schema_invalid",
        "schema_invalid",
        "schema_invalid",
    ]
    assert [r.record["index"] for r in parsed.rejected] == [1, 2, 3, 4, 5]
    assert parsed.rejected[0].record["item"]["labels"] == {}
    assert all(r.reason_code in REASONS for r in parsed.rejected)


def test_nul_and_lone_surrogates_are_made_storable() -> None:
    body = webhook({**alert(), "labels": {"alertname": "a\x00b", "x\ud800": "y"}})
    parsed = parse(json.dumps(body).encode())
    facts = parsed.events[0].facts
    assert facts is not None
    assert facts.labels == {"alertname": "a\ufffdb", "x\ufffd": "y"}


def test_source_is_named_after_the_receiver() -> None:
    assert parse(webhook(receiver="  noc team ")).source == "alertmanager:noc team"
    long = parse(webhook(receiver="r" * 300))
    assert long.source == "alertmanager:" + "r" * 87
    assert codes(long) == []
    assert parse(b"nonsense").source == "alertmanager:unknown"
