"""A unit of work reaches its psycopg connection once per transaction, and closes without
I/O machinery once its transaction ended; the connection always goes back to the pool."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.core.db import (
    DriverSql,
    driver_connection,
    get_engine,
    make_engine,
    open_unit,
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


TRANSACTION = DriverSql("SELECT pg_backend_pid(), txid_current()")
STORED = DriverSql("SELECT count(*) FROM users WHERE email = :email")


async def _stored(other: AsyncEngine, email: str) -> int:
    """Read on another pool's connection: what is committed."""
    async with unit_of_work(other) as session:
        (count,) = await STORED.one(session, {"email": email})
    return int(count)


async def test_done_then_commits_and_goes_on_in_a_new_transaction_on_the_same_connection(
    own_engine: AsyncEngine, checkouts: list[None]
) -> None:
    """The first transaction is committed (another connection sees it) before the next unit
    starts; the next one is a transaction of its own on the same connection, rolled back
    alone on error; one checkout in all, and the connection is back in the pool."""
    engine = get_engine()
    email = "done-then@example.com"
    try:
        with pytest.raises(RuntimeError):
            async with open_unit(unit_of_work) as unit:
                user = await make_user(unit.session, email=email)
                (pid, first) = await TRANSACTION.one(unit.session, {})
                next_unit = await unit.done_then(unit_of_work)
                assert await _stored(own_engine, email) == 1
                assert inspect(user).detached  # let go of, as closing the session does
                assert user.email == email
                async with next_unit as session:
                    assert session is unit.session
                    (same_pid, second) = await TRANSACTION.one(session, {})
                    assert same_pid == pid and second != first
                    await DriverSql(
                        "UPDATE users SET display_name = 'undone' WHERE email = :email"
                    ).rows(session, {"email": email})
                    raise RuntimeError("the lease failed")
        assert len(checkouts) == 1
        assert engine.sync_engine.pool.checkedout() == 0
        # The rollback undid only the second transaction, in the session's state too: the
        # user stored in the first stays a detached row, not an object never stored.
        assert inspect(user).detached and inspect(user).key is not None
        async with unit_of_work() as session:
            name = await DriverSql("SELECT display_name FROM users WHERE email = :email").one(
                session, {"email": email}
            )
            assert name != ("undone",)
    finally:
        async with unit_of_work() as session:
            await DriverSql("DELETE FROM users WHERE email = :email").rows(
                session, {"email": email}
            )


async def test_done_then_flushes_the_sessions_changes_into_the_first_transaction(
    own_engine: AsyncEngine,
) -> None:
    email = "flushed-first@example.com"
    try:
        async with open_unit(unit_of_work) as unit:
            user = await make_user(unit.session, email=email)
            user.display_name = "changed, not flushed"
            next_unit = await unit.done_then(unit_of_work)
            async with unit_of_work(own_engine) as other:
                shown = await DriverSql("SELECT display_name FROM users WHERE email = :email").one(
                    other, {"email": email}
                )
            assert shown == ("changed, not flushed",)
            async with next_unit:
                pass
    finally:
        async with unit_of_work() as session:
            await DriverSql("DELETE FROM users WHERE email = :email").rows(
                session, {"email": email}
            )


async def test_a_failed_commit_in_done_then_raises_and_stores_nothing(database_url: str) -> None:
    """A COMMIT that fails (a deferred constraint) is the caller's error, as SQLAlchemy's;
    nothing is committed and the connection goes back to the pool, usable."""
    engine = get_engine()
    with pytest.raises(IntegrityError):
        async with open_unit(unit_of_work) as unit:
            await DriverSql(
                "CREATE TEMP TABLE deferred (n int UNIQUE DEFERRABLE INITIALLY DEFERRED) "
                "ON COMMIT DROP"
            ).rows(unit.session, {})
            await DriverSql("INSERT INTO deferred VALUES (1), (1)").rows(unit.session, {})
            await unit.done_then(unit_of_work)
    assert engine.sync_engine.pool.checkedout() == 0
    async with unit_of_work() as session:
        assert await DriverSql("SELECT 1").one(session, {}) == (1,)


async def test_a_connection_lost_at_done_thens_commit_is_invalidated(
    own_engine: AsyncEngine,
) -> None:
    """Postgres gone at the COMMIT: a DBAPIError saying the connection was invalidated, and
    the pool does not hand that connection out again."""
    engine = get_engine()
    with pytest.raises(DBAPIError) as raised:
        async with open_unit(unit_of_work) as unit:
            (pid, _) = await TRANSACTION.one(unit.session, {})
            async with unit_of_work(own_engine) as other:
                await DriverSql("SELECT pg_terminate_backend(:pid)").rows(other, {"pid": pid})
            await unit.done_then(unit_of_work)
    assert raised.value.connection_invalidated
    assert engine.sync_engine.pool.checkedout() == 0
    async with unit_of_work() as session:
        (again, _) = await TRANSACTION.one(session, {})
        assert again != pid


async def test_done_then_with_other_units_commits_through_them(
    own_engine: AsyncEngine,
) -> None:
    """A unit of another kind (the tests' savepoints, a test's failing commit) ends through
    its own exit, and the next unit is a new one of that kind."""
    made: list[AsyncSession] = []

    @asynccontextmanager
    async def units() -> AsyncIterator[AsyncSession]:
        async with unit_of_work(own_engine) as session:
            made.append(session)
            yield session

    async with open_unit(units) as unit:
        await BACKEND.one(unit.session, {})
        async with await unit.done_then(units) as session:
            await BACKEND.one(session, {})
    assert len(made) == 2 and made[0] is not made[1]
    assert own_engine.sync_engine.pool.checkedout() == 0
