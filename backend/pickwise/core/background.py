"""The loop every background worker of the app process runs (webhook deliveries, the search
catch-up): rounds until told to stop, a pause between them, longer while they fail."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

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


# A failing round is retried after up to this many times the usual pause.
MAX_BACKOFF = 30


async def run_rounds(
    one_round: Callable[[], Awaitable[bool]],
    stopping: asyncio.Event,
    *,
    name: str,
    poll_seconds: float,
) -> None:
    """Calls `one_round` until `stopping` is set: again at once when it returns True (more
    work may be due), else after `poll_seconds`. A round that fails is logged and the pause
    doubles, up to MAX_BACKOFF times: the database may be down or busy for a while."""
    failures = 0
    while not stopping.is_set():
        more = False
        try:
            more = await one_round()
            failures = 0
        except (OperationalError, PoolTimeoutError) as exc:
            failures += 1
            logger.warning("%s waiting for the database: %s", name, type(exc).__name__)
        except Exception:
            failures += 1
            logger.exception("%s round failed", name)
        if more:
            continue
        pause = poll_seconds * min(2**failures, MAX_BACKOFF)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)
