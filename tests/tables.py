"""Emptying the test database after tests that commit (through live servers or the app)."""

import asyncio

from psycopg.errors import DeadlockDetected
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

TRUNCATE_ATTEMPTS = 5


async def empty_all_tables(engine: AsyncEngine) -> None:
    """TRUNCATE every table. A live server's background work (the webhook worker, the search
    catch-up) may hold a lock that makes the TRUNCATE a deadlock victim; Postgres then aborts
    it, and it is simply tried again."""
    for attempt in range(1, TRUNCATE_ATTEMPTS + 1):
        try:
            async with engine.begin() as conn:
                tables = (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "AND tablename <> 'alembic_version'"
                        )
                    )
                ).scalars()
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, DeadlockDetected) or attempt == TRUNCATE_ATTEMPTS:
                raise
            await asyncio.sleep(0.2 * attempt)
