"""`beacon audit …`: prove the hash-chained audit trail has not been edited."""

from __future__ import annotations

import re

import click

from services import audit
from services.cli._base import CliError, CliState, pass_state

HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class AnchorType(click.ParamType):
    """SEQ:HASH as printed by `beacon audit head`."""

    name = "SEQ:HASH"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, str]:
        if isinstance(value, tuple):
            return value
        seq, _, digest = str(value).strip().partition(":")
        digest = digest.lower()
        if not seq.isdigit() or not HASH_PATTERN.match(digest):
            self.fail(f"{value!r} is not SEQ:HASH (a number, ':', 64 hex digits)", param, ctx)
        return int(seq), digest


@click.group("audit")
def audit_group() -> None:
    """Check the audit trail's hash chain."""


@audit_group.command("verify")
@click.option(
    "--anchor",
    type=AnchorType(),
    help="A SEQ:HASH from an earlier `beacon audit head`, kept outside Beacon; "
    "also catches removal of the newest events, which the chain alone cannot.",
)
@pass_state
def verify(state: CliState, anchor: tuple[int, str] | None) -> None:
    """Walk the chain; exit 1 naming the first event that was altered or removed."""
    with state.database().session() as session:
        result = audit.verify(session, anchor=anchor)
    if not result.ok:
        raise CliError(
            f"audit chain broken at event #{result.broken_seq}: {result.problem} "
            f"({result.checked} events before it verified)"
        )
    click.echo(
        f"audit chain intact: {result.checked} events, head #{result.head_seq} {result.head_hash}"
    )


@audit_group.command("head")
@pass_state
def head(state: CliState) -> None:
    """Print the newest event as SEQ:HASH, to record elsewhere and pass to --anchor."""
    with state.database().session() as session:
        seq, digest = audit.head(session)
    click.echo(f"{seq}:{digest}")
