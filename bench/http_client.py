"""A lean keep-alive HTTP/1.1 client for the simulated raters.

The raters run in the benchmark's process, on the same two cores as pickwise and Postgres.
httpx spent about 2 ms of CPU per request there, a quarter of the machine at the loop rates
measured, taken from the server it measures; browsers do not run on the server. This client
sends a request with one `write` and reads the reply by Content-Length on one connection
(what a browser tab's keep-alive connection does), for a fraction of that. It speaks only
what the rater loop needs: JSON or form bodies with a Content-Length, redirects handed back
(their Location) rather than followed, no chunked replies (an error says so if one comes).
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

JSON_TYPE = b"application/json"
FORM_TYPE = b"application/x-www-form-urlencoded"


class HttpError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: bytes
    location: str | None = None  # of a redirect

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class KeepAliveClient:
    """One connection, one request at a time (like one rater's browser tab)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"{base_url!r}: only http://host:port")
        self.host, self.port = parts.hostname, parts.port or 80
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head = f"Host: {self.host}:{self.port}\r\n{extra}".encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Reply:
        return await self._request(b"GET", path, None)

    async def post(self, path: str, json_body: Any, headers: dict[str, str] | None = None) -> Reply:
        """`headers`: this request's own, beside the client's."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        return await self._request(b"POST", path, json.dumps(json_body).encode(), extra=extra)

    async def post_form(self, path: str, fields: dict[str, str]) -> Reply:
        """A form as a browser sends it (application/x-www-form-urlencoded)."""
        body = urlencode(fields).encode()
        return await self._request(b"POST", path, body, FORM_TYPE)

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):  # the server closed it first
                await writer.wait_closed()

    async def _request(
        self,
        method: bytes,
        path: str,
        body: bytes | None,
        content_type: bytes = JSON_TYPE,
        extra: str = "",
    ) -> Reply:
        request = [method, b" ", path.encode(), b" HTTP/1.1\r\n", self._head, extra.encode()]
        if body is not None:
            request += [
                b"Content-Type: ",
                content_type,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            ]
        else:
            request.append(b"\r\n")
        data = b"".join(request)
        # The server closes a connection left idle past its keep-alive timeout (uvicorn: 5 s;
        # a thinking rater can pause longer). Such a request was never read, so it is sent
        # again once on a new connection, as browsers do.
        reused = self._writer is not None and not self._reader_at_eof()
        if not reused:
            await self._reconnect()
        try:
            return await self._send(data)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise HttpError(f"{method.decode()} {path}: connection lost") from exc
            await self._reconnect()
            return await self._send(data)

    def _reader_at_eof(self) -> bool:
        return self._reader is None or self._reader.at_eof()

    async def _reconnect(self) -> None:
        await self.aclose()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def _send(self, data: bytes) -> Reply:
        assert self._reader is not None and self._writer is not None
        self._writer.write(data)
        return await self._read_reply(self._reader)

    async def _read_reply(self, reader: asyncio.StreamReader) -> Reply:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        location: str | None = None
        close = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise HttpError(f"chunked reply (status {status}): not supported here")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"location":
                location = value.strip().decode("latin-1")
        if length is None:
            raise HttpError(f"reply without Content-Length (status {status})")
        body = await reader.readexactly(length)
        if close:
            await self.aclose()
        return Reply(status, body, location)
