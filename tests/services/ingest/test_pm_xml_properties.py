"""Mutated PM XML never crashes the parser, and every value of a readable file is counted."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from test_pm_xml import CELL, CELL2, meas_info, pm_file
from testkit import seeded_database

from services.db import Database
from services.ingest.pipeline import ingest_records
from services.ingest.reasons import REASONS
from services.ingest.records import ParsedPayload
from services.ingest.sources import pm_xml, pm_xml_runs
from services.ingest.sources.pm_xml import COLUMNS, parse_pm_xml

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASES = (
    pm_file(
        meas_info({CELL: ["86", "1,2,3", ""], CELL2: ["NIL", "5", "6"]}, suspect={CELL: "true"}),
        meas_info({CELL: ["7", "8", "9"]}, form="measResults", info_id="2"),
    ),
    pm_file(
        meas_info({CELL: ["1", "2", "3"], CELL2: ["4", "5", "6"]}, form="measResults"),
        fmt="28.532",
        declaration='<?xml-stylesheet href="x.xsl"?>\n<?xml version="1.0"?>\n',
    ),
)
TEXTS = st.sampled_from(
    ["", " ", "NIL", "NULL", "1,2", ",", "1,,3", "abc", "-5", "1e999", "7", "P" + "9" * 30 + "D",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-20T11:45:00",
     "²", "٣", "01", "9" * 5000]
)  # fmt: skip
NAMES = st.sampled_from(["r", "measValue", "measInfo", "measType", "measResults", "suspect", "x"])
# Any text XML can carry (no control characters, surrogates or non-characters).
XML_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0xD7FF), max_size=8)
ATTRIBUTES = st.sampled_from(["p", "measObjLdn", "endTime", "duration", "dnPrefix", "swVersion"])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid file with elements, attributes and text changed, then maybe its bytes."""
    base = draw(st.sampled_from(BASES))
    root = etree.fromstring(base[base.index(b"<meas") :])
    for _ in range(draw(st.integers(0, 4))):
        elements = list(root.iter())
        element = draw(st.sampled_from(elements))
        parent = element.getparent()
        action = draw(st.sampled_from(["drop", "copy", "text", "attribute", "rename", "move"]))
        if action == "drop" and parent is not None:
            parent.remove(element)
        elif action == "copy" and parent is not None:
            parent.insert(parent.index(element), etree.fromstring(etree.tostring(element)))
        elif action == "text":
            element.text = draw(TEXTS | XML_TEXT)
        elif action == "attribute":
            element.set(draw(ATTRIBUTES), draw(TEXTS | XML_TEXT))
        elif action == "rename":
            namespace = element.tag.partition("}")[0] + "}" if "}" in element.tag else ""
            element.tag = namespace + draw(NAMES)
        elif action == "move" and parent is not None:
            target = draw(st.sampled_from(elements))
            if element not in target.iterancestors() and element is not target:
                target.append(element)
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    damage = draw(st.sampled_from(["none", "stylesheet", "truncate", "insert", "flip", "gzip"]))
    at = draw(st.integers(0, len(payload)))
    if damage == "truncate":
        payload = payload[:at]
    elif damage == "insert":
        payload = payload[:at] + draw(st.binary(min_size=1, max_size=8)) + payload[at:]
    elif damage == "flip" and payload:
        flipped = (payload[min(at, len(payload) - 1)] + draw(st.integers(1, 255))) % 256
        payload = payload[: min(at, len(payload) - 1)] + bytes([flipped]) + payload[at + 1 :]
    elif damage == "stylesheet":
        payload = b'<?xml-stylesheet type="text/xsl" href="x.xsl"?>\n' + payload
    elif damage == "gzip":
        payload = gzip.compress(payload)
    return payload


def values_in(payload: bytes) -> int | None:
    """Values the file holds, counted without the parser: <r> and measResults items.

    None when a plain parse cannot read the file (then the parser must have refused it).
    """
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    payload = payload[max(payload.find(b"<?xml "), 0) :]  # the parser drops what precedes it
    try:
        root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    count = 0
    for value in root.iter("{*}measValue"):
        count += len(list(value.iterchildren("{*}r")))
        results = value.find("{*}measResults")
        if results is not None:
            count += len((results.text or "").split())
    return count


def check(parsed: ParsedPayload, payload: bytes) -> None:
    """The parser's bookkeeping for one payload."""
    assert parsed.received == len(parsed.records) + len(parsed.rejected)
    assert all(r.reason_code in REASONS for r in parsed.rejected)
    if "refused" in parsed.meta:
        assert parsed.records.empty
        assert len(parsed.rejected) == 1
        return
    assert list(parsed.records.columns) == list(COLUMNS)
    assert str(parsed.records["period_end"].dtype).endswith("UTC]")
    assert all(isinstance(v, str) for v in parsed.records["value"])
    assert all(isinstance(k, str) and k for k in parsed.records["kpi"])
    expected = values_in(payload)
    assert expected is not None, "the parser read a file a plain parse cannot"
    # Exact: every value is one record (one per histogram bin) or one refusal.
    assert parsed.meta["values"] == expected
    assert not any("," in value for value in parsed.records["value"])


