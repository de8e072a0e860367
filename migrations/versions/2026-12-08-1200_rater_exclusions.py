"""A rater's exclusion becomes a row of its own, `project_rater_exclusions`, instead of the
`project_members.excluded` flag.

The flag went with the membership: removing an excluded rater brought all their votes back
into exports, the analytics and the explorer's counts, and a former member's votes could no
longer be excluded at all. The exclusions of the members marked excluded are copied over.

The explorer's summaries count a vote unless its rater has an exclusion row; adding or
deleting one recounts the rater's pairs as the membership trigger did (locks first: the
project row, the rater's open leases, then the summaries). Removing a member no longer
changes any count.

The downgrade puts the flag back on the members it can: an exclusion of a rater who is no
longer a member has no place in the older schema, so their votes count again there (and
their pairs are recounted).

Revision ID: 4f7a2c9e6b15
Revises: 9b4e2d7c1f08
Create Date: 2026-12-08 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4f7a2c9e6b15"
down_revision: str | None = "9b4e2d7c1f08"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Whether the rater of a vote is excluded, {project} and {rater} being the vote's columns.
EXCLUDED_BY_ROW = (
    "EXISTS (SELECT 1 FROM project_rater_exclusions x"
    " WHERE x.project_id = {project} AND x.user_id = {rater})"
)
EXCLUDED_BY_FLAG = (
    "EXISTS (SELECT 1 FROM project_members m"
    " WHERE m.project_id = {project} AND m.user_id = {rater} AND m.excluded)"
)

# The two counting functions of revision 6c41d9e2a7b3 (review), with the test for an
# excluded rater left open.
COUNT_VOTES = """
CREATE OR REPLACE FUNCTION review_count_votes(
    pair_ids bigint[], project_ids bigint[], rater_ids bigint[], choices text[],
    with_rationale boolean[], signs integer[]
) RETURNS void LANGUAGE sql AS $$
    WITH change AS (
        SELECT c.pair_id, c.choice, c.with_rationale, c.sign,
               NOT {excluded} AS counted
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
"""
RECOUNT_PAIRS = """
CREATE OR REPLACE FUNCTION review_recount_pairs(pair_ids bigint[]) RETURNS void
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
                   NOT {excluded} AS counted
            FROM judgments j
            WHERE j.pair_id = p.id
        ) v
    ) c
    WHERE s.pair_id = p.id;
END $$
"""


def _recount_trigger(name: str, table: str, skip_when: str = "false") -> str:
    """A row trigger's function: the changed row's rater has their pairs counted again
    (project row, open leases, summaries locked first), unless `skip_when` holds."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed {table};
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    IF {skip_when} THEN
        RETURN NULL;
    END IF;
    -- One curation at a time per project (review actions take this lock too).
    PERFORM 1 FROM projects WHERE id = changed.project_id FOR NO KEY UPDATE;
    -- A vote being submitted holds its lease's lock until it commits: wait for it.
    PERFORM 1 FROM assignments
    WHERE project_id = changed.project_id AND rater_id = changed.user_id
      AND status = 'leased'
    ORDER BY id
    FOR UPDATE;
    PERFORM review_recount_pairs(ARRAY(
        SELECT DISTINCT pair_id FROM judgments
        WHERE project_id = changed.project_id AND rater_id = changed.user_id));
    RETURN NULL;
END $$
"""


EXCLUSION_CHANGED = _recount_trigger("review_exclusion_changed", "project_rater_exclusions")
# Revision 6c41d9e2a7b3's: a recount only for a change of the flag, or an excluded member
# added or removed.
MEMBER_CHANGED = _recount_trigger(
    "review_member_changed",
    "project_members",
    "(TG_OP = 'UPDATE' AND NEW.excluded = OLD.excluded)"
    " OR (TG_OP <> 'UPDATE' AND NOT changed.excluded)",
)


def _counting(excluded: str) -> None:
    vote = excluded.format(project="c.project_id", rater="c.rater_id")
    op.execute(COUNT_VOTES.format(excluded=vote))
    judgment = excluded.format(project="j.project_id", rater="j.rater_id")
    op.execute(RECOUNT_PAIRS.format(excluded=judgment))


def upgrade() -> None:
    op.create_table(
        "project_rater_exclusions",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "excluded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_rater_exclusions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_project_rater_exclusions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_rater_exclusions")),
    )
    op.create_index(
        op.f("ix_project_rater_exclusions_user_id"), "project_rater_exclusions", ["user_id"]
    )
    # The same raters are excluded as before, so no summary changes.
    op.execute(
        "INSERT INTO project_rater_exclusions (project_id, user_id) "
        "SELECT project_id, user_id FROM project_members WHERE excluded"
    )
    op.execute("DROP TRIGGER review_member_changed ON project_members")
    op.execute("DROP FUNCTION review_member_changed()")
    _counting(EXCLUDED_BY_ROW)
    op.execute(EXCLUSION_CHANGED)
    op.execute(
        "CREATE TRIGGER review_exclusion_changed AFTER INSERT OR DELETE "
        "ON project_rater_exclusions FOR EACH ROW EXECUTE FUNCTION review_exclusion_changed()"
    )
    op.drop_column("project_members", "excluded")


def downgrade() -> None:
    op.add_column(
        "project_members",
        sa.Column("excluded", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.alter_column("project_members", "excluded", server_default=None)
    op.execute(
        "UPDATE project_members m SET excluded = true FROM project_rater_exclusions x "
        "WHERE x.project_id = m.project_id AND x.user_id = m.user_id"
    )
    op.execute("DROP TRIGGER review_exclusion_changed ON project_rater_exclusions")
    op.execute("DROP FUNCTION review_exclusion_changed()")
    _counting(EXCLUDED_BY_FLAG)
    op.execute(MEMBER_CHANGED)
    op.execute(
        "CREATE TRIGGER review_member_changed AFTER INSERT OR UPDATE OR DELETE "
        "ON project_members FOR EACH ROW EXECUTE FUNCTION review_member_changed()"
    )
    # Former members' exclusions are lost: their votes count again.
    op.execute(
        """
        SELECT review_recount_pairs(ARRAY(
            SELECT DISTINCT j.pair_id FROM judgments j
            JOIN project_rater_exclusions x
              ON x.project_id = j.project_id AND x.user_id = j.rater_id
            WHERE NOT EXISTS (
                SELECT 1 FROM project_members m
                WHERE m.project_id = x.project_id AND m.user_id = x.user_id)))
        """
    )
    op.drop_index(op.f("ix_project_rater_exclusions_user_id"), "project_rater_exclusions")
    op.drop_table("project_rater_exclusions")
