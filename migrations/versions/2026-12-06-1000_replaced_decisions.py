"""Changing the last choice: a project's undo window, and the decisions raters replaced.

Revision ID: f9bc7f498b5a
Revises: 304e027b05d7
Create Date: 2026-12-06 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f9bc7f498b5a"
down_revision: str | None = "304e027b05d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("undo_seconds", sa.Integer(), nullable=False, server_default="300"),
    )
    op.alter_column("projects", "undo_seconds", server_default=None)
    op.create_check_constraint(
        op.f("ck_projects_undo_seconds_range"), "projects", "undo_seconds BETWEEN 0 AND 86400"
    )
    op.create_table(
        "replaced_decisions",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("pair_id", sa.BigInteger(), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=True),
        sa.Column("strength", sa.Integer(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("criteria", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.Column("left_side", sa.String(length=1), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint("kind IN ('judgment', 'skip')", name=op.f("ck_replaced_decisions_kind")),
        sa.CheckConstraint(
            "choice IS NULL OR choice IN ('a', 'b', 'tie', 'both_bad')",
            name=op.f("ck_replaced_decisions_choice"),
        ),
        sa.CheckConstraint(
            "skip_reason IS NULL OR skip_reason IN "
            "('cant_judge', 'needs_expertise', 'broken_content')",
            name=op.f("ck_replaced_decisions_skip_reason"),
        ),
        sa.CheckConstraint("left_side IN ('a', 'b')", name=op.f("ck_replaced_decisions_left_side")),
        sa.CheckConstraint(
            "(kind = 'judgment') = (choice IS NOT NULL)",
            name=op.f("ck_replaced_decisions_judgment_choice"),
        ),
        sa.CheckConstraint(
            "(kind = 'skip') = (skip_reason IS NOT NULL)",
            name=op.f("ck_replaced_decisions_skip_has_reason"),
        ),
        sa.CheckConstraint(
            "replaced_at >= decided_at", name=op.f("ck_replaced_decisions_replaced_after_decided")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_replaced_decisions_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id", "project_id"],
            ["pairs.id", "pairs.project_id"],
            name=op.f("fk_replaced_decisions_pair_id_pairs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rater_id"],
            ["users.id"],
            name=op.f("fk_replaced_decisions_rater_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replaced_decisions")),
    )
    op.create_index("ix_replaced_decisions_assignment_id", "replaced_decisions", ["assignment_id"])
    op.create_index(
        "ix_replaced_decisions_project_id_id", "replaced_decisions", ["project_id", "id"]
    )
    op.create_index(
        "ix_replaced_decisions_project_pair", "replaced_decisions", ["project_id", "pair_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_replaced_decisions_project_pair", table_name="replaced_decisions")
    op.drop_index("ix_replaced_decisions_project_id_id", table_name="replaced_decisions")
    op.drop_index("ix_replaced_decisions_assignment_id", table_name="replaced_decisions")
    op.drop_table("replaced_decisions")
    op.drop_constraint(op.f("ck_projects_undo_seconds_range"), "projects", type_="check")
    op.drop_column("projects", "undo_seconds")
