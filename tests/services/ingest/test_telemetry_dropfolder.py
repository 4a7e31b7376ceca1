"""CSV/JSON telemetry parsing, the push endpoint and the watched drop folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dash import Dash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services import audit, auth
from services.db import Database
from services.db.models import IngestBatch, Measurement
from services.ingest.dropfolder import poll_drop_folder
from services.ingest.sources.telemetry import parse_csv, parse_json

DN = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
GOOD_CSV = (
    "element,counter,timestamp,value,vendor\n"
    f'"{DN}",prb_util_dl,2026-11-20T10:00:00Z,42.5,Ericsson\n'
    f'"{DN}",prb_util_ul,2026-11-20T10:00:00Z,,Ericsson\n'
).encode()


def test_csv_aliases_and_blank_values() -> None:
    parsed = parse_csv(GOOD_CSV, name="x.csv")
    assert list(parsed.records.columns) == ["dn", "kpi", "period_end", "value", "vendor"]
    assert parsed.records["dn"].tolist() == [DN, DN]
    assert parsed.records["value"].tolist() == ["42.5", ""]
    assert parsed.rejected == []


def test_csv_without_required_columns_is_refused_whole() -> None:
    parsed = parse_csv(b"dn,value\nA,1\n", name="bad.csv")
    assert parsed.records.empty
    assert [r.reason_code for r in parsed.rejected] == ["missing_field"]
    assert "kpi" in parsed.rejected[0].reason
    assert parse_csv(b"\xff\xfe\x00garbage", name="bin").rejected[0].reason_code == (
        "malformed_payload"
    )


def test_json_list_object_form_and_bad_items() -> None:
    body = {
        "records": [
            {"dn": DN, "kpi": "prb_util_dl", "period_end": "2026-11-20T10:00:00Z", "value": 3},
            "nonsense",
            7,
        ]
    }
    parsed = parse_json(json.dumps(body).encode())
    assert len(parsed.records) == 1
    assert [r.reason_code for r in parsed.rejected] == ["schema_invalid", "schema_invalid"]
    assert parsed.received == 3
    assert parse_json(b"{not json").rejected[0].reason_code == "malformed_payload"
    assert parse_json(b'{"a": 1}').rejected[0].reason_code == "unsupported_format"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_parsers_never_raise_and_count_everything(blob: bytes) -> None:
    for parse in (parse_csv, parse_json):
        parsed = parse(blob)
        assert parsed.received == len(parsed.records) + len(parsed.rejected)
        assert parsed.received >= 1 or parsed.records.empty


def test_push_endpoint_stores_and_quarantines(app: Dash, db: Database) -> None:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session, name="legacy", role="operator", scopes=["ingest"], actor=audit.SYSTEM
        )
        reader = auth.create_api_token(session, name="bi", role="viewer", actor=audit.SYSTEM)
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {issued.plaintext}", "Content-Type": "text/csv"}
    response = client.post("/api/v1/telemetry?source=legacy-oss", data=GOOD_CSV, headers=headers)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["received"], body["accepted"], body["quarantined"]) == (2, 1, 1)
    assert body["reasons"] == {"missing_value": 1}
    assert body["source"] == "legacy-oss"
    refused = client.post(
        "/api/v1/telemetry",
        data=GOOD_CSV,
        headers={"Authorization": f"Bearer {reader.plaintext}", "Content-Type": "text/csv"},
    )
    assert refused.status_code == 403
    assert client.post("/api/v1/telemetry", data=GOOD_CSV).status_code == 401
    wrong = client.post(
        "/api/v1/telemetry", data=b"x", headers={**headers, "Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415
    document = client.get(
        "/api/v1/openapi.json", headers={"Authorization": f"Bearer {reader.plaintext}"}
    ).get_json()
    operation = document["paths"]["/api/v1/telemetry"]["post"]
    assert set(operation["requestBody"]["content"]) == {"text/csv", "application/json"}


def test_drop_folder_ingests_settled_files_and_moves_them(db: Database, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "legacy-oss").mkdir(parents=True)
    (drop / "legacy-oss" / "a.csv").write_bytes(GOOD_CSV)
    (drop / "mystery.bin").write_bytes(b"\x00\x01\x02")
    fresh = drop / "legacy-oss" / "still-writing.csv"
    fresh.write_bytes(GOOD_CSV)
    old = time.time() - 60
    for path in (drop / "legacy-oss" / "a.csv", drop / "mystery.bin"):
        os.utime(path, (old, old))
    outcome = poll_drop_folder(db, drop, settle_seconds=30)
    assert (outcome.files, outcome.received, outcome.accepted, outcome.quarantined) == (2, 3, 1, 2)
    assert fresh.exists()  # not settled yet: left for the next poll
    done = list((drop / ".done").rglob("*"))
    assert {p.name for p in done if p.is_file()} == {"a.csv", "mystery.bin"}
    with db.session() as session:
        formats = dict(
            session.execute(select(IngestBatch.raw_format, IngestBatch.quarantined)).all()
        )
        assert formats == {"csv": 1, "unknown": 1}
        assert session.scalar(select(func.count()).select_from(Measurement)) == 1
