"""Hot statements run on the psycopg connection: same parameters, rows and errors as text()."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import DriverSql


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
