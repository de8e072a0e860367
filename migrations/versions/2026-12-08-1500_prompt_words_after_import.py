"""A prompt's words join the search index after its import, as its answers' do: the import
writes its prompts with `searchable` false, which `ix_prompts_search` (now partial, `WHERE
searchable`) leaves out without computing their words, and the search catch-up sets it true
for each chunk of the batch it makes searchable. Inside the import the prompts' words cost
~12-20 µs of Postgres CPU a task (docs/benchmarks.md, "i30d").

* Every other writer of prompts (live conversations, a row written by hand) gets the column's
  default, true: its prompts are indexed as they are written, as before.
* Existing prompts keep their words: the new column's constant default changes only the
  catalog (no rewrite), and the index is rebuilt with the same expression.
* Until the catch-up reaches them, a search reads a pending batch's prompts directly (when
  few), or says it left them out, with their answers (review.service).

Revision ID: 2b7d9e4a6c31
Revises: 8a2d5f0c4e91
Create Date: 2026-12-08 15:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b7d9e4a6c31"
down_revision: str | None = "8a2d5f0c4e91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 2026-12-06-1200_review (and pickwise.models.search.prompt_document).
PROMPT_TEXT = (
    "(to_tsvector('simple'::regconfig, COALESCE(system, ''::text)) || "
    "jsonb_to_tsvector('simple'::regconfig, "
    "jsonb_path_query_array(turns, '$[*].\"content\"'::jsonpath), '[\"string\"]'::jsonb))"
)


def upgrade() -> None:
    op.add_column(
        "prompts",
        sa.Column("searchable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.drop_index("ix_prompts_search", table_name="prompts")
    op.execute(
        f"CREATE INDEX ix_prompts_search ON prompts USING gin ({PROMPT_TEXT}) WHERE searchable"
    )


def downgrade() -> None:
    op.drop_index("ix_prompts_search", table_name="prompts")
    # Every prompt's words, whatever the catch-up had reached.
    op.execute(f"CREATE INDEX ix_prompts_search ON prompts USING gin ({PROMPT_TEXT})")
    op.drop_column("prompts", "searchable")
