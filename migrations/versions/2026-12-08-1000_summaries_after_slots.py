"""An import makes its pairs' explorer summaries once their slots exist, in one statement.

The `review_pairs_inserted` trigger gives new pairs their summary; the slots written next
(`review_slots_inserted`) then update every one of them to count its slots. On the full pages
a bulk insert leaves, that update cannot be HOT: each summary was written twice, with all of
its eight index entries (docs/benchmarks.md, "Import"). A session that sets
`pickwise.summaries_later` on (the import, which then adds its batch's summaries, slots
counted, before it commits: pickwise.review.repository.add_batch_summaries) now writes pairs
without summaries; every other writer still gets them from the trigger.

Revision ID: 3d8b6f1a2c57
Revises: 5e1a7c3b9d20
Create Date: 2026-12-08 10:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3d8b6f1a2c57"
down_revision: str | None = "5e1a7c3b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSERT_SUMMARIES = """
        INSERT INTO pair_summaries (
            pair_id, project_id, batch_id, prompt_id, response_a_id, response_b_id, created_at,
            model_low, model_high, is_gold, pair_status, excluded, votes_wanted)
        SELECT p.id, p.project_id, p.batch_id, p.prompt_id, p.response_a_id, p.response_b_id,
               p.created_at, least(ra.model, rb.model), greatest(ra.model, rb.model),
               p.is_gold, p.status, p.excluded, p.votes_wanted
        FROM new_pairs p
        JOIN responses ra ON ra.id = p.response_a_id
        JOIN responses rb ON rb.id = p.response_b_id;
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION review_pairs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('pickwise.summaries_later', true) IS DISTINCT FROM 'on' THEN
                {INSERT_SUMMARIES}
            END IF;
            RETURN NULL;
        END $$
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION review_pairs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {INSERT_SUMMARIES}
            RETURN NULL;
        END $$
        """
    )
