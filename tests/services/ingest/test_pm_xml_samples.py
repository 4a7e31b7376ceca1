"""Every PM XML sample of the ONAP pm-mapper test data, with the outcome each must have."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree
from testkit import SHARED_DATA

from services.ingest.records import ParsedPayload
from services.ingest.sources.pm_xml import parse_pm_xml

SAMPLES = SHARED_DATA / "pm_xml"
MAPPER = SAMPLES / "dcaegen2-services-pm-mapper"
MAPPING = MAPPER / "src/test/resources/mapper_test/mapping_data"
ASSETS = MAPPER / "csit/tests/pmmapper/assets"
PERIOD = pd.Timestamp("2018-10-02T12:15:00Z")


def sample_files() -> list[Path]:
    """Every XML or gzip file under the samples, found at test time."""
    return sorted(
        p for p in SAMPLES.rglob("*") if p.is_file() and p.name.endswith((".xml", ".xml.gz"))
    )


def expected_refusal(path: Path) -> tuple[str, str] | None:
    """(reason code, field) a sample must be refused with, from its folder's name."""
    text = path.as_posix()
    if "not_supported_type" in text:
        return ("unsupported_format", "")
    if "no_file_header" in text:
        return ("missing_field", "fileHeader")
    if "no_managed_element" in text:
        return ("missing_field", "managedElement")
    if "no_measured_entity" in text:
        return ("missing_field", "measEntity")
    return None


def value_count(payload: bytes) -> int:
    """Values in the file counted independently: r elements and measResults items, bins apart."""
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    payload = payload[payload.index(b"<?xml") :] if b"<?xml" in payload else payload
    root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    texts = [r.text or "" for r in root.iter("{*}r")]
    for results in root.iter("{*}measResults"):
        texts += (results.text or "").split()
    return sum(len(text.split(",")) for text in texts)


FILES = sample_files()


