"""A fake OpenAI-compatible chat server that streams, on loopback, for conversation tests and
the conversation bench.

Each model answers `[<model>] <n>: <the last user message>` word by word (the n-th call to
that model), as server-sent events with usage at the end, or as one JSON body when the
request does not ask to stream. What the next calls to a model do is scripted:

    fake.script("model-b", Behave(status=500))            # the next call fails
    fake.script("model-a", Behave(first_token_delay=0.2, gap=0.01))
    fake.default = Behave(gap=0.002)                      # every call without a script

Behave can also stream chosen `tokens`, send nothing (`empty`), break the connection after
some tokens (`drop_after`), never answer (`hang`), or answer one JSON body to a request to
stream (`ignore_stream`). Every request is kept in `calls`.
"""

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.generation.fake_openai import serve_in_thread


@dataclass(frozen=True)
class Behave:
    status: int = 200
    error: str = "the fake server was told to fail"
    first_token_delay: float = 0.0
    gap: float = 0.0
    tokens: tuple[str, ...] | None = None
    empty: bool = False
    drop_after: int | None = None
    hang: bool = False
    usage: bool = True
    honour_max_tokens: bool = True
    ignore_stream: bool = False  # one JSON body even when asked to stream


@dataclass
class FakeLLM:
    base_url: str = ""
    default: Behave = field(default_factory=Behave)
    calls: list[dict[str, Any]] = field(default_factory=list)
    scripts: dict[str, deque[Behave]] = field(default_factory=lambda: defaultdict(deque))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Streams sent to their end ([DONE]).
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, model: str, *behaviours: Behave) -> None:
        with self.lock:
            self.scripts[model].extend(behaviours)

    def next_call(self, body: dict[str, Any]) -> tuple[Behave, int]:
        model = str(body.get("model"))
        with self.lock:
            self.calls.append(body)
            self.counts[model] += 1
            queue = self.scripts.get(model)
            behave = queue.popleft() if queue else self.default
            return behave, self.counts[model]

    def calls_to(self, model: str) -> list[dict[str, Any]]:
        with self.lock:
            return [call for call in self.calls if call.get("model") == model]


def reply_words(model: str, n: int, messages: list[dict[str, str]]) -> list[str]:
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    text = f"[{model}] {n}: {last}"
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": f"{model}-served",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class Dropped(Exception):
    """Raised inside the stream: the server closes the connection mid-reply."""


def make_app(fake: FakeLLM) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        behave, n = fake.next_call(body)
        model = str(body["model"])
        if behave.hang:
            await asyncio.sleep(3600)
        if behave.status != 200:
            return JSONResponse({"error": {"message": behave.error}}, status_code=behave.status)
        words = (
            [] if behave.empty else list(behave.tokens or reply_words(model, n, body["messages"]))
        )
        max_tokens = body.get("max_tokens")
        finish = "stop"
        if behave.honour_max_tokens and isinstance(max_tokens, int) and len(words) > max_tokens:
            words, finish = words[:max_tokens], "length"
        usage = {
            "prompt_tokens": 7,
            "completion_tokens": len(words),
            "total_tokens": 7 + len(words),
        }
        if not body.get("stream") or behave.ignore_stream:
            await asyncio.sleep(behave.first_token_delay)
            return JSONResponse(
                {
                    "model": f"{model}-served",
                    "choices": [
                        {
                            "message": {"role": "assistant", "content": "".join(words)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
            )
        wants_usage = behave.usage and (body.get("stream_options") or {}).get("include_usage")

        async def stream() -> AsyncIterator[bytes]:
            await asyncio.sleep(behave.first_token_delay)
            yield _chunk(model, {"role": "assistant", "content": ""})
            for index, word in enumerate(words):
                if behave.drop_after is not None and index >= behave.drop_after:
                    raise Dropped()
                if index and behave.gap:
                    await asyncio.sleep(behave.gap)
                yield _chunk(model, {"content": word})
            yield _chunk(model, {}, finish)
            if wants_usage:
                tail = {
                    "id": "chatcmpl-fake",
                    "model": f"{model}-served",
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(tail)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            with fake.lock:
                fake.finished += 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


@contextmanager
def fake_llm_server() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    with serve_in_thread(make_app(fake)) as url:
        fake.base_url = f"{url}/v1"
        yield fake


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def bench_app() -> FastAPI:
    """The fake as its own server process (bench/conversations.py): every reply streams
    FAKE_LLM_TOKENS words, the first after FAKE_LLM_FIRST_TOKEN_DELAY seconds, then one every
    FAKE_LLM_GAP seconds. `uvicorn tests.conversations.fake_llm:bench_app --factory`."""
    import os

    words = int(os.environ.get("FAKE_LLM_TOKENS", "20"))
    fake = FakeLLM(
        default=Behave(
            tokens=tuple(f" word{n}" for n in range(words)),
            first_token_delay=float(os.environ.get("FAKE_LLM_FIRST_TOKEN_DELAY", "0")),
            gap=float(os.environ.get("FAKE_LLM_GAP", "0")),
        )
    )
    # A long run would keep every request body: forget them.
    fake.next_call = _forgetful(fake)  # type: ignore[method-assign]
    return make_app(fake)


def _forgetful(fake: FakeLLM) -> Any:
    def next_call(body: dict[str, Any]) -> tuple[Behave, int]:
        return fake.default, 0

    return next_call
