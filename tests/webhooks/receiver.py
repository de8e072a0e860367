"""A webhook receiver on loopback that checks signatures the way a real one should."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pickwise.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify
from tests.generation.fake_openai import serve_in_thread


@dataclass
class Received:
    secret: str = ""
    # Answer 500 to this many requests before accepting.
    fail_first: int = 0
    requests: int = 0
    bad_signatures: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_events(self, count: int, timeout: float) -> bool:
        """Blocks until `count` events arrived (True) or `timeout` seconds passed (False)."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.events) >= count, timeout)


def make_app(received: Received) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        with received.lock:
            received.requests += 1
            if not verify(received.secret, body, request.headers.get(SIGNATURE_HEADER)):
                received.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if received.requests <= received.fail_first:
                return JSONResponse({"error": "busy"}, status_code=500)
            received.events.append(json.loads(body))
            received.headers.append(
                {
                    "event": request.headers[EVENT_HEADER],
                    "delivery": request.headers[DELIVERY_HEADER],
                }
            )
            received.lock.notify_all()
        return JSONResponse({"ok": True})

    return app


@contextmanager
def receiver() -> Iterator[tuple[str, Received]]:
    """Yields the hook's URL and what it received."""
    received = Received()
    with serve_in_thread(make_app(received)) as url:
        yield f"{url}/hook", received
