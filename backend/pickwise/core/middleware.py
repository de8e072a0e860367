from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: importing starlette at run time costs every CLI command its start-up.
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """An ASGI middleware that sees HTTP requests only (`handle`); lifespan and other scopes
    go straight to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeadersMiddleware(HttpMiddleware):
    """A fresh CSP nonce per request; inline scripts and styles run only with it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        csp = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; "
            "img-src 'self' data:; "
            "connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Liveness probes are answered even past the limit: a busy worker is alive, and an
# orchestrator that saw 503s there would restart it in the middle of a burst.
LIVENESS_PATH = "/healthz"


# The request's callable that gives its place back (see `release_load_slot`).
RELEASE_KEY = "release_load_slot"


def release_load_slot(scope: Scope) -> None:
    """The request no longer counts as in flight: it has let go of its database connection
    and only waits (for a model's reply), or its kind has a limit of its own (conversation
    requests' database slots)."""
    release = scope.get("state", {}).get(RELEASE_KEY)
    if release is not None:
        release()


class LoadSheddingMiddleware:
    """Past `limit` requests in flight in this process, answer 503 at once.

    Without it an overloaded worker queues requests behind the database pool and clients
    wait many seconds; a fast 503 with Retry-After tells them to come back instead.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"] == LIVENESS_PATH:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await _overloaded(send)
            return
        self.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1

        scope.setdefault("state", {})[RELEASE_KEY] = release
        try:
            await self.app(scope, receive, send)
        finally:
            release()


async def _overloaded(send: Send) -> None:
    body = b'{"error":"Overloaded","detail":"The server is busy; try again shortly."}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", b"1"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
