from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.metrics import ProjectSlots
from pickwise.vocabulary import SlotState


async def applied_revisions(session: AsyncSession) -> set[str]:
    """The migrations the database says it is at; empty if it was never migrated."""
    exists = await session.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return set()
    return set((await session.scalars(text("SELECT version_num FROM alembic_version"))).all())


async def remaining_slots(session: AsyncSession) -> list[ProjectSlots]:
    """Per live project: slots a rater could take now, and slots under a live lease."""
    # A scrape must never pile up behind a slow query.
    await session.execute(text("SET LOCAL statement_timeout = '5s'"))
    rows = await session.execute(
        text(
            f"""
            SELECT p.slug,
                   count(s.id) FILTER (
                       WHERE s.state = '{SlotState.OPEN}' OR s.lease_expires_at <= now()
                   ),
                   count(s.id) FILTER (
                       WHERE s.state = '{SlotState.LEASED}' AND s.lease_expires_at > now()
                   )
            FROM projects p
            LEFT JOIN pair_slots s ON s.project_id = p.id AND s.state <> '{SlotState.DONE}'
            WHERE NOT p.is_archived
            GROUP BY p.slug
            ORDER BY p.slug
            """
        )
    )
    return [ProjectSlots(project=slug, open=open_, leased=leased) for slug, open_, leased in rows]
