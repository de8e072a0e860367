"""The app's middlewares, stacked as `create_app` stacks them, around bare ASGI endpoints:
what every response carries, what is counted and logged, for streamed and failed requests."""

import asyncio
import functools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickwise.app import create_app
from pickwise.core.logging import (
    _MIGHT_HOLD_SECRETS,
    _might_hold_secrets,
    configure_logging,
    redact_text,
)
from pickwise.core.middleware import LoadSheddingMiddleware


@dataclass
class Route:
    path: str


@functools.cache
def app_middlewares() -> list[Middleware]:
    """Made once: `create_app` configures logging, which would undo `info_logs`."""
    return list(create_app().user_middleware)


def app_stack(endpoint: ASGIApp, limit: int = 8) -> ASGIApp:
    """`create_app`'s own middlewares in its order (its first is the outermost), around
    `endpoint`; at most `limit` requests in flight."""
    stack = endpoint
    for middleware in reversed(app_middlewares()):
        kwargs = dict(middleware.kwargs)
        if middleware.cls is LoadSheddingMiddleware:
            kwargs["limit"] = limit
        stack = middleware.cls(stack, *middleware.args, **kwargs)
    return stack


def http_scope(path: str, request_id: str) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(b"x-request-id", request_id.encode())],
    }


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def requests_counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "pickwise_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


def access_lines(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "pickwise.access"]


@pytest.fixture
def info_logs() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    app_middlewares()
    configure_logging("INFO")
    yield
    root.setLevel(previous)


async def test_a_streamed_response_carries_every_header_and_is_passed_on_unbuffered(
    info_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    route = "/test/stream/{stream_id}"
    first_chunk_out = asyncio.Event()
    nonces: list[str] = []

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route(route)
        nonces.append(scope["state"]["csp_nonce"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        # A buffering wrapper would hold the first event back until the stream ends.
        await asyncio.wait_for(first_chunk_out.wait(), timeout=5)
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    sent: list[Message] = []

    async def server_send(message: Message) -> None:
        sent.append(message)
        if message.get("body") == b"data: 1\n\n":
            first_chunk_out.set()

    before = requests_counted(route, "200")
    capsys.readouterr()
    await app_stack(streaming)(http_scope("/test/stream/3", "req-stream"), no_body, server_send)

    assert [message["type"] for message in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"text/event-stream"
    assert headers[b"x-request-id"] == b"req-stream"
    csp = headers[b"content-security-policy"].decode()
    assert f"script-src 'self' 'nonce-{nonces[0]}'" in csp
    assert f"style-src 'self' 'nonce-{nonces[0]}'" in csp
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"same-origin"
    assert headers[b"x-frame-options"] == b"DENY"
    assert requests_counted(route, "200") == before + 1
    [line] = access_lines(capsys.readouterr().err)
    assert line["request_id"] == "req-stream" and line["status"] == 200
    assert line["route"] == route and line["message"] == "GET /test/stream/3 200"


async def test_each_request_gets_its_own_nonce() -> None:
    starts: list[Message] = []

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def server_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            starts.append(message)

    stack = app_stack(page)
    for number in range(2):
        await stack(http_scope("/", f"req-{number}"), no_body, server_send)
    policies = [dict(start["headers"])[b"content-security-policy"] for start in starts]
    assert policies[0] != policies[1]


async def test_a_shed_request_gets_its_503_with_the_security_headers_and_its_id() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    starts: list[Message] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def server_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            starts.append(message)

    stack = app_stack(slow, limit=1)
    held = asyncio.create_task(stack(http_scope("/slow", "req-held"), no_body, server_send))
    await entered.wait()  # the first request holds the one place in flight
    await stack(http_scope("/slow", "req-shed"), no_body, server_send)
    release.set()
    await held
    shed = starts[0]
    headers = dict(shed["headers"])
    assert shed["status"] == 503
    assert headers[b"x-request-id"] == b"req-shed"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"default-src 'self'" in headers[b"content-security-policy"]
    assert starts[1]["status"] == 200


async def test_a_request_that_raises_is_counted_and_logged_as_a_500_every_time(
    info_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    route = "/test/broken/{item_id}"

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route(route)
        raise RuntimeError("boom")

    sent: list[Message] = []

    async def server_send(message: Message) -> None:
        sent.append(message)

    before = requests_counted(route, "500")
    capsys.readouterr()
    stack = app_stack(broken)
    # Twice: the second request reuses what the first looked up, and must count all the same.
    for number in range(2):
        sent.clear()
        with pytest.raises(RuntimeError):
            await stack(http_scope(f"/test/broken/{number}", f"req-{number}"), no_body, server_send)
        # The 500 is answered inside the stack, so it carries what every response carries
        # (Starlette's own would leave bare); the error still reaches the server's log.
        start, body = sent
        assert start["status"] == 500
        headers = dict(start["headers"])
        assert headers[b"x-request-id"] == f"req-{number}".encode()
        assert headers[b"x-content-type-options"] == b"nosniff"
        assert b"default-src 'self'" in headers[b"content-security-policy"]
        assert body["body"] == b"Internal Server Error"
    assert requests_counted(route, "500") == before + 2
    observed = REGISTRY.get_sample_value(
        "pickwise_http_request_duration_seconds_count", {"method": "GET", "route": route}
    )
    assert observed == 2
    lines = access_lines(capsys.readouterr().err)
    assert [(line["request_id"], line["status"]) for line in lines] == [
        ("req-0", 500),
        ("req-1", 500),
    ]


SECRET_CHECK_CASES = [
    "",
    "GET /api/v1/projects/7/pairs/123/judgment 201",
    "3 passes, 2 tokens left",
    "Authorization: BEARER abc",
    "API-KEY=1",
    "api_key",
    "apikey",
    "api key",
    "postgresql://u:p@h/db",
    ":/ /",
    "Content_1",
    "PROMPTS",
    "turn",
    "respons",
    # Outside ASCII, IGNORECASE folds more than lower() does: "ſ" matches "s", "K" (Kelvin)
    # matches "k".
    "ſecret=abc",
    "api_\u212aey=abc",
    "tökén=1",
    "é /x 200",
]


@pytest.mark.parametrize("text", SECRET_CHECK_CASES)
def test_the_quick_secret_check_agrees_with_the_pattern(text: str) -> None:
    assert _might_hold_secrets(text) == (_MIGHT_HOLD_SECRETS.search(text) is not None)


def test_secret_words_outside_ascii_are_still_redacted() -> None:
    assert redact_text("ſecret=abc") == "ſecret=[redacted]"
    assert redact_text("api_\u212aey=abc é") == "api_\u212aey=[redacted] é"
    assert redact_text("GET /x?token=abc 200") == "GET /x?token=[redacted] 200"
