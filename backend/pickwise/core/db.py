from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any

import psycopg
from fastapi import Depends
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pickwise.core.config import get_settings
from pickwise.core.embedded_pg import ResolvedDatabase, resolve_database, to_sqlalchemy_url
from pickwise.core.errors import PickwiseError


def make_engine(url: str, *, pool_size: int | None = None) -> AsyncEngine:
    settings = get_settings()
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping: it is a round trip before every request. A connection that died
        # (Postgres restarted) fails its request with a 503, and SQLAlchemy then invalidates
        # the whole pool, so the next requests get fresh connections.
        pool_pre_ping=False,
        # Statement parameters (prompts, password hashes) never reach logs or tracebacks.
        hide_parameters=True,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


@lru_cache
def get_database() -> ResolvedDatabase:
    """The database of this process, from the settings (see `resolve_database`)."""
    return resolve_database(get_settings())


@lru_cache
def get_engine() -> AsyncEngine:
    return make_engine(get_database().url)


@lru_cache
def get_background_engine() -> AsyncEngine:
    """Background work (webhook deliveries) gets its own small pool, so it never competes
    with requests for connections under load."""
    settings = get_settings()
    return create_async_engine(
        get_database().url,
        pool_size=1,
        max_overflow=1,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


@lru_cache
def get_read_engine() -> AsyncEngine:
    """Exports and analytics may go to a read replica."""
    settings = get_settings()
    if settings.read_database_url:
        return make_engine(to_sqlalchemy_url(settings.read_database_url))
    return get_engine()


ENGINES = (get_read_engine, get_background_engine, get_engine)


async def dispose_engines() -> None:
    """Close the connection pools this process opened (at shutdown); opens none."""
    for engine in ENGINES:
        if engine.cache_info().currsize:
            await engine().dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits at the end, or rolls back on error: the one place
    that commits. Requests get one each (`get_session`); a request that waits on something
    slow (a model's reply) uses several short ones around the wait instead (`UnitsDep`)."""
    async with session_factory(get_engine())() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with unit_of_work() as session:
        yield session


# scope="function": the commit finishes before the response is sent, so an acknowledged
# judgment is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

Units = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def get_units() -> Units:
    return unit_of_work


# For requests that must hold no transaction while they wait (live conversations): each
# `async with units() as session:` is one short transaction, committed at its end.
UnitsDep = Annotated[Units, Depends(get_units)]


async def add_unique(session: AsyncSession, row: object, conflict: PickwiseError) -> None:
    """Insert `row` in a savepoint. When a unique constraint refuses it (a concurrent request
    got there first), `conflict` is raised and the session stays usable."""
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict from exc


async def driver_connection(over: AsyncConnection | AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a SQLAlchemy connection or session, in its transaction:
    for what SQLAlchemy does not do (COPY, server-side cursors with typed binary rows)."""
    connection = await over.connection() if isinstance(over, AsyncSession) else over
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver
