"""One reply from an OpenAI-compatible `POST {base_url}/chat/completions` with `stream: true`,
text handed on as it arrives (server-sent events: `data: {chunk}` lines, then `data: [DONE]`).

Before the first token, a dropped connection and 408/409/425/429/5xx are tried again (a
person is waiting, so briefly); after it, a broken stream is a failure the rater can retry.
Usage is asked for with `stream_options.include_usage` (a server that refuses that option is
asked again without it). A server that ignores `stream` and answers one JSON body is read
whole. Every failure carries a kind (`ReplyFailure`) a rater may see and a detail for admins.

The stream is read with aiohttp (its HTTP parser is written in C): a reply arrives as one
small chunk per token, and reading one cost about a fifth of the CPU it took through httpx
(httpx, httpcore, h11 and anyio, all in Python), which with hundreds of replies streaming
at once was most of a worker's time. The session comes from `outbound_session` (the guard
against requests to private addresses).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from pickwise.core.outbound import is_refused_address
from pickwise.generation.chat import RETRYABLE_STATUS, EndpointConfig, error_text
from pickwise.vocabulary import ReplyFailure

OnText = Callable[[str], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class StreamLimits:
    connect_seconds: float = 10.0
    # Until the first token (a long prompt or a cold model takes a while) and between two
    # chunks once it streams.
    first_token_seconds: float = 60.0
    idle_seconds: float = 60.0
    attempts: int = 3
    retry_delay: float = 0.5
    # Once text flows, the connection is read at most this often (0: as data comes). A
    # server sends a chunk per token and each chunk was a read, a parse and a wake-up of the
    # reading task; paused, what comes meanwhile waits in the socket and arrives in one read.
    # The first piece of text is never held back.
    pace_seconds: float = 0.0


@dataclass(frozen=True)
class StreamedReply:
    content: str
    finish_reason: str | None
    served_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    requests: int
    first_token_seconds: float | None
    seconds: float


class StreamFailed(Exception):
    def __init__(self, failure: ReplyFailure, detail: str, requests: int) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.requests = requests


class _Retry(Exception):
    """This attempt failed before the first token in a way another attempt may not."""

    def __init__(self, failure: ReplyFailure, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class _Reading:
    """What one attempt has read so far."""

    on_text: OnText
    max_tokens: int | None
    started: float
    chunks: int = 0
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    served_model: str | None = None
    usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    cut_at_limit: bool = False

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def add(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.parts.append(text)
        self.chunks += 1
        self.on_text(text)
        # A server that ignores max_tokens is cut off here (a chunk is about one token).
        if self.max_tokens is not None and self.chunks >= self.max_tokens:
            self.cut_at_limit = True

    def take(self, chunk: Mapping[str, Any]) -> None:
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamFailed(ReplyFailure.ERROR, f"error in the stream: {message}", 0)
        if isinstance(chunk.get("model"), str):
            self.served_model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                self.add(text)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])


def _token_count(usage: dict[str, Any] | None, key: str) -> int | None:
    value = (usage or {}).get(key)
    return value if isinstance(value, int) and value >= 0 else None


def request_body(
    endpoint: EndpointConfig, messages: Sequence[Mapping[str, str]], *, with_usage: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": list(messages),
        "stream": True,
        **endpoint.sampling,
    }
    if with_usage:
        body["stream_options"] = {"include_usage": True}
    return body


async def _pause(response: aiohttp.ClientResponse, seconds: float) -> None:
    """Leaves the connection unread for `seconds` (aiohttp's own flow control pauses it the
    same way, and stops the idle timeout meanwhile)."""
    protocol = response.connection.protocol if response.connection is not None else None
    if protocol is None:
        return
    protocol.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        protocol.resume_reading()


async def _read_events(
    response: aiohttp.ClientResponse, reading: _Reading, pace_seconds: float = 0.0
) -> None:
    # Lines are cut from the bytes here (one split per chunk): a server sends a chunk per
    # token, and this runs for each.
    pending = b""
    async for chunk in response.content.iter_any():
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments (":"), "event:" and "id:" lines
            data = line[5:].strip()
            if data == b"[DONE]":
                # The rest (the end of the chunked body) is read so the connection is
                # reused; the idle timeout bounds a server that goes on.
                await response.read()
                return
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise StreamFailed(ReplyFailure.ERROR, "a stream chunk is not JSON", 0) from exc
            if isinstance(parsed, dict):
                reading.take(parsed)
            if reading.cut_at_limit:
                reading.finish_reason = "length"
                return
        if pace_seconds and reading.first_token_at is not None:
            await _pause(response, pace_seconds)


async def _attempt(
    http: aiohttp.ClientSession,
    endpoint: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    reading: _Reading,
    limits: StreamLimits,
    *,
    with_usage: bool,
) -> None:
    headers = {"Content-Type": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    # `connect` covers waiting for a pooled connection too; `sock_read` is the idle limit
    # between two reads once the answer's head has come.
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=limits.connect_seconds,
        sock_connect=limits.connect_seconds,
        sock_read=limits.idle_seconds,
    )
    body = orjson.dumps(request_body(endpoint, messages, with_usage=with_usage))
    try:
        async with (
            asyncio.timeout(limits.first_token_seconds) as first_token,
            http.post(
                endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as reply,
        ):
            if reply.status != 200:
                detail = f"HTTP {reply.status}: {error_text(await reply.read())}"
                if reply.status in RETRYABLE_STATUS:
                    raise _Retry(ReplyFailure.ERROR, detail, _retry_after(reply))
                if with_usage and "stream_options" in detail:
                    raise _Retry(ReplyFailure.ERROR, detail, 0.0)
                raise StreamFailed(ReplyFailure.ERROR, detail, 0)
            # The first-token clock stops at the answer's head; the idle timeout takes over.
            first_token.reschedule(None)
            if reply.content_type == "application/json":
                await _read_whole(reply, reading)
            else:
                await _read_events(reply, reading, limits.pace_seconds)
    # aiohttp's own timeouts are TimeoutErrors too: they come first.
    except aiohttp.ServerTimeoutError as exc:
        if reading.chunks == 0:
            raise _Retry(ReplyFailure.TIMEOUT, f"timed out ({type(exc).__name__})") from exc
        seconds = limits.idle_seconds
        raise StreamFailed(ReplyFailure.TIMEOUT, f"no text for {seconds:g} s", 0) from exc
    except TimeoutError as exc:
        if reading.first_token_at is None:
            seconds = limits.first_token_seconds
            raise _Retry(ReplyFailure.TIMEOUT, f"no answer within {seconds:g} s") from exc
        raise StreamFailed(ReplyFailure.TIMEOUT, "the stream stopped", 0) from exc
    except aiohttp.ClientError as exc:
        if is_refused_address(exc):
            detail = f"connection refused ({exc.__cause__})"
            raise StreamFailed(ReplyFailure.CONFIGURATION, detail, 0) from exc
        detail = f"connection failed ({type(exc).__name__}: {exc})"
        if reading.chunks == 0:
            raise _Retry(ReplyFailure.CONNECTION, detail) from exc
        raise StreamFailed(ReplyFailure.CONNECTION, f"the stream broke off: {detail}", 0) from exc


async def _read_whole(reply: aiohttp.ClientResponse, reading: _Reading) -> None:
    try:
        body = json.loads(await reply.read())
    except ValueError as exc:
        raise StreamFailed(ReplyFailure.ERROR, "the answer is not JSON", 0) from exc
    if isinstance(body, dict):
        reading.take(body)


def _retry_after(reply: aiohttp.ClientResponse) -> float | None:
    value = reply.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


async def stream_reply(
    http: aiohttp.ClientSession,
    endpoint: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    on_text: OnText,
    *,
    limits: StreamLimits | None = None,
    sleep: Sleep = asyncio.sleep,
) -> StreamedReply:
    """The whole reply; `on_text` gets each piece of text as it comes. Cancel the call to stop
    it (the caller keeps what `on_text` received)."""
    limits = limits or StreamLimits()
    started = time.monotonic()
    with_usage = True
    for attempt in range(1, limits.attempts + 1):
        reading = _Reading(on_text=on_text, max_tokens=endpoint.max_tokens, started=started)
        try:
            await _attempt(http, endpoint, messages, reading, limits, with_usage=with_usage)
        except _Retry as problem:
            if "stream_options" in problem.detail and with_usage:
                with_usage = False  # Asked again at once without it; not a failed attempt.
            if attempt == limits.attempts:
                detail = f"{problem.detail} (gave up after {attempt} attempts)"
                raise StreamFailed(problem.failure, detail, attempt) from problem
            await sleep(min(problem.retry_after or limits.retry_delay * attempt, 5.0))
            continue
        except StreamFailed as failed:
            raise StreamFailed(failed.failure, failed.detail, attempt) from failed
        if not reading.content.strip():
            reason = reading.finish_reason or "none"
            raise StreamFailed(
                ReplyFailure.EMPTY, f"the reply is empty (finish_reason: {reason})", attempt
            )
        first = reading.first_token_at
        return StreamedReply(
            content=reading.content,
            finish_reason=reading.finish_reason,
            served_model=reading.served_model,
            prompt_tokens=_token_count(reading.usage, "prompt_tokens"),
            completion_tokens=_token_count(reading.usage, "completion_tokens"),
            requests=attempt,
            first_token_seconds=None if first is None else first - started,
            seconds=time.monotonic() - started,
        )
    raise AssertionError("the loop returns or raises")
