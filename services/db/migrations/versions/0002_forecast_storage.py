"""forecast storage: daily busy-hour aggregates and forecast sample paths

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RISK_COLUMNS = ("p_breach_30", "p_breach_60", "p_breach_90")


def upgrade() -> None:
    op.create_table(
        "kpi_daily",
        sa.Column("element_id", sa.Integer(), nullable=False),
        sa.Column("kpi_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("busy_hour_value", sa.Float(), nullable=False),
        sa.Column("busy_hour", sa.Integer(), nullable=False),
        sa.Column("daily_mean", sa.Float(), nullable=False),
        sa.Column("daily_max", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("updated_at", services.db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["element_id"],
            ["elements.id"],
            name=op.f("fk_kpi_daily_element_id_elements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kpi_id"], ["kpis.id"], name=op.f("fk_kpi_daily_kpi_id_kpis"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("element_id", "kpi_id", "day", name=op.f("pk_kpi_daily")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.create_index("ix_kpi_daily_kpi_day", ["kpi_id", "day"], unique=False)

    op.create_table(
        "forecast_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "forecast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("n_paths", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("paths", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["forecast_id"],
            ["forecasts.id"],
            name=op.f("fk_forecast_samples_forecast_id_forecasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_samples")),
        sa.UniqueConstraint("forecast_id", name=op.f("uq_forecast_samples_forecast_id")),
    )
    # A forecast that does not reach a horizon (hourly, 14 days) has no breach risk for it.
    with op.batch_alter_table("capacity_risks", schema=None) as batch_op:
        for column in _RISK_COLUMNS:
            batch_op.alter_column(column, existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # Rows with an unknown horizon cannot go back to NOT NULL columns.
    op.execute(
        "DELETE FROM capacity_risks"
        " WHERE p_breach_30 IS NULL OR p_breach_60 IS NULL OR p_breach_90 IS NULL"
    )
    with op.batch_alter_table("capacity_risks", schema=None) as batch_op:
        for column in _RISK_COLUMNS:
            batch_op.alter_column(column, existing_type=sa.Float(), nullable=False)
    op.drop_table("forecast_samples")
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_kpi_daily_kpi_day")

    op.drop_table("kpi_daily")
