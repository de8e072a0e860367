"""The streaming chat client against the fake streaming server: text piece by piece, usage,
retries before the first token only, and every way a stream can fail."""

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from pickwise.core.outbound import outbound_session
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
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with outbound_session() as session:
        yield session


def endpoint(fake: FakeLLM, **settings: object) -> EndpointConfig:
    return EndpointConfig(name="e", base_url=fake.base_url, model="m", api_key=None, **settings)  # type: ignore[arg-type]


async def test_text_arrives_in_pieces_with_usage(
    fake: FakeLLM, http: aiohttp.ClientSession
) -> None:
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
    fake: FakeLLM, http: aiohttp.ClientSession
) -> None:
    fake.default = Behave(tokens=("who", "le"), ignore_stream=True)
    pieces: list[str] = []
    reply = await stream_reply(http, endpoint(fake), MESSAGES, pieces.append, limits=FAST)
    assert pieces == ["whole"] and reply.content == "whole" and reply.completion_tokens == 2
    assert fake.calls[-1]["stream"] is True


async def test_retried_before_the_first_token(fake: FakeLLM, http: aiohttp.ClientSession) -> None:
    fake.script("m", Behave(status=503), Behave(status=429))
    reply = await stream_reply(http, endpoint(fake), MESSAGES, lambda _: None, limits=FAST)
    assert reply.requests == 3 and reply.content.startswith("[m] 3:")


async def test_refused_stream_options_are_dropped(
    fake: FakeLLM, http: aiohttp.ClientSession
) -> None:
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
    fake: FakeLLM, http: aiohttp.ClientSession, behave: Behave, failure: ReplyFailure, detail: str
) -> None:
    fake.default = behave
    limits = StreamLimits(first_token_seconds=0.5, idle_seconds=0.5, attempts=3, retry_delay=0.01)
    with pytest.raises(StreamFailed) as caught:
        await stream_reply(http, endpoint(fake), MESSAGES, lambda _: None, limits=limits)
    assert caught.value.failure == failure
    assert detail in caught.value.detail


async def test_max_tokens_is_sent_and_enforced(fake: FakeLLM, http: aiohttp.ClientSession) -> None:
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


async def test_cancelling_stops_the_request(fake: FakeLLM, http: aiohttp.ClientSession) -> None:
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


@pytest.mark.usefixtures("guarded")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_address_is_refused_at_once(fake: FakeLLM, host: str) -> None:
    """In production an endpoint on a loopback address, typed as such or behind a name, is
    refused when connecting (not retried): the server never sees the request."""
    port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
    config = EndpointConfig(name="e", base_url=f"http://{host}:{port}/v1", model="m", api_key=None)
    async with outbound_session() as guarded_session:
        with pytest.raises(StreamFailed) as caught:
            await stream_reply(guarded_session, config, MESSAGES, lambda _: None, limits=FAST)
    assert caught.value.failure == ReplyFailure.CONFIGURATION
    assert "a loopback address; refused" in caught.value.detail
    assert caught.value.requests == 1 and fake.calls == []


class Rebinding(AbstractResolver):
    """Answers loopback for rebind.example, a name that exists nowhere."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        assert host == "rebind.example"
        answer: ResolveResult = {
            "hostname": host,
            "host": "127.0.0.1",
            "port": port,
            "family": socket.AF_INET,
            "proto": 0,
            "flags": socket.AI_NUMERICHOST,
        }
        return [answer]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("production", [True, False])
async def test_a_name_is_checked_and_connected_to_by_the_address_it_resolved_to(
    fake: FakeLLM, production: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to loopback when the reply is asked for (DNS rebinding) is
    refused in production; elsewhere the request goes to the address the lookup gave (the
    name itself resolves nowhere), so what is checked is what is reached."""
    from pickwise.core.config import get_settings

    monkeypatch.setenv("PICKWISE_OUTBOUND_ALLOW_PRIVATE", str(not production).lower())
    get_settings.cache_clear()
    port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
    config = EndpointConfig(
        name="e", base_url=f"http://rebind.example:{port}/v1", model="m", api_key=None
    )
    try:
        async with outbound_session(resolver=Rebinding()) as session:
            if production:
                with pytest.raises(StreamFailed) as caught:
                    await stream_reply(session, config, MESSAGES, lambda _: None, limits=FAST)
                assert caught.value.failure == ReplyFailure.CONFIGURATION
                assert "rebind.example resolves to 127.0.0.1" in caught.value.detail
                assert fake.calls == []
            else:
                reply = await stream_reply(session, config, MESSAGES, lambda _: None, limits=FAST)
                assert reply.content == "[m] 1: one two three"
    finally:
        get_settings.cache_clear()


async def test_paced_reading_passes_the_first_piece_at_once_and_the_rest_in_few_reads(
    fake: FakeLLM, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `pace_seconds` the connection is left unread between reads: what the server sends
    meanwhile comes in one read instead of one per token, and nothing is lost or reordered."""
    from pickwise.generation import stream

    words = tuple(f" w{number}" for number in range(10))
    fake.default = Behave(tokens=words, gap=0.01)
    reads: list[list[str]] = [[]]
    pause = stream._pause

    async def counted_pause(response: aiohttp.ClientResponse, seconds: float) -> None:
        await pause(response, seconds)
        reads.append([])

    monkeypatch.setattr(stream, "_pause", counted_pause)
    paced = StreamLimits(first_token_seconds=2, idle_seconds=2, pace_seconds=1.0)
    reply = await stream_reply(
        http, endpoint(fake), MESSAGES, lambda piece: reads[-1].append(piece), limits=paced
    )
    pieces = [piece for read in reads for piece in read]
    assert pieces == list(words) and reply.content == "".join(words)
    assert reads[0] == [words[0]]  # the first piece is never held back
    # The other nine were all sent while the first pause lasted (10 ms apart).
    assert len([read for read in reads if read]) <= 3
