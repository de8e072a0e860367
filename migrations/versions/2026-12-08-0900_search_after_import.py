"""Answers become searchable after their import, not inside it: `responses.search_vector` is
a plain column (no longer generated), filled by the search catch-up (pickwise.batches.
search_catchup) in batches of a few thousand rows once an import has committed. Making the
words inside the import cost ~225 µs of Postgres CPU per task (docs/benchmarks.md, "Import").

* The column keeps every existing row's vector (DROP EXPRESSION only changes the catalog).
* Writers other than the import (live conversations, a row written by hand) still get the
  words at once, from a BEFORE trigger; only a session that says `pickwise.search_later` is on
  (the import) leaves them to the catch-up.
* `batches.search_pending` counts a batch's answers not searchable yet (the explorer says so)
  and `search_done_through` is the catch-up's place in the batch (a prompt id), so a restart
  resumes where it stopped.
* `ix_prompts_batch_id` gains `id`: the catch-up walks a batch's prompts in id order.

Revision ID: 5e1a7c3b9d20
Revises: b2c0dad77f43
Create Date: 2026-12-08 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1a7c3b9d20"
down_revision: str | None = "b2c0dad77f43"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_WORDS = "to_tsvector('simple'::regconfig, content)"

SEARCH_WORDS_FUNCTION = f"""
CREATE FUNCTION responses_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := {CONTENT_WORDS.replace("content", "NEW.content")};
    RETURN NEW;
END $$
"""
# The WHEN is evaluated without calling the function: the import's rows cost a setting read.
SEARCH_WORDS_TRIGGER = """
CREATE TRIGGER responses_search_words BEFORE INSERT OR UPDATE OF content ON responses
FOR EACH ROW WHEN (current_setting('pickwise.search_later', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION responses_search_words()
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE responses ALTER COLUMN search_vector DROP EXPRESSION, "
        "ALTER COLUMN search_vector DROP NOT NULL"
    )
    op.execute(SEARCH_WORDS_FUNCTION)
    op.execute(SEARCH_WORDS_TRIGGER)
    # Words are part of the row, as when they were generated: also for a session that skips
    # ordinary triggers (session_replication_role = replica, as bulk loads do).
    op.execute("ALTER TABLE responses ENABLE ALWAYS TRIGGER responses_search_words")
    op.add_column(
        "batches",
        sa.Column("search_pending", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "batches",
        sa.Column(
            "search_done_through", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.drop_index("ix_prompts_batch_id", table_name="prompts")
    op.create_index("ix_prompts_batch_id", "prompts", ["batch_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_prompts_batch_id", table_name="prompts")
    op.create_index("ix_prompts_batch_id", "prompts", ["batch_id"])
    op.drop_column("batches", "search_done_through")
    op.drop_column("batches", "search_pending")
    op.execute("DROP TRIGGER responses_search_words ON responses")
    op.execute("DROP FUNCTION responses_search_words()")
    # Generated again, from the content: every row gets its words, whatever it held.
    op.drop_index("ix_responses_search", table_name="responses")
    op.drop_column("responses", "search_vector")
    op.execute(
        f"ALTER TABLE responses ADD COLUMN search_vector tsvector NOT NULL GENERATED ALWAYS AS "
        f"({CONTENT_WORDS}) STORED, ALTER COLUMN search_vector SET STORAGE MAIN"
    )
    op.create_index("ix_responses_search", "responses", ["search_vector"], postgresql_using="gin")
