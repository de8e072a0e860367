from dataclasses import dataclass
from functools import lru_cache

from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.metrics import ProjectSlots
from pickwise.core.migrations import alembic_config
from pickwise.health import repository

DATABASE_ERRORS = (DBAPIError, PoolTimeoutError)


@lru_cache
def migration_heads() -> frozenset[str]:
    """The newest migration(s) this code ships."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str


async def readiness(session: AsyncSession) -> Readiness:
    """Ready = the database answers and its schema is the one this code expects."""
    try:
        applied = await repository.applied_revisions(session)
    except DATABASE_ERRORS:
        await session.rollback()
        return Readiness(False, "The database is unreachable.")
    expected = migration_heads()
    if applied != expected:
        return Readiness(
            False,
            f"The database schema is at {sorted(applied) or 'no migration'}, this code expects "
            f"{sorted(expected)}; run `pickwise db upgrade`.",
        )
    return Readiness(True, f"The database is reachable and at migration {', '.join(expected)}.")


async def slots_or_none(session: AsyncSession) -> list[ProjectSlots] | None:
    """Remaining slots per project, or None when the database cannot say (metrics still
    show everything else)."""
    try:
        return await repository.remaining_slots(session)
    except DATABASE_ERRORS:
        await session.rollback()
        return None
