from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import GenerationEndpoint


async def endpoints_of(
    session: AsyncSession, project_id: int, *, active_only: bool = False
) -> list[GenerationEndpoint]:
    statement = select(GenerationEndpoint).where(GenerationEndpoint.project_id == project_id)
    if active_only:
        statement = statement.where(GenerationEndpoint.is_active)
    return list((await session.scalars(statement.order_by(GenerationEndpoint.id))).all())
