"""Property: mutated alarm deliveries never make the API fail, and every batch row balances."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.db import Database
from services.db.models import IngestBatch, QuarantinedRecord

T0 = "2026-11-20T10:00:00Z"
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
PATHS = {"alertmanager": "/api/v1/alarms/alertmanager", "tmf642": "/api/v1/alarms/tmf642"}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    # The app and its database are built once per test; examples share them on purpose,
    # so repeats and clears of earlier examples' alarms are exercised too.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def am_alert(status: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "LinkDown", "instance": "SITE-0001:9100", **labels},
        "annotations": {"summary": "link down"},
        "startsAt": T0,
        "endsAt": "2026-11-20T10:30:00Z",
    }


def tmf(**overrides: Any) -> dict[str, Any]:
    return {
        "alarmType": "Communications Alarm",
        "perceivedSeverity": "major",
        "probableCause": "Loss of signal",
        "alarmedObject": {"id": SITE},
        "sourceSystemId": "EMS-North",
        "state": "raised",
        "alarmRaisedTime": T0,
        **overrides,
    }


BASES: dict[str, list[Any]] = {
    "alertmanager": [
        {
            "version": "4",
            "receiver": "fuzz",
            "status": "firing",
            "groupLabels": {},
            "alerts": [am_alert("firing"), am_alert("resolved"), am_alert("firing", sev="x")],
        }
    ],
    "tmf642": [
        tmf(),
        [tmf(), tmf(state="cleared"), {"eventType": "AlarmCreateEvent", "event": {"alarm": tmf()}}],
        {
            "clearSystemId": "NOC",
            "clearUserId": "op",
            "alarmClearedTime": "2026-11-20T11:00:00Z",
            "alarmPattern": [{"alarmedObject": {"id": SITE}}, {"externalAlarmId": "E-1"}],
        },
    ],
}

# Strings include NUL and lone surrogates, which PostgreSQL refuses to store as they are.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=()), max_size=10)
    | st.sampled_from(["", "cleared", "resolved", "firing", T0, "0001-01-01T00:00:00Z"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    found: list[tuple[Any, ...]] = []
    for key, child in items:
        found += [(*path, key), *_slots(child, (*path, key))]
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """A valid payload with keys deleted, values replaced or list items repeated."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        slots = _slots(doc)
        if not slots:
            break
        *parents, key = draw(st.sampled_from(slots))
        container = doc
        for part in parents:
            container = container[part]
        action = draw(st.sampled_from(["delete", "replace", "repeat"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(values)
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    return doc


def bodies(kind: str) -> st.SearchStrategy[bytes]:
    """Mutated payloads of a kind, serialised; sometimes cut short."""
    docs = st.sampled_from(BASES[kind]).flatmap(mutated)
    whole = docs.map(lambda doc: json.dumps(doc).encode())
    cut = st.tuples(whole, st.integers(min_value=0, max_value=400)).map(lambda t: t[0][: t[1]])
    return st.one_of(whole, whole, whole, cut)


def items_in(raw: bytes, kind: str) -> int | None:
    """How many items a body holds, or None when it is refused whole."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    key = "alerts" if kind == "alertmanager" else "alarmPattern"
    if isinstance(doc, dict) and isinstance(doc.get(key), list):
        return len(doc[key])
    if kind == "tmf642" and isinstance(doc, list):
        return len(doc)
    return 1 if kind == "tmf642" and isinstance(doc, dict) else None


def deliver(client: Any, db: Database, headers: dict[str, str], kind: str, raw: bytes) -> None:
    """Post a body; assert a documented answer and a balanced, fully kept batch."""
    response = client.post(PATHS[kind], data=raw, headers=headers, content_type="application/json")
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)
    body = response.get_json()
    summary = body if response.status_code == 200 else body["error"]["details"]
    assert summary["received"] == (
        summary["accepted"] + summary["duplicates"] + summary["quarantined"]
    )
    # Exact conservation: one received per item, or one for a body refused as a whole.
    refused_whole = response.status_code != 200 and summary["received"] == 1
    assert refused_whole or summary["received"] == items_in(raw, kind)
    with db.session() as session:
        batch = session.get_one(IngestBatch, summary["batch_id"])
        assert batch.status == "done"
        assert (batch.received, batch.accepted, batch.duplicates, batch.quarantined) == (
            summary["received"],
            summary["accepted"],
            summary["duplicates"],
            summary["quarantined"],
        )
        kept = session.scalar(select(func.count()).where(QuarantinedRecord.batch_id == batch.id))
        assert kept == batch.quarantined


@FUZZ
@given(raw=bodies("alertmanager"))
def test_mutated_alertmanager_webhooks(client, db, as_role, raw: bytes) -> None:
    deliver(client, db, as_role("operator"), "alertmanager", raw)


@FUZZ
@given(raw=bodies("tmf642"))
def test_mutated_tmf642_bodies(client, db, as_role, raw: bytes) -> None:
    deliver(client, db, as_role("operator"), "tmf642", raw)
