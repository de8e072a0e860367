"""The simulated raters' HTTP client, against a small local server that can misbehave."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bench.http_client import HttpError, KeepAliveClient

Reply = Callable[[bytes], bytes]


def json_reply(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    payload = json.dumps({"line": head.split(b"\r\n")[0].decode(), "body": body.decode()})
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n{payload}"
    ).encode()


@asynccontextmanager
async def http_server(
    reply: Reply, *, close_after_reply: bool
) -> AsyncIterator[tuple[str, list[int]]]:
    """Serves one request at a time per connection; yields its URL and the number of requests
    each connection carried."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        index = len(connections) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                connections[index] += 1
                writer.write(reply(head + body))
                await writer.drain()
                if close_after_reply:
                    break  # like an idle keep-alive timeout, without saying so
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections


async def test_requests_share_one_connection() -> None:
    async with http_server(json_reply, close_after_reply=False) as (url, connections):
        client = KeepAliveClient(url, headers={"Authorization": "x"})
        first = await client.get("/a")
        second = await client.post("/b", {"choice": "left"})
        await client.aclose()
    assert first.status_code == 200
    assert first.json()["line"] == "GET /a HTTP/1.1"
    assert second.json() == {"line": "POST /b HTTP/1.1", "body": '{"choice": "left"}'}
    assert connections == [2]


async def test_a_connection_the_server_closed_is_replaced() -> None:
    async with http_server(json_reply, close_after_reply=True) as (url, connections):
        client = KeepAliveClient(url)
        await client.get("/a")
        await asyncio.sleep(0.05)  # the close reaches the client
        assert (await client.get("/b")).json()["line"] == "GET /b HTTP/1.1"
        await asyncio.sleep(0.05)
        # As if the close crossed the request on the wire: it is sent again, once.
        client._reader_at_eof = lambda: False  # type: ignore[method-assign]
        assert (await client.get("/c")).json()["line"] == "GET /c HTTP/1.1"
        await client.aclose()
    assert connections == [1, 1, 1]


async def test_a_chunked_reply_is_an_error() -> None:
    def chunked(request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"

    async with http_server(chunked, close_after_reply=False) as (url, _):
        client = KeepAliveClient(url)
        with pytest.raises(HttpError, match="chunked"):
            await client.get("/a")
        await client.aclose()
