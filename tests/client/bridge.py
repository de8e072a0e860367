"""A sync httpx transport that hands requests to the app on the test's event loop.

The client under test is synchronous, so it runs in a worker thread (`asyncio.to_thread`)
while the app keeps running on the test's loop with the test's rolled-back session.
"""

import asyncio

import httpx
from fastapi import FastAPI


class LoopTransport(httpx.BaseTransport):
    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=60)
