"""Responses keep their words: `search_vector`, a stored tsvector of the content, which the
full-text index now indexes. A GIN index keeps no word positions, so a phrase search rechecks
every answer that has all its words; reading the stored vector instead of parsing the text
again makes that recheck several times cheaper (docs/review.md, "Search"). The vector stays in
the row (see `upgrade`).

Revision ID: b2c0dad77f43
Revises: 8f7f2e8786bd
Create Date: 2026-12-07 11:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b2c0dad77f43"
down_revision: str | None = "8f7f2e8786bd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_WORDS = "to_tsvector('simple'::regconfig, content)"


def upgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses")
    # One statement, one rewrite of the table, with the vector kept in the row (MAIN, and a
    # row may fill a page before anything moves out of line): a phrase's recheck then reads
    # the candidate's own heap page, not a TOAST index and table besides (which for the long
    # answers that hold many words was three more pages each).
    op.execute(
        "ALTER TABLE responses SET (toast_tuple_target = 8160), "
        f"ADD COLUMN search_vector tsvector NOT NULL GENERATED ALWAYS AS ({CONTENT_WORDS}) "
        "STORED, ALTER COLUMN search_vector SET STORAGE MAIN"
    )
    op.create_index("ix_responses_search", "responses", ["search_vector"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_responses_search", table_name="responses", postgresql_using="gin")
    op.drop_column("responses", "search_vector")
    op.execute("ALTER TABLE responses RESET (toast_tuple_target)")
    op.execute(f"CREATE INDEX ix_responses_search ON responses USING gin ({CONTENT_WORDS})")
