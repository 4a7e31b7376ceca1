"""One streaming pass over a 3GPP PM XML document, collecting values and their context.

The rules are described in `services.ingest.sources.pm_xml`; this module applies them while
lxml parses, keeping only the current measInfo in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from lxml import etree

from services.ingest.records import Rejected

NAMESPACES = {
    "measCollecFile": (
        "32.435",
        "http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec",
    ),
    "measDataFile": ("28.532", "http://www.3gpp.org/ftp/specs/archive/28_series/28.532#measData"),
}
# 32.435 names the measured network element managedElement, 28.532 measEntity; some
# producers write measuredEntity. Any of them satisfies either format.
ENTITY_TAGS = frozenset({"managedElement", "measEntity", "measuredEntity"})
# 32.435 writes NIL and 28.532 NULL where a counter has no value for the period.
NO_VALUE = frozenset({"NIL", "NULL"})
MAX_NOTES = 50

# Hardened lxml parser options: no DTD, no entity expansion, no network, libxml2's size
# limits on (huge_tree=False). Comments and PIs are dropped so text is never split by them.
PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}
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
    )
]
_R, _RESULTS, _SUSPECT = "{*}r", "{*}measResults", "{*}suspect"
_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_RDN_SEPARATOR = re.compile(r"(?<!\\),")


class PayloadRefused(Exception):
    """The whole payload is refused: one reason code for the file."""

    def __init__(self, code: str, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.code = code
        self.error = error
        self.field = field


class Notes(list[str]):
    """What the parser noticed: distinct sentences, capped so a bad file cannot flood meta."""

    def add(self, text: str) -> None:
        """Keep `text` once; past the cap only count what was left out."""
        if text in self:
            return
        if len(self) < MAX_NOTES:
            self.append(text)
        elif len(self) == MAX_NOTES:
            self.append("further notes left out")


@dataclass
class Walk:
    """Everything read from one document: values in file order and per-measValue context."""

    name: str
    notes: Notes
    format: str | None = None
    vendor: str | None = None
    dn_prefix: str | None = None
    file_format_version: str | None = None
    begin_time: datetime | None = None
    end_time: datetime | None = None
    values: list[str | None] = field(default_factory=list)
    counters: list[str | None] = field(default_factory=list)
    # Per measValue: how many values, and the context they share.
    counts: list[int] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    period_index: list[int] = field(default_factory=list)
    granularity: list[int | None] = field(default_factory=list)
    sw_versions: list[str | None] = field(default_factory=list)
    suspects: list[bool] = field(default_factory=list)
    periods: list[datetime | None] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)
    meas_infos: int = 0


@dataclass
class _MeasInfo:
    """The measInfo being read: its id, period and counters by position."""

    info_id: str | None = None
    period: int | None = None
    granularity: int | None = None
    types: dict[str, str | None] = field(default_factory=dict)
    by_number: dict[int, str | None] = field(default_factory=dict)


class _Reader:
    """Handles the parser's events; state lives here between events."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        self.root: Any = None
        self.header_seen = False
        self.entity_seen = False
        self.sw_version: str | None = None
        self.info = _MeasInfo()
        self.dn_cache: dict[str, str] = {}

    def check_root(self, element: Any) -> None:
        """Refuse DTDs and anything that is not a 32.435 or 28.532 document."""
        tree = element.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
            raise PayloadRefused("unsafe_xml", "the document declares a DTD")
        self.root = tree.getroot()
        namespace, local = _split_tag(self.root.tag)
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
        if local == "measValue":
            self.meas_value(element)
            _release(element)
        elif local == "measType":
            self.meas_type(element.get("p"), element.text)
        elif local == "granPeriod":
            self.gran_period(element)
        elif local == "measTypes":
            for position, counter in enumerate((element.text or "").split(), start=1):
                self.meas_type(str(position), counter)
        elif local == "measInfo":
            self.walk.meas_infos += 1
            self.info = _MeasInfo()
            _release(element)
        elif local in ENTITY_TAGS:
            if element.getparent() is not None and element.getparent().getparent() is self.root:
                self.entity_seen = True
                self.sw_version = (element.get("swVersion") or "").strip() or None
        elif local == "measData" and element.getparent() is self.root:
            self.need_header()
            self.need_entity()
            self.entity_seen, self.sw_version = False, None
            _release(element)
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
        if prefix and not _is_dn(prefix):
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
        info.granularity = _seconds(duration)
        if info.granularity is None:
            self.walk.notes.add(f"granPeriod duration {duration!r} is not an ISO 8601 duration")

    def meas_type(self, position: str | None, text: str | None) -> None:
        """Declare counter `text` at position `position` of the current measInfo."""
        counter = (text or "").strip() or None
        position = (position or "").strip()
        info = self.info
        if position in info.types and info.types[position] != counter:
            self.walk.notes.add(f"measType p={position} is declared twice; its values refused")
            counter = None
        info.types[position] = counter
        if position.isdigit():
            info.by_number[int(position)] = counter
        if counter is not None:
            self.walk.declared.add(counter)

    def meas_value(self, element: Any) -> None:
        """One measured object: its values by position, sharing object, period and flag."""
        self.need_header()
        self.need_entity()
        walk, info = self.walk, self.info
        if info.period is None:
            info.period = len(walk.periods)
            walk.periods.append(None)
            walk.notes.add("measInfo without granPeriod: its values have no period end")
        if info.info_id is None:
            info.info_id = element.getparent().get("measInfoId") or ""
        ldn = element.get("measObjLdn") or ""
        dn = self.dn_cache.get(ldn)
        if dn is None:
            dn = self.dn_cache[ldn] = _join_dn(walk.dn_prefix, ldn)
        flag = element.find(_SUSPECT)
        suspect = self.suspect(flag)
        positions: list[str | None] = []
        values: list[str | None] = []
        rs = element.findall(_R)
        if rs:
            positions = [r.get("p") for r in rs]
            values = [r.text for r in rs]
        results = element.find(_RESULTS)
        if results is not None:
            tokens: list[str | None] = list((results.text or "").split())
            declared = len(info.types)
            if len(tokens) != declared:
                self.refuse_all(element, dn, suspect, tokens, declared)
            else:
                positions.extend(str(i) for i in range(1, len(tokens) + 1))
                values.extend(tokens)
        counters = list(map(info.types.get, positions))
        if None in counters:
            counters, values = self.refuse_unknown(dn, suspect, positions, counters, values)
        walk.values.extend(values)
        walk.counters.extend(counters)
        walk.counts.append(len(values))
        walk.dns.append(dn)
        walk.period_index.append(info.period)
        walk.granularity.append(info.granularity)
        walk.sw_versions.append(self.sw_version)
        walk.suspects.append(suspect)
        if len(element) != len(rs) + (results is not None) + (flag is not None):
            # Only r, measResults and suspect carry meaning; anything else is named in notes.
            extra = sorted({_split_tag(child.tag)[1] for child in element} - _KNOWN)
            walk.notes.add(f"measValue children ignored: {', '.join(extra) or 'repeated'}")

    def suspect(self, element: Any) -> bool:
        """xs:boolean; an unreadable flag is taken as suspect (trust less, never more)."""
        if element is None:
            return False
        text = (element.text or "").strip()
        if text in ("false", "0"):
            return False
        if text not in ("true", "1"):
            self.walk.notes.add(f"suspect flag {text!r} is not a boolean; values marked suspect")
        return True

    def refuse_unknown(
        self,
        dn: str,
        suspect: bool,
        positions: list[str | None],
        counters: list[str | None],
        values: list[str | None],
    ) -> tuple[list[str | None], list[str | None]]:
        """Values whose p names no counter (after reading p as a number) are refused."""
        kept_counters, kept_values = [], []
        for position, counter, value in zip(positions, counters, values, strict=True):
            if counter is None and position and position.strip().isdigit():
                counter = self.info.by_number.get(int(position))
            if counter is not None:
                kept_counters.append(counter)
                kept_values.append(value)
                continue
            detail = f"p={position} names no counter in measInfo {self.info.info_id!r}"
            self.reject(
                "unknown_counter_position", detail, "p", dn, suspect, p=position, value=value
            )
        return kept_counters, kept_values

    def refuse_all(
        self, element: Any, dn: str, suspect: bool, tokens: list[str | None], declared: int
    ) -> None:
        """measResults and measTypes disagree in length: no value can be placed safely."""
        detail = f"measResults holds {len(tokens)} values for {declared} counters"
        for position, token in enumerate(tokens or [None], start=1):
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
        stamp = _utc(text)
        if stamp is None:
            self.walk.notes.add(f"{what} {text!r} is not a timestamp with a UTC offset")
        return stamp


