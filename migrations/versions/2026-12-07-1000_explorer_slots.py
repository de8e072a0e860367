"""The explorer's pair summaries count each pair's slots, and index the pairs with votes.

`slots` is how many votes the pair's queue asks for: k (or the votes an admin asked for) in
a fixed project, and in an adaptive one the slots its stopping rule has opened so far (a pair
whose slots are all judged is settled). Kept by triggers on `pair_slots`, like the summaries'
other counts. `ix_pair_summaries_voted` walks the newest pairs that have a vote, so a filter
that needs votes (a rater's, a tie, a rationale) does not step over a waiting batch first.
`ix_pair_summaries_batch` gains the project as its first column, so a one-batch listing has
both its conditions in the index and is never planned as a walk of the project's newest pairs.

Revision ID: 8f7f2e8786bd
Revises: 7c1d9e3a5b42
Create Date: 2026-12-07 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8f7f2e8786bd"
down_revision: str | None = "7c1d9e3a5b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    """
    CREATE FUNCTION review_count_slots(pair_ids bigint[], deltas integer[]) RETURNS void
    LANGUAGE sql AS $$
        UPDATE pair_summaries s SET slots = s.slots + d.delta
        FROM (
            SELECT pair_id, sum(delta) AS delta
            FROM unnest(pair_ids, deltas) AS c(pair_id, delta)
            GROUP BY pair_id
        ) d
        WHERE s.pair_id = d.pair_id AND d.delta <> 0
    $$
    """,
    """
    CREATE FUNCTION review_slots_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM review_count_slots(array_agg(pair_id), array_agg(1)) FROM new_rows;
        ELSE
            PERFORM review_count_slots(array_agg(pair_id), array_agg(-1)) FROM old_rows;
        END IF;
        RETURN NULL;
    END $$
    """,
]
TRIGGERS = [
    ("review_slots_inserted", "INSERT", "NEW TABLE AS new_rows"),
    ("review_slots_deleted", "DELETE", "OLD TABLE AS old_rows"),
]


BATCH_INDEX = "ix_pair_summaries_batch"


def upgrade() -> None:
    op.drop_index(BATCH_INDEX, table_name="pair_summaries")
    op.create_index(
        BATCH_INDEX, "pair_summaries", ["project_id", "batch_id", "created_at", "pair_id"]
    )
    op.add_column(
        "pair_summaries",
        sa.Column("slots", sa.Integer(), server_default="0", nullable=False),
    )
    for statement in FUNCTIONS:
        op.execute(statement)
    for name, events, referencing in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON pair_slots REFERENCING {referencing} "
            "FOR EACH STATEMENT EXECUTE FUNCTION review_slots_changed()"
        )
    op.execute(
        """
        UPDATE pair_summaries s SET slots = c.slots
        FROM (SELECT pair_id, count(*) AS slots FROM pair_slots GROUP BY pair_id) c
        WHERE s.pair_id = c.pair_id
        """
    )
    op.create_index(
        "ix_pair_summaries_voted",
        "pair_summaries",
        ["project_id", "created_at", "pair_id"],
        unique=False,
        postgresql_where=sa.text("judgments > 0"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_pair_summaries_voted",
        table_name="pair_summaries",
        postgresql_where=sa.text("judgments > 0"),
    )
    for name, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON pair_slots")
    op.execute("DROP FUNCTION review_slots_changed()")
    op.execute("DROP FUNCTION review_count_slots(bigint[], integer[])")
    op.drop_column("pair_summaries", "slots")
    op.drop_index(BATCH_INDEX, table_name="pair_summaries")
    op.create_index(BATCH_INDEX, "pair_summaries", ["batch_id", "created_at", "pair_id"])
