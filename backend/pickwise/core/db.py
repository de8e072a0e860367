import re
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import SessionTransaction, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

from pickwise.core.config import get_settings
from pickwise.core.driver_sql import psycopg_sql
from pickwise.core.embedded_pg import get_database, to_sqlalchemy_url
from pickwise.core.errors import PickwiseError

Model = TypeVar("Model")


def make_engine(url: str, *, pool_size: int | None = None) -> AsyncEngine:
    settings = get_settings()
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # The connection returned last is taken first. At light load (raters thinking
        # between judgments) a request's next unit of work, such as the next lease after an
        # answer, then runs on the Postgres backend that has just run the last one, awake and
        # warm, instead of on the one idle longest: the paced rater loop's round trips took a
        # quarter less time (docs/benchmarks.md, "The paced next-pair p99, timed").
        pool_use_lifo=True,
        # No pre-ping: it is a round trip before every request. A connection that died
        # (Postgres restarted) fails its request with a 503, and SQLAlchemy then invalidates
        # the whole pool, so the next requests get fresh connections.
        pool_pre_ping=False,
        # Statement parameters (prompts, password hashes) never reach logs or tracebacks.
        hide_parameters=True,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


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
def get_generation_engine() -> AsyncEngine:
    """Live replies store their outcome and check their stop flags through a small pool of
    their own: with 100 conversations streaming, a few hundred replies end a minute, and
    storing them through the requests' pool left the raters of other projects waiting
    seconds for a connection (and some refused). A store that waits here waits only on
    other stores; it tries again if it times out (conversations/generation.py)."""
    settings = get_settings()
    return create_async_engine(
        get_database().url,
        pool_size=settings.generation_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
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


ENGINES = (get_read_engine, get_background_engine, get_generation_engine, get_engine)


async def dispose_engines() -> None:
    """Close the connection pools this process opened (at shutdown); opens none."""
    for engine in ENGINES:
        if engine.cache_info().currsize:
            await engine().dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine | None = None) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits at the end, or rolls back on error: the one place
    that commits. Requests get one each (`get_session`); a request that waits on something
    slow (a model's reply) uses several short ones around the wait instead (`UnitsDep`).
    `engine` is the requests' pool unless told otherwise."""
    session = session_factory(engine or get_engine())()
    try:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
    finally:
        await close_session(session)


async def close_session(session: AsyncSession) -> None:
    """`session.close()`, as `async with session` ends it, but without its I/O machinery when
    it needs none: a session whose transaction ended (committed or rolled back) holds no
    connection, and closing it only lets go of its objects. `async with` runs `close()` in
    a task of its own (so that a cancellation cannot interrupt it) and that in a greenlet:
    an extra turn of the event loop and ~0.1 ms of CPU per unit of work, two per judgment of
    the rater loop (docs/benchmarks.md, "i31a")."""
    if session.in_transaction():
        await session.__aexit__(None, None, None)
    else:
        session.sync_session.close()


def generation_unit_of_work() -> AbstractAsyncContextManager[AsyncSession]:
    """`unit_of_work` on the generation pool (`get_generation_engine`)."""
    return unit_of_work(get_generation_engine())


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with unit_of_work() as session:
        yield session


Units = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def get_units() -> Units:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop (two
    # context switches and the GIL passed back and forth) on every request that uses it.
    return unit_of_work


@dataclass
class OpenUnit:
    """A unit of work opened before the route runs (its dependencies, such as who asks, use
    it), which the route ends itself (`done`) when it goes on in other units afterwards."""

    session: AsyncSession
    _exit: AsyncExitStack

    async def done(self) -> None:
        """Commit now, not at the end of the request (the unit ends once: later, nothing)."""
        await self._exit.aclose()

    async def done_then(self, units: Units) -> AbstractAsyncContextManager[AsyncSession]:
        """Commit now, as `done` (an error here is the commit's: nothing was stored), and the
        unit of work to go on in afterwards, as `units()` gives one: a transaction of its
        own, committed when its block ends or rolled back on error; so a failure in it never
        undoes what was committed here.

        With the requests' own units (`unit_of_work`), the next unit is this one's session
        and connection in a new transaction: the commit here is psycopg's COMMIT on the
        connection (the session's ORM changes flushed first), waited for, and the session
        lets go of its objects, as closing it does; the next unit's statements then begin the
        connection's next transaction, and its end (`unit_of_work`'s commit or rollback, and
        the connection's return to the pool) is SQLAlchemy's as usual. A new unit would make
        a session, check a connection out of the pool and begin it, and this one would commit
        through the session's state machine, a greenlet hop and the connection's return:
        ~0.3 ms of CPU a judgment of the rater loop (docs/benchmarks.md, "i33c"). Units of
        another kind (the tests' savepoints, a test's failing commit) commit through their
        own exit, then `units()` gives the next."""
        if units is unit_of_work and await _commit_held(self.session):
            return self._continued()
        await self.done()
        return units()

    @asynccontextmanager
    async def _continued(self) -> AsyncIterator[AsyncSession]:
        """This unit again, after `_commit_held`: it ends (commits, or rolls back on error)
        with the block."""
        try:
            yield self.session
        except BaseException:
            await self._exit.__aexit__(*sys.exc_info())
            raise
        await self._exit.aclose()


@asynccontextmanager
async def open_unit(units: Units) -> AsyncIterator[OpenUnit]:
    """A unit of work the block ends itself (`done`) when it goes on without it; an error
    before that rolls it back."""
    async with AsyncExitStack() as exit_stack:
        session = await exit_stack.enter_async_context(units())
        yield OpenUnit(session, exit_stack)


async def _commit_held(session: AsyncSession) -> bool:
    """Commits the session's transaction on its psycopg connection, which stays checked out
    and the session's, and lets go of the session's objects (detached, as a closed session
    leaves them); the session's next statements begin a new transaction on it (`run_pipelined`
    sends the BEGIN). False, committing nothing, when the session holds no transaction of
    its own to commit so (none open, or a savepoint in it).

    SQLAlchemy's transaction stays open over both: its own commit or rollback later finds
    psycopg's state (a COMMIT with nothing open sends nothing; a rollback rolls back only
    what came after this commit), and returns the connection to the pool, invalidated if
    it broke. pickwise listens to no session or connection events, which this commit does
    not fire (`before_commit`, `after_commit`, `commit`)."""
    sync = session.sync_session
    if not sync.in_transaction() or sync.get_nested_transaction() is not None:
        return False
    if sync.new or sync.dirty or sync.deleted:
        await session.flush()
    connection, driver = await _session_driver(session)
    transaction = sync.get_transaction()
    try:
        await driver.commit()
    except psycopg.Error as exc:
        raise await _as_sqlalchemy_error(connection, driver, exc, "COMMIT", None) from exc
    sync.expunge_all()
    if transaction is not None:
        # What a rollback restores starts here, as for a transaction that has just begun
        # (SQLAlchemy's own snapshot, with no flush): a rollback of the next transaction
        # would otherwise make transient the objects this one stored.
        transaction._take_snapshot()
    return True


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
    if isinstance(over, AsyncSession):
        return (await _session_driver(over))[1]
    return await _driver_of(over)


async def _driver_of(connection: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    sync = connection.sync_connection
    if _usable(connection) and sync is not None:
        # Checked out and valid: read without `get_raw_connection`'s greenlet hop.
        raw = sync.connection
    else:
        raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


def _usable(connection: AsyncConnection) -> bool:
    """Whether the connection is checked out and not invalidated (its DBAPI connection is
    there to read without I/O)."""
    sync = connection.sync_connection
    return sync is not None and not (sync.closed or sync.invalidated)


@dataclass(frozen=True)
class _HeldConnection:
    """The connection a session's transaction holds, and the psycopg connection under it."""

    transaction: SessionTransaction  # the session's transaction
    savepoint: SessionTransaction | None  # and its savepoint (begin_nested) then, if any
    connection: AsyncConnection
    driver: psycopg.AsyncConnection[Any]


_HELD_CONNECTION = "pickwise.held_connection"  # its key in `AsyncSession.info`


async def _session_driver(
    session: AsyncSession,
) -> tuple[AsyncConnection, psycopg.AsyncConnection[Any]]:
    """The session's connection (begun, as `session.connection()` gives it) and the psycopg
    connection under it.

    Once the session's transaction holds its connection, they stay the same until that
    transaction ends, so they are kept (in the session's `info`) and given again while the
    same transaction, and savepoint, is active: `session.connection()` is a greenlet hop
    every time (~15 µs of CPU with the proxy it returns), and the rater loop asked for the
    connection eight times a judgment (docs/benchmarks.md, "i31a"). A new savepoint asks
    again: its SAVEPOINT is sent when it first asks for the connection.
    """
    held = session.info.get(_HELD_CONNECTION)
    transaction = session.sync_session.get_transaction()
    savepoint = session.sync_session.get_nested_transaction()
    if (
        held is not None
        and transaction is not None
        and held.transaction is transaction
        and held.savepoint is savepoint
        and transaction.is_active
        and (savepoint is None or savepoint.is_active)
        and _usable(held.connection)
    ):
        return held.connection, held.driver
    connection = await session.connection()
    driver = await _driver_of(connection)
    transaction = session.sync_session.get_transaction()
    if transaction is not None:
        savepoint = session.sync_session.get_nested_transaction()
        session.info[_HELD_CONNECTION] = _HeldConnection(transaction, savepoint, connection, driver)
    return connection, driver


# A quoted literal or identifier (kept as written), a `--` comment, or a run of white space.
_QUOTED_COMMENT_OR_SPACE = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(?:\s|--[^\n]*)+""")


def compact_sql(sql: str) -> str:
    """`sql` with its comments dropped and each run of white space outside quotes made one
    space. psycopg parses a statement's parameters once and caches the result only for
    statements of up to 4 kB (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`); the claim,
    written indented, was 5 kB and was parsed again (a regular expression over all of it) on
    every run, 0.1–0.2 ms of CPU a lease. Compacted it is 2.6 kB."""
    return _QUOTED_COMMENT_OR_SPACE.sub(lambda found: found[1] or " ", sql).strip()


class DriverSql:
    """A statement of the rater loop's hot path, run straight on the psycopg connection under
    the session, in its transaction.

    SQLAlchemy's execution of a text() statement costs about 0.15–0.2 ms of CPU more than
    psycopg's own (statement cache lookup, execution context, result wrapping), and the rater
    loop runs several a request. Errors come out as SQLAlchemy's (`DBAPIError` subclasses,
    `.orig` the psycopg error) and a broken connection is invalidated, as SQLAlchemy does,
    so error handling and the pool behave the same.
    """

    def __init__(self, sql: str) -> None:
        """`sql` as for text(): `:name` parameters."""
        self.sql = psycopg_sql(compact_sql(sql))

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return (await run_pipelined(session, [(self, params)]))[0]

    async def first(self, session: AsyncSession, params: dict[str, Any]) -> tuple[Any, ...] | None:
        rows = await self.rows(session, params)
        return rows[0] if rows else None

    async def one(self, session: AsyncSession, params: dict[str, Any]) -> tuple[Any, ...]:
        rows = await self.rows(session, params)
        if len(rows) != 1:
            raise RuntimeError(f"expected one row, got {len(rows)}")
        return rows[0]


async def run_pipelined(
    session: AsyncSession,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]],
    *,
    commit: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """The statements' rows, the statements sent together and answered together (psycopg's
    pipeline mode): one round trip for all of them instead of one each. Postgres still runs
    them one after the other, each with a snapshot of its own (read committed), so a
    statement sees what committed while an earlier one waited for a lock, as if they had
    been sent one by one. When they are the transaction's first, its BEGIN goes out with
    them (`_begins_with`), in the same round trip. The first error stops the rest and is
    raised as `rows` raises it.

    `commit`: when they are the transaction's first (so it holds nothing else), its COMMIT
    goes out after them in that round trip too (`transaction_open` then says False, and the
    session's own COMMIT finds nothing to commit and sends nothing: psycopg). In a
    transaction that was open before (a savepoint, as in the tests), nothing is committed.
    An error stops the COMMIT with the rest: the transaction stays open, aborted.
    """
    connection, driver = await _session_driver(session)
    begins = _opens_transaction(driver)
    try:
        if len(calls) == 1 and not begins:
            cursors = [await driver.execute(calls[0][0].sql, calls[0][1])]
        else:
            async with driver.pipeline(), _begins_with(driver, begins):
                cursors = [await driver.execute(call.sql, params) for call, params in calls]
                if commit and begins:
                    await driver.execute(b"COMMIT")
        return [await cursor.fetchall() if _has_rows(cursor) else [] for cursor in cursors]
    except psycopg.Error as exc:
        statement = "; ".join(call.sql for call, _ in calls)
        params = calls[0][1] if len(calls) == 1 else None
        raise await _as_sqlalchemy_error(connection, driver, exc, statement, params) from exc


async def _as_sqlalchemy_error(
    connection: AsyncConnection,
    driver: psycopg.AsyncConnection[Any],
    exc: psycopg.Error,
    statement: str,
    params: dict[str, Any] | None,
) -> StatementError:
    """psycopg's error as SQLAlchemy raises it (a `DBAPIError` subclass, `.orig` the psycopg
    error), the connection invalidated if it broke, as SQLAlchemy does."""
    broken = driver.broken
    if broken:
        await connection.invalidate(exc)
    return DBAPIError.instance(statement, params, exc, psycopg.Error, connection_invalidated=broken)


def _has_rows(cursor: psycopg.AsyncCursor[Any]) -> bool:
    """Whether the cursor's statement returned columns to read, as a non-empty
    `cursor.description` says (so a lock's `SELECT FROM … FOR UPDATE` gives no rows), but
    without building the description: a `Column` per column, its type looked up, ~2 µs
    each, for rows read by position (~35 columns a judgment; docs/benchmarks.md, "i28c")."""
    result = cursor.pgresult
    return result is not None and result.nfields > 0


async def transaction_open(session: AsyncSession) -> bool:
    """Whether the session's connection is in a transaction (after `run_pipelined(...,
    commit=True)`: whether it was not committed)."""
    driver = (await _session_driver(session))[1]
    return driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def _opens_transaction(driver: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the next statement on `driver` opens its transaction with psycopg's plain
    BEGIN (no isolation level, read-only or deferrable of its own: those BEGINs are left to
    psycopg)."""
    return (
        not driver.autocommit
        and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        and driver.isolation_level is None
        and driver.read_only is None
        and driver.deferrable is None
    )


@asynccontextmanager
async def _begins_with(driver: psycopg.AsyncConnection[Any], begins: bool) -> AsyncIterator[None]:
    """Inside a pipeline: with `begins`, the transaction's BEGIN queued first, to go out with
    the statements queued after it.

    psycopg opens a transaction by sending BEGIN and waiting for its answer, in pipeline mode
    too (it syncs after it): a round trip of its own at the start of every transaction, one
    in seven of a paced judgment's (docs/benchmarks.md, "i26c"). It sends none while the
    connection is in autocommit mode, so for the statements queued here it is told so, and
    the BEGIN is queued as a statement of ours; the flag is set back before anything else
    can use the connection, and the transaction goes on as psycopg's own: its COMMIT or
    ROLLBACK (SQLAlchemy's) ends it, and an error in the pipeline leaves it aborted, to be
    rolled back, as any failed statement does. (The flag is set on psycopg's attribute:
    its public setter refuses to change it once the transaction is open.)
    """
    if not begins:
        yield
        return
    driver._autocommit = True
    try:
        await driver.execute(b"BEGIN")
        yield
    finally:
        driver._autocommit = False


# --- ORM objects of rows read over psycopg ---------------------------------------------------


_COLUMN_KEYS: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def _column_keys(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) of each of the model's table columns, in table order."""
    if model not in _COLUMN_KEYS:
        # A query configures the mappers on first use; `adopt` may come before any query.
        configure_mappers()
        mapper = sa_inspect(model)
        _COLUMN_KEYS[model] = tuple(
            (mapper.get_property_by_column(column).key, column.name)
            for column in mapper.local_table.columns
        )
    return _COLUMN_KEYS[model]


def columns_of(model: type[Any], alias: str) -> str:
    """The select list of all the model's columns from `alias`, in the order `adopt` reads."""
    return ", ".join(f"{alias}.{name}" for _, name in _column_keys(model))


def column_count(model: type[Any]) -> int:
    return len(_column_keys(model))


def column_index(model: type[Any], key: str) -> int:
    """Where the attribute `key` is in `columns_of`'s select list."""
    return [attribute for attribute, _ in _column_keys(model)].index(key)


def as_written(obj: Any, **values: Any) -> None:
    """Values a statement sent straight to Postgres wrote into `obj`'s row, set on the loaded
    object as already stored: it follows the row, and the session does not write them again."""
    for name, value in values.items():
        set_committed_value(obj, name, value)


@dataclass(frozen=True)
class _Adoption:
    """What `adopt` needs of a model, worked out once per model."""

    mapper: Any
    keys: tuple[str, ...]
    primary_key_at: tuple[int, ...]  # where the primary key's columns are in a row


_ADOPTIONS: dict[type[Any], _Adoption] = {}


def _adoption(model: type[Any]) -> _Adoption:
    if model not in _ADOPTIONS:
        keys = tuple(key for key, _ in _column_keys(model))
        mapper = sa_inspect(model)
        primary_key_at = tuple(
            keys.index(mapper.get_property_by_column(column).key) for column in mapper.primary_key
        )
        _ADOPTIONS[model] = _Adoption(mapper, keys, primary_key_at)
    return _ADOPTIONS[model]


def adopt(session: AsyncSession, model: type[Model], values: Sequence[Any]) -> Model:
    """The ORM object of a row read over psycopg (`columns_of` in a `DriverSql`), as a query
    with `populate_existing` gives it: the session's own object for that row with these
    values, or a new persistent one. Changes made to it later are flushed as usual."""
    adoption = _adoption(model)
    mapper, keys = adoption.mapper, adoption.keys
    identity = mapper.identity_key_from_primary_key([values[at] for at in adoption.primary_key_at])
    sync = session.sync_session
    found = sync.identity_map.get(identity)
    if found is not None:
        for key, value in zip(keys, values, strict=True):
            set_committed_value(found, key, value)
        return found  # type: ignore[no-any-return]
    target = mapper.class_manager.new_instance()
    # A new object's values go straight into its dict: `make_transient_to_detached` marks them
    # all as loaded from the row at once, where `set_committed_value` did so column by column
    # (the rater loop adopts three rows, 51 columns, a judgment; a third of the CPU:
    # docs/benchmarks.md, "i28c").
    instance_dict(target).update(zip(keys, values, strict=True))
    make_transient_to_detached(target)
    sync.add(target)
    return target  # type: ignore[no-any-return]
