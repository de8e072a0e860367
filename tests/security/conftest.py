"""Shared by the security suites: the browser suites' live server and Chromium (from
tests/browser), and committed data that is emptied afterwards."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from psycopg.errors import DeadlockDetected
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.browser.conftest import browser, chromium_path, live_server

__all__ = ["browser", "chromium_path", "committed_engine", "empty_all_tables", "live_server"]

TRUNCATE_ATTEMPTS = 5


async def empty_all_tables(engine: AsyncEngine) -> None:
    """TRUNCATE every table. A live server's webhook worker may hold a lock that makes the
    TRUNCATE a deadlock victim; Postgres then aborts it, and it is simply tried again."""
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


@pytest.fixture
async def committed_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose writes a live server sees; every table is emptied afterwards."""
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await empty_all_tables(engine)
        await engine.dispose()
