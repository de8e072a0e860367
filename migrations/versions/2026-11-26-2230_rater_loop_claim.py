"""Rater loop claim: assignments indexed by (rater_id, pair_id) instead of rater_id alone.

The next-pair query asks, per candidate slot, whether this rater already has an assignment
for the slot's pair. With statistics that predate a rater's session, the planner answered it
from the rater_id index and filtered the rater's whole list of assignments per slot; with
(rater_id, pair_id) that question is a single index probe whatever the statistics say. The
new index also serves everything the old one did (queries and foreign keys by rater_id).

Revision ID: 4d7a1e2b9c30
Revises: cc0b746d1841
Create Date: 2026-11-26 22:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4d7a1e2b9c30"
down_revision: str | None = "cc0b746d1841"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_assignments_rater_id_pair_id", "assignments", ["rater_id", "pair_id"], unique=False
    )
    op.drop_index(op.f("ix_assignments_rater_id"), table_name="assignments")


def downgrade() -> None:
    op.create_index(op.f("ix_assignments_rater_id"), "assignments", ["rater_id"], unique=False)
    op.drop_index("ix_assignments_rater_id_pair_id", table_name="assignments")
