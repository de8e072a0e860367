from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Judgment, PoolParticipant, ProjectRaterExclusion, RaterPool, User


async def pool_by_token_hash(
    session: AsyncSession, token_hash: str, *, lock: bool = False
) -> RaterPool | None:
    statement = select(RaterPool).where(RaterPool.token_hash == token_hash)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement)


async def list_pools(session: AsyncSession, project_id: int) -> list[tuple[RaterPool, int, int]]:
    """Each pool with its number of participants and of those marked complete."""
    counts = (
        select(
            PoolParticipant.pool_id,
            func.count().label("participants"),
            func.count(PoolParticipant.completed_at).label("completed"),
        )
        .group_by(PoolParticipant.pool_id)
        .subquery()
    )
    result = await session.execute(
        select(
            RaterPool,
            func.coalesce(counts.c.participants, 0),
            func.coalesce(counts.c.completed, 0),
        )
        .outerjoin(counts, counts.c.pool_id == RaterPool.id)
        .where(RaterPool.project_id == project_id)
        .order_by(RaterPool.id)
    )
    return [(row[0], int(row[1]), int(row[2])) for row in result]


async def participant_count(session: AsyncSession, pool_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(PoolParticipant).where(PoolParticipant.pool_id == pool_id)
    )
    return int(count or 0)


async def find_participant(
    session: AsyncSession, pool_id: int, external_id: str
) -> PoolParticipant | None:
    return await session.scalar(
        select(PoolParticipant).where(
            PoolParticipant.pool_id == pool_id, PoolParticipant.external_id == external_id
        )
    )


async def participant_in_project(
    session: AsyncSession, project_id: int, user_id: int
) -> tuple[PoolParticipant, RaterPool] | None:
    row = (
        await session.execute(
            select(PoolParticipant, RaterPool)
            .join(RaterPool, RaterPool.id == PoolParticipant.pool_id)
            .where(PoolParticipant.user_id == user_id, RaterPool.project_id == project_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True)
class ParticipantRow:
    user: User
    participant: PoolParticipant
    judgments: int
    excluded: bool


async def participants(
    session: AsyncSession, pool: RaterPool, *, limit: int, offset: int
) -> list[ParticipantRow]:
    judged = (
        select(func.count())
        .where(Judgment.rater_id == PoolParticipant.user_id, Judgment.project_id == pool.project_id)
        .scalar_subquery()
    )
    result = await session.execute(
        select(User, PoolParticipant, judged, ProjectRaterExclusion.user_id.is_not(None))
        .join(PoolParticipant, PoolParticipant.user_id == User.id)
        .outerjoin(
            ProjectRaterExclusion,
            (ProjectRaterExclusion.user_id == User.id)
            & (ProjectRaterExclusion.project_id == pool.project_id),
        )
        .where(PoolParticipant.pool_id == pool.id)
        .order_by(PoolParticipant.id)
        .limit(limit)
        .offset(offset)
    )
    return [ParticipantRow(row[0], row[1], int(row[2]), bool(row[3])) for row in result]
