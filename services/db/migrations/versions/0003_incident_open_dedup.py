"""one open incident per dedup key: a partial unique index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "dedup_key IS NOT NULL AND status IN ('triggered', 'acknowledged', 'mitigated')"


def upgrade() -> None:
    # Two openers racing could have left twins; the newer ones keep their incident but stop
    # deduplicating (their key gets a suffix), so the index can hold.
    op.execute(
        "UPDATE incidents SET dedup_key = substr(dedup_key, 1, 180) || '#dup' || id"
        " WHERE dedup_key IS NOT NULL"
        " AND status IN ('triggered', 'acknowledged', 'mitigated')"
        " AND EXISTS (SELECT 1 FROM incidents older"
        "  WHERE older.dedup_key = incidents.dedup_key AND older.id < incidents.id"
        "  AND older.status IN ('triggered', 'acknowledged', 'mitigated'))"
    )
    op.create_index(
        "uq_incidents_open_dedup_key",
        "incidents",
        ["dedup_key"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_incidents_open_dedup_key", table_name="incidents")
