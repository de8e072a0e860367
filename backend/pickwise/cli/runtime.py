"""What the `pickwise` commands share: the database named by the settings, running a
coroutine with the connection pools closed at the end, and one transaction around a piece of
work. Its own module, so commands import it without importing the whole CLI back."""

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from pickwise.core.errors import PickwiseError

if TYPE_CHECKING:
    import psycopg

    from pickwise.core.embedded_pg import ResolvedDatabase

T = TypeVar("T")


def database() -> "ResolvedDatabase":
    """The database from the settings; starts the embedded Postgres if DATABASE_URL is unset."""
    from pickwise.core.embedded_pg import get_database

    return get_database()


@contextmanager
def loading_for_good() -> Iterator[None]:
    """Load a command's modules with the cycle collector paused, then freeze what is loaded.

    SQLAlchemy, pydantic and the ORM models leave ~150,000 objects that live as long as the
    process; the collector would scan them while they load and again at every full
    collection the command's own work sets off: 12-25 % of the CPU of an import of 10k tasks
    (docs/benchmarks.md, "i24b"). Frozen, they are never scanned again; what the command
    makes afterwards is collected as usual. (As the app does at start-up, without its full
    collection first: that collection is part of what this saves.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        try:
            return await coroutine
        finally:
            # SQLAlchemy's pools exist only if a command loaded it; `pickwise import` does not
            # (it writes through psycopg), and loading it just to close nothing costs ~0.3 s.
            db = sys.modules.get("pickwise.core.db")
            if db is not None:
                await db.dispose_engines()

    return asyncio.run(main())


def run_or_exit(coroutine: Awaitable[T]) -> T:
    """`run`; a refusal (any PickwiseError) is printed as the error and ends with status 1."""
    try:
        return run(coroutine)
    except PickwiseError as exc:
        Console().print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from exc


@asynccontextmanager
async def driver_transaction() -> AsyncIterator["psycopg.AsyncConnection[Any]"]:
    """A psycopg connection to the settings' database, in one transaction that commits at the
    end (rolls back on error): for a command that writes without SQLAlchemy."""
    import psycopg

    from pickwise.core.config import get_settings
    from pickwise.core.embedded_pg import to_libpq_url

    url = to_libpq_url(database().url)
    timeout = get_settings().db_connect_timeout
    async with (
        await psycopg.AsyncConnection.connect(url, connect_timeout=timeout) as connection,
        connection.transaction(),
    ):
        yield connection


def with_session(work: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run `work(session, ...)` in one transaction that commits at the end."""

    async def wrapped(*args: object, **kwargs: object) -> T:
        from pickwise.core.db import get_engine, session_factory

        database()
        async with session_factory(get_engine())() as session, session.begin():
            return await work(session, *args, **kwargs)

    return wrapped
