"""Collapsing plain measValues and `<r>` runs before lxml parses them, and reading them back.

Most of a PM file's parse time goes into one lxml node (and one Python object) per `<r>`
and per measValue. So, before the parser sees the bytes:
- a row of plain measValues (only measObjLdn, only plain `<r>`, at most a true/false/1/0
  suspect flag) becomes one element whose text holds a line per measValue: measObjLdn,
  flag, positions and values, split by tabs;
- in any other measValue, a run of two or more plain `<r p="N">value</r>` becomes one
  element with the positions in an attribute and the values joined by "|".
"Plain" means nothing the parser would change or refuse: no entities, no characters that
XML normalises, values up to 64 characters without "|" (or tabs and line breaks in a
batch). Everything else reaches the parser untouched; after a CDATA section (where markup
is only text) nothing more is collapsed. The walk reads the same objects, flags, positions
and values back; a property test checks both ways give the same result.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from services.ingest.sources.pm_xml_rules import BATCH_TAG, RUN_TAG, PayloadRefused

CHUNK_BYTES = 1024 * 1024
RUN = "{*}" + RUN_TAG
# A plain <r>: p a number, the value without markup, entities or "|", then whitespace.
_ITEM = rb'<r p="\d{1,9}"(?:>[^<&|]{0,64}</r>|\s*/>)\s*'
# Two to 1000 of them in a row (a run's text stays far below libxml2's limits). Written
# to start with the literal "<r p=" so the regex engine skips ahead to candidates quickly.
_RUN = re.compile(_ITEM + rb"(?:" + _ITEM + rb"){1,999}")
# A plain measValue: only measObjLdn (no entities, nothing attribute normalisation would
# change, no ">"), up to 1000 plain <r> whose values hold no tab or line break, and an
# optional plain suspect flag. Up to 100 in a row become one batch, whose text then stays
# below libxml2's 10 MB limit for one text node (100 x 1000 x at most 75 bytes).
_PLAIN_R = rb'<r p="\d{1,9}"(?:>[^<&|\t\n\r]{0,64}</r>|\s*/>)\s*'
_MEAS_VALUE = (
    rb'<measValue measObjLdn="[^"<>&|\t\n\r]{0,512}">\s*(?:' + _PLAIN_R + rb"){0,1000}"
    rb"(?:<suspect>(?:true|false|1|0)</suspect>\s*)?</measValue>\s*"
)
_BATCH = re.compile(_MEAS_VALUE + rb"(?:" + _MEAS_VALUE + rb"){0,99}")
_POSITION = re.compile(rb'<r p="(\d{1,9})"')
# The value after each position (empty for <r p="N"/>); starting at the closing quote of p
# lets the regex engine skip ahead.
_VALUE = re.compile(rb'"(?:>([^<&|]{0,64})</r>|\s*/>)')
_BATCH_NAME = BATCH_TAG.encode()
_RUN_NAME = RUN_TAG.encode()


class Readable(Protocol):
    """What the collapsing stream reads from."""

    def read(self, size: int = -1) -> bytes: ...


class Collapsed:
    """`stream` with its runs collapsed; chunks end before their last "<", never in a run."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.buffer = b""
        self.offset = 0
        self.carry = b""
        self.plain = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the collapsed stream."""
        size = CHUNK_BYTES if size is None or size < 0 else size
        while self.offset >= len(self.buffer):
            if not self._fill():
                return b""
        chunk = self.buffer[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def _fill(self) -> bool:
        data = self.stream.read(CHUNK_BYTES)
        if not data:
            self.buffer, self.offset, self.carry = self.carry, 0, b""
            return bool(self.buffer)
        data = self.carry + data
        cut = data.rfind(b"<")
        cut = len(data) if cut <= 0 else cut
        ready, self.carry = data[:cut], data[cut:]
        self.plain = self.plain or b"<![CDATA[" in ready
        if not self.plain:
            ready = _RUN.sub(_collapse_run, _BATCH.sub(_collapse_batch, ready))
        self.buffer = ready
        self.offset = 0
        return True


def _collapse_run(match: re.Match[bytes]) -> bytes:
    """One element for the run: positions in `p`, values joined by "|"."""
    run = match.group()
    positions, values = b" ".join(_POSITION.findall(run)), b"|".join(_VALUE.findall(run))
    return b'<%s p="%s">%s</%s>' % (_RUN_NAME, positions, values, _RUN_NAME)


def _collapse_batch(match: re.Match[bytes]) -> bytes:
    """One element for the measValues: a line each of measObjLdn, flag, positions, values."""
    lines = []
    # The batch matched _BATCH, so plain byte searches find every part.
    for part in match.group().split(b"</measValue>")[:-1]:
        head, _, body = part.partition(b'">')
        ldn = head.partition(b'measObjLdn="')[2]
        at = body.find(b"<suspect>")
        flag = body[at + 9 : body.index(b"</suspect>", at)] if at >= 0 else b""
        positions = b" ".join(_POSITION.findall(body))
        values = b"|".join(_VALUE.findall(body))
        lines.append(b"\t".join((ldn, flag, positions, values)))
    return b"<%s>%s</%s>" % (_BATCH_NAME, b"\n".join(lines), _BATCH_NAME)


def read_values(element: Any, rs: list[Any]) -> tuple[list[str | None], list[str]]:
    """Positions and values of a measValue's <r> elements and collapsed runs, in order."""
    if len(rs) == 1 and rs[0].tag.endswith(RUN_TAG):
        return run_values(rs[0])
    if len(rs) < 2 or next(element.iterchildren(RUN), None) is None:
        return [r.get("p") for r in rs], [r.text or "" for r in rs]
    positions: list[str | None] = []
    values: list[str] = []
    for r in rs:
        if r.tag.endswith(RUN_TAG):
            more_positions, more_values = run_values(r)
            positions += more_positions
            values += more_values
        else:
            positions.append(r.get("p"))
            values.append(r.text or "")
    return positions, values


def run_values(run: Any) -> tuple[list[str | None], list[str]]:
    """Positions and values of one collapsed run."""
    positions: list[str | None] = run.get("p", "").split()
    values: list[str] = (run.text or "").split("|")
    if len(values) != len(positions):
        raise PayloadRefused("malformed_payload", "a collapsed run of values lost its shape")
    return positions, values
