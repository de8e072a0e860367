"""Hot statements run on the psycopg connection: same parameters, rows and errors as text(),
and their rows made into the session's ORM objects (`adopt`)."""

import subprocess
import sys

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import inspect, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from pickwise.core.db import DriverSql, adopt, columns_of, driver_connection, run_pipelined
from pickwise.models import User
from tests.factories import make_user


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


async def test_a_statement_gives_rows_only_when_it_returns_columns(session: AsyncSession) -> None:
    """What `run_pipelined` reads of each statement, alone and pipelined: rows when it returns
    columns, even none of them; nothing for a command, or for a lock's `SELECT FROM`, whose
    rows have no columns (callers read such a statement as "no rows")."""
    await DriverSql("CREATE TEMP TABLE kinds (n int) ON COMMIT DROP").rows(session, {})
    statements = [
        (DriverSql("INSERT INTO kinds VALUES (:n), (:n + 1)"), {"n": 1}),
        (DriverSql("INSERT INTO kinds VALUES (:n) RETURNING n, 'x'"), {"n": 3}),
        (DriverSql("UPDATE kinds SET n = n WHERE n > :n"), {"n": 1}),
        (DriverSql("UPDATE kinds SET n = n WHERE n > :n RETURNING n"), {"n": 2}),
        (DriverSql("SELECT n FROM kinds WHERE n > :n"), {"n": 9}),
        (DriverSql("SELECT FROM kinds WHERE n > :n FOR UPDATE"), {"n": 0}),
        (DriverSql("SELECT n FROM kinds WHERE n < :n ORDER BY n"), {"n": 3}),
    ]
    expected = [[], [(3, "x")], [], [(3,)], [], [], [(1,), (2,)]]
    await DriverSql("DELETE FROM kinds").rows(session, {})
    alone = [await statement.rows(session, params) for statement, params in statements]
    assert alone == expected
    await DriverSql("DELETE FROM kinds").rows(session, {})
    assert await run_pipelined(session, statements) == expected


_BEGUN = DriverSql("INSERT INTO begun VALUES (:n) RETURNING pg_current_xact_id()::text")
_BEGUN_ROWS = text("SELECT count(*) FROM begun")


async def _begun_table(connection: AsyncConnection) -> None:
    """An empty table of the connection's own (the pool may hand out the same one again)."""
    await connection.execute(text("DROP TABLE IF EXISTS pg_temp.begun"))
    await connection.execute(text("CREATE TEMP TABLE begun (n int)"))
    await connection.commit()


async def test_statements_that_open_a_transaction_bring_its_begin(engine: AsyncEngine) -> None:
    """A transaction's first statements sent through `run_pipelined` go out with its BEGIN
    (tests/assignments/test_answer_and_next.py counts the round trips): what follows runs
    in the same transaction, which commits or rolls back as a whole, and the connection is
    left as psycopg keeps it (not in autocommit)."""
    async with engine.connect() as connection:
        await _begun_table(connection)
        driver = await driver_connection(connection)
        for ends_with_commit in (False, True):
            async with AsyncSession(bind=connection) as session:
                ((xact,),) = (await run_pipelined(session, [(_BEGUN, {"n": 1})]))[0]
                assert not driver.autocommit
                assert driver.info.transaction_status == TransactionStatus.INTRANS
                same = await session.scalar(text("SELECT pg_current_xact_id()::text"))
                assert same == xact  # one transaction
                await session.execute(text("INSERT INTO begun VALUES (2)"))
                await (session.commit() if ends_with_commit else session.rollback())
            assert driver.info.transaction_status == TransactionStatus.IDLE
            assert await connection.scalar(_BEGUN_ROWS) == (2 if ends_with_commit else 0)
            await connection.rollback()


