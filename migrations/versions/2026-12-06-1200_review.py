"""Review and curation: pair summaries kept by triggers, adjudications, text search indexes,
and two curation columns on pairs (excluded from exports; votes wanted above k).

Why triggers: the summaries are derived from judgments, pairs, flags, memberships and
adjudications, and several code paths write those (the rater loop, the admin pages, the API,
the CLI, imports). Kept by Postgres in the writer's own transaction, a summary can never
drift from what it summarises, whichever path wrote. Concurrency:

* judgments and flags change the counts by increments (`x = x + delta`): two raters voting on
  one pair at once both count, since an UPDATE that waited for a row lock applies its
  increment to the row as the other transaction left it;
* a rater excluded or included again recounts their pairs: the summaries are locked first and
  counted by the next statement, whose snapshot then sees every vote committed meanwhile; the
  rater's open leases are locked before, so a vote they are submitting at that moment is
  either committed before the recount or stored after it, when the exclusion is visible;
* pairs mirror their own row (its lock orders the writers); decisions are written by
  `review.service` under the pair's row lock.

Revision ID: 6c41d9e2a7b3
Revises: c1d74e16a8d7
Create Date: 2026-12-06 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c41d9e2a7b3"
down_revision: str | None = "c1d74e16a8d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AGREEMENT = "greatest(votes_a, votes_b, ties, both_bad)::float8 / nullif(votes, 0)"
MAJORITY = """CASE
    WHEN votes_a > greatest(votes_b, ties, both_bad) THEN 'a'
    WHEN votes_b > greatest(votes_a, ties, both_bad) THEN 'b'
    WHEN ties > greatest(votes_a, votes_b, both_bad) THEN 'tie'
    WHEN both_bad > greatest(votes_a, votes_b, ties) THEN 'both_bad'
