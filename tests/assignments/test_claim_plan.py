"""How the claim finds the prompt a rater saw last: one probe of the (rater, project, id)
index, also in the generic plan the app runs once a connection has prepared the claim."""

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.repository import CHOSEN_SLOT
from tests.factories import add_member, make_pairs, make_project, make_user


def generic(sql: str) -> str:
    """`sql` with $1, $2, … for its :name parameters, for EXPLAIN (GENERIC_PLAN)."""
    numbers: dict[str, int] = {}
    return re.sub(r"(?<!:):(\w+)", lambda m: f"${numbers.setdefault(m[1], len(numbers) + 1)}", sql)


async def test_a_rater_new_to_the_project_is_not_looked_for_through_every_assignment(
    session: AsyncSession,
) -> None:
    """Another rater's many assignments are not stepped over: the primary key (newest first,
    any rater) is never the way to the rater's last assignment."""
    project = await make_project(session)
    pairs = await make_pairs(session, project, 400)
    busy = [await make_user(session) for _ in range(16)]
    for rater in [*busy, await make_user(session)]:
        await add_member(session, project, rater)
    # The busy raters' assignments interleaved, as raters working side by side make them.
    await session.execute(
        text(
            """
            INSERT INTO assignments (project_id, pair_id, rater_id, status, left_side, is_gold,
                                     shown_at, lease_expires_at, completed_at)
            SELECT :project_id, p.id, r.id, 'revoked', 'a', false, now(), now(), now()
            FROM unnest(CAST(:pair_ids AS bigint[])) AS p(id)
            CROSS JOIN unnest(CAST(:rater_ids AS bigint[])) AS r(id)
            ORDER BY p.id, r.id
            """
        ),
        {
            "project_id": project.id,
            "pair_ids": [pair.id for pair in pairs],
            "rater_ids": [rater.id for rater in busy],
        },
    )
    await session.execute(text("ANALYZE assignments"))
    statement = f"EXPLAIN (GENERIC_PLAN) WITH {generic(CHOSEN_SLOT)} SELECT id FROM slot"
    plan = "\n".join(await session.scalars(text(statement.replace(":", r"\:"))))
    assert "ix_assignments_rater_project_recent" in plan
    assert "pk_assignments" not in plan