def test_the_samples_are_all_there() -> None:
    print(f"{len(FILES)} PM XML samples")
    assert len(FILES) == 59
    assert any(p.name.endswith(".gz") for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_every_sample_is_read_or_refused_as_expected(path: Path) -> None:
    payload = path.read_bytes()
    parsed = parse_pm_xml(payload, name=path.name)
    refusal = expected_refusal(path)
    if refusal is not None:
        code, field = refusal
        assert parsed.records.empty
        assert [(r.reason_code, r.field or "") for r in parsed.rejected] == [(code, field)]
        return
    # Readable: every value of the file is a record or a refusal of its own.
    assert "refused" not in parsed.meta
    assert parsed.received == value_count(payload)
    assert parsed.meta["format"] in ("32.435", "28.532")
    assert {r.reason_code for r in parsed.rejected} <= {"unknown_counter_position"}
    records = parsed.records
    assert records["period_end"].notna().all()
    assert records["dn"].str.len().gt(0).all()
    assert records["vendor"].notna().all()
    if "no_measdata" in path.as_posix():
        assert parsed.received == 0
        assert any("no measurements" in note for note in parsed.meta["notes"])
    else:
        assert len(records) > 0


VALIDITY = sorted(SAMPLES.rglob("validity.props"))


@pytest.mark.parametrize("props", VALIDITY, ids=lambda p: p.parent.relative_to(MAPPER).as_posix())
def test_files_the_onap_validator_refuses_are_refused(props: Path) -> None:
    valid = "valid=true" in props.read_text()
    parsed = parse_pm_xml((props.parent / "test.xml").read_bytes())
    assert ("refused" not in parsed.meta) is valid


def test_validity_samples_exist() -> None:
    assert len(VALIDITY) == 7


def one(fmt: str, case: str) -> ParsedPayload:
    return parse_pm_xml((MAPPING / fmt / case / "test.xml").read_bytes(), name="test.xml")


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
def test_meas_type_and_r_values(fmt: str) -> None:
    parsed = one(fmt, "meas_type_and_r")
    records = parsed.records
    assert list(zip(records["kpi"], records["value"], strict=True)) == [
        ("a", "86"),
        ("b", "67"),
        ("c", "14"),
    ]
    # dnPrefix "some dnPrefix" is not a DN: the object keeps its own name.
    assert set(records["dn"]) == {"some measObjLdn"}
    assert (records["period_end"] == PERIOD).all()
    assert set(records["vendor"]) == {"FooBar Ltd"}
    assert set(records["sw_version"]) == {"r0.1"}
    assert set(records["granularity_s"]) == {900}
    assert not records["suspect"].any()
    assert parsed.meta["format"] == fmt
    assert parsed.meta["counters"] == ["a", "b", "c"]
    assert parsed.meta["begin_time"] == "2018-10-02T11:00:00+00:00"  # 12:00+01:00


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
def test_meas_results_values(fmt: str) -> None:
    records = one(fmt, "meas_results").records
    assert list(zip(records["dn"], records["kpi"], records["value"], strict=True)) == [
        ("objLdn", "a", "76"),
        ("objLdn", "b", "27"),
        ("objLdn", "c", "98"),
    ]


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
def test_no_sw_version(fmt: str) -> None:
    records = one(fmt, "no_sw_version").records
    assert len(records) == 3
    assert records["sw_version"].isna().all()


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
def test_both_value_forms_with_many_objects_agree(fmt: str) -> None:
    by_r = one(fmt, "meas_type_and_r_many_meas_values").records
    by_results = one(fmt, "meas_types_and_meas_results_many_meas_values").records
    assert len(by_r) == len(by_results) == 6
    assert by_r["dn"].nunique() == by_results["dn"].nunique() == 2


def test_big_sample_prefixes_histograms_and_suspect_flags() -> None:
    parsed = parse_pm_xml(
        (MAPPER / "csit/tests/filesprocessingconfigpmmapper/assets/ABigFile.xml").read_bytes()
    )
    records = parsed.records
    prefix = "DC=a1.companyNN.com,SubNetwork=1,IRPAgent=1"
    assert f"{prefix},RncFunction=RF-1,UtranCell=Gbg-997" in set(records["dn"])
    assert records["dn"].str.startswith(prefix + ",").all()
    # 2000-03-01T14:14:30+02:00
    assert set(records["period_end"]) == {pd.Timestamp("2000-03-01T12:14:30Z")}
    bins = records[records["kpi"].str.startswith("succTCHSeizures2.bin")]
    assert list(bins["value"]) == ["86", "87", "2", "6", "77", "96", "75", "33", "24"] * 2
    assert list(bins["kpi"])[:9] == [f"succTCHSeizures2.bin{i}" for i in range(9)]
    assert parsed.meta["histograms"] == {"succTCHSeizures2": 9}
    suspect = records[records["suspect"]]
    assert set(suspect["dn"]) == {f"{prefix},RncFunction=RF-1,UtranCell=Gbg-999"}
    assert len(suspect) == 16
    assert set(records["vendor"]) == {"Company NN"}
    assert records["sw_version"].isna().all()
    assert len(records) == 72
    assert parsed.meta["notes"] == []


def test_gzip_sample_reads_like_its_plain_copy() -> None:
    name = "A20181002.0000-1000-0015-1000_5G.xml"
    plain = parse_pm_xml((ASSETS / name).read_bytes())
    packed = parse_pm_xml((ASSETS / f"{name}.gz").read_bytes())
    pd.testing.assert_frame_equal(plain.records, packed.records)
    assert len(plain.records) == 36


def test_filter_sample_with_positions_that_name_no_counter() -> None:
    path = MAPPER / "src/test/resources/filter_test/lte/meas_type_and_r_many_measvalue/test.xml"
    parsed = parse_pm_xml(path.read_bytes())
    assert len(parsed.records) == 4
    assert sorted(r.record["p"] for r in parsed.rejected) == ["88", "99"]
    assert {r.record["dn"] for r in parsed.rejected} == {"some measObjLdn 2"}
