"""Mutated VES requests through the HTTP endpoints: never a 500, every event accounted for."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ves_support import (
    RESOURCES,
    SCHEMA_DIR,
    SCHEMA_ENV,
    VES_DATA,
    assert_conserved,
    batches_after,
    last_batch_id,
    now_minute,
    post,
    quarantine_of,
    redate,
)

from services.db import Database
from services.ingest.sources.ves_errors import VesRefusal
from services.ingest.sources.ves_measurements import measurement_payload
from services.ingest.sources.ves_models import MEASUREMENT_BLOCKS
from services.ingest.sources.ves_parse import parse_request

BASES = [
    (RESOURCES / "measurement7x.json", "v7", False),
    (RESOURCES / "measurement5x.json", "v5", False),
    (RESOURCES / "ves7_valid_30_1_1_event.json", "v7", False),
    (RESOURCES / "ves7_batch_valid.json", "v7", True),
    (RESOURCES / "ves7_batch_stdnDefined_withSameStndDefinedNamespace.json", "v7", True),
    (VES_DATA / "dcaegen2-services-heartbeat" / "tests" / "test1.json", "v7", False),
]
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
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        items = []
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], str, bool]:
    """A recent valid sample with nodes deleted, blanked or replaced, for some endpoint."""
    path, version, batch = draw(st.sampled_from(BASES))
    document = redate(json.loads(path.read_bytes()), at=now_minute())
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
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
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        version = draw(st.sampled_from(["v5", "v7", "v6"]))  # the wrong endpoint, sometimes
    return document, version, batch


@pytest.fixture
def ves_token(token_for: Callable[..., str]) -> str:
    return token_for("operator", scopes=["ingest"], name="ves-sender")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=requests(), schemas=st.booleans())
def test_mutated_requests_never_fail_and_conserve_counts(
    case: tuple[dict[str, Any], str, bool],
    schemas: bool,
    client: FlaskClient,
    db: Database,
    ves_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document, version, batch = case
    if schemas:
        monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))
    else:
        monkeypatch.delenv(SCHEMA_ENV, raising=False)
    body = json.dumps(copy.deepcopy(document)).encode()
    before = last_batch_id(db)

    response = post(client, ves_token, body, version=version, batch=batch)

    assert response.status_code in (202, 400), response.get_data(as_text=True)[:500]
    batches = batches_after(db, before)
    assert_conserved(db)
    schema_dir = SCHEMA_DIR if schemas else None
    if response.status_code == 400:
        assert "requestError" in response.get_json()
        assert [(b.raw_format, b.received, b.quarantined) for b in batches] == [
            ("ves-rejected", 1, 1)
        ]
        (record,) = quarantine_of(db, [batches[0].id])
        with pytest.raises(VesRefusal) as refused:
            parse_request(body, api_version=version, batch=batch, schema_dir=schema_dir)
        assert record.reason_code == refused.value.reason_code
        return
    request = parse_request(body, api_version=version, batch=batch, schema_dir=schema_dir)
    if request.domain in MEASUREMENT_BLOCKS:
        expected = measurement_payload(request.events).received
    else:
        expected = len(request.events)
    assert sum(b.received for b in batches) == expected