END"""
PROMPT_TEXT = (
    "(to_tsvector('simple'::regconfig, COALESCE(system, ''::text)) || "
    "jsonb_to_tsvector('simple'::regconfig, "
    "jsonb_path_query_array(turns, '$[*].\"content\"'::jsonpath), '[\"string\"]'::jsonb))"
)

FUNCTIONS = [
    # New pairs get their summary; what never changes is copied once.
    """
    CREATE FUNCTION review_pairs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO pair_summaries (
            pair_id, project_id, batch_id, prompt_id, response_a_id, response_b_id, created_at,
            model_low, model_high, is_gold, pair_status, excluded, votes_wanted)
        SELECT p.id, p.project_id, p.batch_id, p.prompt_id, p.response_a_id, p.response_b_id,
               p.created_at, least(ra.model, rb.model), greatest(ra.model, rb.model),
               p.is_gold, p.status, p.excluded, p.votes_wanted
        FROM new_pairs p
        JOIN responses ra ON ra.id = p.response_a_id
        JOIN responses rb ON rb.id = p.response_b_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION review_pairs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE pair_summaries s
        SET is_gold = p.is_gold, pair_status = p.status, excluded = p.excluded,
            votes_wanted = p.votes_wanted
        FROM new_pairs p
        WHERE s.pair_id = p.id
          AND (s.is_gold, s.pair_status, s.excluded, s.votes_wanted)
              IS DISTINCT FROM (p.is_gold, p.status, p.excluded, p.votes_wanted);
        RETURN NULL;
    END $$
    """,
    # Judgments added (sign 1) or taken away (sign -1): the counts move by as much. A vote
    # counts unless its rater is excluded from the project (as in exports and analytics).
    """
    CREATE FUNCTION review_count_votes(
        pair_ids bigint[], project_ids bigint[], rater_ids bigint[], choices text[],
        with_rationale boolean[], signs integer[]
    ) RETURNS void LANGUAGE sql AS $$
        WITH change AS (
            SELECT c.pair_id, c.choice, c.with_rationale, c.sign,
                   NOT EXISTS (
                       SELECT 1 FROM project_members m
                       WHERE m.project_id = c.project_id AND m.user_id = c.rater_id
                         AND m.excluded
                   ) AS counted
            FROM unnest(pair_ids, project_ids, rater_ids, choices, with_rationale, signs)
                 AS c(pair_id, project_id, rater_id, choice, with_rationale, sign)
        ), delta AS (
            SELECT pair_id,
                   sum(sign) AS judgments,
                   coalesce(sum(sign) FILTER (WHERE counted), 0) AS votes,
                   coalesce(sum(sign) FILTER (WHERE counted AND choice = 'a'), 0) AS votes_a,
                   coalesce(sum(sign) FILTER (WHERE counted AND choice = 'b'), 0) AS votes_b,
                   coalesce(sum(sign) FILTER (WHERE counted AND choice = 'tie'), 0) AS ties,
                   coalesce(sum(sign) FILTER (WHERE counted AND choice = 'both_bad'), 0)
                       AS both_bad,
                   coalesce(sum(sign) FILTER (WHERE counted AND with_rationale), 0)
                       AS rationales
            FROM change
            GROUP BY pair_id
        )
        UPDATE pair_summaries s
        SET judgments = s.judgments + d.judgments, votes = s.votes + d.votes,
            votes_a = s.votes_a + d.votes_a, votes_b = s.votes_b + d.votes_b,
            ties = s.ties + d.ties, both_bad = s.both_bad + d.both_bad,
            rationales = s.rationales + d.rationales
        FROM delta d
        WHERE s.pair_id = d.pair_id
    $$
    """,
    """
    CREATE FUNCTION review_judgments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM review_count_votes(
                array_agg(pair_id), array_agg(project_id), array_agg(rater_id),
                array_agg(choice::text), array_agg(rationale IS NOT NULL), array_agg(-1))
            FROM old_rows;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM review_count_votes(
                array_agg(pair_id), array_agg(project_id), array_agg(rater_id),
                array_agg(choice::text), array_agg(rationale IS NOT NULL), array_agg(1))
            FROM new_rows;
        END IF;
        RETURN NULL;
    END $$
    """,
    # Counted again from the judgments, for pairs whose raters' standing changed.
    """
    CREATE FUNCTION review_recount_pairs(pair_ids bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        -- Locked first, in pair order; the next statement's snapshot is taken after the
        -- locks, so it sees every vote committed while this one waited.
        PERFORM 1 FROM pair_summaries WHERE pair_id = ANY(pair_ids) ORDER BY pair_id
        FOR UPDATE;
        UPDATE pair_summaries s
        SET judgments = c.judgments, votes = c.votes, votes_a = c.votes_a,
            votes_b = c.votes_b, ties = c.ties, both_bad = c.both_bad,
            rationales = c.rationales
        FROM unnest(pair_ids) AS p(id)
        CROSS JOIN LATERAL (
            SELECT count(*) AS judgments,
                   count(*) FILTER (WHERE v.counted) AS votes,
                   count(*) FILTER (WHERE v.counted AND v.choice = 'a') AS votes_a,
                   count(*) FILTER (WHERE v.counted AND v.choice = 'b') AS votes_b,
                   count(*) FILTER (WHERE v.counted AND v.choice = 'tie') AS ties,
                   count(*) FILTER (WHERE v.counted AND v.choice = 'both_bad') AS both_bad,
                   count(*) FILTER (WHERE v.counted AND v.with_rationale) AS rationales
            FROM (
                SELECT j.choice, j.rationale IS NOT NULL AS with_rationale,
                       NOT coalesce(m.excluded, false) AS counted
                FROM judgments j
                LEFT JOIN project_members m
                       ON m.project_id = j.project_id AND m.user_id = j.rater_id
                WHERE j.pair_id = p.id
            ) v
        ) c
        WHERE s.pair_id = p.id;
    END $$
    """,
    """
    CREATE FUNCTION review_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        member project_members;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            member := OLD;
        ELSE
            member := NEW;
        END IF;
        IF (TG_OP = 'UPDATE' AND NEW.excluded = OLD.excluded)
           OR (TG_OP <> 'UPDATE' AND NOT member.excluded) THEN
            RETURN NULL;
        END IF;
        -- One curation at a time per project (review actions take this lock too).
        PERFORM 1 FROM projects WHERE id = member.project_id FOR NO KEY UPDATE;
        -- A vote being submitted holds its lease's lock until it commits: wait for it.
        PERFORM 1 FROM assignments
        WHERE project_id = member.project_id AND rater_id = member.user_id
          AND status = 'leased'
        ORDER BY id
        FOR UPDATE;
        PERFORM review_recount_pairs(ARRAY(
            SELECT DISTINCT pair_id FROM judgments
            WHERE project_id = member.project_id AND rater_id = member.user_id));
        RETURN NULL;
    END $$
    """,
    # Open flags (no resolution yet) per pair, by increments.
    """
    CREATE FUNCTION review_count_flags(pair_ids bigint[], deltas integer[]) RETURNS void
    LANGUAGE sql AS $$
        UPDATE pair_summaries s SET open_flags = s.open_flags + d.delta
        FROM (
            SELECT pair_id, sum(delta) AS delta
            FROM unnest(pair_ids, deltas) AS c(pair_id, delta)
            GROUP BY pair_id
        ) d
        WHERE s.pair_id = d.pair_id AND d.delta <> 0
    $$
    """,
    """
    CREATE FUNCTION review_flags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM review_count_flags(array_agg(pair_id), array_agg(-(resolution IS NULL)::int))
            FROM old_rows;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM review_count_flags(array_agg(pair_id), array_agg((resolution IS NULL)::int))
            FROM new_rows;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION review_adjudications_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE pair_summaries s
        SET decision = (
            SELECT a.decision FROM adjudications a WHERE a.pair_id = s.pair_id AND a.is_current
        )
        WHERE s.pair_id IN (SELECT pair_id FROM new_rows);
        RETURN NULL;
    END $$
    """,
]

TRIGGERS = [
    ("review_pairs_inserted", "pairs", "INSERT", "NEW TABLE AS new_pairs", "statement"),
    ("review_pairs_updated", "pairs", "UPDATE", "NEW TABLE AS new_pairs", "statement"),
    ("review_judgments_inserted", "judgments", "INSERT", "NEW TABLE AS new_rows", "statement"),
    (
        "review_judgments_updated",
        "judgments",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "statement",
    ),
    ("review_judgments_deleted", "judgments", "DELETE", "OLD TABLE AS old_rows", "statement"),
    ("review_flags_inserted", "pair_flags", "INSERT", "NEW TABLE AS new_rows", "statement"),
    (
        "review_flags_updated",
        "pair_flags",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "statement",
    ),
    ("review_flags_deleted", "pair_flags", "DELETE", "OLD TABLE AS old_rows", "statement"),
    (
        "review_adjudications_inserted",
        "adjudications",
        "INSERT",
        "NEW TABLE AS new_rows",
        "statement",
    ),
    (
        "review_adjudications_updated",
        "adjudications",
        "UPDATE",
        "NEW TABLE AS new_rows",
        "statement",
    ),
    ("review_member_changed", "project_members", "INSERT OR UPDATE OR DELETE", "", "row"),
]
TRIGGER_FUNCTIONS = {
    "review_judgments_inserted": "review_judgments_changed",
    "review_judgments_updated": "review_judgments_changed",
    "review_judgments_deleted": "review_judgments_changed",
    "review_flags_inserted": "review_flags_changed",
    "review_flags_updated": "review_flags_changed",
    "review_flags_deleted": "review_flags_changed",
    "review_adjudications_inserted": "review_adjudications_changed",
    "review_adjudications_updated": "review_adjudications_changed",
}
FUNCTION_NAMES = [
    "review_pairs_inserted()",
    "review_pairs_updated()",
    "review_judgments_changed()",
    "review_count_votes(bigint[], bigint[], bigint[], text[], boolean[], integer[])",
    "review_recount_pairs(bigint[])",
    "review_member_changed()",
    "review_flags_changed()",
    "review_count_flags(bigint[], integer[])",
    "review_adjudications_changed()",
]

# Every existing pair's summary, counted from what is there.
BACKFILL = [
    """
    INSERT INTO pair_summaries (
        pair_id, project_id, batch_id, prompt_id, response_a_id, response_b_id, created_at,
        model_low, model_high, is_gold, pair_status, excluded, votes_wanted, open_flags)
    SELECT p.id, p.project_id, p.batch_id, p.prompt_id, p.response_a_id, p.response_b_id,
           p.created_at, least(ra.model, rb.model), greatest(ra.model, rb.model), p.is_gold,
           p.status, p.excluded, p.votes_wanted,
           (SELECT count(*) FROM pair_flags f WHERE f.pair_id = p.id AND f.resolution IS NULL)
    FROM pairs p
    JOIN responses ra ON ra.id = p.response_a_id
    JOIN responses rb ON rb.id = p.response_b_id
    """,
    "SELECT review_recount_pairs(ARRAY(SELECT DISTINCT pair_id FROM judgments))",
]


def upgrade() -> None:
    op.add_column(
        "pairs", sa.Column("excluded", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("pairs", sa.Column("votes_wanted", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_pairs_votes_wanted_range"),
        "pairs",
        "votes_wanted IS NULL OR votes_wanted BETWEEN 1 AND 100",
    )
    op.create_table(
        "pair_summaries",
        sa.Column("pair_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("prompt_id", sa.BigInteger(), nullable=False),
        sa.Column("response_a_id", sa.BigInteger(), nullable=False),
        sa.Column("response_b_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_low", sa.Text(), nullable=False),
        sa.Column("model_high", sa.Text(), nullable=False),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("pair_status", sa.String(length=16), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("votes_wanted", sa.Integer(), nullable=True),
        sa.Column("open_flags", sa.Integer(), server_default="0", nullable=False),
        sa.Column("judgments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("votes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("votes_a", sa.Integer(), server_default="0", nullable=False),
        sa.Column("votes_b", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ties", sa.Integer(), server_default="0", nullable=False),
        sa.Column("both_bad", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rationales", sa.Integer(), server_default="0", nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=True),
        sa.Column("agreement", sa.Float(), sa.Computed(AGREEMENT, persisted=True), nullable=True),
        sa.Column("majority", sa.String(length=8), sa.Computed(MAJORITY, persisted=True)),
        sa.Column(
            "agreement_low",
            sa.Float(),
            sa.Computed(f"coalesce({AGREEMENT}, 2)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "agreement_high",
            sa.Float(),
            sa.Computed(f"coalesce(-({AGREEMENT}), 1)", persisted=True),
            nullable=False,
        ),
        sa.CheckConstraint(
            "votes = votes_a + votes_b + ties + both_bad AND votes <= judgments",
            name=op.f("ck_pair_summaries_counts_add_up"),
        ),
        sa.ForeignKeyConstraint(
            ["pair_id", "project_id"],
            ["pairs.id", "pairs.project_id"],
            name=op.f("fk_pair_summaries_pair_id_pairs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pair_id", name=op.f("pk_pair_summaries")),
    )
    for name, columns in (
        ("ix_pair_summaries_created", ["project_id", "created_at", "pair_id"]),
        ("ix_pair_summaries_agreement_low", ["project_id", "agreement_low", "pair_id"]),
        ("ix_pair_summaries_agreement_high", ["project_id", "agreement_high", "pair_id"]),
        ("ix_pair_summaries_votes", ["project_id", "votes", "pair_id"]),
        ("ix_pair_summaries_model_low", ["project_id", "model_low", "model_high"]),
        ("ix_pair_summaries_model_high", ["project_id", "model_high"]),
        ("ix_pair_summaries_batch", ["batch_id", "created_at", "pair_id"]),
    ):
        op.create_index(name, "pair_summaries", columns, unique=False)
    op.create_index(
        "ix_pair_summaries_notable",
        "pair_summaries",
        ["project_id", "pair_id"],
        unique=False,
        postgresql_where=sa.text(
            "open_flags > 0 OR excluded OR is_gold OR decision IS NOT NULL "
            "OR pair_status <> 'active'"
        ),
    )
    op.create_table(
        "adjudications",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("pair_id", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("decided_by_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaces_id", sa.BigInteger(), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "decision IN ('a', 'b', 'tie', 'both_bad', 'drop')",
            name=op.f("ck_adjudications_decision"),
        ),
        sa.CheckConstraint(
            "NOT (is_current AND withdrawn_at IS NOT NULL)",
            name=op.f("ck_adjudications_withdrawn_not_current"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_adjudications_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id", "project_id"],
            ["pairs.id", "pairs.project_id"],
            name=op.f("fk_adjudications_pair_id_pairs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["adjudications.id"],
            name=op.f("fk_adjudications_replaces_id_adjudications"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by_id"],
            ["users.id"],
            name=op.f("fk_adjudications_withdrawn_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjudications")),
    )
    op.create_index("ix_adjudications_pair", "adjudications", ["pair_id", "id"], unique=False)
    op.create_index(
        "uq_adjudications_current",
        "adjudications",
        ["pair_id"],
        unique=True,
        postgresql_where=sa.text("is_current"),
    )
    # Text search (docs/review.md): full-text indexes, no extension needed.
    op.execute(f"CREATE INDEX ix_prompts_search ON prompts USING gin ({PROMPT_TEXT})")
    op.execute(
        "CREATE INDEX ix_responses_search ON responses "
        "USING gin (to_tsvector('simple'::regconfig, content))"
    )
    # Updated in place (no pending list), so no rater's submit pays for a pending-list flush.
    op.execute(
        "CREATE INDEX ix_judgments_rationale_search ON judgments "
        "USING gin (to_tsvector('simple'::regconfig, rationale)) WITH (fastupdate = off) "
        "WHERE rationale IS NOT NULL"
    )
    for statement in FUNCTIONS:
        op.execute(statement)
    for name, table, events, referencing, level in TRIGGERS:
        function = TRIGGER_FUNCTIONS.get(name, name)
        refs = f"REFERENCING {referencing} " if referencing else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} {refs}"
            f"FOR EACH {level.upper()} EXECUTE FUNCTION {function}()"
        )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    for name, table, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for signature in FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION {signature}")
    op.drop_index("ix_judgments_rationale_search", table_name="judgments")
    op.drop_index("ix_responses_search", table_name="responses")
    op.drop_index("ix_prompts_search", table_name="prompts")
    op.drop_table("adjudications")
    op.drop_table("pair_summaries")
    op.drop_constraint(op.f("ck_pairs_votes_wanted_range"), "pairs", type_="check")
    op.drop_column("pairs", "votes_wanted")
    op.drop_column("pairs", "excluded")
