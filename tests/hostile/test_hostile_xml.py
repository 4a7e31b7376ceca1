"""Hostile XML: entity expansion and external entities are refused, never expanded or fetched.

PM XML is the only XML Beacon reads. A DOCTYPE is refused before parsing (unsafe_xml); the
lxml parser itself also runs with DTDs, entity resolution and network access off, which is
checked separately so the two defences do not hide each other.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from services.db import Database
from services.db.models import QuarantinedRecord
from services.ingest.dropfolder import ingest_file
from services.ingest.reasons import REASONS
from services.ingest.sources.pm_xml import parse_pm_xml
from services.ingest.sources.pm_xml_rules import PARSER_OPTIONS

SECRET = "beacon-xxe-canary-7f3a"
BODY = (
    '<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">'
    '<fileHeader fileFormatVersion="32.435 V10.0" vendorName="&v;"><fileSender/>'
    '<measCollec beginTime="2026-11-20T11:30:00Z"/></fileHeader>'
    '<measData><managedElement localDn="S1"/><measInfo measInfoId="i"><job jobId="1"/>'
    '<granPeriod endTime="2026-11-20T11:45:00Z" duration="PT900S"/>'
    '<measType p="1">&v;</measType><measValue measObjLdn="C1"><r p="1">&v;</r></measValue>'
    "</measInfo></measData></measCollecFile>"
)


def billion_laughs() -> bytes:
    """Ten levels of ten references: 10^9 copies of "lol" if anything expanded it."""
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    lines.append('<!ENTITY v "&lol9;">')
    doctype = "<!DOCTYPE measCollecFile [\n" + "\n".join(lines) + "\n]>\n"
    return ('<?xml version="1.0"?>\n' + doctype + BODY).encode()


def xxe(path: Path) -> bytes:
    """An external entity pointing at a local file."""
    doctype = f'<!DOCTYPE measCollecFile [<!ENTITY v SYSTEM "file://{path}">]>\n'
    return ('<?xml version="1.0"?>\n' + doctype + BODY).encode()


def parameter_xxe(path: Path) -> bytes:
    """A parameter entity loading an external DTD (the out-of-band XXE variant)."""
    doctype = (
        f'<!DOCTYPE measCollecFile [<!ENTITY % ext SYSTEM "file://{path}"> %ext;<!ENTITY v "x">]>\n'
    )
    return ('<?xml version="1.0"?>\n' + doctype + BODY).encode()


def external_dtd(path: Path) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE measCollecFile SYSTEM "file://{path}">\n').encode()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def _hostile(secret_file: Path) -> dict[str, bytes]:
    laughs = billion_laughs()
    return {
        "billion_laughs": laughs,
        "xxe_local_file": xxe(secret_file),
        "parameter_entity": parameter_xxe(secret_file),
        "external_dtd": external_dtd(secret_file) + BODY.encode(),
        "doctype_after_comments": laughs.replace(
            b"<!DOCTYPE", b"<!-- a note -->\n<?pi x?>\n<!DOCTYPE", 1
        ),
        "doctype_with_bom": b"\xef\xbb\xbf" + laughs,
        "gzip_billion_laughs": gzip.compress(laughs),
        "gzip_xxe": gzip.compress(xxe(secret_file)),
    }


def test_every_hostile_document_is_refused_as_unsafe_xml(secret_file: Path) -> None:
    for label, payload in _hostile(secret_file).items():
        started = time.perf_counter()
        parsed = parse_pm_xml(payload, name=f"{label}.xml")
        elapsed = time.perf_counter() - started
        assert parsed.records.empty, label
        assert [r.reason_code for r in parsed.rejected] == ["unsafe_xml"], label
        refusal = parsed.rejected[0]
        assert refusal.record["file"] == f"{label}.xml"
        assert "DTD" in (refusal.reason or "")
        text = repr(parsed.rejected) + repr(parsed.meta)
        assert SECRET not in text, label
        assert "lollollol" not in text, label
        assert elapsed < 2.0, f"{label} took {elapsed:.2f}s: something expanded"


def test_hostile_xml_is_quarantined_with_its_reason(db: Database, secret_file: Path) -> None:
    """Through the drop-folder path: kept raw, one quarantined record, reason unsafe_xml."""
    for label, payload in _hostile(secret_file).items():
        path = secret_file.parent / f"{label}.xml"
        path.write_bytes(payload)
        summary = ingest_file(db, path, source="pm-drop")
        assert (summary.received, summary.accepted, summary.quarantined) == (1, 0, 1), label
        assert summary.reasons == {"unsafe_xml": 1}, label
    with db.session() as session:
        rows = session.scalars(select(QuarantinedRecord)).all()
    assert len(rows) == len(_hostile(secret_file))
    assert {row.reason_code for row in rows} == {"unsafe_xml"}
    assert all(row.reason for row in rows)
    assert all(SECRET not in repr(row.record) for row in rows)
    assert REASONS["unsafe_xml"]


def test_parser_options_are_hardened() -> None:
    assert PARSER_OPTIONS["resolve_entities"] is False
    assert PARSER_OPTIONS["no_network"] is True
    assert PARSER_OPTIONS["load_dtd"] is False
    assert PARSER_OPTIONS["dtd_validation"] is False
    assert PARSER_OPTIONS["huge_tree"] is False


def _iter_texts(payload: bytes) -> str:
    """Everything the hardened iterparse reports, with the DOCTYPE check bypassed."""
    import io

    texts = []
    try:
        for _event, element in etree.iterparse(io.BytesIO(payload), **PARSER_OPTIONS):
            texts.append(element.text or "")
            texts.extend(str(v) for v in element.attrib.values())
    except etree.XMLSyntaxError as error:
        texts.append(f"refused: {error}")
    return "".join(texts)


def test_the_parser_itself_never_expands_or_fetches(secret_file: Path) -> None:
    """Defence in depth: even without the DOCTYPE check, nothing is expanded or read."""
    started = time.perf_counter()
    seen = _iter_texts(billion_laughs())
    assert time.perf_counter() - started < 2.0
    assert "lollol" not in seen
    assert len(seen) < 10_000
    for payload in (xxe(secret_file), parameter_xxe(secret_file)):
        assert SECRET not in _iter_texts(payload)


def test_malformed_xml_is_refused_with_a_reason() -> None:
    cases = {
        b"<measCollecFile": "malformed_payload",
        b"<?xml version='1.0'?><a><b></a>": "malformed_payload",
        b"\x1f\x8b\x08\x00garbage": "malformed_payload",
        b"": "malformed_payload",
        "<?xml version='1.0' encoding='UTF-16'?><a/>".encode("utf-16"): "unsupported_format",
        b"<html><body>not pm</body></html>": "unsupported_format",
    }
    for payload, code in cases.items():
        parsed = parse_pm_xml(payload, name="bad.xml")
        assert parsed.records.empty
        assert [r.reason_code for r in parsed.rejected] == [code], payload[:40]
        assert parsed.rejected[0].reason
