"""A turn's event stream as it is written: every piece of text in order, the first at once,
what comes meanwhile in one write per batch (both sides together), each reply's end."""

import asyncio
from datetime import timedelta
from typing import Any

import orjson

from pickwise.conversations import generation, streaming
from pickwise.conversations.generation import Feed, Generator, ReplyJob
from pickwise.conversations.service import ReplyTask
from pickwise.core.clock import utcnow
from pickwise.generation.chat import EndpointConfig
from pickwise.generation.stream import StreamFailed, StreamLimits
from pickwise.models import ConversationReply
from pickwise.vocabulary import ReplyFailure, ReplyStatus


def _reply(reply_id: int, side: str) -> ConversationReply:
    now = utcnow()
    return ConversationReply(
        id=reply_id,
        turn_id=1,
        side=side,
        attempt=1,
        endpoint_id=reply_id,
        endpoint_name=f"model-{side}",
        model="m",
        sampling={},
        status=ReplyStatus.GENERATING,
        content="",
        requests=0,
        stop_requested=False,
        started_at=now,
        deadline_at=now + timedelta(minutes=5),
    )


def _job(reply: ConversationReply) -> ReplyJob:
    endpoint = EndpointConfig(
        name=reply.endpoint_name, base_url="http://model", model="m", api_key=None
    )
    task = ReplyTask(reply.id, 1, reply.side, endpoint, (), reply.deadline_at)
    return ReplyJob(task)


def _end(job: ReplyJob) -> None:
    job.final = {
        "status": ReplyStatus.COMPLETE,
        "content": job.text,
        "finished_at": utcnow(),
    }
    job.close()


def _parse(write: bytes) -> list[tuple[str, Any]]:
    found = []
    for block in write.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            found.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return found


async def test_every_piece_arrives_in_order_the_first_at_once_the_rest_in_few_writes() -> None:
    generator = Generator()
    replies = [_reply(1, "left"), _reply(2, "right")]
    jobs = {reply.side: _job(reply) for reply in replies}
    generator.jobs = {reply.id: jobs[reply.side] for reply in replies}
    stream = streaming.turn_events(generator, generator.units, replies)

    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    jobs["left"].add_text("Hel")
    # The first piece is written at once, not held for the next flush.
    write = await asyncio.wait_for(first, timeout=streaming.FLUSH_SECONDS / 4)
    assert _parse(write) == [("text", {"side": "left", "text": "Hel"})]

    pieces = {"left": ["Hel"], "right": []}
    writes = [_parse(write)]

    async def model() -> None:
        for n in range(30):
            for side in ("left", "right"):
                jobs[side].add_text(f" {side}{n}")
                pieces[side].append(f" {side}{n}")
            await asyncio.sleep(0.005)
        for job in jobs.values():
            _end(job)

    writing = asyncio.create_task(model())
    async for write in stream:
        writes.append(_parse(write))
    await writing

    events = [event for write in writes for event in write]
    for side in ("left", "right"):
        text = "".join(
            data["text"] for name, data in events if name == "text" and data["side"] == side
        )
        assert text == "".join(pieces[side])
        final = next(data for name, data in events if name == "reply" and data["side"] == side)
        assert final["content"] == "".join(pieces[side])
    assert events[-1] == ("done", {"can_vote": True})
    # 60 pieces over ~0.15 s came in a few batches, each one write holding both sides.
    assert len(writes) < 10
    assert any(
        {data["side"] for name, data in write if name == "text"} == {"left", "right"}
        for write in writes
    )


# Long enough that a test waiting for a write it must get early fails instead of waiting.
LONG_PAUSE = 3600.0
EARLY = 10.0


def _turn_with_a_long_pause(monkeypatch: Any) -> tuple[dict[str, Any], Any]:
    """Both sides' jobs and the turn's event stream, with writes an hour apart unless
    something cuts the pause short."""
    monkeypatch.setattr(streaming, "FLUSH_SECONDS", LONG_PAUSE)
    generator = Generator()
    replies = [_reply(1, "left"), _reply(2, "right")]
    jobs = {reply.side: _job(reply) for reply in replies}
    generator.jobs = {reply.id: jobs[reply.side] for reply in replies}
    return jobs, streaming.turn_events(generator, generator.units, replies)


async def test_the_other_sides_first_piece_is_not_held_back_by_the_pause(
    monkeypatch: Any,
) -> None:
    """Text is coalesced between writes, but a side's first words go out as they come: the
    pause after the left side's write is cut short by the right side's first piece."""
    jobs, stream = _turn_with_a_long_pause(monkeypatch)

    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    jobs["left"].add_text("Tram")
    assert _parse(await asyncio.wait_for(first, timeout=EARLY)) == [
        ("text", {"side": "left", "text": "Tram"})
    ]

    second = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    jobs["left"].add_text(" 28")
    await asyncio.sleep(0)
    # More of a side already shown waits for the pause's end...
    assert not second.done()
    jobs["right"].add_text("Take")
    # ...the other side's first piece does not, and takes what waited with it.
    assert _parse(await asyncio.wait_for(second, timeout=EARLY)) == [
        ("text", {"side": "left", "text": " 28"}),
        ("text", {"side": "right", "text": "Take"}),
    ]
    await stream.aclose()


