"""Bulk curation in SQL: the pairs an action applies to are fixed first (a temporary table,
dropped at commit), so every statement of the action acts on the same pairs.

Lock order (assignments.repository): the project row first (one curation at a time per
project, and none while k changes), then slots and assignments (making pairs gold), then
the pair rows, then their flags; the summaries follow by trigger.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.review.sql_filters import Conditions
from pickwise.vocabulary import CanonicalSide, FlagResolution, PairStatus

_LOCK_PROJECT = text("SELECT id FROM projects WHERE id = :project_id FOR NO KEY UPDATE")
_NEW_SELECTION = (
    text(
        "CREATE TEMPORARY TABLE IF NOT EXISTS review_selection (pair_id bigint PRIMARY KEY) "
        "ON COMMIT DROP"
    ),
    text("DELETE FROM review_selection"),
)
_SELECTED = "SELECT pair_id FROM review_selection"


async def lock_project(session: AsyncSession, project_id: int) -> None:
    await session.execute(_LOCK_PROJECT, {"project_id": project_id})


async def select(
    session: AsyncSession, project_id: int, where: Conditions, params: dict[str, object]
) -> int:
    """Fix the pairs matching `where` as the action's selection; returns how many."""
    for statement in _NEW_SELECTION:
        await session.execute(statement)
    result = await session.execute(
        text(
            "INSERT INTO review_selection (pair_id) SELECT s.pair_id FROM pair_summaries s "
            f"WHERE s.project_id = :project_id AND {where.sql}"
        ),
        {**params, **where.params, "project_id": project_id},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def set_excluded(session: AsyncSession, excluded: bool) -> int:
    result = await session.execute(
        text(
            f"UPDATE pairs SET excluded = :excluded WHERE id IN ({_SELECTED}) "
            "AND excluded <> :excluded"
        ),
        {"excluded": excluded},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def raise_votes_wanted(session: AsyncSession, votes: int) -> int:
    """Selected non-gold pairs want at least `votes` judgments; returns how many changed."""
    result = await session.execute(
        text(
            f"UPDATE pairs SET votes_wanted = :votes WHERE id IN ({_SELECTED}) "
            "AND NOT is_gold AND coalesce(votes_wanted, 0) < :votes"
        ),
        {"votes": votes},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pairs_to_make_gold(session: AsyncSession, answer: str) -> list[int]:
    """Selected pairs that are not yet gold with this answer."""
    rows = await session.scalars(
        text(
            f"""
            SELECT id FROM pairs
            WHERE id IN ({_SELECTED})
              AND gold_winner_id IS DISTINCT FROM
                  CASE WHEN :answer = '{CanonicalSide.A}' THEN response_a_id ELSE response_b_id END
            ORDER BY id
            """
        ),
        {"answer": answer},
    )
    return list(rows)


async def make_gold(session: AsyncSession, pair_ids: list[int], answer: str) -> None:
    await session.execute(
        text(
            f"""
            UPDATE pairs
            SET is_gold = true,
                gold_winner_id = CASE WHEN :answer = '{CanonicalSide.A}' THEN response_a_id
                                      ELSE response_b_id END
            WHERE id = ANY(:pair_ids)
            """
        ),
        {"pair_ids": pair_ids, "answer": answer},
    )


async def resolve_flags(session: AsyncSession, resolution: str, now: object) -> int:
    """Selected pairs with open flags go back to the queue (restored) or out of it
    (removed), and their open flags are resolved; returns how many pairs."""
    status = PairStatus.ACTIVE if resolution == FlagResolution.RESTORED else PairStatus.REMOVED
    result = await session.execute(
        text(
            f"""
            UPDATE pairs SET status = :status
            WHERE id IN (
                SELECT DISTINCT f.pair_id FROM pair_flags f
                WHERE f.pair_id IN ({_SELECTED}) AND f.resolution IS NULL
            )
            """
        ),
        {"status": status},
    )
    await session.execute(
        text(
            f"""
            UPDATE pair_flags SET resolution = :resolution, resolved_at = :now
            WHERE pair_id IN ({_SELECTED}) AND resolution IS NULL
            """
        ),
        {"resolution": resolution, "now": now},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
