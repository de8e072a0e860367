"""Small writes that come in bursts, written together: while one write is in flight, the
items that come meanwhile wait and go together in the next (one transaction, one statement)
instead of one transaction each. Nothing waits when nothing is being written.

Conversations move in step (a hundred replies end, a hundred votes follow), and each of
their bookkeeping writes was a transaction of its own, its BEGIN and COMMIT round trips
and a wake-up of the worker each."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class WrittenTogether(Generic[Item]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[None]]) -> None:
        """`write` stores a list of items, all or none (one transaction)."""
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, item: Item) -> None:
        """Returns once the item is written; raises what its write raised (the items
        written with it failed too)."""
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((item, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await written

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
                continue
            for _, written in batch:
                if not written.done():
                    written.set_result(None)
