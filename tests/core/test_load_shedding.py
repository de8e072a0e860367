import asyncio

from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

from pickwise.core.middleware import LoadSheddingMiddleware


async def test_requests_past_the_limit_get_a_fast_503_with_retry_after() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/healthz":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = LoadSheddingMiddleware(slow_app, limit=1)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        first = asyncio.create_task(client.get("/"))
        await entered.wait()
        shed = await client.get("/")
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["error"] == "Overloaded"
        # The liveness probe is never shed.
        assert (await client.get("/healthz")).status_code == 200
        release.set()
        assert (await first).status_code == 200
        # Capacity is given back once the first request is done.
        assert (await client.get("/")).status_code == 200
    assert app.in_flight == 0