@settings(max_examples=400, deadline=None)
@given(payload=mutated())
def test_mutated_files_are_never_a_crash_and_every_value_is_counted(payload: bytes) -> None:
    check(parse_pm_xml(payload, name="fuzz.xml"), payload)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300) | st.binary(max_size=40).map(gzip.compress))
def test_random_bytes_are_refused_never_a_crash(payload: bytes) -> None:
    parsed = parse_pm_xml(payload)
    assert "refused" in parsed.meta or parsed.received == 0
    check(parsed, payload)


def same(left: ParsedPayload, right: ParsedPayload) -> None:
    """Two parses agree on every record, refusal and note (a parser error's wording aside)."""
    pd.testing.assert_frame_equal(left.records, right.records)
    assert left.meta == right.meta
    if "refused" in left.meta:  # the error names a line and column of what lxml was given
        assert [(r.reason_code, r.field) for r in left.rejected] == [
            (r.reason_code, r.field) for r in right.rejected
        ]
    else:
        assert [asdict(r) for r in left.rejected] == [asdict(r) for r in right.rejected]


@st.composite
def pm_files(draw: st.DrawFn) -> bytes:
    """Valid files with arbitrary values, blanks, histograms, flags, names and layout."""
    value = st.sampled_from(
        ["", " ", "7", " 8 ", "NIL", "1,2,3", "4,,", "x|y", "a&amp;b", "9.5", "1\t2", "a>b"]
    )
    counters = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True))
    names = [CELL, CELL2, "x", "y,z", "a&amp;b", "q>r", "tab\there", " padded "]
    objects = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
    width = st.integers(0, len(counters))
    values = {
        o: draw(st.lists(value, min_size=len(counters), max_size=len(counters)))[: draw(width)]
        for o in objects
    }
    flag = st.sampled_from(["true", "false", "1", "0", " true", "maybe", None])
    flags = {o: f for o in objects if (f := draw(flag)) is not None}
    form = draw(st.sampled_from(["r", "measResults"]))
    if form == "measResults":
        values = {o: [v.strip() or "NIL" for v in row] for o, row in values.items()}
    info = meas_info(values, counters=counters, form=form, suspect=flags)
    if draw(st.booleans()):  # measValues that are not plain: another attribute
        info = info.replace("<measValue ", '<measValue vendorExt="1" ', 1)
    payload = pm_file(info, fmt=draw(st.sampled_from(["32.435", "28.532"])))
    if draw(st.booleans()):  # pretty-printed, as most producers write
        payload = payload.replace(b"><", b">\n    <")
    return payload


@settings(max_examples=300, deadline=None)
@given(payload=pm_files() | mutated(), chunk=st.sampled_from([7, 61, 4096, 1024 * 1024]))
def test_collapsing_runs_of_values_changes_nothing(payload: bytes, chunk: int) -> None:
    plain = pm_xml.parse(payload, collapse=False)
    original = pm_xml_runs.CHUNK_BYTES
    pm_xml_runs.CHUNK_BYTES = chunk  # chunks end anywhere, also inside values
    try:
        collapsed = pm_xml.parse(payload, collapse=True)
    finally:
        pm_xml_runs.CHUNK_BYTES = original
    same(plain, collapsed)


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(BASES), data=st.data())
def test_damaged_gzip_is_refused_or_read_never_a_crash(base: bytes, data: st.DataObject) -> None:
    packed = gzip.compress(base, mtime=0)
    at = data.draw(st.integers(0, len(packed) - 1))
    damage = data.draw(st.sampled_from(["flip", "cut", "insert", "trailing"]))
    if damage == "flip":
        packed = (
            packed[:at] + bytes([packed[at] ^ data.draw(st.integers(1, 255))]) + packed[at + 1 :]
        )
    elif damage == "cut":
        packed = packed[:at]
    elif damage == "insert":
        packed = packed[:at] + data.draw(st.binary(min_size=1, max_size=9)) + packed[at:]
    else:
        packed += packed[:at]
    parsed = parse_pm_xml(packed)
    assert parsed.received == len(parsed.records) + len(parsed.rejected)
    assert all(r.reason_code in REASONS for r in parsed.rejected)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=mutated())
def test_mutated_files_through_the_pipeline_conserve_counts(db: Database, payload: bytes) -> None:
    # One database for all examples: later batches meet earlier ones as duplicates.
    parsed = parse_pm_xml(payload, name="fuzz.xml")
    summary = ingest_records(
        db,
        source="fuzz",
        records=parsed.records,
        rejected=parsed.rejected,
        raw=payload,
        raw_format="pm-xml",
        received_at=RECEIVED,
        source_kind="pm_xml",
    )
    assert summary.received == parsed.received
    assert summary.received == summary.accepted + summary.duplicates + summary.quarantined
