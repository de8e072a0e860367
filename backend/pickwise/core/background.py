"""The loop every background worker of the app process runs (webhook deliveries, the search
catch-up): rounds until told to stop; between them a pause that a notification of new work
ends (core.wakeups), longer while they fail."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.wakeups import Listener, Wake

logger = logging.getLogger(__name__)

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens a session in a transaction that commits when the block ends."""


def background_transaction() -> AbstractAsyncContextManager[AsyncSession]:
    """A transaction on the background pool, which requests never wait for."""
    from pickwise.core.db import get_background_engine, unit_of_work

    return unit_of_work(get_background_engine())


@contextlib.asynccontextmanager
async def running_task(
    work: Coroutine[Any, Any, None], stop: Callable[[], None], *, name: str
) -> AsyncIterator[None]:
    """`work` as a background task for as long as the block runs; at the end `stop` asks it
    to finish, and it is cancelled and awaited."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def listening(channels: Iterable[str]) -> AsyncIterator[Listener]:
    """The process's one listener (core.wakeups), in the background for as long as the block
    runs, on its own connection to the app's database (or LISTEN_DATABASE_URL)."""
    from pickwise.core.config import get_settings
    from pickwise.core.embedded_pg import get_database, to_libpq_url

    settings = get_settings()
    url = settings.listen_database_url or get_database().url
    listener = Listener(to_libpq_url(url), channels, connect_timeout=settings.db_connect_timeout)
    stopping = asyncio.Event()
    async with running_task(listener.run(stopping), stopping.set, name="background-wake-ups"):
        yield listener


# A failing round is retried after up to this many times the usual pause.
MAX_BACKOFF = 30
# With notifications, a loop still looks this often: for work whose notification was lost
# (sent while the listener was reconnecting), or written with the triggers switched off.
FALLBACK_SECONDS = 60.0

Round = Callable[[], Awaitable[float | None]]
"""One round of a loop; returns in how many seconds work it knows of is due (0: at once, more
may be waiting), or None if it knows of none."""


async def run_rounds(
    one_round: Round,
    stopping: asyncio.Event,
    *,
    name: str,
    poll_seconds: float,
    wake: Wake | None = None,
    fallback_seconds: float = FALLBACK_SECONDS,
) -> None:
    """Calls `one_round` until `stopping` is set: again when the work it knows of is due, when
    `wake` is notified of new work, or after `fallback_seconds` (`poll_seconds` while there
    is no `wake` or it is not listening). A round that fails is logged and the pause doubles,
    from `poll_seconds` up to MAX_BACKOFF times it: the database may be down or busy."""
    failures = 0
    while not stopping.is_set():
        due: float | None = None
        if wake is not None:
            # Cleared before the round looks: what is notified during the round wakes the next.
            wake.event.clear()
        try:
            due = await one_round()
            failures = 0
        except (OperationalError, PoolTimeoutError) as exc:
            failures += 1
            logger.warning("%s waiting for the database: %s", name, type(exc).__name__)
        except Exception:
            failures += 1
            logger.exception("%s round failed", name)
        if failures:
            pause = poll_seconds * min(2**failures, MAX_BACKOFF)
        else:
            pause = fallback_seconds if wake is not None and wake.listening else poll_seconds
            if due is not None:
                pause = min(pause, due)
        if pause > 0:
            await _pause(stopping, wake, pause)


async def _pause(stopping: asyncio.Event, wake: Wake | None, seconds: float) -> None:
    """Until `stopping` or `wake` is set, or `seconds` have passed."""
    waits = [asyncio.ensure_future(stopping.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.event.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
