"""The paced raters of the rater-loop bench arrive one by one, each opening its connection
when it starts, as people's browsers do (docs/benchmarks.md, "i31b")."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench import rater_loop


@asynccontextmanager
async def no_work_server() -> AsyncIterator[tuple[str, list[str]]]:
    """Answers every request; a rater asking for work hears there is none. Yields its URL
    and what it saw, in order: "connect" for each connection, then each request line."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append("connect")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b"\r\n")[0].decode())
                payload = json.dumps({"assignment_id": None})
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n{payload}".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def test_paced_raters_connect_when_they_arrive() -> None:
    async with no_work_server() as (url, seen):
        stats = await rater_loop.http_run(
            url, ["a", "b", "c", "d"], 7, 5.0, 10, think_seconds=1.0, settle_seconds=0.0
        )
    assert stats.no_work == 4
    assert seen.count("connect") == 4
    # The raters' random starts (seeded) are hundreds of ms apart: the first has asked for
    # work before the last has connected. Opened all at once before the run, 16 connections
    # went mostly to one of two server workers.
    first_ask = seen.index("GET /api/v1/projects/7/next HTTP/1.1")
    assert "connect" in seen[first_ask:]


async def test_raters_back_to_back_connect_before_the_run() -> None:
    async with no_work_server() as (url, seen):
        stats = await rater_loop.http_run(url, ["a", "b", "c"], 7, 5.0, 10)
    assert stats.no_work == 3
    assert seen.count("connect") == 3
    first_ask = seen.index("GET /api/v1/projects/7/next HTTP/1.1")
    assert "connect" not in seen[first_ask:]
