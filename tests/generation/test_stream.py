"""The streaming chat client against the fake streaming server: text piece by piece, usage,
retries before the first token only, and every way a stream can fail."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from pickwise.generation.chat import EndpointConfig
from pickwise.generation.stream import StreamFailed, StreamLimits, stream_reply
from pickwise.vocabulary import ReplyFailure
from tests.conversations.fake_llm import Behave, FakeLLM, fake_llm_server

MESSAGES = [{"role": "user", "content": "one two three"}]
FAST = StreamLimits(first_token_seconds=2, idle_seconds=2, attempts=3, retry_delay=0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def endpoint(fake: FakeLLM, **settings: object) -> EndpointConfig:
    return EndpointConfig(name="e", base_url=fake.base_url, model="m", api_key=None, **settings)  # type: ignore[arg-type]


async def test_text_arrives_in_pieces_with_usage(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    pieces: list[str] = []
    reply = await stream_reply(
        http, endpoint(fake, temperature=0.5), MESSAGES, pieces.append, limits=FAST
    )
    assert pieces == ["[m]", " 1:", " one", " two", " three"]
    assert reply.content == "[m] 1: one two three"
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, 5)
    assert reply.finish_reason == "stop" and reply.served_model == "m-served"
    assert reply.requests == 1 and reply.first_token_seconds is not None
    (call,) = fake.calls
    assert call["stream"] is True and call["stream_options"] == {"include_usage": True}
    assert call["temperature"] == 0.5


async def test_a_server_that_ignores_stream_is_read_whole(
    fake: FakeLLM, http: httpx.AsyncClient
) -> None:
    async def non_streaming(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "model": "x",
                "choices": [{"message": {"content": "whole"}, "finish_reason": "stop"}],
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(non_streaming)) as client:
        pieces: list[str] = []
        reply = await stream_reply(client, endpoint(fake), MESSAGES, pieces.append, limits=FAST)
    assert pieces == ["whole"] and reply.content == "whole" and reply.completion_tokens is None


async def test_retried_before_the_first_token(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.script("m", Behave(status=503), Behave(status=429))
    reply = await stream_reply(http, endpoint(fake), MESSAGES, lambda _: None, limits=FAST)
    assert reply.requests == 3 and reply.content.startswith("[m] 3:")


async def test_refused_stream_options_are_dropped(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.script("m", Behave(status=400, error="unknown field stream_options"))
    reply = await stream_reply(http, endpoint(fake), MESSAGES, lambda _: None, limits=FAST)
    assert "stream_options" not in fake.calls[-1] and reply.content


@pytest.mark.parametrize(
    ("behave", "failure", "detail"),
    [
        (Behave(status=500), ReplyFailure.ERROR, "gave up after 3 attempts"),
        (Behave(status=404, error="no such model"), ReplyFailure.ERROR, "no such model"),
        (Behave(empty=True), ReplyFailure.EMPTY, "empty"),
        (Behave(tokens=("  ", "\n")), ReplyFailure.EMPTY, "empty"),
        (Behave(drop_after=2), ReplyFailure.CONNECTION, "broke off"),
        (Behave(hang=True), ReplyFailure.TIMEOUT, "no answer within"),
        (Behave(gap=3), ReplyFailure.TIMEOUT, "no text for"),
    ],
)
async def test_failures_say_what_happened(
    fake: FakeLLM, http: httpx.AsyncClient, behave: Behave, failure: ReplyFailure, detail: str
) -> None:
    fake.default = behave
    limits = StreamLimits(first_token_seconds=0.5, idle_seconds=0.5, attempts=3, retry_delay=0.01)
    with pytest.raises(StreamFailed) as caught:
        await stream_reply(http, endpoint(fake), MESSAGES, lambda _: None, limits=limits)
    assert caught.value.failure == failure
    assert detail in caught.value.detail


async def test_max_tokens_is_sent_and_enforced(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    reply = await stream_reply(
        http, endpoint(fake, max_tokens=2), MESSAGES, lambda _: None, limits=FAST
    )
    assert fake.calls[-1]["max_tokens"] == 2
    assert reply.content == "[m] 1:" and reply.finish_reason == "length"
    # A server that ignores max_tokens is cut off after that many pieces.
    fake.default = Behave(tokens=tuple(f" t{n}" for n in range(50)), honour_max_tokens=False)
    ignoring = await stream_reply(
        http, endpoint(fake, max_tokens=4), MESSAGES, lambda _: None, limits=FAST
    )
    assert ignoring.content.split() == ["t0", "t1", "t2", "t3"]
    assert ignoring.finish_reason == "length"


async def test_cancelling_stops_the_request(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.default = Behave(tokens=tuple(f" w{n}" for n in range(100)), gap=0.02)
    pieces: list[str] = []
    task = asyncio.create_task(
        stream_reply(http, endpoint(fake), MESSAGES, pieces.append, limits=FAST)
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0 < len(pieces) < 100
