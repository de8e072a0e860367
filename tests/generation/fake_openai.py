"""A tiny OpenAI-compatible chat server on loopback, with faults chosen by the prompt text.

Markers in the last user message:
  [500xN]   the first N calls for this (model, prompt) answer 500
  [always500]  every call answers 500
  [slow]    the first call for this (model, prompt) waits SLOW_SECONDS before answering
  [same]    every model gives the same answer (others differ from one call to the next)
  [empty]   the answer is empty
A model called "needs-key" answers 401 unless the key is "sesame".
"""

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SLOW_SECONDS = 1.0


@dataclass
class Seen:
    calls: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_app(seen: Seen) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        model, messages = body["model"], body["messages"]
        prompt = messages[-1]["content"]
        with seen.lock:
            seen.attempts[(model, prompt)] += 1
            attempt = seen.attempts[(model, prompt)]
            seen.calls.append({**body, "authorization": request.headers.get("authorization")})
        if model == "needs-key" and request.headers.get("authorization") != "Bearer sesame":
            return JSONResponse({"error": {"message": "Incorrect API key"}}, status_code=401)
        failing = re.search(r"\[500x(\d+)\]", prompt)
        if "[always500]" in prompt or (failing and attempt <= int(failing.group(1))):
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
        if "[slow]" in prompt and attempt == 1:
            await asyncio.sleep(SLOW_SECONDS)
        if "[empty]" in prompt:
            content = ""
        elif "[same]" in prompt:
            content = "The same answer."
        else:
            content = f"{model} (t={body.get('temperature')}) answers: {prompt}"
            if attempt > 1:
                content += f" (take {attempt})"
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": f"{model}-2025",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
            }
        )

    return app


@dataclass
class FakeServer:
    base_url: str
    seen: Seen


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serves `app` from a thread of this process on a free loopback port; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def fake_openai() -> Iterator[FakeServer]:
    seen = Seen()
    with serve_in_thread(make_app(seen)) as url:
        yield FakeServer(f"{url}/v1", seen)
