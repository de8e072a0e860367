"""The rater's judgments are indexed by (rater, project, submitted_at) instead of (rater,
submitted_at).

Every form of the rating page counts the rater's judgments in its project, all and those of
their today (auth.repository's session statement), and the milestone summary reads their
latest 500 there. Every reader of the old index also names the project; without it in the
index, the count fetched each of the rater's judgment rows from the heap to test its project,
~0.4 ms of Postgres per page with ~600 judgments, growing with the rater's total. With it,
the count is an index-only scan. Lookups by rater alone still lead with rater_id.

Revision ID: 6c1e9a4d2b73
Revises: 4f7a2c9e6b15
Create Date: 2026-12-08 13:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6c1e9a4d2b73"
down_revision: str | None = "4f7a2c9e6b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_judgments_rater_project_submitted",
        "judgments",
        ["rater_id", "project_id", "submitted_at"],
    )
    op.drop_index("ix_judgments_rater_submitted", table_name="judgments")


def downgrade() -> None:
    op.create_index("ix_judgments_rater_submitted", "judgments", ["rater_id", "submitted_at"])
    op.drop_index("ix_judgments_rater_project_submitted", table_name="judgments")