async def test_an_error_in_a_transactions_first_statements_rolls_it_all_back(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await _begun_table(connection)
        driver = await driver_connection(connection)
        async with AsyncSession(bind=connection) as session:
            with pytest.raises(DataError):
                failing = (DriverSql("SELECT 1 / :zero"), {"zero": 0})
                await run_pipelined(session, [(_BEGUN, {"n": 1}), failing])
            assert not driver.autocommit
            assert driver.info.transaction_status == TransactionStatus.INERROR
            await session.rollback()
        assert await connection.scalar(_BEGUN_ROWS) == 0
        # The connection goes on as usual: psycopg's own BEGIN for SQLAlchemy's statements.
        await connection.execute(text("INSERT INTO begun VALUES (3)"))
        await connection.rollback()
        assert await connection.scalar(_BEGUN_ROWS) == 0


_USER_ROW = DriverSql(f"SELECT {columns_of(User, 'u')} FROM users u WHERE u.id = :id")
_USER_KEYS = [inspect(User).get_property_by_column(column).key for column in User.__table__.columns]


async def test_an_adopted_row_is_the_sessions_object_with_what_the_row_says(
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    await DriverSql("UPDATE users SET display_name = 'Renamed' WHERE id = :id").rows(
        session, {"id": user.id}
    )
    assert user.display_name != "Renamed"  # the session does not know yet
    adopted = adopt(session, User, await _USER_ROW.one(session, {"id": user.id}))
    # As a query with populate_existing: the same object, its values replaced.
    assert adopted is user and user.display_name == "Renamed"
    assert user not in session.dirty


async def test_an_adopted_row_is_persistent_and_its_changes_are_flushed(
    session: AsyncSession,
) -> None:
    user_id = (await make_user(session)).id
    session.expunge_all()
    adopted = adopt(session, User, await _USER_ROW.one(session, {"id": user_id}))
    assert inspect(adopted).persistent and not inspect(adopted).modified
    adopted.display_name = "Changed"
    await session.flush()
    assert await DriverSql("SELECT display_name FROM users WHERE id = :id").one(
        session, {"id": user_id}
    ) == ("Changed",)


async def test_a_new_adopted_row_is_as_a_query_loads_it(session: AsyncSession) -> None:
    """A row the session has no object for yet: a persistent, clean object with every column's
    value loaded (nothing expired, so reading it sends no query: the session would refuse
    to, lazily, under asyncio), just as `select()` gives it."""
    user_id = (await make_user(session)).id
    session.expunge_all()
    row = await _USER_ROW.one(session, {"id": user_id})
    adopted = adopt(session, User, row)
    state = inspect(adopted)
    assert state.persistent and not state.modified and not state.expired_attributes
    assert state.unloaded == set()
    assert state.committed_state == {}
    assert [getattr(adopted, key) for key in _USER_KEYS] == list(row)
    # Adopting the same row again gives that object, not a second one.
    assert adopt(session, User, row) is adopted
    session.expunge_all()
    loaded = await session.get(User, user_id)
    assert [getattr(loaded, key) for key in _USER_KEYS] == list(row)


def test_a_row_can_be_adopted_before_any_query() -> None:
    # The mappers are configured by the first query; `adopt` may come first in a process
    # (a worker's first request is an API token's lookup).
    code = """
from datetime import UTC, datetime
from sqlalchemy.orm import Session
from pickwise.core.db import adopt, columns_of
from pickwise.models import User

class Unit:
    sync_session = Session()

row = {"id": 7, "email": "a@x.org", "created_at": datetime.now(UTC)}
names = [column.removeprefix("u.") for column in columns_of(User, "u").split(", ")]
user = adopt(Unit(), User, [row.get(name) for name in names])
assert (user.id, user.email) == (7, "a@x.org"), (user.id, user.email)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def test_white_space_and_comments_go_but_quoted_text_stays(session: AsyncSession) -> None:
    sql = """
        SELECT  '  two  spaces -- kept'  AS "a  b",   -- a comment, dropped
                :n   + 1
    """
    statement = DriverSql(sql)
    assert statement.sql == "SELECT '  two  spaces -- kept' AS \"a  b\", %(n)s + 1"
    assert await statement.one(session, {"n": 1}) == ("  two  spaces -- kept", 2)


def test_the_hot_statements_fit_psycopgs_parsed_statement_cache() -> None:
    """psycopg parses a statement's `%(name)s` parameters again on every run when it is longer
    than its cache takes (4 kB): the claim, indented as written, was 5 kB, a regular
    expression over all of it on every lease."""
    import psycopg._queries

    import pickwise.app  # noqa: F401 -- every module of the app, with its statements
    from pickwise.assignments import repository

    limit = psycopg._queries.MAX_CACHED_STATEMENT_LENGTH
    statements = [
        value
        for name, module in list(sys.modules.items())
        if name.startswith("pickwise.")
        for value in vars(module).values()
        if isinstance(value, DriverSql)
    ]
    assert repository._CLAIM_SLOT in statements and len(statements) > 20
    too_long = [each.sql[:80] for each in statements if len(each.sql.encode()) > limit]
    assert too_long == []
