"""A loopback TCP proxy that drops connections at random.

A drop either loses the request (the connection is cut before the request reaches the server)
or, more interesting, loses the answer: the request is forwarded, the server does the work and
commits, and the connection is cut when the answer comes back, so the client never sees it.
Both ends are aborted (RST), as when a network path dies.
"""

import asyncio
import random
from contextlib import suppress
from dataclasses import dataclass


@dataclass
class ProxyStats:
    connections: int = 0
    requests_dropped: int = 0
    answers_dropped: int = 0

    @property
    def drops(self) -> int:
        return self.requests_dropped + self.answers_dropped


class FaultyProxy:
    def __init__(
        self,
        target_port: int,
        *,
        drop_request_rate: float,
        drop_answer_rate: float,
        seed: int,
        chunk_size: int = 65_536,
    ) -> None:
        self.target_port = target_port
        self.drop_request_rate = drop_request_rate
        self.drop_answer_rate = drop_answer_rate
        self.chance = random.Random(seed)
        self.chunk_size = chunk_size
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(client_in, client_out)
        except asyncio.CancelledError:
            pass  # close() ends open connections; asyncio would log this task's cancellation
        finally:
            self._tasks.discard(task)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.stats.connections += 1
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.transport.abort()
            return
        # Set when a forwarded request is doomed to lose its answer.
        lose_answer = asyncio.Event()

        def cut() -> None:
            client_out.transport.abort()
            server_out.transport.abort()

        async def requests() -> None:
            while chunk := await client_in.read(self.chunk_size):
                if self.chance.random() < self.drop_request_rate:
                    self.stats.requests_dropped += 1
                    cut()
                    return
                if self.chance.random() < self.drop_answer_rate:
                    lose_answer.set()
                server_out.write(chunk)
                await server_out.drain()
            server_out.write_eof()

        async def answers() -> None:
            while chunk := await server_in.read(self.chunk_size):
                if lose_answer.is_set():
                    self.stats.answers_dropped += 1
                    cut()
                    return
                client_out.write(chunk)
                await client_out.drain()
            client_out.close()

        pumps = [asyncio.ensure_future(requests()), asyncio.ensure_future(answers())]
        try:
            await asyncio.gather(*pumps)
        except (OSError, RuntimeError):
            pass  # a connection cut by either end
        finally:
            for pump in pumps:
                pump.cancel()
            with suppress(Exception):
                await asyncio.gather(*pumps, return_exceptions=True)
            cut()
