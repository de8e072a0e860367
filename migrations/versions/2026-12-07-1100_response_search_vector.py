"""Responses keep their words: `search_vector`, a stored tsvector of the content, which the
full-text index now indexes. A GIN index keeps no word positions, so a phrase search rechecks
every answer that has all its words; reading the stored vector instead of parsing the text
again makes that recheck several times cheaper (docs/review.md, "Search").

Revision ID: b2c0dad77f43
Revises: 8f7f2e8786bd
Create Date: 2026-12-07 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b2c0dad77f43"
down_revision: str | None = "8f7f2e8786bd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_WORDS = "to_tsvector('simple'::regconfig, content)"


def upgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses")
    op.add_column(
        "responses",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(CONTENT_WORDS, persisted=True),
            nullable=False,
        ),
    )
    op.create_index("ix_responses_search", "responses", ["search_vector"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses", postgresql_using="gin")
    op.drop_column("responses", "search_vector")
    op.execute(f"CREATE INDEX ix_responses_search ON responses USING gin ({CONTENT_WORDS})")
