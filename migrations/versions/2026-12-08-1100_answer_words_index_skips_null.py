"""`ix_responses_search` holds only answers that have their words: an imported answer's
`search_vector` is NULL until the search catch-up fills it, and a GIN index gives every NULL
row an entry of its own (a pending-list insert and a metapage update per answer at import,
~20 % of an import's GIN and ~7 % of its WAL bytes: docs/benchmarks.md, "Import"). Searches
test `search_vector @@ query`, which is never true of NULL, so the planner uses the partial
index for them as it did the whole one.

Revision ID: 9b4e2d7c1f08
Revises: 3d8b6f1a2c57
Create Date: 2026-12-08 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b4e2d7c1f08"
down_revision: str | None = "3d8b6f1a2c57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses")
    op.create_index(
        "ix_responses_search",
        "responses",
        ["search_vector"],
        postgresql_using="gin",
        postgresql_where=sa.text("search_vector IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses")
    op.create_index("ix_responses_search", "responses", ["search_vector"], postgresql_using="gin")
