from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Pair, PairFlag, Prompt


async def open_flags(
    session: AsyncSession, project_id: int, limit: int
) -> Sequence[tuple[PairFlag, str, list[Any]]]:
    """The project's unresolved flags with their pair's status and prompt turns, by pair."""
    rows = await session.execute(
        select(PairFlag, Pair.status, Prompt.turns)
        .join(Pair, Pair.id == PairFlag.pair_id)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .where(PairFlag.project_id == project_id, PairFlag.resolution.is_(None))
        .order_by(PairFlag.pair_id, PairFlag.id)
        .limit(limit)
    )
    return [(flag, status, turns) for flag, status, turns in rows]
