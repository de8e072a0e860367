"""A unit of work reaches its psycopg connection once per transaction, and closes without
I/O machinery once its transaction ended; the connection always goes back to the pool."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.core.db import (
    DriverSql,
    driver_connection,
    make_engine,
    run_pipelined,
    transaction_open,
    unit_of_work,
)
from tests.factories import make_user

BACKEND = DriverSql("SELECT pg_backend_pid()")


@pytest.fixture
async def own_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[None]:
    calls: list[None] = []
    original = getattr(AsyncSession, name)

    async def counted(self: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, name, counted)
    return calls


async def test_a_transaction_asks_the_session_for_its_connection_once(
    own_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the rater loop does: its statements, one round trip after another, and whether the
    claim committed; each `session.connection()` would be a greenlet hop."""
    asked = _count_calls(monkeypatch, "connection")
    async with unit_of_work(own_engine) as session:
        await run_pipelined(session, [(BACKEND, {}), (BACKEND, {})])
        (pid,) = await BACKEND.one(session, {})
        await run_pipelined(session, [(BACKEND, {})], commit=True)
        assert await transaction_open(session)  # opened before: nothing was committed
        driver = await driver_connection(session)
        assert asked == [None]
        raw = await (await session.connection()).get_raw_connection()
        assert driver is raw.driver_connection and driver.info.backend_pid == pid


async def test_a_new_transaction_runs_on_the_connection_it_checked_out(
    own_engine: AsyncEngine,
) -> None:
    """The connection kept for a transaction is not used by the next one: after a commit the
    session's connection goes back to the pool and may be taken by another request."""
    async with unit_of_work(own_engine) as session:
        (first,) = await BACKEND.one(session, {})
        await session.commit()
        # The connection returned last is taken first (pool_use_lifo): another request holds
        # the session's old connection now.
        async with own_engine.connect() as other:
            held = await driver_connection(other)
            assert held.info.backend_pid == first
            (second,) = await BACKEND.one(session, {})
            assert second != first
            assert (await driver_connection(session)).info.backend_pid == second


async def test_a_finished_unit_closes_its_session_without_a_task(
    own_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed or rolled back, the session holds no connection: closing it only lets go of
    its objects, with no task, greenlet or round trip; the connection is back in the pool."""
    closed = _count_calls(monkeypatch, "close")
    try:
        async with unit_of_work(own_engine) as session:
            user = await make_user(session, email="closing@example.com")
        with pytest.raises(RuntimeError):
            async with unit_of_work(own_engine) as session:
                await BACKEND.one(session, {})
                raise RuntimeError("refused")
        assert closed == []
        assert own_engine.sync_engine.pool.checkedout() == 0
        assert inspect(user).detached  # closed: its objects let go, still readable
        assert user.email == "closing@example.com"
    finally:
        async with unit_of_work(own_engine) as session:
            await DriverSql("DELETE FROM users WHERE email = :email").rows(
                session, {"email": "closing@example.com"}
            )


async def test_a_unit_whose_commit_fails_gives_its_connection_back(
    own_engine: AsyncEngine,
) -> None:
    """A commit that fails (a deferred constraint) leaves the session's transaction to close
    with I/O: it is rolled back and the connection returns to the pool, usable."""
    with pytest.raises(IntegrityError):
        async with unit_of_work(own_engine) as session:
            await DriverSql(
                "CREATE TEMP TABLE deferred (n int UNIQUE DEFERRABLE INITIALLY DEFERRED) "
                "ON COMMIT DROP"
            ).rows(session, {})
            await DriverSql("INSERT INTO deferred VALUES (1), (1)").rows(session, {})
    assert own_engine.sync_engine.pool.checkedout() == 0
    async with unit_of_work(own_engine) as session:
        assert await DriverSql("SELECT 1").one(session, {}) == (1,)
