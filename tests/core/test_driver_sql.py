"""Hot statements run on the psycopg connection: same parameters, rows and errors as text()."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import DriverSql, run_pipelined


async def test_parameters_casts_and_percent_signs_read_as_in_text(session: AsyncSession) -> None:
    sql = "SELECT (:a)::int + 1, CAST(:b AS text) || '%', '50%' LIKE '5%', :a"
    expected = (await session.execute(text(sql), {"a": 41, "b": "x"})).one()
    assert await DriverSql(sql).one(session, {"a": 41, "b": "x"}) == tuple(expected)
    assert await DriverSql("SELECT 1 WHERE false").first(session, {}) is None


async def test_it_runs_in_the_sessions_transaction(session: AsyncSession) -> None:
    await DriverSql("CREATE TEMP TABLE seen (n int) ON COMMIT DROP").rows(session, {})
    await session.execute(text("INSERT INTO seen VALUES (7)"))
    assert await DriverSql("SELECT n FROM seen").rows(session, {}) == [(7,)]


async def test_errors_come_out_as_sqlalchemys(session: AsyncSession) -> None:
    with pytest.raises(DataError) as raised:
        async with session.begin_nested():
            await DriverSql("SELECT 1 / :zero").rows(session, {"zero": 0})
    assert raised.value.orig is not None and raised.value.orig.sqlstate == "22012"
    await DriverSql("CREATE TEMP TABLE once (n int PRIMARY KEY) ON COMMIT DROP").rows(session, {})
    insert = DriverSql("INSERT INTO once VALUES (:n)")
    await insert.rows(session, {"n": 1})
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await insert.rows(session, {"n": 1})
    # The session goes on after the savepoint rolled back.
    assert await DriverSql("SELECT count(*) FROM once").one(session, {}) == (1,)


async def test_pipelined_statements_run_in_order_and_answer_each(session: AsyncSession) -> None:
    await DriverSql("CREATE TEMP TABLE piped (n int) ON COMMIT DROP").rows(session, {})
    insert = DriverSql("INSERT INTO piped VALUES (:n) RETURNING n * 10")
    count = DriverSql("SELECT count(*), max(n) FROM piped")
    answers = await run_pipelined(session, [(insert, {"n": 1}), (insert, {"n": 2}), (count, {})])
    # Each statement sees what the ones before it did, as if sent one by one.
    assert answers == [[(10,)], [(20,)], [(2, 2)]]


async def test_a_pipelined_error_stops_the_rest_and_comes_out_as_sqlalchemys(
    session: AsyncSession,
) -> None:
    await DriverSql("CREATE TEMP TABLE stopped (n int) ON COMMIT DROP").rows(session, {})
    insert = DriverSql("INSERT INTO stopped VALUES (:n)")
    with pytest.raises(DataError) as raised:
        async with session.begin_nested():
            await run_pipelined(
                session,
                [
                    (insert, {"n": 1}),
                    (DriverSql("SELECT 1 / :zero"), {"zero": 0}),
                    (insert, {"n": 2}),
                ],
            )
    assert raised.value.orig is not None and raised.value.orig.sqlstate == "22012"
    assert await DriverSql("SELECT count(*) FROM stopped").one(session, {}) == (0,)
