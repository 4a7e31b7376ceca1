"""One streaming pass over a 3GPP PM XML document, collecting values and their context.

The rules are described in `services.ingest.sources.pm_xml`; this module applies them while
lxml parses, releasing each element once it has been read.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import IO, Any

from lxml import etree

from services.ingest.records import Rejected
from services.ingest.sources.pm_xml_rules import (
    BATCH_TAG,
    ENTITY_TAGS,
    NAMESPACES,
    NO_VALUE,
    PARSER_OPTIONS,
    RUN_TAG,
    MeasInfo,
    Notes,
    PayloadRefused,
    Walk,
    is_dn,
    join_dn,
    position_number,
    seconds,
    short,
    split_tag,
    utc,
)
from services.ingest.sources.pm_xml_runs import RUN, read_values

_EVENT_TAGS = [
    "{*}" + name
    for name in (
        *NAMESPACES,
        *ENTITY_TAGS,
        "fileHeader",
        "measData",
        "measInfo",
        "granPeriod",
        "measType",
        "measTypes",
        "measValue",
        "fileFooter",
        BATCH_TAG,
    )
]
_R, _RESULTS, _SUSPECT = "{*}r", "{*}measResults", "{*}suspect"
RELEASE_EVERY = 64


class _Reader:
    """Handles the parser's events; state lives here between events."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        self.root: Any = None
        self.header_seen = False
        self.entity_seen = False
        self.sw_version: str | None = None
        self.info = MeasInfo()
        self.dn_cache: dict[str, str] = {}
        self.unreleased = 0

    def check_root(self, element: Any) -> None:
        """Refuse DTDs and anything that is not a 32.435 or 28.532 document."""
        tree = element.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
            raise PayloadRefused("unsafe_xml", "the document declares a DTD")
        self.root = tree.getroot()
        namespace, local = split_tag(self.root.tag)
        if local not in NAMESPACES:
            raise PayloadRefused(
                "unsupported_format", f"root element <{local}> is not a 3GPP PM file"
            )
        fmt, expected = NAMESPACES[local]
        if namespace is None:
            self.walk.notes.add(f"<{local}> has no namespace; read as {fmt}")
        elif namespace != expected:
            raise PayloadRefused(
                "unsupported_format", f"<{local}> in namespace {namespace}, expected {expected}"
            )
        self.walk.format = fmt

    def handle(self, element: Any) -> None:
        """Dispatch one end event by the element's local name."""
        local = element.tag.rpartition("}")[2]
        if local == "measValue" or local == BATCH_TAG:
            if local == BATCH_TAG:
                self.batch(element)
            else:
                self.meas_value(element)
            # Freeing read measValues in batches costs far less than one at a time.
            self.unreleased += 1
            if self.unreleased == RELEASE_EVERY:
                _release(element, "measInfo")
                self.unreleased = 0
        elif local == "measType":
            self.meas_type(element.get("p"), element.text)
        elif local == "granPeriod":
            self.gran_period(element)
        elif local == "measTypes":
            for position, counter in enumerate((element.text or "").split(), start=1):
                self.meas_type(str(position), counter)
        elif local == "measInfo":
            self.walk.meas_infos += 1
            self.info = MeasInfo()
            _release(element, "measData")
            self.unreleased = 0
        elif local in ENTITY_TAGS:
            parent = element.getparent()
            if parent.tag.endswith("measData") and parent.getparent() is self.root:
                self.entity_seen = True
                self.sw_version = (element.get("swVersion") or "").strip() or None
        elif local == "measData" and element.getparent() is self.root:
            self.need_header()
            self.need_entity()
            self.entity_seen, self.sw_version = False, None
            _release(element, self.root.tag)
        elif local == "fileHeader" and element.getparent() is self.root:
            self.file_header(element)
        elif local == "fileFooter" and element.getparent() is self.root:
            stamp = element.find("{*}measCollec")
            if stamp is None:
                stamp = element.find("{*}measData")
            if stamp is not None:
                self.walk.end_time = self.timestamp(stamp.get("endTime"), "fileFooter endTime")

    def file_header(self, element: Any) -> None:
        """Vendor, DN prefix and begin time from the header."""
        walk = self.walk
        self.header_seen = True
        walk.vendor = (element.get("vendorName") or "").strip() or None
        walk.file_format_version = element.get("fileFormatVersion")
        prefix = (element.get("dnPrefix") or "").strip()
        if prefix and not is_dn(prefix):
            walk.notes.add(
                f"dnPrefix {prefix!r} is not a distinguished name; object names used as given"
            )
            prefix = ""
        walk.dn_prefix = prefix or None
        begin = element.find("{*}measCollec")
        if begin is None:
            begin = element.find("{*}measData")
        if begin is not None:
            walk.begin_time = self.timestamp(begin.get("beginTime"), "fileHeader beginTime")

    def need_header(self) -> None:
        """The schema makes fileHeader mandatory and first: without it vendor is unknown."""
        if not self.header_seen:
            raise PayloadRefused("missing_field", "no fileHeader before measData", "fileHeader")

    def need_entity(self) -> None:
        """Each measData must name its network element (managedElement / measEntity)."""
        if not self.entity_seen:
            tag = "managedElement" if self.walk.format == "32.435" else "measEntity"
            raise PayloadRefused("missing_field", f"measData without {tag}", tag)

    def gran_period(self, element: Any) -> None:
        """The measInfo's period end (event time of its values) and length."""
        info = self.info
        info.period = len(self.walk.periods)
        self.walk.periods.append(self.timestamp(element.get("endTime"), "granPeriod endTime"))
        duration = (element.get("duration") or "").strip()
        info.granularity = seconds(duration)
        if info.granularity is None:
            self.walk.notes.add(f"granPeriod duration {duration!r} is not an ISO 8601 duration")

    def meas_type(self, position: str | None, text: str | None) -> None:
        """Declare counter `text` at position `position` of the current measInfo."""
        counter = (text or "").strip() or None
        position = (position or "").strip()
        if not position:
            self.walk.notes.add(f"measType {counter!r} without p ignored")
            return
        info = self.info
        if position in info.types and info.types[position] != counter:
            self.walk.notes.add(f"measType p={position} is declared twice; its values refused")
            counter = None
        info.types[position] = counter
        info.ambiguous = info.ambiguous or counter is None
        number = position_number(position)
        if number is not None:
            info.by_number[number] = counter
        if counter is not None:
            self.walk.declared.add(counter)

    def meas_value(self, element: Any) -> None:
        """One measured object: its values by position, sharing object, period and flag."""
        self.enter_values(element)
        dn = self.dn(element.get("measObjLdn") or "")
        rs = list(element.iterchildren(RUN, _R))  # in document order
        positions, values = read_values(element, rs)
        suspect = False
        if len(element) != len(rs):
            suspect = self.other_children(element, dn, len(rs), positions, values)
        self.add(dn, suspect, positions, values)

    def batch(self, element: Any) -> None:
        """Collapsed plain measValues: one line each, fields split by tabs."""
        self.enter_values(element)
        lines = [line.split("\t") for line in (element.text or "").split("\n")]
        if self.uniform_batch(lines):
            return
        for fields in lines:
            numbers: list[str | None] = fields[2].split() if len(fields) == 4 else []
            values = fields[3].split("|") if numbers else []
            if len(fields) != 4 or len(values) != len(numbers):
                raise PayloadRefused("malformed_payload", "a collapsed measValue lost its shape")
            suspect = self.suspect_text(fields[1]) if fields[1] else False
            self.add(self.dn(fields[0]), suspect, numbers, values)

    def uniform_batch(self, lines: list[list[str]]) -> bool:
        """Add a batch whose measValues all carry the same declared positions, no suspect
        flag and only plain values (the usual file) in one go; False, with nothing added,
        for any other batch, which `add` then reads measValue by measValue.

        The result is exactly what `add` would keep for each line in turn: the same
        values, counters, counts and context, in file order.
        """
        head = lines[0]
        if len(head) != 4 or not head[2]:
            return False
        positions = head[2]
        if not all(len(f) == 4 and f[2] == positions and not f[1] for f in lines):
            return False
        info = self.info
        numbers = positions.split()
        counters = [info.types.get(p) for p in numbers]
        if None in counters:
            return False  # undeclared or ambiguous positions: refused value by value
        width = len(numbers)
        texts = [f[3] for f in lines]
        joined = "|".join(texts)
        # Blank, NIL/NULL or spaced values, and histograms, take the careful path.
        if "N" in joined or "," in joined or _SPACE.search(joined):
            return False
        if any(text.count("|") != width - 1 for text in texts):
            return False  # a line lost its shape: the careful path refuses the file
        walk, n = self.walk, len(lines)
        walk.values.extend(joined.split("|"))
        walk.counters.extend(counters * n)
        walk.counts.extend([width] * n)
        walk.dns.extend([self.dn(f[0]) for f in lines])
        walk.period_index.extend([info.period] * n)
        walk.granularity.extend([info.granularity] * n)
        walk.sw_versions.extend([self.sw_version] * n)
        walk.suspects.extend([False] * n)
        return True

    def enter_values(self, element: Any) -> None:
        """Checks before a measInfo's values: header and element known, period noted."""
        if not (self.header_seen and self.entity_seen):
            self.need_header()
            self.need_entity()
        info = self.info
        if info.period is None:
            info.period = len(self.walk.periods)
            self.walk.periods.append(None)
            self.walk.notes.add("measInfo without granPeriod: its values have no period end")
        if info.info_id is None:
            info.info_id = element.getparent().get("measInfoId") or ""

    def dn(self, ldn: str) -> str:
        """The object's DN from its measObjLdn (cached: objects repeat across measInfos)."""
        dn = self.dn_cache.get(ldn)
        if dn is None:
            dn = self.dn_cache[ldn] = join_dn(self.walk.dn_prefix, ldn)
        return dn

    def add(self, dn: str, suspect: bool, positions: list[str | None], values: list[str]) -> None:
        """Keep one object's values under their counters; refuse those without one."""
        walk, info = self.walk, self.info
        types = info.types
        try:
            counters = [types[p] for p in positions]  # type: ignore[index]
            if info.ambiguous and None in counters:
                raise KeyError
        except KeyError:
            counters, values = self.refuse_unknown(dn, suspect, positions, values)
        # The joined text tells cheaply whether any value needs a closer look.
        joined = "".join(values)
        if "N" in joined or _SPACE.search(joined):
            values = ["" if v.strip() in NO_VALUE else v for v in values]
        if "," in joined:
            walk.histograms.append((len(walk.values), len(values)))
        walk.values.extend(values)
        walk.counters.extend(counters)
        walk.counts.append(len(values))
        walk.dns.append(dn)
        walk.period_index.append(info.period)
        walk.granularity.append(info.granularity)
        walk.sw_versions.append(self.sw_version)
        walk.suspects.append(suspect)

    def other_children(
        self,
        element: Any,
        dn: str,
        r_count: int,
        positions: list[str | None],
        values: list[str],
    ) -> bool:
        """Read suspect and measResults (adding its values); returns the suspect flag."""
        flag = element.find(_SUSPECT)
        suspect = self.suspect(flag)
        results = element.find(_RESULTS)
        if results is not None:
            tokens: list[str] = list((results.text or "").split())
            declared = len(self.info.types)
            if not tokens:
                # Like a measValue without <r>: nothing was reported, so nothing to keep.
                self.walk.notes.add("empty measResults")
            elif len(tokens) != declared:
                self.refuse_all(dn, suspect, tokens, declared)
            else:
                positions.extend(str(i) for i in range(1, len(tokens) + 1))
                values.extend(tokens)
        if len(element) != r_count + (flag is not None) + (results is not None):
            # Only r, measResults and suspect carry meaning; anything else is named in notes.
            names = {split_tag(child.tag)[1] for child in element}
            extra = sorted({_ORIGINAL.get(name, name) for name in names} - _KNOWN)
            self.walk.notes.add(f"measValue children ignored: {', '.join(extra) or 'repeats'}")
        return suspect

    def suspect(self, element: Any) -> bool:
        """The suspect element's flag; no element means not suspect."""
        return False if element is None else self.suspect_text(element.text or "")

    def suspect_text(self, text: str) -> bool:
        """xs:boolean; an unreadable flag is taken as suspect (trust less, never more)."""
        text = text.strip()
        if text in ("false", "0"):
            return False
        if text not in ("true", "1"):
            self.walk.notes.add(f"suspect flag {text!r} is not a boolean; values marked suspect")
        return True

    def refuse_unknown(
        self, dn: str, suspect: bool, positions: list[str | None], values: list[str]
    ) -> tuple[list[str], list[str]]:
        """Values whose p names no counter (even read as a number) are refused."""
        kept_counters, kept_values = [], []
        for position, value in zip(positions, values, strict=True):
            counter = self.info.types.get(position or "")
            if counter is None and (number := position_number(position)) is not None:
                counter = self.info.by_number.get(number)
            if counter is not None:
                kept_counters.append(counter)
                kept_values.append(value)
                continue
            detail = short(f"p={position} names no counter in measInfo {self.info.info_id!r}")
            self.reject(
                "unknown_counter_position", detail, "p", dn, suspect, p=position, value=value
            )
        return kept_counters, kept_values

    def refuse_all(self, dn: str, suspect: bool, tokens: list[str], declared: int) -> None:
        """measResults and measTypes disagree in length: no value can be placed safely."""
        detail = f"measResults holds {len(tokens)} values for {declared} counters"
        for position, token in enumerate(tokens, start=1):
            self.reject(
                "result_count_mismatch", detail, "measResults", dn, suspect, p=str(position),
                value=token,
            )  # fmt: skip

    def reject(
        self, code: str, detail: str, field_name: str, dn: str, suspect: bool, **extra: Any
    ) -> None:
        """Refuse one value with its context, so the quarantine shows where it came from."""
        period = self.walk.periods[self.info.period] if self.info.period is not None else None
        record = {
            "file": self.walk.name,
            "dn": dn,
            "measInfoId": self.info.info_id,
            "period_end": period.isoformat() if period else None,
            "vendor": self.walk.vendor,
            "sw_version": self.sw_version,
            "suspect": suspect,
            **extra,
        }
        self.walk.rejected.append(Rejected(code, record, reason=detail, field=field_name))

    def timestamp(self, text: str | None, what: str) -> datetime | None:
        """xs:dateTime with a UTC offset, as UTC; without an offset the time is ambiguous."""
        stamp = utc(text)
        if stamp is None:
            self.walk.notes.add(f"{what} {text!r} is not a timestamp with a UTC offset")
        return stamp


