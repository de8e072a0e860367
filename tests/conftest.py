"""Tests run on real Postgres: the embedded server (or DATABASE_URL's), one migrated test
database per run, and each test inside a transaction that is rolled back."""

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from tests.tables import empty_all_tables

ROOT = Path(__file__).resolve().parents[1]
# One database per run, so runs on one server (several checkouts, CI) never collide.
TEST_DATABASE = f"pickwise_test_{os.getpid()}"

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("PICKWISE_DATA_DIR", str(ROOT / ".pickwise-test"))


def reread_settings() -> None:
    """Forget the cached settings, database and engines (without closing the engines), so
    the next use reads the environment again."""
    from pickwise.core.config import get_settings
    from pickwise.core.db import ENGINES, get_database

    get_settings.cache_clear()
    get_database.cache_clear()
    for engine in ENGINES:
        engine.cache_clear()


def _server_url() -> str:
    """libpq URL of a maintenance database on the server the tests use."""
    from pickwise.core.embedded_pg import start_embedded, to_libpq_url

    external = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if external:
        return to_libpq_url(external)
    return start_embedded(Path(os.environ["PICKWISE_DATA_DIR"]))


def _database_url(server_url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + name))


def _recreate(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a freshly migrated test database, dropped after the run."""
    from pickwise.core.embedded_pg import to_sqlalchemy_url
    from pickwise.core.migrations import upgrade_head

    _recreate(server_url, TEST_DATABASE)
    url = to_sqlalchemy_url(_database_url(server_url, TEST_DATABASE))
    upgrade_head(url)
    # The app under test (and anything it spawns) uses the same database.
    os.environ["DATABASE_URL"] = url
    reread_settings()
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def app(session: AsyncSession):  # type: ignore[no-untyped-def]
    from pickwise.analytics.router import analytics_connection
    from pickwise.app import create_app
    from pickwise.core.db import get_session, get_units
    from pickwise.exports.deps import read_connection

    application = create_app()

    @asynccontextmanager
    async def test_unit() -> AsyncIterator[AsyncSession]:
        # Same contract as unit_of_work (commit at the end); the commit only releases a
        # savepoint, and the whole test is rolled back afterwards.
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()

    async def test_session() -> AsyncIterator[AsyncSession]:
        async with test_unit() as unit:
            yield unit

    async def test_read_connection() -> AsyncIterator[AsyncConnection]:
        # Exports and analytics read through the test's connection too (they have read-only
        # connections of their own), so they see its uncommitted data.
        yield await session.connection()

    application.dependency_overrides[get_session] = test_session
    application.dependency_overrides[get_units] = lambda: test_unit
    application.dependency_overrides[read_connection] = test_read_connection
    application.dependency_overrides[analytics_connection] = test_read_connection
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
async def live_app(database_url: str) -> AsyncIterator[object]:
    """The real app with real commits, for concurrency tests; tables are emptied afterwards."""
    from pickwise.app import create_app
    from pickwise.conversations.generation import generator
    from pickwise.core.db import dispose_engines, get_engine

    application = create_app()
    yield application
    # What the app's lifespan closes at shutdown (ASGITransport runs no lifespan): the chat
    # sessions of this test's event loop, which the next test's loop could not close, and
    # the pools.
    await generator.close()
    await empty_all_tables(get_engine())
    await dispose_engines()


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Outbound requests (webhooks, chat endpoints) as in production: private addresses refused."""
    from pickwise.core.config import get_settings

    monkeypatch.setenv("PICKWISE_OUTBOUND_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the app sends (SQLAlchemy's and psycopg's own), but the test
    session's savepoints."""
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else str(query)
        if not text.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            sent.append(text)
        return await execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    return sent


@pytest.fixture
def checkouts(database_url: str) -> Iterator[list[None]]:
    """The requests' pool's checkouts (`get_engine`, as `live_app` uses it), one entry each,
    while the test runs."""
    from sqlalchemy import event

    from pickwise.core.db import get_engine

    pool = get_engine().sync_engine.pool
    taken: list[None] = []

    def checked_out(*_: Any) -> None:
        taken.append(None)

    event.listen(pool, "checkout", checked_out)
    yield taken
    event.remove(pool, "checkout", checked_out)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the app waits on Postgres for, one entry per round trip: a statement sent on its
    own, or a pipeline (its statements, joined). The test session's savepoints are left out:
    a real request has a BEGIN and a COMMIT there instead."""
    waits: list[str] = []
    execute, enter = psycopg.AsyncCursor.execute, psycopg.AsyncPipeline.__aenter__
    exit_ = psycopg.AsyncPipeline.__aexit__
    piped: list[str] = []

    async def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sql = query if isinstance(query, str) else str(query)
        savepoint = sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO"))
        if cursor.connection._pipeline is not None:
            piped.append(sql)
        elif not savepoint:
            waits.append(sql)
        return await execute(cursor, query, *args, **kwargs)

    async def pipeline_entered(self: Any) -> Any:
        piped.clear()
        return await enter(self)

    async def pipeline_left(self: Any, *args: Any) -> Any:
        if self.level == 1:
            waits.append("\n---\n".join(piped))
        return await exit_(self, *args)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    monkeypatch.setattr(psycopg.AsyncPipeline, "__aenter__", pipeline_entered)
    monkeypatch.setattr(psycopg.AsyncPipeline, "__aexit__", pipeline_left)
    return waits


class Wire:
    """What the requests' pool said to Postgres, from libpq's own trace of the protocol:
    `round_trips()` groups the statements the app sent by the answers it waited for (one
    group per ReadyForQuery: a statement sent on its own, BEGIN and COMMIT included, or a
    pipeline up to its Sync)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def clear(self) -> None:
        self.path.write_text("")

    def round_trips(self) -> list[list[str]]:
        trips: list[list[str]] = []
        sent: list[str] = []
        for side, kind, payload in _MESSAGE.findall(self.path.read_text()):
            if side == "F" and kind in ("Query", "Parse"):
                sent.append(_STATEMENT.sub(r"\1", payload).strip())
            elif side == "B" and kind == "ReadyForQuery":
                trips.append(sent)
                sent = []
        return trips

    def described(self) -> str:
        """The round trips, a line each: the start of each statement (for a failing assert)."""
        return "\n".join(
            " | ".join(" ".join(sql.split())[:60] for sql in trip) for trip in self.round_trips()
        )


# A message of the trace: who sent it, its length, its type, what it carries (which may run
# over several lines: a statement's text).
_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)\t?(.*?)(?=^[FB]\t\d+\t|\Z)", re.M | re.S)
# The text of a Query ("text") or of a Parse ("name" "text" and the parameters' types).
_STATEMENT = re.compile(r'^\s*(?:"[^"]*" )?"(.*)"(?: [\dN ]*)?\s*$', re.S)


@pytest.fixture
def wire(live_app: object, tmp_path: Path) -> Iterator[Wire]:
    """The real app's (`live_app`) protocol messages on the requests' pool, from the moment
    a connection is checked out until it is returned."""
    from sqlalchemy import event

    from pickwise.core.db import get_engine

    seen = Wire(tmp_path / "wire.trace")
    seen.clear()
    pool = get_engine().sync_engine.pool
    files: dict[int, Any] = {}

    def checked_out(dbapi_connection: Any, record: object, proxy: object) -> None:
        pgconn = dbapi_connection.driver_connection.pgconn
        files[id(pgconn)] = trace = seen.path.open("a")
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)

    def checked_in(dbapi_connection: Any, record: object) -> None:
        if dbapi_connection is None:  # invalidated
            return
        pgconn = dbapi_connection.driver_connection.pgconn
        pgconn.untrace()
        files.pop(id(pgconn)).close()

    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)
    try:
        yield seen
    finally:
        event.remove(pool, "checkout", checked_out)
        event.remove(pool, "checkin", checked_in)
