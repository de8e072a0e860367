"""The rater's judgments index orders by (submitted_at, id) and carries the columns the
summary reads: the milestone summary's "latest 500 choices" becomes an index-only scan in
its own order.

The old index (rater, project, submitted_at) matched the summary's ORDER BY only up to
submitted_at, so Postgres fetched each of the 500 judgment rows from the heap (one buffer
each, the rows of one rater being spread among everyone's) and sorted them again by id.
With id in the key and pair_id, choice and left_side included, the scan reads ~8 index pages
and no heap (EXPLAIN ANALYZE with ~5,000 judgments by one rater: 506 → 8 buffers for the
judgments, 0.37 → 0.08 ms). It replaces the old index, so a judgment still writes as many
index entries; the page's counts by (rater, project[, submitted_at]) stay index-only.

Revision ID: 8a2d5f0c4e91
Revises: 6c1e9a4d2b73
Create Date: 2026-12-08 14:10:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8a2d5f0c4e91"
down_revision: str | None = "6c1e9a4d2b73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_judgments_rater_project_latest",
        "judgments",
        ["rater_id", "project_id", "submitted_at", "id"],
        postgresql_include=["pair_id", "choice", "left_side"],
    )
    op.drop_index("ix_judgments_rater_project_submitted", table_name="judgments")


def downgrade() -> None:
    op.create_index(
        "ix_judgments_rater_project_submitted",
        "judgments",
        ["rater_id", "project_id", "submitted_at"],
    )
    op.drop_index("ix_judgments_rater_project_latest", table_name="judgments")
