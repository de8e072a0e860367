"""Analytics snapshots: reports computed once per change of their inputs.

Also two indexes the snapshot's freshness check reads on every dashboard view: judgments by
(project, id) and the pairs out of the queue.

Revision ID: 5b2c9e7f4a18
Revises: 8e5f3a6c1d27
Create Date: 2026-11-27 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5b2c9e7f4a18"
down_revision: str | None = "8e5f3a6c1d27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_snapshots",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("watermark", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("compute_seconds", sa.Float(), nullable=False),
        sa.Column("judgments", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_analytics_snapshots_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "key", name=op.f("pk_analytics_snapshots")),
    )
    op.create_index("ix_judgments_project_id_id", "judgments", ["project_id", "id"], unique=False)
    op.create_index(
        "ix_pairs_out_of_queue",
        "pairs",
        ["project_id", "id"],
        unique=False,
        postgresql_where=sa.text("status <> 'active'"),
    )


def downgrade() -> None:
    op.drop_index("ix_pairs_out_of_queue", table_name="pairs")
    op.drop_index("ix_judgments_project_id_id", table_name="judgments")
    op.drop_table("analytics_snapshots")