async def test_a_replys_end_is_not_held_back_by_the_pause(monkeypatch: Any) -> None:
    """The end of a reply (what the vote waits for) cuts the pause short, with the text that
    came before it, and the stream ends at once when both are done."""
    jobs, stream = _turn_with_a_long_pause(monkeypatch)

    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    jobs["left"].add_text("Hello")
    jobs["right"].add_text("Hi")
    await asyncio.wait_for(first, timeout=EARLY)

    rest = asyncio.ensure_future(_collect(stream))
    await asyncio.sleep(0)
    jobs["left"].add_text(" there")
    jobs["right"].add_text(" you")
    _end(jobs["left"])
    _end(jobs["right"])
    events = [event for write in await asyncio.wait_for(rest, timeout=EARLY) for event in write]
    assert events == [
        ("text", {"side": "left", "text": " there"}),
        ("reply", _final(events, "left")),
        ("text", {"side": "right", "text": " you"}),
        ("reply", _final(events, "right")),
        ("done", {"can_vote": True}),
    ]
    assert _final(events, "left")["content"] == "Hello there"
    assert _final(events, "right")["content"] == "Hi you"


async def _collect(stream: Any) -> list[list[tuple[str, Any]]]:
    return [_parse(write) async for write in stream]


def _final(events: list[tuple[str, Any]], side: str) -> Any:
    return next(data for name, data in events if name == "reply" and data["side"] == side)


def _crowded(generator: Generator, replies: int) -> None:
    """`replies` more replies in flight in the process (other raters' turns)."""
    for number in range(replies):
        reply = _reply(1000 + number, "left")
        generator.jobs[reply.id] = _job(reply)


async def test_with_many_replies_in_flight_text_is_written_less_often_the_first_at_once(
    monkeypatch: Any,
) -> None:
    """Past WINDOW_REPLIES replies in flight the pause between writes widens (fewer wake-ups
    and writes for the worker); a side's first piece still goes out at once."""
    pauses: list[float] = []

    async def recorded_pause(feed: Feed, seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(Feed, "pause", recorded_pause)
    for crowd, window in ((0, streaming.FLUSH_SECONDS), (3 * generation.WINDOW_REPLIES, None)):
        generator = Generator()
        replies = [_reply(1, "left"), _reply(2, "right")]
        jobs = {reply.side: _job(reply) for reply in replies}
        generator.jobs = {reply.id: jobs[reply.side] for reply in replies}
        _crowded(generator, crowd)
        stream = streaming.turn_events(generator, generator.units, replies)
        pauses.clear()

        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        jobs["left"].add_text("Hel")
        assert _parse(await asyncio.wait_for(first, timeout=EARLY)) == [
            ("text", {"side": "left", "text": "Hel"})
        ]
        assert pauses == []  # the first piece waited for no pause
        jobs["left"].add_text("lo")
        await asyncio.wait_for(anext(stream), timeout=EARLY)
        await stream.aclose()
        expected = window or min(
            streaming.FLUSH_SECONDS * (crowd + 2) / generation.WINDOW_REPLIES,
            generation.MAX_WINDOW_SECONDS,
        )
        assert pauses == [expected]
    assert expected > streaming.FLUSH_SECONDS


async def test_with_many_replies_in_flight_a_reply_is_read_less_often(
    monkeypatch: Any,
) -> None:
    """A reply's connection is read at the widened pace when it starts among many others."""
    paces: list[float] = []

    async def fake_stream_reply(*args: Any, limits: StreamLimits, **kwargs: Any) -> Any:
        paces.append(limits.pace_seconds)
        raise StreamFailed(ReplyFailure.ERROR, "not asked", 1)

    monkeypatch.setattr(generation, "stream_reply", fake_stream_reply)
    for crowd in (0, 3 * generation.WINDOW_REPLIES):
        generator = Generator()
        reply = _reply(1, "left")
        job = _job(reply)
        generator.jobs = {reply.id: job}
        _crowded(generator, crowd)
        await generator._read(job.task, job)
        await generator.close()
    assert paces == [
        generation.READ_PACE_SECONDS,
        min(
            generation.READ_PACE_SECONDS
            * (3 * generation.WINDOW_REPLIES + 1)
            / generation.WINDOW_REPLIES,
            generation.MAX_WINDOW_SECONDS,
        ),
    ]
    assert paces[1] > paces[0]


def test_the_window_widens_in_proportion_past_window_replies_up_to_its_cap() -> None:
    base = 0.25
    limit = generation.WINDOW_REPLIES
    assert generation.widened(base, 0) == base
    assert generation.widened(base, limit) == base
    assert generation.widened(base, 2 * limit) == 2 * base
    assert generation.widened(base, 100 * limit) == generation.MAX_WINDOW_SECONDS
    # A window set wider than the cap (a test's hour) is never narrowed.
    assert generation.widened(3600.0, 2 * limit) == 3600.0
