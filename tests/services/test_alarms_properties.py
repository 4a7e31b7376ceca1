"""Property: mutated alarm payloads never crash a parser and every item is counted once."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_alarms_alertmanager import T0, alert, webhook
from test_alarms_tmf642 import minimal

from services.ingest.reasons import REASONS
from services.ingest.sources.alarms_alertmanager import parse_alertmanager
from services.ingest.sources.alarms_common import ParsedAlarms
from services.ingest.sources.alarms_tmf642 import parse_tmf642

# Strings include NUL and lone surrogates: PostgreSQL refuses both, so parsers must clean them.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
    | st.sampled_from(["", "cleared", "firing", "resolved", T0, "0001-01-01T00:00:00Z", "\x00"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every (container path, key) in a JSON document."""
    found = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        found.append((*path, key))
        found.extend(_slots(child, (*path, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """A valid payload with a few keys deleted, values replaced or items duplicated."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(doc)
        if not slots:
            break
        *parents, key = draw(st.sampled_from(slots))
        container = doc
        for part in parents:
            container = container[part]
        action = draw(st.sampled_from(["delete", "replace", "replace", "duplicate"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(json_values)
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    return doc


@st.composite
def mangled_bytes(draw: st.DrawFn, base: Any) -> bytes:
    """A serialised payload cut short, with bytes inserted, or replaced by noise."""
    raw = json.dumps(base).encode()
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    noise = draw(st.binary(max_size=8))
    return draw(st.sampled_from([raw[:cut], raw[:cut] + noise + raw[cut:], noise]))


def expected_items(body: Any, parsed: ParsedAlarms, *, key: str) -> int:
    if parsed.refused_whole:
        return 1
    if isinstance(body, dict) and key in body and isinstance(body[key], list):
        return len(body[key])
    return len(body) if isinstance(body, list) else 1


AM_BASE = webhook(alert(), alert("resolved"), alert(severity="warning"))
TMF_BASES = [
    minimal("Alarm_Create"),
    [minimal("Alarm_Create"), minimal("Alarm_Create", state="cleared")],
    minimal("ClearAlarms_Create"),
    {"eventType": "AlarmStateChangeEvent", "event": {"alarm": minimal("Alarm_Create")}},
]


def _conserved(parsed: ParsedAlarms, expected: int) -> None:
    """Every item is an event or a refusal, exactly once, and all of it can be stored."""
    assert parsed.received == len(parsed.events) + len(parsed.rejected) == expected
    assert all(r.reason_code in REASONS for r in parsed.rejected)
    if not parsed.refused_whole:
        indexes = [e.index for e in parsed.events] + [r.record["index"] for r in parsed.rejected]
        assert sorted(indexes) == list(range(expected))
    for event in parsed.events:
        json.dumps(event.facts.raw if event.facts else event.pattern, allow_nan=False)
    for rejected in parsed.rejected:
        json.dumps(rejected.record, allow_nan=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated(AM_BASE))
def test_alertmanager_parser_conserves_mutated_payloads(body: Any) -> None:
    parsed = parse_alertmanager(json.dumps(body).encode())
    _conserved(parsed, expected_items(body, parsed, key="alerts"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.sampled_from(TMF_BASES).flatmap(mutated))
def test_tmf642_parser_conserves_mutated_payloads(body: Any) -> None:
    parsed = parse_tmf642(json.dumps(body).encode())
    key = "alarmPattern" if isinstance(body, dict) and "alarmPattern" in body else "-"
    _conserved(parsed, expected_items(body, parsed, key=key))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mangled_bytes(AM_BASE), tmf=st.sampled_from(TMF_BASES).flatmap(mangled_bytes))
def test_parsers_survive_mangled_bytes(raw: bytes, tmf: bytes) -> None:
    for parser, data in ((parse_alertmanager, raw), (parse_tmf642, tmf)):
        parsed = parser(data)
        assert parsed.received == len(parsed.events) + len(parsed.rejected)
        if parsed.refused_whole:
            assert parsed.received == 1