_KNOWN = frozenset({"r", "measResults", "suspect"})


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
    except etree.XMLSyntaxError as exc:
        raise PayloadRefused("malformed_payload", _short(str(exc))) from None
    if reader.root is None:
        reader.check_root(events.root)
    if not reader.header_seen:
        raise PayloadRefused("missing_field", "no fileHeader", "fileHeader")
    if not walk.meas_infos and not walk.counts:
        notes.add("the file holds no measurements (no measData or measInfo)")
    return walk


def _release(element: Any) -> None:
    """Free a processed element and the siblings before it: memory stays bounded."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is None:
        return
    while element.getprevious() is not None:
        del parent[0]


def _split_tag(tag: Any) -> tuple[str | None, str]:
    if not isinstance(tag, str):
        return None, ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _utc(text: str | None) -> datetime | None:
    try:
        stamp = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return stamp.astimezone(UTC)


def _seconds(text: str) -> int | None:
    """ISO 8601 duration (PT900S, PT15M, PT1H, P1D) in whole seconds."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return int(parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"])


def _rdns(dn: str) -> list[str]:
    return [part.strip() for part in _RDN_SEPARATOR.split(dn)]


def _is_dn(text: str) -> bool:
    """A sequence of `Type=value` RDNs (the 3GPP TS 32.300 string form)."""
    return all(part.partition("=")[0].strip() and "=" in part for part in _rdns(text))


def _join_dn(prefix: str | None, ldn: str) -> str:
    """Full DN = dnPrefix + "," + measObjLdn, unless the LDN is already absolute."""
    ldn = ldn.strip()
    if not ldn or not prefix:
        return ldn
    normal_ldn = ",".join(_rdns(ldn)).lower()
    normal_prefix = ",".join(_rdns(prefix)).lower()
    if normal_ldn == normal_prefix or normal_ldn.startswith(normal_prefix + ","):
        return ldn
    # A DC= first RDN is a global (DNS) root: the producer already wrote a full DN.
    if _rdns(ldn)[0].partition("=")[0].strip().lower() == "dc":
        return ldn
    return f"{prefix},{ldn}"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
