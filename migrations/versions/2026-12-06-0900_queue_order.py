"""The queue: each slot carries its pair's place, and a project says how new pairs are placed
(shuffled across prompts, the default for new projects, or in file order).

Projects that exist keep the order they had, by pair id: `pair_order` = file, `queue_pos` =
pair id. The next-pair scan walks the new (project, queue_pos, slot_no) index instead of
(project, pair_id, slot_no); the rater's latest assignments get an index of their own (the
prompt they saw last).

Revision ID: 304e027b05d7
Revises: a1b038eeac58
Create Date: 2026-12-06 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "304e027b05d7"
down_revision: str | None = "a1b038eeac58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("pair_order", sa.String(length=16), nullable=False, server_default="file"),
    )
    op.alter_column("projects", "pair_order", server_default=None)
    op.create_check_constraint(
        op.f("ck_projects_pair_order"), "projects", "pair_order IN ('shuffled', 'file')"
    )
    op.add_column("pair_slots", sa.Column("queue_pos", sa.BigInteger(), nullable=True))
    op.execute("UPDATE pair_slots SET queue_pos = pair_id")
    op.alter_column("pair_slots", "queue_pos", nullable=False)
    op.drop_index("ix_pair_slots_available", table_name="pair_slots")
    op.create_index(
        "ix_pair_slots_queue",
        "pair_slots",
        ["project_id", "queue_pos", "slot_no"],
        unique=False,
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.create_index(
        "ix_assignments_rater_project_recent",
        "assignments",
        ["rater_id", "project_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_rater_project_recent", table_name="assignments")
    op.drop_index("ix_pair_slots_queue", table_name="pair_slots")
    op.create_index(
        "ix_pair_slots_available",
        "pair_slots",
        ["project_id", "pair_id", "slot_no"],
        unique=False,
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.drop_column("pair_slots", "queue_pos")
    op.drop_constraint(op.f("ck_projects_pair_order"), "projects", type_="check")
    op.drop_column("projects", "pair_order")