_KNOWN = frozenset({"r", "measResults", "suspect", RUN_TAG})
# What a collapsed element stood for, so notes name what the file holds.
_ORIGINAL = {BATCH_TAG: "measValue"}
_SPACE = re.compile(r"\s")


def walk_document(stream: IO[bytes], *, name: str, notes: Notes) -> Walk:
    """Parse `stream` with the hardened parser and collect its values (or refuse it)."""
    walk = Walk(name=name, notes=notes)
    reader = _Reader(walk)
    events = etree.iterparse(stream, events=("end",), tag=_EVENT_TAGS, **PARSER_OPTIONS)
    try:
        for _event, element in events:
            if reader.root is None:
                reader.check_root(element)
            reader.handle(element)
    except etree.LxmlError as exc:  # not well-formed, truncated, past libxml2's limits
        raise PayloadRefused(
            "malformed_payload", short(str(exc)), file_format=walk.format
        ) from None
    except PayloadRefused as refusal:
        refusal.format = walk.format
        raise
    if reader.root is None:
        reader.check_root(events.root)
    if not reader.header_seen:
        raise PayloadRefused(
            "missing_field", "no fileHeader", "fileHeader", file_format=walk.format
        )
    if not walk.meas_infos and not walk.counts:
        notes.add("the file holds no measurements (no measData or measInfo)")
    return walk


def _release(element: Any, parent_tag: str) -> None:
    """Free a processed element and the siblings before it: memory stays bounded.

    Siblings go only inside the expected parent, where every earlier sibling has been
    read; in a misplaced element they could be values still to come.
    """
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is None or not parent.tag.endswith(parent_tag):
        return
    while element.getprevious() is not None:
        del parent[0]
